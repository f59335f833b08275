"""The Python interface: load a trained model (a run folder, a system folder or an export), predict
on numpy waveforms with class names attached, compute features, explain with CAM / Grad-CAM; build
any registered model by name.

    import tf_scenes
    model = tf_scenes.load("results/two_stage/runs/resnet10")      # or results/two_stage, or an export
    out = model.predict(waveform, sample_rate=48000)               # resampled to the model's rate
    out["probs"].top(3)                                            # [("street_traffic", 0.61), ...]
    sal = model.saliency(waveform, 48000, target="park")           # map, spectrogram, axes in s / Hz
    tf_scenes.list_models(); tf_scenes.build("two_stage_fcnn", width=0.25)
    tf_scenes.features("two_stage", waveform, 44100)               # (423, 128, 3)

TensorFlow loads on the first call, not on ``import tf_scenes``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import TFScenesError


@dataclasses.dataclass(frozen=True)
class Scores:
    """One output of a model for one clip: ``values`` (classes,) or (frames, classes), and the class
    names of the last axis; ``frame_seconds`` for frame outputs."""

    values: np.ndarray
    classes: tuple[str, ...]
    frame_seconds: float | None = None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The k best classes (frame outputs: by their maximum over frames)."""
        v = self.values if self.values.ndim == 1 else self.values.max(axis=0)
        order = np.argsort(-v)[:k]
        return [(self.classes[i], float(v[i])) for i in order]

    def as_dict(self) -> dict[str, float]:
        """{class: score} of a clip output (frame outputs: the maximum over frames)."""
        return dict(self.top(len(self.classes)))


def _resample(waveform, sample_rate: int, target: int) -> np.ndarray:
    from .audio import waveform_at

    return waveform_at(waveform, sample_rate, target)


class Model:
    """A loaded model (:func:`load`). ``classes``: output name -> class names; ``sample_rate``: the
    rate it takes (waveforms at other rates are resampled with soxr); ``runs``: the run folders it
    comes from (features and saliency need them; an export records them)."""

    def __init__(self, predict_fn, classes: dict, sample_rate: int, runs: Sequence[Path], source: Path,
                 frame_seconds: float | None = None, min_samples: int = 1):
        self._predict = predict_fn
        self.classes = {k: tuple(v) for k, v in classes.items()}
        self.sample_rate = int(sample_rate)
        self.runs = [Path(r) for r in runs]
        self.source = Path(source)
        self.frame_seconds = frame_seconds
        self.min_samples = int(min_samples)

    def __repr__(self) -> str:
        return f"tf_scenes.Model({self.source}, outputs={list(self.classes)}, sample_rate={self.sample_rate})"

    def predict(self, waveform, sample_rate: int) -> dict[str, Scores]:
        """The model's outputs for one clip, keyed by output name; outputs with class names come as
        :class:`Scores` (the others, e.g. an embedding, as numpy arrays)."""
        x = _resample(waveform, sample_rate, self.sample_rate)
        if len(x) < self.min_samples:
            raise TFScenesError(f"the waveform has {len(x)} samples at {self.sample_rate} Hz; this model needs at "
                                f"least {self.min_samples}")
        raw = self._predict(x[None, :])
        out: dict[str, Any] = {}
        for name, value in raw.items():
            v = np.asarray(value)[0]
            names = self.classes.get(name)
            if names and v.ndim == 2 and v.shape[0] == len(names) != v.shape[1]:
                v = v.T  # (classes, frames) attention maps -> (frames, classes)
            if names and v.shape[-1] == len(names):
                out[name] = Scores(v.astype(np.float64), names, self.frame_seconds if v.ndim == 2 else None)
            else:
                out[name] = v
        return out

    def _run(self, index: int = 0) -> Path:
        if not self.runs:
            raise TFScenesError(f"{self.source}: no run folder recorded; features and saliency need the run folder")
        return self.runs[index]

    def features(self, waveform, sample_rate: int, run: int = 0) -> np.ndarray:
        """What the (first) model takes, from the waveform: features standardised and shaped as its
        card says (a waveform model: its windows)."""
        from .model_io import read_model_card
        from .saliency_cli import model_input

        card = read_model_card(self._run(run))
        return model_input(card, _resample(waveform, sample_rate, card["sample_rate"]))[0]

    def saliency(self, waveform, sample_rate: int, *, method: str | None = None, target=None,
                 layer: str | None = None, output: str | None = None, run: int = 0) -> dict:
        """CAM / Grad-CAM of one run on one clip (defaults from its model card): ``{"map": (frames,
        bins) in [0, 1], "spectrogram": log power (frames, bins), "title", "frame_seconds",
        "class", "extra": [(title, map)]}``; ``target``: a class name or index (default: the top
        class)."""
        from .model_io import read_model_card
        from .saliency_cli import explain

        run_dir = self._run(run)
        card = read_model_card(run_dir)
        x = _resample(waveform, sample_rate, card["sample_rate"])
        spec, panels, card = explain(run_dir, x, method, layer, target, output)
        title, m = panels[0]
        return {"map": np.asarray(m), "spectrogram": np.asarray(spec), "title": title,
                "class": title.rsplit(": ", 1)[-1], "extra": [(t, np.asarray(a)) for t, a in panels[1:]],
                "frame_seconds": len(x) / card["sample_rate"] / max(len(spec), 1),
                "freqs_hz": _bin_frequencies(card, np.asarray(spec).shape[1])}


