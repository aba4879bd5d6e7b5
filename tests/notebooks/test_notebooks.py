"""The teaching notebooks: every notebook in notebooks/ runs top to bottom without an error (small
settings, as CI runs them), and the committed notebooks carry no outputs.

Each notebook asserts its own claims, so a notebook whose numbers stop supporting its text fails
here. The kernel is the Python running the tests (a kernel spec written to a temporary directory),
so the notebooks see this checkout's ``explorer`` whatever kernels the machine has installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
STRIP = ROOT / "scripts" / "strip_notebooks.py"
FULL = os.environ.get("EXPLORER_FULL", "0") == "1"  # the notebooks' own switch (default: small)
# seconds per cell: small settings take 1-2 minutes per notebook on 2 cores; full ones far longer
CELL_TIMEOUT = None if FULL else 600
KERNEL = "explorer-tests"


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, monkeypatch_module):
    """A kernel spec running this interpreter, found first via JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "explorer tests", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    monkeypatch_module.setenv("JUPYTER_PATH", str(root) + (os.pathsep + old if old else ""))
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.timeout(0 if FULL else 900)  # 0: no limit for a full-settings run
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path, kernel):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    seconds = time.perf_counter() - t0
    print(f"{path.name}: ran in {seconds:.0f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # HoloViews objects were rendered by the Bokeh backend, not shown as their text repr
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "execute_result" and o.data.get("text/plain", "").startswith(":")]
    assert figures, "the notebook displays no HoloViews figure"
    for o in figures:
        assert "application/vnd.holoviews_exec.v0+json" in o.data, o.data["text/plain"][:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: run scripts/strip_notebooks.py"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    result = subprocess.run([sys.executable, str(STRIP), "--check", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_strip_script_removes_outputs_and_run_metadata(tmp_path):
    src = NOTEBOOKS[0]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    nb = nbformat.read(dst, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    code.execution_count = 3
    code.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nbformat.write(nb, dst)
    check = subprocess.run([sys.executable, str(STRIP), "--check", str(dst)], capture_output=True, text=True)
    assert check.returncode == 1 and "not stripped" in check.stdout
    subprocess.run([sys.executable, str(STRIP), str(dst)], check=True, capture_output=True)
    assert nbformat.read(dst, as_version=4) == nbformat.read(src, as_version=4)
