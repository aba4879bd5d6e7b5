#!/usr/bin/env python3
"""Strip outputs, execution counts and run metadata from Jupyter notebooks (nbformat only).

Notebooks are committed without outputs: run this before ``git add`` after working on one.

    python scripts/strip_notebooks.py                 # every notebooks/*.ipynb, in place
    python scripts/strip_notebooks.py path.ipynb ...  # the given notebooks
    python scripts/strip_notebooks.py --check         # change nothing; exit 1 if any is not stripped
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
# cell metadata written by Jupyter / nbclient when a cell runs or is resized
RUN_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
# notebook metadata that depends on the machine or the session
RUN_NOTEBOOK_METADATA = ("widgets", "toc", "varInspector")


def problems(nb) -> list[str]:
    """What would be stripped from ``nb`` (empty when it is clean)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                found.append(f"cell {i}: outputs")
            if cell.get("execution_count") is not None:
                found.append(f"cell {i}: execution count")
        found += [f"cell {i}: metadata {k!r}" for k in RUN_CELL_METADATA if k in cell.metadata]
    found += [f"notebook metadata {k!r}" for k in RUN_NOTEBOOK_METADATA if k in nb.metadata]
    if set(nb.metadata.get("language_info", {})) - {"name"}:
        found.append("notebook metadata 'language_info' beyond its name")
    return found


def strip(nb) -> None:
    """Remove outputs, execution counts and run metadata from ``nb`` in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for k in RUN_CELL_METADATA:
            cell.metadata.pop(k, None)
    for k in RUN_NOTEBOOK_METADATA:
        nb.metadata.pop(k, None)
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name", "python")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path,
                    help="notebooks to strip (default: notebooks/*.ipynb of the repository)")
    ap.add_argument("--check", action="store_true",
                    help="change nothing; list notebooks that are not stripped and exit 1 if any")
    args = ap.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = 0
    for path in paths:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        found = problems(nb)
        if not found:
            continue
        dirty += 1
        if args.check:
            print(f"{path}: not stripped ({'; '.join(found[:3])}{' ...' if len(found) > 3 else ''})")
        else:
            strip(nb)
            nbformat.validate(nb)
            nbformat.write(nb, path)
            print(f"{path}: stripped")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
