"""Run folders, model cards and exports: what tf-scenes reads and writes there.

* `tf-scenes export` never deletes what it did not write: --out must be absent, an empty folder or
  an earlier export (recognised by its marker); a run folder, a folder of other files or a file is
  refused before any work, and an earlier export is replaced only once the new one is complete;
* a model card is data: its builder must be registered, its config class comes from the registry
  (a `config_class` naming a module is never imported), and every malformed field gets one line
  naming the file;
* the sources never unpickle, eval or import a module named in a file (checked on the code);
* `features`, `saliency`, `export` and `predict` turn bad --out paths, unknown layers and unreadable
  exports into one `tf-scenes CMD: error: ...` line and exit code 2.

The guarantees are listed in docs/reliability.md ("Run folders, model cards and exports", "Trust").
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent


def _cli(capsys, *argv) -> tuple[int, str, str]:
    """Run `tf-scenes ARGV` in this process (the console script's code path)."""
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error(code: int, out: str, err: str, command: str, start: str) -> str:
    """Assert exit 2, nothing on stdout and exactly one stderr line `tf-scenes CMD: error: START...`."""
    assert (code, out) == (2, ""), (code, out, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"tf-scenes {command}: error: {start}"), err
    return err.strip()


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _siblings(folder: Path) -> list[str]:
    """Temporary folders an export may have left beside `folder`."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def _wav(path: Path, seconds: float = 1.0, sr: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A two-stage ResNet run folder (3 classes, width 1/16, untrained) on an 8 kHz front-end."""
    from test_reliability_inputs import _tiny_run_folder

    return _tiny_run_folder(tmp_path_factory.mktemp("trust") / "run")


@pytest.fixture(scope="module")
def tiny_model():
    """A waveform model small enough to export in about a second: front-end, pooling, softmax."""
    import keras

    from test_reliability_inputs import TINY_FEATURES
    from tf_scenes.export import waveform_signature_model

    def inner(feats):
        x = keras.layers.GlobalAveragePooling2D(name="pool")(feats)
        return keras.layers.Dense(3, activation="softmax", name="probs")(x)

    keras.utils.set_random_seed(0)
    return waveform_signature_model(inner, TINY_FEATURES, "tiny")


LABELS = {"probs": ["indoor", "outdoor", "transportation"]}


def _export(model, out: Path, **kw) -> Path:
    from tf_scenes.export import export_saved_model

    return export_saved_model(model, out, sample_rate=8000, labels=LABELS, **kw)


@pytest.fixture(scope="module")
def exported(tiny_model, run_folder, tmp_path_factory) -> Path:
    """An export recording `run_folder` as its run (as `tf-scenes export` does)."""
    return _export(tiny_model, tmp_path_factory.mktemp("exported") / "export",
                   metadata={"runs": [str(run_folder)]})


@pytest.fixture
def run_copy(run_folder, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(run_folder, tmp_path / "run"))


# ===================================================================================== export target

def test_export_refuses_a_folder_of_other_files_and_keeps_them(run_folder, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("a,b\n")
    err = _one_error(*_cli(capsys, "export", run_folder, "--out", out), "export", f"{out}: ")
    assert "is not a tf-scenes export (no assets.extra/tf_scenes_export.json)" in err
    assert _tree_bytes(out) == {"notes.txt": b"my notes\n", "sub/data.csv": b"a,b\n"}
    assert _siblings(out) == []
    # an existing regular file as --out: refused, untouched
    f = tmp_path / "a_file"
    f.write_text("keep\n")
    err = _one_error(*_cli(capsys, "export", run_folder, "--out", f), "export", f"{f}: ")
    assert "exists and is not a directory" in err and f.read_text() == "keep\n"


def test_export_never_touches_a_sibling_named_like_a_temporary(tiny_model, tmp_path):
    (tmp_path / "new.partial").mkdir()  # the name earlier versions wrote into (and deleted first)
    (tmp_path / "new.partial" / "keep.txt").write_text("keep\n")
    _export(tiny_model, tmp_path / "new")
    assert (tmp_path / "new.partial" / "keep.txt").read_text() == "keep\n"
    assert (tmp_path / "new" / "saved_model.pb").is_file()


def test_export_refuses_the_run_folder_and_its_parents(run_copy, tmp_path, capsys):
    before = _tree_bytes(run_copy)
    assert "model.json" in before and "checkpoints/selected.weights.h5" in before
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", run_copy), "export", f"{run_copy}: ")
    assert f"is the run folder being exported ({run_copy})" in err
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", tmp_path), "export", f"{tmp_path}: ")
    assert "contains the run folder being exported" in err
    link = tmp_path / "link"
    link.symlink_to(run_copy, target_is_directory=True)
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", link), "export", f"{link}: ")
    assert "is the run folder being exported" in err
    assert _tree_bytes(run_copy) == before
    assert _siblings(run_copy) == [] and _siblings(tmp_path) == []


def test_export_uses_an_empty_folder_and_replaces_an_earlier_export(tiny_model, run_folder, tmp_path, capsys):
    out = tmp_path / "export"
    out.mkdir()
    assert _export(tiny_model, out) == out
    marker = json.loads((out / "assets.extra" / "tf_scenes_export.json").read_text())
    assert marker == {"format": "tf-scenes export", "version": 1}
    assert json.loads((out / "assets.extra" / "labels.json").read_text()) == LABELS
    # an earlier export (with a stale TFLite file) is replaced as a whole, not merged into
    (out / "model.tflite").write_bytes(b"stale")
    _export(tiny_model, out, metadata={"note": "second"})
    assert not (out / "model.tflite").exists() and (out / "saved_model.pb").is_file()
    assert json.loads((out / "assets.extra" / "metadata.json").read_text())["note"] == "second"
    assert _siblings(out) == []
    # an export written before exports carried the marker is recognised by its layout and metadata
    (out / "assets.extra" / "tf_scenes_export.json").unlink()
    _export(tiny_model, out, metadata={"note": "third"})
    assert (out / "assets.extra" / "tf_scenes_export.json").is_file()
    assert json.loads((out / "assets.extra" / "metadata.json").read_text())["note"] == "third"
    # ... but an export holding a file tf-scenes did not write is refused, the file kept
    (out / "README.txt").write_text("mine\n")
    err = _one_error(*_cli(capsys, "export", run_folder, "--out", out), "export", f"{out}: ")
    assert "also holds files tf-scenes did not write (README.txt)" in err
    assert (out / "README.txt").read_text() == "mine\n"


def test_a_failed_export_leaves_the_earlier_one_intact(tiny_model, exported, tmp_path, monkeypatch):
    import shutil

    from tf_scenes import io_utils

    out = Path(shutil.copytree(exported, tmp_path / "export"))
    before = _tree_bytes(out)
    real = io_utils.atomic_write_json
    written = []

    def failing(path, obj, **kw):  # the SavedModel is written; its metadata write fails
        written.extend(p.name for p in Path(path).parent.parent.iterdir())
        if Path(path).name == "metadata.json":
            raise OSError("disk failed while writing the export")
        return real(path, obj, **kw)

    monkeypatch.setattr(io_utils, "atomic_write_json", failing)
    with pytest.raises(OSError, match="disk failed"):
        _export(tiny_model, out)
    assert "saved_model.pb" in written  # it failed mid-way, not before starting
    assert _tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folder left behind


def test_replacing_rolls_back_when_the_new_export_cannot_be_moved_in(tmp_path, monkeypatch):
    import os

    from tf_scenes import export

    old, new = tmp_path / "export", tmp_path / ".export.partial-x"
    for folder, text in ((old, "old"), (new, "new")):
        (folder / "assets.extra").mkdir(parents=True)
        (folder / "saved_model.pb").write_text(text)
    real = os.rename

    def rename(src, dst):
        if Path(src) == new:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="No space left"):
        export._replace_dir(new, old, "export")
    assert (old / "saved_model.pb").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".export.partial-x", "export"]

    def replace(src, dst):  # the old export cannot even be moved aside
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="not permitted"):
        export._replace_dir(new, old, "export")
    assert (old / "saved_model.pb").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".export.partial-x", "export"]