def _bin_frequencies(card: dict, n_bins: int) -> np.ndarray:
    """Centre frequency (Hz) of each frequency bin of a saliency map: the mel bands of the card's
    feature config, or the linear bins of the display spectrogram of a waveform model."""
    from .model_io import feature_config_of

    fcfg = feature_config_of(card)
    if card["input"] == "waveform" or not fcfg.n_mels:
        return np.linspace(0.0, card["sample_rate"] / 2, n_bins)
    from .features.frontend import mel_matrix

    fb = mel_matrix(fcfg)  # (fft bins, mels)
    freqs = np.linspace(0.0, fcfg.sample_rate / 2, fb.shape[0])
    return freqs[fb.argmax(axis=0)][:n_bins]


def load(path) -> Model:
    """A run folder (model.json), a system folder (e.g. a two-stage study: both ensembles and their
    fusion) or an export written by `tf-scenes export`."""
    from .export_cli import family_export

    path = Path(path)
    if (path / "assets.extra" / "metadata.json").is_file() and not (path / "model.json").is_file():
        import tensorflow as tf

        from .export import read_export_metadata

        meta, labels = read_export_metadata(path)
        try:
            fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        except (OSError, KeyError, ValueError) as e:
            raise TFScenesError(f"{path}: cannot load the SavedModel's serving signature: {e}") from e
        runs = [Path(r) for r in meta.get("runs") or [] if (Path(r) / "model.json").is_file()]
        return Model(lambda x: {k: v.numpy() for k, v in fn(waveform=tf.constant(x)).items()}, labels,
                     meta["input"]["sample_rate"], runs, path, meta.get("frame_seconds"),
                     meta["input"].get("min_samples", 1))
    spec = family_export(path)
    runs = [path] if (path / "model.json").is_file() else [Path(r) for r in spec.metadata.get("runs", [])]
    model = spec.model

    def predict(x):
        out = model(x, training=False)
        return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else \
            {next(iter(spec.labels)): np.asarray(out)}

    return Model(predict, dict(spec.labels), spec.sample_rate, runs, path, spec.metadata.get("frame_seconds"),
                 spec.min_samples or 1)


def list_models() -> list[str]:
    """The registered model builders (every family's)."""
    from . import registry

    return registry.list_models()


def build(name: str, **config):
    """A registered model; ``config`` replaces fields of its family's paper configuration
    (e.g. ``build("dcasenet_v3", width=0.25)``)."""
    from . import families, registry

    family = families.of_builder(name)
    cfg = family.default_config(name)
    try:
        cfg = dataclasses.replace(cfg, **config)
    except TypeError as e:
        fields = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise TFScenesError(f"{name}: {e}; config fields: {fields}") from None
    return registry.build(name, cfg)


def features(name, waveform, sample_rate: int) -> np.ndarray:
    """Features of a named feature config (tf_scenes.features.FEATURE_CONFIGS) for one waveform,
    resampled to the config's rate first."""
    from .features import features_of

    return features_of(name, waveform, sample_rate)
