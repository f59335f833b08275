"""The saliency notebook runs top to bottom on the tiny two-stage study, through the Python
interface only."""

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.xdist_group("two_stage")  # shares the tiny two-stage study's worker
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "saliency_exploration.ipynb"


def test_the_notebook_imports_only_the_public_interface():
    code = "\n".join("".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]
                     if c["cell_type"] == "code")
    imports = [line for line in code.splitlines() if line.startswith(("import tf_scenes", "from tf_scenes"))]
    assert imports == ["import tf_scenes"]


def test_saliency_notebook_runs(tiny_study, study_root, tmp_path, monkeypatch):
    s = tiny_study("two_stage")
    monkeypatch.setenv("TF_SCENES_RUN_DIR", str(s.out / "runs" / "resnet10"))
    monkeypatch.setenv("TF_SCENES_DATA", str(study_root / "data" / "TAU-urban-acoustic-scenes-2020-mobile-development"))
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
    assert "explaining: two_stage cam at class_conv" in text and "recorded by" in text
