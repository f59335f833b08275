"""Packaging: the distribution coexists with other packages.

* setup.cfg asks for compatible ranges (no exact pins, no test tools, no setuptools cap); the exact
  versions live in the lock (requirements*.txt pinned, constraints.txt for every indirect
  dependency), which satisfies the ranges and which `make` installs;
* the wheel holds one top-level name, `tf_scenes`, with the study configs, the reference score
  files and the license;
* (slow) the wheel installed into a fresh environment next to another distribution's top-level
  `pipelines` and `experiments` runs `tf-scenes --version`, `audit-fusion`, `export` and `predict`
  from its own files, with the same results as the source tree.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "pytest-xdist", "hypothesis", "sed-eval", "dcase-util", "setuptools", "nbformat",
              "nbclient", "nbconvert", "ipykernel"}


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def _requirements(text: str) -> list[Requirement]:
    return [Requirement(line.split("#")[0].strip()) for line in text.splitlines()
            if line.split("#")[0].strip() and not line.startswith("-")]


def _pins(path: Path) -> dict[str, str]:
    """name -> exact version of a requirements / constraints file (following -r includes)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            out.update(_pins(path.parent / line[3:].strip()))
        elif line:
            req = Requirement(line)
            (spec,) = req.specifier  # one `==` each: a lock, not ranges
            assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
            out[canonicalize_name(req.name)] = spec.version
    return out


def test_install_requires_are_ranges_and_the_lock_satisfies_them():
    cfg = _setup_cfg()
    core = _requirements(cfg["options"]["install_requires"])
    names = {canonicalize_name(r.name) for r in core}
    assert {"tensorflow", "keras", "numpy", "scipy", "soundfile", "soxr", "librosa", "audiomentations",
            "pyroomacoustics", "scikit-learn", "matplotlib", "tqdm", "pyyaml", "h5py", "sed-scores-eval",
            "pandas"} == names
    for r in core:
        assert all(s.operator not in ("==", "===") for s in r.specifier), f"exact pin in install_requires: {r}"
        assert any(s.operator in (">=", ">") for s in r.specifier), f"no lower bound: {r}"
    assert not names & (TEST_TOOLS | {"tensorboard"})
    # the librosa cap audiomentations needs, and the TensorFlow / Keras ranges
    by_name = {canonicalize_name(r.name): r.specifier for r in core}
    assert "0.12" not in by_name["librosa"] and "0.11.0" in by_name["librosa"]
    assert "2.18.0" in by_name["tensorflow"] and "2.22.0" not in by_name["tensorflow"]
    assert "3.8.0" in by_name["keras"] and "4.0" not in by_name["keras"]

    lock = _pins(REPO / "requirements.txt")
    dev_lock = _pins(REPO / "requirements-dev.txt")
    constraints = _pins(REPO / "constraints.txt")
    for r in core:  # every core dependency is pinned, inside its range
        name = canonicalize_name(r.name)
        assert name in lock, f"requirements.txt does not pin {name}"
        assert r.specifier.contains(lock[name]), f"requirements.txt: {name}=={lock[name]} outside {r}"
    assert set(lock) == names | {"tensorboard"}
    for name, version in dev_lock.items():  # constraints.txt locks the same versions, and more
        assert constraints.get(name) == version, f"constraints.txt: {name} {constraints.get(name)} != {version}"
    assert set(dev_lock) - set(lock) == TEST_TOOLS
    assert constraints["pandas"].split(".")[0] == "2"  # sed_scores_eval does not support pandas 3

    extras = {k: _requirements(v) for k, v in cfg["options.extras_require"].items()}
    as_set = {k: {str(r) for r in v} for k, v in extras.items()}
    assert as_set["dev"] == as_set["test"] | as_set["tensorboard"]
    assert {canonicalize_name(r.name) for r in extras["test"]} == TEST_TOOLS
    # setuptools<81 (dcase_util imports pkg_resources) only where sed_eval / dcase_util are
    assert [e for e, reqs in extras.items() if any(r.name == "setuptools" for r in reqs)] == ["test", "dev"]
    for e in ("test", "dev"):
        for r in extras[e]:
            test_pin = dev_lock[canonicalize_name(r.name)]
            assert r.specifier.contains(test_pin), f"requirements-dev.txt: {r.name}=={test_pin} outside [{e}] {r}"


def test_makefile_installs_the_lock():
    text = (REPO / "Makefile").read_text()
    assert "pip install -q -c constraints.txt -r requirements-dev.txt" in text
    assert re.search(r"^\$\(STAMP\):.*constraints\.txt", text, re.M)


def test_license_file_matches_setup_cfg():
    cfg = _setup_cfg()
    assert cfg["metadata"]["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 tf-scenes authors\n")
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text


def _tracked_tree(dest: Path) -> Path:
    """A copy of the files git tracks (plus untracked, not ignored ones): what a fresh clone
    builds from, without a build/ folder or egg-info left by an earlier build."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from the repository (as `pip wheel --no-deps --no-build-isolation .`)."""
    root = tmp_path_factory.mktemp("wheel")
    src = _tracked_tree(root / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(root / "dist"), str(src)], check=True, capture_output=True)
    (whl,) = (root / "dist").glob("tf_scenes-*.whl")
    return whl


