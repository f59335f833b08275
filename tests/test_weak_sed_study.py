"""Weak-SED study (experiments/weak_sed): what is particular to it on the tiny profile (the paper's
rows, the fold protocol, standardisation with training statistics only, Figure 2, the export
with attention), the loss and the plateau schedule across a resume. The contract every study
keeps is tested in tests/test_families.py on the same tiny run."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tf_scenes.config import load_config
from tf_scenes.errors import ConfigError
from tf_scenes.experiments.weak_sed import plan as ws
from tf_scenes.pipelines.train_data import RowView
from tf_scenes.weak_sed import paper
from tf_scenes.weak_sed.training import (PlateauState, ResumablePlateau, plateau_replay, plateau_step, standardize,
                                         standardize_array)


CONFIGS = Path(ws.__file__).resolve().parent / "configs"
SNRS = (20.0, 10.0, 0.0)
TABLE1 = ("gap", "gmp", "gwrp", "dilated_attention", "2apae")
# Deshmukh et al. 2021, Tables 1 and 2
PAPER_T1 = {20.0: (0.7829, 0.7645, 0.9390), 10.0: (0.7603, 0.7486, 0.9343), 0.0: (0.6986, 0.6892, 0.9177)}
PAPER_T2 = {0.0: (0.7772, 0.7430, 0.6937), 0.001: (0.7829, 0.7603, 0.6986), 0.1: (0.7637, 0.7428, 0.6792)}


# ---------------------------------------------------------------------------------------------
# the whole study on the tiny profile


@pytest.fixture
def tiny_data(study_root):
    return study_root / "data"


@pytest.fixture
def study(tiny_study):
    s = tiny_study("weak_sed")
    return s.out, s.cfg


def test_tables_have_every_row_and_the_papers_numbers(study):
    out, _ = study
    t1 = json.loads((out / "table1.json").read_text())
    assert t1["profile"] == "tiny" and t1["synthetic"] is True
    assert [(r["key"], r["snr"]) for r in t1["rows"]] == [(m, s) for m in TABLE1 for s in SNRS]
    for r in t1["rows"]:
        for m in ("micro_ap", "macro_ap", "auc"):
            assert 0.0 <= r["ours"][m] <= 1.0
        assert set(r["folds"]) == {"4"}
        if r["key"] == "2apae":
            assert r["paper"] == dict(zip(("micro_ap", "macro_ap", "auc"), PAPER_T1[r["snr"]]))
        else:  # no paper numbers for the baselines: empty, and said so
            assert r["paper"] is None and "no numbers" in r["note"]
    t2 = json.loads((out / "table2.json").read_text())
    assert [r["alpha"] for r in t2["rows"]] == [0.0, 0.001, 0.1]
    for r in t2["rows"]:  # tiny.yaml: table2_snrs [20.0], the ablation at 20 dB only
        assert r["paper"] == {"20": PAPER_T2[r["alpha"]][0]}
        assert set(r["ours"]) == {"20"} and all(0 <= v <= 1 for v in r["ours"].values())
    assert any("at 20 dB only" in n for n in t2["notes"])
    # Table 2's alpha 0.001 row is Table 1's 2APAE run.
    apae = {r["snr"]: r["ours"]["micro_ap"] for r in t1["rows"] if r["key"] == "2apae"}
    assert t2["rows"][1]["ours"] == {"20": apae[20.0]}
    md1, md2 = (out / "table1.md").read_text(), (out / "table2.md").read_text()
    for md in (md1, md2):
        assert "SYNTHETIC DATA" in md and "Profile: tiny" in md
    assert "| 2APAE (alpha 0.001) | 20 |" in md1 and "0.7829" in md1 and "0.9177" in md1
    assert md1.count("| GWRP") == 3 and "0.7637" in md2 and "0.6792" not in md2


def test_every_run_folder_is_complete(study):
    out, cfg = study
    from tf_scenes.model_io import load_run_model, read_model_card

    folders = sorted(p.parent for p in (out / "runs").glob("*/snr*/fold*/model.json"))
    assert len(folders) == 5 * 3 + 2  # 5 Table 1 models at 3 SNRs + 2 more alphas at 20 dB (tiny.yaml), fold 4
    assert not list((out / "runs" / "2apae_alpha0").glob("snr10")) and (out / "runs" / "2apae_alpha0" / "snr20").is_dir()
    for run_dir in folders:
        for f in ("config.yaml", "run.json", "versions.json", "history.csv", "metrics.json", "scores_evaluate.tsv"):
            assert (run_dir / f).is_file(), run_dir / f
        assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
        card = read_model_card(run_dir)
        assert card["family"] == "weak_sed" and card["squeeze_channel"] is True
        assert card["feature_config"]["name"] == "weak_sed" and card["sample_rate"] == 32000
        assert np.asarray(card["normalization"]["mean"]).shape == (64, 1)
        assert (run_dir / card["weights"]).is_file()
        with open(run_dir / "history.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == cfg.models[run_dir.parent.parent.name].epochs
        assert {"val_micro_ap", "lr", "lr_next", "plateau_bad_epochs"} <= set(rows[0])
    card = read_model_card(out / "runs" / "2apae" / "snr20" / "fold4")
    assert card["saliency"]["method"] == "gradcam"
    assert card["saliency"]["attention"] == ["freq_attention", "time_attention"]
    model, _ = load_run_model(out / "runs" / "2apae" / "snr20" / "fold4")
    model.get_layer(card["saliency"]["layer"])  # the Grad-CAM layer exists
    assert set(card["saliency"]["attention"]) <= set(model.output)


def test_fold_protocol_in_the_study(study, tiny_data):
    out, _ = study
    from tf_scenes.weak_sed.remix import read_remix

    records = {r.name: r for r in read_remix(Path(tiny_data) / "weak_sed_remix" / "snr20")}
    info = json.loads((out / "study.json").read_text())
    assert info["splits"] == {"4": {"fit": 11, "validation": 1, "evaluation": 4}}
    with open(out / "runs" / "gap" / "snr0" / "fold4" / "scores_evaluate.tsv") as f:
        names = [row["filename"] for row in csv.DictReader(f, delimiter="\t")]
    assert sorted(names) == sorted(n for n, r in records.items() if r.fold == 4)
    # Training used the other folds only: the number of training + validation mixtures is theirs.
    assert sum(r.fold != 4 for r in records.values()) == 11 + 1


def test_standardisation_statistics_are_the_training_mixtures(study, tiny_data):
    """Hand check: the card's mean / std are numpy's over the fit mixtures' features only."""
    out, cfg = study
    folders, _ = ws.resolve_remix(cfg, out.parent / "cache")
    data = ws.load_snr(0.0, folders[0.0], out.parent / "cache")  # feature cache hit
    split = ws.fold_split(np.array([r.fold for r in data.records]), 4, cfg.data.val_fraction, cfg.seed)
    card = json.loads((out / "runs" / "2apae" / "snr0" / "fold4" / "model.json").read_text())
    feats = np.asarray(data.features, np.float64)  # (16, 311, 64, 1)
    fit = feats[split.fit]
    np.testing.assert_allclose(np.asarray(card["normalization"]["mean"]), fit.mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(card["normalization"]["std"]), fit.std(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    # ... and not the statistics of all mixtures (which would leak the evaluation fold).
    assert np.abs(np.asarray(card["normalization"]["mean"]) - feats.mean(axis=(0, 1))).max() > 1e-3


def test_figure2_and_per_class_ap(study):
    out, cfg = study
    figs = sorted((out / "figures").glob("figure2_snr*.png"))
    assert {p.name.split("_")[1] for p in figs} == {"snr20", "snr10", "snr0"}
    assert all(p.stat().st_size > 20_000 for p in figs)
    pcap = json.loads((out / "per_class_ap.json").read_text())
    assert set(pcap["per_class_ap"]) == {"20", "10", "0"}
    m = json.loads((out / "metrics_all.json").read_text())
    for snr, by_model in pcap["per_class_ap"].items():  # the alpha ablation at 20 dB only (tiny.yaml)
        assert set(by_model) == set(TABLE1) | ({"2apae_alpha0", "2apae_alpha0_1"} if snr == "20" else set())
        assert set(m) == set(by_model) | {"2apae_alpha0", "2apae_alpha0_1"}
        assert all(snr in m[n] for n in by_model)
        # per-class AP = the run's per-class AP (one held-out fold)
        ref = {k[3:]: v for k, v in m["gap"][snr]["4"].items() if k.startswith("ap/")}
        assert by_model["gap"] == pytest.approx(ref)
        assert set(ref) <= set(pcap["classes"])
    for s in ("20", "10", "0"):
        assert (out / "figures" / f"per_class_ap_snr{s}.png").stat().st_size > 10_000


def test_export_round_trip(study, tiny_data):
    """The SavedModel takes a 32 kHz waveform and matches the Keras model, and its clip scores are
    the study's scores of that mixture (features, training statistics and model all inside)."""
    import tensorflow as tf

    from tf_scenes.audio import read_audio
    from tf_scenes.export import read_export_metadata

    out, _ = study
    export = out / "export" / "2apae_snr20"
    meta, labels = read_export_metadata(export)
    assert meta["input"]["sample_rate"] == 32000 and set(meta["outputs"]) == {"clip", "time_attention"}
    assert len(labels["clip"]) == 41
    run_dir = out / "runs" / "2apae" / "snr20" / "fold4"
    with open(run_dir / "scores_evaluate.tsv") as f:
        row = next(csv.DictReader(f, delimiter="\t"))
    wav, sr = read_audio(Path(tiny_data) / "weak_sed_remix" / "snr20" / "audio" / f"{row['filename']}.wav")
    assert sr == 32000
    x = np.stack([wav, 0.5 * wav]).astype(np.float32)
    served = tf.saved_model.load(str(export)).signatures["serving_default"](waveform=tf.constant(x))
    from tf_scenes.weak_sed.serving import export_waveform_model

    keras_model, _ = export_waveform_model(run_dir)
    ref = keras_model(x, training=False)
    assert served["clip"].shape == (2, 41) and served["time_attention"].shape == (2, 41, 311)
    for k in ("clip", "time_attention"):
        np.testing.assert_allclose(served[k].numpy(), np.asarray(ref[k]), rtol=1e-4, atol=1e-6)
    ours = np.array([float(row[c]) for c in labels["clip"]])
    np.testing.assert_allclose(served["clip"].numpy()[0], ours, atol=2e-4)
    # `tf-scenes saliency` with the card's defaults: Grad-CAM plus the model's own attention maps.
    from tf_scenes.saliency_cli import explain

    spec, panels, _ = explain(run_dir, wav)
    titles = [t for t, _ in panels]
    assert spec.shape == (311, 64) and "gradcam at enc4_conv2" in titles[0]
    assert any("freq attention" in t for t in titles) and any("time attention" in t for t in titles)


def test_a_changed_config_is_refused_in_the_same_folder(study):
    from tf_scenes.experiments.reproduce import get_study, load_study_config
    from tf_scenes.experiments.study import run_study

    out, cfg = study
    cfg2 = load_study_config("weak_sed", "tiny", overrides=[f"data.synthetic_dir={cfg.data.synthetic_dir}",
                                                             "figures=false", "export=false"])
    with pytest.raises(ConfigError, match="another config"):  # the study folder remembers its config
        run_study(get_study("weak_sed"), cfg2, out, cache_dir=out.parent / "cache")


def test_real_data_path_builds_the_remix_into_a_cache_folder(tiny_data, tmp_path):
    """data.events_root / data.scenes_root (as `make reproduce-weak-sed EVENTS=.. SCENES=..`): the
    remix is built once into the cache; sources written by tf_scenes.synth keep the SYNTHETIC label."""
    from tf_scenes.synth import DATASET_DIRS

    over = [f"data.events_root={tiny_data / DATASET_DIRS['events']}",
            f"data.scenes_root={tiny_data / DATASET_DIRS['asc']}", "data.mixtures_per_fold=1"]
    cfg = load_config(ws.Config, CONFIGS / "tiny.yaml", over)
    folders, label = ws.resolve_remix(cfg, tmp_path)
    assert label.synthetic and label.text.startswith("SYNTHETIC")
    assert set(folders) == set(SNRS)
    assert all(p.parent.parent == tmp_path / "weak_sed_remix" for p in folders.values())
    assert all(len(list((p / "audio").glob("*.wav"))) == 4 for p in folders.values())  # 1 per fold x 4 folds
    again = ws.resolve_remix(cfg, tmp_path)[0]  # reused, not rebuilt
    assert again == folders
    # --data: a remix built earlier, still labelled by its (synthetic) sources
    cfg2 = load_config(ws.Config, CONFIGS / "tiny.yaml", [f"data.root={next(iter(folders.values())).parent}"])
    folders2, label2 = ws.resolve_remix(cfg2, tmp_path)
    assert folders2 == folders and label2.synthetic


def test_synthetic_events_per_class_gets_its_own_event_set_and_remix(tiny_data, tmp_path):
    """data.synthetic_events_per_class: that many verified clips per class, in folders of their
    own beside the shared synthetic sets (which stay as they are)."""
    import shutil

    from tf_scenes.synth import DATASET_DIRS
    from tf_scenes.weak_sed.remix import read_remix

    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(tiny_data / DATASET_DIRS["asc"], data / DATASET_DIRS["asc"])  # the shared scenes
    cfg = load_config(ws.Config, CONFIGS / "tiny.yaml", [f"data.synthetic_dir={data}",
                                                          "data.synthetic_events_per_class=2"])
    folders, label = ws.resolve_remix(cfg, tmp_path / "cache")
    assert label.synthetic and set(folders) == set(SNRS)
    assert all(p.parent == data / "weak_sed_remix-2pc" for p in folders.values())
    assert not (data / DATASET_DIRS["events"]).exists() and not (data / "weak_sed_remix").exists()
    with open(data / f"{DATASET_DIRS['events']}-2pc" / "train.csv") as f:
        verified = [r["label"] for r in csv.DictReader(f) if r["manually_verified"] == "1"]
    assert len(verified) == 2 * 41 and len(set(verified)) == 41
    records = read_remix(folders[20.0])
    assert len(records) == 4 * 4  # the tiny remix's 4 mixtures per fold
    used = {e.event_file for r in records for e in r.events}
    assert len(used) == 3 * 16  # 82 clips, 20 or 21 per fold: none reused in a fold's 4 mixtures


def test_a_runs_own_rate_reaches_the_optimizer(study, tiny_data, tmp_path, monkeypatch):
    """models.NAME.lr: that run trains at its own Adam rate (history.csv, the optimizer), others
    at train.lr.  models.NAME.prior_bias + calibrate_bias (gap and gmp here, inherited from
    quick.yaml): the class map's bias starts at the logit of each class's frequency in the training
    mixtures plus the calibration's offsets, which put the pooled clip output of the calibration
    mixtures at that frequency; without them (gmp below) the bias starts at zero."""
    import tensorflow as tf

    from tf_scenes import registry
    from tf_scenes.experiments import study as runner
    from tf_scenes.training import init
    from tf_scenes.training.init import prior_logits, prior_probabilities

    calls, calibrate = [], init.calibrate_bias

    def recording(layer, outputs, targets, **kw):
        offsets = calibrate(layer, outputs, targets, **kw)
        calls.append((offsets, outputs(), np.asarray(targets)))
        return offsets

    monkeypatch.setattr(init, "calibrate_bias", recording)
    cfg = load_config(ws.Config, CONFIGS / "tiny.yaml", [f"data.synthetic_dir={tiny_data}",
                                                          "models.gap.lr=0.05"])
    assert cfg.models["gap"].lr == 0.05 and cfg.models["gmp"].lr is None
    env = runner.StudyEnv(tmp_path / "out", tmp_path / "cache", None, cfg)
    data = ws.prepare(cfg, env)
    plain = load_config(ws.Config, CONFIGS / "tiny.yaml", [f"data.synthetic_dir={tiny_data}",
                                                           "models.gmp.calibrate_bias=false",
                                                           "models.gmp.prior_bias=false"])
    specs = {s.item.name: s for s in ws.plan(cfg, data) if s.item.snr == 20.0}
    specs["gmp_plain"] = next(s for s in ws.plan(plain, data) if s.item.snr == 20.0 and s.item.name == "gmp")
    labels = data.snr[20.0].labels[data.splits[4].fit]
    for name, want in (("gap", 0.05), ("gmp", cfg.train.lr), ("gmp_plain", cfg.train.lr)):
        spec = specs[name]
        run_dir = tmp_path / name
        run_dir.mkdir()
        calls.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trained = ws.train(spec, data, run_dir, lambda: registry.build(spec.builder, spec.model_config), env,
                               strategy=tf.distribute.get_strategy())
        # the calibration calls the trunk with the model's one input, as Keras expects it (a list of
        # one input printed Keras' "structure of `inputs`" warning in every calibrated run)
        assert not [w for w in caught if "structure of `inputs`" in str(w.message)], name
        with open(run_dir / "history.csv") as f:
            assert [float(r["lr"]) for r in csv.DictReader(f)] == pytest.approx([want])
        assert float(trained.model.optimizer.learning_rate.numpy()) == pytest.approx(want)
        if spec.item.run.calibrate_bias:
            (offsets, pooled, targets), = calls
            np.testing.assert_allclose(targets, prior_probabilities(labels))
            np.testing.assert_allclose(pooled, targets, atol=1e-3)  # the calibration mixtures' clip output
            start = prior_logits(labels) + offsets
            if name == "gmp":  # the max of the initial map lies far above the per-cell prior
                assert offsets.mean() < -1.0
        else:
            assert not calls
            start = 0.0
        # one Adam step moves a bias by at most about the rate
        bias = np.asarray(trained.model.get_layer("class_conv").bias)
        assert np.abs(bias - start).max() <= 1.5 * want, name
    assert specs["gmp"].item.run.calibrate_bias and not specs["gmp_plain"].item.run.prior_bias


# ---------------------------------------------------------------------------------------------
# unit tests of the study's logic


def test_fold_split_hand_computed():
    folds = np.array([1, 2, 3, 4] * 5)  # 20 mixtures, 5 per fold
    sp = ws.fold_split(folds, 2, 0.2, seed=0)
    assert sp.evaluate.tolist() == [1, 5, 9, 13, 17]
    train = set(np.flatnonzero(folds != 2).tolist())
    assert len(sp.val) == 3 and len(sp.fit) == 12  # round(0.2 * 15)
    assert set(sp.fit) | set(sp.val) == train and not set(sp.fit) & set(sp.val)
    assert not (set(sp.fit) | set(sp.val)) & set(sp.evaluate.tolist())
    assert np.array_equal(ws.fold_split(folds, 2, 0.2, seed=0).val, sp.val)  # seeded
    assert len(ws.fold_split(folds, 2, 0.01, seed=0).val) == 1  # at least one validation mixture
    assert len(ws.fold_split(folds, 2, 0.0, seed=0).val) == 0


def test_training_statistics_and_standardize_hand_computed():
    # 4 mixtures of 2 frames x 3 bands; mixture i holds the value 10 * i + band everywhere, so the
    # statistics of rows {0, 2} are mean 10 + band, std 10.
    x = np.array([[[[10 * i + b] for b in range(3)]] * 2 for i in range(4)], np.float32)  # (4, 2, 3, 1)
    mean, std = ws.training_statistics(x, [0, 2])
    np.testing.assert_allclose(mean[:, 0], [10, 11, 12])
    np.testing.assert_allclose(std[:, 0], [10, 10, 10])
    z = standardize(x[3:4], mean, std).numpy()  # mixture 3: (30 + b - (10 + b)) / 10 = 2
    assert z.shape == (1, 2, 3)
    np.testing.assert_allclose(z, 2.0)
    rnd = np.random.default_rng(0).normal(5, 2, (3, 4, 3, 1)).astype(np.float32)
    np.testing.assert_array_equal(standardize_array(rnd, mean, std), standardize(rnd, mean, std).numpy())
    view = RowView(x, [2, 0])
    assert view.shape == (2, 2, 3, 1) and view[0][0, 0, 0] == 20 and view[0:2][1, 0, 0, 0] == 0


def test_loss_is_bce_plus_alpha_mse_on_a_fixed_batch():
    """The study's compile: loss = BCE(clip, y) + alpha * mean((reconstruction - x_std)^2)."""
    import tensorflow as tf

    from tf_scenes.weak_sed.model import WeakSedConfig, build_weak_sed
    from tf_scenes.weak_sed.training import inputs_and_targets

    rng = np.random.default_rng(3)
    raw = rng.normal(2.0, 3.0, (4, 24, 12, 1)).astype(np.float32)
    y = (rng.random((4, 5)) < 0.4).astype(np.float32)
    mean, std = raw.mean(axis=(0, 1)), raw.std(axis=(0, 1))
    small = dict(width=0.125, frames=24, n_mels=12, n_classes=5)
    for alpha in (0.1, 0.0):
        import keras

        from tf_scenes.weak_sed.model import weak_sed_loss

        run = ws.ModelRun(model="2apae", alpha=alpha)
        model = build_weak_sed(WeakSedConfig(model="2apae", alpha=alpha, **small))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), **weak_sed_loss(alpha, ws.uses_reconstruction(run)))
        xz, targets = inputs_and_targets(mean, std, ws.uses_reconstruction(run))(tf.constant(raw), tf.constant(y))
        ev = model.evaluate(xz, targets, verbose=0, return_dict=True)
        out = model(xz, training=False)
        p = np.clip(np.asarray(out["clip"], np.float64), 1e-7, 1 - 1e-7)
        bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        z = (raw[..., 0] - mean[:, 0]) / std[:, 0]
        mse = np.mean((np.asarray(out["reconstruction"], np.float64) - z) ** 2)
        assert ev["loss"] == pytest.approx(bce + alpha * mse, rel=1e-4)
        assert ("reconstruction" in targets) == (alpha > 0)


