"""Audio decoding in tf.data and the feature cache."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from tf_scenes.audio import read_audio, write_audio
from tf_scenes.errors import AudioError, ConfigError

tf = pytest.importorskip("tensorflow")

from tf_scenes.pipelines import audio as paudio  # noqa: E402
from tf_scenes.pipelines import cache as pcache  # noqa: E402


def _write(path, seconds, sr=44100, subtype="PCM_24", seed=0, channels=1):
    rng = np.random.default_rng(seed)
    x = (0.3 * rng.standard_normal((int(seconds * sr), channels))).clip(-0.99, 0.99).astype(np.float32)
    write_audio(path, x[:, 0] if channels == 1 else x, sr, subtype=subtype)
    return path


@pytest.fixture
def clips(tmp_path):
    d = tmp_path / "audio"
    return [_write(d / f"c{i}.wav", 2.0 + 0.5 * i, seed=i) for i in range(3)]


# -------------------------------------------------------------------------------------- decoding

def test_decoding_routes_match_soundfile(tmp_path):
    specs = [("PCM_16", 44100, 1), ("PCM_24", 44100, 1), ("PCM_24", 44100, 2), ("PCM_32", 44100, 1),
             ("FLOAT", 44100, 1), ("PCM_24", 48000, 1)]
    paths = [_write(tmp_path / f"f{i}.wav", 0.5, sr, sub, seed=i, channels=ch) for i, (sub, sr, ch) in enumerate(specs)]
    sources = paudio.probe_audio(paths)
    assert [s.encoding for s in sources] == ["pcm16", "pcm24", "pcm24", "pcm32", "float32", "pcm24"]
    got = [w.numpy() for w in paudio.decode_dataset(sources, 44100)]
    for p, w in zip(paths, got):
        ref, _ = read_audio(p, sr=44100)  # soundfile + mono average + soxr
        assert w.dtype == np.float32 and w.shape == ref.shape
        np.testing.assert_array_equal(w, ref)
    # 24-bit in-graph decoding is exact: int / 2^23
    ints = sf.read(str(paths[1]), dtype="int32")[0] // 256
    np.testing.assert_array_equal(got[1], ints.astype(np.float32) / 2 ** 23)


def test_length_policy(tmp_path):
    p = _write(tmp_path / "short.wav", 0.5, subtype="PCM_16")
    (w,) = list(paudio.decode_dataset([p], 44100, num_samples=30000))
    assert w.shape == (30000,)
    ref, _ = read_audio(p, sr=44100)
    np.testing.assert_array_equal(w.numpy()[:22050], ref)
    assert np.all(w.numpy()[22050:] == 0)
    (w,) = list(paudio.decode_dataset([p], 44100, num_samples=1000))
    np.testing.assert_array_equal(w.numpy(), ref[:1000])
    with pytest.raises(AudioError, match="short.wav.*too short"):
        paudio.decode_dataset([p], 44100, num_samples=30000, short="error")
    np.testing.assert_array_equal(paudio.load_waveform(p, 44100, 30000), np.pad(ref, (0, 30000 - 22050)))


def test_bad_files_raise_audio_errors_naming_the_file(tmp_path, clips):
    trunc = tmp_path / "trunc.wav"
    data = clips[0].read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="trunc.wav.*truncated"):
        pcache.cached_features([clips[1], trunc], "two_stage", tmp_path / "cache", progress=False)
    with pytest.raises(AudioError, match="missing.wav"):
        pcache.cached_features([tmp_path / "missing.wav"], "two_stage", tmp_path / "cache", progress=False)
    nan = tmp_path / "nan.wav"
    x = np.zeros(44100, np.float32)
    x[100] = np.nan
    sf.write(str(nan), x, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*non-finite"):  # raised inside tf.data, re-raised as is
        pcache.cached_features([clips[0], nan], "two_stage", tmp_path / "cache", progress=False, batch_size=1)
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing half-written under a final name


# ----------------------------------------------------------------------------------------- cache

def test_cache_computes_once_and_equals_extract(tmp_path, clips, monkeypatch):
    from tf_scenes.features import extract

    cache = tmp_path / "cache"
    feats = pcache.cached_features(clips, "two_stage", cache, batch_size=2, progress=False)
    assert isinstance(feats, np.memmap) and feats.shape == (3, 423, 128, 3) and feats.dtype == np.float32
    for i, p in enumerate(clips):
        ref = extract("two_stage", read_audio(p, sr=44100)[0])
        np.testing.assert_allclose(feats[i], ref, atol=1e-5)
    npy = next(cache.glob("two_stage-*.npy"))
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert meta["shape"] == [3, 423, 128, 3] and meta["config"]["name"] == "two_stage"
    assert [f["path"] for f in meta["files"]] == [str(p.resolve()) for p in clips]

    def boom(*a, **k):
        raise AssertionError("recomputed a valid cache")

    monkeypatch.setattr(pcache, "_compute", boom)
    again = pcache.cached_features(clips, "two_stage", cache, progress=False)
    np.testing.assert_array_equal(again, feats)


def test_float16_cache_halves_bytes_within_half_a_step(tmp_path, clips, monkeypatch):
    """The float16 storage: its own cache (the float32 one is neither replaced nor rekeyed), half the
    array bytes, every value the float32 value rounded to float16: on [0, 1]-scaled two-stage
    features at most 2**-12 (half a float16 step just below 1) from it."""
    f32 = pcache.cached_features(clips, "two_stage", tmp_path / "c", batch_size=2, progress=False)
    key32 = pcache.cache_key(clips, "two_stage")
    f16 = pcache.cached_features(clips, "two_stage", tmp_path / "c", batch_size=2, progress=False, dtype="float16")
    assert isinstance(f16, np.memmap) and f16.dtype == np.float16 and f16.shape == f32.shape
    npys = {p.name: p for p in (tmp_path / "c").glob("two_stage-*.npy")}
    assert len(npys) == 2 and f"two_stage-{key32[:24]}.npy" in npys  # float32 keeps its historical key
    n16, n32 = (np.load(p, mmap_mode="r") for p in sorted(npys.values(), key=lambda p: p.stat().st_size))
    assert n16.dtype == np.float16 and n32.dtype == np.float32
    assert n16.nbytes * 2 == n32.nbytes == f32.size * 4
    err = np.abs(f16.astype(np.float32) - f32)
    assert float(np.abs(f32).max()) <= 1.0  # log-mel in [0, 1], its deltas in [-1, 1]
    assert 0.0 < float(err.max()) <= 2.0 ** -12
    np.testing.assert_array_equal(f16, f32.astype(np.float16))  # round to nearest, nothing else
    meta = json.loads(next(p for p in npys.values() if p.stat().st_size < n32.nbytes).with_suffix(".json").read_text())
    assert meta["dtype"] == "float16"

    def boom(*a, **k):
        raise AssertionError("recomputed a valid cache")

    monkeypatch.setattr(pcache, "_compute", boom)  # both are hits now, each of its own dtype
    hit = pcache.cached_features(clips, "two_stage", tmp_path / "c", progress=False, dtype="float16")
    assert hit.dtype == np.float16
    assert pcache.cached_features(clips, "two_stage", tmp_path / "c", progress=False).dtype == np.float32


def test_float16_cache_refuses_bad_dtype_and_overflow(tmp_path, clips):
    with pytest.raises(ConfigError, match="dtype must be one of"):
        pcache.cached_features(clips, "two_stage", tmp_path / "c", progress=False, dtype="int8")
    batch = np.array([[1.0, 2.0], [7e4, 1.0]], np.float32)  # row 1 is beyond float16's 65504
    with np.errstate(over="ignore"):
        half = batch.astype(np.float16)
    with pytest.raises(AudioError, match=r"clip1\.wav.*beyond float16's range"):
        pcache._check_half(half, batch, 0, lambda i: f"clip{i}.wav")
    pcache._check_half(batch[:1].astype(np.float16), batch[:1], 0, lambda i: f"clip{i}.wav")  # in range: fine


def test_cache_key_changes_with_config_files_and_contents(tmp_path, clips):
    from tf_scenes.features import get_feature_config

    cfg = get_feature_config("two_stage")
    k = pcache.cache_key(clips, cfg)
    assert pcache.cache_key(clips, cfg) == k
    assert pcache.cache_key(clips, cfg.replace(n_mels=64)) != k
    assert pcache.cache_key(clips, cfg.replace(log_offset=1e-6)) != k
    assert pcache.cache_key(clips[::-1], cfg) != k
    assert pcache.cache_key(clips[:2], cfg) != k
    assert pcache.cache_key(clips, cfg, num_samples=1000) != k
    st = clips[0].stat()
    os.utime(clips[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert pcache.cache_key(clips, cfg) != k


def test_truncated_or_mismatched_cache_is_rebuilt(tmp_path, clips, caplog):
    cache = tmp_path / "cache"
    small = {"name": "small", "sample_rate": 44100, "clip_samples": 44100, "n_mels": 32, "log_offset": 1e-8}
    first = np.array(pcache.cached_features(clips, small, cache, progress=False))
    npy = next(cache.glob("small-*.npy"))
    data = npy.read_bytes()
    npy.write_bytes(data[: len(data) - 1000])  # truncated array
    with caplog.at_level("WARNING"):
        rebuilt = pcache.cached_features(clips, small, cache, progress=False)
    assert "unusable" in caplog.text
    np.testing.assert_allclose(rebuilt, first, atol=1e-6)
    assert npy.stat().st_size == len(data)
    # a sidecar that describes another cache is not trusted either
    meta = npy.with_suffix(".json")
    m = json.loads(meta.read_text())
    m["key"] = "0" * 64
    meta.write_text(json.dumps(m))
    caplog.clear()
    with caplog.at_level("WARNING"):
        pcache.cached_features(clips, small, cache, progress=False)
    assert "another cache" in caplog.text
    # an array without its sidecar (crash between the two writes) is rebuilt
    meta.unlink()
    pcache.cached_features(clips, small, cache, progress=False)
    assert meta.exists()


def test_variable_lengths_need_num_samples(tmp_path, clips):
    cfg = {"name": "var", "sample_rate": 44100, "n_mels": 16, "log_offset": 1e-8}  # no clip_samples
    with pytest.raises(ConfigError, match="num_samples"):
        pcache.cached_features(clips, cfg, tmp_path / "cache", progress=False)
    feats = pcache.cached_features(clips, cfg, tmp_path / "cache", progress=False, num_samples=44100)
    assert feats.shape == (3, 44, 16, 1)
    # resampling to another front-end rate: 22,050 Hz -> 1 + 22050 // 1024 frames
    feats = pcache.cached_features(clips, {**cfg, "fmax": 11025.0}, tmp_path / "cache", progress=False,
                                   num_samples=22050, sample_rate=22050)
    assert feats.shape == (3, 22, 16, 1)
    # the raw-waveform config: 2-3 s clips resampled to 16 kHz, zero-padded to 5 s, 3 windows
    feats = pcache.cached_features(clips[:2], "raw", tmp_path / "cache", progress=False)
    assert feats.shape == (2, 3, 32_000, 1)
    np.testing.assert_allclose(feats.mean(axis=2), 0.0, atol=1e-5)


def test_two_stage_cache_dtype_setting(monkeypatch):
    """`data.cache_dtype` of the two-stage study: float32 by default, float16 on request, anything
    else refused when the config is loaded; a float16 run's config (its reuse key) says so, a
    float32 run's config is unchanged."""
    from types import SimpleNamespace

    from tf_scenes.experiments.reproduce import load_study_config
    from tf_scenes.experiments.two_stage import plan

    cfg32 = load_study_config("two_stage", "paper")
    cfg16 = load_study_config("two_stage", "paper", overrides=["data.cache_dtype=float16"])
    assert (cfg32.data.cache_dtype, cfg16.data.cache_dtype) == ("float32", "float16")
    with pytest.raises(ConfigError, match="cache_dtype"):
        load_study_config("two_stage", "paper", overrides=["data.cache_dtype=int8"])
    monkeypatch.setattr(plan, "with_augmentations", lambda data, kinds: SimpleNamespace(records=[]))
    data = SimpleNamespace(label=SimpleNamespace(text="data"))
    runs32, runs16 = plan.plan(cfg32, data), plan.plan(cfg16, data)
    assert len(runs32) == len(runs16) == len(cfg32.models)
    assert all("cache_dtype" not in r.config for r in runs32)
    assert all(r.config["cache_dtype"] == "float16" for r in runs16)
