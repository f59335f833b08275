"""The saliency notebook runs top to bottom on tiny settings (a model trained on the fly)."""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "saliency_exploration.ipynb"


def test_saliency_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_SCENES_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("TF_SCENES_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("TF_SCENES_RUN_DIR", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the clip's saliency figure and the device comparison
    audio = [o for o in outputs if "text/html" in o.get("data", {}) and "<audio" in o["data"]["text/html"]]
    assert audio, "the audio player is shown"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "explaining layer class_conv with cam" in text and "recorded by" in text
