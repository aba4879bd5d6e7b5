"""phi^4 generator speed: independent critical samples per second, cluster+local vs local only,
and the end-to-end time of 256 critical 64^2 samples (JSON).

Both samplers are measured in the same run (the ratio is what to read: these machines are shared
and noisy; the load average at start and end is recorded, and process CPU seconds are given next to
wall seconds: CPU time is what the work costs whatever else runs).  Independent samples per second
= chains / (tau_int(m^2) * seconds per iteration), tau_int in iterations (one Metropolis sweep, plus
one cluster update for the cluster sampler).  The local-only tau at L = 64 is ~ thousands of sweeps;
a run of `--local-iterations` sweeps truncates it, so it is a lower bound and the local rate an
upper bound (the ratio is a lower bound too).  Targets: the ratio >= 20; `generate_phi4(size=64,
n_samples=256)` <= 20 s on 2 cores.  The generated samples are compared with the shipped
`assets/phi4_L64_beta0.68.npz` (Binder U, chi, energy per site: differences in combined standard
errors).  The thread pool's effect: seconds per iteration of 256 chains with 1 and with 2 threads.

``--before REV`` (instead of everything else): the end-to-end generation of this checkout and of
git revision REV (its ``explorer`` package extracted with ``git archive`` into a temporary
directory: nothing is written in the repository), each in a fresh process, run alternately
``--rounds`` times (the order swapped every round), with wall and process CPU seconds, the load
before and after each run, and the ratios this / REV of the medians.

    python benchmarks/bench_phi4.py [--size 64] [--beta 0.68] [--quick] [--out PATH | --out -]
    python benchmarks/bench_phi4.py --before main [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from common import emit, machine, timed
from explorer.core.fields import phi4
from explorer.core.observables import jackknife

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


def seconds_per_iteration(size, beta, chains, cluster, threads, iterations=30):
    """(wall, cpu) seconds per iteration of ``chains`` chains after a short equilibration."""
    rng = np.random.default_rng(7)
    ch = phi4._Chains(phi4._init_chains(chains, size, rng), beta, 1.0, rng, cluster=cluster,
                      threads=threads)
    for _ in range(5):
        ch.iterate()
    _, wall, cpu = timed(ch.iterate, repeat=iterations)
    ch.close()
    return wall, cpu


def compare_with_asset(fields: np.ndarray, beta: float) -> dict:
    ref = np.load(ASSETS / f"phi4_L64_beta{beta:.2f}.npz", allow_pickle=False)["fields"]
    out = {}
    for name in ("binder", "chi", "energy_per_site"):
        vals = []
        for x in (ref.astype(np.float64), fields.astype(np.float64)):
            L = x.shape[-1]
            m = x.mean(axis=(-2, -1))
            if name == "binder":
                o = phi4.phi4_observables(x)
                vals.append((o["binder"], o["binder_err"]))
            elif name == "chi":
                vals.append(jackknife(m, lambda v: L * L * np.mean(v * v)))
            else:
                e = phi4.energy(x, beta) / L**2
                vals.append((float(e.mean()), float(e.std(ddof=1) / np.sqrt(len(e)))))
        (a, da), (b, db) = vals
        out[name] = {"shipped": a, "shipped_err": da, "generated": b, "generated_err": db,
                     "difference_in_sigma": abs(a - b) / float(np.hypot(da, db))}
    return out


def generation(size: int, beta: float, n: int) -> dict:
    """One end-to-end ``generate_phi4(size, n_samples=n, seed=3)``: seconds, CPU seconds, the
    iterations and the sampler's schedule, the load before and after."""
    load = os.getloadavg()[0]
    fs, wall, cpu = timed(phi4.generate_phi4, size=size, n_samples=n, beta=beta, seed=3)
    s = fs.meta["sampler"]
    return {"seconds": wall, "cpu_seconds": cpu, "load_before": load,
            "load_after": os.getloadavg()[0],
            "iterations": s["burn_in"] + s["thin"] * s["samples_per_chain"],
            "tau_used": s["tau_used"], "burn_in": s["burn_in"], "thin": s["thin"],
            "equilibrated": s["equilibrated"], "binder": fs.meta["observables"]["binder"],
            "explorer": str(Path(phi4.__file__).resolve().parents[3])}


