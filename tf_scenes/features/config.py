"""Feature parameters as frozen dataclasses, one named config per paper recipe.

Layout everywhere: ``(batch, frames, mel_bands, channels)``, time-major, float32. One example
without the batch axis is ``(frames, mel_bands, channels)``. The ``"raw"`` config produces
``(batch, n_windows, window_samples, 1)``: windows play the role of frames.

This module is numpy-free pure Python so configs can be read, compared and hashed without
importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Literal, Optional

from ..errors import ConfigError

# The largest |sample| the front-end accepts (1 = full scale). The float32 power spectrum of a
# frame overflows when (peak * sum(window))^2 > 3.4e38, i.e. from a peak of 1.8e19 / sum(window).
# Measured (bisection over the peak of a DC, Nyquist and white-noise clip): the features first
# become Inf / NaN at a peak of 1.8e16 for the 2048-point log-mel presets of the two-stage and
# DcaseNet papers (a Nyquist tone: |X| = 1024 peak), 1.1e18 for the weak-SED preset and 4.3e34 for
# the raw-waveform one. 1e12 (240 dB above full scale) keeps
# a margin of 10^4 over the measured worst case and stays safe for any STFT of up to 10^7
# samples, while still admitting float files that hold unscaled integer values (int32 counts
# stored as float reach 2.1e9). Such a peak means corrupt or unscaled data: readers reject it.
MAX_ABS_SAMPLE = 1e12


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Every parameter of one feature recipe (waveform -> log-mel [+ deltas] or raw windows).

    Attributes:
      name: label used in cache file names and logs.
      kind: "logmel" (STFT -> mel -> log -> scaling -> deltas) or "raw" (pre-emphasised,
        mean-normalised waveform windows).
      sample_rate: rate (Hz) the waveform must have.
      clip_samples: if set, every waveform is trimmed to its first ``clip_samples`` samples or
        zero-padded at the end to that length before anything else. None: use the length given.
      pre_emphasis: coefficient a of the pre-emphasis filter, or None for none.
      pre_emphasis_mode: "valid": y[n] = x[n+1] - a x[n], length N-1 (DcaseNet code);
        "same": y[0] = x[0], y[n] = x[n] - a x[n-1], length N.
      n_fft: FFT size. win_length: window length (None = n_fft); a shorter window is zero-padded
        and centred inside n_fft as librosa / torch.stft do. hop_length: frame step.
      window: "hann" or "hamming". window_periodic: True for the DFT-even window of
        scipy.signal.get_window(..., fftbins=True) / librosa / torch; False for the symmetric
        np.hamming / np.hanning window.
      center: pad n_fft // 2 samples on both sides (pad_mode) so frame t is centred on t * hop.
      power: 1 magnitude, 2 power.
      stft_scale: "none", or "window_energy": divide the STFT by sqrt(sum(window^2)) as
        scipy.signal.spectrogram(mode="magnitude", scaling="density", fs=1) does.
      n_mels, fmin, fmax (None = sample_rate / 2), mel_scale ("htk" | "slaney"), mel_norm
        (None | "slaney" area normalisation): as librosa.filters.mel(htk=..., norm=...).
      log: "ln" natural log or "none". log_offset: ln(S + offset). log_floor: ln(max(S, floor)).
      scaling: "none"; "minmax_clip": per clip (x - min) / (max - min) over the whole
        frames x mels matrix; "per_band_standardise": per clip and band, (x - mean_t) / std_t
        over time with std floored at std_floor (std_ddof=1: unbiased, as torch.std).
      deltas: 0, or 2 to stack [static, delta, delta-delta] as 3 channels.
      delta_width: regression half-width N; d[t] = sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2).
      delta_padding: False: valid frames only (T -> T-2N -> T-4N, static trimmed by 2N on each
        side, the two-stage code); True: edge-replicated frames so the length is kept
        (librosa.feature.delta(mode="nearest") for the first order; the second order is the
        delta of the delta).
      window_seconds, hop_seconds, mean_normalise: windows of the "raw" kind (length, step, and
        whether each window has its mean removed).
    """

    name: str = "custom"
    kind: Literal["logmel", "raw"] = "logmel"
    sample_rate: int = 44100
    clip_samples: Optional[int] = None
    pre_emphasis: Optional[float] = None
    pre_emphasis_mode: Literal["valid", "same"] = "valid"
    n_fft: int = 2048
    win_length: Optional[int] = None
    hop_length: int = 1024
    window: Literal["hann", "hamming"] = "hann"
    window_periodic: bool = True
    center: bool = True
    pad_mode: Literal["reflect", "constant"] = "reflect"
    power: int = 2
    stft_scale: Literal["none", "window_energy"] = "none"
    n_mels: int = 128
    fmin: float = 0.0
    fmax: Optional[float] = None
    mel_scale: Literal["htk", "slaney"] = "htk"
    mel_norm: Optional[Literal["slaney"]] = None
    log: Literal["ln", "none"] = "ln"
    log_offset: float = 0.0
    log_floor: float = 0.0
    scaling: Literal["none", "minmax_clip", "per_band_standardise"] = "none"
    std_floor: float = 1e-3
    std_ddof: int = 1
    deltas: int = 0
    delta_width: int = 2
    delta_padding: bool = False
    window_seconds: float = 2.0
    hop_seconds: float = 1.5
    mean_normalise: bool = True

    def __post_init__(self):
        def bad(msg):
            raise ConfigError(f"feature config {self.name!r}: {msg}")

        if self.sample_rate <= 0:
            bad(f"sample_rate must be > 0, got {self.sample_rate}")
        if self.clip_samples is not None and self.clip_samples <= 0:
            bad(f"clip_samples must be > 0 or None, got {self.clip_samples}")
        if self.pre_emphasis is not None and not 0.0 <= self.pre_emphasis < 1.0:
            bad(f"pre_emphasis must be in [0, 1), got {self.pre_emphasis}")
        if self.kind == "raw":
            if self.raw_window_samples <= 0 or self.raw_hop_samples <= 0:
                bad("window_seconds and hop_seconds must be > 0")
            return
        if self.n_fft <= 0 or self.hop_length <= 0:
            bad("n_fft and hop_length must be > 0")
        if not 0 < self.window_length <= self.n_fft:
            bad(f"win_length must be in 1..n_fft={self.n_fft}, got {self.win_length}")
        if self.power not in (1, 2):
            bad(f"power must be 1 or 2, got {self.power}")
        if self.n_mels <= 0:
            bad(f"n_mels must be > 0, got {self.n_mels}")
        if not 0.0 <= self.fmin < self.mel_fmax <= self.sample_rate / 2:
            bad(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={self.fmin}, fmax={self.mel_fmax}, "
                f"sample_rate={self.sample_rate}")
        if self.log == "ln" and self.log_offset <= 0 and self.log_floor <= 0:
            bad("log='ln' needs log_offset > 0 or log_floor > 0 (log of zero)")
        if self.deltas not in (0, 2):
            bad(f"deltas must be 0 or 2, got {self.deltas}")
        if self.delta_width < 1:
            bad(f"delta_width must be >= 1, got {self.delta_width}")
        if self.std_floor <= 0:
            bad(f"std_floor must be > 0, got {self.std_floor}")

    # Derived values -------------------------------------------------------------------------
    @property
    def window_length(self) -> int:
        return self.n_fft if self.win_length is None else self.win_length

    @property
    def mel_fmax(self) -> float:
        return self.sample_rate / 2 if self.fmax is None else float(self.fmax)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def raw_window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def raw_hop_samples(self) -> int:
        return int(round(self.hop_seconds * self.sample_rate))

    @property
    def channels(self) -> int:
        return 1 if self.kind == "raw" or self.deltas == 0 else 3

    def replace(self, **changes) -> "FeatureConfig":
        return dataclasses.replace(self, **changes)