def test_wheel_holds_one_top_level_name_with_its_data(wheel):
    from tf_scenes import __version__

    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name == f"tf_scenes-{__version__}-py3-none-any.whl"
    dist_info = f"tf_scenes-{__version__}.dist-info"
    assert {n.split("/")[0] for n in names} == {"tf_scenes", dist_info}
    configs = sorted(p.relative_to(REPO / "experiments").as_posix() for p in REPO.glob("experiments/*/configs/*.yaml"))
    assert len(configs) == 12
    assert {f"tf_scenes/experiments/{c}" for c in configs} <= set(names)
    reference = sorted(p.name for p in (REPO / "tf_scenes/two_stage/reference").iterdir() if not p.name.startswith("."))
    assert reference == ["README.md", "tau2020_fold1_evaluate.csv", "two_stage_fold1_evaluate_3class.csv",
                         "two_stage_scores_10class.txt", "two_stage_scores_3class.txt"]
    assert {f"tf_scenes/two_stage/reference/{r}" for r in reference} <= set(names)
    assert {"tf_scenes/pipelines/cache.py", "tf_scenes/experiments/cli.py", f"{dist_info}/LICENSE"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License: MIT" in metadata
    requires = [Requirement(line.split(":", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert len(requires) > 14 and not [r for r in requires if any(s.operator == "==" for s in r.specifier)]
    entry = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "tf-scenes = tf_scenes.experiments.cli:main" in entry


# ----------------------------------------------------------------------------- installed next to others

NATIVE_BANNER = re.compile(r"absl::InitializeLog|oneDNN custom operations|Could not find cuda drivers|^[IWE]\d{4} ",
                           re.M)


def _fresh_env(root: Path, wheel: Path) -> tuple[Path, dict]:
    """A new virtual environment seeing this one's third-party packages (their folders listed in a
    .pth, whose own .pth files, e.g. an editable tf-scenes, are not processed), the wheel installed
    into it (no dependencies) and another distribution's top-level `pipelines` / `experiments`."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    shared = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "shared_packages.pth").write_text("".join(f"{p}\n" for p in shared))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--ignore-installed", "--no-index", str(wheel)], check=True, capture_output=True)
    (site / "pipelines").mkdir()
    (site / "pipelines" / "__init__.py").write_text('OWNER = "another distribution"\n')
    (site / "experiments.py").write_text('OWNER = "another distribution"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(PYTHONNOUSERSITE="1", NUMBA_CACHE_DIR=str(root / "numba"), PYTHONHASHSEED="0")
    return venv, env


@pytest.mark.slow
def test_wheel_runs_next_to_other_packages(wheel, tmp_path, capsys):
    from test_reliability_inputs import _tiny_run_folder, _tone, _wav

    from tf_scenes.experiments.cli import main

    venv, env = _fresh_env(tmp_path, wheel)
    site = next(venv.glob("lib/python*/site-packages"))

    def run(*argv):
        p = subprocess.run([str(a) for a in argv], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert p.returncode == 0, (argv, p.stdout, p.stderr)
        assert not NATIVE_BANNER.search(p.stderr), p.stderr
        return p.stdout

    found = json.loads(run(venv / "bin" / "python", "-c",
                           "import json, pipelines, experiments, tf_scenes.pipelines.cache as c, "
                           "tf_scenes.experiments.cli as e; print(json.dumps([pipelines.OWNER, experiments.OWNER, "
                           "c.__file__, e.__file__]))"))
    assert found[:2] == ["another distribution"] * 2
    assert [Path(f).relative_to(site).as_posix() for f in found[2:]] == ["tf_scenes/pipelines/cache.py",
                                                                         "tf_scenes/experiments/cli.py"]
    from tf_scenes import __version__

    assert run(venv / "bin" / "tf-scenes", "--version") == f"tf-scenes {__version__}\n"

    audit = json.loads(run(venv / "bin" / "tf-scenes", "audit-fusion"))
    assert Path(audit["reference_dir"]) == site / "tf_scenes" / "two_stage" / "reference"
    assert (round(audit["acc_ensemble_10class"], 4), round(audit["acc_fused_row_order"], 4),
            round(audit["acc_fused_by_filename"], 4)) == (0.7939, 0.8189, 0.7936)

    # export and predict with the installed command; the same line as the source tree's predict
    run_dir = _tiny_run_folder(tmp_path / "run")
    wav = _wav(tmp_path / "audio" / "tone.wav", _tone(8000))
    assert json.loads(run(venv / "bin" / "tf-scenes", "export", run_dir, "--out", tmp_path / "export")) == {
        "export": str(tmp_path / "export")}
    line = json.loads(run(venv / "bin" / "tf-scenes", "predict", tmp_path / "export", wav))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "export"), str(wav)]) == 0
    assert line == json.loads(capsys.readouterr().out)
    assert line["file"] == str(wav) and [c for c, _ in line["outputs"]["probs"]["top"]] != []
