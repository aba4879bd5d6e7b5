#!/usr/bin/env python3
"""Execute the teaching notebooks and export them as self-contained HTML pages (readable offline).

    python scripts/export_notebooks.py                    # every notebooks/*.ipynb -> notebooks-html/
    python scripts/export_notebooks.py --out DIR 02       # the notebooks whose name contains "02"
    python scripts/export_notebooks.py --set ML_ITERATIONS=400 01   # turn a knob of the parameters cell

The figures carry their JavaScript inline (the notebooks call ``hv.extension("bokeh", inline=True)``)
and the text is written in Unicode, so a page shows everything without a network connection. Each
page is executed on the small settings unless ``EXPLORER_FULL=1`` is set. ``--set NAME=VALUE``
appends an assignment after the cell tagged ``parameters`` (a knob turned, as a student would).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"


def with_knobs(nb, knobs: dict[str, str]):
    """A copy of ``nb`` with ``NAME = VALUE`` lines in a cell right after the parameters cell."""
    if not knobs:
        return nb
    nb = nbformat.from_dict(nb)
    where = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if where is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    code = "\n".join(f"{k} = {v}" for k, v in knobs.items()) + "\nprint('knobs turned:', " + \
        ", ".join(f"'{k} =', {k}" for k in knobs) + ")"
    nb.cells.insert(where + 1, nbformat.v4.new_code_cell(code))
    return nb


def execute(nb, kernel_name: str = "python3", timeout: int | None = 900, cwd: Path = NOTEBOOK_DIR):
    """Run ``nb`` in place (nbclient); returns the seconds it took."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name=kernel_name, timeout=timeout,
                            resources={"metadata": {"path": str(cwd)}})
    t0 = time.perf_counter()
    client.execute()
    return time.perf_counter() - t0


def to_html(nb) -> str:
    """The executed notebook as one HTML page (nbconvert's lab template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="parts of notebook names (default: every notebook)")
    ap.add_argument("--out", type=Path, default=ROOT / "notebooks-html", help="output folder")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a knob of the parameters cell (Python expression)")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    args = ap.parse_args(argv)
    knobs = dict(s.split("=", 1) for s in args.set)
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if any(n in p.name for n in args.names)]
    if not paths:
        print("no notebook matches", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb = with_knobs(nbformat.read(path, as_version=4), knobs)
        seconds = execute(nb, args.kernel)
        out = args.out / (path.stem + ".html")
        out.write_text(to_html(nb), encoding="utf-8")
        print(f"{path.name}: ran in {seconds:.0f} s ({'full' if os.environ.get('EXPLORER_FULL') == '1' else 'small'}"
              f" settings) -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
