"""Langevin samplers: exact Gaussian and double-well targets, ULA's O(h) bias, mixing vs condition
number, determinism, stopping, divergence and gradient accounting.

Statistical checks use fixed seeds and tolerances of Z standard errors, the errors derived from the
number of effectively independent samples (samples / tau_int, Sokal window)."""

import math
import threading

import numpy as np
import pytest
from scipy import integrate, stats

from explorer.core.observables import integrated_autocorrelation_time
from explorer.core.progress import run
from explorer.core.sampling import (
    LangevinResult,
    SamplerDiverged,
    SamplerFrozen,
    SamplerRunaway,
    x_limit_sigmas,
    iter_langevin,
    langevin,
    largest_hessian_eigenvalue,
    mala_step,
    ula_step,
)

Z = 4.0  # standard errors allowed for each statistical comparison


def gaussian(A):
    """U(x) = x^T A x / 2 on a batch (C, d)."""
    A = np.asarray(A, dtype=np.float64)
    return (lambda x: 0.5 * np.einsum("ci,ij,cj->c", x, A, x)), (lambda x: x @ A)


def diag_gaussian(a):
    a = np.asarray(a, dtype=np.float64)
    return (lambda x: 0.5 * (a * x * x).sum(axis=1)), (lambda x: a * x)


class Counted:
    """Wraps a callable and counts its calls; optionally injects NaN on chosen calls."""

    def __init__(self, f, nan_on=(), stop_after=None, stop=None):
        self.f, self.calls, self.nan_on = f, 0, set(nan_on)
        self.stop_after, self.stop = stop_after, stop

    def __call__(self, x):
        self.calls += 1
        if self.stop_after is not None and self.calls >= self.stop_after:
            self.stop.set()
        out = np.asarray(self.f(x), dtype=np.float64)
        return out * np.nan if self.calls in self.nan_on else out


def tau(series):
    return integrated_autocorrelation_time(np.asarray(series, dtype=np.float64))[0]


def zscore(series, expected, std):
    """(mean - expected) / (std * sqrt(tau / N)) for a (T, C) series with known std per sample."""
    s = np.asarray(series, dtype=np.float64)
    return (s.mean() - expected) / (std * math.sqrt(tau(s) / s.size))


