"""`tf-scenes augment KIND IN.wav --out OUT.wav` on a tiny synthetic TAU set: every kind, both modes,
the same seed gives the same bytes, and one-line errors (experiments/augment_cli.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tf_scenes.experiments.cli import main

KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
FAST = ["--rir-bank-size", "2", "--rt60", "0.2", "0.3"]  # a tiny room bank of short rooms


@pytest.fixture(scope="module")
def tau(tmp_path_factory):
    from tf_scenes.synth import generate

    base = tmp_path_factory.mktemp("augment_cli")
    root = generate("asc", base / "data", size="tiny", seed=0, progress=False)["asc"]
    return root, base / "cache"


def _run(capsys, *argv):
    code = main(["augment", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_writes_the_same_bytes_for_the_same_seed(tau, tmp_path, capsys, kind, mode):
    root, cache = tau
    src = root / "audio" / "airport-lisbon-0-0-a.wav"
    outs = []
    for name, s in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / f"{name}.wav"
        code, stdout, err = _run(capsys, kind, src, "--out", out, "--seed", s, "--data", root, "--mode", mode,
                                 "--cache-dir", cache, *FAST)
        assert code == 0, err
        outs.append(out)
        info = json.loads(stdout.strip().splitlines()[-1])
        assert info["kind"] == kind and info["mode"] == mode and info["clip"] == "audio/airport-lisbon-0-0-a.wav"
    x, sr = sf.read(src)
    y, sr_out = sf.read(outs[0])
    assert sr_out == sr == 44100 and y.shape == x.shape and sf.info(str(outs[0])).subtype == "PCM_24"
    assert outs[0].read_bytes() == outs[1].read_bytes()  # same seed, same file
    if kind != "spectrum_correction":  # the only kind without a random draw
        assert outs[0].read_bytes() != outs[2].read_bytes()
    assert not np.allclose(y, x, atol=1e-4)  # it did change the audio
    if kind == "same_class_mix":
        partner = info["partner"]
        assert partner.startswith("audio/airport-") and not partner.startswith("audio/airport-lisbon-0-0-")


def test_offline_mode_writes_what_the_offline_augmentation_writes(tau, tmp_path, capsys):
    """--mode offline uses the per-clip seed of generate_augmented_set for that file name."""
    from tf_scenes.audio import read_audio
    from tf_scenes.datasets import tau2020
    from tf_scenes.pipelines import offline_augment as oa

    root, _ = tau
    rec = next(r for r in tau2020.load(root, "train") if r.device == "a")
    code, _, err = _run(capsys, "pitch_shift", rec.path, "--out", tmp_path / "cli.wav", "--seed", 5, "--data", root,
                        "--mode", "offline")
    assert code == 0, err
    oa.generate_augmented_set([rec], tmp_path / "aug", kinds=["pitch_shift"], seed=5, progress=False)
    stem = rec.filename.rsplit("/", 1)[-1][:-4]
    np.testing.assert_array_equal(read_audio(tmp_path / "cli.wav")[0],
                                  read_audio(tmp_path / "aug" / "audio" / f"{stem}-pitch_shift.wav")[0])


def test_one_line_errors(tau, tmp_path, capsys):
    root, cache = tau
    src = root / "audio" / "airport-lisbon-0-0-a.wav"
    why = {"spectrum_correction": "the device ratio comes from the dataset's parallel recordings",
           "same_class_mix": "the mixing partner is a training clip of the same scene"}
    for kind, reason in why.items():
        code, out, err = _run(capsys, kind, src, "--out", tmp_path / "o.wav")
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [f"tf-scenes augment: error: {kind} needs --data DATASET_ROOT ({reason})"]
    # a file the dataset does not list needs --scene for mixing
    sf.write(str(tmp_path / "mine.wav"), np.zeros(44100, np.float32), 44100)
    code, _, err = _run(capsys, "same_class_mix", tmp_path / "mine.wav", "--out", tmp_path / "o.wav", "--data", root)
    assert code == 2 and err.strip().splitlines() == [
        "tf-scenes augment: error: audio/mine.wav: not in the dataset; give its scene with --scene"]
    code, out, err = _run(capsys, "same_class_mix", tmp_path / "mine.wav", "--out", tmp_path / "o.wav", "--data", root,
                          "--scene", "park")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["partner"].startswith("audio/park-"), err
    # too short, and not audio
    sf.write(str(tmp_path / "short.wav"), np.zeros(1000, np.float32), 44100)
    code, _, err = _run(capsys, "noise", tmp_path / "short.wav", "--out", tmp_path / "o.wav")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "short.wav: too short for augmentation: 1000 samples (0.023 s), need at least 2048" in err
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    code, _, err = _run(capsys, "noise", tmp_path / "bad.wav", "--out", tmp_path / "o.wav")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bad.wav: cannot decode audio" in err
    code, _, err = _run(capsys, "noise", src, "--out", tmp_path / "o.flac")
    assert code == 2 and "must be a .wav file" in err
