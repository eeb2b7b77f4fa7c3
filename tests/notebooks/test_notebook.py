"""notebooks/batchnorm.ipynb executes top to bottom (small settings), so it never rots.

The notebook is committed WITH the outputs of a full run (so its plots show on GitHub);
the execution test clears them and re-executes with NORMGRAD_NOTEBOOK_SMALL=1.
The kernel is this interpreter (``sys.executable``), registered under a private name in a
temporary JUPYTER_PATH, so the test works in a fresh .venv whatever kernels the machine has.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them

nbformat = pytest.importorskip("nbformat", reason="pip install 'normgrad[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'normgrad[notebook]'")
pytest.importorskip("ipykernel", reason="pip install 'normgrad[notebook]'")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "batchnorm.ipynb"
KERNEL = "normgrad-test-python"


def test_notebook_is_committed_with_outputs_of_a_clean_full_run():
    assert NOTEBOOK.stat().st_size < 1_500_000  # ~1 MB: five embedded PNGs
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("import normgrad" in c.source or "from normgrad" in c.source for c in code)
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], "committed with a traceback"
    pngs = [
        o
        for o in outputs
        if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})
    ]
    assert pngs, "committed without its plots: re-execute it and save the outputs"
    # executed once, top to bottom, in one kernel
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "\r" not in text, "progress-bar output in the committed notebook"
    assert "shape (64, 32)" not in text, "committed with the small (test) settings"
    assert all("execution" not in c.metadata for c in code), "timing metadata: strip it"


def test_notebook_executes_with_small_settings(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "normgrad test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("NORMGRAD_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:  # drop the committed outputs: everything checked below is fresh
        cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    assert all(c.execution_count for c in code)
    text = "\n".join(o.get("text", "") for c in code for o in c.get("outputs", []))
    assert "FAIL" not in text and "pass" in text
    results = tmp_path / "results" / "notebook"
    for png in (
        "deep/deep.png",
        "paper-fig1/paper_fig1.png",
        "weight-scale/weight_scale.png",
        "batch-size-batchnorm/batch_size_batchnorm.png",
        "batch-size-layernorm/batch_size_layernorm.png",
    ):
        assert (results / png).is_file(), png
    assert "sensitivity (equal epochs, equal updates)" in text
