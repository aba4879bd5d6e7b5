"""Interactive fitting: time and accuracy of the fit and sample defaults, side by side (JSON).

On the default data (critical phi^4, 64^2, `assets/phi4_L64_beta0.68.npz`), for each setting: the
fit's wall and CPU seconds, the sampling of 128 fields (wall and CPU seconds), and the distances of
the samples to the data — Binder U difference, mean |log ratio| of the radial spectra, total
variation of the sign-symmetrised one-point histograms, and the largest deviation from 1 of the
per-scale detail std ratios (scales 1..4) — against the issue's targets: |dU| <= 0.02,
spectrum <= 0.06, TV <= 0.03, std within 2 %, fit <= 5 s, 128 fields <= 15 s on 2 cores.

Settings, all at the default depth (:func:`explorer.core.model.default_depth`, 4 here):

* ``earlier default``: score matching only, 200 steps per scale and the earlier schedule (a
  conditional j ran min(16, 4^(j-1)) times the steps: ``detail_boost=16``);
* ``score, 100 steps``: score matching only, the current schedule (conditionals run ``steps``);
* ``default``: what `explorer fit` / `explorer sample` and the app do without options — the fit
  with :func:`explorer.core.defaults.default_refinement` (the coarse factor's data-condition
  refinement, then the coarsest conditionals' variances refined on generated fields,
  :mod:`explorer.core.fit.variances`), the sampler's default steps
  (:data:`explorer.core.defaults.DEFAULT_STEPS`), with ``--seeds`` sampling seeds;
* with ``--previous``, the previous default: the data-condition refinement of the conditionals
  j = J, J-1 and of the coarse factor (``ml_refine=J-1``, 10 iterations) without the variance
  refinement on generated fields; its fit and the default's are timed alternately, twice each
  (both CPU times recorded), so that their ratio is measured under the same load;
* with ``--long``, ``default fit, 400 steps``: the same model sampled 4 times longer, which
  separates what the sampler leaves (differences to this row) from what the model leaves (this
  row's distances);
* with ``--candidates``, two routes to the detail stds measured next to the default (neither is a
  default): ``ml_refine=2`` (the conditional j = 2 refined too, on the data's conditions), and
  the default fit followed by the refinement of j = 4, 3, 2 on the coarse fields the model itself
  generates (:func:`explorer.core.fit.refine_on_generated`, what `explorer fit
  --refine-generated` adds; its fit time is the default fit's plus that pass);
* with ``--coarse``, the default fit with its coarse factor (x_4, 4 x 4) alone refitted (score
  matching, then 30 maximum-likelihood iterations with 4 chains per field instead of 10 with 2),
  with the ``phi4`` potential of degree 4 (as the default) and of degree 6 (powers 4 and 6); their
  fit time is the default fit's plus the refit. Neither is a default.

Every row also records the coarse fields x_4 of its samples against the data's: the fraction of
sites with |x_4| < rms/2 (the data's rms), the kurtosis <x^4>/<x^2>^2 and the rms ratio.

    python benchmarks/bench_defaults.py [--samples 128] [--seeds 2] [--previous] [--lean]
                                        [--long] [--candidates] [--coarse] [--out PATH | --out -]

``--lean`` leaves out the two score-matching rows (the earlier default's sampling alone takes
~30 CPU s).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np

from bench_phase_diagram import compare
from common import emit, machine, timed
from explorer.core import wavelets as wv
from explorer.core.features import make_features
from explorer.core.fit import fit_score_matching, refine_maximum_likelihood, refine_on_generated
from explorer.core.fit.policy import boundedness_check
from explorer.core.io import load_fields
from explorer.core.defaults import DEFAULT_STEPS, default_refinement
from explorer.core.model import ScaleModel, WCRGModel, default_depth

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TARGETS = {"binder": 0.02, "spectrum": 0.06, "tv_sym": 0.03, "std": 0.02, "fit_seconds": 5.0,
           "sample_seconds": 15.0}


def coarse_marginal(fields: np.ndarray, J: int, rms: float) -> dict:
    """One-point moments of the coarse fields x_J of ``fields``, in units of the data's rms."""
    c = wv.low_passes(np.asarray(fields, np.float64), J)[-1]
    return {"near_zero": float(np.mean(np.abs(c) < 0.5 * rms)),
            "kurtosis": float(np.mean(c ** 4) / np.mean(c ** 2) ** 2),
            "rms_ratio": float(np.sqrt(np.mean(c ** 2)) / rms)}


