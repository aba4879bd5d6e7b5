"""Run sweep points as Dask tasks, appending each row to ``out_dir/results.csv`` as it arrives.

Resume: points whose key already has a row with status ``ok`` are skipped; failed points are run
again. The final table is rewritten in grid order (see :func:`explorer.sweep.table.final_rows`),
so an interrupted and resumed sweep ends with the same table as an uninterrupted one with the
same seeds, except the volatile columns (timings, worker, finish time:
:data:`explorer.sweep.table.VOLATILE_COLUMNS`).

Faults: tasks are submitted with ``retries`` (a task that raised is run again); a task running
on a worker that dies is rescheduled by the scheduler on another worker (up to Dask's
``distributed.scheduler.allowed-failures``, 3 by default); a task Dask gives up on is recorded as
a failed row, and the sweep goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from explorer.core.progress import Progress, run, should_stop
from explorer.sweep.cluster import completed, dask_client, one_line, time_left
from explorer.sweep.point import failed_row, run_point
from explorer.sweep.table import RESULTS, append_row, ensure_header, final_rows, write_table

#: resubmissions of a task that raised (the point's own errors are rows, not exceptions)
RETRIES = 2


def describe(point: dict) -> str:
    """A short label: 'phi4 L=16 beta=0.68 lam=1 | phi4 J=1 score | seed 0'."""
    gen = " ".join(f"{k}={point[k]:g}" for k in ("beta", "lam", "eta", "drag")
                   if point.get(k) is not None)
    return (f"{point['kind']} L={point['size']} {gen} | {point['family']} J={point['J']} "
            f"{point['method']} | seed {point['seed']}")


def _dashboard_link(client) -> str | None:
    try:
        return client.dashboard_link
    except Exception:  # noqa: BLE001 - a scheduler without an HTTP server: no link
        return None


def iter_sweep(points: Iterable[dict], out_dir, scheduler: str | None = None,
               n_workers: int | None = None, stop: threading.Event | None = None,
               store_fields: bool = False, retries: int = RETRIES,
               dashboard: bool = False) -> Iterator[Progress]:
    """Run ``points`` (from :func:`explorer.sweep.grid.make_grid`) on Dask; yields Progress.

    Reports: stage "sweep", ``step``/``total`` = points done (skipped included) / points;
    ``info``: points_done, points_total, computed, skipped, failed, elapsed, time_left (s, None
    before the first result), last (the point just finished and its status, or "N points
    submitted" once the cluster is up and the tasks are submitted). The final report
    (``done=True``, ``stopped`` when ``stop`` was set) carries a summary dict: out_dir, table,
    points, ok, failed, missing, computed, skipped, seconds.

    ``dashboard``: the local cluster serves Dask's dashboard; the "points submitted" report then
    carries its address in ``info["dashboard"]`` (always given for a running cluster's
    ``scheduler``: its own dashboard, if it serves one).

    ``scheduler``: address or scheduler file of a running cluster (left running); None starts a
    LocalCluster of ``n_workers`` processes (default one per core, 1 thread each) and closes it.
    No cluster is started when every point is already done. ``store_fields``: each task writes
    ``out_dir/fields/<key>.npz`` (data and samples) on its worker (a cluster needs a shared file
    system for this).
    """
    points = list(points)
    keys = [p["key"] for p in points]
    if len(set(keys)) != len(keys):
        raise ValueError("the sweep has duplicate points (same parameters and seed)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = out / RESULTS
    rows = ensure_header(table)
    done_ok = {r["key"] for r in rows if r["status"] == "ok"}
    todo = [p for p in points if p["key"] not in done_ok]
    total, skipped = len(points), len(points) - len(todo)
    fields_dir = None
    if store_fields:
        (out / "fields").mkdir(exist_ok=True)
        fields_dir = str((out / "fields").resolve())
    count = {"computed": 0, "failed": 0}
    t0 = time.monotonic()

    def report(last: str = "") -> Progress:
        done = skipped + count["computed"]
        elapsed = time.monotonic() - t0
        info = {"points_done": done, "points_total": total, "computed": count["computed"],
                "skipped": skipped, "failed": count["failed"], "elapsed": elapsed,
                "time_left": 0.0 if done == total else
                time_left(elapsed, count["computed"], total - done)}
        if last:
            info["last"] = last
        return Progress(done, total, "sweep", info=info)

    yield report()
    stopped = False
    if todo and not should_stop(stop):
        by_key = {f"explorer-point-{p['key']}": p for p in todo}
        with dask_client(scheduler, n_workers, dashboard=dashboard) as client:
            futures = [client.submit(run_point, p, fields_dir, key=k, retries=retries)
                       for k, p in by_key.items()]
            link = _dashboard_link(client) if (dashboard or scheduler) else None
            try:
                first = report(f"{len(futures)} points submitted")
                if link:
                    first.info["dashboard"] = link
                yield first
                for fut in completed(futures, stop):
                    p = by_key[fut.key]
                    try:
                        row = fut.result()
                    except Exception as e:  # noqa: BLE001 - a task Dask gave up on: a row
                        row = failed_row(p, f"task: {one_line(e)}")
                    append_row(table, row)
                    rows.append(row)
                    count["computed"] += 1
                    count["failed"] += row["status"] != "ok"
                    yield report(f"{describe(p)}: {row['status']}")
            finally:
                pending = [f for f in futures if not f.done()]
                if pending:
                    client.cancel(pending)
        stopped = count["computed"] < len(todo)
    elif todo:
        stopped = True
    final = final_rows(rows, points)
    write_table(table, final)
    in_grid = {p["key"] for p in points}
    status = [r["status"] for r in final if r["key"] in in_grid]
    summary = {"out_dir": str(out), "table": str(table), "points": total,
               "ok": status.count("ok"), "failed": status.count("failed"),
               "missing": total - len(status), "computed": count["computed"],
               "skipped": skipped, "seconds": time.monotonic() - t0}
    last = report()
    yield Progress(last.step, total, "done", info=last.info, done=True, stopped=stopped,
                   result=summary)


def run_sweep(points, out_dir, callback=None, **kwargs) -> dict:
    """Blocking form of :func:`iter_sweep`: the summary dict."""
    return run(iter_sweep(points, out_dir, **kwargs), callback)
