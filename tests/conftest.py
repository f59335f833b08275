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
