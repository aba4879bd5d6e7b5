"""Background jobs: one worker thread advancing a core progress iterator (no Panel here).

The worker only writes to its :class:`Job` (under a lock); the page polls :meth:`Job.poll` from
its own event loop (a periodic callback) and moves results into param state there, so nothing
touches Bokeh models from a thread (Bokeh documents are not thread-safe). A job refuses to start twice (re-entry guard),
stops when its event is set (the Stop button, the end of the session) and turns any exception of
the computation into a message instead of killing the server.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from explorer.core.progress import Progress

IDLE, RUNNING, DONE, STOPPED, ERROR = "idle", "running", "done", "stopped", "error"


class Job:
    """A named background computation with its latest progress report."""

    def __init__(self, name: str, history: int = 2000):
        self.name = name
        self.status = IDLE
        self.error = ""
        self.result: Any = None
        self.latest: Progress | None = None
        self.reports = 0  # number of progress reports received
        self.infos: list[dict] = []  # info dicts of the reports (bounded)
        self.started = self.finished = 0.0
        self._history = history
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seen = 0  # reports already handed out by poll()
        self._delivered = True  # final status already handed out by poll()

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def start(self, make_iterator: Callable[[threading.Event], Iterator[Progress]]) -> bool:
        """Run ``make_iterator(stop_event)`` in a daemon thread; False if already running."""
        with self._lock:
            if self.status == RUNNING:
                return False
            self._stop = threading.Event()
            self.status, self.error, self.result, self.latest = RUNNING, "", None, None
            self.reports, self.infos, self._seen, self._delivered = 0, [], 0, False
            self.started, self.finished = time.perf_counter(), 0.0
            stop = self._stop
            self._thread = threading.Thread(target=self._work, args=(make_iterator, stop),
                                            name=f"explorer-{self.name}", daemon=True)
            self._thread.start()
        return True

    def _work(self, make_iterator, stop: threading.Event) -> None:
        status, error, result = DONE, "", None
        try:
            for rep in make_iterator(stop):
                with self._lock:
                    self.latest = rep
                    self.reports += 1
                    if rep.info:
                        self.infos.append({"stage": rep.stage, **rep.info})
                        if len(self.infos) > self._history:
                            del self.infos[: len(self.infos) - self._history]
                if rep.done:
                    result = rep.result
                    status = STOPPED if rep.stopped else DONE
                    break
            else:
                status, error = ERROR, f"{self.name}: the computation ended without a result"
        except Exception as exc:  # any failure of the computation becomes a message
            status, error = ERROR, f"{self.name} failed: {exc}"
            traceback.print_exc()
        with self._lock:
            self.status, self.error, self.finished = status, error, time.perf_counter()
            self.result = result if status == DONE else (result if result is not None else None)

    def stop(self) -> None:
        """Ask the computation to stop at its next report (returns at once)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def poll(self) -> tuple[Progress | None, bool, bool]:
        """(latest report, whether it is new since the last poll, whether the job has just
        finished — True exactly once per run, when its final status is first seen)."""
        with self._lock:
            new = self.reports != self._seen
            self._seen = self.reports
            finished = self.status != RUNNING and not self._delivered and self.status != IDLE
            if finished:
                self._delivered = True
            return self.latest, new, finished

    @property
    def seconds(self) -> float:
        end = self.finished or time.perf_counter()
        return end - self.started if self.started else 0.0
