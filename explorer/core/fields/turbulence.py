"""Forced 2D turbulence: a pseudo-spectral vorticity solver (docs/fields.md, "2D turbulence").

Equations, on the periodic box [0, 2π)² ::

    ∂_t ω + u·∇ω = −ν (−Δ)^p ω − α ω + f,      Δψ = ω,      u = (−∂_y ψ, ∂_x ψ).

With this sign convention ∂_x u_y − ∂_y u_x = ∂_xx ψ + ∂_yy ψ = Δψ = ω, i.e. ω is the vorticity of
u (checked by a test).  Fields are stored with axis 0 = y and axis 1 = x: ``field[i, j]`` is the value
at (x, y) = (2π j / N, 2π i / N).  The forcing is the Kolmogorov forcing f_ω = −A k_f cos(k_f y), the
curl of the body force F = A sin(k_f y) e_x (A = ``forcing``, 1 by default; k_f = 4, α = 0.1 is the
jax-cfd / Kochkov et al. setting).

Numerics
--------
* ω̂ lives on the ``rfft2`` grid (N, N/2 + 1); wavenumbers are integers (box 2π).
* The advection term is computed in physical space in Basdevant's form
  u·∇ω = (∂_xx − ∂_yy)(u_x u_y) + ∂_x∂_y(u_y² − u_x²) (two inverse, two forward real FFTs per
  evaluation, numpy.fft) and dealiased with the 2/3 rule: every mode with |k_x| ≥ N/3 or
  |k_y| ≥ N/3 is set to zero.  The state is kept inside that square, so the truncated product is
  alias-free: the scheme is the Galerkin truncation, which conserves energy and enstrophy when
  ν = α = f = 0.
* The linear terms L(k) = −ν |k|^{2p} − α are integrated exactly with an integrating factor; the
  advection and forcing are advanced with the classical integrating-factor RK4 scheme.
* Time step: dt = cfl · Δx / max|u| (Δx = 2π/N), recomputed at every step from the velocity already
  evaluated in the first RK4 stage, bounded by ``dt_max``, and rounded down to a geometric ladder
  dt_max · 2^(−j/8) so that the integrating factors exp(L dt/2), exp(L dt) are reused from a small
  cache.  Snapshot times are hit exactly by shortening the last step of each interval.

Default hyperviscosity
----------------------
The hyperviscous damping rate ν |k|^{2p} is set by its value γ at the dealiasing cutoff
k_c = N/3:  ν = γ / k_c^{2p}, with γ = ``HYPERVISCOUS_RATE`` = 10 per time unit.  γ is chosen at the
order of the vorticity (inverse eddy-turnover time ~ ω_rms ≈ 4–5 in the stationary state at 128²)
so that the enstrophy cascade is absorbed within a few shells below k_c: no pile-up at the grid scale
and, because |k|^8 is so steep, essentially no damping below k_c/2.  With this rule ν scales with
resolution as N^{−2p}: ν ≈ 9.1e-13 at 128² and ≈ 3.6e-15 at 256² for p = 4.  Since the factor
exp(−ν k^{2p} dt) is exact, any ν is stable; at the CFL time step (dt ≈ 0.006 at 128², 0.0035 at
256²) ν k_c^{2p} · dt ≈ 0.03–0.06, and ≈ 16 times that in the corners of the dealiased square.
The measured slope hardly depends on γ (−3.9 … −4.05 at 128² for γ = 3 … 30).

Energy budget
-------------
With E = ½⟨|u|²⟩ (spatial mean) = −½⟨ψ ω⟩, the exact rate of change splits into
injection I = −⟨ψ f⟩, drag 2αE and hyperviscous dissipation D = ν Σ_k |k|^{2p−2} |ω̂_k|² / N⁴
(advection contributes nothing).  :meth:`TurbulenceSolver.energy_budget` evaluates them spectrally.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from explorer.core.budget import check_memory
from explorer.core.fields.base import FieldSet
from explorer.core.observables import (
    increment_flatness,
    kurtosis,
    shell_average,
    skewness,
    spectrum_slope,
)
from explorer.core.progress import Progress, run, should_stop

__all__ = [
    "HYPERVISCOUS_RATE",
    "TurbulenceDiverged",
    "TurbulenceSolver",
    "check_solver_params",
    "default_nu",
    "energy_spectrum",
    "generate_turbulence",
    "iter_turbulence",
    "turbulence_memory_bytes",
    "turbulence_observables",
]

#: Hyperviscous damping rate ν k_c^{2p} at the dealiasing cutoff k_c = N/3 (per time unit).
HYPERVISCOUS_RATE = 10.0

_DT_LADDER = 8  # dt is rounded down to dt_max * 2**(-j / _DT_LADDER)


class TurbulenceDiverged(FloatingPointError):
    """The solver produced non-finite values or an absurdly small time step."""


#: Accepted grid sides and hyperviscosity orders.
MIN_SIZE, MAX_SIZE = 16, 4096
MAX_ORDER = 16
#: Bytes per grid point of the solver: spectral state, RK4 stages, buffers, integrating factors.
SOLVER_BYTES_PER_PIXEL = 400


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _number(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and ok(v)):
        raise ValueError(f"{name} must be finite and {rule}, got {value!r}")


def check_solver_params(size: Any = 128, nu: Any = None, p: Any = 4, alpha: Any = 0.1,
                        kf: Any = 4, cfl: Any = 0.5, forcing: Any = 1.0, dt_max: Any = 0.05,
                        ic_amplitude: Any = 0.5) -> None:
    """Raise ValueError (one clear message) for any unusable :class:`TurbulenceSolver` parameter."""
    if not (_is_int(size) and MIN_SIZE <= size <= MAX_SIZE and size % 2 == 0):
        raise ValueError(f"size must be an even integer in {MIN_SIZE}..{MAX_SIZE}, got {size!r}")
    if not (_is_int(p) and 1 <= p <= MAX_ORDER):
        raise ValueError(f"the hyperviscosity order p must be an integer in 1..{MAX_ORDER}, "
                         f"got {p!r}")
    if not (_is_int(kf) and 1 <= kf < size / 3):
        raise ValueError(f"kf must be an integer with 1 <= kf < size/3 = {size / 3:.4g} (the "
                         f"forcing must lie inside the dealiased band), got {kf!r}")
    _number("cfl", cfl, lambda v: 0 < v <= 1.5, "in (0, 1.5]")
    if nu is not None:
        _number("nu", nu, lambda v: v >= 0, ">= 0")
    _number("alpha", alpha, lambda v: v >= 0, ">= 0")
    _number("forcing", forcing, lambda v: True, "")
    _number("dt_max", dt_max, lambda v: v > 0, "> 0")
    _number("ic_amplitude", ic_amplitude, lambda v: v >= 0, ">= 0")


def turbulence_memory_bytes(size: int, n_snapshots: int) -> int:
    """Peak memory of :func:`iter_turbulence`: the solver state plus the snapshots, kept as
    float32 and stacked once at the end (two copies)."""
    pixels = int(size) * int(size)
    return (SOLVER_BYTES_PER_PIXEL + 8 * int(n_snapshots)) * pixels


def default_nu(size: int, p: int = 4, rate: float = HYPERVISCOUS_RATE) -> float:
    """Hyperviscosity ν giving the damping rate ``rate`` at the dealiasing cutoff k_c = size/3."""
    return float(rate / (size / 3.0) ** (2 * p))


if "out" in inspect.signature(np.fft.irfft).parameters:  # numpy >= 2.0
    # (np.fft.irfft2 accepts ``out`` but ignores it, numpy 2.4: do the two passes by hand)

    def _irfft2(a: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
        return np.fft.irfft(np.fft.ifft(a, axis=0), n, axis=1, out=out)

    def _rfft2(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.fft.rfft2(a, out=out)

else:  # pragma: no cover - numpy 1.x has no ``out``

    def _irfft2(a: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
        r = np.fft.irfft2(a, s=(n, n))
        if out is None:
            return r
        out[...] = r
        return out

    def _rfft2(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        r = np.fft.rfft2(a)
        if out is None:
            return r
        out[...] = r
        return out


def _resolve_seed(seed: int | np.random.Generator | None) -> tuple[np.random.Generator, int | None]:
    if isinstance(seed, np.random.Generator):
        return seed, None
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    seed = int(seed)
    return np.random.default_rng(seed), seed


class TurbulenceSolver:
    """Integrating-factor RK4 pseudo-spectral solver of forced 2D Navier–Stokes (vorticity form).

    Parameters
    ----------
    size: grid points per side N (even, 16 … 4096).
    nu: hyperviscosity; ``None`` → :func:`default_nu` (size, p).
    p: hyperviscosity order, the dissipation is −ν (−Δ)^p ω (p = 1 is ordinary viscosity).
    alpha: linear drag rate.
    kf: forcing wavenumber (integer, 1 ≤ kf < N/3).
    cfl: CFL number of the adaptive time step.
    seed: int, ``None`` (fresh entropy, recorded in :attr:`seed`) or a ``np.random.Generator``;
        it sets the random initial condition.
    forcing: amplitude A of the forcing (0 switches it off).
    dt_max: upper bound of the time step.
    ic_amplitude: r.m.s. of the initial random vorticity, drawn in the shells 1 ≤ |k| ≤ 2 kf
        (0 gives a fluid at rest).

    The state is :attr:`w_hat` (ω̂ on the ``rfft2`` grid, numpy's unnormalised forward convention),
    the time :attr:`t` and the step count :attr:`n_steps`.
    """

    def __init__(
        self,
        size: int = 128,
        nu: float | None = None,
        p: int = 4,
        alpha: float = 0.1,
        kf: int = 4,
        cfl: float = 0.5,
        seed: int | np.random.Generator | None = 0,
        forcing: float = 1.0,
        dt_max: float = 0.05,
        ic_amplitude: float = 0.5,
    ) -> None:
        check_solver_params(size, nu, p, alpha, kf, cfl, forcing, dt_max, ic_amplitude)
        self.size = N = size = int(size)
        self.p = int(p)
        self.nu = default_nu(N, self.p) if nu is None else float(nu)
        self.alpha = float(alpha)
        self.kf = int(kf)
        self.cfl = float(cfl)
        self.forcing = float(forcing)
        self.dt_max = float(dt_max)
        self.ic_amplitude = float(ic_amplitude)
        self.rng, self.seed = _resolve_seed(seed)

        # wavenumbers on the rfft2 grid: axis 0 = k_y (all), axis 1 = k_x (0 .. N/2)
        M = N // 2 + 1
        self.ky = np.repeat(np.fft.fftfreq(N, 1.0 / N)[:, None], M, axis=1)
        self.kx = np.repeat(np.fft.rfftfreq(N, 1.0 / N)[None, :], N, axis=0)
        self.k2 = k2 = self.kx**2 + self.ky**2
        self.inv_k2 = inv_k2 = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
        #: 2/3-rule mask: keep |k_x| < N/3 and |k_y| < N/3.
        self.mask = (np.abs(self.kx) < N / 3.0) & (np.abs(self.ky) < N / 3.0)
        maskf = self.mask.astype(np.float64)
        #: rfft2 multiplicity of each mode (columns 1 .. N/2−1 stand for two modes of the full grid).
        w = np.full(M, 2.0)
        w[0] = w[-1] = 1.0
        self._weight = np.repeat(w[None, :], N, axis=0)
        self._norm = 1.0 / float(N) ** 4  # Parseval: <a b> = Σ â conj(b̂) / N⁴ over the full grid
        #: linear operator L(k) = −ν |k|^{2p} − α, integrated exactly
        self.linear = -self.nu * k2**self.p - self.alpha
        self._k2pm1 = k2 ** (self.p - 1)  # |k|^{2p−2}, for the dissipation rate
        # u_x = −∂_y ψ, u_y = ∂_x ψ with ψ̂ = −ω̂/k²; dealiased advection
        # −(u·∇ω)^ = (k_x² − k_y²) (u_x u_y)^ + k_x k_y (u_y² − u_x²)^
        self._mult_ux = 1j * self.ky * inv_k2
        self._mult_uy = -1j * self.kx * inv_k2
        self._m_p = (self.kx**2 - self.ky**2) * maskf
        self._m_q = self.kx * self.ky * maskf
        self._maskf = maskf

        y = 2 * np.pi * np.arange(N) / N
        f_col = -self.forcing * self.kf * np.cos(self.kf * y)
        self.f_hat = np.fft.rfft2(np.repeat(f_col[:, None], N, axis=1)) * maskf

        # work buffers (the transforms write into them: no large temporaries per step)
        self._cbuf = np.empty((N, M), np.complex128)
        self._rbuf = [np.empty((N, N)) for _ in range(3)]
        self._stage = [np.empty((N, M), np.complex128) for _ in range(4)]
        self._tmp = np.empty((N, M), np.complex128)

        self.t = 0.0
        self.n_steps = 0
        self._factors: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._stage1: float | None = None  # max|u| of the current state once stage 1 is cached
        self.w_hat = self._initial_condition()

    # ------------------------------------------------------------------ set-up
    def _initial_condition(self) -> np.ndarray:
        N = self.size
        w_hat = np.fft.rfft2(self.rng.standard_normal((N, N)))
        k = np.sqrt(self.k2)
        w_hat *= ((k >= 1) & (k <= 2 * self.kf)) * self._maskf
        rms = math.sqrt(self._mean(np.abs(w_hat) ** 2))
        if rms > 0 and self.ic_amplitude > 0:
            w_hat *= self.ic_amplitude / rms
        else:
            w_hat[:] = 0.0
        return w_hat

    def set_vorticity(self, omega: np.ndarray) -> None:
        """Replace the state by a physical vorticity field (mean removed, dealiased)."""
        omega = np.asarray(omega, dtype=np.float64)
        if omega.shape != (self.size, self.size):
            raise ValueError(f"vorticity must have shape {(self.size, self.size)}, got {omega.shape}")
        if not np.all(np.isfinite(omega)):
            raise ValueError("vorticity must be finite")
        w_hat = np.fft.rfft2(omega) * self._maskf
        w_hat[0, 0] = 0.0
        self.w_hat = w_hat
        self._stage1 = None

    # ------------------------------------------------------------------ physics
    def _irfft2(self, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return _irfft2(a, self.size, out)

    def _rhs(self, w_hat: np.ndarray, out: np.ndarray, forcing: bool = True) -> float:
        """Write advection (+ forcing) of ``w_hat`` into ``out``; return max |u|.

        Uses the identity u·∇ω = (∂_xx − ∂_yy)(u_x u_y) + ∂_x ∂_y (u_y² − u_x²) (valid for a
        divergence-free u): two inverse and two forward transforms instead of five.  The products of
        the dealiased velocities are alias-free inside the 2/3 square, so the result is the exact
        truncation of −u·∇ω to that square (the mean mode is zero).
        """
        c = self._cbuf
        ux, uy, r = self._rbuf
        np.multiply(self._mult_ux, w_hat, out=c)
        _irfft2(c, self.size, ux)
        np.multiply(self._mult_uy, w_hat, out=c)
        _irfft2(c, self.size, uy)
        np.multiply(ux, ux, out=r)
        r += uy * uy
        umax = math.sqrt(float(r.max()))
        np.multiply(ux, uy, out=r)
        np.multiply(self._m_p, _rfft2(r, c), out=out)
        np.subtract(uy, ux, out=r)
        ux += uy
        r *= ux
        out += self._m_q * _rfft2(r, c)
        if forcing:
            out += self.f_hat
        return umax

    def nonlinear(self, w_hat: np.ndarray | None = None) -> np.ndarray:
        """Dealiased spectral advection term −(u·∇ω)^ of ``w_hat`` (default: the current state).

        Modes outside the 2/3-rule square (|k_x| ≥ N/3 or |k_y| ≥ N/3) and the mean are exactly 0.
        """
        out = np.empty_like(self._tmp)
        self._rhs(self.w_hat if w_hat is None else np.asarray(w_hat, np.complex128), out, False)
        return out

    def _first_stage(self) -> float:
        if self._stage1 is None:
            self._stage1 = self._rhs(self.w_hat, self._stage[0])
        return self._stage1

    def max_dt(self) -> float:
        """CFL time step cfl · Δx / max|u| of the current state (Δx = 2π/N), at most ``dt_max``."""
        umax = self._first_stage()
        if not math.isfinite(umax):
            raise TurbulenceDiverged(f"non-finite velocity at t = {self.t:.4g}")
        dx = 2 * np.pi / self.size
        dt = self.dt_max if umax == 0 else min(self.dt_max, self.cfl * dx / umax)
        if dt < 1e-6 * self.dt_max:
            raise TurbulenceDiverged(f"time step collapsed to {dt:.3g} at t = {self.t:.4g}")
        return dt

    def adaptive_dt(self) -> float:
        """:meth:`max_dt` rounded down to the ladder dt_max · 2^(−j/8) (keeps the factor cache hot)."""
        dt = self.max_dt()
        j = math.ceil(-_DT_LADDER * math.log2(dt / self.dt_max) - 1e-9)
        return self.dt_max * 2.0 ** (-max(j, 0) / _DT_LADDER)

    def _integrating_factors(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        fac = self._factors.get(dt)
        if fac is None:
            if len(self._factors) >= 16:
                self._factors.clear()
            half = np.exp(self.linear * (0.5 * dt))
            fac = (half, half * half)
            self._factors[dt] = fac
        return fac

    def step(self, dt: float | None = None) -> float:
        """Advance by ``dt`` (default: :meth:`adaptive_dt`) with integrating-factor RK4; return dt.

        With v = e^{−Lt} ω̂ the scheme is classical RK4 for v; written for ω̂ with E = e^{L dt/2}:
        a = N(ω), b = N(E(ω + dt/2 a)), c = N(Eω + dt/2 b), d = N(E²ω + dt E c),
        ω ← E²ω + dt/6 (E² a + 2E (b + c) + d).
        """
        if dt is None:
            dt = self.adaptive_dt()
        dt = float(dt)
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        e1, e2 = self._integrating_factors(dt)
        w = self.w_hat
        a, b, c, d = self._stage
        tmp = self._tmp
        if self._stage1 is None:
            self._first_stage()
        # b
        np.multiply(a, 0.5 * dt, out=tmp)
        tmp += w
        tmp *= e1
        self._rhs(tmp, b)
        # c
        np.multiply(b, 0.5 * dt, out=tmp)
        tmp += e1 * w
        self._rhs(tmp, c)
        # d
        np.multiply(e1, c, out=tmp)
        tmp *= dt
        tmp += e2 * w
        self._rhs(tmp, d)
        # combine
        new = a * (dt / 6.0)
        new += w
        new *= e2
        b += c
        b *= e1
        b *= dt / 3.0
        new += b
        d *= dt / 6.0
        new += d
        self.w_hat = new
        self._stage1 = None
        self.t += dt
        self.n_steps += 1
        return dt

    # ------------------------------------------------------------------ fields
    def vorticity(self) -> np.ndarray:
        """Physical vorticity ω (N, N), float64."""
        return self._irfft2(self.w_hat)

    def streamfunction(self) -> np.ndarray:
        """Streamfunction ψ with Δψ = ω and zero mean."""
        return self._irfft2(-self.w_hat * self.inv_k2)

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """(u_x, u_y) = (−∂_y ψ, ∂_x ψ)."""
        return self._irfft2(self._mult_ux * self.w_hat), self._irfft2(self._mult_uy * self.w_hat)

    # ------------------------------------------------------------------ diagnostics
    def _mean(self, density: np.ndarray) -> float:
        """Σ over the full FFT grid of a real spectral density given on the rfft grid, / N⁴."""
        return float(np.sum(self._weight * density)) * self._norm

    def energy(self) -> float:
        """E = ½⟨|u|²⟩ (spatial mean)."""
        return 0.5 * self._mean(np.abs(self.w_hat) ** 2 * self.inv_k2)

    def enstrophy(self) -> float:
        """Z = ½⟨ω²⟩."""
        return 0.5 * self._mean(np.abs(self.w_hat) ** 2)

    def energy_budget(self) -> dict[str, float]:
        """Instantaneous energy rates, dE/dt = injection − drag − dissipation (E = ½⟨|u|²⟩).

        injection = −⟨ψ f⟩ = Σ Re(ω̂ f̂*) / k² / N⁴, drag = 2αE,
        dissipation = ν Σ |k|^{2p−2} |ω̂|² / N⁴ (hyperviscous), all from the current state.
        """
        w2 = np.abs(self.w_hat) ** 2
        inj = self._mean((self.w_hat * np.conj(self.f_hat)).real * self.inv_k2)
        drag = self.alpha * self._mean(w2 * self.inv_k2)
        diss = self.nu * self._mean(w2 * self._k2pm1) if self.nu else 0.0
        return {"injection": inj, "drag": drag, "dissipation": diss}

    def params(self) -> dict[str, Any]:
        """All solver parameters (JSON-serialisable)."""
        return {
            "size": self.size,
            "nu": self.nu,
            "p": self.p,
            "alpha": self.alpha,
            "kf": self.kf,
            "cfl": self.cfl,
            "forcing": self.forcing,
            "dt_max": self.dt_max,
            "ic_amplitude": self.ic_amplitude,
        }


# ---------------------------------------------------------------------- generation
def iter_turbulence(
    size: int = 128,
    n_snapshots: int = 16,
    spinup: float = 10.0,
    interval: float = 1.0,
    nu: float | None = None,
    p: int = 4,
    alpha: float = 0.1,
    kf: int = 4,
    cfl: float = 0.5,
    seed: int | None = 0,
    stop: threading.Event | None = None,
    forcing: float = 1.0,
    dt_max: float = 0.05,
    ic_amplitude: float = 0.5,
) -> Iterator[Progress]:
    """Spin up one forced-turbulence trajectory, then take ``n_snapshots`` vorticity snapshots.

    Snapshots are taken at t = spinup + i · interval, i = 1 .. n_snapshots.  Reports: stage
    "spin-up" (step/total in percent of the spin-up time), then stage "sampling" (step = snapshots
    taken), each with the current vorticity as ``snapshot``; the last report (``done=True``) carries
    a :class:`FieldSet` of float32 vorticity fields.  ``meta`` holds the parameters, the seed, the
    snapshot times, time-step statistics and the energy budget averaged (trapezoid rule, every
    step) over the sampling window [spinup, spinup + n_snapshots · interval].  If ``stop`` is set
    the result holds the snapshots taken so far and the report has ``stopped=True``.
    """
    if not (_is_int(n_snapshots) and n_snapshots >= 0):
        raise ValueError(f"n_snapshots must be an integer >= 0, got {n_snapshots!r}")
    n_snapshots = int(n_snapshots)
    _number("spinup", spinup, lambda v: v >= 0, ">= 0")
    _number("interval", interval, lambda v: v > 0, "> 0")
    check_solver_params(size, nu, p, alpha, kf, cfl, forcing, dt_max, ic_amplitude)
    check_memory(turbulence_memory_bytes(size, n_snapshots), "the turbulence generator",
                 f"{n_snapshots} snapshots of {size}x{size}",
                 "ask for fewer snapshots or a smaller size")
    t0 = time.perf_counter()
    solver = TurbulenceSolver(
        size=size, nu=nu, p=p, alpha=alpha, kf=kf, cfl=cfl, seed=seed, forcing=forcing,
        dt_max=dt_max, ic_amplitude=ic_amplitude,
    )
    params = dict(solver.params(), n_snapshots=n_snapshots, spinup=float(spinup),
                  interval=float(interval), nu_default=nu is None)
    snaps: list[np.ndarray] = []
    times: list[float] = []
    snap_info: list[dict[str, float]] = []
    dts: list[float] = []
    acc = {"injection": 0.0, "drag": 0.0, "dissipation": 0.0}
    sampled_time = 0.0
    e_start = None
    stopped = False

    def info(extra: dict[str, Any] | None = None) -> dict[str, Any]:
        d = {"t": solver.t, "dt": dts[-1] if dts else 0.0, "steps": solver.n_steps,
             "energy": solver.energy(), "enstrophy": solver.enstrophy()}
        if extra:
            d.update(extra)
        return d

    def advance_to(t_target: float, sampling: bool) -> Iterator[float]:
        """Step up to t_target exactly; yields after every step (so the caller can stop)."""
        nonlocal sampled_time
        budget = solver.energy_budget() if sampling else None
        while t_target - solver.t > 1e-9 * max(1.0, t_target):
            dt = solver.adaptive_dt()
            remaining = t_target - solver.t
            if dt >= remaining:
                dt = remaining
            elif dt > 0.5 * remaining:  # avoid a tiny last step: split the rest in two
                dt = 0.5 * remaining
            solver.step(dt)
            dts.append(dt)
            if sampling:
                new = solver.energy_budget()
                for key in acc:
                    acc[key] += 0.5 * dt * (budget[key] + new[key])
                sampled_time += dt
                budget = new
            yield solver.t
        solver.t = t_target  # remove round-off drift

    # ---- spin-up, reported in percent of the spin-up time
    last_pct = -1
    for t in advance_to(float(spinup), sampling=False):
        if should_stop(stop):
            stopped = True
            break
        pct = int(100 * t / spinup) if spinup > 0 else 100
        if pct > last_pct:
            last_pct = pct
            yield Progress(step=min(pct, 100), total=100, stage="spin-up",
                           snapshot=solver.vorticity().astype(np.float32), info=info())

    # ---- sampling
    if not stopped:
        e_start = solver.energy()
        for i in range(1, n_snapshots + 1):
            for _ in advance_to(float(spinup) + i * float(interval), sampling=True):
                if should_stop(stop):
                    stopped = True
                    break
            if stopped:
                break
            omega = solver.vorticity()
            snaps.append(omega.astype(np.float32))
            times.append(solver.t)
            snap_info.append({"t": solver.t, "energy": solver.energy(),
                              "enstrophy": solver.enstrophy()})
            yield Progress(step=i, total=n_snapshots, stage="sampling",
                           snapshot=snaps[-1], info=info())

    # ---- result
    N = solver.size
    fields = np.stack(snaps) if snaps else np.zeros((0, N, N), np.float32)
    dt_arr = np.asarray(dts) if dts else np.zeros(1)
    meta: dict[str, Any] = {
        "generator": "turbulence",
        "params": params,
        "seed": solver.seed,
        "box": "[0, 2pi)^2, axis 0 = y, axis 1 = x",
        "field": "vorticity",
        "times": times,
        "snapshots": snap_info,
        "t_final": solver.t,
        "n_steps": solver.n_steps,
        # all steps taken, including the shortened ones that land on snapshot times
        "dt": {"min": float(dt_arr.min()), "max": float(dt_arr.max()),
               "mean": float(dt_arr.mean()), "median": float(np.median(dt_arr))},
        "elapsed_s": time.perf_counter() - t0,
        "stopped": stopped,
    }
    if sampled_time > 0:
        avg = {k: v / sampled_time for k, v in acc.items()}
        e_end = solver.energy()
        de_dt = (e_end - e_start) / sampled_time
        lost = avg["drag"] + avg["dissipation"]
        avg.update({
            "window": sampled_time,
            "dE_dt": de_dt,
            # injection / (drag + dissipation): 1 in a stationary state
            "balance": avg["injection"] / lost if lost > 0 else None,
            # numerical closure of the time-integrated budget (≈ 0 for an accurate integration)
            "closure_residual": avg["injection"] - lost - de_dt,
        })
        meta["budget"] = avg
    yield Progress(step=len(snaps), total=n_snapshots, stage="done", info=info(),
                   done=True, stopped=stopped, result=FieldSet(fields, meta))


def generate_turbulence(*args: Any, callback: Callable[[Progress], None] | None = None,
                        stop: threading.Event | None = None, **kwargs: Any) -> FieldSet:
    """Run :func:`iter_turbulence` (same arguments) to completion, or until ``stop``, and return
    its FieldSet."""
    return run(iter_turbulence(*args, stop=stop, **kwargs), callback)


# ---------------------------------------------------------------------- observables
def energy_spectrum(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy spectrum of vorticity fields on the box [0, 2π)², averaged over the batch.

    E(k) is a **shell sum** over the integer shells k = round(|k_vec|) = 1 .. L/2 of
    |ω̂_k|² / (2 |k|²) / L⁴ (ω̂ = fft2 of the field), so that Σ_k E(k) = ½⟨|u|²⟩ up to the
    corner modes beyond k = L/2.  The shell sum is :func:`shell_average` times the shell population.
    """
    x = np.asarray(fields, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    L = x.shape[-1]
    if x.shape[-2] != L:
        raise ValueError("energy_spectrum needs square fields")
    p2 = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
    n = np.fft.fftfreq(L, 1.0 / L)
    k2 = n[:, None] ** 2 + n[None, :] ** 2
    dens = np.where(k2 > 0, p2 / (2.0 * np.where(k2 > 0, k2, 1.0)), 0.0) / float(L) ** 4
    shells = np.arange(1, L // 2 + 1)
    population = np.bincount(np.rint(np.sqrt(k2)).astype(int).ravel(), minlength=L)[shells]
    return shells.astype(np.float64), shell_average(dens) * population


def turbulence_observables(
    fields: FieldSet | np.ndarray, kf: int | None = None, lags=(1, 2, 4, 8, 16)
) -> dict[str, Any]:
    """Summary statistics of a batch of vorticity fields (box [0, 2π)²).

    * ``slope``: least-squares log-log slope of the energy spectrum :func:`energy_spectrum`
      (a shell sum) over k ∈ [2 k_f, L/6], i.e. from twice the forcing wavenumber to one third of
      the Nyquist wavenumber k_max = L/2 (the enstrophy-cascade range, well below the dealiasing
      cutoff L/3 where hyperviscosity acts); [8, 21] at 128², [8, 42] at 256².
    * ``kurtosis``, ``skewness``: one-point moments of ω (Gaussian: 3, 0).
    * ``flatness``: increment flatness {lag in px: value} (Gaussian: 3).
    * ``mean``, ``std``: of ω over the batch.
    ``kf`` defaults to ``meta["params"]["kf"]`` for a FieldSet, else 4.
    """
    if isinstance(fields, FieldSet):
        if kf is None:
            kf = fields.meta.get("params", {}).get("kf")
        x = fields.fields
    else:
        x = fields
    kf = 4 if kf is None else int(kf)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.shape[0] == 0:
        raise ValueError("no fields")
    L = x.shape[-1]
    k, E = energy_spectrum(x)
    kmin, kmax = 2.0 * kf, L / 6.0
    return {
        "slope": spectrum_slope(k, E, kmin, kmax),
        "slope_range": [kmin, kmax],
        "kurtosis": kurtosis(x),
        "skewness": skewness(x),
        "flatness": increment_flatness(x, lags),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "spectrum": {"k": k.tolist(), "E": E.tolist()},
    }
