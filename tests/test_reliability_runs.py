"""Interrupted runs, atomic writes, determinism and unwritable / full output folders.

* a real `tf-scenes reproduce` killed with SIGKILL after its first checkpoint resumes when rerun and
  ends with exactly the metrics of an uninterrupted run (slow);
* a feature cache killed while being written, truncated, or described by another config's sidecar
  is rebuilt, never read; a half-written synthetic dataset folder is regenerated;
* the same seed gives bit-identical synthetic data, feature caches and training batches on CPU;
* commands given an unwritable or full --out fail at once with one clear line.

The guarantees are listed in docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tf_scenes.errors import OutputDirError

REPO = Path(__file__).resolve().parent.parent
TINY_FEATURES = dict(name="tiny", sample_rate=8000, clip_samples=None, n_fft=256, hop_length=128, n_mels=16,
                     fmax=4000.0, log_offset=1e-6)


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                PYTHONHASHSEED="0")


def _cli(capsys, *argv) -> tuple[int, str, str]:
    """Run `tf-scenes ARGV` in this process (the console script's code path)."""
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _clips(folder: Path, n: int = 3, samples: int = 8000, sr: int = 8000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"c{i}.wav"
        sf.write(str(p), (0.2 * rng.standard_normal(samples)).astype(np.float32), sr, subtype="PCM_16")
        paths.append(p)
    return paths


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "a_file"
    f.write_text("not a folder\n")
    return f


def _full_disk(monkeypatch, free_mib: int = 10):
    real = shutil.disk_usage

    def disk_usage(path):
        return real(path)._replace(free=free_mib * 2**20)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


# ===================================================================================== output folders

def test_ensure_writable_dir_messages(tmp_path, a_file, monkeypatch):
    from tf_scenes.io_utils import ensure_writable_dir

    message = f"{a_file / 'sub'}: cannot create output directory: Not a directory"
    with pytest.raises(OutputDirError, match="^" + re.escape(message)):
        ensure_writable_dir(a_file / "sub")
    with pytest.raises(OutputDirError, match="^" + re.escape(f"{a_file}: exists and is not a directory")):
        ensure_writable_dir(a_file)
    assert ensure_writable_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    _full_disk(monkeypatch)
    with pytest.raises(OutputDirError, match=r"only 10 MiB free on this disk, need at least 200 MiB "
                                             r"\(free space or choose another --out\)"):
        ensure_writable_dir(tmp_path / "full")
    assert ensure_writable_dir(tmp_path / "small_needs", min_free_bytes=2**20).is_dir()


@pytest.mark.parametrize("study", ["two_stage", "dcasenet", "weak_sed", "raw_waveform"])
def test_reproduce_with_unwritable_or_full_out_fails_before_any_work(tmp_path, a_file, capsys, monkeypatch, study):
    data, cache = tmp_path / "data", tmp_path / "cache"
    args = ["reproduce", study, "--profile", "tiny", "--set", f"data.synthetic_dir={data}",
            "--cache-dir", str(cache)]
    t0 = time.monotonic()
    code, out, err = _cli(capsys, *args, "--out", a_file / "out")
    assert code == 2 and out == ""
    assert err.startswith(f"tf-scenes reproduce: error: {a_file / 'out'}: cannot create output directory")
    _full_disk(monkeypatch)
    code, out, err = _cli(capsys, *args, "--out", tmp_path / "out")
    assert code == 2
    assert err.startswith(f"tf-scenes reproduce: error: {tmp_path / 'out'}: only 10 MiB free on this disk")
    assert not data.exists() and not cache.exists()  # nothing generated, nothing computed
    assert time.monotonic() - t0 < 60


def test_synth_and_export_with_unwritable_out(tmp_path, a_file, capsys, monkeypatch):
    code, out, err = _cli(capsys, "synth", "tag", "--size", "tiny", "--out", a_file / "data", "--no-progress")
    assert code == 2 and out == ""
    assert err.startswith(f"tf-scenes synth: error: {a_file / 'data' / 'FSDKaggle2019'}: cannot create output "
                          "directory: Not a directory")
    from test_reliability_inputs import _tiny_run_folder

    run = _tiny_run_folder(tmp_path / "run")
    code, out, err = _cli(capsys, "export", run, "--out", a_file / "export")
    assert code == 2 and out == ""
    assert err.startswith(f"tf-scenes export: error: {a_file}: exists and is not a directory")
    _full_disk(monkeypatch)
    code, out, err = _cli(capsys, "export", run, "--out", tmp_path / "export")
    assert code == 2 and err.startswith(f"tf-scenes export: error: {tmp_path}: only 10 MiB free on this disk")
    assert not (tmp_path / "export").exists() and not (tmp_path / "export.partial").exists()


def test_synth_on_a_full_disk_fails_early(tmp_path, monkeypatch):
    from tf_scenes.synth import generate

    _full_disk(monkeypatch, free_mib=1)
    with pytest.raises(OutputDirError, match="MiB free"):
        generate("tag", tmp_path / "data", size="tiny", seed=0, progress=False)


def test_feature_cache_on_a_full_disk_fails_before_computing(tmp_path, monkeypatch):
    from tf_scenes.pipelines.cache import cached_features

    clips = _clips(tmp_path / "audio")
    _full_disk(monkeypatch, free_mib=1)
    message = f"{tmp_path / 'cache'}: only 1 MiB free on this disk, need at least 64 MiB"
    with pytest.raises(OutputDirError, match="^" + re.escape(message)):
        cached_features(clips, TINY_FEATURES, tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").glob("*.npy"))


# ===================================================================================== atomic writes

def test_feature_cache_defects_are_rebuilt_never_read(tmp_path, caplog):
    from tf_scenes.pipelines import cache as pcache

    clips = _clips(tmp_path / "audio")
    cache = tmp_path / "cache"
    first = np.array(pcache.cached_features(clips, TINY_FEATURES, cache, progress=False))
    assert first.shape == (3, 63, 16, 1) and np.isfinite(first).all()
    (npy,) = cache.glob("tiny-*.npy")
    meta = npy.with_suffix(".json")
    size = npy.stat().st_size

    def rebuilt(reason: str):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tf_scenes.pipelines.cache"):
            again = pcache.cached_features(clips, TINY_FEATURES, cache, progress=False)
        (message,) = [r.getMessage() for r in caplog.records]
        assert message.startswith(f"feature cache {npy} is unusable ({reason}") and message.endswith("): rebuilding it")
        np.testing.assert_array_equal(again, first)
        assert npy.stat().st_size == size and json.loads(meta.read_text())["file_bytes"] == size

    # a truncated array (a copy cut short, a crash of a non-atomic writer)
    npy.write_bytes(npy.read_bytes()[: size // 2])
    rebuilt(f"array file holds {size // 2} bytes, sidecar says {size})")
    # an array whose bytes are intact but whose header is garbage
    data = bytearray(npy.read_bytes())
    data[:6] = b"NOTNPY"
    npy.write_bytes(bytes(data))
    rebuilt("This file contains pickled (object) data")  # what np.load says of a non-.npy header
    # a sidecar written for another config / file list (hash mismatch)
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps({**m, "key": "f" * 64}))
    rebuilt("sidecar describes another cache)")
    # the array without its sidecar (killed between the two renames)
    meta.unlink()
    rebuilt(f"[Errno 2] No such file or directory: '{meta}')")
    # a temporary left by a writer killed mid-way is never taken for the cache
    stale = cache / f".{npy.name}.k1ll3d.npy"
    stale.write_bytes(b"\x93NUMPY half")
    npy.unlink()
    meta.unlink()
    np.testing.assert_array_equal(pcache.cached_features(clips, TINY_FEATURES, cache, progress=False), first)
    # another config never reuses this cache: it gets its own key and file
    other = pcache.cached_features(clips, {**TINY_FEATURES, "n_mels": 8}, cache, progress=False)
    assert other.shape == (3, 63, 8, 1) and len(list(cache.glob("tiny-*.npy"))) == 2
    # a rewritten audio file changes the key too
    sf.write(str(clips[0]), np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    st = clips[0].stat()
    os.utime(clips[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = pcache.cached_features(clips, TINY_FEATURES, cache, progress=False)
    assert not np.array_equal(changed[0], first[0]) and np.array_equal(changed[1:], first[1:])


def test_partial_or_damaged_synthetic_folder_is_regenerated_identically(tmp_path, caplog):
    """Same seed, same bytes; a folder left by a killed generator or with a damaged file is rebuilt."""
    from tf_scenes.synth import generate
    from tf_scenes.synth.common import MANIFEST, PARTIAL

    a = generate("tag", tmp_path / "a", size="tiny", seed=0, progress=False)["tag"]
    b = generate("tag", tmp_path / "b", size="tiny", seed=0, progress=False)["tag"]
    ref = _tree_bytes(a)
    assert len(ref) > 50 and _tree_bytes(b) == ref  # determinism: bit-identical on a second run
    # a truncated wav: the manifest's sizes no longer match
    wav = next(iter(sorted((a / "train_curated").glob("*.wav"))))
    wav.write_bytes(wav.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        generate("tag", tmp_path / "a", size="tiny", seed=0, progress=False)
    assert f"{a}: replacing a different or incomplete synthetic dataset" in caplog.text
    assert _tree_bytes(a) == ref
    # a generator killed mid-way: in-progress marker, no manifest, some files missing
    (a / MANIFEST).unlink()
    (a / PARTIAL).write_text("{}")
    for p in sorted((a / "train_noisy").glob("*.wav"))[::2]:
        p.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        generate("tag", tmp_path / "a", size="tiny", seed=0, progress=False)
    assert f"{a}: replacing an incomplete synthetic dataset" in caplog.text
    assert _tree_bytes(a) == ref and not (a / PARTIAL).exists()
    # a non-empty folder we did not write (a real dataset, say) is never touched
    (tmp_path / "real" / "FSDKaggle2019").mkdir(parents=True)
    (tmp_path / "real" / "FSDKaggle2019" / "train_curated.csv").write_text("fname,labels\n")
    with pytest.raises(OutputDirError, match="folder is not empty and holds no SYNTHETIC_DATASET.json"):
        generate("tag", tmp_path / "real", size="tiny", seed=0, progress=False)


# ===================================================================================== determinism (CPU)

def test_same_seed_same_features_and_batches(tmp_path):
    from tf_scenes.pipelines.cache import cached_features
    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.pipelines.transforms import Mixup, crop, spec_augment

    clips = _clips(tmp_path / "audio", n=4)
    f1 = cached_features(clips, TINY_FEATURES, tmp_path / "c1", progress=False)
    f2 = cached_features(clips, TINY_FEATURES, tmp_path / "c2", progress=False)
    assert f1.tobytes() == f2.tobytes()
    labels = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]

    def batches(seed):
        ds = make_train_dataset(np.asarray(f1), labels, batch_size=2, seed=seed, epochs=2,
                                transforms=[spec_augment(max_freq_width=4, max_time_width=8), crop(40)],
                                mixup=Mixup(0.4))
        return [(x.numpy().tobytes(), y.numpy().tobytes()) for x, y in ds]

    assert batches(3) == batches(3)
    assert batches(3) != batches(4)


# ===================================================================================== interruption

def test_feature_cache_killed_while_writing_leaves_nothing_readable(tmp_path):
    """SIGKILL while the cache array is being written: no final file appears; the rerun computes it."""
    from tf_scenes.pipelines.cache import cached_features

    clips = _clips(tmp_path / "audio", n=40, samples=16000)
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import time
        from tf_scenes.pipelines import cache as pcache
        from tf_scenes.pipelines.audio import decode_dataset as real

        def slow(*a, **k):  # 0.2 s per clip, so that the kill lands mid-write
            import tensorflow as tf
            return real(*a, **k).map(lambda w: tf.numpy_function(lambda v: (time.sleep(0.2), v)[1], [w], tf.float32))

        import tf_scenes.pipelines.audio
        tf_scenes.pipelines.audio.decode_dataset = slow
        pcache.cached_features({[str(p) for p in clips]!r}, {TINY_FEATURES!r}, {str(cache)!r}, batch_size=1,
                               progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not list(cache.glob(".tiny-*.npy.*.npy")):
            if proc.poll() is not None:
                pytest.fail(f"writer exited early ({proc.returncode}): {proc.stdout.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the cache writer started no temporary file in 240 s")
            time.sleep(0.02)
        time.sleep(1.0)  # a few clips into the array
        assert proc.poll() is None, "writer finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not list(cache.glob("tiny-*.npy")) and not list(cache.glob("tiny-*.json"))
    (tmp,) = cache.glob(".tiny-*.npy.*.npy")  # the half-written temporary is all that is left
    feats = cached_features(clips, TINY_FEATURES, cache, progress=False)
    assert feats.shape == (40, 126, 16, 1)
    assert not tmp.exists() and not list(cache.glob(".tiny-*.npy.*.npy"))  # the leftover is removed on opening
    np.testing.assert_array_equal(feats, cached_features(clips, TINY_FEATURES, tmp_path / "fresh", progress=False))


def test_a_live_writers_temporaries_are_left_alone(tmp_path):
    from tf_scenes.pipelines.cache import _writer_lock, remove_stale_temporaries

    final = tmp_path / "x-key.npy"
    tmp = tmp_path / ".x-key.npy.abc.npy"
    tmp.write_bytes(b"half")
    with _writer_lock(final):  # another writer is at work
        assert remove_stale_temporaries(final) == [] and tmp.exists()
    assert remove_stale_temporaries(final) == [tmp] and not tmp.exists()


ONE_MODEL = """\
# Reliability test: two tiny runs of the two-stage study (a 10-class ResNet trained for 2 epochs of
# {steps} steps, a 3-class ResNet for 1), no offline augmentation, no figures, no export.
base: {base}
description: "Reliability test: resnet10 (2 epochs) + resnet3 (1 epoch)"
train:
  steps_per_epoch: {steps}
models:
  __replace__: true
  resnet10: {{arch: resnet, num_classes: 10, width: 0.0625, epochs: 2, offline: [], spec_augment: true}}
  resnet3:  {{arch: resnet, num_classes: 3,  width: 0.0625, epochs: 1, offline: [], spec_augment: false}}
ensemble10: [resnet10]
ensemble3: [resnet3]
table1: [resnet3]
table2: [resnet10]
table3: [resnet10]
export: false
figures: false
"""


def _history_without_times(path: Path) -> list[dict]:
    import csv

    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]


def _h5_arrays(path: Path) -> dict:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.slow
def test_reproduce_killed_mid_epoch_resumes_to_the_uninterrupted_metrics(tmp_path):
    """`tf-scenes reproduce two_stage` killed with SIGKILL in epoch 1 of its first model, after the
    epoch-0 checkpoint, then rerun with the same command: it resumes from that checkpoint and every
    metric, score and weight equals those of an uninterrupted run with the same seed (CPU)."""
    cfg = tmp_path / "one_model.yaml"
    cfg.write_text(ONE_MODEL.format(base=REPO / "experiments" / "two_stage" / "configs" / "tiny.yaml", steps=40))

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "tf_scenes.experiments.cli", "reproduce", "two_stage", "--config", str(cfg),
                "--out", str(out), "--set", f"data.synthetic_dir={tmp_path / 'data'}",
                "--cache-dir", str(tmp_path / "cache")]

    def run(out: Path):
        res = subprocess.run(command(out), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        return res

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run(whole)  # also generates the tiny data and the feature cache both runs share

    proc = subprocess.Popen(command(cut), cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    state = cut / "runs" / "resnet10" / "checkpoints" / "state.json"
    try:
        deadline = time.monotonic() + 600
        while not state.exists():
            if proc.poll() is not None:
                pytest.fail(f"run exited early ({proc.returncode}): {proc.stderr.read().decode()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint after 600 s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # killed inside epoch 1 (40 steps): only epoch 0 is checkpointed, nothing is finished
    assert json.loads(state.read_text())["epoch"] == 0
    assert json.loads((cut / "runs" / "resnet10" / "run.json").read_text())["status"] == "running"
    assert not (cut / "runs" / "resnet10" / "metrics.json").exists() and not (cut / "metrics.json").exists()

    run(cut)  # the same command again
    r10 = cut / "runs" / "resnet10"
    info = json.loads((r10 / "run.json").read_text())
    assert info["status"] == "finished" and len(info["attempts"]) == 2
    assert json.loads((r10 / "checkpoints" / "state.json").read_text())["epoch"] == 1
    assert not list((r10 / "checkpoints").glob(".*"))  # no temporaries left behind

    for rel in ("metrics.json", "table1.json", "table2.json", "table3.json", "metrics_all.json",
                "runs/resnet10/metrics.json", "runs/resnet3/metrics.json",
                "runs/resnet10/scores_evaluate.tsv", "runs/resnet3/scores_evaluate.tsv"):
        assert (cut / rel).read_bytes() == (whole / rel).read_bytes(), rel
    for name in ("resnet10", "resnet3"):
        assert _history_without_times(cut / "runs" / name / "history.csv") == \
            _history_without_times(whole / "runs" / name / "history.csv")
        a = _h5_arrays(whole / "runs" / name / "checkpoints" / "last.weights.h5")
        b = _h5_arrays(cut / "runs" / name / "checkpoints" / "last.weights.h5")
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")
