"""One report per question: :func:`compare` (every distance of samples to data, JSON-ready) and
:func:`diagnose` (Hessian spectra, learned potentials and kernels of a fitted model at data
fields), as the command line and the app show them. The science: docs/diagnostics.md.
"""

from __future__ import annotations

import numpy as np

from explorer.core import observables as obs
from explorer.core import wavelets as wv
from explorer.core.diagnostics.coupling import coupling_report
from explorer.core.diagnostics.distances import (KL_FLOOR, _shell_powers, binder_difference,
                                                 corner_power_ratio, corner_power_share,
                                                 data_support_mask, kl_divergence, scale_kurtosis,
                                                 scale_std_ratios, spectrum_2d_log_ratio,
                                                 spectrum_2d_noise, spectrum_log_ratio,
                                                 total_variation)
from explorer.core.diagnostics.hessians import model_hessian_spectra
from explorer.core.diagnostics.learned import _scale_key, learned_potential, quadratic_kernels
from explorer.core.fields.base import as_batch
from explorer.core.linalg import eigenvalue_histogram
from explorer.core.support import DEFAULT_FLOOR


def compare(data, samples, J: int | None = None, wavelet: str = wv.DEFAULT_WAVELET,
            bins: int = 64, log_bins: int = 12, couplings: bool = False,
            floor: float = DEFAULT_FLOOR) -> dict:
    """All distances of ``samples`` to ``data`` as a JSON-serialisable dict.

    J defaults to the number of levels leaving a coarsest side of at least 4. With
    ``couplings=True`` (and J >= 1) the wavelet scale-coupling matrices of coefficients and of
    moduli for both batches are added, with their largest cross-scale entries.

    Spectra: ``spectrum_log_ratio`` over the integer shells on the data's support (``floor``,
    :func:`spectrum_log_ratio`; which ones in ``spectrum_shells_used`` and ``spectrum["used"]``);
    ``spectrum_2d_log_ratio`` over the 2D modes on the data's support, corners |k| > L/2 included,
    next to ``spectrum_2d_noise``, its value for independent Gaussian batches of these sizes;
    ``corner_power_ratio`` (samples / data) and ``corner_power_share`` of the corners |k| > L/2.
    """
    a, b = as_batch(data, "data"), as_batch(samples, "samples")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"data and samples differ in size: {a.shape[1:]} vs {b.shape[1:]}")
    L = a.shape[-1]
    if J is None:
        J = max(0, min(wv.max_levels(L), int(np.log2(L)) - 2))
    ka, pa, pb, used = _shell_powers(a, b, None, floor)
    mask = data_support_mask(a, floor)
    ratios = scale_std_ratios(a, b, J, wavelet)
    return {
        "L": int(L), "n_data": int(len(a)), "n_samples": int(len(b)), "J": int(J),
        "wavelet": wavelet,
        "spectrum_log_ratio": float(np.mean(np.abs(np.log(pb[used] / pa[used])))),
        "spectrum_log_ratio_logbins": spectrum_log_ratio(a, b, log_bins, floor),
        "spectrum_support_floor": float(floor),
        "spectrum_shells_used": {"used": int(used.sum()), "of": int(used.size),
                                 "k_max": float(ka[used].max())},
        "spectrum": {"k": ka.tolist(), "data": pa.tolist(), "samples": pb.tolist(),
                     "used": used.tolist()},
        "spectrum_2d_log_ratio": spectrum_2d_log_ratio(a, b, floor),
        "spectrum_2d_noise": spectrum_2d_noise(len(a), len(b)),
        "spectrum_2d_modes": {"used": int(mask.sum()), "of": int(mask.size - 1)},
        "corner_power_ratio": corner_power_ratio(a, b),
        "corner_power_share": {"data": corner_power_share(a), "samples": corner_power_share(b)},
        "total_variation": total_variation(a, b, bins),
        "kl_divergence": kl_divergence(a, b, bins),
        "kl_floor": KL_FLOOR,
        "scale_std_ratios": [float(r) for r in ratios],
        "binder_difference": binder_difference(a, b),
        "kurtosis": {"data": obs.kurtosis(a), "samples": obs.kurtosis(b)},
        "scale_kurtosis": {"data": scale_kurtosis(a, J, wavelet),
                           "samples": scale_kurtosis(b, J, wavelet)},
        **({"coupling": coupling_report(a, b, J, wavelet)} if couplings and J >= 1 else {}),
    }


def hessian_report(summary: dict) -> dict:
    """The JSON entry of one energy's pooled eigenvalue summary (names of the command line)."""
    return {"condition_number": summary["condition_number"],
            "min_eigenvalue": summary["min"], "max_eigenvalue": summary["max"],
            "negative_share": summary["negative_share"],
            "positive_definite": summary["positive_definite"],
            "condition_number_positive_part": summary["condition_positive"],
            "estimated": summary["estimated"], "n_fields": summary["n_fields"]}


def diagnose(model, fields, n_fields: int = 4, method: str = "auto", bins: int = 60,
             grid_points: int = 201) -> dict:
    """Everything measured on a fitted model at data fields, JSON-serialisable:

    * ``hessian``: for depth 0 ``{"pixel": {...}}``; for depth >= 1 ``{"scales": [{"j", ...}
      for every conditional j = 1..J], "coarse": {...}}``, each entry with ``condition_number``
      (λ_max/λ_min, None unless positive definite), ``min_eigenvalue``, ``max_eigenvalue``,
      ``negative_share``, the condition number of the positive part (exact spectra only) and
      whether the spectrum is an SLQ estimate; Hessians at the first ``n_fields`` fields;
    * ``histograms``: the pooled eigenvalue histograms behind those numbers;
    * ``potential``: the learned V(φ) per scale on a grid spanning the data range;
    * ``kernels``: the quadratic coupling kernels per scale.
    """
    x = as_batch(fields)
    n = max(1, min(int(n_fields), len(x)))
    spectra = model_hessian_spectra(model, x[:n], method=method)
    hists = {k: eigenvalue_histogram(v, bins=bins) for k, v in spectra.items()}
    if model.J == 0:
        hessian = {"pixel": hessian_report(hists["coarse"]["summary"])}
        hists = {"pixel": hists["coarse"]}
    else:
        hessian = {"scales": [{"j": m.j, **hessian_report(hists[f"j={m.j}"]["summary"])}
                              for m in model.conditionals],
                   "coarse": {"j": model.J, "size": int(x.shape[-1] >> model.J),
                              **hessian_report(hists["coarse"]["summary"])}}
    lim = float(np.abs(x).max())
    grid = np.linspace(-lim, lim, int(grid_points))
    kernels = {}
    for f in model.factors():
        try:
            k = quadratic_kernels(f)
        except ValueError:
            continue
        kernels[_scale_key(f)] = {"channels": k["channels"], "radius": k["radius"],
                                  "kernels": k["kernels"].tolist()}
    return {"family": model.family, "J": model.J, "wavelet": model.wavelet,
            "n_fields": n, "L": int(x.shape[-1]), "hessian": hessian, "histograms": hists,
            "potential": {"grid": grid.tolist(),
                          "V": {k: v.tolist() for k, v in learned_potential(model, grid).items()}},
            "kernels": kernels}
