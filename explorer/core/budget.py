"""Memory budget: refuse a request up front when its arrays would not fit in memory.

:func:`available_memory` is the memory the system can still give (Linux ``MemAvailable``, bounded
by a cgroup limit when there is one); :func:`check_memory` raises :class:`MemoryBudgetError`
(a ``ValueError``) with the size a request would need and the size available.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FALLBACK_BYTES", "MemoryBudgetError", "available_memory", "check_memory",
           "format_bytes"]

#: Assumed when the system does not say how much memory is free.
FALLBACK_BYTES = 2 * 10**9


class MemoryBudgetError(ValueError):
    """A request whose arrays would not fit in the available memory."""

    def __init__(self, message: str, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = int(needed)
        self.available = int(available)


def format_bytes(n: float) -> str:
    """A byte count with three significant digits in decimal units: '262 GB', '1.05 MB'."""
    n = float(n)
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if len(parts) < 3 or parts[2] == "kB" else 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int | None:
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _cgroup_room(root: str = "/sys/fs/cgroup") -> int | None:
    """Room left under a cgroup v2 memory limit (None without a limit)."""
    try:
        limit = Path(root, "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path(root, "memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory() -> int:
    """Bytes of memory available to this process now (a conservative constant if unknown)."""
    avail = _meminfo_available()
    if avail is None:
        avail = _sysconf_available()
    if avail is None:
        avail = FALLBACK_BYTES
    room = _cgroup_room()
    return avail if room is None else min(avail, room)


def check_memory(nbytes: float, what: str, detail: str = "", hint: str = "",
                 available: int | None = None) -> None:
    """Raise :class:`MemoryBudgetError` when ``nbytes`` exceed the available memory.

    The message reads "<what> would need <size> of memory (<detail>), more than the <size>
    available; <hint>".
    """
    avail = available_memory() if available is None else int(available)
    if nbytes <= avail:
        return
    msg = f"{what} would need {format_bytes(nbytes)} of memory"
    if detail:
        msg += f" ({detail})"
    msg += f", more than the {format_bytes(avail)} available"
    if hint:
        msg += f"; {hint}"
    raise MemoryBudgetError(msg, int(min(nbytes, 2**62)), avail)
