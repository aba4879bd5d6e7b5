"""Record fit / sample / compare / scattering numbers with fixed seeds, so that a refactoring can be
checked to change nothing (tests/test_regression_reference.py reruns the same cases).

    python scripts/make_regression_reference.py      # writes tests/data/regression_reference.npz

Rerun it only when a change of numbers is intended, and say so in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "regression_reference.npz"


def cases() -> dict[str, np.ndarray]:
    """Every recorded number, by name (float64 arrays)."""
    from explorer.core.diagnostics import compare
    from explorer.core.io import load_fields
    from explorer.core.model import WCRGModel
    from explorer.core.rgflow import rg_flow
    from explorer.core.scattering import scattering_statistics, synthesize

    assets = ROOT / "assets"
    out: dict[str, np.ndarray] = {}
    for name, asset, family, J, n in [("phi4", "phi4_L64_beta0.68.npz", "phi4", 2, 32),
                                      ("gauss", "gaussian_L64_eta2.npz", "gaussian", 3, 32),
                                      ("turb", "turbulence_L128.npz", "scattering", 5, 8)]:
        x = load_fields(assets / asset).fields[:n].astype(np.float64)
        m = WCRGModel(family, J).fit(x)
        for f in m.factors():
            out[f"{name}/theta/{f.level}{f.j}"] = np.asarray(f.theta, np.float64)
        s = m.sample(4, steps=30, burn_in=30, seed=0).fields.astype(np.float64)
        out[f"{name}/samples"] = s
        rep = compare(x, s, J=J)
        for k in ("spectrum_log_ratio", "total_variation", "kl_divergence", "binder_difference"):
            if rep.get(k) is not None:
                out[f"{name}/compare/{k}"] = np.array([float(rep[k])])
        out[f"{name}/compare/scale_std_ratios"] = np.asarray(rep["scale_std_ratios"], np.float64)
    x = load_fields(assets / "phi4_L64_beta0.68.npz").fields[:32].astype(np.float64)
    flow = rg_flow(x, family="phi4")
    out["rgflow/theta"] = np.array([[float(v) for v in sc["theta"].values()]
                                    for sc in flow["scales"]])
    t = load_fields(assets / "turbulence_L128.npz").fields[:1].astype(np.float64)
    st = scattering_statistics(t, 4, 4, reduction="raw")
    out["scattering/raw"] = np.asarray(st.mean(), dtype=np.complex128).view(np.float64)
    # float64 throughout: single precision's rounding may differ between CPUs by more than 1e-9
    out["scattering/synthesis"] = synthesize(t, 1, J=4, L=4, iterations=10, seed=0,
                                             precision="double").fields.astype(np.float64)
    return out


if __name__ == "__main__":
    data = cases()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, names=np.array(json.dumps(sorted(data))), **{
        k.replace("/", "__"): v for k, v in data.items()})
    print(f"{OUT.relative_to(ROOT)}: {len(data)} arrays")
