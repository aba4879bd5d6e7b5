"""Hessian eigenvalue diagnostics at 64 x 64: seconds, not minutes.

Prints JSON.  On critical phi^4 fields (the 64 x 64 asset, beta = 0.68) measures, per field and in
the same run (read the ratios: these machines are noisy),
  * pixel basis, 4096 variables: dense Hessian build + full spectrum (eigvalsh) vs Lanczos extremes
    (eigsh, k smallest + k largest, Hessian-vector products only);
  * finest conditional in the details x̄_1 (db4), 3 x 32 x 32 = 3072 variables: dense vs Lanczos;
  * the same two spectra by stochastic Lanczos quadrature (SLQ, the default for histograms above
    1024 variables): time, ratio to dense, histogram total variation to the dense histogram
    (40 bins) and the error of the negative-eigenvalue share;
and the time of an eigenvalue histogram over ``--samples`` fields (default method: SLQ here).

    python benchmarks/bench_diagnostics.py [--samples 4] [--k 6] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.linalg

from explorer.core import diagnostics as dg
from explorer.core import linalg as la
from explorer.core.io import load_fields

ASSET = Path(__file__).resolve().parents[1] / "assets" / "phi4_L64_beta0.68.npz"


def _timed(f):
    t0 = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--beta", type=float, default=0.68)
    ap.add_argument("--quick", action="store_true", help="32 x 32 blocks, 2 samples")
    a = ap.parse_args()
    x = load_fields(ASSET).fields.astype(np.float64)
    if a.quick:
        x, a.samples = x[:, :32, :32], 2
    L = x.shape[-1]
    out = {"L": L, "beta": a.beta, "k": a.k, "samples": a.samples,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}

    phi = x[0]
    for name, hvp, shape in [
        ("pixel", dg.phi4_pixel_hvp(phi, a.beta), (L, L)),
        ("conditional_j1", dg.phi4_conditional_hvp(phi, a.beta, wavelet="db4"),
         (3, L // 2, L // 2)),
    ]:
        H, t_build = _timed(lambda: la.dense_hessian(hvp, shape))
        e_dense, t_eig = _timed(lambda: scipy.linalg.eigvalsh(H))
        e_lz, t_lz = _timed(lambda: la.hessian_eigenvalues(hvp, shape, "lanczos", k=a.k))
        s = la.eigen_summary(e_dense)
        sq, t_slq = _timed(lambda: la.hessian_spectrum(hvp, shape, "slq"))
        rng_ = (e_dense.min() - 0.1, e_dense.max() + 0.1)
        hd = la.eigenvalue_histogram([e_dense], bins=40, range_=rng_)
        hs = la.eigenvalue_histogram([sq], bins=40, range_=rng_)
        tv = 0.5 * float(np.sum(np.abs(np.subtract(hd["density"], hs["density"]))
                                * np.diff(hd["edges"])))
        out[name] = {
            "slq_seconds": t_slq,
            "ratio_dense_over_slq": (t_build + t_eig) / t_slq,
            "slq_histogram_tv_to_dense": tv,
            "slq_negative_share_error": abs(hs["summary"]["negative_share"]
                                            - hd["summary"]["negative_share"]),
            "variables": int(np.prod(shape)),
            "dense_build_seconds": t_build, "dense_eigvalsh_seconds": t_eig,
            "dense_total_seconds": t_build + t_eig,
            "lanczos_seconds": t_lz,
            "ratio_dense_over_lanczos": (t_build + t_eig) / t_lz,
            "lanczos_extremes_error": float(max(abs(e_lz.min() - e_dense.min()),
                                                abs(e_lz.max() - e_dense.max()))),
            "summary": s,
        }
        del H

    for basis in ("pixel", "conditional"):
        spectra, t = _timed(lambda: dg.phi4_hessian_spectra(x[: a.samples], a.beta, basis=basis))
        h = la.eigenvalue_histogram(spectra)
        out[f"histogram_{basis}"] = {"seconds": t, "seconds_per_field": t / a.samples,
                                     "summary": h["summary"]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
