"""Kadanoff-Wilson RG flow of couplings: coarse-grain by 2x2 block averages rescaled to the data's
standard deviation, and fit the same depth-0 ansatz at every scale by score matching; the fitted
θ_j flow with j and stay (nearly) fixed at a critical point. The flow is read quantitatively by
the distance between successive normalised couplings (:func:`coupling_distance`) and tabulated
for several couplings by :func:`rg_flow_table`. See docs/models.md, "RG flow of couplings" (the
WCRG is the inverse direction of the same construction, Marchand et al. 2023).
"""

from __future__ import annotations

import numpy as np

from explorer.core.features import make_features, phi4_ansatz
from explorer.core.fit import fit_score_matching


def block_average(x: np.ndarray) -> np.ndarray:
    """(N, L, L) -> (N, L/2, L/2): mean over 2x2 blocks (average and subsample)."""
    x = np.asarray(x, dtype=np.float64)
    N, L, W = x.shape
    if L % 2 or W % 2:
        raise ValueError(f"cannot coarse-grain an odd size {L}x{W}")
    return x.reshape(N, L // 2, 2, W // 2, 2).mean(axis=(2, 4))


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_rg_params(radius=1, min_size: int = 4, ridge: float = 1e-8) -> None:
    """Raise ValueError (one clear message) for an unusable parameter of :func:`rg_flow`."""
    if not (_is_int(radius) and radius >= 1):
        raise ValueError(f"the coupling radius must be an integer >= 1, got {radius!r}")
    if not (_is_int(min_size) and min_size >= 2):
        raise ValueError(f"min_size must be an integer >= 2, got {min_size!r}")
    try:
        r = float(ridge)
    except (TypeError, ValueError):
        r = float("nan")
    if not (np.isfinite(r) and r >= 0):
        raise ValueError(f"the ridge must be a finite number >= 0, got {ridge!r}")


def feature_degree(name: str) -> int | None:
    """Homogeneity degree of a feature in the field: 2 for quadratic couplings ("nn", "nnn",
    "coupling..."), p for a power "phi^p" (or "phi^p/2"), None otherwise (windows, moduli)."""
    if name.startswith("phi^"):
        rest = name[4:]
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        return int(digits) if digits and rest[len(digits):] in ("", "/2") else None
    if name in ("nn", "nnn") or name.startswith("coupling"):
        return 2
    return None


def normalised_couplings(theta: dict, std: float) -> dict:
    """θ of the energy written for the unit-variance field z = x / std: θ_k std^{deg_k}
    (U(x) = Σ θ_k Φ_k(std z) = Σ θ_k std^{deg_k} Φ_k(z)); features without a degree are kept."""
    out = {}
    for k, v in theta.items():
        d = feature_degree(k)
        out[k] = float(v) * (std ** d if d is not None else 1.0)
    return out


def coupling_distance(a: dict, b: dict) -> float:
    """Relative L2 distance of two coupling vectors over their common features:
    ‖a - b‖ / ((‖a‖ + ‖b‖) / 2); 0 at a fixed point, 2 for opposite vectors."""
    keys = [k for k in a if k in b]
    va = np.array([a[k] for k in keys])
    vb = np.array([b[k] for k in keys])
    den = 0.5 * (np.linalg.norm(va) + np.linalg.norm(vb))
    return float(np.linalg.norm(va - vb) / den) if den > 0 else 0.0


def rg_flow(fields: np.ndarray, family: str = "phi4", min_size: int = 4, ridge: float = 1e-8,
            radius: int = 1, **options) -> dict:
    """Fit the depth-0 ``family`` ansatz at every scale of a coarse-graining sequence.

    Returns ``{"family", "normalisation", "scales": [{"j", "L", "scale_factor", "theta",
    "kappa_H_raw", "kappa_H_preconditioned"}, ...]}``; for the phi^4 ansatz each scale also carries
    the canonical couplings ``beta = -theta[nn]`` and ``lam = theta[phi^4]`` (and
    ``1 - 2 lam`` to compare with ``theta[phi^2]``).
    """
    check_rg_params(radius, min_size, ridge)
    x = np.asarray(fields, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"rg_flow needs a batch of square fields (N, L, L), got {x.shape}")
    target_std = float(x.std())
    scales = []
    j = 0
    factor = 1.0
    while x.shape[-1] >= min_size:
        L = x.shape[-1]
        feats = phi4_ansatz() if family == "phi4" else make_features(
            family, level="depth0", L=L, radius=radius, **options)
        fit = fit_score_matching(feats, x, ridge=ridge)
        theta = dict(zip(fit.names, map(float, fit.theta)))
        entry = {"j": j, "L": L, "scale_factor": factor, "theta": theta,
                 "kappa_H_raw": fit.cond_raw, "kappa_H_preconditioned": fit.cond_preconditioned}
        if family == "phi4":
            entry["beta"] = -theta["nn"]
            entry["lam"] = theta["phi^4"]
            entry["one_minus_2lam"] = 1.0 - 2.0 * theta["phi^4"]
        entry["theta_normalised"] = normalised_couplings(theta, target_std)
        if scales:
            entry["distance"] = coupling_distance(scales[-1]["theta_normalised"],
                                                  entry["theta_normalised"])
        scales.append(entry)
        if L // 2 < min_size:
            break
        x = block_average(x)
        s = target_std / x.std()
        x *= s
        factor *= s
        j += 1
    distances = [sc["distance"] for sc in scales[1:]]
    return {"family": family, "normalisation": "coarse fields rescaled to the data's std",
            "data_std": target_std, "scales": scales,
            "distance_definition": DISTANCE_DEFINITION, "distances": distances,
            "mean_distance": float(np.mean(distances)) if distances else float("nan")}


DISTANCE_DEFINITION = (
    "d_j = |t_j - t_{j-1}| / ((|t_j| + |t_{j-1}|) / 2), t_j the couplings fitted at coarse-graining "
    "step j for the unit-variance field (theta_k * std^deg_k; every coarse field is rescaled to "
    "the data's std), over the common features")


def rg_flow_table(fields_by_beta: dict, **options) -> dict:
    """The flow distances for several data sets (e.g. {beta: fields}):
    ``{key: {"L": [sides], "distance": [d_1, ...], "mean_distance", "beta_j", "lam_j"}}`` plus
    the definition; the key with the smallest mean distance is reported as ``closest_to_fixed``."""
    table = {}
    for key, x in fields_by_beta.items():
        flow = rg_flow(x, **options)
        row = {"L": [s["L"] for s in flow["scales"]], "distance": flow["distances"],
               "mean_distance": flow["mean_distance"]}
        if "beta" in flow["scales"][0]:
            row["beta_j"] = [s["beta"] for s in flow["scales"]]
            row["lam_j"] = [s["lam"] for s in flow["scales"]]
        table[str(key)] = row
    closest = min(table, key=lambda k: table[k]["mean_distance"]) if table else None
    return {"definition": DISTANCE_DEFINITION, "rows": table, "closest_to_fixed": closest}