# ===================================================================================== model cards

def _card(run: Path) -> dict:
    return json.loads((run / "model.json").read_text())


def _write_card(run: Path, card) -> None:
    (run / "model.json").write_text(json.dumps(card))


def _edit(**changes):
    def apply(card):
        for k, v in changes.items():
            if v is _DELETE:
                card.pop(k)
            else:
                card[k] = v
        return card

    return apply


_DELETE = object()
OLD_CLASS = "tf_scenes.two_stage.model:TwoStageModelConfig"

CARD_CASES = {
    "not an object": (lambda c: [c], "a model card must be a JSON object, got a JSON list"),
    "missing keys": (_edit(builder=_DELETE, weights=_DELETE), "missing keys builder, weights"),
    "builder type": (_edit(builder=["two_stage_resnet"]), "builder: expected a non-empty string, got list"),
    "unknown builder": (_edit(builder="os.system"),
                        "unknown builder 'os.system'; known builders: dcasenet_v1, dcasenet_v2, dcasenet_v3, "
                        "raw_waveform, "),
    "config not object": (_edit(config=[1, 2]), "config: expected a JSON object, got list [1, 2]"),
    "config typo": (lambda c: {**c, "config": {**c["config"], "widht": 2}},
                    "unknown config key in config: 'widht' (did you mean 'width'?)"),
    "config_class elsewhere": (_edit(config_class="os:system"),
                               f"config_class string \"os:system\" does not match builder 'two_stage_resnet', "
                               f"whose config is {OLD_CLASS} (a card's config_class is never imported)"),
    "weights absolute": (_edit(weights="/etc/weights.h5"), "weights: '/etc/weights.h5' is an absolute path"),
    "weights dotdot": (_edit(weights="../other/checkpoints/selected.weights.h5"),
                       "weights: '../other/checkpoints/selected.weights.h5' leaves the run folder ('..')"),
    "weights not h5": (_edit(weights="checkpoints/model.keras"),
                       "weights: 'checkpoints/model.keras' is not an .h5 weights file"),
    "input kind": (_edit(input="spectrogram"), "input: expected one of features, waveform, got string \"spectrogram\""),
    "outputs string": (_edit(outputs={"probs": "indoor"}),
                       "outputs.probs: expected a non-empty list of class names (strings), got string \"indoor\""),
    "outputs numbers": (_edit(outputs={"probs": [0, 1, 2]}),
                        "outputs.probs: expected a non-empty list of class names (strings), got list [0, 1, 2]"),
    "outputs list": (_edit(outputs=["indoor"]), "outputs: expected a JSON object of output name -> class names"),
    "squeeze flag": (_edit(squeeze_channel="no"), "squeeze_channel: expected true or false, got string \"no\""),
    "sample rate": (_edit(sample_rate="8000"), "sample_rate: expected a positive integer, got string \"8000\""),
    "feature config": (_edit(feature_config="tiny"), "feature_config: unknown feature config 'tiny'"),
    "saliency method": (_edit(saliency={"method": "lime"}), "saliency.method: expected one of cam, gradcam"),
    "normalization": (_edit(normalization={"mean": [[0.0]], "std": [[1.0], [2.0]]}),
                      "normalization: mean (1, 1) and std (2, 1) differ in shape"),
}


