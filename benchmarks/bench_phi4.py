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

    python benchmarks/bench_phi4.py [--size 64] [--beta 0.68] [--quick] [--out PATH | --out -]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from common import emit, machine, timed
from explorer.core.fields import phi4
from explorer.core.observables import jackknife

ASSETS = Path(__file__).resolve().parent.parent / "assets"


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--beta", type=float, default=0.68)
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--cluster-iterations", type=int, default=600)
    ap.add_argument("--local-iterations", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="small run to check the script")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.quick:
        a.size, a.chains, a.cluster_iterations, a.local_iterations = 16, 16, 200, 400

    out = {"machine": machine(), "size": a.size, "beta": a.beta, "chains": a.chains}
    # the end-to-end generation first: of the three measurements it is the one given as an
    # absolute time (the others are ratios), so it runs before anything else has loaded the machine
    n = 16 if a.quick else 256
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
