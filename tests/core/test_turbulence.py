"""Tests of the forced 2D turbulence generator (explorer.core.fields.turbulence)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from explorer.core.fields.base import FieldSet
from explorer.core.fields.turbulence import (
    TurbulenceDiverged,
    TurbulenceSolver,
    default_nu,
    energy_spectrum,
    generate_turbulence,
    iter_turbulence,
    turbulence_observables,
)
from explorer.core.progress import run

# One stationary 128² run shared by the statistical tests: spin-up 10, then 32 snapshots one time
# unit apart (a 32-time-unit window, several energy-fluctuation times, for the budget average).
RUN = dict(size=128, n_snapshots=32, spinup=10.0, interval=1.0, seed=0)


@pytest.fixture(scope="module")
def turb():
    t0 = time.perf_counter()
    fs = generate_turbulence(**RUN)
    elapsed = time.perf_counter() - t0
    obs = turbulence_observables(fs)
    print(f"\n128² fixture: {elapsed:.1f} s, {fs.meta['n_steps']} steps; slope {obs['slope']:.2f}, "
          f"kurtosis {obs['kurtosis']:.2f}, skewness {obs['skewness']:.2f}, "
          f"flatness {obs['flatness']}, mean/std {obs['mean'] / obs['std']:.1e}, "
          f"budget {fs.meta['budget']}")
    return fs, obs


def _deriv(field: np.ndarray, axis: int) -> np.ndarray:
    """Spectral derivative on [0, 2π) along ``axis`` (independent of the solver's arrays)."""
    n = field.shape[axis]
    k = np.fft.fftfreq(n, 1.0 / n)
    if n % 2 == 0:
        k[n // 2] = 0.0
    shape = [1, 1]
    shape[axis] = n
    return np.fft.ifft(1j * k.reshape(shape) * np.fft.fft(field, axis=axis), axis=axis).real


# ------------------------------------------------------------------ statistics of the 128² run
def test_fieldset_format(turb):
    fs, _ = turb
    assert isinstance(fs, FieldSet)
    assert fs.fields.shape == (32, 128, 128)
    assert fs.fields.dtype == np.float32
    assert np.all(np.isfinite(fs.fields))
    meta = fs.meta
    json.dumps(meta)  # JSON-serialisable
    assert meta["generator"] == "turbulence"
    assert meta["seed"] == 0
    for key in ("size", "nu", "p", "alpha", "kf", "cfl", "spinup", "interval", "n_snapshots",
                "forcing", "dt_max", "ic_amplitude"):
        assert key in meta["params"]
    assert meta["params"]["nu"] == pytest.approx(default_nu(128, 4))
    np.testing.assert_allclose(np.diff(meta["times"]), 1.0, atol=1e-9)
    assert meta["times"][0] == pytest.approx(11.0)
    assert 0 < meta["dt"]["min"] <= meta["dt"]["median"] <= meta["dt"]["max"] <= 0.05
    assert not meta["stopped"]


def test_spectrum_slope(turb):
    _, obs = turb
    assert obs["slope_range"] == [8.0, 128 / 6]
    assert -5.0 <= obs["slope"] <= -3.0


def test_vorticity_kurtosis(turb):
    _, obs = turb
    assert obs["kurtosis"] > 3.5


def test_increment_flatness_decreases(turb):
    _, obs = turb
    flat = obs["flatness"]
    lags = sorted(flat)
    assert lags == [1, 2, 4, 8, 16]
    assert flat[1] > flat[16] + 1.0
    for a, b in zip(lags, lags[1:]):
        assert flat[b] <= flat[a] + 0.05
    assert flat[16] > 3.0  # still non-Gaussian at 16 px


def test_mean_vorticity_zero(turb):
    fs, obs = turb
    assert abs(obs["mean"]) < 1e-3 * obs["std"]
    assert np.abs(fs.fields.mean(axis=(1, 2))).max() < 1e-3 * obs["std"]


def test_energy_budget_balances(turb):
    fs, _ = turb
    b = fs.meta["budget"]
    assert b["window"] == pytest.approx(32.0)
    assert b["injection"] > 0 and b["drag"] > 0 and b["dissipation"] > 0
    # stationary state: injection = drag + dissipation within 10 %
    assert abs(b["injection"] / (b["drag"] + b["dissipation"]) - 1) < 0.10
    # the time-integrated exact budget closes: the integration is accurate
    assert abs(b["closure_residual"]) < 1e-3 * b["injection"]


def test_energy_spectrum_is_a_shell_sum(turb):
    fs, _ = turb
    k, E = energy_spectrum(fs.fields[-1])
    assert k[0] == 1 and k[-1] == 64
    # Σ_k E(k) = ½<|u|²>: all dealiased modes lie inside |k| <= 64 at 128²
    assert E.sum() == pytest.approx(fs.meta["snapshots"][-1]["energy"], rel=1e-4)


# ------------------------------------------------------------------ determinism and progress
SMALL = dict(size=32, n_snapshots=3, spinup=1.0, interval=0.5)


def test_seeded_determinism():
    a = generate_turbulence(**SMALL, seed=7)
    b = generate_turbulence(**SMALL, seed=7)
    c = generate_turbulence(**SMALL, seed=8)
    np.testing.assert_array_equal(a.fields, b.fields)
    assert a.meta["n_steps"] == b.meta["n_steps"]
    assert not np.allclose(a.fields, c.fields)
    assert a.meta["seed"] == 7


def test_seed_none_is_recorded_and_reproducible():
    a = generate_turbulence(**SMALL, seed=None)
    assert isinstance(a.meta["seed"], int)
    b = generate_turbulence(**SMALL, seed=a.meta["seed"])
    np.testing.assert_array_equal(a.fields, b.fields)


def test_progress_reports():
    reports = list(iter_turbulence(**SMALL, seed=1))
    stages = [r.stage for r in reports]
    assert stages[0] == "spin-up" and "sampling" in stages
    assert all(not r.done for r in reports[:-1])
    last = reports[-1]
    assert last.done and not last.stopped
    sampling = [r for r in reports if r.stage == "sampling"]
    assert [r.step for r in sampling] == [1, 2, 3]
    assert all(r.total == 3 for r in sampling)
    assert sampling[-1].snapshot.shape == (32, 32) and sampling[-1].snapshot.dtype == np.float32
    assert {"t", "dt", "energy", "enstrophy"} <= set(sampling[-1].info)
    seen = []
    fs = run(iter_turbulence(**SMALL, seed=1), seen.append)
    assert len(seen) == len(reports)
    np.testing.assert_array_equal(fs.fields, last.result.fields)


def test_stop_during_sampling_returns_partial_result():
    stop = threading.Event()

    def callback(report):
        if report.stage == "sampling" and report.step == 2:
            stop.set()

    fs = generate_turbulence(size=32, n_snapshots=10, spinup=0.5, interval=0.5, seed=3,
                             callback=callback, stop=stop)
    assert fs.n == 2
    assert fs.meta["stopped"] is True
    json.dumps(fs.meta)
    reports = list(iter_turbulence(size=32, n_snapshots=10, spinup=0.5, interval=0.5, seed=3,
                                   stop=stop))
    assert reports[-1].done and reports[-1].stopped


def test_stop_during_spinup():
    stop = threading.Event()
    stop.set()
    reports = list(iter_turbulence(size=32, n_snapshots=4, spinup=5.0, seed=0, stop=stop))
    last = reports[-1]
    assert last.done and last.stopped
    assert last.result.fields.shape == (0, 32, 32)
    assert last.result.meta["t_final"] < 1.0


# ------------------------------------------------------------------ numerics
def test_vorticity_streamfunction_velocity_consistency():
    N = 64
    y, x = np.meshgrid(2 * np.pi * np.arange(N) / N, 2 * np.pi * np.arange(N) / N, indexing="ij")
    # analytic: ψ = sin(2x) cos(3y) → ω = Δψ = −13 ψ, u = (−∂_y ψ, ∂_x ψ)
    psi = np.sin(2 * x) * np.cos(3 * y)
    s = TurbulenceSolver(N, seed=0)
    s.set_vorticity(-13 * psi)
    np.testing.assert_allclose(s.vorticity(), -13 * psi, atol=1e-12)
    np.testing.assert_allclose(s.streamfunction(), psi, atol=1e-12)
    ux, uy = s.velocity()
    np.testing.assert_allclose(ux, 3 * np.sin(2 * x) * np.sin(3 * y), atol=1e-12)
    np.testing.assert_allclose(uy, 2 * np.cos(2 * x) * np.cos(3 * y), atol=1e-12)

    # a developed random state: curl u = ω, div u = 0, Δψ = ω, E = ½<|u|²>, Z = ½<ω²>
    s = TurbulenceSolver(N, ic_amplitude=3.0, seed=5)
    for _ in range(30):
        s.step()
    w, psi = s.vorticity(), s.streamfunction()
    ux, uy = s.velocity()
    scale = np.abs(w).max()
    np.testing.assert_allclose(_deriv(uy, 1) - _deriv(ux, 0), w, atol=1e-10 * scale)
    np.testing.assert_allclose(_deriv(ux, 1) + _deriv(uy, 0), 0.0, atol=1e-10 * scale)
    lap = _deriv(_deriv(psi, 1), 1) + _deriv(_deriv(psi, 0), 0)
    np.testing.assert_allclose(lap, w, atol=1e-10 * scale)
    assert s.energy() == pytest.approx(0.5 * np.mean(ux**2 + uy**2), rel=1e-12)
    assert s.enstrophy() == pytest.approx(0.5 * np.mean(w**2), rel=1e-12)


def test_forcing_is_kolmogorov():
    N = 32
    s = TurbulenceSolver(N, kf=4, ic_amplitude=0.0)
    f = np.fft.irfft2(s.f_hat, s=(N, N))
    y = 2 * np.pi * np.arange(N) / N
    np.testing.assert_allclose(f, np.repeat((-4 * np.cos(4 * y))[:, None], N, axis=1), atol=1e-12)
    # from rest the flow follows the laminar Kolmogorov profile (advection vanishes on it):
    # ω(t) = f (1 − e^{−λt}) / λ with λ = α + ν k_f^{2p}
    lam = s.alpha + s.nu * 4.0**8
    for _ in range(5):
        s.step(0.02)
    np.testing.assert_allclose(s.vorticity(), f * (1 - np.exp(-lam * 0.1)) / lam, atol=1e-12)


def test_dealiasing_zeroes_modes_beyond_two_thirds():
    N = 48
    s = TurbulenceSolver(N, seed=0)
    rng = np.random.default_rng(1)
    full = np.fft.rfft2(rng.standard_normal((N, N)))  # energy in every mode, beyond 2/3 too
    nl = s.nonlinear(full)
    outside = (np.abs(s.kx) >= N / 3) | (np.abs(s.ky) >= N / 3)
    assert outside.any() and s.mask.sum() + outside.sum() == s.mask.size
    assert np.all(nl[outside] == 0)
    assert nl[0, 0] == 0
    assert np.abs(nl[s.mask]).max() > 0

    # on a dealiased state the truncated product is alias-free: it equals −u·∇ω computed exactly
    # on a grid twice as fine (no aliasing there), restricted to the kept modes
    w_hat = full * s.mask
    w_hat[0, 0] = 0
    nl = s.nonlinear(w_hat)
    M = 2 * N
    big = np.zeros((M, M // 2 + 1), complex)
    big[: N // 2, : N // 2 + 1] = w_hat[: N // 2]
    big[-N // 2:, : N // 2 + 1] = w_hat[N // 2:]
    big *= (M / N) ** 2  # unnormalised forward convention
    ky = np.fft.fftfreq(M, 1.0 / M)[:, None]
    kx = np.fft.rfftfreq(M, 1.0 / M)[None, :]
    k2 = kx**2 + ky**2
    psi = -np.divide(big, k2, out=np.zeros_like(big), where=k2 > 0)
    ux, uy = np.fft.irfft2(-1j * ky * psi, s=(M, M)), np.fft.irfft2(1j * kx * psi, s=(M, M))
    wx, wy = np.fft.irfft2(1j * kx * big, s=(M, M)), np.fft.irfft2(1j * ky * big, s=(M, M))
    exact = -np.fft.rfft2(ux * wx + uy * wy) / (M / N) ** 2
    ref = np.concatenate([exact[: N // 2, : N // 2 + 1], exact[-N // 2:, : N // 2 + 1]]) * s.mask
    np.testing.assert_allclose(nl, ref, atol=1e-9 * np.abs(ref).max())


def test_inviscid_conservation():
    """ν = α = f = 0: the dealiased (Galerkin) dynamics conserves energy and enstrophy."""
    errs = {}
    for cfl in (0.5, 0.25):
        s = TurbulenceSolver(64, nu=0.0, alpha=0.0, forcing=0.0, ic_amplitude=5.0, seed=2, cfl=cfl)
        e0, z0 = s.energy(), s.enstrophy()
        while s.t < 1.0:
            s.step(min(s.adaptive_dt(), 1.0 - s.t))
        assert s.t == pytest.approx(1.0)
        assert s.enstrophy() > 0.5 * z0  # the flow did evolve
        errs[cfl] = (abs(s.energy() / e0 - 1), abs(s.enstrophy() / z0 - 1))
        assert s.energy_budget() == {"injection": 0.0, "drag": 0.0, "dissipation": 0.0}
    assert errs[0.5][0] < 1e-5 and errs[0.5][1] < 5e-4
    # time-stepping error: RK4 converges fast when dt halves
    assert errs[0.25][0] < errs[0.5][0] / 8 and errs[0.25][1] < errs[0.5][1] / 8


def test_instantaneous_energy_budget():
    """dE/dt measured over a tiny step equals injection − drag − dissipation."""
    s = TurbulenceSolver(64, nu=0.02, p=1, alpha=0.1, ic_amplitude=3.0, seed=2)
    for _ in range(50):
        s.step()
    b0, e0 = s.energy_budget(), s.energy()
    dt = 1e-4
    s.step(dt)
    b1, e1 = s.energy_budget(), s.energy()
    rate = (e1 - e0) / dt
    pred = 0.5 * sum(b["injection"] - b["drag"] - b["dissipation"] for b in (b0, b1))
    assert b0["dissipation"] > 0.1 * b0["injection"]  # every term matters here
    assert rate == pytest.approx(pred, rel=1e-5)
    assert b0["drag"] == pytest.approx(2 * 0.1 * e0)


def test_default_nu_scaling_and_validation():
    assert default_nu(256) / default_nu(128) == pytest.approx(2.0**-8)
    assert default_nu(128) * (128 / 3) ** 8 == pytest.approx(10.0)
    for bad in (dict(size=30 + 1), dict(size=8), dict(size=24, kf=8), dict(p=0), dict(cfl=0),
                dict(nu=-1.0), dict(alpha=-0.1), dict(dt_max=0.0)):
        with pytest.raises(ValueError):
            TurbulenceSolver(**{"size": 32, **bad})
    with pytest.raises(ValueError):
        next(iter_turbulence(size=32, interval=0.0))
    s = TurbulenceSolver(32)
    with pytest.raises(ValueError):
        s.set_vorticity(np.full((32, 32), np.nan))


def test_divergence_is_detected():
    s = TurbulenceSolver(32, seed=0)
    s.w_hat[1, 1] = np.nan
    s._stage1 = None
    with pytest.raises(TurbulenceDiverged):
        s.step()


@pytest.mark.parametrize("bad,fragment", [
    (dict(size=32.0), "size"), (dict(size=8192), "size"), (dict(size=True), "size"),
    (dict(p=17), "order p"), (dict(p=2.0), "order p"), (dict(kf=11), "kf"),
    (dict(kf=0), "kf"), (dict(cfl=float("nan")), "cfl"), (dict(cfl=1.6), "cfl"),
    (dict(nu=float("inf")), "nu"), (dict(alpha=float("inf")), "alpha"),
    (dict(forcing=float("nan")), "forcing"), (dict(ic_amplitude=-1.0), "ic_amplitude"),
    (dict(dt_max="x"), "dt_max"),
])
def test_solver_parameters_are_checked_with_one_message(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        TurbulenceSolver(**{"size": 32, **bad})


@pytest.mark.parametrize("bad,fragment", [
    (dict(spinup=float("nan")), "spinup"), (dict(spinup=-1.0), "spinup"),
    (dict(interval=float("inf")), "interval"), (dict(n_snapshots=-1), "n_snapshots"),
    (dict(n_snapshots=2.5), "n_snapshots"), (dict(size=100, kf=40), "kf"),
])
def test_generator_parameters_are_checked_before_any_work(bad, fragment):
    it = iter_turbulence(**{"size": 32, "n_snapshots": 1, "spinup": 0.1, **bad})
    with pytest.raises(ValueError, match=fragment):
        next(it)


def test_a_request_that_does_not_fit_in_memory_is_refused_up_front(monkeypatch):
    import explorer.core.budget as budget
    from explorer.core.fields.turbulence import turbulence_memory_bytes

    # 64^2 with 16 snapshots: 400 B per grid point for the solver, 2 float32 copies per snapshot
    assert turbulence_memory_bytes(64, 16) == (400 + 8 * 16) * 64 * 64
    monkeypatch.setattr(budget, "available_memory", lambda: turbulence_memory_bytes(64, 16) - 1)
    with pytest.raises(budget.MemoryBudgetError, match="16 snapshots of 64x64"):
        next(iter_turbulence(size=64, n_snapshots=16))
    reports = list(iter_turbulence(size=64, n_snapshots=15, spinup=0.05, interval=0.05))
    assert reports[-1].result.fields.shape == (15, 64, 64)
