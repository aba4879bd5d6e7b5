"""The forced 2D turbulence solver: pseudo-spectral vorticity equation on the box [0, 2π)²,

    ∂_t ω + u·∇ω = −ν (−Δ)^p ω − α ω + f,      Δψ = ω,      u = (−∂_y ψ, ∂_x ψ),

with Kolmogorov forcing f_ω = −A k_f cos(k_f y), 2/3-rule dealiasing (Basdevant's form of the
advection), integrating-factor RK4 and a CFL time step. The science and the settings:
docs/fields.md, "2D turbulence" ("Equations", "Pseudo-spectral recipe"); the generator and the
observables are in :mod:`explorer.core.fields.turbulence`.

Conventions: fields are stored with axis 0 = y and axis 1 = x (``field[i, j]`` is the value at
(x, y) = (2π j / N, 2π i / N)); ω̂ lives on the ``rfft2`` grid (N, N/2 + 1) with integer
wavenumbers and numpy's unnormalised forward convention. The state is kept inside the 2/3 square,
so the truncated product is alias-free (a Galerkin truncation: energy and enstrophy are conserved
when ν = α = f = 0). The default hyperviscosity sets the damping rate at the cutoff k_c = N/3 to
:data:`HYPERVISCOUS_RATE`; the integrating factors exp(L dt) are exact, so any ν is stable.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from explorer.core.fields.base import check_number

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
    check_number("cfl", cfl, lambda v: 0 < v <= 1.5, "in (0, 1.5]")
    if nu is not None:
        check_number("nu", nu, lambda v: v >= 0, ">= 0")
    check_number("alpha", alpha, lambda v: v >= 0, ">= 0")
    check_number("forcing", forcing, lambda v: True, "")
    check_number("dt_max", dt_max, lambda v: v > 0, "> 0")
    check_number("ic_amplitude", ic_amplitude, lambda v: v >= 0, ">= 0")


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
