"""phi^4 generator speed: independent critical samples per second, cluster+local vs local only.

Prints JSON.  Both samplers are measured in the same run (the ratio is what to read: these machines
are noisy).  Independent samples per second = chains / (tau_int(m^2) * seconds per iteration), with
tau_int in iterations (one Metropolis sweep, plus one cluster update for the cluster sampler).  The
local-only tau at L = 64 is ~ thousands of sweeps; a run of `--local-iterations` sweeps truncates
it, so it is a lower bound and the local rate an upper bound (the ratio is conservative).  The
end-to-end wall time of `generate_phi4(size=64, n_samples=256)` is the number the target refers to.

    python benchmarks/bench_phi4.py [--size 64] [--beta 0.68] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from explorer.core.fields.phi4 import generate_phi4, measure_tau


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--beta", type=float, default=0.68)
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--cluster-iterations", type=int, default=600)
    ap.add_argument("--local-iterations", type=int, default=6000)
    ap.add_argument("--quick", action="store_true", help="small run to check the script")
    a = ap.parse_args()
    if a.quick:
        a.size, a.chains, a.cluster_iterations, a.local_iterations = 16, 16, 200, 400

    out = {"size": a.size, "beta": a.beta, "chains": a.chains,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    rates = {}
    for name, cluster, iters in [("cluster+local", True, a.cluster_iterations),
                                 ("local only", False, a.local_iterations)]:
        t0 = time.perf_counter()
        r = measure_tau(a.beta, a.size, cluster=cluster, n_chains=a.chains, iterations=iters,
                        equilibrate=200, seed=1)
        # measure_tau equilibrates with clusters first; time the measured part separately
        t_total = time.perf_counter() - t0
        t1 = time.perf_counter()
        measure_tau(a.beta, a.size, cluster=cluster, n_chains=a.chains, iterations=50,
                    equilibrate=0, seed=2)
        sec_per_iter = (time.perf_counter() - t1) / 50
        tau = r["tau_m2"]
        rates[name] = a.chains / (tau * sec_per_iter)
        out[name] = {"tau_int_m2_iterations": tau, "tau_int_energy_iterations": r["tau_energy"],
                     "sweep_window": r["window_m2"], "iterations": iters,
                     "seconds_per_iteration": sec_per_iter,
                     "independent_samples_per_second": rates[name], "seconds": t_total}
    out["ratio_cluster_over_local"] = rates["cluster+local"] / rates["local only"]

    t0 = time.perf_counter()
    n = 16 if a.quick else 256
    fs = generate_phi4(size=a.size, n_samples=n, beta=a.beta, seed=3)
    out["generate"] = {"n_samples": n, "seconds": time.perf_counter() - t0,
                       "target_seconds": 120, "sampler": fs.meta["sampler"],
                       "binder": fs.meta["observables"]["binder"]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
