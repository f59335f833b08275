"""The TensorFlow feature front-end against the papers' reference recipes (librosa / scipy / numpy).

Parity tolerance: max abs difference <= 1e-3 after each feature config's scaling (float32).
"""

import re

import numpy as np
import pytest

from tf_scenes.errors import ConfigError
from tf_scenes.features import (FEATURE_CONFIGS, FeatureConfig, get_feature_config, n_frames, output_shape,
                                samples_for_seconds)
from tf_scenes.features.filters import mel_filterbank, padded_window, window

tf = pytest.importorskip("tensorflow")


def _audio(sr: int, n: int, seed: int = 0) -> np.ndarray:
    """Noise plus two chirps (energy spread over the whole band, no silent mel bands)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = (0.05 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * (100 * t + 400 * t ** 2))
         + 0.2 * np.sin(2 * np.pi * (0.15 * sr * t - 100 * t ** 2)))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def two_stage_clip():
    return _audio(44100, 441_000, seed=1)


# ---------------------------------------------------------------------------------------- configs

def test_importing_configs_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, tf_scenes.features as f; f.get_feature_config('two_stage'); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_named_configs_and_shapes():
    assert set(FEATURE_CONFIGS) == {"two_stage", "dcasenet", "weak_sed", "raw"}
    assert output_shape(get_feature_config("two_stage"), 441_000) == (423, 128, 3)
    # two_stage keeps the first 441,000 samples whatever the input length
    assert output_shape(get_feature_config("two_stage"), 500_000) == (423, 128, 3)
    dc = get_feature_config("dcasenet")
    assert n_frames(dc, 24000 * 60) == 3000  # 1 + (1,440,000 - 1) // 480
    assert samples_for_seconds(dc, 5.0) == 120_001
    assert n_frames(dc, samples_for_seconds(dc, 5.0)) == 251
    assert n_frames(dc, 120_000) == 250  # documented: the crop is cut after pre-emphasis
    assert output_shape(get_feature_config("weak_sed"), 320_000) == (311, 64, 1)
    assert output_shape(get_feature_config("raw"), 80_000) == (3, 32_000, 1)


def test_config_validation_and_lookup():
    with pytest.raises(ConfigError, match="did you mean 'two_stage'"):
        get_feature_config("two_stag")
    with pytest.raises(ConfigError, match="power"):
        FeatureConfig(power=3)
    with pytest.raises(ConfigError, match="fmax"):
        FeatureConfig(sample_rate=16000, fmax=22050.0)
    with pytest.raises(ConfigError, match="unknown config key"):
        get_feature_config({"n_mel": 64})
    cfg = get_feature_config({"name": "small", "n_mels": 40, "sample_rate": 16000, "log_offset": 1e-6})
    assert cfg.n_mels == 40 and get_feature_config(cfg) is cfg
    with pytest.raises(ConfigError, match="too short"):
        n_frames(get_feature_config("weak_sed").replace(clip_samples=None), 1000)
    with pytest.raises(ConfigError, match="too short"):  # reflect padding needs > n_fft // 2 samples
        n_frames(get_feature_config("dcasenet"), 1000)


# ------------------------------------------------------------------------------- filters, windows

@pytest.mark.parametrize("htk,norm,sr,n_fft,n_mels,fmin,fmax", [
    (True, None, 44100, 2048, 128, 0.0, 22050.0),     # two_stage
    (True, None, 24000, 2048, 128, 0.0, 12000.0),     # dcasenet
    (False, "slaney", 32000, 2048, 64, 50.0, 16000.0),  # weak_sed (librosa defaults)
    (False, None, 16000, 512, 40, 20.0, 7600.0),
    (True, "slaney", 22050, 1024, 80, 0.0, None),
])
def test_mel_filterbank_matches_librosa(htk, norm, sr, n_fft, n_mels, fmin, fmax):
    import librosa

    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
                              dtype=np.float64)
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk=htk, norm=norm)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_windows_match_scipy_and_numpy():
    from scipy.signal import get_window

    for name in ("hann", "hamming"):
        for n in (960, 2048, 7):
            np.testing.assert_allclose(window(name, n, periodic=True), get_window(name, n, fftbins=True), atol=1e-12)
            np.testing.assert_allclose(window(name, n, periodic=False), get_window(name, n, fftbins=False), atol=1e-12)
    np.testing.assert_allclose(window("hamming", 2048, periodic=False), np.hamming(2048), atol=1e-12)
    # a 960 window centred in 2048 (librosa.util.pad_center: left pad 544)
    w = padded_window("hamming", 960, 2048)
    assert np.all(w[:544] == 0) and np.all(w[544 + 960:] == 0)
    np.testing.assert_allclose(w[544:1504], get_window("hamming", 960))


# -------------------------------------------------------------------------- parity with references

def test_two_stage_matches_reference(two_stage_clip):
    from tf_scenes.features import extract
    from tf_scenes.features.config import reference_recipe

    ours = extract("two_stage", two_stage_clip)
    ref = reference_recipe("two_stage")(two_stage_clip)
    assert ours.shape == ref.shape == (423, 128, 3)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-3
    # min-max happens before the deltas: the static channel spans [0, 1] over the untrimmed 431 frames
    assert ours[..., 0].min() >= 0.0 and ours[..., 0].max() <= 1.0


def test_two_stage_hand_computed_delta():
    from tf_scenes.features.frontend import deltas
    from tf_scenes.two_stage.features import numpy_deltas

    x = np.arange(8, dtype=np.float32) ** 2  # x[t] = t^2 -> d[t] = sum n (2tn*2)/10 = 2t
    d = deltas(tf.constant(x[None, :, None]), width=2, padding=False).numpy()[0, :, 0]
    np.testing.assert_allclose(d, [4.0, 6.0, 8.0, 10.0])  # t = 2..5
    np.testing.assert_allclose(numpy_deltas(x), d)


def test_padded_deltas_match_librosa_nearest():
    import librosa

    x = np.random.default_rng(3).standard_normal((1, 50, 6)).astype(np.float32)
    from tf_scenes.features.frontend import deltas

    ours = deltas(tf.constant(x), width=2, padding=True).numpy()[0]
    ref = librosa.feature.delta(x[0].T, width=5, order=1, mode="nearest").T
    assert ours.shape == (50, 6)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_dcasenet_matches_reference_and_frame_counts():
    from tf_scenes.features import extract
    from tf_scenes.features.config import reference_recipe

    cfg = get_feature_config("dcasenet")
    x = _audio(24000, samples_for_seconds(cfg, 5.0), seed=2)
    ours = extract(cfg, x)
    ref = reference_recipe("dcasenet")(x)
    assert ours.shape == ref.shape == (251, 128, 1)
    assert np.abs(ours - ref).max() <= 1e-3
    # standardised per band over time (unbiased std)
    np.testing.assert_allclose(ours.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(ours.std(axis=0, ddof=1), 1.0, atol=1e-3)
    long = extract(cfg, _audio(24000, 24000 * 60, seed=4))
    assert long.shape == (3000, 128, 1)


def test_weak_sed_matches_reference():
    from tf_scenes.features import extract
    from tf_scenes.features.config import reference_recipe

    x = _audio(32000, 320_000, seed=5)
    ours = extract("weak_sed", x)
    ref = reference_recipe("weak_sed")(x)
    assert ours.shape == ref.shape == (311, 64, 1)
    assert np.abs(ours - ref).max() <= 1e-3


def test_raw_windows():
    from tf_scenes.features import extract
    from tf_scenes.features.config import reference_recipe

    x = _audio(16000, 80_000, seed=6) + 0.5  # a DC offset that mean normalisation removes
    ours = extract("raw", x)
    assert ours.shape == (3, 32_000, 1)
    np.testing.assert_allclose(ours.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(ours, reference_recipe("raw")(x), atol=1e-5)
    # window k starts at k * 1.5 s: window 1's pre-emphasised samples are the clip's from 24000 on
    pe = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    seg = pe[24_000:56_000]
    np.testing.assert_allclose(ours[1, :, 0], seg - seg.mean(), atol=1e-5)
    # shorter clips are zero-padded to 5 s (clip_samples), longer ones trimmed
    assert extract("raw", x[:40_000]).shape == (3, 32_000, 1)


# ----------------------------------------------------------------------- per-example, batch, Keras

@pytest.mark.parametrize("name,n", [("two_stage", 441_000), ("dcasenet", 48_001), ("weak_sed", 64_000)])
def test_batch_independence(name, n):
    from tf_scenes.features import extract

    # weak_sed: drop clip_samples to test on 2 s; two_stage keeps its 10 s (min-max over the clip)
    cfg = name if name == "two_stage" else get_feature_config(name).replace(clip_samples=None)
    quiet = 0.01 * _audio(get_feature_config(name).sample_rate, n, seed=7)
    loud = 50.0 * _audio(get_feature_config(name).sample_rate, n, seed=8)
    alone = extract(cfg, quiet)
    batched = extract(cfg, np.stack([loud, quiet, loud]))
    np.testing.assert_allclose(batched[1], alone, atol=1e-5)
    assert not np.allclose(batched[0], alone, atol=1e-3)


def test_feature_extractor_in_keras_model_saves_and_reloads(tmp_path):
    import keras

    from tf_scenes.features import FeatureExtractor, extract

    inp = keras.Input(shape=(320_000,), name="waveform")
    feats = FeatureExtractor("weak_sed", name="logmel")(inp)
    assert tuple(feats.shape) == (None, 311, 64, 1)
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(feats))
    model = keras.Model(inp, {"feats": feats, "out": out})
    x = np.stack([_audio(32000, 320_000, seed=9), _audio(32000, 320_000, seed=10)])
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y["feats"], extract("weak_sed", x), atol=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("logmel").feature_config == get_feature_config("weak_sed")
    y2 = loaded.predict(x, verbose=0)
    np.testing.assert_array_equal(y2["feats"], y["feats"])
    np.testing.assert_array_equal(y2["out"], y["out"])


def test_tf_features_in_tf_data_equals_eager():
    from tf_scenes.features import extract, tf_features

    cfg = get_feature_config("dcasenet")
    x = np.stack([_audio(24000, 24_001, seed=s) for s in (11, 12, 13)])
    ds = tf.data.Dataset.from_tensor_slices(x).map(lambda w: tf_features(cfg, w)).batch(3)
    got = next(iter(ds)).numpy()
    assert got.shape == (3, 51, 128, 1)
    np.testing.assert_allclose(got, extract(cfg, x), atol=1e-5)


def test_band_normalization_layer():
    import keras

    from tf_scenes.features import band_normalization, band_statistics

    rng = np.random.default_rng(14)
    feats = (rng.standard_normal((20, 31, 8, 1)) * np.arange(1, 9)[:, None] + np.arange(8)[:, None] * 3)
    feats = feats.astype(np.float32)
    mean, std = band_statistics(feats, batch_size=7)
    flat = feats.transpose(0, 1, 2, 3).reshape(-1, 8, 1)
    np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, flat.std(axis=0), rtol=1e-5)
    layer = band_normalization(mean, std)
    z = np.asarray(layer(feats))
    np.testing.assert_allclose(z.reshape(-1, 8, 1).mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.reshape(-1, 8, 1).std(axis=0), 1.0, atol=1e-4)
    clone = keras.layers.Normalization.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(clone(feats)), z, atol=1e-6)


# ------------------------------------------------------------------------------ extreme amplitudes

def test_features_stay_finite_up_to_the_amplitude_limit():
    """The worst case of the named configs (a Nyquist tone: all power in one FFT bin) at the
    accepted peak MAX_ABS_SAMPLE gives finite features; at 1e17 the float32 power spectrum of the
    two-stage / DcaseNet front-ends overflows (why the readers reject such samples)."""
    from tf_scenes.features import MAX_ABS_SAMPLE, extract, tf_features

    for name in FEATURE_CONFIGS:
        cfg = get_feature_config(name)
        n = cfg.clip_samples or 48_000
        nyquist = np.where(np.arange(n) % 2, 1.0, -1.0).astype(np.float32)
        assert np.isfinite(extract(cfg, nyquist * np.float32(MAX_ABS_SAMPLE))).all(), name
        if name in ("two_stage", "dcasenet"):
            assert not np.isfinite(tf_features(cfg, tf.constant(nyquist * np.float32(1e17))).numpy()).all(), name


@pytest.mark.parametrize("value", [1e30, -2e12])
def test_extract_rejects_samples_beyond_the_limit_naming_them(value):
    from tf_scenes.features import extract

    x = np.zeros((2, 8000), np.float32)
    x[1, 4321] = value
    with pytest.raises(ValueError, match=re.escape(f"waveform has the value {value:.3g} at sample 4321 of example 1, "
                                                   "beyond the front-end's limit of 1e+12 (full scale is 1)")):
        extract("raw", x)
    with pytest.raises(ValueError, match=r"at sample 4321, beyond"):
        extract("two_stage", x[1])
    x[1, 4321] = 1e12  # the limit itself is accepted
    assert np.isfinite(extract("two_stage", x[1])).all()


# --------------------------------------------------------------------------------------------- CLI

def test_cli_features(tmp_path, capsys, caplog):
    from tf_scenes.audio import write_audio
    from tf_scenes.experiments.cli import main
    from tf_scenes.features import extract

    x = _audio(48000, 48000 * 2, seed=15) * 0.5
    wav = tmp_path / "in.wav"
    write_audio(wav, x, 48000, subtype="PCM_24")
    out = tmp_path / "sub" / "f.npy"
    with caplog.at_level("WARNING"):
        assert main(["features", "weak_sed", str(wav), "--out", str(out)]) == 0
    assert "resampling 48000 Hz -> 32000 Hz" in caplog.text
    assert "(311, 64, 1)" in capsys.readouterr().out
    feats = np.load(out)
    from tf_scenes.audio import read_audio

    np.testing.assert_allclose(feats, extract("weak_sed", read_audio(wav, sr=32000)[0]), atol=1e-6)
    assert main(["features", "dcasenet", str(wav), "--out", str(out), "--set", "n_mels=64"]) == 0
    assert np.load(out).shape == (1 + (48_000 - 1) // 480, 64, 1)  # 2 s at 24 kHz, pre-emphasis N-1
    # errors: unknown config, missing file, wrong --out suffix -> exit code 2 and a clear message
    assert main(["features", "two_stag", str(wav), "--out", str(out)]) == 2
    assert "did you mean 'two_stage'" in capsys.readouterr().err
    assert main(["features", "raw", str(tmp_path / "nope.wav"), "--out", str(out)]) == 2
    assert "nope.wav: file not found" in capsys.readouterr().err
    assert main(["features", "raw", str(wav), "--out", str(tmp_path / "f.txt")]) == 2
    assert not (tmp_path / "f.txt").exists()
