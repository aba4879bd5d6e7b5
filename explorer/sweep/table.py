"""The results table ``results.csv``: a header fixed by :data:`COLUMNS`, one row per point.

Written with the ``csv`` module. Rows are appended as they arrive, each as one ``write`` of a
whole line on a file opened for appending, then flushed and fsynced: a killed sweep leaves every
finished row and at most a partial last line, which :func:`read_table` drops (it keeps only
complete, newline-terminated lines of the right width). At the end of a sweep the table is
rewritten once, atomically (temporary file + rename), in grid order.

Empty cells are "not applicable" (e.g. Binder columns of Gaussian fields, timings of a failed
stage); booleans are written ``true``/``false``; floats with ``repr`` (exact round trip).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from explorer.core.io import atomic_path
from explorer.sweep.grid import PARAMETERS

RESULTS = "results.csv"

OBSERVABLES = ("binder", "absm", "chi")

#: every column of the table, in order
COLUMNS: tuple[str, ...] = (
    "index", *PARAMETERS, "status", "message",
    *(f"{q}_{w}{e}" for q in OBSERVABLES for w in ("data", "samples") for e in ("", "_err")),
    "spectrum_log_ratio", "spectrum_2d_log_ratio", "total_variation", "kl_divergence",
    "std_ratio_max_dev", "binder_difference", "kurtosis_data", "kurtosis_samples",
    "equilibrated",
    "seconds", "seconds_generate", "seconds_fit", "seconds_sample", "seconds_compare",
    "cpu_seconds", "worker", "finished_at",
    "explorer_version", "numpy_version", "dask_version", "key",
)

#: columns that differ between two runs of the same points with the same seeds (timings, where
#: and when a point ran); every other column is reproducible and compared by
#: :func:`same_results`
VOLATILE_COLUMNS = ("seconds", "seconds_generate", "seconds_fit", "seconds_sample",
                    "seconds_compare", "cpu_seconds", "worker", "finished_at")
COMPARED_COLUMNS = tuple(c for c in COLUMNS if c not in VOLATILE_COLUMNS)

#: columns holding numbers (parsed by :func:`typed`)
INT_COLUMNS = ("index", "size", "J", "n_data", "n_samples", "steps", "burn_in", "seed")
FLOAT_COLUMNS = tuple(c for c in COLUMNS[COLUMNS.index("binder_data"):COLUMNS.index("worker")]
                      if c != "equilibrated") + ("beta", "lam", "eta", "drag")


def format_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        v = float(v)  # numpy 2's repr of np.float64 is 'np.float64(...)'
        return repr(v) if math.isfinite(v) else str(v)  # 'nan', 'inf'
    if hasattr(v, "item"):  # numpy scalar
        return format_value(v.item())
    return str(v).replace("\r", " ").replace("\n", " ")


def format_row(row: dict, columns=COLUMNS) -> list[str]:
    return [format_value(row.get(c)) for c in columns]


def _line(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def read_table(path) -> list[dict[str, str]]:
    """The rows of a results table as dicts of strings (``[]`` when there is no file).

    Only complete rows count: a trailing line without its newline (a write cut short) and lines
    of the wrong width are dropped. Columns unknown to this version are dropped, missing ones
    read as ``""``.
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return []
    if "key" not in header or "status" not in header:
        raise ValueError(f"{path} is not a sweep results table (no 'key' and 'status' columns)")
    rows = []
    for values in reader:
        if len(values) != len(header):
            continue
        rec = dict(zip(header, values))
        rows.append({c: rec.get(c, "") for c in COLUMNS})
    return rows


def write_table(path, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts of values or strings) with the full header, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(_line(list(COLUMNS)))
            for r in rows:
                fh.write(_line(format_row(r)))
            fh.flush()
            os.fsync(fh.fileno())
    return path


def ensure_header(path) -> list[dict[str, str]]:
    """The existing rows of ``path``; creates the file with the header when absent, and rewrites
    it atomically in the current columns when its header differs (another version)."""
    path = Path(path)
    if not path.exists():
        write_table(path, [])
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader([fh.readline()]), [])
    rows = read_table(path)
    if tuple(header) != COLUMNS:
        write_table(path, rows)
    elif not path.read_text(encoding="utf-8").endswith("\n"):
        write_table(path, rows)  # drop a partial last line before appending after it
    return rows


def append_row(path, row: dict) -> None:
    """Append one row (the header must exist: :func:`ensure_header`): one write, flushed and
    fsynced, so the table stays valid whenever the sweep is interrupted."""
    data = _line(format_row(row)).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def final_rows(existing: list[dict], points: list[dict]) -> list[dict]:
    """The table after a sweep over ``points``: for each point in grid order its last row (the
    newest of repeated attempts), ``index`` set to its grid position; then the rows of other
    keys (earlier sweeps in the same folder) in their previous order, so nothing is lost."""
    last: dict[str, dict] = {}
    for r in existing:
        last[r["key"]] = r
    out, keys = [], set()
    for p in points:
        r = last.get(p["key"])
        if r is not None:
            out.append({**r, "index": format_value(p["index"])})
            keys.add(p["key"])
    seen = set()
    for r in existing:
        k = r["key"]
        if k not in keys and k not in seen and r is last[k]:
            out.append(r)
            seen.add(k)
    return out


def typed(row: dict) -> dict:
    """A row of strings with numbers parsed: int and float columns, ``equilibrated`` as bool;
    empty cells become None."""
    out = dict(row)
    for c in INT_COLUMNS:
        out[c] = int(row[c]) if row.get(c, "") != "" else None
    for c in FLOAT_COLUMNS:
        out[c] = float(row[c]) if row.get(c, "") != "" else None
    e = row.get("equilibrated", "")
    out["equilibrated"] = None if e == "" else e == "true"
    return out


def same_results(a: list[dict], b: list[dict], columns=COMPARED_COLUMNS) -> list[str]:
    """Differences between two tables on ``columns`` (default: every non-volatile column); an
    empty list when they hold the same results in the same order."""
    diffs = []
    if len(a) != len(b):
        diffs.append(f"{len(a)} rows vs {len(b)} rows")
    for i, (ra, rb) in enumerate(zip(a, b)):
        for c in columns:
            va, vb = format_value(ra.get(c)), format_value(rb.get(c))
            if va != vb:
                diffs.append(f"row {i} column {c}: {va!r} != {vb!r}")
    return diffs