def test_plateau_schedule_hand_computed():
    # best 0.5 at epoch 1; epochs 2..5 are not better (0.50004 is within the relative threshold
    # 1e-4): the 4th bad epoch (epoch 5) > patience 3 lowers the rate, then 0.6 is a new best.
    values = [0.4, 0.5, 0.5, 0.50004, 0.3, 0.45, 0.6, 0.6]
    s = plateau_replay(values, 1e-3, factor=0.1, patience=3, threshold=1e-4)
    assert s.reductions == (5,) and s.lr == pytest.approx(1e-4) and s.best == 0.6 and s.bad_epochs == 1
    assert plateau_replay(values[:5], 1e-3).lr == 1e-3 and plateau_replay(values[:5], 1e-3).bad_epochs == 3
    # NaN never improves; a new value above best * (1 + 1e-4) does.
    s = plateau_step(PlateauState(lr=1.0, best=0.5), float("nan"))
    assert s.bad_epochs == 1 and s.best == 0.5
    assert plateau_step(PlateauState(lr=1.0, best=0.5), 0.5001).best == 0.5001


SCRIPT = [0.3, 0.5, 0.4, 0.4, 0.4, 0.4, 0.45, 0.45]  # validation value of each epoch


def _plateau_fit(run_dir, epochs):
    import keras

    from tf_scenes.training.trainer import CHECKPOINT_DIR, LAST, fit, read_checkpoint_state

    keras.utils.set_random_seed(0)
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(1, name="d")(inp))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = np.ones((8, 3), np.float32)

    def make_ds(initial_epoch):
        import tensorflow as tf

        return tf.data.Dataset.from_tensors((x, x[:, :1])).repeat(epochs - initial_epoch)

    def val_fn(m):
        epoch = int(m.optimizer.iterations.numpy()) - 1  # one step per epoch
        return {"val_micro_ap": SCRIPT[epoch]}

    last = Path(run_dir) / CHECKPOINT_DIR / LAST
    history = read_checkpoint_state(last)["history"] if last.exists() else []
    cb = ResumablePlateau("val_micro_ap", 1e-2, patience=2, history=history)
    fit(model, make_ds, epochs=epochs, steps_per_epoch=1, run_dir=run_dir, val_data=val_fn, monitor="val_micro_ap",
        extra_callbacks=[cb], verbose=0, tensorboard=False)
    return [r["lr"] for r in read_checkpoint_state(last)["history"]], float(model.optimizer.learning_rate.numpy())


