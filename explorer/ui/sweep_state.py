"""The app's sweep as param state (no Panel import): inputs as text lists and numbers, a
:class:`~explorer.ui.jobs.Job` thread driving :func:`explorer.sweep.iter_sweep` with a stop
event, and the rows of the table as they arrive. :meth:`SweepState.poll` (the page's event loop,
or by hand in a test or notebook) moves progress and rows into the parameters::

    s = SweepState(betas="0.5 0.68", sizes="8", samples=16, depth=1, steps=20, workers=1)
    s.start(); s.wait()          # s.rows: one row (dict of strings) per point, in grid order
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import param

from explorer.sweep.grid import FAMILIES
from explorer.sweep.table import RESULTS, read_table
from explorer.ui.jobs import DONE, ERROR, STOPPED, Job


def parse_list(text: str, what: str, convert=float) -> list:
    """'0.5, 0.68 0.7' -> [0.5, 0.68, 0.7]; ValueError (one line) for an empty list or a word
    that is not a number."""
    words = [w for w in re.split(r"[\s,;]+", text or "") if w]
    if not words:
        raise ValueError(f"{what}: give at least one value")
    out = []
    for w in words:
        try:
            out.append(convert(w))
        except ValueError:
            kind = "a whole number" if convert is int else "a number"
            raise ValueError(f"{what}: {w!r} is not {kind}") from None
    return out


class SweepState(param.Parameterized):
    """A φ⁴ sweep over β × L × seeds with one model setting, run on Dask in the background."""

    betas = param.String(default="0.5 0.6 0.68 0.75", doc="β values (spaces or commas)")
    sizes = param.String(default="8 16", doc="lattice sides L (powers of two)")
    samples = param.Integer(default=32, bounds=(1, 1024), doc="data fields and model samples")
    family = param.Selector(default="phi4", objects=list(FAMILIES), doc="model family")
    depth = param.Integer(default=1, bounds=(0, 6), doc="WCRG depth J")
    steps = param.Integer(default=100, bounds=(1, 100_000), doc="sampler steps per scale")
    seeds = param.String(default="0", doc="seeds (one point each)")
    scheduler = param.String(default="", doc="Dask scheduler address; empty: a local cluster")
    workers = param.Integer(default=2, bounds=(1, 64), doc="local cluster processes")
    out_dir = param.String(default="", doc="output folder; empty: a temporary folder")

    # ---- results (set on the event loop by poll())
    rows = param.List(default=[], doc="rows of this grid in the table (strings), grid order")
    done = param.Integer(default=0)
    total = param.Integer(default=0)
    time_left = param.Number(default=None, allow_None=True, doc="seconds, None when unknown")
    last = param.String(default="", doc="the point just finished")
    dashboard = param.String(default="", doc="Dask dashboard address")
    message = param.String(default="", doc="last error or refusal, shown in place")
    status = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.job = Job("sweep")
        self._tmp: str | None = None
        self._keys: set[str] = set()
        self._table_rows: list[dict] | None = None  # written by the job thread, read by poll()
        self._rows_seen: list[dict] | None = None

    # ------------------------------------------------------------ inputs
    @property
    def folder(self) -> Path:
        """The output folder: ``out_dir``, else a temporary folder made once per state."""
        if self.out_dir.strip():
            return Path(self.out_dir.strip()).expanduser()
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="explorer-sweep-")
        return Path(self._tmp)

    @property
    def table_path(self) -> Path:
        return self.folder / RESULTS

    def points(self) -> list[dict]:
        """The validated grid; ValueError (one line) for input no run could use."""
        from explorer.sweep.grid import make_grid

        betas = parse_list(self.betas, "β list")
        sizes = parse_list(self.sizes, "L list", int)
        seeds = parse_list(self.seeds, "seeds", int)
        return make_grid("phi4", size=sizes, beta=betas, family=self.family, J=self.depth,
                         seeds=seeds, n_samples=self.samples, steps=self.steps)

    # ------------------------------------------------------------ the job
    def start(self) -> bool:
        """Start the sweep in the background; False (and ``message`` saying why) when refused."""
        if self.job.running:
            self.message = "the sweep is already running: stop it first"
            return False
        try:
            points = self.points()
            out = self.folder
            if out.exists() and not out.is_dir():
                raise ValueError(f"the output folder {out} is a file")
            if not out.exists() and not out.parent.is_dir():
                raise ValueError(f"the output folder's parent {out.parent} does not exist")
            read_table(out / RESULTS)  # a foreign table is refused before any cluster starts
        except (ValueError, OSError) as e:
            self.message = " ".join(str(e).split())
            return False
        self._keys = {p["key"] for p in points}
        self._table_rows = self._rows_seen = None
        scheduler = self.scheduler.strip() or None
        workers = None if scheduler else self.workers
        self.param.update(message="", rows=[], done=0, total=len(points), time_left=None,
                          last="", dashboard="", status=f"sweep of {len(points)} points started")
        return self.job.start(lambda stop: self._run(points, out, scheduler, workers, stop))

    def _run(self, points, out, scheduler, workers, stop):
        from explorer.sweep.runner import iter_sweep

        for rep in iter_sweep(points, out, scheduler=scheduler, n_workers=workers, stop=stop,
                              dashboard=True):
            # the table is read here, in the thread that appends to it (never a half row)
            if rep.done or rep.info.get("last", "").endswith((": ok", ": failed")):
                self._table_rows = read_table(out / RESULTS)
            yield rep

    def stop(self) -> None:
        self.job.stop()

    def poll(self) -> bool:
        """Move progress and new rows into the parameters; True when something changed. Call
        from the thread that owns the state (the page's event loop)."""
        rep, fresh, finished = self.job.poll()
        changed = fresh or finished
        if fresh and rep is not None:
            info = rep.info
            self.param.update(done=int(info.get("points_done", rep.step)),
                              total=int(info.get("points_total", rep.total)),
                              time_left=info.get("time_left"),
                              last=info.get("last", self.last))
            if info.get("dashboard"):
                self.dashboard = info["dashboard"]
        table = self._table_rows
        if table is not None and table is not self._rows_seen:
            self._rows_seen = table
            self.rows = [r for r in table if r["key"] in self._keys]
            changed = True
        if finished:
            self._finish()
        return changed

    def _finish(self) -> None:
        job = self.job
        if job.status == ERROR:
            self.param.update(message=job.error, status="sweep failed")
        elif job.status in (DONE, STOPPED):
            r = job.result or {}
            what = "stopped" if job.status == STOPPED else "done"
            self.status = (f"sweep {what} after {job.seconds:.1f} s: {r.get('ok', 0)} ok, "
                           f"{r.get('failed', 0)} failed of {r.get('points', self.total)} points")
            if job.status == DONE:
                self.time_left = 0.0

    def wait(self, timeout: float = 600.0) -> str:
        """Block until the sweep ends (tests, notebooks), polling as the page would."""
        t0 = time.perf_counter()
        while self.job.running and time.perf_counter() - t0 < timeout:
            time.sleep(0.05)
            self.poll()
        self.poll()
        return self.job.status

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the sweep, wait for its thread, remove the temporary folder (session end)."""
        self.stop()
        self.job.join(timeout)
        if self._tmp is not None and not self.job.running:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def export_csv(self) -> bytes:
        """``results.csv`` as it is now (every row of the folder)."""
        if not self.table_path.is_file():
            raise ValueError("no sweep results yet: run a sweep first")
        return self.table_path.read_bytes()
