"""The example notebooks run top to bottom in a real Jupyter kernel (nbclient), with no
cell error (their own asserts included)."""

import glob
import os

import pytest
from _helpers import subprocess_env

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "examples", "*.ipynb")))


def test_examples_have_notebooks():
    names = {os.path.basename(path) for path in NOTEBOOKS}
    assert {"course_recipe.ipynb", "check_your_kernel.ipynb"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_without_errors(path, tmp_path, monkeypatch):
    # The kernel is a new process: point it at the fastcnn these tests import, and run
    # it in a scratch folder (the notebooks write runs/...).
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()                     # raises CellExecutionError naming the cell
    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