def test_plateau_schedule_survives_resume(tmp_path):
    """Interrupted after 4 epochs and resumed, the schedule equals an uninterrupted run's: the
    bad-epoch count built up before the interruption is recomputed from the history."""
    whole, lr_whole = _plateau_fit(tmp_path / "whole", 8)
    # best 0.5 at epoch 1; epochs 2, 3, 4 bad -> 3 > patience 2 at epoch 4: rate / 10 from epoch 5.
    assert whole == pytest.approx([1e-2] * 5 + [1e-3] * 3)
    _plateau_fit(tmp_path / "split", 4)  # epochs 0-3: two bad epochs so far, no reduction yet
    resumed, lr_resumed = _plateau_fit(tmp_path / "split", 8)
    assert resumed == pytest.approx(whole) and lr_resumed == pytest.approx(lr_whole)


def test_profiles_load_and_config_is_checked():
    paper = load_config(ws.Config, CONFIGS / "paper.yaml")
    quick = load_config(ws.Config, CONFIGS / "quick.yaml")
    tiny = load_config(ws.Config, CONFIGS / "tiny.yaml")
    assert paper.eval_folds == (1, 2, 3, 4) and paper.data.mixtures_per_fold == 2000
    assert all(m.width == 1.0 and m.epochs == 50 for m in paper.models.values())
    assert (paper.train.batch_size, paper.train.lr, paper.train.plateau_patience) == (24, 1e-3, 3)
    assert [paper.models[n].alpha for n in paper.table2] == [0.0, 0.001, 0.1]
    assert quick.eval_folds == (4,) and tiny.profile == "tiny"
    # the quick profile's own synthetic event set and baseline rates; the tiny one keeps the defaults
    assert quick.data.synthetic_events_per_class == 32 and tiny.data.synthetic_events_per_class is None
    assert quick.data.class_balanced_folds and not tiny.data.class_balanced_folds and not paper.data.class_balanced_folds
    with pytest.raises(ConfigError, match="data.synthetic_events_per_class"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["data.class_balanced_folds=true"])
    assert {n: m.lr for n, m in quick.models.items()} == {
        "gap": 0.003, "gmp": 0.003, "gwrp": 0.003, "dilated_attention": 0.01, "2apae": None, "2apae_alpha0": None,
        "2apae_alpha0_1": None}
    # the clip output started at the label prior: the quick VGG-ish baselines, their class-map bias
    # calibrated through the pool (quick.yaml says why), and so the tiny ones; never the paper
    assert [n for n, m in quick.models.items() if m.prior_bias] == ["gap", "gmp", "gwrp"]
    assert [n for n, m in quick.models.items() if m.calibrate_bias] == ["gap", "gmp", "gwrp"]
    assert [n for n, m in tiny.models.items() if m.calibrate_bias] == ["gap", "gmp", "gwrp"]
    assert not any(m.prior_bias or m.calibrate_bias for m in paper.models.values())
    with pytest.raises(ConfigError, match="prior_bias applies to"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["models.dilated_attention.prior_bias=true"])
    with pytest.raises(ConfigError, match="calibrate_bias applies to"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["models.2apae.prior_bias=true", "models.2apae.calibrate_bias=true"])
    with pytest.raises(ConfigError, match="calibrate_bias applies to"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["models.gmp.prior_bias=false"])
    assert all(m.lr is None for m in (*tiny.models.values(), *paper.models.values()))
    # quick: 20 and 0 dB, the alpha ablation at 20 dB (the time budget); tiny and paper: every SNR
    assert quick.data.snrs == (20.0, 0.0) and ws.ablation_snrs(quick) == (20.0,)
    assert ws.ablation_snrs(tiny) == (20.0,) and ws.ablation_snrs(paper) == SNRS
    for cfg in (paper, quick, tiny):
        assert cfg.table1 == TABLE1
    for cfg in (paper, tiny):
        assert cfg.data.snrs == SNRS
    for bad in ("[10.0]", "[]", "[20.0,20.0]"):
        with pytest.raises(ConfigError, match="table2_snrs"):
            load_config(ws.Config, CONFIGS / "quick.yaml", [f"table2_snrs={bad}"])
    with pytest.raises(ConfigError, match="not defined"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["table1=[gap,nope]"])
    with pytest.raises(ConfigError, match="eval_folds"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["eval_folds=[5]"])
    with pytest.raises(ConfigError, match="table2"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["table2=[gap]"])
    with pytest.raises(ConfigError, match="both"):
        load_config(ws.Config, CONFIGS / "tiny.yaml", ["data.events_root=/x"])


