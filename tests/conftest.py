"""Shared test fixtures."""

import gzip
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "numba"))

# As the training commands do: one inter-op thread on CPU, so that tests comparing runs bit for bit
# are not at the mercy of op scheduling (tf_scenes.training.trainer.serial_inter_op).
from tf_scenes.training.trainer import serial_inter_op  # noqa: E402

serial_inter_op()

# Real reference files shipped with the repository (sources, licenses, hashes: README.md beside each).
TEST_REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The published two-stage score files and fold csvs shipped with tf_scenes (two_stage/reference)."""
    from tf_scenes.two_stage.audit import default_reference_dir

    return default_reference_dir()


@pytest.fixture(scope="session")
def test_reference_dir() -> Path:
    """tests/data/reference: gzip-compressed real `tree` listings and TAU's fold1_train.csv."""
    return TEST_REFERENCE


@pytest.fixture(scope="session")
def fold1_train_csv(tmp_path_factory) -> Path:
    """TAU 2020's real evaluation_setup/fold1_train.csv, decompressed into a temporary folder."""
    path = tmp_path_factory.mktemp("reference") / "tau2020_fold1_train.csv"
    path.write_bytes(gzip.decompress((TEST_REFERENCE / "tau2020_fold1_train.csv.gz").read_bytes()))
    return path



# ---- the tiny study of each family, run once per test worker and shared by the family harness
# (tests/test_families.py) and the paper-specific study tests (tests/test_<family>_study.py) ----

FAMILY_NAMES = ("two_stage", "dcasenet", "weak_sed", "raw_waveform")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (it appends them to the node ids)
def pytest_collection_modifyitems(config, items):
    """Group tests for `--dist loadgroup`: the tests of one family's tiny study run on one worker
    (its study is trained once there); every other file is a group of its own (as --dist loadfile)."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        name = Path(str(item.fspath)).stem
        family = next((f for f in FAMILY_NAMES if name == f"test_{f}_study"), None)
        callspec = getattr(item, "callspec", None)
        if family is None and name == "test_families" and callspec is not None:
            family = callspec.params.get("family")
        item.add_marker(pytest.mark.xdist_group(family or name))


@pytest.fixture(scope="session")
def study_root(tmp_path_factory) -> Path:
    """One synthetic-data folder and cache for every tiny study of this worker."""
    return tmp_path_factory.mktemp("studies")


_TINY: dict = {}


@pytest.fixture(scope="session")
def tiny_study(study_root):
    """``tiny_study(family)`` -> TinyStudy(study, cfg, out, report, cache): the family's tiny profile
    run end to end once per worker (synthetic data generated once), through the shared runner."""
    import dataclasses

    from tf_scenes.experiments.reproduce import get_study, load_study_config
    from tf_scenes.experiments.study import run_study

    @dataclasses.dataclass
    class TinyStudy:
        study: object
        cfg: object
        out: Path
        report: dict
        cache: Path

    def run(family: str):
        if family not in _TINY:
            study = get_study(family)
            cfg = load_study_config(family, "tiny", overrides=[f"data.synthetic_dir={study_root / 'data'}"])
            out = study_root / family
            report = run_study(study, cfg, out, cache_dir=study_root / "cache")
            _TINY[family] = TinyStudy(study, cfg, out, report, study_root / "cache")
        return _TINY[family]

    return run
