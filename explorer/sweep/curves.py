"""Plotting data from a sweep table (no plotting library): the Binder cumulant U(beta),
<|m|>(beta) and chi(beta) per lattice size L, for the data and for the model's samples, with
error bars; and where the U(beta) curves of successive sizes cross (the finite-size estimate of
beta_c).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from explorer.sweep.table import RESULTS, read_table, typed

OBSERVABLES = ("binder", "absm", "chi")
#: model settings that must be the same along one curve
CURVE_SETTINGS = ("lam", "family", "J", "method", "n_data", "n_samples", "steps", "burn_in",
                  "sampler")


def _rows(table) -> list[dict]:
    if isinstance(table, (str, Path)):
        path = Path(table)
        return read_table(path / RESULTS if path.is_dir() else path)
    return list(table)


def curves(table, where: dict | None = None) -> dict:
    """U(beta), <|m|>(beta), chi(beta) per L, for data and model, ready to plot.

    ``table``: rows (as read by :func:`~explorer.sweep.table.read_table`, or rows of
    :func:`~explorer.sweep.point.run_point`), a ``results.csv`` path or a sweep folder. Only
    phi4 rows with status ok count; ``where`` keeps rows whose columns equal the given values
    (e.g. ``{"family": "phi4", "J": 2}``). Several seeds at one (L, beta) are averaged, their
    errors combined as sqrt(sum err^2) / n. Returns::

        {"x": "beta", "sizes": [16, 32],
         "binder": {16: {"beta": [...], "data": [...], "data_err": [...],
                         "model": [...], "model_err": [...], "seeds": [...]}, 32: {...}},
         "absm": {...}, "chi": {...},
         "settings": {16: {"lam": 1.0, "family": "phi4", "J": 2, ...}, ...}}

    Raises ValueError when one L holds rows of different model settings (pass ``where``).
    """
    rows = [typed(r) if isinstance(r.get("size"), str) else dict(r) for r in _rows(table)]
    rows = [r for r in rows if r.get("status") == "ok" and r.get("kind") == "phi4"]
    for k, v in (where or {}).items():
        rows = [r for r in rows if r.get(k) == v]
    by_size: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_size[int(r["size"])].append(r)
    out: dict = {"x": "beta", "sizes": sorted(by_size), "settings": {}}
    for q in OBSERVABLES:
        out[q] = {}
    for L in sorted(by_size):
        group = by_size[L]
        settings = {tuple(r.get(k) for k in CURVE_SETTINGS) for r in group}
        if len(settings) > 1:
            raise ValueError(f"size {L} has rows of {len(settings)} different model settings "
                             f"({', '.join(CURVE_SETTINGS)}); choose one with where=")
        out["settings"][L] = dict(zip(CURVE_SETTINGS, next(iter(settings))))
        by_beta: dict[float, list[dict]] = defaultdict(list)
        for r in group:
            by_beta[float(r["beta"])].append(r)
        betas = sorted(by_beta)
        for q in OBSERVABLES:
            curve = {"beta": betas, "seeds": [len(by_beta[b]) for b in betas]}
            for src, col in (("data", f"{q}_data"), ("model", f"{q}_samples")):
                vals, errs = [], []
                for b in betas:
                    v = np.array([r[col] for r in by_beta[b]], dtype=np.float64)
                    e = np.array([r[f"{col}_err"] for r in by_beta[b]], dtype=np.float64)
                    vals.append(float(np.mean(v)))
                    errs.append(float(np.sqrt(np.sum(e * e)) / len(e)))
                curve[src], curve[f"{src}_err"] = vals, errs
            out[q][L] = curve
    return out


def binder_crossings(c: dict, source: str = "data", observable: str = "binder") -> list[dict]:
    """Where U_L(beta) of successive sizes cross, for each pair (L1 < L2) of ``c["sizes"]``.

    On the betas both curves have, d(beta) = U_L2 - U_L1 with its error (errors added in
    quadrature). Every sign change of d is a crossing, linearly interpolated between its two
    bracketing betas, with its ``significance``: the smaller of |d| / error at those two betas (a
    crossing between differences within their errors is noise). ``beta`` is the most significant
    crossing (None when d never changes sign). ``source``: "data" or "model"."""
    sizes = c["sizes"]
    out = []
    for L1, L2 in zip(sizes, sizes[1:]):
        a, b = c[observable][L1], c[observable][L2]
        common = sorted(set(a["beta"]) & set(b["beta"]))
        va, ea = dict(zip(a["beta"], a[source])), dict(zip(a["beta"], a[f"{source}_err"]))
        vb, eb = dict(zip(b["beta"], b[source])), dict(zip(b["beta"], b[f"{source}_err"]))
        diff = [vb[x] - va[x] for x in common]
        err = [float(np.hypot(ea[x], eb[x])) for x in common]
        crossings = []
        for i in range(len(common) - 1):
            d0, d1 = diff[i], diff[i + 1]
            if d0 * d1 > 0 or (d0 == 0 and i > 0):
                continue
            t = d0 / (d0 - d1) if d0 != d1 else 0.0
            sig = min(abs(d0) / err[i] if err[i] else np.inf,
                      abs(d1) / err[i + 1] if err[i + 1] else np.inf)
            crossings.append({"beta": common[i] + t * (common[i + 1] - common[i]),
                              "bracket": [common[i], common[i + 1]], "significance": float(sig)})
        best = max(crossings, key=lambda x: x["significance"], default=None)
        out.append({"sizes": [L1, L2], "beta": None if best is None else best["beta"],
                    "crossings": crossings, "betas": common, "difference": diff,
                    "difference_err": err})
    return out