@pytest.mark.parametrize("case", sorted(CARD_CASES))
def test_malformed_model_cards_get_one_line_naming_the_file(run_copy, tmp_path, capsys, case):
    edit, message = CARD_CASES[case]
    _write_card(run_copy, edit(_card(run_copy)))
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", tmp_path / "export"), "export",
                     f"{run_copy / 'model.json'}: ")
    assert message in err
    assert not (tmp_path / "export").exists()


def test_model_card_json_and_weights_escaping_by_symlink(run_copy, tmp_path, capsys):
    card = _card(run_copy)
    (run_copy / "model.json").write_bytes(b'{"family": "two_stage", ')
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", tmp_path / "x"), "export",
                     f"{run_copy / 'model.json'}: ")
    assert "unreadable model card: Expecting property name" in err
    (run_copy / "model.json").write_bytes(b"\xff\xfe{}")
    err = _one_error(*_cli(capsys, "saliency", run_copy, "a.wav", "--out", tmp_path / "f.png"), "saliency",
                     f"{run_copy / 'model.json'}: ")
    assert "not UTF-8 text" in err
    outside = tmp_path / "elsewhere.weights.h5"
    outside.write_bytes((run_copy / "checkpoints" / "selected.weights.h5").read_bytes())
    (run_copy / "checkpoints" / "link.weights.h5").symlink_to(outside)
    _write_card(run_copy, {**card, "weights": "checkpoints/link.weights.h5"})
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", tmp_path / "x"), "export",
                     f"{run_copy / 'model.json'}: ")
    assert f"weights: 'checkpoints/link.weights.h5' leads out of the run folder through a symlink (to {outside})" in err
    # a damaged weights file: one line naming it
    _write_card(run_copy, card)
    (run_copy / "checkpoints" / "selected.weights.h5").write_bytes(b"not hdf5" * 100)
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", tmp_path / "x"), "export",
                     f"{run_copy / 'checkpoints' / 'selected.weights.h5'}: cannot load these weights into builder "
                     "'two_stage_resnet': ")
    assert "file signature not found" in err


