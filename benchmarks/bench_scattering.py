"""Scattering statistics per second at 256² against kymatio, and synthesis wall time (JSON).

Side by side in one run (these machines are noisy: read the ratios):
* ours: S1-S4 of :func:`explorer.core.scattering.scattering_spectra` (one image per call, and a
  batch of 8 per call), J = 5..7, L = 4..8;
* peer: kymatio 0.3 ``Scattering2D`` numpy frontend (order-2 scattering, one image per call), only
  when kymatio imports (it needs scipy < 1.17: run ``bash benchmarks/peer_env.sh`` and use
  ``.venv-bench/bin/python``); otherwise the peer columns are null;
* microcanonical synthesis: wall time per L-BFGS iteration (two syntheses at once) at 128² and
  256², and the full-loop seconds for ``--iterations``.

    .venv-bench/bin/python benchmarks/bench_scattering.py [--repeats 5] [--iterations 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import scipy

from explorer.core import scattering as sc
from explorer.core.io import load_fields

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CONFIGS = [(5, 4), (6, 4), (7, 4), (5, 8)]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def peer(M: int, J: int, L: int):
    try:
        from kymatio.numpy import Scattering2D
    except Exception as e:  # noqa: BLE001
        return None, f"kymatio unavailable: {type(e).__name__}: {e}"[:200]
    S = Scattering2D(J=J, shape=(M, M), L=L, max_order=2)
    return S, None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--configs", nargs="+", default=None, metavar="J,L",
                    help="e.g. 5,4 7,8 (default: %s)" % " ".join(f"{j},{l}" for j, l in CONFIGS))
    ap.add_argument("--no-synthesis", action="store_true")
    a = ap.parse_args()
    configs = CONFIGS if a.configs is None else [tuple(map(int, c.split(","))) for c in a.configs]
    x = load_fields(ASSETS / "turbulence_L256.npz").fields.astype(np.float64)
    one = x[:1]
    batch = x[:8]
    out: dict = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                             "scipy": scipy.__version__, "fft_workers": sc.WORKERS},
                 "statistics_256": [], "synthesis": []}
    note = None
    for J, L in configs:
        S, note = peer(256, J, L)
        ours = lambda: sc.scattering_spectra(one, J, L)            # noqa: E731
        ours8 = lambda: sc.scattering_spectra(batch, J, L, batch=8)  # noqa: E731
        ours(), ours8()
        if S is not None:
            S.scattering(one[0])
        t_one, t_batch, t_peer, ratios = [], [], [], []
        for _ in range(a.repeats):        # interleaved, so that load changes hit both sides
            t_one.append(median_time(ours, 1))
            if S is not None:
                t_peer.append(median_time(lambda: S.scattering(one[0]), 1))
                ratios.append(t_peer[-1] / t_one[-1])
            t_batch.append(median_time(ours8, 1) / len(batch))
        row = {"J": J, "L": L, "count_isotropic": sc.isotropic_count(J, L),
               "ours_images_per_s": 1.0 / float(np.median(t_one)),
               "ours_images_per_s_batch8": 1.0 / float(np.median(t_batch)),
               "kymatio_images_per_s": None if not t_peer else 1.0 / float(np.median(t_peer)),
               "speedup_vs_kymatio_median_of_pairs": None if not ratios else float(np.median(ratios)),
               "speedup_pairs": [round(r, 2) for r in ratios]}
        out["statistics_256"].append(row)
        print(json.dumps(row), flush=True)
    out["peer_note"] = note or "kymatio 0.3 Scattering2D numpy frontend, max_order=2, one image per call"
    for M, J in (() if a.no_synthesis else ((128, 5), (256, 6))):
        d = load_fields(ASSETS / f"turbulence_L{M}.npz").fields[:1].astype(np.float64)
        obj = sc.SynthesisObjective(d, J=J, L=4)
        x0 = np.random.default_rng(0).standard_normal((2, M, M)) * d.std()
        obj(x0)
        t_eval = median_time(lambda: obj(x0), max(1, a.repeats // 2))
        t = time.perf_counter()
        fs = sc.synthesize(d, 2, J=J, L=4, iterations=a.iterations, seed=0)
        wall = time.perf_counter() - t
        row = {"size": M, "J": J, "L": 4, "syntheses": 2, "iterations": a.iterations,
               "seconds_per_loss_and_gradient": t_eval, "wall_seconds": wall,
               "seconds_per_iteration": wall / a.iterations,
               "final_loss": fs.meta["synthesis"]["loss"]}
        out["synthesis"].append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