def n_frames(cfg: FeatureConfig, n_samples: int) -> int:
    """Number of output frames (windows for "raw") for a waveform of `n_samples` samples.

    Raises ConfigError if the waveform is too short to give one frame after delta trimming.
    """
    n = cfg.clip_samples if cfg.clip_samples is not None else int(n_samples)
    if cfg.pre_emphasis is not None and cfg.pre_emphasis_mode == "valid":
        n -= 1
    if cfg.kind == "raw":
        frames = 1 + (n - cfg.raw_window_samples) // cfg.raw_hop_samples if n >= cfg.raw_window_samples else 0
    elif cfg.center and cfg.pad_mode == "reflect" and n <= cfg.n_fft // 2:
        frames = 0  # reflect padding needs more samples than the pad width
    else:
        if cfg.center:
            frames = 1 + n // cfg.hop_length
        else:
            frames = 1 + (n - cfg.n_fft) // cfg.hop_length if n >= cfg.n_fft else 0
        if cfg.deltas and not cfg.delta_padding:
            frames -= 4 * cfg.delta_width
    if frames <= 0:
        raise ConfigError(f"feature config {cfg.name!r}: {n_samples} samples are too short for one frame")
    return frames


def min_input_samples(cfg: FeatureConfig) -> int:
    """The shortest waveform (>= 1 sample) that gives at least one output frame under `cfg`.

    With ``clip_samples`` set every non-empty waveform is padded to that length, so this is 1.
    """
    if cfg.clip_samples is not None:
        n_frames(cfg, cfg.clip_samples)  # the configured length itself must give a frame
        return 1
    lo, hi = 1, 1
    while True:  # n_frames is non-decreasing in the length: double, then bisect
        try:
            n_frames(cfg, hi)
            break
        except ConfigError:
            lo, hi = hi + 1, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            n_frames(cfg, mid)
            hi = mid
        except ConfigError:
            lo = mid + 1
    return hi