def test_a_card_naming_a_module_never_imports_it(run_copy, tmp_path, capsys, monkeypatch):
    """A module placed in the run folder (on sys.path, as with `python -m` run from there) and named
    by config_class is never imported: nothing it would do happens. A card from an earlier version
    with the registered class in config_class still loads."""
    name = "tf_scenes_card_payload"
    proof = tmp_path / "imported.txt"
    (run_copy / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(proof)!r}).write_text('imported')\n"
        "from tf_scenes.two_stage.model import TwoStageModelConfig as Config\n")
    monkeypatch.chdir(run_copy)
    monkeypatch.syspath_prepend(str(run_copy))
    card = _card(run_copy)
    _write_card(run_copy, {**card, "config_class": f"{name}:Config"})
    err = _one_error(*_cli(capsys, "export", run_copy, "--out", tmp_path / "export"), "export",
                     f"{run_copy / 'model.json'}: config_class string \"{name}:Config\" does not match")
    assert "never imported" in err
    for command in (["saliency", run_copy, _wav(tmp_path / "a.wav"), "--out", tmp_path / "f.png"],
                    ["export", run_copy, "--out", tmp_path / "export"]):
        _cli(capsys, *command)
    assert not proof.exists() and name not in sys.modules
    _write_card(run_copy, {**card, "config_class": OLD_CLASS})  # as written by earlier versions
    from tf_scenes.model_io import load_run_model

    model, loaded = load_run_model(run_copy)
    assert loaded["config_class"] == OLD_CLASS and model.output.shape[-1] == 3
    assert not proof.exists() and name not in sys.modules


def test_registry_holds_a_config_class_for_every_builder():
    from tf_scenes import model_io, registry
    from tf_scenes.dcasenet.model import DcaseNetConfig
    from tf_scenes.raw_waveform.model import RawWaveformConfig
    from tf_scenes.two_stage.model import TwoStageModelConfig
    from tf_scenes.weak_sed.model import WeakSedConfig

    want = {"two_stage": TwoStageModelConfig, "dcasenet": DcaseNetConfig, "weak_sed": WeakSedConfig,
            "raw_waveform": RawWaveformConfig}
    names = registry.list_models()
    assert len(names) == 15
    for name in names:
        family = next(f for f in want if name.startswith(f))
        assert registry.config_class(name) is want[family], name
    with pytest.raises(KeyError, match="unknown model 'nope'; registered: dcasenet_v1"):
        registry.config_class("nope")
    # write_model_card refuses a config of another class than the builder's
    from tf_scenes.errors import ConfigError

    with pytest.raises(ConfigError, match="builder 'two_stage_resnet' takes a TwoStageModelConfig config, "
                                          "got WeakSedConfig"):
        model_io.write_model_card("/nonexistent", family="two_stage", builder="two_stage_resnet",
                                  config=WeakSedConfig(), feature_config="two_stage", outputs={"p": ["a"]})


