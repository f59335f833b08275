"""The toy family's study: tones against noise, one run, one table, the export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tf_scenes.config import bounded
from tf_scenes.experiments import study


@dataclasses.dataclass(frozen=True)
class TrainConfig(study.TrainConfig):
    epochs: int = bounded(2, ge=1)
    batch_size: int = bounded(4, ge=1)


@dataclasses.dataclass(frozen=True)
class Config:
    profile: str = "tiny"
    description: str = ""
    seed: int = 0
    data: study.DataConfig = dataclasses.field(default_factory=study.DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


@dataclasses.dataclass
class Data:
    label: object
    names: list
    x: np.ndarray
    y: np.ndarray


def write_clips(root: Path, n: int = 16) -> None:
    """n one-second clips at 16 kHz: even ones a tone, odd ones noise (the data, written once)."""
    from tf_scenes.audio import write_audio

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (300 + 50 * i) * t) if i % 2 == 0 else 0.1 * rng.standard_normal(16000)
        write_audio(root / f"clip{i:02d}.wav", x.astype(np.float32), 16000)


def prepare(cfg: Config, env) -> Data:
    from tf_scenes.datasets import provenance
    from tf_scenes.pipelines.cache import cached_features

    root = Path(cfg.data.root or Path(cfg.data.synthetic_dir) / "toy")
    if not root.is_dir():
        root.mkdir(parents=True)
        write_clips(root)
    paths = sorted(root.glob("*.wav"))
    x = cached_features(paths, "toy", env.cache_dir / "features", progress=False)
    y = np.array([i % 2 for i in range(len(paths))])
    return Data(provenance.describe("toy tones and noise", root), [p.name for p in paths], x, y)


def plan(cfg: Config, data: Data) -> list:
    from tf_scenes.config import to_dict

    from . import default_config

    mcfg = default_config("toy_cnn")
    return [study.RunSpec(name="cnn", builder="toy_cnn", model_config=mcfg,
                          config={"train": to_dict(cfg.train), "seed": cfg.seed},
                          seed=study.run_seed(cfg.seed, "cnn"), train=cfg.train)]


def train(spec, data: Data, run_dir: Path, build, env, *, strategy, init=None) -> study.Trained:
    import keras

    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.training.trainer import fit

    t = env.config.train
    model = build()
    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    y = np.eye(2, dtype=np.float32)[data.y]
    steps = len(y) // t.batch_size
    fit(model, lambda k: make_train_dataset(data.x, y, batch_size=t.batch_size, seed=spec.seed, epochs=t.epochs,
                                            initial_epoch=k), epochs=t.epochs, steps_per_epoch=steps,
        run_dir=run_dir, select="last", verbose=0)
    return study.Trained(model)


def evaluate(spec, model, data: Data, run_dir: Path) -> dict:
    from tf_scenes.scores import ScoreTable, write_scores

    from . import CLASSES

    probs = model.predict(data.x, verbose=0)
    write_scores(run_dir / study.score_file(), ScoreTable(data.names, probs, CLASSES))
    return {"acc": float(np.mean(probs.argmax(1) == data.y))}


def report(cfg: Config, data: Data, results: dict, env) -> dict:
    from tf_scenes.experiments.tables import Column, write_table
    from tf_scenes.export_cli import export_run

    rows = [{"system": name, "acc": 100 * r.metrics["acc"], "paper": None} for name, r in results.items()]
    write_table(env.out, "table1", "Toy accuracy", [Column("system", "system", text=True),
                                                     Column("acc", "acc", paper="paper")], rows,
                data=data.label, profile=cfg.profile)
    path, _ = export_run(results["cnn"].run_dir, env.out / "export" / "toy")
    return {"tables": ["table1"], "export": str(path.relative_to(env.out)), "summary": {"acc": rows[0]["acc"]}}


STUDY = study.Study(family="toy", Config=Config, prepare=prepare, plan=plan, train=train, evaluate=evaluate,
                    report=report, description="toy: tones against noise")
