"""Progress reports shared by every long computation (generation, fitting, sampling).

Long computations are generators that yield :class:`Progress` objects and honour a
``threading.Event`` stop flag.  The last item they yield has ``done=True`` and carries the
result; :func:`run` consumes such a generator, optionally calling a callback on every report,
and returns that result.  The CLI and the app drive the same generators.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Progress:
    """One progress report.

    step, total: position in the current stage (``total`` may be 0 when unknown).
    stage: a short human-readable name ("burn-in", "sampling", "spin-up", ...).
    snapshot: an optional small array to show (e.g. the current field of the first chain).
    info: diagnostics (acceptance, energy, tau, ...), JSON-serialisable scalars.
    done: True on the last report, which carries ``result``.
    stopped: True when the computation ended early because the stop event was set.
    """

    step: int
    total: int
    stage: str = ""
    snapshot: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    stopped: bool = False
    result: Any = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


class Stopped(Exception):
    """Raised by :func:`run` when the computation was stopped and ``allow_partial`` is False."""


def should_stop(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def run(
    iterator: Iterator[Progress],
    callback: Callable[[Progress], None] | None = None,
    allow_partial: bool = True,
) -> Any:
    """Consume a progress iterator and return the result carried by its final report."""
    last: Progress | None = None
    for report in iterator:
        last = report
        if callback is not None:
            callback(report)
    if last is None or not last.done:
        raise RuntimeError("progress iterator ended without a final report")
    if last.stopped and not allow_partial:
        raise Stopped(last.stage)
    return last.result
