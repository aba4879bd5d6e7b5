"""Fourier-accelerated MALA: Langevin preconditioned by a mass matrix diagonal in Fourier space,
the classical remedy for critical slowing down of lattice fields (docs/sampling.md, "Fourier
acceleration").

With a curvature spectrum q(k) > 0 (the Hessian of a quadratic approximation of the energy,
diagonal in Fourier for a stationary field) and S the convolution with spectrum s(k) = q(k)^(-1/2),
MALA on y with energy U(S y) *is* preconditioned MALA on x = S y:

    x' = x - h S² ∇U(x) + sqrt(2h) S ξ,

every mode moving at the speed of its own curvature; the Metropolis test keeps the target exact
(the map is linear, its Jacobian constant).  :func:`iter_fourier_mala` runs
:func:`explorer.core.sampling.iter_langevin` on y — every adaptation and failure check included —
and maps states, samples and observables back to x.  Each step costs one gradient of U plus two
FFT round trips (S on the state, S on the gradient).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.fft as sfft

from explorer.core.progress import Progress
from explorer.core.sampling import iter_langevin

#: curvatures below this fraction of the largest are raised to it (an indefinite or flat
#: quadratic part must not give infinite masses)
CURVATURE_FLOOR = 1e-3


class FourierPreconditioner:
    """S = convolution with spectrum s(k) = max(q(k), floor * max q)^(-1/2) on (…, n, n) fields;
    ``spectrum`` q is given on the rfft2 grid (n, n//2 + 1), real and even in k (S symmetric)."""

    def __init__(self, spectrum: np.ndarray, floor: float = CURVATURE_FLOOR):
        q = np.asarray(np.real(spectrum), dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != q.shape[0] // 2 + 1:
            raise ValueError(f"spectrum must be (n, n//2 + 1) on the rfft2 grid, got {q.shape}")
        top = float(q.max())
        if not np.isfinite(top) or top <= 0:
            raise ValueError("the curvature spectrum has no positive mode")
        self.n = q.shape[0]
        self.curvature = np.maximum(q, floor * top)
        self.s = self.curvature ** -0.5
        self.floored = int(np.count_nonzero(q < floor * top))

    def _mul(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        return sfft.irfft2(sfft.rfft2(x) * s, s=x.shape[-2:])

    def apply(self, y: np.ndarray) -> np.ndarray:
        """x = S y."""
        return self._mul(y, self.s)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """y = S⁻¹ x."""
        return self._mul(x, 1.0 / self.s)


def quadratic_curvature(features, theta: np.ndarray, n: int, data: np.ndarray | None = None):
    """Curvature spectrum (n, n//2 + 1) of a depth-0 family's quadratic part: the spectrum of its
    coupling kernel plus, for a family with a scalar potential and ``data``, the potential's mean
    curvature Σ θ_k ρ_k''(φ) over the data (the on-site mass a Gaussian fit would see: at the
    critical point the couplings alone are indefinite — a negative mass in a double well)."""
    from explorer.core.features.couplings import QuadraticCouplings
    from explorer.core.features.potentials import ScalarPotential

    blocks = getattr(features, "blocks", [features])
    slices = getattr(features, "_slices", [slice(None)])
    q = np.zeros((n, n // 2 + 1))
    for b, sl in zip(blocks, slices):
        th = np.asarray(theta)[sl]
        if isinstance(b, QuadraticCouplings):
            if b.level != "depth0":
                raise ValueError("Fourier acceleration is defined here for depth-0 factors")
            q += np.real(b._kernel_spectrum(th, n))[0, 0]
        elif isinstance(b, ScalarPotential) and data is not None:
            q += float(b.basis.combine(th, np.asarray(data, np.float64), (2,))[2].mean())
    return q


def iter_fourier_mala(energy, grad, x0: np.ndarray, spectrum: np.ndarray, n_steps: int,
                      burn_in: int = 0, observe=None, floor: float = CURVATURE_FLOOR,
                      **kwargs) -> Iterator[Progress]:
    """Fourier-accelerated MALA on a batch of fields x0 (C, n, n): :func:`iter_langevin` (same
    keywords, same reports) on y = S⁻¹ x; the final result's ``x``, ``samples`` and the
    ``observe`` trace are those of x.  ``result.preconditioner`` is the
    :class:`FourierPreconditioner` used."""
    P = FourierPreconditioner(spectrum, floor)
    last: dict = {}

    def to_x(y):
        if last.get("y") is not y:
            last["y"], last["x"] = y, P.apply(y)
        return last["x"]

    def energy_y(y):
        return energy(to_x(y))

    def grad_y(y):
        return P.apply(grad(to_x(y)))

    obs = None if observe is None else (lambda y: observe(to_x(y)))
    y0 = P.inverse(np.asarray(x0, dtype=np.float64))
    for rep in iter_langevin(energy_y, grad_y, y0, n_steps, burn_in=burn_in, observe=obs,
                             **kwargs):
        if rep.done and rep.result is not None:
            res = rep.result
            res.x = P.apply(res.x)
            if res.samples is not None:
                res.samples = P.apply(res.samples.astype(np.float64)).astype(res.samples.dtype)
            res.preconditioner = P
        yield rep
