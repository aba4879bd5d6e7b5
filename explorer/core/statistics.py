"""Generic statistics of any batch of fields, for people's own files: the one-point law (moments,
extremes, quantiles), the spread of the per-field means, the slope of the radial power spectrum
with the range it was fitted on, a suggested WCRG depth, the detection of discrete data; and the
verdicts of a comparison of samples against data, each statistic against a stated threshold.

Nothing here assumes a physical model: the domain observables (Binder cumulant, vorticity
spectra) are added by :mod:`explorer.core.summary` only when a file's ``meta`` names its
generator or the user asks. The thresholds are explained in docs/diagnostics.md, "Verdicts".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explorer.core.fields.base import as_batch
from explorer.core.observables import (binder_cumulant, jackknife, kurtosis, magnetisation,
                                       skewness)
from explorer.core.spectra import radial_power_spectrum

#: probabilities of the one-point quantiles reported and compared
QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
#: at most this many distinct values: the data are discrete (score matching needs a density)
DISCRETE_MAX_VALUES = 16
#: fewest integer shells a spectral slope is fitted on (fewer: no slope is reported)
SLOPE_MIN_SHELLS = 5
#: a spectrum falling at least this steeply (P ∝ k^slope, slope <= -2) keeps rising towards large
#: scales: such data need the deepest WCRG depth (a short-range coarse factor fits them only small)
STEEP_SLOPE = -2.0


# ------------------------------------------------------------------ one field batch
def one_point_statistics(fields) -> dict[str, Any]:
    """Moments, extremes and quantiles of all values of a batch, and the spread of the per-field
    means (absolute, and relative to the std of all values)."""
    x = as_batch(fields)
    means = x.mean(axis=(-2, -1))
    std = float(x.std())
    q = np.quantile(x, QUANTILES)
    spread = float(means.std()) if len(means) > 1 else None
    return {"mean": float(x.mean()), "std": std, "min": float(x.min()), "max": float(x.max()),
            "skewness": skewness(x), "kurtosis": kurtosis(x),
            "field_mean_spread": spread,
            "field_mean_spread_rel": None if spread is None or std == 0 else spread / std,
            "quantiles": {f"{100 * p:g}%": float(v) for p, v in zip(QUANTILES, q)}}


def distinct_values(fields, limit: int = DISCRETE_MAX_VALUES) -> np.ndarray | None:
    """The sorted distinct values of a batch when there are at most ``limit``, else None."""
    x = np.asarray(fields).ravel()
    seen = np.unique(x[: min(x.size, 4096)])  # a quick look first: most data are continuous
    if seen.size > limit:
        return None
    values = np.unique(x)
    return values if values.size <= limit else None


def discrete_check(fields, limit: int = DISCRETE_MAX_VALUES) -> dict | None:
    """None for continuous data; for data of at most ``limit`` distinct values: the values, the
    smallest gap between them and a dequantisation width σ = gap / 10 (Gaussian noise N(0, σ²)
    keeps the levels apart while giving the data a density)."""
    values = distinct_values(fields, limit)
    if values is None:
        return None
    gap = float(np.min(np.diff(values))) if values.size > 1 else 1.0
    return {"n_values": int(values.size), "values": [float(v) for v in values], "gap": gap,
            "suggested_sigma": float(f"{gap / 10:.2g}")}


def discrete_message(check: dict) -> str:
    """One line: the data are discrete, score matching is degenerate, add noise of width σ."""
    shown = ", ".join(f"{v:g}" for v in check["values"][:6])
    more = ", ..." if check["n_values"] > 6 else ""
    s = check["suggested_sigma"]
    return (f"the data take only {check['n_values']} distinct values ({shown}{more}): a discrete "
            "law has no density, so score matching is degenerate; dequantise them by adding "
            f"Gaussian noise N(0, sigma^2), e.g. sigma = {s:g} (a tenth of the gap between "
            f"levels): --dequantise {s:g} on the command line, 'dequantise' in the app")


def dequantise(fields, sigma: float, seed: int = 0) -> np.ndarray:
    """``fields + N(0, sigma²)`` noise (float64), reproducible from ``seed``."""
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"the dequantisation width sigma must be a finite number > 0, got {sigma!r}")
    x = as_batch(fields)
    return x + sigma * np.random.default_rng(seed).standard_normal(x.shape)


def spectrum_slope_fit(fields, min_shells: int = SLOPE_MIN_SHELLS) -> dict | None:
    """Least-squares slope of log P against log k of the radial spectrum over the integer shells
    n = 2 .. L/4 (the first shell and the lattice cut-off left out) that carry power; None when
    fewer than ``min_shells`` shells remain (a slope from three points means nothing)."""
    x = as_batch(fields)
    k, P = radial_power_spectrum(x)
    n = np.arange(1, len(k) + 1)
    lo, hi = 2, x.shape[-1] // 4
    sel = (n >= lo) & (n <= hi) & (P > 1e-12 * P.max())
    if sel.sum() < min_shells:
        return None
    coef, res, *_ = np.polyfit(np.log(k[sel]), np.log(P[sel]), 1, full=True)
    rms = float(np.sqrt(res[0] / sel.sum())) if len(res) else 0.0
    return {"slope": float(coef[0]), "shells": [int(n[sel][0]), int(n[sel][-1])],
            "k_range": [float(k[sel][0]), float(k[sel][-1])], "n_shells": int(sel.sum()),
            "residual_rms": rms}


def suggested_depth(fields, meta: dict | None = None) -> dict:
    """The WCRG depth a fit starts from, with the reason: the generator's default for files made
    here (:func:`explorer.core.model.default_depth`); for other files the deepest when the
    spectrum keeps rising towards large scales (slope <= :data:`STEEP_SLOPE`), otherwise 2."""
    from explorer.core.model import default_depth, max_depth

    x = as_batch(fields)
    L = x.shape[-1]
    gen = (meta or {}).get("generator")
    if gen == "phi4" and max_depth(L) >= 1:   # default_depth's rule, with its reason
        from explorer.core.model import crossing_depth
        jmax = max_depth(L)
        r = crossing_depth(x, jmax)
        if r["depth"] < jmax:
            return {"depth": r["depth"], "reason": f"the default for phi4 data: the deepest whose "
                                                   f"coarse fields are not in the rare "
                                                   f"sign-crossing band (at depth {jmax} they "
                                                   f"cross at {r['crossings'][jmax]:.4f})"}
        return {"depth": jmax, "reason": "the default for phi4 data"}
    if gen in ("phi4", "gaussian", "turbulence"):
        return {"depth": default_depth(L, gen), "reason": f"the default for {gen} data"}
    fit = spectrum_slope_fit(x)
    if fit is not None and fit["slope"] <= STEEP_SLOPE:
        return {"depth": max_depth(L),
                "reason": f"spectral slope {fit['slope']:.2f} <= {STEEP_SLOPE:g}: power keeps "
                          "rising towards large scales, so the deepest (coarse field 4x4)"}
    why = ("no spectral slope (too few shells)" if fit is None
           else f"spectral slope {fit['slope']:.2f} > {STEEP_SLOPE:g}")
    return {"depth": default_depth(L, None), "reason": f"{why}: short-range, depth 2"}


def generic_summary(fields, meta: dict | None = None) -> dict:
    """Everything :func:`explorer.core.summary.field_summary` says about any file: the one-point
    statistics, the spectral slope (or why none), discreteness and the suggested depth."""
    x = as_batch(fields)
    slope = spectrum_slope_fit(x)
    return {"one_point": one_point_statistics(x),
            "spectrum_slope": slope,
            "spectrum_slope_note": None if slope is not None else
            f"fewer than {SLOPE_MIN_SHELLS} shells with power in n = 2..L/4: no slope",
            "discrete": discrete_check(x),
            "suggested_depth": suggested_depth(x, meta)}


# ------------------------------------------------------------------ verdicts
#: thresholds of the verdicts (docs/diagnostics.md, "Verdicts")
THRESHOLDS = {
    "spectrum_log_ratio": 0.2,    # mean |log P_s/P_d| over the data's support: ~20 % per shell
    "total_variation": 0.1,       # one-point histograms on common bins
    "skewness_rel": 0.2,          # |s_s - s_d| <= 0.2 |s_d| + 0.1
    "skewness_abs": 0.1,
    "kurtosis_rel": 0.2,          # |K_s - K_d| <= 0.2 K_d
    "quantiles": 0.15,            # max_q |q_s - q_d| / std_d over 5 % .. 95 %
    "field_mean_spread": 2.0,     # ratio samples/data within [1/2, 2] (when the data's is not ~0)
    "extremes": 1.0,              # samples within [min_d - 1 std_d, max_d + 1 std_d]
    "scale_std_ratio": 0.25,      # every per-scale std ratio within 1 ± 0.25
    "binder": 0.05,               # |U_s - U_d| (φ⁴ and spin data only)
}


def scale_labels(J: int) -> list[str]:
    """Labels of :func:`explorer.core.diagnostics.scale_std_ratios`: details j=1..J, low-pass."""
    return [f"details j={j}" for j in range(1, J + 1)] + [f"low-pass x_{J}"]


def field_error(fields, stat, blocks: int = 16) -> float:
    """Standard error of ``stat(batch)`` by a blocked jackknife over the fields (the independent
    units of a batch; one field: 0, no error estimate)."""
    x = np.asarray(fields)
    if len(x) < 2:
        return 0.0
    return jackknife(np.arange(len(x)), lambda idx: stat(x[idx]), blocks)[1]


def _tolerance(rule: float, data, samples, stat) -> tuple[float, float]:
    """(threshold, 2 standard errors): the larger of a rule's tolerance and twice the combined
    standard error of the statistic on the data and on the samples, so that two batches of one
    law pass whatever their size."""
    two_se = 2.0 * float(np.hypot(field_error(data, stat), field_error(samples, stat)))
    return max(rule, two_se), two_se


def _verdict(name, data, samples, value, threshold, ok, rule) -> dict:
    return {"statistic": name, "data": data, "samples": samples, "value": value,
            "threshold": threshold, "ok": bool(ok), "rule": rule}


def comparison_verdicts(data, samples, report: dict, observables: tuple[str, ...] = ()) -> dict:
    """One verdict per statistic of samples against data: ``{"one_point": {"data", "samples"},
    "verdicts": [{statistic, data, samples, value, threshold, ok, rule}], "scale_labels"}``.
    ``report`` is the distances part of the comparison report (spectrum, histograms, per-scale
    std ratios, Binder); ``observables`` the domain ones asked for (``"phi4"``: the Binder
    cumulant)."""
    a, b = as_batch(data, "data"), as_batch(samples, "samples")
    d, s = one_point_statistics(a), one_point_statistics(b)
    T = THRESHOLDS
    out = []
    v = report["spectrum_log_ratio"]
    out.append(_verdict("power spectrum", None, None, v, T["spectrum_log_ratio"],
                        v <= T["spectrum_log_ratio"],
                        "mean |log P_samples/P_data| over the data's spectral support <= 0.2"))
    v = report["total_variation"]
    out.append(_verdict("one-point histogram", None, None, v, T["total_variation"],
                        v <= T["total_variation"], "total variation on common bins <= 0.1"))
    se = " or 2 standard errors (jackknife over fields)"
    lim, _ = _tolerance(T["skewness_rel"] * abs(d["skewness"]) + T["skewness_abs"], a, b,
                        skewness)
    v = abs(s["skewness"] - d["skewness"])
    out.append(_verdict("skewness", d["skewness"], s["skewness"], v, lim, v <= lim,
                        "|difference| <= 20 % of |data| + 0.1" + se))
    lim, _ = _tolerance(T["kurtosis_rel"] * d["kurtosis"], a, b, kurtosis)
    v = abs(s["kurtosis"] - d["kurtosis"])
    out.append(_verdict("kurtosis", d["kurtosis"], s["kurtosis"], v, lim, v <= lim,
                        "|difference| <= 20 % of the data's" + se))
    if discrete_check(a) is None:  # quantiles of a few levels jump from one level to the next
        keys = [k for k in d["quantiles"] if k not in ("0.1%", "1%", "99%", "99.9%")]
        dev = max(abs(s["quantiles"][k] - d["quantiles"][k]) for k in keys) / (d["std"] or 1.0)
        out.append(_verdict("quantiles 5%..95%", None, None, dev, T["quantiles"],
                            dev <= T["quantiles"], "largest |difference| / data std <= 0.15"))
    lo, hi = d["min"] - T["extremes"] * d["std"], d["max"] + T["extremes"] * d["std"]
    out.append(_verdict("extremes", [d["min"], d["max"]], [s["min"], s["max"]],
                        [s["min"], s["max"]], [lo, hi], lo <= s["min"] and s["max"] <= hi,
                        "samples within [min - 1 std, max + 1 std] of the data"))
    sd, ss = d["field_mean_spread"], s["field_mean_spread"]
    if sd is not None and ss is not None:
        if d["field_mean_spread_rel"] is not None and d["field_mean_spread_rel"] < 1e-3:
            ok, ratio = ss <= 1e-2 * (d["std"] or 1.0), None  # data of zero per-field mean
            rule = "data have ~zero per-field means: samples' spread <= 1 % of the data std"
        else:
            ratio = ss / sd
            ok = 1 / T["field_mean_spread"] <= ratio <= T["field_mean_spread"]
            rule = "ratio samples/data of the std of per-field means in [1/2, 2]"
        out.append(_verdict("per-field mean spread", sd, ss, ratio, T["field_mean_spread"], ok,
                            rule))
    labels = scale_labels(int(report["J"]))
    for label, r in zip(labels, report["scale_std_ratios"]):
        dev = abs(r - 1.0) if np.isfinite(r) else float("inf")
        out.append(_verdict(f"std ratio {label}", None, None, float(r), T["scale_std_ratio"],
                            dev <= T["scale_std_ratio"], "|samples/data - 1| <= 0.25"))
    if "phi4" in observables:
        v = report.get("binder_difference")
        if v is not None:
            lim, _ = _tolerance(T["binder"], a, b,
                                lambda x: binder_cumulant(magnetisation(x)))
            out.append(_verdict("Binder cumulant", report.get("binder_data"),
                                report.get("binder_samples"), abs(v), lim, abs(v) <= lim,
                                "|U_samples - U_data| <= 0.05" + se))
    return {"one_point": {"data": d, "samples": s}, "verdicts": out, "scale_labels": labels,
            "passed": int(sum(x["ok"] for x in out)), "total": len(out)}

