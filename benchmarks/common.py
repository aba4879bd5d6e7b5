"""What every benchmark records next to its numbers: the machine, the library versions and the
load when it started (these machines are shared: absolute times are inflated by whatever else
runs, the ratios measured side by side in one run are what to read), and where the JSON goes.

    from common import machine, emit, timed
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Core count, Python and library versions, and the load average (1, 5, 15 min) now."""
    import numpy as np
    import pywt
    import scipy

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "pywavelets": pywt.__version__,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def timed(fn, *args, repeat: int = 1, **kwargs):
    """(result of the last call, wall seconds per call, process CPU seconds per call).  CPU time
    is what the call costs whatever else the machine runs; wall time includes waiting for a core."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0) / repeat, (time.process_time() - c0) / repeat


def emit(name: str, out: dict, path: str | None = None) -> None:
    """Print the JSON on stdout and, with ``path`` ("-" for none, None for the default
    benchmarks/results/<name>.json), write it there too.  The load average at the end is added."""
    out.setdefault("machine", machine())
    out["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if path != "-":
        dest = Path(path) if path else RESULTS / f"{name}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text + "\n")
        print(f"written {dest}", file=sys.stderr)