# ---------------------------------------------------------------- exact Gaussian targets
CASES = {
    "diagonal kappa=10": np.diag(np.geomspace(1.0, 10.0, 4)),
    "correlated 2d": np.array([[3.0, 1.2], [1.2, 1.0]]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_mala_samples_gaussian_mean_and_covariance(name):
    A = CASES[name]
    d = len(A)
    cov = np.linalg.inv(A)
    E, G = gaussian(A)
    burn, n = 300, 1000
    res = langevin(E, G, np.zeros((512, d)), n, burn_in=burn, thin=1, seed=11)
    assert isinstance(res, LangevinResult) and not res.stopped
    s = res.samples.astype(np.float64)  # (n, 512, d)
    assert s.shape == (n, 512, d)
    for i in range(d):
        z = zscore(s[:, :, i], 0.0, math.sqrt(cov[i, i]))
        assert abs(z) < Z, (name, "mean", i, z)
        for j in range(i, d):
            # Gaussian: Var(x_i x_j) = S_ii S_jj + S_ij^2
            sd = math.sqrt(cov[i, i] * cov[j, j] + cov[i, j] ** 2)
            z = zscore(s[:, :, i] * s[:, :, j], cov[i, j], sd)
            assert abs(z) < Z, (name, "cov", i, j, z)
    # step adapted in burn-in, then frozen; acceptance near the 0.574 target
    assert np.all(res.step_trace[burn:] == res.step)
    assert np.ptp(res.step_trace[: int(0.8 * burn)]) > 0
    assert 0.4 <= res.acceptance <= 0.75
    assert len(res.acceptance_trace) == burn + n
    assert 0.4 <= res.acceptance_trace[burn:].mean() <= 0.75


def test_curvature_estimate_and_initial_step():
    a = np.geomspace(1.0, 10.0, 6)
    _, G = diag_gaussian(a)
    x = np.random.default_rng(0).standard_normal((32, 6))
    lam, calls = largest_hessian_eigenvalue(G, x, n_iter=50, rtol=1e-4, seed=0)
    assert lam == pytest.approx(10.0, rel=0.01)
    assert 2 <= calls <= 51
    # double well: curvature 4k(3x^2 - 1) is largest at the chain farthest out
    k = 2.0
    xs = np.array([0.0, 1.0, 1.5])
    lam, _ = largest_hessian_eigenvalue(lambda x: 4 * k * x * (x * x - 1), xs, seed=0)
    assert lam == pytest.approx(4 * k * (3 * 1.5**2 - 1), rel=1e-3)
    E, G = diag_gaussian(a)
    res = langevin(E, G, x, 5, burn_in=0)
    assert res.lambda_max == pytest.approx(10.0, rel=0.2)
    assert res.initial_step == pytest.approx(6 ** (-1 / 3) / res.lambda_max)


# ---------------------------------------------------------------- ULA bias
@pytest.mark.parametrize("h", [0.2, 0.5, 1.0])
def test_ula_has_its_known_order_h_bias_and_mala_removes_it(h):
    a, C, n = 1.0, 4000, 400
    E, G = diag_gaussian([a])
    v_ula = 1.0 / (a * (1.0 - a * h / 2.0))  # ULA's exact stationary variance
    rng = np.random.default_rng(5)
    # start exactly in ULA's stationary law, so no burn-in is needed
    x0 = math.sqrt(v_ula) * rng.standard_normal((C, 1))
    ula = langevin(E, G, x0, n, method="ula", step=h, adapt=False, thin=1, seed=6)
    x2 = ula.samples[:, :, 0].astype(np.float64) ** 2
    sd = math.sqrt(2.0) * v_ula  # std of x^2 for a centred Gaussian
    assert abs(zscore(x2, v_ula, sd)) < Z
    assert zscore(x2, 1.0 / a, sd) > 8  # the bias is resolved, not noise
    assert np.all(ula.step_trace == h)
    # MALA with the same fixed step samples the exact variance 1/a
    x0 = rng.standard_normal((C, 1)) / math.sqrt(a)
    mala = langevin(E, G, x0, n, method="mala", step=h, adapt=False, thin=1, seed=7)
    x2 = mala.samples[:, :, 0].astype(np.float64) ** 2
    assert abs(zscore(x2, 1.0 / a, math.sqrt(2.0) / a)) < Z


def test_ula_adapts_from_its_virtual_acceptance():
    a = np.geomspace(1.0, 10.0, 4)
    E, G = diag_gaussian(a)
    x0 = np.zeros((256, 4))
    ula = langevin(E, G, x0, 200, burn_in=300, method="ula", seed=3)
    mala = langevin(E, G, x0, 200, burn_in=300, method="mala", seed=3)
    assert 0.4 <= ula.acceptance <= 0.75  # virtual MH acceptance, never applied
    # not equal: the virtual acceptance is averaged over ULA's (wider) stationary law, not MALA's
    assert 1 / 1.5 < ula.step / mala.step < 1.5
    assert np.all(ula.step_trace[300:] == ula.step)


# ---------------------------------------------------------------- non-Gaussian: double well
def double_well_bin_probabilities(k, edges):
    w = lambda t: math.exp(-k * (t * t - 1.0) ** 2)  # noqa: E731
    p = np.array([integrate.quad(w, lo, hi)[0] for lo, hi in zip(edges[:-1], edges[1:])])
    return p / p.sum()


def hotelling_pvalue(samples, edges, p):
    """Test per-chain histograms against bin probabilities p.  The chains are independent, so the
    covariance of a chain's bin frequencies -- autocorrelation included -- is estimated across
    chains, and Hotelling's T^2 of the mean deviation is exactly F-distributed for Gaussian
    per-chain vectors (and asymptotically otherwise).  Returns (p-value, T^2)."""
    T, C = samples.shape
    B = len(p)
    idx = np.searchsorted(edges, samples, side="right") - 1
    counts = np.bincount((idx + B * np.arange(C)).ravel(), minlength=B * C).reshape(C, B)
    dev = (counts / T - p)[:, :-1]  # frequencies sum to 1: drop one bin
    q = B - 1
    mean = dev.mean(axis=0)
    t2 = C * mean @ np.linalg.solve(np.cov(dev, rowvar=False), mean)
    return stats.f.sf((C - q) / (q * (C - 1)) * t2, q, C - q), t2


def test_mala_double_well_reproduces_the_exact_marginal():
    k = 2.0  # barrier height k between the wells at +-1

    def U(x):
        return k * (x * x - 1.0) ** 2

    C, burn, n = 1000, 500, 3000
    x0 = np.random.default_rng(1).choice([-1.0, 1.0], C)  # var_shape = ()
    res = langevin(U, lambda x: 4 * k * x * (x * x - 1.0), x0, n, burn_in=burn, thin=1, seed=2)
    assert 0.4 <= res.acceptance <= 0.75
    s = res.samples.astype(np.float64)  # (n, C)
    edges = np.concatenate([[-np.inf], np.linspace(-1.6, 1.6, 33), [np.inf]])
    pval, t2 = hotelling_pvalue(s, edges, double_well_bin_probabilities(k, edges))
    assert pval > 1e-3, (pval, t2)
    # the test has power: the same samples are rejected as draws of a 10 % deeper double well
    assert hotelling_pvalue(s, edges, double_well_bin_probabilities(1.1 * k, edges))[0] < 1e-6
    # <x^2> and the symmetric well occupation against quadrature
    Zn = integrate.quad(lambda t: math.exp(-U(t)), -np.inf, np.inf)[0]
    m2 = integrate.quad(lambda t: t * t * math.exp(-U(t)), -np.inf, np.inf)[0] / Zn
    m4 = integrate.quad(lambda t: t**4 * math.exp(-U(t)), -np.inf, np.inf)[0] / Zn
    assert abs(zscore(s * s, m2, math.sqrt(m4 - m2 * m2))) < Z
    assert abs(zscore(np.sign(s), 0.0, 1.0)) < Z


# ---------------------------------------------------------------- mixing vs condition number
def test_autocorrelation_time_grows_with_condition_number():
    taus, steps = {}, {}
    for kappa in (4, 64):
        a = np.geomspace(1.0, kappa, 8)
        E, G = diag_gaussian(a)
        x0 = np.random.default_rng(0).standard_normal((256, 8)) / np.sqrt(a)
        res = langevin(E, G, x0, 3000, burn_in=300, thin=1, seed=4)
        taus[kappa] = tau(res.samples[:, :, 0])  # slowest direction, eigenvalue 1
        steps[kappa] = res.step
        assert 0.4 <= res.acceptance <= 0.75
    # with h ~ 1/lambda_max the slow mode decorrelates at rate ~ h lambda_min ~ 1/kappa:
    # the ratio should be near 64/4 = 16; require at least half of it
    assert taus[64] > 8 * taus[4], taus
    assert steps[4] > 8 * steps[64], steps


# ---------------------------------------------------------------- determinism, stop, progress
def test_same_seed_gives_identical_chains():
    E, G = gaussian(CASES["correlated 2d"])
    x0 = np.zeros((16, 2))
    for method in ("mala", "ula"):
        r1 = langevin(E, G, x0, 50, burn_in=50, method=method, thin=5, seed=123)
        r2 = langevin(E, G, x0, 50, burn_in=50, method=method, thin=5,
                      seed=np.random.default_rng(123))
        r3 = langevin(E, G, x0, 50, burn_in=50, method=method, thin=5, seed=124)
        assert np.array_equal(r1.x, r2.x)
        assert np.array_equal(r1.energy_trace, r2.energy_trace)
        assert np.array_equal(r1.samples, r2.samples)
        assert r1.step == r2.step
        assert not np.array_equal(r1.x, r3.x)
    assert np.all(x0 == 0)  # the input is not modified


def test_observe_records_observables_alongside_the_energy_and_gives_their_tau():
    """``observe`` values at the trace steps equal the observable of the states at those steps
    (checked against thinned samples), do not change the chains, and give τ_int without storing
    states: on a diagonal Gaussian with κ = 64 the slowest mode has τ ≈ 19 records (of 5 steps),
    the fastest ≈ 1 (decorrelated within one record)."""
    a = np.geomspace(1.0, 64.0, 8)
    E, G = diag_gaussian(a)
    x0 = np.random.default_rng(0).standard_normal((64, 8)) / np.sqrt(a)
    obs = lambda x: x[:, [0, 7]]  # noqa: E731  (C, 2): the slowest and the fastest mode
    kw = dict(burn_in=200, thin=5, record_every=5, seed=3, sample_dtype=np.float64)
    plain = langevin(E, G, x0, 4000, **kw)
    res = langevin(E, G, x0, 4000, observe=obs, **kw)
    assert plain.observable_trace is None and plain.production_observable is None
    assert np.array_equal(plain.x, res.x) and np.array_equal(plain.energy_trace, res.energy_trace)
    tr = res.observable_trace
    assert tr.shape == (len(res.trace_steps), 64, 2) and np.array_equal(tr[0], obs(x0))
    rows = np.searchsorted(res.trace_steps, res.sample_steps)
    assert np.array_equal(res.trace_steps[rows], res.sample_steps)
    assert np.array_equal(tr[rows], res.samples[:, :, [0, 7]])
    prod = res.production_observable
    assert len(prod) == 4000 // 5
    slow, fast = tau(prod[:, :, 0]), tau(prod[:, :, 1])
    assert slow > 10 * fast, (slow, fast)
    with pytest.raises(ValueError, match="observe"):
        langevin(E, G, x0, 10, observe=lambda x: x[:3, 0])


def test_progress_reports_and_result_layout():
    E, G = diag_gaussian([1.0, 2.0, 3.0])
    x0 = np.zeros((8, 3))
    reports = list(iter_langevin(E, G, x0, 40, burn_in=20, record_every=4, thin=10,
                                 report_every=10, label="scale 1"))
    assert [r.stage for r in reports[:-1]] == ["scale 1: burn-in"] * 2 + ["scale 1: sampling"] * 4
    assert [(r.step, r.total) for r in reports[:2]] == [(10, 20), (20, 20)]
    for r in reports:
        assert r.snapshot.dtype == np.float32 and r.snapshot.shape == (3,)
        assert {"acceptance", "step", "mean_energy", "n_grad"} <= set(r.info)
    assert all(not r.done for r in reports[:-1]) and reports[-1].done
    res = reports[-1].result
    assert res.samples.shape == (4, 8, 3) and res.samples.dtype == np.float32
    assert list(res.sample_steps) == [30, 40, 50, 60]
    assert list(res.trace_steps) == list(range(0, 61, 4))
    assert res.energy_trace.shape == (16, 8)
    assert np.all(res.energy_trace[0] == 0.0)
    assert res.production_energy.shape == (10, 8)
    assert np.allclose(res.energy, E(res.x)) and np.array_equal(res.energy_trace[-1], res.energy)
    assert res.n_production == 40 and not res.stopped


@pytest.mark.parametrize("stop_at", [30, 150])  # in burn-in / in production
def test_stop_event_ends_early(stop_at):
    E, G = diag_gaussian([1.0, 4.0])
    stop = threading.Event()
    g = Counted(G, stop_after=stop_at, stop=stop)
    reports = list(iter_langevin(E, g, np.zeros((8, 2)), 1000, burn_in=100, step=0.1,
                                 thin=1, stop=stop))
    last = reports[-1]
    assert last.done and last.stopped and last.result.stopped
    res = last.result
    assert g.calls == stop_at and res.n_grad == stop_at  # stopped at the next step boundary
    assert res.n_production == max(0, stop_at - 101)
    assert len(res.samples) == res.n_production
    assert len(res.acceptance_trace) == stop_at - 1
    assert np.all(np.isfinite(res.x))
    assert run(iter(reports)) is res


# ---------------------------------------------------------------- gradient accounting
@pytest.mark.parametrize("method", ["mala", "ula"])
@pytest.mark.parametrize("step", [None, 0.05])
def test_reported_gradient_evaluations_equal_true_calls(method, step):
    E, G = gaussian(CASES["correlated 2d"])
    e, g = Counted(E), Counted(G)
    reports = list(iter_langevin(e, g, np.zeros((32, 2)), 70, burn_in=30, method=method, step=step))
    res = reports[-1].result
    assert res.n_grad == g.calls and res.n_energy == e.calls
    assert res.n_energy == 1 + 100  # initial state + one per step
    extra = 0 if step is not None else res.n_grad - 101  # power iterations
    assert res.n_grad == 1 + 100 + extra and (step is not None or extra >= 2)
    assert reports[-2].info["n_grad"] == res.n_grad


def test_mala_step_reuses_the_proposal_gradient():
    E, G = diag_gaussian([1.0, 3.0])
    g = Counted(G)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2))
    out = mala_step(E, g, x, E(x), G(x), 0.3, rng)
    assert g.calls == 1
    assert np.allclose(out.grad, G(out.x)) and np.allclose(out.energy, E(out.x))
    assert 0 < out.accepted.sum() < 64
    assert np.array_equal(out.x[~out.accepted], x[~out.accepted])
    assert np.all((out.accept_prob >= 0) & (out.accept_prob <= 1))
    g.calls = 0
    out = ula_step(E, g, x, E(x), G(x), 0.3, rng)
    assert g.calls == 1 and out.accepted.all()
    assert np.allclose(out.grad, G(out.x))


