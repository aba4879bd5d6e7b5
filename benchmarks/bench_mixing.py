"""Mixing, end to end: the cost of one independent critical phi^4 sample, by sampler, against L (JSON).

At beta_c = 0.68 (lambda = 1), for each L, on data from the cluster generator:

(a) the WCRG multiscale sampler (family phi4, depth J = log2(L / 8), score matching): every
    conditional's MALA chains run given fixed coarser fields taken from the data, the coarse 8 x 8
    factor's MALA chains on their own; per factor tau_int of its slowest observable (the factor's
    energy, the mean square and the mean fourth power of its variables), in steps, times the cost
    of one of its gradients in full-resolution-gradient equivalents, (n / L)^2 for a factor acting
    on an n x n field; the coarse factor's cost is multiplied by the number of replicas the
    model's sampler runs there (replica exchange when the coarse data cross zero).  The sum over
    factors is the cost of one independent sample;
(b) single-scale MALA on the fitted depth-0 phi4 model: tau_int(m^2) in gradient evaluations (the
    energy's tau is reported next to it);
(c) Fourier-accelerated MALA on the same depth-0 model, preconditioned by its quadratic part plus
    the potential's mean curvature on the data (explorer.core.preconditioning): tau_int(m^2) in
    gradient evaluations (each step also costs two FFT round trips, reported as a wall-time
    ratio per step); (c2) the same with the couplings' spectrum alone as curvature (negative at
    small k at beta_c, floored at 1e-3 of the largest): the two readings of "preconditioned by the
    fitted quadratic part";
(d) for reference, the exact energy with the cluster generator: tau_int(m^2) in iterations (one
    Metropolis sweep + one Swendsen-Wang update).

tau_int is Sokal's automatic window (c = 6) on the multi-chain autocorrelation (pooled mean),
trusted when the window fits in half the run; when it does not, the run's T / 12 is reported as a
lower bound ("measured": false) and so is every cost built on it.  The conditionals' chains each
have their own condition, hence their own stationary means: their autocorrelations subtract each
chain's mean (the pooled mean would count the spread between conditions as correlation that never
decays).  The coarse factor is measured with plain MALA and charged for every replica the model's
sampler would run (replica exchange when the coarse data cross zero): conservative for (a).  All chains start from data
fields (in equilibrium up to the model's error), after a burn-in that adapts the step.  The growth
with L is the slope of log cost against log L (from two or three sizes: a rough exponent).
Targets (issue): (a) >= 10x cheaper than (b) at L = 64, >= 30x at L = 128, cheaper than (c) at 128.

    python benchmarks/bench_mixing.py [--sizes 32 64] [--steps 5000] [--single-steps 40000]
        [--chains 32] [--single-chains 4] [--skip-c2] [--resume EARLIER.json ...]
        [--out PATH | --out -]

The run reported in docs/performance.md (three sizes, ~3 h on a loaded 2-core machine):
``--sizes 32 64 --single-chains 4 --single-steps 80000 --skip-c2``, then ``--sizes 128
--chains 8 --single-chains 2 --single-steps 80000 --skip-c2 --cluster-iterations 300``, merged
with ``--sizes --resume A.json B.json`` (each size's row records its own settings).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from bench_phase_diagram import data_for as cached_data
from common import emit, machine
from explorer.core import wavelets as wv
from explorer.core.fields import phi4
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel, _shared_energy_and_grad
from explorer.core.observables import tau_estimate
from explorer.core.preconditioning import iter_fourier_mala, quadratic_curvature
from explorer.core.progress import run
from explorer.core.sampling import iter_langevin

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BETA = 0.68


def tau_of(series: np.ndarray, pooled: bool = True) -> dict:
    est = tau_estimate(series, 6.0, 2.0, pooled_mean=pooled)
    return {"tau": float(est.lower_bound), "measured": bool(est.measured),
            "window": int(est.window), "length": int(est.length)}


def slowest(taus: dict, only: str | None = None) -> dict:
    name = only if only is not None else max(taus, key=lambda k: taus[k]["tau"])
    return {"observable": name, **taus[name], "all": taus}


def data_for(L: int, n: int, seed: int, cache: Path) -> np.ndarray:
    """The shipped asset when there is one, else cluster data (cached as the phase-diagram
    benchmark caches them: one generation serves both)."""
    asset = ASSETS / f"phi4_L{L}_beta{BETA:.2f}.npz"
    if asset.exists():
        return load_fields(asset).fields.astype(np.float64)[:n]
    return cached_data(L, BETA, n, 1, cache)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def langevin_tau(energy, grad, x0, steps, burn_in, observe, seed, fourier=None, pooled=True,
                 only=None):
    t0 = time.perf_counter()
    if fourier is None:
        res = run(iter_langevin(energy, grad, x0, steps, burn_in=burn_in, observe=observe,
                                seed=seed, frozen_step_ratio=None))
    else:
        res = run(iter_fourier_mala(energy, grad, x0, fourier, steps, burn_in=burn_in,
                                    observe=observe, seed=seed, frozen_step_ratio=None))
    seconds = time.perf_counter() - t0
    log(f"  {steps + burn_in} steps of {x0.shape} in {seconds:.0f} s")
    prod = res.trace_steps > res.burn_in
    obs = res.observable_trace[prod]
    taus = {"energy": tau_of(res.energy_trace[prod], pooled)}
    if obs.ndim == 2:
        obs = obs[..., None]
    for k, name in enumerate(getattr(observe, "names", [f"obs{k}" for k in range(obs.shape[-1])])):
        taus[name] = tau_of(obs[..., k], pooled)
    return {"slowest": slowest(taus, only), "acceptance": float(res.acceptance), "step": float(res.step),
            "steps": steps, "burn_in": burn_in, "seconds": seconds,
            "seconds_per_step": seconds / (steps + burn_in)}


def m2_observable(x):
    m = x.mean(axis=(-2, -1))
    return m * m


m2_observable.names = ["m^2"]


def moments_observable(v):
    flat = v.reshape(len(v), -1)
    return np.stack([np.mean(flat**2, axis=1), np.mean(flat**4, axis=1)], axis=1)


moments_observable.names = ["mean v^2", "mean v^4"]


def cost_of(tau: dict, per_step: float) -> dict:
    return {"gradient_equivalents": tau["tau"] * per_step, "lower_bound": not tau["measured"]}


def one_size(L: int, a) -> dict:
    rng = np.random.default_rng(L)
    data = data_for(L, a.fields, seed=L, cache=a.cache)
    C = a.chains
    x0 = data[rng.choice(len(data), C, replace=False)]
    # the single-scale runs only need a long T (their tau at L >= 64 is a lower bound T / 12):
    # fewer chains buy a longer run at the same cost
    Cs = a.single_chains or C
    x0s = x0[:Cs]
    row: dict = {"L": L, "fields": len(data), "chains": C, "single_scale_chains": Cs,
                 "steps": a.steps, "single_steps": a.single_steps}

    # (d) the exact energy, cluster generator
    r = phi4.measure_tau(BETA, L, cluster=True, n_chains=C, iterations=a.cluster_iterations,
                         equilibrate=100, seed=L)
    row["d_cluster_exact"] = {"tau_m2_iterations": r["tau_m2"], "window": r["window_m2"],
                              "iterations": r["iterations"],
                              "lower_bound": bool(r["window_m2"] > r["iterations"] / 2)}

    # (b), (c) depth-0 model
    m0 = WCRGModel("phi4", J=0).fit(data)
    f0 = m0.coarse
    e0, g0 = _shared_energy_and_grad(f0, None)
    steps = a.single_steps
    row["b_mala_depth0"] = langevin_tau(e0, g0, x0s, steps, a.burn_in, m2_observable, seed=1,
                                        only="m^2")
    q = quadratic_curvature(f0.features, f0.theta, L, data)
    row["c_fourier_mala_depth0"] = langevin_tau(e0, g0, x0s, steps, a.burn_in, m2_observable,
                                                seed=2, fourier=q, only="m^2")
    row["c_fourier_mala_depth0"]["curvature_range"] = [float(q.min()), float(q.max())]
    keys = ["b_mala_depth0", "c_fourier_mala_depth0"]
    if not a.skip_c2:
        # the other choice: the couplings' spectrum alone (indefinite at beta_c: floored)
        q2 = quadratic_curvature(f0.features, f0.theta, L, None)
        row["c2_fourier_mala_couplings_only"] = langevin_tau(e0, g0, x0s, steps, a.burn_in,
                                                             m2_observable, seed=4, fourier=q2,
                                                             only="m^2")
        row["c2_fourier_mala_couplings_only"]["curvature_range"] = [float(q2.min()),
                                                                    float(q2.max())]
        keys.append("c2_fourier_mala_couplings_only")
    for key in keys:
        row[key]["cost"] = cost_of(row[key]["slowest"], 1.0)
    row["c_over_b_seconds_per_step"] = (row["c_fourier_mala_depth0"]["seconds_per_step"]
                                        / row["b_mala_depth0"]["seconds_per_step"])

    # (a) WCRG multiscale
    J = int(math.log2(L // 8))
    mJ = WCRGModel("phi4", J=J).fit(data)
    lows = wv.low_passes(x0, J, mJ.wavelet)
    _, details = wv.decompose(x0, J, mJ.wavelet)
    crossing = mJ.stats.get("coarse_sign_crossing", 0.0)
    replicas = 8 if crossing >= 0.01 else 1  # as WCRGModel.iter_sample chooses (MIN_SIGN_CROSSING)
    factors = []
    steps = a.steps
    ec, gc = _shared_energy_and_grad(mJ.coarse, None)
    res = langevin_tau(ec, gc, lows[J], steps, a.burn_in, moments_observable, seed=3)
    per_step = (lows[J].shape[-1] / L) ** 2 * replicas
    factors.append({"factor": f"coarse {lows[J].shape[-1]}x{lows[J].shape[-1]}",
                    "replicas_counted": replicas, "cost_per_step": per_step, **res,
                    "cost": cost_of(res["slowest"], per_step)})
    for m in mJ.conditionals:
        e, g = _shared_energy_and_grad(m, lows[m.j])
        # each chain has its own condition, hence its own stationary means: per-chain means
        res = langevin_tau(e, g, details[m.j - 1], steps, a.burn_in, moments_observable,
                           seed=10 + m.j, pooled=False)
        side = 2 * details[m.j - 1].shape[-1]
        per_step = (side / L) ** 2
        factors.append({"factor": f"conditional j={m.j} ({side}x{side} field)",
                        "cost_per_step": per_step, **res, "cost": cost_of(res["slowest"], per_step)})
    total = sum(f["cost"]["gradient_equivalents"] for f in factors)
    row["a_wcrg"] = {"J": J, "factors": factors,
                     "cost": {"gradient_equivalents": total,
                              "lower_bound": any(f["cost"]["lower_bound"] for f in factors)}}
    b = row["b_mala_depth0"]["cost"]["gradient_equivalents"]
    c = row["c_fourier_mala_depth0"]["cost"]["gradient_equivalents"]
    row["b_over_a"] = b / total
    row["c_over_a"] = c / total
    return row


def slope(xs, ys) -> float | None:
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[32, 64])
    ap.add_argument("--resume", nargs="*", default=[],
                    help="earlier outputs of this script: their sizes are kept, not re-run (a size "
                         "too costly for one run can be measured on its own, with fewer chains)")
    ap.add_argument("--chains", type=int, default=32)
    ap.add_argument("--fields", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5000, help="MALA steps per WCRG factor")
    ap.add_argument("--single-steps", type=int, default=40000,
                    help="MALA steps of the single-scale samplers (b) and (c)")
    ap.add_argument("--single-chains", type=int, default=None,
                    help="chains of (b) and (c) (default: --chains)")
    ap.add_argument("--skip-c2", action="store_true",
                    help="skip the second reading of (c) (couplings' spectrum alone)")
    ap.add_argument("--cache", default=str(Path(__file__).resolve().parent / "results" / "cache"),
                    help="cluster data cache, shared with bench_phase_diagram.py")
    ap.add_argument("--burn-in", type=int, default=300)
    ap.add_argument("--cluster-iterations", type=int, default=400)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    a.cache = Path(a.cache)
    out = {"machine": machine(), "beta": BETA,
           "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
           "sizes": {}}
    for path in a.resume:
        for key, row in json.loads(Path(path).read_text())["sizes"].items():
            out["sizes"][key] = row
    for L in a.sizes:
        if str(L) in out["sizes"]:
            continue
        log(f"L = {L}")
        out["sizes"][str(L)] = one_size(L, a)
        emit("bench_mixing", dict(out, partial=True), a.out)  # a cut run keeps what it measured
    out["sizes"] = dict(sorted(out["sizes"].items(), key=lambda kv: int(kv[0])))
    Ls = [int(k) for k in out["sizes"]]
    rows = list(out["sizes"].values())
    def growth(costs: list[dict]) -> float | str | None:
        # a slope through lower bounds (T / 12 of equally long runs) would only measure the runs
        if any(c["lower_bound"] for c in costs):
            return "lower bounds only: no exponent"
        return slope(Ls, [c["gradient_equivalents"] for c in costs])

    out["growth_exponents"] = {
        "a_wcrg": growth([r["a_wcrg"]["cost"] for r in rows]),
        "a_finest_conditional_tau": slope(Ls, [r["a_wcrg"]["factors"][1]["slowest"]["tau"]
                                               for r in rows]),
        "b_mala_depth0": growth([r["b_mala_depth0"]["cost"] for r in rows]),
        "c_fourier_mala_depth0": growth([r["c_fourier_mala_depth0"]["cost"] for r in rows]),
        "d_cluster_exact": slope(Ls, [r["d_cluster_exact"]["tau_m2_iterations"] for r in rows]),
    }
    out["targets"] = {"b_over_a_at_64": 10.0, "b_over_a_at_128": 30.0, "c_over_a_at_128": 1.0}
    out["partial"] = False
    emit("bench_mixing", out, a.out)


if __name__ == "__main__":
    main()