def extract_revision(rev: str, into: Path) -> str:
    """The ``explorer`` package at git revision ``rev`` extracted under ``into``; its commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], check=True,
                            capture_output=True, text=True).stdout.strip()
    tar = into / "src.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "explorer"], check=True,
                       stdout=f)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    tar.unlink()
    return commit


def generation_in(src: Path, size: int, beta: float, n: int) -> dict:
    """:func:`generation` of the package under ``src`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, __file__, "--generate-only", "--size", str(size),
                          "--beta", str(beta), "--samples", str(n)],
                         check=True, capture_output=True, text=True, env=env, cwd=src)
    return json.loads(out.stdout.strip().splitlines()[-1])


def side_by_side(before: str, rounds: int, size: int, beta: float, n: int) -> dict:
    """The generation of this checkout and of revision ``before``, alternately (the order
    swapped every round); medians and the ratios this / before."""
    runs: dict[str, list[dict]] = {"before": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        commit = extract_revision(before, Path(tmp))
        for i in range(rounds):
            for side in (("before", "this") if i % 2 == 0 else ("this", "before")):
                runs[side].append(generation_in(Path(tmp) if side == "before" else ROOT,
                                                size, beta, n))
                print(side, json.dumps(runs[side][-1]), file=sys.stderr, flush=True)
    med = {side: {k: float(np.median([r[k] for r in rs])) for k in ("seconds", "cpu_seconds")}
           for side, rs in runs.items()}
    return {"before_revision": before, "before_commit": commit, "rounds": rounds,
            "n_samples": n, "before": runs["before"], "this": runs["this"], "median": med,
            "ratio_this_over_before": {k: med["this"][k] / med["before"][k]
                                       for k in ("seconds", "cpu_seconds")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--beta", type=float, default=0.68)
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--cluster-iterations", type=int, default=600)
    ap.add_argument("--local-iterations", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="small run to check the script")
    ap.add_argument("--out", default=None)
    ap.add_argument("--before", default=None, metavar="REV",
                    help="only the generation, side by side with git revision REV")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side (--before)")
    ap.add_argument("--samples", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quick:
        a.size, a.chains, a.cluster_iterations, a.local_iterations = 16, 16, 200, 400
    n = a.samples or (16 if a.quick else 256)
    if a.generate_only:  # one run for --before, in a fresh process: one line of JSON
        print(json.dumps(generation(a.size, a.beta, n), default=float))
        return
    if a.before:
        out = {"machine": machine(), "size": a.size, "beta": a.beta,
               "generate_side_by_side": side_by_side(a.before, a.rounds, a.size, a.beta, n)}
        emit("bench_phi4_side_by_side", out, a.out)
        return

    out = {"machine": machine(), "size": a.size, "beta": a.beta, "chains": a.chains}
    # the end-to-end generation first: of the three measurements it is the one given as an
    # absolute time (the others are ratios), so it runs before anything else has loaded the machine
    out["load_before_generate"] = os.getloadavg()[0]
    fs, wall, cpu = timed(phi4.generate_phi4, size=a.size, n_samples=n, beta=a.beta, seed=3)
    s = fs.meta["sampler"]
    out["generate"] = {"n_samples": n, "seconds": wall, "cpu_seconds": cpu, "target_seconds": 20,
                       "iterations": s["burn_in"] + s["thin"] * s["samples_per_chain"],
                       "sampler": s, "observables": fs.meta["observables"]}
    if not a.quick and a.size == 64 and (ASSETS / f"phi4_L64_beta{a.beta:.2f}.npz").exists():
        out["generate"]["versus_shipped_data"] = compare_with_asset(fs.fields, a.beta)
    rates = {}
    for name, cluster, iters in [("cluster+local", True, a.cluster_iterations),
                                 ("local only", False, a.local_iterations)]:
        r, wall, cpu = timed(phi4.measure_tau, a.beta, a.size, cluster=cluster,
                             n_chains=a.chains, iterations=iters, equilibrate=200, seed=1)
        w_it, c_it = seconds_per_iteration(a.size, a.beta, a.chains, cluster, threads=None)
        tau = r["tau_m2"]
        rates[name] = (a.chains / (tau * w_it), a.chains / (tau * c_it))
        out[name] = {"tau_int_m2_iterations": tau, "tau_int_energy_iterations": r["tau_energy"],
                     "window_m2": r["window_m2"], "iterations": iters,
                     "tau_is_lower_bound": bool(r["window_m2"] > iters / 2),
                     "seconds_per_iteration": w_it, "cpu_seconds_per_iteration": c_it,
                     "independent_samples_per_second": rates[name][0],
                     "independent_samples_per_cpu_second": rates[name][1],
                     "seconds": wall, "cpu_seconds": cpu}
    out["ratio_cluster_over_local"] = rates["cluster+local"][0] / rates["local only"][0]
    out["ratio_cluster_over_local_cpu"] = rates["cluster+local"][1] / rates["local only"][1]
    out["ratio_target"] = 20.0

    threads = {}
    for t in (1, 2):
        w, c = seconds_per_iteration(a.size, a.beta, n, True, threads=t, iterations=10)
        threads[f"{t} thread{'s' if t > 1 else ''}"] = {"seconds_per_iteration": w,
                                                        "cpu_seconds_per_iteration": c}
    threads["wall_ratio_1_over_2"] = (threads["1 thread"]["seconds_per_iteration"]
                                      / threads["2 threads"]["seconds_per_iteration"])
    out["iteration_of_all_chains"] = {"chains": n, **threads}

    emit("bench_phi4", out, a.out)


if __name__ == "__main__":
    main()
