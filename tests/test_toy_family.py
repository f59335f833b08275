"""Adding a family is one folder on each side and one line in tf_scenes.families.FAMILIES: a toy
family (tests/toy_family) registered that way runs through `tf-scenes reproduce`, `export` and
`predict` with no other change anywhere."""

import json
from types import MappingProxyType

from tf_scenes import families


def test_a_fifth_family_runs_through_reproduce_export_and_predict(tmp_path, monkeypatch, capsys):
    from tf_scenes.experiments.cli import main

    monkeypatch.setattr(families, "FAMILIES", MappingProxyType(
        {**families.FAMILIES, "toy": ("toy_family", "toy_family.study")}))  # the one line
    out = tmp_path / "out"
    assert main(["reproduce", "toy", "--profile", "tiny", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--set", f"data.synthetic_dir={tmp_path / 'data'}"]) == 0
    study = json.loads((out / "study.json").read_text())
    assert study["study"] == "toy" and study["runs"] == ["cnn"] and study["synthetic"] is False
    card = json.loads((out / "runs" / "cnn" / "model.json").read_text())
    assert card["family"] == "toy" and card["builder"] == "toy_cnn" and card["outputs"] == {"probs": ["tone", "noise"]}
    table = json.loads((out / "table1.json").read_text())
    assert table["rows"][0]["system"] == "cnn" and 0 <= table["rows"][0]["acc"] <= 100
    assert (out / "export" / "toy" / "saved_model.pb").exists()  # the study's export

    capsys.readouterr()
    assert main(["export", str(out / "runs" / "cnn"), "--out", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    wav = tmp_path / "data" / "toy" / "clip00.wav"
    assert main(["predict", str(tmp_path / "export"), str(wav)]) == 0
    top = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["outputs"]["probs"]["top"]
    assert sorted(c for c, _ in top) == ["noise", "tone"] and abs(sum(p for _, p in top) - 1) < 1e-4