# ===================================================================================== what is trusted

SOURCE_DIRS = ("tf_scenes", "experiments", "pipelines")
# Modules that import by name, each from a constant table of its own (subcommands, model families,
# lazy attributes, synthetic dataset kinds, studies); matched by the end of their path.
IMPORT_BY_NAME = ("cli.py", "registry.py", "training/__init__.py", "features/__init__.py", "synth/__init__.py",
                  "reproduce.py", "families.py", "experiments/study.py", "tf_scenes/__init__.py",
                  "features/config.py")


def _calls():
    for d in SOURCE_DIRS:
        for path in sorted((REPO / d).rglob("*.py")) if (REPO / d).is_dir() else ():
            rel = path.relative_to(REPO).as_posix()
            tree = ast.parse(path.read_text(), rel)
            for node in ast.walk(tree):
                yield rel, node


def _dotted(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def test_the_sources_never_unpickle_eval_or_import_by_file_contents():
    """What README "Trust" says, checked on the code of the package, the studies and the pipelines."""
    found = {"pickle": [], "np.load without allow_pickle=False": [], "eval/exec/__import__": [],
             "unsafe yaml": [], "import_module": set(), "keras load_model": [], "saved_model.load": set()}
    for rel, node in _calls():
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(n and n.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve")
                   for n in names):
                found["pickle"].append(rel)
        if not isinstance(node, ast.Call):
            continue
        fn = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        if fn in ("np.load", "numpy.load") and not (
                isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False):
            found["np.load without allow_pickle=False"].append(f"{rel}:{node.lineno}")
        if fn in ("eval", "exec", "__import__", "builtins.eval", "builtins.exec"):
            found["eval/exec/__import__"].append(f"{rel}:{node.lineno}")
        if fn in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all") or (
                fn == "yaml.load" and "Safe" not in ast.unparse(kw.get("Loader", ast.Constant(""))) and
                "_strict_loader" not in ast.unparse(kw.get("Loader", ast.Constant("")))):
            found["unsafe yaml"].append(f"{rel}:{node.lineno}")
        if fn.endswith("import_module"):
            found["import_module"].add(rel)
        if fn.endswith("load_model") and "keras" in fn:
            found["keras load_model"].append(f"{rel}:{node.lineno}")
        if fn.endswith("saved_model.load"):
            found["saved_model.load"].add(rel)
    assert found["pickle"] == [] and found["np.load without allow_pickle=False"] == []
    assert found["eval/exec/__import__"] == [] and found["unsafe yaml"] == [] and found["keras load_model"] == []
    assert [f for f in found["import_module"] if not f.endswith(IMPORT_BY_NAME)] == []
    assert not any(f.endswith(("model_io.py", "export.py", "export_cli.py", "saliency_cli.py"))
                   for f in found["import_module"])
    # only `predict`, the Python interface's `tf_scenes.load(export)` (both on an export the user
    # names) and the DcaseNet study (checking the export it has just written) load a SavedModel
    assert "tf_scenes/predict_cli.py" in found["saved_model.load"]
    assert [f for f in found["saved_model.load"]
            if not f.endswith(("predict_cli.py", "tf_scenes/api.py")) and "dcasenet" not in f] == []


# ===================================================================================== one-line errors

def test_features_out_is_an_existing_directory(tmp_path, capsys):
    wav = _wav(tmp_path / "a.wav", sr=44100)
    for out in (tmp_path / "feats.npy", tmp_path / "feats"):
        out.mkdir()
        err = _one_error(*_cli(capsys, "features", "two_stage", wav, "--out", out), "features",
                         f"{out}: is a directory; --out takes the .npy file to write")
        assert list(out.iterdir()) == [], err