# ---------------------------------------------------------------- divergence
def collect_until_error(gen):
    reports = []
    with pytest.raises(SamplerDiverged) as info:
        for r in gen:
            reports.append(r)
    assert not any(r.done for r in reports)  # no result is ever handed out
    return info.value


def test_wrong_sign_quadratic_diverges_after_one_recovery():
    x0 = np.random.default_rng(0).standard_normal((64, 3))
    err = collect_until_error(iter_langevin(lambda x: -(x * x).sum(1), lambda x: -2 * x, x0, 200,
                                            burn_in=1000))
    assert isinstance(err, FloatingPointError)
    assert err.attempts == 2 and 0 < err.step <= 1000 and "burn-in" in err.stage
    assert "runaway" in err.reason or "stalled" in err.reason


def test_wrong_sign_quadratic_diverges_in_production_without_retry():
    x0 = np.random.default_rng(0).standard_normal((64, 3))
    err = collect_until_error(iter_langevin(lambda x: -(x * x).sum(1), lambda x: -2 * x, x0, 500,
                                            burn_in=0, step=0.1))
    assert err.attempts == 1 and err.step > 0 and "sampling" in err.stage
    assert "stalled" in err.reason  # the MH test traps the chains in a shell of radius ~1/h


def test_wrong_sign_quadratic_diverges_with_ula():
    x0 = np.random.default_rng(0).standard_normal((64, 3))
    err = collect_until_error(iter_langevin(lambda x: -(x * x).sum(1), lambda x: -2 * x, x0, 500,
                                            method="ula", burn_in=0, step=0.1))
    assert "runaway" in err.reason and "normalisable" in err.reason