def refit_coarse(model: WCRGModel, x: np.ndarray, degree: int, iterations: int = 30,
                 copies: int = 4) -> tuple[WCRGModel, float, float]:
    """A copy of ``model`` whose coarse factor is refitted on the data's x_J: the ``phi4``
    features with a potential of ``degree``, score matching, then ``iterations`` maximum-likelihood
    steps with ``copies`` chains per field. Returns (model, wall s, CPU s) of the refit; raises
    when the refitted factor is not bounded below."""
    def fit():
        xc = wv.low_passes(x, model.J, model.wavelet)[-1]
        feats = make_features("phi4", level="depth0", L=xc.shape[-1], wavelet=model.wavelet,
                              degree=degree)
        theta0 = fit_score_matching(feats, (xc, None)).theta
        theta, info = refine_maximum_likelihood(feats, xc, None, theta0, iterations=iterations,
                                                copies=copies, seed=model.J)
        check = boundedness_check(feats, theta, xc)
        if check is not None and check.get("bounded") is False:
            raise RuntimeError(f"refitted coarse factor of degree {degree} is not bounded below")
        info["theta"] = dict(zip(feats.names, map(float, theta)))
        return ScaleModel(model.J, "depth0", feats, theta, info)

    coarse, wall, cpu = timed(fit)
    out = copy.copy(model)
    out.coarse = coarse
    out.provenance = {**model.provenance, "coarse_refit": {"degree": degree,
                                                           "iterations": iterations,
                                                           "copies": copies}}
    return out, wall, cpu


def row_for(name: str, x: np.ndarray, model: WCRGModel, fit_times: tuple, n: int, steps: int,
            seed: int, **sample_kw) -> dict:
    """Sample ``n`` fields of the fitted ``model`` and measure them against the data ``x``."""
    s, wall, cpu = timed(model.sample, n, steps=steps, burn_in=steps, seed=seed, **sample_kw)
    d = compare(x, s.fields.astype(np.float64), J=4)
    row = {"setting": name, "J": model.J, "steps": steps, "seed": seed, "sample_kw": sample_kw,
           "ml_refine": model.provenance.get("ml_refine"),
           "fit_seconds": fit_times[0], "fit_cpu_seconds": fit_times[1],
           "sample_seconds": wall, "sample_cpu_seconds": cpu,
           "gradient_evaluations": s.meta["sampling"]["gradient_evaluations"],
           "gradient_evaluations_per_scale": [sc["gradient_evaluations"]
                                              for sc in s.meta["sampling"]["scales"]],
           "binder_difference": abs(d["binder_samples"] - d["binder_data"]),
           "spectrum_log_ratio": d["spectrum_log_ratio"], "tv_symmetrised": d["tv_symmetrised"],
           "std_max_deviation": max(abs(r - 1) for r in d["detail_std_ratios"]),
           "detail_std_ratios": d["detail_std_ratios"],
           "coarse_marginal": coarse_marginal(s.fields, model.J, coarse_rms(x, model))}
    row["accuracy_met"] = bool(row["binder_difference"] <= TARGETS["binder"]
                               and row["spectrum_log_ratio"] <= TARGETS["spectrum"]
                               and row["tv_symmetrised"] <= TARGETS["tv_sym"]
                               and row["std_max_deviation"] <= TARGETS["std"])
    print(row, flush=True)
    return row


#: the default fit's keywords before the variance refinement on generated fields (J = 4)
PREVIOUS_DEFAULT = {"ml_refine": 3, "ml_refine_iterations": 10}


def fits_side_by_side(x: np.ndarray, J: int, gen: str | None, repeats: int = 2) -> tuple:
    """The default fit and the previous default's, alternately ``repeats`` times each; returns
    (default model, its first (wall, CPU) s, previous model, its first (wall, CPU) s), each
    model carrying ``bench_cpu``, the CPU seconds of all its repeats."""
    fits: dict = {"default": [], "previous": []}
    for _ in range(repeats):
        for name, kw in (("previous", {**PREVIOUS_DEFAULT, "ml_refine": J - 1}),
                         ("default", default_refinement("phi4", J, gen))):
            model = WCRGModel("phi4", J=J)
            _, wall, cpu = timed(model.fit, x, **kw)
            fits[name].append((model, wall, cpu))
    out = []
    for name in ("default", "previous"):
        model, wall, cpu = fits[name][0]
        model.bench_cpu = [c for _, _, c in fits[name]]
        out += [model, (wall, cpu)]
    return tuple(out)


