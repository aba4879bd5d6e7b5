"""The teaching notebooks, as a lecturer hands them out.

* Every notebook in notebooks/ runs top to bottom on the small settings with ``EXPLORER_STRICT=1``:
  each claim is a check (:func:`explorer.teaching.check`) that prints ✓/✗ with its threshold, and
  in strict mode a ✗ raises, so a notebook whose numbers stop supporting its text fails here. No
  output may show ✗ either.
* The executed notebooks export to HTML (nbconvert) that reads offline: Chromium with every
  network request refused shows drawn content in every figure and no raw ``$`` of unrendered maths.
* Two or more knobs of each notebook's parameters cell turned to other values (a cheaper or a larger
  budget, another wavelet, fewer sizes): the notebook still runs to the end (✗ allowed there).
* The committed notebooks carry no outputs.

The kernel is the Python running the tests (a kernel spec written to a temporary directory), so
the notebooks see this checkout's ``explorer`` whatever kernels the machine has installed. The
exported pages and the figure screenshots are kept in test-artifacts/notebooks/.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
STRIP = ROOT / "scripts" / "strip_notebooks.py"
ARTIFACTS = ROOT / "test-artifacts" / "notebooks"
FULL = os.environ.get("EXPLORER_FULL", "0") == "1"  # the notebooks' own switch (default: small)
CELL_TIMEOUT = None if FULL else 600  # seconds per cell
KERNEL = "explorer-tests"

#: knobs turned by test_notebook_runs_with_knobs_turned: cheap ones, and the budget the issue
#: reported as failing an assert (ML_ITERATIONS = 400)
KNOBS = {
    "01": {"ML_ITERATIONS": "400", "KAPPAS": "[10, 100]", "EFF_SAMPLES": "100"},
    "02": {"WAVELET": '"haar"', "MIX_SIZES": "[8, 16]", "N_SAMPLES": "24"},
    "03": {"WAVELET": '"db2"', "SYNTH_ITERATIONS": "100"},
    # a shallower depth (its coarse factor is refused as unbounded and the notebook refits at the
    # suggested depth) and half the maps
    "04": {"DEPTH": "2", "N_MAPS": "8"},
}


def _load_export():
    spec = importlib.util.spec_from_file_location("export_notebooks", ROOT / "scripts" / "export_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


export = _load_export()


def test_there_are_notebooks_and_knobs_for_each():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    assert sorted(KNOBS) == sorted(p.name[:2] for p in NOTEBOOKS)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{path.name}: one cell tagged 'parameters'"
        for knob in KNOBS[path.name[:2]]:
            assert f"{knob} =" in params[0].source, f"{path.name}: knob {knob} not in the parameters cell"


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


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


def _outputs(nb, kind=None):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if kind is None or o.output_type == kind]


def _text(nb) -> str:
    parts = []
    for o in _outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            parts.append(o.data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(kernel, monkeypatch_module):
    """Each notebook executed once on the default (small) settings in strict mode, by stem."""
    monkeypatch_module.setenv("EXPLORER_STRICT", "1")
    cache: dict[str, tuple] = {}

    def get(path: Path):
        if path.stem not in cache:
            nb = nbformat.read(path, as_version=4)
            try:
                seconds = export.execute(nb, kernel, CELL_TIMEOUT)
                cache[path.stem] = (nb, seconds, None)
            except Exception as err:  # noqa: BLE001  reported by the test that needs the run
                cache[path.stem] = (nb, None, err)
        nb, seconds, err = cache[path.stem]
        if err is not None:
            pytest.fail(f"{path.name} failed on the default settings:\n{err}")
        return nb, seconds

    return get


@pytest.mark.timeout(0 if FULL else 900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_every_claim_holds(path, executed):
    nb, seconds = executed(path)
    print(f"{path.name}: ran in {seconds:.0f} s")
    assert not _outputs(nb, "error")
    text = _text(nb)
    failed = [line for line in text.splitlines() if line.startswith("✗")]
    assert not failed, failed
    assert text.count("✓") >= 5, "the notebook prints its checks"
    # HoloViews objects were rendered by the Bokeh backend, not shown as their text repr
    figures = [o for o in _outputs(nb, "execute_result") if o.data.get("text/plain", "").startswith(":")]
    assert figures, "the notebook displays no HoloViews figure"
    for o in figures:
        assert "application/vnd.holoviews_exec.v0+json" in o.data, o.data["text/plain"][:200]


@pytest.fixture(scope="module")
def html_pages(executed):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = {}
    for path in NOTEBOOKS:
        nb, _ = executed(path)
        out = ARTIFACTS / f"{path.stem}.html"
        out.write_text(export.to_html(nb), encoding="utf-8")
        pages[path.stem] = out
    return pages


def test_html_export_carries_its_figures_inline(html_pages):
    for stem, page in html_pages.items():
        html = page.read_text(encoding="utf-8")
        size = page.stat().st_size / 1e6
        print(f"{page.name}: {size:.1f} MB")
        remote = re.findall(r"""src=["']https?://[^"']*(?:bokeh|panel|holoviews)[^"']*""", html)
        assert not remote, f"{stem}: loads figure code from the network: {remote[:3]}"
        assert html.count("data-root-id=") >= 3, f"{stem}: figures missing from the page"


def _drawn_share(png: bytes) -> float:
    """Share of pixels that differ from the screenshot's most common colour (the background)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(a, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float(np.mean(np.any(np.abs(a.astype(int) - background) > 12, axis=1)))


