"""notebooks/batchnorm.ipynb executes top to bottom (small settings), so it never rots.

The kernel is this interpreter (``sys.executable``), registered under a private name in a
temporary JUPYTER_PATH, so the test works in a fresh .venv whatever kernels the machine has.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install 'normgrad[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'normgrad[notebook]'")
pytest.importorskip("ipykernel", reason="pip install 'normgrad[notebook]'")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "batchnorm.ipynb"
KERNEL = "normgrad-test-python"


def test_notebook_is_small_and_committed_without_outputs():
    assert NOTEBOOK.stat().st_size < 200_000
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.get("outputs") for c in code)
    assert any("import normgrad" in c.source or "from normgrad" in c.source for c in code)


def test_notebook_executes_with_small_settings(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "normgrad test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("NORMGRAD_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "FAIL" not in text and "pass" in text
    results = tmp_path / "results" / "notebook"
    for png in ("deep/deep.png", "paper-fig1/paper_fig1.png", "weight-scale/weight_scale.png",
                "batch-size-batchnorm/batch_size_batchnorm.png",
                "batch-size-layernorm/batch_size_layernorm.png"):
        assert (results / png).is_file(), png
    assert "sensitivity (equal epochs, equal updates)" in text