def test_paper_numbers():
    assert paper.paper_table1("2apae", 10) == {"micro_ap": 0.7603, "macro_ap": 0.7486, "auc": 0.9343}
    assert paper.paper_table1("2apae", 10, alpha=0.1) is None
    assert paper.paper_table1("gwrp", 20) is None
    assert paper.paper_table2(0.1, 0) == 0.6792 and paper.paper_table2(0.5, 0) is None


def test_export_tflite_predict_and_saliency_commands_on_runs(study, tiny_data, tmp_path, capsys):
    """The shipping commands on weak-SED run folders: `export --tflite` of the 2APAE run (same
    SavedModel outputs as the study's export) and of a pooling baseline, `predict` with the time
    attention as frame activities, and `saliency` with the model's own attention panels."""
    import tensorflow as tf

    from tf_scenes.experiments.cli import main
    from tf_scenes.export import read_export_metadata

    out, _ = study
    run = out / "runs" / "2apae" / "snr20" / "fold4"
    exp = tmp_path / "2apae"
    assert main(["export", str(run), "--out", str(exp), "--tflite"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res["tflite"]["max_abs_diff"]) == {"clip", "time_attention"}
    assert max(res["tflite"]["max_abs_diff"].values()) < 1e-3
    meta, labels = read_export_metadata(exp)
    assert meta["family"] == "weak_sed" and meta["input"]["sample_rate"] == 32000 and meta["frame_seconds"] == 0.032
    x = (0.1 * np.random.default_rng(0).standard_normal((1, 320000))).astype(np.float32)
    ours = tf.saved_model.load(str(exp)).signatures["serving_default"](waveform=tf.constant(x))
    theirs = tf.saved_model.load(str(out / "export" / "2apae_snr20")).signatures["serving_default"](
        waveform=tf.constant(x))
    for k in ("clip", "time_attention"):
        np.testing.assert_allclose(ours[k].numpy(), theirs[k].numpy(), atol=1e-6)

    base = tmp_path / "gwrp"
    assert main(["export", str(out / "runs" / "gwrp" / "snr20" / "fold4"), "--out", str(base)]) == 0
    capsys.readouterr()
    assert read_export_metadata(base)[0]["outputs"] == ["clip"]

    clip = sorted((Path(tiny_data) / "weak_sed_remix" / "snr20" / "audio").glob("*.wav"))[0]
    assert main(["predict", str(exp), str(clip)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    top = line["outputs"]["clip"]["top"]
    assert len(top) == 3 and top[0][0] in labels["clip"]
    att = line["outputs"]["time_attention"]
    assert len(att["frames"]) == 311 and len(att["frames"][0]) == 41 and att["frame_hop_s"] == 0.032
    from tf_scenes.audio import read_audio

    wav, _ = read_audio(clip, sr=32000)
    served = tf.saved_model.load(str(exp)).signatures["serving_default"](waveform=tf.constant(wav[None]))
    np.testing.assert_allclose(np.array(att["frames"]), served["time_attention"].numpy()[0].T, atol=1e-4)
    np.testing.assert_allclose([p for _, p in top], np.sort(served["clip"].numpy()[0])[::-1][:3], atol=1e-5)
    assert main(["predict", str(base), str(clip)]) == 0
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["outputs"]) == {"clip"}

    fig = tmp_path / "sal.png"
    assert main(["saliency", str(run), str(clip), "--class", top[0][0], "--out", str(fig)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fig.stat().st_size > 10_000 and len(res["panels"]) == 3 and top[0][0] in res["panels"][0]
    assert main(["saliency", str(out / "runs" / "dilated_attention" / "snr20" / "fold4"), str(clip),
                 "--out", str(tmp_path / "d.png")]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "gradcam at block3_conv" in res["panels"][0] and "model attention" in res["panels"][1]
    assert main(["saliency", str(out / "runs" / "gap" / "snr20" / "fold4"), str(clip),
                 "--out", str(tmp_path / "g.png")]) == 0
    assert "cam at class_conv" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["panels"][0]