def check_offline(browser, page_path: Path, n_figures: int) -> dict:
    """Open an exported page with every non-file request refused; every rendered Bokeh root
    (``[data-root-id] > *``) must have drawn content and the text no raw ``$``."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, offline=True)
    blocked: list[str] = []
    ctx.route("**/*", lambda route: (route.continue_() if route.request.url.startswith("file:")
                                     else (blocked.append(route.request.url), route.abort())))
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        rendered = "[data-root-id] > *"
        page.wait_for_function(
            "n => [...document.querySelectorAll('[data-root-id] > *')]"
            ".filter(e => e.getBoundingClientRect().height > 20).length >= n", arg=n_figures, timeout=120000)
        figures = page.locator(rendered)
        shares = []
        for i in range(figures.count()):
            el = figures.nth(i)
            el.scroll_into_view_if_needed()
            png = el.screenshot()
            (ARTIFACTS / f"{page_path.stem}-figure{i:02d}.png").write_bytes(png)
            shares.append(_drawn_share(png))
        text = page.inner_text("body")
        return {"figures": len(shares), "shares": shares, "text": text, "errors": errors, "blocked": blocked}
    finally:
        ctx.close()


@pytest.mark.browser
def test_html_reads_offline_in_chromium(html_pages, executed):
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install the 'chromium' apt package)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS

    # how many HoloViews figures each notebook shows (their text repr starts with ":";
    # hv.extension's output does not); the notebooks are executed here, in this thread
    expected = {}
    for path in NOTEBOOKS:
        nb, _ = executed(path)
        expected[path.stem] = sum(
            "application/vnd.holoviews_exec.v0+json" in o.data
            and o.data.get("text/plain", "").startswith(":")
            for o in _outputs(nb) if o.output_type in ("execute_result", "display_data"))

    def check_all() -> dict:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            try:
                return {stem: check_offline(browser, html_pages[stem], n)
                        for stem, n in expected.items()}
            finally:
                browser.close()

    # in a thread of its own: the browser tests' session-wide Playwright may still be running
    # in this one, and a second sync Playwright cannot start inside its event loop
    box: dict = {}

    def run() -> None:
        try:
            box["results"] = check_all()
        except BaseException as e:  # re-raised below, in the test's thread
            box["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    for stem, r in box["results"].items():
        n, shares = expected[stem], r["shares"]
        print(f"{stem}: {r['figures']} figures of {n}, drawn share min {min(shares):.3f}, "
              f"{len(r['blocked'])} network requests refused")
        assert r["figures"] >= n
        empty = [i for i, s in enumerate(shares) if s < 0.01]
        assert not empty, f"{stem}: figures {empty} show nothing offline (shares {shares})"
        text = r["text"]
        assert "$" not in text, f"{stem}: raw maths: " + text[max(0, text.index("$") - 80):text.index("$") + 80]
        assert "✓" in text and "Further reading" in text
        assert not [e for e in r["errors"] if "bokeh" in e.lower() or "holoviews" in e.lower()], r["errors"]


@pytest.mark.timeout(0 if FULL else 900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_knobs_turned(path, kernel, monkeypatch):
    monkeypatch.setenv("EXPLORER_STRICT", "0")  # a turned knob may print ✗; it must not raise
    knobs = KNOBS[path.name[:2]]
    nb = export.with_knobs(nbformat.read(path, as_version=4), knobs)
    seconds = export.execute(nb, kernel, CELL_TIMEOUT)
    print(f"{path.name} with {knobs}: ran in {seconds:.0f} s")
    assert not _outputs(nb, "error")
    text = _text(nb)
    assert "knobs turned:" in text and "notebook ran in" in text


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


def test_markdown_has_no_dollar_maths():
    """Maths is written in Unicode / HTML sub- and superscripts: it renders with no MathJax."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, c in enumerate(nb.cells):
            if c.cell_type == "markdown":
                assert "$" not in c.source, f"{path.name} cell {i}"


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
