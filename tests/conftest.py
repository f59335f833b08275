"""Shared test fixtures."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "numba"))

# As the training commands do: one inter-op thread on CPU, so that tests comparing runs bit for bit
# are not at the mercy of op scheduling (tf_scenes.training.trainer.serial_inter_op).
from tf_scenes.training.trainer import serial_inter_op  # noqa: E402

serial_inter_op()

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"shared reference data not found at {REFERENCE}: tests need ../shared beside the checkout")
    return REFERENCE
