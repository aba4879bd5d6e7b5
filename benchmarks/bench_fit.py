"""Score matching vs maximum likelihood: wall time and agreement on the same data (JSON).

The depth-0 phi^4 ansatz {nn, phi^2, phi^4} fitted to the shipped phi^4 data: score matching is one
linear solve; maximum likelihood runs persistent MALA chains (moment matching).  Both are timed in
the same run, so the ratio is what to read.

    python benchmarks/bench_fit.py [--fields 32] [--beta 0.50]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from explorer.core.features import canonical_phi4_theta, phi4_ansatz
from explorer.core.fit import fit_score_matching, iter_maximum_likelihood
from explorer.core.io import load_fields
from explorer.core.model import gaussian_start
from explorer.core.progress import run

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fields", type=int, default=32)
    ap.add_argument("--betas", nargs="+", default=["0.50", "0.68"])
    ap.add_argument("--iterations", type=int, default=120)
    a = ap.parse_args()
    out = {}
    for beta in a.betas:
        x = load_fields(ASSETS / f"phi4_L64_beta{beta}.npz").fields.astype(np.float64)[: a.fields]
        F = phi4_ansatz()
        sm = fit_score_matching(F, x)
        ml = run(iter_maximum_likelihood(F, x, theta0=gaussian_start(F, x),
                                         iterations=a.iterations, mala_steps=10, seed=0))
        exact = canonical_phi4_theta(float(beta))
        out[f"beta={beta}"] = {
            "fields": int(len(x)), "size": int(x.shape[-1]),
            "score_matching": {"theta": sm.theta.tolist(), "seconds": sm.seconds,
                               "relative_error_vs_exact": (sm.theta / exact - 1).tolist()},
            "maximum_likelihood": {"theta": ml.theta.tolist(), "seconds": ml.seconds,
                                   "iterations": ml.iterations, "converged": ml.converged,
                                   "gradient_evaluations": ml.gradient_evaluations,
                                   "relative_error_vs_exact": (ml.theta / exact - 1).tolist()},
            "ml_over_sm_time": ml.seconds / sm.seconds,
            "max_relative_difference_ml_vs_sm": float(np.max(np.abs(ml.theta / sm.theta - 1))),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
