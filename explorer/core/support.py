"""Spectral support of a field ensemble, and its completion for the WCRG model.

Fields from a pseudo-spectral solver carry no power beyond the 2/3-rule band, exactly zero mean
(a conserved quantity), and a dissipation range whose modal power falls by many decades within
the last octave. A short-range energy cannot represent such a spectrum: score matching then gives
indefinite conditionals at the finest scale and MALA stalls (measured on the 128² turbulence
asset: finest gaussian conditional λ_min -6.7e3 vs λ_max 9.3e4).

The model therefore works on the data's spectral support. Fourier modes whose power is
numerically zero, or whose mean power over their 3 × 3 neighbourhood in k is below ``floor`` × the
largest modal power, carry a negligible share of the variance. They are *completed* for fitting
and sampling with independent Gaussian noise whose power in each such mode is that of the nearest
mode on the support (the completed spectrum continues the data's with no jump at the band edge, so
the conditionals stay well conditioned), and *projected out* of the samples. The projection of the
completed data is the data restricted to the support, so a model that is exact for the completed
fields gives samples distributed exactly like the restricted data. On the 128² turbulence asset the
default floor 1e-5 puts 61 % of the modes off the support; they hold 9.5e-5 of the variance, and
projecting them out changes the 1-px increment flatness by 0.4 %.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: default support floor, relative to the largest modal power
DEFAULT_FLOOR = 1e-5
#: modal power below this fraction of the largest is zero up to float32 rounding
ZERO_POWER = 1e-12


def modal_power(fields: np.ndarray) -> np.ndarray:
    """Mean |FFT|² of a batch (N, L, L) per mode (L, L), symmetrised under k -> -k."""
    x = np.asarray(fields, dtype=np.float64)
    p = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
    return 0.5 * (p + np.roll(p[::-1, ::-1], 1, axis=(0, 1)))


class SpectralSupport:
    """The modes a model is fitted on (``mask``) and the completion power of the others."""

    def __init__(self, mask: np.ndarray, fill: np.ndarray):
        self.mask = np.asarray(mask, dtype=bool)
        self.fill = np.asarray(fill, dtype=np.float64)
        if self.mask.ndim != 2 or self.mask.shape != self.fill.shape:
            raise ValueError("a spectral support needs a 2-d mask and a completion power of the same shape")
        if np.any(self.fill < 0) or not np.all(np.isfinite(self.fill)):
            raise ValueError("the completion power must be finite and non-negative")

    @classmethod
    def of(cls, fields: np.ndarray, floor: float = DEFAULT_FLOOR) -> SpectralSupport:
        floor = float(floor)
        if not (0.0 <= floor < 1.0):
            raise ValueError(f"the support floor must be in [0, 1), got {floor}")
        p = modal_power(fields)
        # a mode is off the support when its power is numerically zero, or when the mean power
        # of its 3 x 3 neighbourhood in k is below the floor (one field's modal powers scatter
        # like exponentials: a single white-noise field has ~2 modes below 1e-5 of the largest)
        near = sum(np.roll(p, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
        mask = (near > floor * p.max()) & (p > ZERO_POWER * p.max())
        if mask.all() or not mask.any():
            return cls(mask | ~mask.any(), np.zeros_like(p))
        # each mode off the support takes the power of its nearest mode on it (on the centred
        # frequency grid), symmetrised under k -> -k so that the completion is a real field
        _, (iy, ix) = ndimage.distance_transform_edt(~np.fft.fftshift(mask), return_indices=True)
        fill = np.fft.ifftshift(np.fft.fftshift(p)[iy, ix])
        fill = np.where(mask, 0.0, 0.5 * (fill + np.roll(fill[::-1, ::-1], 1, axis=(0, 1))))
        return cls(mask, fill)

    @property
    def complete(self) -> bool:
        """True when every mode is on the support (nothing to fill or project)."""
        return bool(self.mask.all())

    @property
    def dead_fraction(self) -> float:
        return float(1.0 - self.mask.mean())

    def completed(self, fields: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``fields`` plus independent Gaussian noise of the completion power off the support."""
        x = np.asarray(fields, dtype=np.float64)
        if self.complete:
            return x
        L = self.mask.shape[-1]
        noise = np.fft.fft2(rng.standard_normal(x.shape)) * np.sqrt(self.fill / L**2)
        return x + np.fft.ifft2(noise).real

    def project(self, fields: np.ndarray) -> np.ndarray:
        """Orthogonal projection of ``fields`` onto the support (a Fourier mask)."""
        x = np.asarray(fields)
        if self.complete:
            return x
        return np.fft.ifft2(np.fft.fft2(x.astype(np.float64)) * self.mask).real.astype(x.dtype)

    def summary(self) -> dict:
        return {"modes_off_support": int((~self.mask).sum()), "fraction_off_support": self.dead_fraction}