def test_saliency_bad_out_and_unknown_layer(run_folder, tmp_path, capsys):
    wav = _wav(tmp_path / "a.wav")
    (tmp_path / "figdir").mkdir()
    _one_error(*_cli(capsys, "saliency", run_folder, wav, "--out", tmp_path / "figdir"), "saliency",
               f"{tmp_path / 'figdir'}: is a directory; --out takes the figure's file name")
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")  # a path under a regular file cannot be created, not even by root
    _one_error(*_cli(capsys, "saliency", run_folder, wav, "--out", a_file / "fig.png"), "saliency",
               f"{a_file}: exists and is not a directory")
    _one_error(*_cli(capsys, "saliency", run_folder, wav, "--out", a_file / "figs" / "fig.png"), "saliency",
               f"{a_file / 'figs'}: cannot create output directory: Not a directory")
    err = _one_error(*_cli(capsys, "saliency", run_folder, wav, "--layer", "nosuch", "--out", tmp_path / "f.png"),
                     "saliency", f"{run_folder}: the model has no layer 'nosuch'; conv layers to explain: ")
    assert err.endswith("conv layers to explain: (36, the last 8) path1_stack4_block1_unit2_conv, "
                        "path2_stack4_block1_unit2_conv, path1_stack4_block2_unit1_conv, "
                        "path2_stack4_block2_unit1_conv, path1_stack4_block2_unit2_conv, "
                        "path2_stack4_block2_unit2_conv, head_conv, class_conv"), err
    err = _one_error(*_cli(capsys, "saliency", run_folder, wav, "--method", "cam", "--layer", "path1_stem_conv",
                           "--out", tmp_path / "f.png"), "saliency", f"{run_folder}: ")
    assert err.endswith("CAM needs a class-map layer with one channel per class (3); 'path1_stem_conv' has 2: "
                        "use --method gradcam, or --layer a class-map layer"), err
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("name, text, message", [
    ("metadata.json", "[]", "expected a JSON object with an \"input\" object"),
    ("metadata.json", '{"input": {"sample_rate": "8k"}}', "input.sample_rate: expected a positive integer, got '8k'"),
    ("metadata.json", "{not json", "unreadable (Expecting property name"),
    ("labels.json", '{"probs": "abc"}', "expected a JSON object of output name -> list of class names"),
])
def test_predict_and_saliency_on_an_unreadable_export(exported, tmp_path, capsys, name, text, message):
    import shutil

    out = Path(shutil.copytree(exported, tmp_path / "export"))
    (out / "assets.extra" / name).write_text(text)
    wav = _wav(tmp_path / "a.wav")
    for command in (["predict", out, wav], ["saliency", out, wav, "--out", tmp_path / "f.png"]):
        err = _one_error(*_cli(capsys, *command), command[0], f"{out / 'assets.extra' / name}: ")
        assert message in err


def test_predict_on_a_damaged_saved_model(exported, tmp_path, capsys):
    import shutil

    out = Path(shutil.copytree(exported, tmp_path / "export"))
    (out / "saved_model.pb").write_bytes(b"\x00garbage" * 10)
    _one_error(*_cli(capsys, "predict", out, _wav(tmp_path / "a.wav")), "predict",
               f"{out}: cannot load the SavedModel's serving signature: Cannot parse file")


@pytest.mark.parametrize("text, message", [
    ('{"members_10class": [', "unreadable (Expecting value"),
    ('["a"]', "expected members_10class and members_3class lists of run folders"),
    ('{"members_10class": ["../../elsewhere"], "members_3class": ["runs/r3"]}', "member '../../elsewhere' is not inside"),
    ('{"members_10class": "runs/r10", "members_3class": ["runs/r3"]}', "expected members_10class and members_3class"),
])
def test_export_and_saliency_of_a_system_folder_with_a_bad_member_list(tmp_path, capsys, text, message):
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    (study / "system.json").write_text(text)
    for command in (["export", study, "--out", tmp_path / "export"],
                    ["saliency", study, _wav(tmp_path / "a.wav"), "--out", tmp_path / "f.png"]):
        err = _one_error(*_cli(capsys, *command), command[0], f"{study / 'system.json'}: ")
        assert message in err
