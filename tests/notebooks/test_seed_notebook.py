"""The seed notebook runs against normgrad once `cs231n` reads `normgrad`, and reproduces
every value it printed.

notebooks/seed/batch_norm_derivation.ipynb is a verbatim copy of the worked derivation the
project started from (its imports name the course's `cs231n` package).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them

SEED = Path(__file__).resolve().parents[2] / "notebooks" / "seed" / "batch_norm_derivation.ipynb"


@pytest.fixture()
def kernel_name(tmp_path, monkeypatch) -> str:
    """A kernelspec that runs this interpreter, so the kernel sees the installed normgrad."""
    spec = tmp_path / "kernels" / "normgrad-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "normgrad test", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return "normgrad-test"


def results(nb) -> list[str | None]:
    """The text/plain execute_result of each code cell (None when it printed none)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = [
            o["data"]["text/plain"]
            for o in cell.get("outputs", [])
            if o.get("output_type") == "execute_result"
        ]
        out.append("".join(texts) if texts else None)
    return out


def test_seed_notebook_runs_against_normgrad_and_reproduces_its_outputs(kernel_name):
    original = nbformat.read(SEED, as_version=4)
    nb = nbformat.read(SEED, as_version=4)
    imports = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and "cs231n" in cell.source:
            imports += cell.source.count("cs231n")
            cell.source = cell.source.replace("cs231n", "normgrad")
        if cell.cell_type == "code":
            cell.outputs = []
    assert imports == 4  # fc_net, data_utils, gradient_check, solver
    NotebookClient(nb, kernel_name=kernel_name, timeout=120, allow_errors=False).execute()
    expected, got = results(original), results(nb)
    assert sum(e is not None for e in expected) == 4  # dout, gamma * dout and its two rows
    for e, g in zip(expected, got):
        if e is not None:  # the stored copy has its runs of spaces folded to one
            assert g is not None and g.split() == e.split()