def test_huge_fixed_step_diverges():
    E, G = diag_gaussian([1.0, 2.0])
    x0 = np.random.default_rng(0).standard_normal((16, 2))
    # ULA with h lambda > 2 is an unstable linear recursion
    err = collect_until_error(iter_langevin(E, G, x0, 500, method="ula", step=5.0, adapt=False))
    assert "runaway" in err.reason or "exploded" in err.reason
    assert err.step < 50
    # MALA: every proposal overflows
    err = collect_until_error(iter_langevin(E, G, x0, 50, method="mala", step=1e300, adapt=False))
    assert "non-finite" in err.reason and err.step == 1
    # MALA: a large finite step is rejected every time -> stalled
    err = collect_until_error(iter_langevin(E, G, x0, 500, method="mala", step=50.0, adapt=False))
    assert "stalled" in err.reason and err.step == 50


def test_nan_gradient_or_energy_is_caught():
    E, G = diag_gaussian([1.0, 2.0])
    x0 = np.zeros((8, 2))
    err = collect_until_error(iter_langevin(E, Counted(G, nan_on={20}), x0, 100, method="ula",
                                            step=0.1))
    assert "gradient is not finite" in err.reason and err.step == 19
    err = collect_until_error(iter_langevin(lambda x: E(x) * np.nan, G, x0, 10))
    assert err.step == 0 and "energy" in err.reason


