"""Langevin samplers (ULA, MALA) for batches of chains: step adapted during burn-in then frozen,
failures (divergence, runaway, stalled or frozen chains) raised, never returned as samples. See
docs/sampling.md, "Langevin: ULA and MALA" to "Divergence, runaway and frozen chains".

The target p ∝ exp(-U) is two callables on a batch of C chains ``x`` (C, *var_shape), float64:
``energy(x) -> (C,)`` and ``grad(x) -> x.shape``. Gradient evaluations count batched ``grad``
calls: 1 at the initial state, the power iterations when ``step`` is None, then 1 per step.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from explorer.core.progress import Progress, run, should_stop

EnergyFn = Callable[[np.ndarray], np.ndarray]
GradFn = Callable[[np.ndarray], np.ndarray]

TARGET_ACCEPT = 0.574  # optimal MALA acceptance (Roberts & Rosenthal 1998)
BLOWUP = 1e3  # divergence factor for |x| and for the energy (docs/sampling.md)
DEFAULT_STEP = 1e-2  # fallback initial step when the curvature estimate fails
ADAPT_FRACTION = 0.8  # share of the burn-in during which the step adapts
STALL_WINDOW = 50  # MALA stall detection window (steps with a frozen step size) ...
STALL_ACCEPT = 0.01  # ... and the mean acceptance below which the chains count as stalled
FROZEN_ACCEPT = 0.1  # MALA production acceptance below this (target 0.574): the chains froze
FROZEN_STEP_RATIO = 1e-3  # ... or an adapted step below this fraction of the curvature step h0
_RM_EXPONENT = 0.6  # Robbins-Monro gain (t + _RM_OFFSET)^(-0.6)
_RM_OFFSET = 10.0  # damps the first updates (a factor <= 1.12 per step)
_RECOVERY_FACTOR = 0.1
METHODS = ("mala", "ula")


def x_limit_sigmas(d: int) -> float:
    """Runaway threshold on a chain's RMS, in units of ``x_scale``, for d variables: 3 + 6/sqrt(d).
    A Gaussian chain at the data's scale has RMS² ~ χ²_d / d, so even a single variable (9 σ)
    essentially never reaches it, while a runaway from an energy unbounded below crosses it within
    tens of steps (U = -|x|²/2 on 16 x 16: 3.4 σ)."""
    return 3.0 + 6.0 / math.sqrt(max(int(d), 1))


class SamplerDiverged(FloatingPointError):
    """A Langevin run diverged.  Carries ``step`` (global step index, 0 = initial state),
    ``reason``, ``stage``, the ``step_size`` in use and the number of ``attempts`` made."""

    def __init__(
        self,
        reason: str,
        step: int,
        stage: str = "",
        step_size: float | None = None,
        attempts: int = 1,
    ):
        self.reason = reason
        self.step = int(step)
        self.stage = stage
        self.step_size = step_size
        self.attempts = attempts
        where = f" ({stage})" if stage else ""
        h = f", step size {step_size:.3g}" if step_size is not None else ""
        tries = f", after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"Langevin sampler diverged at step {self.step}{where}: {reason}{h}{tries}")


class SamplerRunaway(SamplerDiverged):
    """Chains that left the data's scale (RMS beyond :func:`x_limit_sigmas` × ``x_scale``): an energy
    not bounded below, or one far too soft. A smaller step only delays it, so no retry is made."""


class SamplerFrozen(SamplerDiverged):
    """MALA chains that no longer move: production acceptance far below the target, or a step
    size collapsed by orders of magnitude below the curvature estimate h0. Their final states are
    essentially the starting noise, so they are never returned as samples."""

    def __init__(self, reason: str, step: int, stage: str = "", step_size: float | None = None):
        SamplerDiverged.__init__(self, reason, step, stage, step_size)
        where = f" ({stage})" if stage else ""
        h = f", step size {step_size:.3g}" if step_size is not None else ""
        self.args = (f"Langevin chains froze{where}: {reason}{h}",)


class StepResult(NamedTuple):
    """One Langevin step for all chains.

    x, energy, grad: the new states and their energy / gradient (float64).
    accepted: bool (C,) -- moves applied (all True for ULA).
    accept_prob: float (C,) -- MH acceptance probability min(1, exp(log α)) of the proposal (for ULA
        the *virtual* one, computed but not applied); 0 where the proposal was not finite.
    finite: bool (C,) -- proposal x', U(x') and ∇U(x') all finite.
    """

    x: np.ndarray
    energy: np.ndarray
    grad: np.ndarray
    accepted: np.ndarray
    accept_prob: np.ndarray
    finite: np.ndarray


@dataclass
class LangevinResult:
    """Outcome of :func:`iter_langevin`.

    x, energy: final states (C, *var_shape) and their energies (C,), float64.
    energy_trace: (R, C) energies at the global steps ``trace_steps`` (0 = initial state; steps
        1 .. burn_in are burn-in, burn_in + 1 .. are production).
    acceptance_trace, step_trace: per global step 1 .. done, mean MH acceptance probability over
        chains (virtual for ULA) and the step size used.
    step: the frozen production step size; initial_step: h0.
    acceptance: mean acceptance over the production steps (virtual for ULA).
    n_grad, n_energy: batched grad / energy calls, all attempts included.
    samples: (S, C, *var_shape) production states every ``thin`` steps (None if thin is None),
        taken at the global steps ``sample_steps``.
    n_production: production steps done (< n_steps only when stopped).
    recovered: True when a burn-in divergence was followed by a successful retry.
    lambda_max: curvature estimate used for h0 (None when a step was given).
    n_nonfinite: proposals with non-finite x', U(x') or ∇U(x') (rejected by MALA), all attempts.
    observable_trace: (R, C[, k]) values of ``observe`` at ``trace_steps`` (None without it).
    """

    x: np.ndarray
    energy: np.ndarray
    energy_trace: np.ndarray
    trace_steps: np.ndarray
    acceptance_trace: np.ndarray
    step_trace: np.ndarray
    step: float
    initial_step: float
    acceptance: float
    n_grad: int
    n_energy: int
    samples: np.ndarray | None
    sample_steps: np.ndarray
    method: str
    burn_in: int
    n_steps: int
    n_production: int
    stopped: bool = False
    recovered: bool = False
    lambda_max: float | None = None
    n_nonfinite: int = 0
    observable_trace: np.ndarray | None = None

    @property
    def production_energy(self) -> np.ndarray:
        """Rows of ``energy_trace`` recorded during production."""
        return self.energy_trace[self.trace_steps > self.burn_in]

    @property
    def production_observable(self) -> np.ndarray | None:
        """Rows of ``observable_trace`` recorded during production (None without ``observe``)."""
        if self.observable_trace is None:
            return None
        return self.observable_trace[self.trace_steps > self.burn_in]


# ------------------------------------------------------------------ single steps
def _chain_sum(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1).sum(axis=1)


def _per_chain(mask: np.ndarray, ndim: int) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (ndim - 1))


def _propose(energy, grad, x, e, g, h, rng):
    """Langevin proposal, its energy/gradient, finiteness and MH log acceptance ratio."""
    xi = rng.standard_normal(x.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        xp = x - h * g + math.sqrt(2.0 * h) * xi
        ep = np.asarray(energy(xp), dtype=np.float64)
        gp = np.asarray(grad(xp), dtype=np.float64)
        finite = (
            np.isfinite(ep)
            & np.isfinite(xp.reshape(len(xp), -1)).all(axis=1)
            & np.isfinite(gp.reshape(len(gp), -1)).all(axis=1)
        )
        # log q(x'|x) = -|sqrt(2h) xi|^2 / (4h) = -|xi|^2 / 2
        # log q(x|x') = -|x - x' + h g'|^2 / (4h)
        back = x - xp + h * gp
        log_alpha = (e - ep) + 0.5 * _chain_sum(xi * xi) - _chain_sum(back * back) / (4.0 * h)
        log_alpha = np.where(finite & ~np.isnan(log_alpha), log_alpha, -np.inf)
        prob = np.exp(np.minimum(log_alpha, 0.0))
    return xp, ep, gp, finite, log_alpha, prob


def mala_step(
    energy: EnergyFn,
    grad: GradFn,
    x: np.ndarray,
    e: np.ndarray,
    g: np.ndarray,
    h: float,
    rng: np.random.Generator,
) -> StepResult:
    """One MALA step for all chains (per-chain Metropolis-Hastings test).

    ``e`` and ``g`` are the energy and gradient at ``x``.  Costs one ``energy`` and one ``grad``
    call; the proposal's gradient is returned for accepted chains.  Non-finite proposals are
    rejected; divergence checks are left to the caller (see :func:`iter_langevin`).
    """
    xp, ep, gp, finite, log_alpha, prob = _propose(energy, grad, x, e, g, h, rng)
    # accept iff log u < log alpha, u uniform  <=>  Exp(1) > -log alpha
    accepted = finite & (rng.standard_exponential(len(x)) > -log_alpha)
    m = _per_chain(accepted, x.ndim)
    return StepResult(
        np.where(m, xp, x), np.where(accepted, ep, e), np.where(m, gp, g), accepted, prob, finite
    )


def ula_step(
    energy: EnergyFn,
    grad: GradFn,
    x: np.ndarray,
    e: np.ndarray,
    g: np.ndarray,
    h: float,
    rng: np.random.Generator,
) -> StepResult:
    """One ULA step for all chains: x' = x - h ∇U(x) + sqrt(2h) ξ, always taken (biased, O(h)).

    Returns the MALA acceptance probability of the move as ``accept_prob`` (virtual: not applied).
    One ``energy`` and one ``grad`` call; no divergence check here.
    """
    xp, ep, gp, finite, _, prob = _propose(energy, grad, x, e, g, h, rng)
    return StepResult(xp, ep, gp, np.ones(len(x), dtype=bool), prob, finite)


# ------------------------------------------------------------------ initial step
def largest_hessian_eigenvalue(
    grad: GradFn,
    x: np.ndarray,
    g: np.ndarray | None = None,
    n_iter: int = 20,
    rtol: float = 0.02,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, int]:
    """Largest |eigenvalue| of ∇²U over the chains of ``x``, by power iteration (all chains at once)
    on one-sided finite-difference products  H v ≈ (∇U(x + ε v) - ∇U(x)) / ε.

    Returns (λ_max, number of grad calls).  λ_max is the maximum over chains of the per-chain
    estimate ‖H v‖ (‖v‖ = 1); it is NaN if the estimate is not finite.  Power iteration approaches
    λ_max from below; the iteration stops when the estimate changes by less than ``rtol``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    C = len(x)
    calls = 0
    if g is None:
        g = np.asarray(grad(x), dtype=np.float64)
        calls += 1
    shape = (C,) + (1,) * (x.ndim - 1)
    eps = 1e-6 * np.maximum(1.0, np.sqrt(_chain_sum(x * x))).reshape(shape)
    v = rng.standard_normal(x.shape)
    v /= np.sqrt(_chain_sum(v * v)).reshape(shape)
    lam = np.nan
    for _ in range(max(1, n_iter)):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            hv = (np.asarray(grad(x + eps * v), dtype=np.float64) - g) / eps
            calls += 1
            norms = np.sqrt(_chain_sum(hv * hv))
        if not np.all(np.isfinite(norms)):
            return float("nan"), calls
        new = float(norms.max())
        ok = (norms > 0).reshape(shape)
        v = np.where(ok, hv / np.where(ok, norms.reshape(shape), 1.0), v)
        if np.isfinite(lam) and abs(new - lam) <= rtol * max(new, 1e-300):
            lam = new
            break
        lam = new
    return lam, calls


def initial_step(lambda_max: float, n_vars: int) -> float:
    """h0 = min(1, d^(-1/3)) / λ_max, or ``DEFAULT_STEP`` if λ_max is not a positive number."""
    if not (math.isfinite(lambda_max) and lambda_max > 0):
        return DEFAULT_STEP
    return min(1.0, n_vars ** (-1.0 / 3.0)) / lambda_max


# ------------------------------------------------------------------ the chain runner
class _Run:
    """Mutable state of one attempt: chains, step size, traces."""

    def __init__(self, x0, e0, g0, h, total, record_every, o0=None):
        self.x, self.e, self.g = x0.copy(), e0.copy(), g0.copy()
        self.h = float(h)
        self.t = 0  # global step index
        self.acc = np.zeros(total)
        self.steps = np.zeros(total)
        n_rec = total // record_every + 1
        self.etrace = np.empty((n_rec, len(x0)))
        self.trace_steps = np.arange(n_rec) * record_every
        self.etrace[0] = e0
        self.otrace = None if o0 is None else np.empty((n_rec,) + o0.shape)
        if o0 is not None:
            self.otrace[0] = o0
        self.n_rec = 1
        self.frozen_at = 0  # global step from which h no longer changes


def iter_langevin(
    energy: EnergyFn,
    grad: GradFn,
    x0: np.ndarray,
    n_steps: int,
    burn_in: int = 0,
    method: str = "mala",
    step: float | None = None,
    adapt: bool = True,
    target_accept: float = TARGET_ACCEPT,
    seed: int | np.random.Generator | None = 0,
    record_every: int = 1,
    thin: int | None = None,
    report_every: int = 10,
    stop: threading.Event | None = None,
    label: str = "",
    blowup: float = BLOWUP,
    sample_dtype: type = np.float32,
    observe: Callable[[np.ndarray], np.ndarray] | None = None,
    x_scale: float | None = None,
    frozen_accept: float | None = FROZEN_ACCEPT,
    frozen_step_ratio: float | None = FROZEN_STEP_RATIO,
) -> Iterator[Progress]:
    """Run ``burn_in`` burn-in steps then ``n_steps`` production steps of ULA or MALA on all chains.

    Yields :class:`Progress` reports (stages "burn-in" and "sampling", prefixed by ``label``) with
    info {acceptance (running mean over the stage, virtual for ULA), acceptance_last, step,
    mean_energy, n_grad}; snapshot = first chain as float32.  The last report has ``done=True`` and
    carries a :class:`LangevinResult` (``stopped=True`` with the partial result if ``stop`` was
    set).
    Raises :class:`SamplerDiverged` on divergence (docs/sampling.md, "Divergence, runaway and
    frozen chains").

    ``step``: initial step (adapted during burn-in when ``adapt``) or, with ``adapt=False``, the
    fixed step; None -> curvature estimate.  ``record_every``: energy-trace spacing in steps.
    ``thin``: keep production states every ``thin`` steps as ``samples`` (None: keep none).
    ``seed``: int or Generator; the same seed gives identical chains.
    ``observe``: optional ``f(x) -> (C,) or (C, k)`` observables of the chains, recorded with the
    energy (initial state, then every ``record_every`` steps) as ``observable_trace``; e.g. the
    magnetisation for its τ_int without storing the states.
    ``x_scale``: the typical RMS of a chain's variables (e.g. the data's std at this scale); when
    given, a chain whose RMS exceeds :func:`x_limit_sigmas` (d) × x_scale is a runaway (replaces the
    loose ``blowup`` × initial-scale limit on |x|).
    ``frozen_accept`` / ``frozen_step_ratio`` (MALA, at least 20 production steps): a production
    acceptance below ``frozen_accept``, or an adapted step below ``frozen_step_ratio`` × h0, raises
    :class:`SamplerFrozen` instead of returning chains that did not move (None disables).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if int(n_steps) != n_steps or n_steps < 0 or int(burn_in) != burn_in or burn_in < 0:
        raise ValueError(
            f"n_steps and burn_in must be non-negative integers, got {n_steps}, {burn_in}")
    n_steps, burn_in = int(n_steps), int(burn_in)
    if n_steps + burn_in < 1:
        raise ValueError("nothing to do: n_steps + burn_in must be at least 1")
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept must lie in (0, 1), got {target_accept}")
    if step is not None and not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite positive number, got {step}")
    if record_every < 1 or (thin is not None and thin < 1) or report_every < 1:
        raise ValueError("record_every, thin and report_every must be at least 1")
    if not (math.isfinite(blowup) and blowup > 1):
        raise ValueError(f"blowup must be a finite number > 1, got {blowup}")
    x0 = np.array(x0, dtype=np.float64)
    if x0.ndim < 1 or len(x0) < 1:
        raise ValueError(f"x0 must have shape (C, *var_shape) with C >= 1, got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0 contains NaN or inf")

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    C = len(x0)
    d = int(np.prod(x0.shape[1:], dtype=np.int64))
    total = burn_in + n_steps
    prefix = f"{label}: " if label else ""
    st_burn, st_prod = prefix + "burn-in", prefix + "sampling"
    do_step = mala_step if method == "mala" else ula_step
    n_adapt = int(ADAPT_FRACTION * burn_in) if adapt else 0
    counts = {"grad": 0, "energy": 0, "nonfinite": 0}

    # ---- initial state
    e0 = np.asarray(energy(x0), dtype=np.float64)
    counts["energy"] += 1
    g0 = np.asarray(grad(x0), dtype=np.float64)
    counts["grad"] += 1
    if e0.shape != (C,):
        raise ValueError(f"energy(x) must return shape ({C},), got {e0.shape}")
    if g0.shape != x0.shape:
        raise ValueError(f"grad(x) must return the shape of x {x0.shape}, got {g0.shape}")
    if not np.all(np.isfinite(e0)):
        raise SamplerDiverged("energy is not finite at the initial state", 0, st_burn)
    if not np.all(np.isfinite(g0)):
        raise SamplerDiverged("gradient is not finite at the initial state", 0, st_burn)

    o0 = None
    if observe is not None:
        o0 = np.asarray(observe(x0), dtype=np.float64)
        if o0.ndim not in (1, 2) or o0.shape[0] != C:
            raise ValueError(f"observe(x) must return shape ({C},) or ({C}, k), got {o0.shape}")

    lam = None
    if step is None:
        lam, calls = largest_hessian_eigenvalue(grad, x0, g0, seed=rng)
        counts["grad"] += calls
        h0 = initial_step(lam, d)
    else:
        h0 = float(step)

    rms0 = float(np.sqrt(_chain_sum(x0 * x0) / max(d, 1)).max())
    if x_scale is not None:
        if not (math.isfinite(x_scale) and x_scale > 0):
            raise ValueError(f"x_scale must be a finite positive number, got {x_scale}")
        x_limit = x_limit_sigmas(d) * float(x_scale)
    else:
        x_limit = blowup * max(1.0, rms0, math.sqrt(2.0 * h0))
    e_ref = float(e0.mean())
    e_limit = blowup * (abs(e_ref) + d)

    def check(r: _Run, res: StepResult, stage: str) -> None:
        where = lambda bad: int(np.flatnonzero(bad)[0])  # noqa: E731
        if method == "mala" and not res.finite.any():
            raise SamplerDiverged("every chain proposed a non-finite state (step far too large)",
                                  r.t, stage, r.h)
        xf = np.isfinite(r.x.reshape(C, -1)).all(axis=1)
        if not xf.all():
            raise SamplerDiverged(f"x is not finite in chain {where(~xf)}", r.t, stage, r.h)
        if not np.isfinite(r.e).all():
            raise SamplerDiverged(f"energy is not finite in chain {where(~np.isfinite(r.e))}",
                                  r.t, stage, r.h)
        gf = np.isfinite(r.g.reshape(C, -1)).all(axis=1)
        if not gf.all():
            raise SamplerDiverged(f"gradient is not finite in chain {where(~gf)}", r.t, stage, r.h)
        rms = np.sqrt(_chain_sum(r.x * r.x) / max(d, 1))
        if rms.max() > x_limit:
            scale = (f" = {x_limit / x_scale:.3g} x the data's std {x_scale:.3g} at this scale"
                     if x_scale is not None else "")
            raise (SamplerRunaway if x_scale is not None else SamplerDiverged)(
                f"|x| ran away: RMS {rms.max():.3g} in chain {int(rms.argmax())} > "
                f"{x_limit:.3g}{scale}", r.t, stage, r.h)
        em = float(r.e.mean())
        if abs(em - e_ref) > e_limit:
            hint = "" if em > e_ref else " (falling without bound: is the target normalisable?)"
            raise SamplerDiverged(
                f"energy runaway: mean energy {em:.4g} moved from {e_ref:.4g} by more than "
                f"{e_limit:.4g}{hint}", r.t, stage, r.h)
        if method == "mala" and r.t - r.frozen_at >= STALL_WINDOW:
            recent = float(r.acc[r.t - STALL_WINDOW: r.t].mean())
            if recent < STALL_ACCEPT:
                raise SamplerDiverged(
                    f"stalled: mean acceptance {recent:.2g} over the last {STALL_WINDOW} steps "
                    f"(< {STALL_ACCEPT})", r.t, stage, r.h)

    def one_step(r: _Run, stage: str) -> StepResult:
        res = do_step(energy, grad, r.x, r.e, r.g, r.h, rng)
        counts["grad"] += 1
        counts["energy"] += 1
        counts["nonfinite"] += int(len(res.finite) - res.finite.sum())
        r.x, r.e, r.g = res.x, res.energy, res.grad
        r.acc[r.t] = float(res.accept_prob.mean())
        r.steps[r.t] = r.h
        r.t += 1
        if r.t % record_every == 0:
            r.etrace[r.n_rec] = r.e
            if r.otrace is not None:
                r.otrace[r.n_rec] = observe(r.x)
            r.n_rec += 1
        check(r, res, stage)
        return res

    def report(r: _Run, i: int, n: int, stage: str, acc_sum: float, **extra) -> Progress:
        info = {
            "acceptance": acc_sum / max(i, 1),
            "acceptance_last": float(r.acc[r.t - 1]) if r.t else float("nan"),
            "step": r.h,
            "mean_energy": float(r.e.mean()),
            "n_grad": counts["grad"],
            "n_nonfinite": counts["nonfinite"],
            "method": method,
            **extra,
        }
        return Progress(i, n, stage, snapshot=r.x[0].astype(np.float32), info=info)

    def burn(h_start: float, h_max: float | None = None):
        """Burn-in generator; returns (run, stopped).  The adapted step stays below ``h_max``."""
        r = _Run(x0, e0, g0, h_start, total, record_every, o0)
        r.frozen_at = n_adapt
        log_h = math.log(h_start)
        log_h_max = math.log(h_max) if h_max else 700.0
        window = []
        acc_sum = 0.0
        for i in range(burn_in):
            if should_stop(stop):
                return r, True
            res = one_step(r, st_burn)
            acc_sum += r.acc[r.t - 1]
            if i < n_adapt:
                a = float(res.accept_prob.mean())
                log_h += (i + _RM_OFFSET) ** (-_RM_EXPONENT) * (a - target_accept)
                log_h = min(max(log_h, -700.0), log_h_max)
                if i >= n_adapt // 2:
                    window.append(log_h)
                r.h = math.exp(log_h)
                if i == n_adapt - 1:
                    r.h = math.exp(float(np.mean(window))) if window else r.h
            if (i + 1) % report_every == 0 or i + 1 == burn_in:
                yield report(r, i + 1, burn_in, st_burn, acc_sum)
        return r, False

    recovered = False
    try:
        r, stopped = yield from burn(h0)
    except SamplerDiverged as err:
        if not (adapt and burn_in > 0 and err.step <= burn_in) or isinstance(err, SamplerRunaway):
            raise
        h_fail = err.step_size if err.step_size else h0
        h_retry = _RECOVERY_FACTOR * min(h0, h_fail)
        yield Progress(0, burn_in, st_burn, info={
            "recovery": err.reason, "diverged_at": err.step, "step": h_retry,
            "h_fail": h_fail, "h_max": 0.5 * h_fail,
            "n_grad": counts["grad"], "method": method})
        try:
            r, stopped = yield from burn(h_retry, h_max=0.5 * h_fail)
        except SamplerDiverged as err2:
            err2.attempts = 2
            err2.args = (str(err2) + f", after 2 attempts (first: {err.reason})",)
            raise
        recovered = True

    # ---- production with the frozen step
    n_keep = n_steps // thin if thin else 0
    samples = np.empty((n_keep,) + x0.shape, dtype=sample_dtype) if thin else None
    sample_steps = np.zeros(n_keep, dtype=np.int64)
    taken = 0
    acc_sum = 0.0
    done = 0
    if not stopped:
        for p in range(n_steps):
            if should_stop(stop):
                stopped = True
                break
            one_step(r, st_prod)
            acc_sum += r.acc[r.t - 1]
            done = p + 1
            if thin and done % thin == 0:
                samples[taken] = r.x
                sample_steps[taken] = r.t
                taken += 1
            if done % report_every == 0 or done == n_steps:
                yield report(r, done, n_steps, st_prod, acc_sum, frozen=True)

    acceptance = acc_sum / done if done else float("nan")
    if method == "mala" and done >= 20 and not stopped:
        if frozen_accept is not None and acceptance < frozen_accept:
            raise SamplerFrozen(
                f"mean acceptance {acceptance:.3f} over {done} production steps, far below the "
                f"target {target_accept:.2f}", r.t, st_prod, r.h)
        if frozen_step_ratio is not None and adapt and r.h < frozen_step_ratio * h0:
            raise SamplerFrozen(
                f"the adapted step collapsed to {r.h / h0:.2g} of the curvature step {h0:.3g}",
                r.t, st_prod, r.h)
        if acceptance < 0.05:
            warnings.warn(
                f"MALA production acceptance {acceptance:.3f} with step {r.h:.3g}: "
                "the chains barely move",
                RuntimeWarning, stacklevel=2)
    result = LangevinResult(
        x=r.x, energy=r.e,
        energy_trace=r.etrace[: r.n_rec].copy(), trace_steps=r.trace_steps[: r.n_rec].copy(),
        acceptance_trace=r.acc[: r.t].copy(), step_trace=r.steps[: r.t].copy(),
        step=r.h, initial_step=h0, acceptance=acceptance,
        n_grad=counts["grad"], n_energy=counts["energy"], n_nonfinite=counts["nonfinite"],
        samples=samples[:taken] if samples is not None else None,
        sample_steps=sample_steps[:taken],
        method=method, burn_in=burn_in, n_steps=n_steps, n_production=done,
        stopped=stopped, recovered=recovered, lambda_max=lam,
        observable_trace=None if r.otrace is None else r.otrace[: r.n_rec].copy(),
    )
    in_production = r.t > burn_in or burn_in == 0
    yield Progress(
        done if in_production else r.t,
        n_steps if in_production else burn_in,
        st_prod if in_production else st_burn,
        snapshot=r.x[0].astype(np.float32),
        info={"acceptance": acceptance, "step": r.h, "mean_energy": float(r.e.mean()),
              "n_grad": counts["grad"], "method": method, "recovered": recovered},
        done=True, stopped=stopped, result=result,
    )


def langevin(*args, callback=None, stop=None, **kwargs) -> LangevinResult:
    """Blocking form of :func:`iter_langevin`; returns the :class:`LangevinResult`."""
    return run(iter_langevin(*args, stop=stop, **kwargs), callback)