def output_shape(cfg: FeatureConfig, n_samples: int) -> tuple[int, int, int]:
    """(frames, mel_bands, channels) of one example; ("raw": (n_windows, window_samples, 1))."""
    width = cfg.raw_window_samples if cfg.kind == "raw" else cfg.n_mels
    return (n_frames(cfg, n_samples), width, cfg.channels)


def samples_for_seconds(cfg: FeatureConfig, seconds: float) -> int:
    """Raw waveform samples that a crop of `seconds` of the *model input* spans.

    DcaseNet's code pre-emphasises the whole clip (length N-1) and then cuts 5 s = 120,000 samples
    of the pre-emphasised signal, which gives 1 + 120000 // 480 = 251 frames: the raw span is
    therefore one sample longer than the crop. For every other config this is seconds * rate.
    """
    n = int(round(seconds * cfg.sample_rate))
    if cfg.pre_emphasis is not None and cfg.pre_emphasis_mode == "valid":
        n += 1
    return n


def feature_configs() -> types.MappingProxyType:
    """The named configs: each family's ``features.FEATURES`` (tf_scenes/<family>/features.py)."""
    import importlib

    from ..families import FAMILIES

    out = {}
    for library, _ in FAMILIES.values():
        try:
            cfg = importlib.import_module(f"{library}.features").FEATURES
        except ModuleNotFoundError as e:  # a family without a feature preset
            if e.name != f"{library}.features":
                raise
            continue
        out[cfg.name] = cfg
    return types.MappingProxyType(out)


def reference_recipe(name: str):
    """The reference recipe of a named config (``reference(waveform, sr) -> features`` in librosa /
    scipy / numpy, from the family's features module): for tests and benchmarks only."""
    import importlib

    from ..families import FAMILIES

    for library, _ in FAMILIES.values():
        try:
            mod = importlib.import_module(f"{library}.features")
        except ModuleNotFoundError:
            continue
        if mod.FEATURES.name == name:
            return mod.reference
    raise ConfigError(f"unknown feature config {name!r}")


def __getattr__(name):
    if name == "FEATURE_CONFIGS":  # read-only view of the named configs (loaded on first use)
        return feature_configs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_feature_config(name) -> FeatureConfig:
    """A named config (:func:`feature_configs`); a FeatureConfig passes through; a dict is loaded
    strictly (unknown keys raise ConfigError)."""
    if isinstance(name, FeatureConfig):
        return name
    if isinstance(name, dict):
        from ..config import from_dict

        return from_dict(FeatureConfig, name, prefix="features")
    known = feature_configs()
    try:
        return known[name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown feature config {name!r}{hint}; known: {', '.join(known)}") from None


def config_to_dict(cfg: FeatureConfig) -> dict:
    return dataclasses.asdict(cfg)
