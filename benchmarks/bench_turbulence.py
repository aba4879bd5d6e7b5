"""Benchmark of the 2D turbulence solver: integrating-factor RK4 steps per second at 128² and 256².

Usage: ``python benchmarks/bench_turbulence.py [--repeats 5] [--seconds 1.0]``.  Prints one JSON
object.  Both sizes are measured side by side in the same process (alternating repeats, so that
machine load affects both alike); each repeat times a fixed number of steps chosen to last about
``--seconds``; the reported rate is the median over the repeats.  Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from explorer.core.fields.turbulence import TurbulenceSolver

SIZES = (128, 256)


def _prepared_solver(size: int) -> TurbulenceSolver:
    solver = TurbulenceSolver(size=size, seed=0)
    for _ in range(20):  # leave the initial transient, warm the integrating-factor cache
        solver.step()
    return solver


def _time_steps(solver: TurbulenceSolver, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        solver.step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="target duration of a repeat")
    args = parser.parse_args(argv)

    solvers = {n: _prepared_solver(n) for n in SIZES}
    # calibrate the number of steps per repeat
    steps = {}
    for n, solver in solvers.items():
        dt = _time_steps(solver, 5) / 5
        steps[n] = max(5, int(args.seconds / dt))
    rates: dict[int, list[float]] = {n: [] for n in SIZES}
    for _ in range(max(1, args.repeats)):
        for n, solver in solvers.items():
            rates[n].append(steps[n] / _time_steps(solver, steps[n]))

    med = {n: statistics.median(r) for n, r in rates.items()}
    result = {
        "benchmark": "turbulence IF-RK4 step (Basdevant advection, 2/3 dealiasing, p=4)",
        "steps_per_second": {str(n): round(med[n], 2) for n in SIZES},
        "ms_per_step": {str(n): round(1e3 / med[n], 3) for n in SIZES},
        "ratio_128_over_256": round(med[128] / med[256], 3),
        "repeats": {str(n): [round(r, 2) for r in rates[n]] for n in SIZES},
        "steps_per_repeat": {str(n): steps[n] for n in SIZES},
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