def test_transient_failure_in_burn_in_recovers_with_a_smaller_step():
    E, G = diag_gaussian([1.0, 2.0])
    g = Counted(G, nan_on={20})  # call 20 = burn-in step 19 (call 1 is the initial gradient)
    reports = list(iter_langevin(E, g, np.zeros((32, 2)), 100, burn_in=200, step=0.2))
    assert "recovery" in reports[1].info and reports[1].info["diverged_at"] == 19
    res = reports[-1].result
    assert res.recovered and not res.stopped and np.all(np.isfinite(res.x))
    assert res.n_grad == g.calls == 1 + 19 + 300
    assert res.n_nonfinite == 32  # the whole batch of proposals at the failing step
    info = reports[1].info
    # restart at a tenth of min(h0, h_fail)
    assert info["step"] == pytest.approx(0.1 * min(0.2, info["h_fail"]))
    assert res.step_trace[0] == info["step"]
    assert info["h_max"] == pytest.approx(info["h_fail"] / 2)
    assert res.step_trace.max() <= info["h_max"] * (1 + 1e-12)  # never back to the failing step
    assert len(res.acceptance_trace) == 300 and res.acceptance >= 0.4
    assert np.all(res.step_trace[200:] == res.step)


def test_bad_arguments_are_rejected():
    E, G = diag_gaussian([1.0])
    x0 = np.zeros((4, 1))
    with pytest.raises(ValueError, match="method"):
        langevin(E, G, x0, 10, method="hmc")
    with pytest.raises(ValueError, match="energy"):
        langevin(lambda x: np.zeros(3), G, x0, 10)
    with pytest.raises(ValueError, match="grad"):
        langevin(E, lambda x: x[:, 0], x0, 10)
    with pytest.raises(ValueError, match="NaN"):
        langevin(E, G, x0 * np.nan, 10)
    with pytest.raises(ValueError, match="step"):
        langevin(E, G, x0, 10, step=-1.0)


