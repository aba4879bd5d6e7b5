"""Scattering statistics per second at 256² against kymatio, and synthesis wall time (JSON).

Side by side in one run (these machines are noisy: read the ratios):
* ours: S1-S4 of :func:`explorer.core.scattering.scattering_spectra` (one image per call, and a
  batch of 8 per call), J = 5..7, L = 4..8;
* peer: kymatio 0.3 ``Scattering2D`` numpy frontend (order-2 scattering, one image per call), only
  when kymatio imports (it needs scipy < 1.17: run ``bash benchmarks/peer_env.sh`` and use
  ``.venv-bench/bin/python``); otherwise the peer columns are null;
* microcanonical synthesis: wall and process CPU time per L-BFGS iteration (two syntheses at
  once) at 128² and 256², and the full-loop seconds for ``--iterations``; with ``--before REV``
  the same synthesis timings of the code at git revision REV (its ``explorer`` package extracted
  to a temporary directory and run in a subprocess), alternating with ours in the same run;
  ``--precision`` sets our synthesis's precision (default: the code's, recorded in each row).

Process CPU time is reported next to wall time everywhere (these machines are shared: wall time
is inflated by waiting for a core, CPU time is what the work costs).

    .venv-bench/bin/python benchmarks/bench_scattering.py [--repeats 5] [--iterations 20] \
        [--before REV] [--synthesis-sizes 256] [--precision single|double]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy

from explorer.core import scattering as sc
from explorer.core.io import load_fields

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
CONFIGS = [(5, 4), (6, 4), (7, 4), (5, 8)]


def median_time(fn, repeats: int) -> float:
    return timed(fn, repeats)[0]


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and median process CPU seconds of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu))


def synthesis_timing(M: int, J: int, iterations: int, repeats: int,
                     precision: str | None = None) -> dict:
    """Loss-and-gradient and full-loop timings of two syntheses from field 0 (this process's
    ``explorer``), in ``precision`` (None: the code's default; older code has no option)."""
    d = load_fields(ASSETS / f"turbulence_L{M}.npz").fields[:1].astype(np.float64)
    opt = {} if precision is None else {"precision": precision}
    obj = sc.SynthesisObjective(d, J=J, L=4, **opt)
    x0 = np.random.default_rng(0).standard_normal((2, M, M)) * d.std()
    obj(x0)
    t_eval, c_eval = timed(lambda: obj(x0), max(1, repeats))
    t, c = time.perf_counter(), time.process_time()
    fs = sc.synthesize(d, 2, J=J, L=4, iterations=iterations, seed=0, **opt)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    meta = fs.meta["synthesis"]
    return {"size": M, "J": J, "L": 4, "syntheses": 2, "iterations": meta["iterations"],
            "evaluations": meta["evaluations"], "seconds_per_loss_and_gradient": t_eval,
            "cpu_seconds_per_loss_and_gradient": c_eval, "wall_seconds": wall, "cpu_seconds": cpu,
            "seconds_per_iteration": wall / meta["iterations"],
            "cpu_seconds_per_iteration": cpu / meta["iterations"], "final_loss": meta["loss"],
            "precision": fs.meta["params"].get("precision", "double"),
            "explorer": str(Path(sc.__file__).resolve().parents[3].name)}


def extract_revision(rev: str, into: str) -> str:
    """The ``explorer`` package at git revision ``rev`` extracted under ``into``; its commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], check=True,
                            capture_output=True, text=True).stdout.strip()
    tar = Path(into) / "src.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "explorer"], check=True,
                       stdout=f)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    return commit


def before_timing(src: str, M: int, J: int, iterations: int, repeats: int) -> dict:
    """:func:`synthesis_timing` of the extracted package ``src`` in a subprocess."""
    env = {**os.environ, "PYTHONPATH": src, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, __file__, "--synthesis-only", f"{M},{J}",
                          "--iterations", str(iterations), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True, env=env, cwd=src)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    ap.add_argument("--no-statistics", action="store_true")
    ap.add_argument("--synthesis-sizes", nargs="+", type=int, default=[128, 256])
    ap.add_argument("--before", default=None, metavar="REV",
                    help="also time the synthesis of the code at this git revision, alternating")
    ap.add_argument("--precision", choices=("double", "single"), default=None,
                    help="precision of our synthesis (default: the code's default)")
    ap.add_argument("--synthesis-only", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.synthesis_only:                 # the subprocess of --before
        M, J = map(int, a.synthesis_only.split(","))
        print(json.dumps(synthesis_timing(M, J, a.iterations, max(1, a.repeats // 2))))
        return
    configs = CONFIGS if a.configs is None else [tuple(map(int, c.split(","))) for c in a.configs]
    x = load_fields(ASSETS / "turbulence_L256.npz").fields.astype(np.float64)
    one = x[:1]
    batch = x[:8]
    out: dict = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                             "scipy": scipy.__version__, "fft_workers": sc.WORKERS},
                 "statistics_256": [], "synthesis": []}
    note = None
    for J, L in ([] if a.no_statistics else configs):
        S, note = peer(256, J, L)
        ours = lambda: sc.scattering_spectra(one, J, L)            # noqa: E731
        ours8 = lambda: sc.scattering_spectra(batch, J, L, batch=8)  # noqa: E731
        ours(), ours8()
        if S is not None:
            S.scattering(one[0])
        t_one, t_batch, t_peer, ratios = [], [], [], []
        c_one, c_peer, c_ratios = [], [], []
        for _ in range(a.repeats):        # interleaved, so that load changes hit both sides
            w, c = timed(ours, 1)
            t_one.append(w)
            c_one.append(c)
            if S is not None:
                w, c = timed(lambda: S.scattering(one[0]), 1)
                t_peer.append(w)
                c_peer.append(c)
                ratios.append(t_peer[-1] / t_one[-1])
                c_ratios.append(c_peer[-1] / c_one[-1])
        # the batch of 8 after the pairs: its ~100 MB of frees hand the heap back to the OS, and
        # the next one-image call paid ~2700 page faults (+15 ms CPU at J5 L4) to fault it back in
        for _ in range(a.repeats):
            t_batch.append(median_time(ours8, 1) / len(batch))
        row = {"J": J, "L": L, "count_isotropic": sc.isotropic_count(J, L),
               "ours_images_per_s": 1.0 / float(np.median(t_one)),
               "ours_images_per_s_batch8": 1.0 / float(np.median(t_batch)),
               "kymatio_images_per_s": None if not t_peer else 1.0 / float(np.median(t_peer)),
               "speedup_vs_kymatio_median_of_pairs":
                   None if not ratios else float(np.median(ratios)),
               "speedup_pairs": [round(r, 2) for r in ratios],
               "ours_cpu_seconds": float(np.median(c_one)),
               "kymatio_cpu_seconds": None if not c_peer else float(np.median(c_peer)),
               "cpu_speedup_vs_kymatio_median_of_pairs":
                   None if not c_ratios else float(np.median(c_ratios)),
               "load_average_1min": os.getloadavg()[0]}
        out["statistics_256"].append(row)
        print(json.dumps(row), flush=True)
    out["peer_note"] = note or ("kymatio 0.3 Scattering2D numpy frontend, max_order=2, one image "
                                "per call")
    sizes = [] if a.no_synthesis else [(M, {128: 5, 256: 6}.get(M, 6)) for M in a.synthesis_sizes]
    with tempfile.TemporaryDirectory() as tmp:
        if a.before and sizes:
            out["before_commit"] = extract_revision(a.before, tmp)
        for M, J in sizes:
            row = {"load_average_1min_start": os.getloadavg()[0]}
            if a.before:                 # before, ours, before, ours: alternating under load
                runs = [before_timing(tmp, M, J, a.iterations, a.repeats),
                        synthesis_timing(M, J, a.iterations, max(1, a.repeats // 2), a.precision),
                        before_timing(tmp, M, J, a.iterations, a.repeats),
                        synthesis_timing(M, J, a.iterations, max(1, a.repeats // 2), a.precision)]
                row["before"] = [runs[0], runs[2]]
                row["ours"] = [runs[1], runs[3]]
                for k in ("seconds_per_iteration", "cpu_seconds_per_iteration"):
                    row[f"speedup_{k}"] = [b[k] / o[k] for b, o in zip(row["before"], row["ours"])]
            else:
                row["ours"] = [synthesis_timing(M, J, a.iterations, max(1, a.repeats // 2),
                                                a.precision)]
            row["load_average_1min_end"] = os.getloadavg()[0]
            out["synthesis"].append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
