"""Interactive fitting: time and accuracy of the fit and sample defaults, side by side (JSON).

On the default data (critical phi^4, 64^2, `assets/phi4_L64_beta0.68.npz`), for each setting: the
fit's wall and CPU seconds, the sampling of 128 fields (wall and CPU seconds), and the distances of
the samples to the data — Binder U difference, mean |log ratio| of the radial spectra, total
variation of the sign-symmetrised one-point histograms, and the largest deviation from 1 of the
per-scale detail std ratios (scales 1..4) — against the issue's targets: |dU| <= 0.02,
spectrum <= 0.06, TV <= 0.03, std within 2 %, fit <= 5 s, 128 fields <= 15 s on 2 cores.

Settings: the default depth (:func:`explorer.core.model.default_depth`, what `explorer fit` and
the app use without options) with the default 200 steps per scale, and depth 4 with 200 and 100
steps per scale (score matching throughout).

    python benchmarks/bench_defaults.py [--samples 128] [--out PATH | --out -]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench_phase_diagram import compare
from common import emit, machine, timed
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel, default_depth

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TARGETS = {"binder": 0.02, "spectrum": 0.06, "tv_sym": 0.03, "std": 0.02, "fit_seconds": 5.0,
           "sample_seconds": 15.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    fs = load_fields(ASSETS / "phi4_L64_beta0.68.npz")
    x = fs.fields.astype(np.float64)
    J0 = default_depth(x.shape[-1], fs.meta.get("generator"))
    settings = [(f"default depth J={J0}, 200 steps", J0, 200), ("J=4, 200 steps", 4, 200),
                ("J=4, 100 steps", 4, 100)]
    out = {"machine": machine(), "data": "phi4_L64_beta0.68.npz", "samples": a.samples,
           "targets": TARGETS, "settings": []}
    for name, J, steps in settings:
        model = WCRGModel("phi4", J=J)
        _, fit_wall, fit_cpu = timed(model.fit, x)
        s, wall, cpu = timed(model.sample, a.samples, steps=steps, burn_in=steps, seed=1)
        d = compare(x, s.fields.astype(np.float64), J=4)
        row = {"setting": name, "J": J, "steps": steps, "fit_seconds": fit_wall,
               "fit_cpu_seconds": fit_cpu, "sample_seconds": wall, "sample_cpu_seconds": cpu,
               "gradient_evaluations": s.meta["sampling"]["gradient_evaluations"],
               "binder_difference": abs(d["binder_samples"] - d["binder_data"]),
               "spectrum_log_ratio": d["spectrum_log_ratio"], "tv_symmetrised": d["tv_symmetrised"],
               "std_max_deviation": max(abs(r - 1) for r in d["detail_std_ratios"]),
               "detail_std_ratios": d["detail_std_ratios"]}
        row["accuracy_met"] = bool(row["binder_difference"] <= TARGETS["binder"]
                                   and row["spectrum_log_ratio"] <= TARGETS["spectrum"]
                                   and row["tv_symmetrised"] <= TARGETS["tv_sym"]
                                   and row["std_max_deviation"] <= TARGETS["std"])
        out["settings"].append(row)
    emit("bench_defaults", out, a.out)


if __name__ == "__main__":
    main()