def coarse_rms(x: np.ndarray, model: WCRGModel) -> float:
    """The rms of the data's coarse fields x_J."""
    return float(np.sqrt(np.mean(wv.low_passes(x, model.J, model.wavelet)[-1] ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=2, help="sampling seeds of the default setting")
    ap.add_argument("--previous", action="store_true",
                    help="add the previous default (ml_refine=J-1), fits timed alternately")
    ap.add_argument("--lean", action="store_true", help="leave out the score-matching rows")
    ap.add_argument("--long", action="store_true", help="add the default fit sampled 400 steps")
    ap.add_argument("--candidates", action="store_true",
                    help="add ml_refine=2 and the refinement on the model's own coarse fields")
    ap.add_argument("--coarse", action="store_true",
                    help="add the default fit with its coarse factor refitted (degree 4 and 6)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    fs = load_fields(ASSETS / "phi4_L64_beta0.68.npz")
    x = fs.fields.astype(np.float64)
    gen = fs.meta.get("generator")
    J = default_depth(x.shape[-1], gen)
    out = {"machine": machine(), "data": "phi4_L64_beta0.68.npz", "samples": a.samples,
           "targets": TARGETS, "settings": []}
    rows = out["settings"]
    if not a.lean:
        score = WCRGModel("phi4", J=J)
        _, *score_t = timed(score.fit, x)
        rows.append(row_for("earlier default: score matching, 200 steps, detail_boost 16", x,
                            score, score_t, a.samples, 200, 1, detail_boost=16))
        rows.append(row_for("score matching, 100 steps", x, score, score_t, a.samples, 100, 1))
    if a.previous:
        refined, refined_t, previous, previous_t = fits_side_by_side(x, J, gen)
        out["fit_cpu_seconds_side_by_side"] = {"default": refined.bench_cpu,
                                               "previous default": previous.bench_cpu}
    else:
        refined = WCRGModel("phi4", J=J)
        _, *refined_t = timed(refined.fit, x, **default_refinement("phi4", J, gen))
    for seed in range(1, a.seeds + 1):
        rows.append(row_for(f"default: refined fit, {DEFAULT_STEPS} steps", x, refined,
                            refined_t, a.samples, DEFAULT_STEPS, seed))
    if a.previous:
        for seed in range(1, a.seeds + 1):
            rows.append(row_for("previous default: ml_refine=J-1 on the data's conditions", x,
                                previous, previous_t, a.samples, DEFAULT_STEPS, seed))
    if a.long:
        rows.append(row_for("default fit, 400 steps", x, refined, refined_t, a.samples, 400, 1))
    if a.candidates:
        deeper = WCRGModel("phi4", J=J)
        kw = {**PREVIOUS_DEFAULT, "ml_refine": 2}
        _, *deeper_t = timed(deeper.fit, x, **kw)
        generated = refine_on_generated(refined, x, levels=(4, 3, 2))
        info = out["refine_on_generated"] = generated.provenance["refine_generated"]
        gen_t = (refined_t[0] + info["seconds"], refined_t[1] + info["cpu_seconds"])
        for seed in range(1, a.seeds + 1):
            rows.append(row_for("candidate: ml_refine=2 (j = 2 refined on the data too)", x,
                                deeper, deeper_t, a.samples, DEFAULT_STEPS, seed))
            rows.append(row_for("candidate: default fit + j = 4, 3, 2 refined on the model's "
                                "own coarse fields", x, generated, gen_t, a.samples,
                                DEFAULT_STEPS, seed))
    if a.coarse:
        out["data_coarse_marginal"] = coarse_marginal(x, refined.J, coarse_rms(x, refined))
        for degree in (4, 6):
            m, wall, cpu = refit_coarse(refined, x, degree)
            times = (refined_t[0] + wall, refined_t[1] + cpu)
            for seed in range(1, a.seeds + 1):
                rows.append(row_for(f"candidate: default fit, coarse factor refitted (degree "
                                    f"{degree}, 30 ML iterations x 4 chains)", x, m, times,
                                    a.samples, DEFAULT_STEPS, seed))
    emit("bench_defaults", out, a.out)


if __name__ == "__main__":
    main()