# ------------------------------------------------------------------ runaways and frozen chains
def _improper(x):
    return -0.5 * (x * x).sum(axis=(1, 2))


@pytest.mark.parametrize("method", ["mala", "ula"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_runaway_of_an_improper_target_is_stopped_within_100_steps(method, seed):
    """U = -|x|²/2 on 16 x 16 (no density at all): with the data's scale known (x_scale = 1) the
    chains are stopped as runaways within 100 steps (measured 61-68 for MALA, 10-11 for ULA),
    without a retry; with the old loose limit (1e3 x the initial scale) they came back as
    'samples' of RMS 10-19 for thousands of steps."""
    x0 = np.random.default_rng(seed).standard_normal((4, 16, 16))
    with pytest.raises(SamplerRunaway, match="ran away") as err:
        langevin(_improper, lambda x: -x, x0, n_steps=5000, burn_in=200, method=method,
                 seed=seed, x_scale=1.0)
    assert 1 <= err.value.step <= 100 and err.value.attempts == 1


@pytest.mark.parametrize("d_side", [1, 2, 16])
def test_runaway_limit_never_trips_at_the_data_scale(d_side):
    """A proper Gaussian target of std 3 sampled long with x_scale = 3: the limit
    (3 + 6/sqrt(d)) std is never reached, from 1 variable (9 std) to 256 (3.4 std)."""
    sigma = 3.0
    x0 = sigma * np.random.default_rng(5).standard_normal((16, d_side, d_side))
    res = langevin(lambda x: 0.5 * (x * x).sum(axis=(1, 2)) / sigma**2, lambda x: x / sigma**2,
                   x0, n_steps=3000, burn_in=300, seed=5, x_scale=sigma, record_every=10)
    assert not res.stopped and res.n_production == 3000
    assert np.std(res.x) == pytest.approx(sigma, rel=0.5)
    assert x_limit_sigmas(1) == 9.0 and x_limit_sigmas(256) == pytest.approx(3.375)


def test_frozen_chains_are_a_failure_not_samples():
    """MALA at a fixed step far too large for the target: acceptance 5 % (target 57 %), the
    chains barely move, and the run raises SamplerFrozen naming the stage instead of returning
    its states; the same target at a tuned step returns samples."""
    x0 = np.random.default_rng(0).standard_normal((8, 16, 16))
    e = lambda x: 0.5 * (x * x).sum(axis=(1, 2))  # noqa: E731
    with pytest.raises(SamplerFrozen, match=r"froze \(scale 1: sampling\): mean acceptance 0\.0") as err:
        langevin(e, lambda x: x, x0, n_steps=200, burn_in=0, step=0.5, adapt=False, seed=0,
                 label="scale 1")
    assert isinstance(err.value, SamplerDiverged)   # one except clause catches every failure
    ok = langevin(e, lambda x: x, x0, n_steps=200, burn_in=200, seed=0)
    assert ok.acceptance > 0.4
    # an adapted step that collapsed by orders of magnitude is caught by its ratio to h0
    with pytest.raises(SamplerFrozen, match="collapsed"):
        langevin(e, lambda x: x, x0, n_steps=50, burn_in=100, seed=0, frozen_accept=None,
                 frozen_step_ratio=10.0)


def test_shared_evaluation_answers_the_gradient_of_the_energy_just_asked_from_one_pass():
    """A sampler's energy then gradient of the same proposal cost one energy_and_grad pass; a
    gradient at another array is computed (by the fallback when given) and is right."""
    from explorer.core.evaluation import shared_evaluation

    calls = []

    def both(x):
        calls.append("both")
        return 0.5 * np.sum(x**2, axis=1), x.copy()

    def grad_only(x):
        calls.append("grad")
        return x.copy()

    x, y = np.ones((3, 2)), 2 * np.ones((3, 2))
    for fallback, expect in ((None, ["both", "both"]), (grad_only, ["both", "grad"])):
        calls.clear()
        energy, grad = shared_evaluation(both, fallback)
        np.testing.assert_allclose(energy(x), [1.0, 1.0, 1.0])
        np.testing.assert_allclose(grad(x), x)
        assert calls == ["both"]
        np.testing.assert_allclose(grad(y), y)                # not the last energy's array
        assert calls == expect
