"""The `phi4` WCRG model across the phase diagram and across sizes; prints (and writes) JSON.

Part ``phase`` (docs/models.md, "Across the phase diagram"): at every beta, cluster-sampler data
of side ``--size`` (cached in ``--cache``, never in the repository), a model fitted and sampled
twice (``--configs``):

* ``plain`` (depth 4): the former defaults — score matching of every factor, the polynomial potential at
  every scale, coarse chains started from noise with MALA only (no sign flips);
* ``fixed`` (the data's default depth, the deepest whose coarse fields are not in the rare
  sign-crossing band, ``explorer.core.model.crossing_depth``; or ``--depth``): score matching with the maximum-likelihood refinement of the conditionals j >= 2
  (``ml_refine=2``), a conditional whose data never cross zero given their condition keeps its
  potential at 0 (``min_sign_crossing``), coarse chains started magnetised with exact sign flips,
  replica exchange on the coarse factor when the data's coarse fields cross zero (the current
  defaults of ``WCRGModel.sample``).

Part ``transfer`` ("Size transfer and the fixed point"): the fixed model fitted at ``--size``,
sampled at 2x and 4x the side (``WCRGModel.sample(n, size=...)``) and compared with cluster data
of those sizes: Binder cumulant, chi(L') / chi(L) against the data's, spectrum.

Part ``extrapolation``: what the transfer extrapolates (the lattice spectrum fitted at L and
L/2, ``explorer.core.scale_spectrum``) against the per-scale RMS and chi of cluster data at 2x
and 4x the side, before any model is fitted or sampled.

Part ``flow``: the RG-flow distance table (``explorer.core.rgflow.rg_flow_table``).

Each comparison: Binder U, <|m|>, mean |log ratio| of the radial spectra, total variation of the
sign-symmetrised one-point histograms, detail standard deviations per scale (samples / data).

    python benchmarks/bench_phase_diagram.py [--part phase|transfer|extrapolation|flow|all]
        [--out out.json] [--betas 0.50,0.60,...] [--size 64] [--samples 256] [--depth J]
        [--configs plain,fixed] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.model import WCRGModel, default_depth
from explorer.core.observables import PHASE_BOUNDS, binder_cumulant, magnetisation, phase_metrics
from explorer.core.transfer import transferred

BETAS = (0.50, 0.60, 0.65, 0.68, 0.70, 0.72, 0.76, 0.85)
BOUNDS = PHASE_BOUNDS
J = 4
PLAIN = dict(fit={"min_sign_crossing": 0.0},
             sample={"coarse_start": "noise", "sign_flip": False, "temperatures": 1})
FIXED = dict(fit={"ml_refine": 2}, sample={})


def data_for(L: int, beta: float, n: int, seed: int, cache: Path) -> np.ndarray:
    path = cache / f"phi4_L{L}_b{beta:.2f}_n{n}_s{seed}.npz"
    for m in sorted({n, 128, 256, 512}):   # a larger cached batch serves a smaller request
        p = cache / f"phi4_L{L}_b{beta:.2f}_n{m}_s{seed}.npz"
        if m >= n and p.exists():
            return np.load(p)["fields"][:n].astype(np.float64)
    fs = generate_phi4(size=L, n_samples=n, beta=beta, seed=seed)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, fields=fs.fields)
    return fs.fields.astype(np.float64)


def chi_rel_err(fields: np.ndarray) -> float:
    """Relative standard error of chi = L² <m²> from independent fields: std(m²) / (<m²> sqrt n)."""
    m2 = magnetisation(fields) ** 2
    return float(m2.std() / (m2.mean() * np.sqrt(len(m2))))


def extrapolation_check(model: WCRGModel, y: np.ndarray) -> dict:
    """What the transfer to the side of ``y`` extrapolates (σ of the added levels, the coarse
    low-pass RMS, chi(L') / chi(L) = a²) against the same statistics of the data ``y``."""
    big = transferred(model, y.shape[-1])
    tr, st = big.stats["size_transfer"], model.stats
    J2 = big.J
    d = wv.scale_stats(y, J2, model.wavelet)
    low = float(np.sqrt(np.mean(wv.low_passes(y, J2, model.wavelet)[-1] ** 2)))
    chi_fit = st["coarse_m_rms"] ** 2 * st["L"] ** 2 / 4 ** model.J
    chi_y = float(y.shape[-1] ** 2 * np.mean(magnetisation(y) ** 2))
    return {"sigma_predicted": [e["sigma"] for e in tr["conditionals_extrapolated"].values()],
            "sigma_data": d.detail_std[model.J:].tolist(),
            "coarse_rms_predicted": big.stats["low_rms"][-1], "coarse_rms_data": low,
            "chi_ratio_predicted": tr["coarse_rescaled_by"] ** 2,
            "chi_ratio_data_vs_fit_data": chi_y / chi_fit,
            "method": tr["extrapolation"]["method"],
            "regime": tr["extrapolation"].get("regime")}


def compare(data: np.ndarray, samples: np.ndarray, J: int = J) -> dict:
    return phase_metrics(data, samples, J)


def run_config(x: np.ndarray, cfg: dict, n: int, steps: int, seed: int = 1,
               depth: int = J) -> dict:
    t0 = time.perf_counter()
    model = WCRGModel("phi4", depth, "db4", radius=1).fit(x, **cfg["fit"])
    t1 = time.perf_counter()
    row = {"depth": depth, "fit_seconds": t1 - t0,
           "potential_held_at_zero": [f.j for f in model.conditionals
                                      if f.fit.get("potential_held_at_zero")],
           "sign_crossing": [round(f.fit.get("sign_crossing", float("nan")), 5)
                             for f in model.conditionals]}
    try:
        fs = model.sample(n, steps=steps, burn_in=steps, seed=seed, **cfg["sample"])
    except Exception as e:  # a failure is a result here: recorded, not raised
        row.update(failed=f"{type(e).__name__}: {e}", sample_seconds=time.perf_counter() - t1)
        return row
    row["sample_seconds"] = time.perf_counter() - t1
    row.update(compare(x, fs.fields.astype(np.float64), J=depth))
    return row


def part_phase(a) -> dict:
    out = {}
    for beta in a.betas:
        x = data_for(a.size, beta, a.samples, a.seed, a.cache)
        # "plain" at depth 4 throughout (the lesson); "fixed" at the default depth of the data,
        # the deepest outside the rare sign-crossing band (explorer.core.model.crossing_depth)
        depth = default_depth(a.size, "phi4", x) if a.depth is None else a.depth
        runs = {"plain": lambda: run_config(x, PLAIN, a.samples, a.steps),
                "fixed": lambda: run_config(x, FIXED, a.samples, a.steps, depth=depth)}
        out[f"{beta:.2f}"] = {name: runs[name]() for name in a.configs.split(",")}
        print(json.dumps({f"{beta:.2f}": out[f"{beta:.2f}"]}, default=float), flush=True)
    return out


def part_transfer(a) -> dict:
    out = {}
    for beta in a.transfer_betas:
        x = data_for(a.size, beta, a.samples, a.seed, a.cache)
        model = WCRGModel("phi4", J, "db4", radius=1).fit(x, **FIXED["fit"])
        s1 = model.sample(a.samples, steps=a.steps, burn_in=a.steps, seed=1).fields
        base = compare(x, s1.astype(np.float64))
        base_err = chi_rel_err(s1.astype(np.float64))
        rows = {str(a.size): base}
        for factor in a.factors:
            L2 = a.size * factor
            n2 = a.transfer_samples.get(L2, a.samples)
            have = any((a.cache / f"phi4_L{L2}_b{beta:.2f}_n{m}_s{a.seed}.npz").exists()
                       for m in (n2, 128, 256, 512) if m >= n2)
            y = (data_for(L2, beta, n2, a.seed, a.cache) if have or L2 <= a.generate_max
                 else None)
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                fs = model.sample(n2, size=L2, steps=a.steps, burn_in=a.steps, seed=1)
            except Exception as e:
                rows[str(L2)] = {"failed": f"{type(e).__name__}: {e}"}
                continue
            s2 = fs.fields.astype(np.float64)
            if y is not None:
                r = compare(y, s2, J=J + int(np.log2(factor)))
                r["chi_ratio_data"] = r["chi_data"] / base["chi_data"]
                r["chi_ratio_data_rel_err"] = float(np.hypot(chi_rel_err(y), chi_rel_err(x)))
                r["extrapolation_check"] = extrapolation_check(model, y)
                r["n_data"] = len(y)
            else:   # no cluster data of this size (their cost): the samples alone
                ms = magnetisation(s2)
                r = {"no_cluster_data": True, "binder_samples": binder_cumulant(ms),
                     "abs_m_samples": float(np.abs(ms).mean()),
                     "chi_samples": float(L2 ** 2 * np.mean(ms ** 2))}
            r["sample_seconds"] = time.perf_counter() - t0
            r["sample_cpu_seconds"] = time.process_time() - c0
            r["chi_ratio_samples"] = r["chi_samples"] / base["chi_samples"]
            r["chi_ratio_samples_rel_err"] = float(np.hypot(chi_rel_err(s2), base_err))
            r["n_samples"] = len(s2)
            r["chi_ratio_reference_critical"] = factor ** 1.75
            r["size_transfer"] = fs.meta["size_transfer"]
            rows[str(L2)] = r
            print(json.dumps({f"{beta:.2f}": {str(L2): r}}, default=float), flush=True)
        out[f"{beta:.2f}"] = rows
    return out


def part_extrapolation(a) -> dict:
    """The per-scale growth the size transfer extrapolates (the lattice spectrum fitted to the
    statistics of side L, explorer.core.scale_spectrum) against cluster data of side 2L and 4L:
    log2 growth of the detail RMS from level J at L to the added levels, of the coarse low-pass
    RMS, and chi(L') / chi(L); no model is fitted, no sample drawn."""
    from explorer.core.scale_spectrum import extrapolated_ratios, fit_spectrum
    out = {}
    for beta in a.transfer_betas:
        for L in (a.size // 2, a.size):
            Jf = int(np.log2(L)) - 2   # coarse 4 x 4
            x = data_for(L, beta, a.samples, a.seed, a.cache)
            st = wv.scale_stats(x, Jf)
            low = [float(np.sqrt(np.mean(w ** 2))) for w in wv.low_passes(x, Jf)]
            fit = fit_spectrum(L, st.detail_std_channels, low)
            chi = float(L ** 2 * np.mean(magnetisation(x) ** 2))
            row = {"spectrum": fit.to_dict()}
            for factor in a.factors:
                L2, k = L * factor, int(np.log2(factor))
                if L2 > a.generate_max and not any(
                        a.cache.glob(f"phi4_L{L2}_b{beta:.2f}_n*_s{a.seed}.npz")):
                    continue
                n2 = a.transfer_samples.get(L2, a.samples)
                y = data_for(L2, beta, max(n2, 64), a.seed, a.cache)
                sy = wv.scale_stats(y, Jf + k)
                low_y = float(np.sqrt(np.mean(wv.low_passes(y, Jf + k)[-1] ** 2)))
                r = extrapolated_ratios(fit, Jf, k)
                chi_y = float(L2 ** 2 * np.mean(magnetisation(y) ** 2))
                row[str(L2)] = {
                    "detail_log2_growth_predicted": np.log2(r["detail"]).tolist(),
                    "detail_log2_growth_data": np.log2(sy.detail_std[Jf:]
                                                       / st.detail_std[Jf - 1]).tolist(),
                    "coarse_log2_growth_predicted": float(np.log2(r["low"][-1])),
                    "coarse_log2_growth_data": float(np.log2(low_y / low[-1])),
                    "chi_ratio_predicted": r["mean"] ** 2, "chi_ratio_data": chi_y / chi,
                    "chi_ratio_data_rel_err": float(np.hypot(chi_rel_err(x), chi_rel_err(y))),
                    "n_data": [len(x), len(y)]}
            out[f"{beta:.2f} L{L}"] = row
            print(json.dumps({f"{beta:.2f} L{L}": row}, default=float), flush=True)
    return out


def part_flow(a) -> dict:
    from explorer.core.rgflow import rg_flow_table
    fields = {b: data_for(a.size, b, a.samples, a.seed, a.cache) for b in a.betas}
    return rg_flow_table(fields)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("phase", "transfer", "extrapolation", "flow", "all"),
                    default="all")
    ap.add_argument("--betas", default=",".join(f"{b:.2f}" for b in BETAS))
    ap.add_argument("--transfer-betas", default="0.68,0.50")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--depth", type=int, default=None,
                    help="depth of the fixed model (default: the data's default depth)")
    ap.add_argument("--configs", default="plain,fixed", help="which models of --part phase")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=str(Path(__file__).resolve().parent / "results" / "cache"),
                    help="folder for the generated cluster data (never committed)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--generate-max", type=int, default=128,
                    help="largest side for which cluster data are generated when not cached")
    ap.add_argument("--quick", action="store_true", help="small run to check the script")
    a = ap.parse_args()
    a.betas = [float(b) for b in a.betas.split(",")]
    a.transfer_betas = [float(b) for b in a.transfer_betas.split(",")]
    a.cache = Path(a.cache)
    a.factors = (2, 4)
    # 128 fields at 128², 64 at 256² (sampling cost; 256² cluster data are generated only with
    # --generate-max 256: 64 fields took 199 s CPU at beta 0.68 and 74 s at 0.50, 11 and 8
    # minutes of wall time on 2 cores shared at load 8-9)
    a.transfer_samples = {128: 128, 256: 64}
    if a.quick:
        a.size, a.samples, a.steps, a.betas, a.transfer_betas = 32, 64, 30, [0.5, 0.76], [0.68]
        a.factors, a.transfer_samples = (2,), {}
    t0 = time.perf_counter()
    out = {"size": a.size, "samples": a.samples, "steps": a.steps, "J": J, "bounds": BOUNDS,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}}
    if a.part in ("phase", "all"):
        out["phase"] = part_phase(a)
    if a.part in ("transfer", "all"):
        out["transfer"] = part_transfer(a)
    if a.part in ("extrapolation", "all"):
        out["extrapolation"] = part_extrapolation(a)
    if a.part in ("flow", "all"):
        out["flow"] = part_flow(a)
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time()
    out["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(out, indent=1, default=float)
    if a.out:
        Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
