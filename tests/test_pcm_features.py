"""tf_scenes.pipelines.pcm_features: PCM bytes decoded inside the XLA front-end (the feature cache's XLA path
for plain WAV files) gives exactly the features of the per-clip tf.data pipeline."""

import numpy as np
import pytest
import soundfile as sf

from tf_scenes.errors import AudioError
from tf_scenes.features import get_feature_config

tf = pytest.importorskip("tensorflow")

from tf_scenes.pipelines import cache as pcache  # noqa: E402
from tf_scenes.pipelines import pcm_features as pf  # noqa: E402
from tf_scenes.pipelines.audio import probe_audio  # noqa: E402


def _write(path, seconds, sr, subtype, seed, channels=1):
    rng = np.random.default_rng(seed)
    x = (0.5 * rng.standard_normal((int(seconds * sr), channels))).clip(-1.0, 0.999)
    sf.write(path, x[:, 0] if channels == 1 else x, sr, subtype=subtype)
    return path


def _per_clip_xla(sources, cfg, n):
    """The tf.data pipeline with the per-clip XLA front-end (what the cache used before)."""
    return np.concatenate([b.numpy() for b in pcache.feature_dataset(sources, cfg, num_samples=n, batch_size=2,
                                                                       jit_compile=True)])


def _fused(sources, cfg, n, batch_size=2):
    parts = {}
    for rows, feats in pf.pcm_feature_batches(sources, cfg, num_samples=n, batch_size=batch_size):
        parts[rows.start] = feats
    return np.concatenate([parts[k] for k in sorted(parts)])


@pytest.mark.parametrize("subtype, bits", [("PCM_16", 16), ("PCM_24", 24), ("PCM_32", 32)])
def test_pcm_to_float_is_libsndfile_exactly(tmp_path, subtype, bits):
    top = 2 ** (bits - 1)
    ints = np.array([0, 1, -1, 2, top - 1, -top, top // 3, -(top // 5)], np.int64)
    width = bits // 8
    raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    got = pf.pcm_to_float(tf.constant(np.frombuffer(raw, np.uint8)[None]), f"pcm{bits}").numpy()[0]
    np.testing.assert_array_equal(got, (ints / top).astype(np.float32))  # int / 2^(bits-1), float32 rounding
    # and a real file agrees with soundfile
    x = _write(tmp_path / "a.wav", 0.05, 8000, subtype, seed=bits)
    (src,) = probe_audio([x])
    buf = pf._read_batch([src], src.frames, width)
    np.testing.assert_array_equal(pf.pcm_to_float(tf.constant(buf), src.encoding).numpy()[0],
                                  sf.read(x, dtype="float32")[0])


def test_two_stage_features_identical_to_the_per_clip_xla_pipeline(tmp_path):
    """The full two-stage config (10 s, zero-padded): a longer file is cut, shorter ones padded;
    3 files in batches of 2 (a full and a partial batch)."""
    cfg = get_feature_config("two_stage")
    paths = [_write(tmp_path / f"c{i}.wav", s, 44100, "PCM_24", seed=i) for i, s in enumerate((10.5, 3.0, 7.2))]
    sources = probe_audio(paths)
    assert pf.supported(sources, cfg)
    ref = _per_clip_xla(sources, cfg, cfg.clip_samples)
    got = _fused(sources, cfg, cfg.clip_samples)
    assert got.shape == (3, 423, 128, 3)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name, subtype", [("two_stage", "PCM_16"), ("weak_sed", "PCM_32"), ("weak_sed", "PCM_24")])
def test_short_configs_identical_for_every_encoding(tmp_path, name, subtype):
    cfg = get_feature_config(name)
    cfg = cfg.replace(clip_samples=cfg.sample_rate)  # 1 s: a cheaper compilation, the same program
    # 3 batches of 2, 2, 1: the third reuses the first's buffer, and its short file must be padded
    # with zeros there, not with the long first file's samples
    lengths = (1.2, 1.0, 0.9, 1.3, 0.4)
    paths = [_write(tmp_path / f"c{i}.wav", s, cfg.sample_rate, subtype, seed=i) for i, s in enumerate(lengths)]
    sources = probe_audio(paths)
    np.testing.assert_array_equal(_fused(sources, cfg, cfg.clip_samples, batch_size=2),
                                  _per_clip_xla(sources, cfg, cfg.clip_samples))


def test_what_is_supported(tmp_path):
    two = get_feature_config("two_stage")
    mono = probe_audio([_write(tmp_path / "m.wav", 0.1, 44100, "PCM_24", 0)])
    assert pf.supported(mono, two) and not pf.supported(mono, "weak_sed")  # weak_sed: 32 kHz
    stereo = probe_audio([_write(tmp_path / "s.wav", 0.1, 44100, "PCM_24", 0, channels=2)])
    other_rate = probe_audio([_write(tmp_path / "r.wav", 0.1, 48000, "PCM_24", 0)])
    floats = probe_audio([_write(tmp_path / "f.wav", 0.1, 44100, "FLOAT", 0)])
    mixed = probe_audio([tmp_path / "m.wav", _write(tmp_path / "p16.wav", 0.1, 44100, "PCM_16", 0)])
    for sources in (stereo, other_rate, floats, mixed, []):
        assert not pf.supported(sources, two)
    # front-ends whose batched program may sum in another order keep the per-clip pipeline
    assert pf.config_supported("two_stage") and pf.config_supported("weak_sed")
    assert not pf.config_supported("dcasenet") and not pf.config_supported("raw")
    with pytest.raises(ValueError, match="'dcasenet'"):
        next(pf.pcm_feature_batches(mono, "dcasenet", num_samples=100))


def test_cache_xla_path_uses_it_and_a_changed_file_is_an_audio_error(tmp_path, monkeypatch):
    cfg = get_feature_config("two_stage").replace(clip_samples=44100)
    (tmp_path / "a").mkdir()
    paths = [_write(tmp_path / "a" / f"c{i}.wav", 1.0, 44100, "PCM_24", seed=i) for i in range(3)]
    calls = []
    real = pf.pcm_feature_batches
    monkeypatch.setattr(pf, "pcm_feature_batches", lambda *a, **k: calls.append(1) or real(*a, **k))
    xla = pcache.cached_features(paths, cfg, tmp_path / "xla", jit_compile=True, batch_size=2, progress=False)
    assert calls == [1]
    np.testing.assert_array_equal(xla, _per_clip_xla(probe_audio(paths), cfg, cfg.clip_samples))
    graph = pcache.cached_features(paths, cfg, tmp_path / "graph", jit_compile=False, batch_size=2, progress=False)
    assert calls == [1]  # the graph front-end keeps the tf.data pipeline
    np.testing.assert_allclose(graph, xla, rtol=0, atol=1e-6)

    sources = probe_audio(paths)
    with open(paths[1], "r+b") as f:  # cut after probing: the samples are no longer there
        f.truncate(sources[1].data_offset + 100)
    with pytest.raises(AudioError, match="c1.wav.*file changed since it was probed"):
        list(real(sources, cfg, num_samples=cfg.clip_samples, batch_size=2))
