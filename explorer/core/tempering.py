"""Replica exchange (parallel tempering) MALA with exact global sign flips, for the few variables
of a WCRG coarse factor (16 at 4 x 4). See docs/sampling.md, "Separated modes: sign flips and
replica exchange".

Local Langevin moves cannot cross between separated modes (the + and - magnetised coarse fields
of ordered phi^4, or a uniform field and one split into domains): the waiting time grows like
exp(barrier). Two exact remedies, both cheap on a small factor:

* **Sign flip.** For an even energy U(-x) = U(x), the move x -> -x leaves exp(-U) invariant and is
  always accepted (its Metropolis ratio is 1). It is proposed with probability 1/2 per chain and
  step, so the +/- weights are exactly 1/2 whatever the chain's history. Evenness is checked on
  the initial states (energy and gradient); a factor that is not even gets no flips.
* **Replica exchange.** K copies of every chain at temperatures 1 = T_0 < ... < T_{K-1} each run
  MALA on U / T_k (own step, adapted during the burn-in then frozen); after every step, adjacent
  temperatures (even pairs, then odd pairs, alternately) exchange their states with probability
  min(1, exp[(1/T_k - 1/T_{k+1}) (U_k - U_{k+1})]). The hot copies cross barriers and hand their
  states down; the T = 1 copies are exact samples of exp(-U).

The runaway, divergence and frozen checks of :mod:`explorer.core.sampling` apply to the T = 1
chains (a hot chain is meant to wander)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.progress import Progress, run, should_stop
from explorer.core.sampling import (ADAPT_FRACTION, TARGET_ACCEPT, EnergyFn, GradFn,
                                    SamplerDiverged, SamplerFrozen, SamplerRunaway,
                                    initial_step, largest_hessian_eigenvalue, x_limit_sigmas)

__all__ = ["MIN_SIGN_CROSSING", "RARE_SIGN_CROSSING", "crossing_depth", "sign_crossing", "coarse_magnetisation", "DEFAULT_TEMPERATURES", "geometric_ladder", "is_even", "TemperedResult",
           "iter_tempered", "tempered", "TemperedChains"]

#: the ladder of :func:`geometric_ladder` when replica exchange is asked for: 8 temperatures from
#: 1 to 64 (ratio 1.81). Measured on the 64² coarse 4 x 4 factors: adjacent swap rates 0.1-0.5
#: (beta 0.68), 0.1-0.25 (beta 0.76)
DEFAULT_TEMPERATURES = (8, 64.0)
_RM_EXPONENT, _RM_OFFSET = 0.6, 10.0


def geometric_ladder(n: int = DEFAULT_TEMPERATURES[0], t_max: float = DEFAULT_TEMPERATURES[1]
                     ) -> np.ndarray:
    """n temperatures from 1 to ``t_max``, geometrically spaced (n = 1: no tempering)."""
    n = int(n)
    if n < 1 or not (math.isfinite(t_max) and t_max >= 1):
        raise ValueError(f"need n >= 1 temperatures and t_max >= 1, got {n}, {t_max}")
    return np.geomspace(1.0, t_max, n) if n > 1 else np.ones(1)


def is_even(energy: EnergyFn, grad: GradFn, x: np.ndarray, rtol: float = 1e-9) -> bool:
    """U(-x) == U(x) and ∇U(-x) == -∇U(x) on the states ``x`` (to ``rtol``): the sign flip is
    then an exact move of weight one."""
    x = np.asarray(x, np.float64)
    e1, e2 = np.asarray(energy(x), np.float64), np.asarray(energy(-x), np.float64)
    g1, g2 = np.asarray(grad(x), np.float64), np.asarray(grad(-x), np.float64)
    scale_e = max(float(np.abs(e1).max()), 1.0)
    scale_g = max(float(np.abs(g1).max()), 1e-300)
    return bool(np.all(np.abs(e1 - e2) <= rtol * scale_e)
                and np.all(np.abs(g1 + g2) <= rtol * max(scale_g, 1.0)))


@dataclass
class TemperedResult:
    """Outcome of :func:`iter_tempered`; the fields the WCRG sampler reads have the names of
    :class:`~explorer.core.sampling.LangevinResult` (x, energy, acceptance, step, initial_step,
    n_grad, recovered, stopped)."""

    x: np.ndarray                 # (C, ...) the T = 1 chains
    energy: np.ndarray            # (C,)
    temperatures: list[float]
    acceptance: float             # MALA acceptance of the T = 1 chains over production
    acceptance_per_temperature: list[float]
    swap_rate: list[float]        # per adjacent pair, over production
    flip: bool                    # sign flips used (the energy is even)
    step: float                   # frozen step of the T = 1 chains
    steps: list[float]            # frozen step per temperature
    initial_step: float
    n_grad: int                   # batched gradient calls (one batch holds every replica)
    n_steps: int
    burn_in: int
    n_production: int
    magnetisation_trace: np.ndarray | None = None  # (R, C) mean of the T = 1 chains per step
    stopped: bool = False
    recovered: bool = False


class TemperedChains:
    """Persistent replicas (K, C, ...) under a changing target, e.g. the chains of a
    maximum-likelihood fit: :meth:`sweep` runs MALA steps + exchanges + flips on U / T_k."""

    def __init__(self, x0: np.ndarray, temperatures, seed=0, flip: bool = False):
        self.T = np.asarray(temperatures, np.float64)
        self.K = len(self.T)
        x0 = np.asarray(x0, np.float64)
        self.C = len(x0)
        self.shape = x0.shape[1:]
        self.x = np.broadcast_to(x0, (self.K,) + x0.shape).copy()
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.flip = bool(flip)
        self.h: np.ndarray | None = None
        self.parity = 0
        self.n_grad = 0

    def _flat(self, a):
        return a.reshape((self.K * self.C,) + self.shape)

    def evaluate(self, energy, grad):
        xf = self._flat(self.x)
        e = np.asarray(energy(xf), np.float64).reshape(self.K, self.C)
        g = np.asarray(grad(xf), np.float64).reshape(self.x.shape)
        self.n_grad += 1
        return e, g

    def _bshape(self, a):
        return a.reshape((self.K,) + (1,) * (self.x.ndim - 1))

    def mala(self, energy, grad, e, g):
        """One MALA step of every replica on U / T_k with the steps ``self.h`` (K,)."""
        h, T = self._bshape(self.h), self._bshape(self.T)
        xi = self.rng.standard_normal(self.x.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            xp = self.x - h * g / T + np.sqrt(2.0 * h) * xi
            xpf = self._flat(xp)
            ep = np.asarray(energy(xpf), np.float64).reshape(self.K, self.C)
            gp = np.asarray(grad(xpf), np.float64).reshape(self.x.shape)
            self.n_grad += 1
            axes = tuple(range(2, self.x.ndim))
            finite = (np.isfinite(ep) & np.isfinite(xp).all(axis=axes)
                      & np.isfinite(gp).all(axis=axes))
            back = self.x - xp + h * gp / T
            log_a = ((e - ep) / self.T[:, None] + 0.5 * (xi * xi).sum(axis=axes)
                     - (back * back).sum(axis=axes) / (4.0 * h.reshape(self.K, 1)))
            log_a = np.where(finite & ~np.isnan(log_a), log_a, -np.inf)
            prob = np.exp(np.minimum(log_a, 0.0))
        acc = finite & (self.rng.standard_exponential(log_a.shape) > -log_a)
        m = acc.reshape(acc.shape + (1,) * len(self.shape))
        self.x = np.where(m, xp, self.x)
        return np.where(acc, ep, e), np.where(m, gp, g), prob, finite

    def exchange(self, e, g):
        """Swap adjacent temperatures (even pairs, then odd pairs on the next call)."""
        tried = np.zeros(max(self.K - 1, 0))
        accepted = np.zeros(max(self.K - 1, 0))
        for k in range(self.parity, self.K - 1, 2):
            d = (1.0 / self.T[k] - 1.0 / self.T[k + 1]) * (e[k] - e[k + 1])
            ok = self.rng.standard_exponential(self.C) > -np.minimum(d, 0.0)
            ok &= np.isfinite(d)
            for a in (self.x, g):
                tmp = a[k, ok].copy()
                a[k, ok] = a[k + 1, ok]
                a[k + 1, ok] = tmp
            tmp = e[k, ok].copy()
            e[k, ok] = e[k + 1, ok]
            e[k + 1, ok] = tmp
            tried[k] += self.C
            accepted[k] += ok.sum()
        self.parity = 1 - self.parity
        return tried, accepted

    def flip_signs(self, g):
        """x -> -x with probability 1/2 per replica (exact for an even energy: ratio 1)."""
        if not self.flip:
            return
        f = self.rng.random((self.K, self.C)) < 0.5
        s = np.where(f, -1.0, 1.0).reshape(f.shape + (1,) * len(self.shape))
        self.x *= s
        g *= s

    def init_steps(self, grad, g, seed=None):
        lam, calls = largest_hessian_eigenvalue(grad, self._flat(self.x), self._flat(g),
                                                seed=self.rng if seed is None else seed)
        self.n_grad += calls
        h0 = initial_step(lam, int(np.prod(self.shape)))
        self.h = h0 * self.T
        return h0

    def sweep(self, energy, grad, n: int):
        """``n`` steps (MALA + exchange + flip) with fixed steps; returns the T = 1 states after
        each step stacked (n, C, ...) and the mean acceptance per temperature."""
        e, g = self.evaluate(energy, grad)
        if self.h is None:
            self.init_steps(grad, g)
        out = np.empty((n, self.C) + self.shape)
        acc = np.zeros(self.K)
        for i in range(n):
            e, g, prob, _ = self.mala(energy, grad, e, g)
            acc += prob.mean(axis=1) / n
            self.exchange(e, g)
            self.flip_signs(g)
            out[i] = self.x[0]
        return out, acc


def iter_tempered(energy: EnergyFn, grad: GradFn, x0: np.ndarray, n_steps: int, burn_in: int = 0,
                  temperatures=None, flip: bool | None = None, seed=0,
                  report_every: int = 10, stop: threading.Event | None = None, label: str = "",
                  x_scale: float | None = None, target_accept: float = TARGET_ACCEPT,
                  frozen_accept: float = 0.1) -> Iterator[Progress]:
    """Replica-exchange MALA with sign flips; yields Progress reports like
    :func:`~explorer.core.sampling.iter_langevin`, the last one carrying a
    :class:`TemperedResult` (the T = 1 chains).

    ``temperatures``: the ladder (e.g. :func:`geometric_ladder`); None or a single temperature 1:
    plain MALA (+ flips). ``flip``: None = use sign flips when the energy is even on ``x0``
    (:func:`is_even`), True = require evenness (ValueError otherwise), False = never. Steps: the
    curvature estimate h0 times T_k, adapted per temperature towards ``target_accept`` during
    the first 80 % of the burn-in, then frozen (the production kernel is fixed). Raises
    :class:`~explorer.core.sampling.SamplerRunaway` when a T = 1 chain's RMS exceeds
    x_limit_sigmas(d) × ``x_scale``, SamplerDiverged on non-finite T = 1 states, SamplerFrozen when
    the T = 1 production acceptance falls below ``frozen_accept``."""
    x0 = np.array(x0, dtype=np.float64)
    if x0.ndim < 2 or not np.all(np.isfinite(x0)):
        raise ValueError("x0 must be a finite batch (C, *var_shape)")
    if int(n_steps) < 0 or int(burn_in) < 0 or n_steps + burn_in < 1:
        raise ValueError("need n_steps, burn_in >= 0 and n_steps + burn_in >= 1")
    T = np.ones(1) if temperatures is None else np.asarray(temperatures, np.float64)
    if T.ndim != 1 or len(T) < 1 or T[0] != 1.0 or np.any(np.diff(T) <= 0):
        raise ValueError(f"temperatures must increase from 1, got {T}")
    even = is_even(energy, grad, x0)
    if flip and not even:
        raise ValueError("sign flips need an even energy U(-x) = U(x); this one is not")
    use_flip = even if flip is None else bool(flip)
    prefix = f"{label}: " if label else ""
    chains = TemperedChains(x0, T, seed=seed, flip=use_flip)
    e, g = chains.evaluate(energy, grad)
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(g))):
        raise SamplerDiverged("energy or gradient not finite at the initial state", 0,
                              prefix + "burn-in")
    h0 = chains.init_steps(grad, g)
    d = int(np.prod(x0.shape[1:]))
    x_limit = None if x_scale is None else x_limit_sigmas(d) * float(x_scale)
    n_adapt = int(ADAPT_FRACTION * burn_in)
    log_h = np.log(chains.h)
    window: list[np.ndarray] = []
    total = burn_in + n_steps
    acc_prod = np.zeros(len(T))
    swaps_tried = np.zeros(max(len(T) - 1, 0))
    swaps_acc = np.zeros(max(len(T) - 1, 0))
    mags = np.empty((n_steps, len(x0)))
    done = 0
    stopped = False
    for t in range(total):
        if should_stop(stop):
            stopped = True
            break
        stage = prefix + ("burn-in" if t < burn_in else "sampling")
        e, g, prob, finite = chains.mala(energy, grad, e, g)
        tried, acc = chains.exchange(e, g)
        chains.flip_signs(g)
        x1 = chains.x[0]
        if not np.all(np.isfinite(x1)) or not np.all(np.isfinite(e[0])):
            raise SamplerDiverged("a T = 1 chain is not finite", t + 1, stage, float(chains.h[0]))
        if x_limit is not None:
            rms = np.sqrt((x1 * x1).reshape(len(x1), -1).mean(axis=1))
            if rms.max() > x_limit:
                raise SamplerRunaway(
                    f"|x| ran away: RMS {rms.max():.3g} in chain {int(rms.argmax())} > "
                    f"{x_limit:.3g} = {x_limit / x_scale:.3g} x the data's std {x_scale:.3g} at "
                    "this scale", t + 1, stage, float(chains.h[0]))
        if t < n_adapt:
            log_h += (t + _RM_OFFSET) ** (-_RM_EXPONENT) * (prob.mean(axis=1) - target_accept)
            log_h = np.clip(log_h, -700.0, 700.0)
            if t >= n_adapt // 2:
                window.append(log_h.copy())
            chains.h = np.exp(log_h)
            if t == n_adapt - 1 and window:
                chains.h = np.exp(np.mean(window, axis=0))
        if t >= burn_in:
            acc_prod += prob.mean(axis=1)
            swaps_tried += tried
            swaps_acc += acc
            mags[done] = x1.reshape(len(x1), -1).mean(axis=1)
            done += 1
        if (t + 1) % report_every == 0 or t + 1 == total:
            i, n = (t + 1, burn_in) if t < burn_in else (done, n_steps)
            yield Progress(i, n, stage, snapshot=x1[0].astype(np.float32),
                           info={"acceptance": float(prob[0].mean()), "step": float(chains.h[0]),
                                 "mean_energy": float(e[0].mean()), "n_grad": chains.n_grad,
                                 "method": "tempered-mala", "temperatures": len(T),
                                 "flip": use_flip})
    acc_t = acc_prod / max(done, 1)
    if not stopped and done >= 20 and acc_t[0] < frozen_accept:
        raise SamplerFrozen(f"mean acceptance {acc_t[0]:.3f} of the T = 1 chains over {done} "
                            "production steps", total, prefix + "sampling", float(chains.h[0]))
    result = TemperedResult(
        x=chains.x[0].copy(), energy=e[0].copy(), temperatures=T.tolist(),
        acceptance=float(acc_t[0]) if done else float("nan"),
        acceptance_per_temperature=acc_t.tolist(),
        swap_rate=(swaps_acc / np.maximum(swaps_tried, 1)).tolist(), flip=use_flip,
        step=float(chains.h[0]), steps=chains.h.tolist(), initial_step=float(h0),
        n_grad=chains.n_grad, n_steps=n_steps, burn_in=burn_in, n_production=done,
        magnetisation_trace=mags[:done], stopped=stopped)
    yield Progress(done, n_steps, prefix + "sampling", snapshot=result.x[0].astype(np.float32),
                   info={"acceptance": result.acceptance, "step": result.step,
                         "swap_rate": result.swap_rate, "flip": use_flip},
                   done=True, stopped=stopped, result=result)


def tempered(*args, callback=None, stop=None, **kwargs) -> TemperedResult:
    """Blocking form of :func:`iter_tempered`."""
    return run(iter_tempered(*args, stop=stop, **kwargs), callback)


# ------------------------------------------------------------------ where the data cross zero
#: below this share of sign crossings a conditional's polynomial potential is held at 0
#: (:meth:`explorer.core.model.WCRGModel.iter_fit`). Measured on 64² phi4 (J = 4): the score-matched double well ran
#: away at crossings 0.0002-0.0016 (beta 0.76, j = 3, 4) and sampled within 2 % at 0.011 (j = 2)
MIN_SIGN_CROSSING = 0.01


def coarse_magnetisation(low: np.ndarray) -> dict:
    """Statistics of the coarse fields x_J for the coarse sampler: the RMS and quantiles of the
    per-field mean (the magnetised start), the within-field standard deviation and the share of
    sites whose sign differs from their field's mean (``coarse_sign_crossing``)."""
    m = low.mean(axis=(-2, -1))
    return {"coarse_m_rms": float(np.sqrt(np.mean(m * m))),
            "coarse_sign_crossing": float(np.mean(np.sign(low) != np.sign(m)[:, None, None])),
            "coarse_abs_m_quantiles": np.quantile(np.abs(m), np.linspace(0, 1, 33)).tolist(),
            "coarse_within_std": float(np.sqrt(np.mean((low - m[:, None, None]) ** 2)))}


#: coarse fields whose sites cross their field's sign less often than this (but at all) are in
#: the "rare crossing" band [RARE_SIGN_CROSSING, MIN_SIGN_CROSSING) avoided by
#: :func:`crossing_depth`
RARE_SIGN_CROSSING = 1e-3


def crossing_depth(fields: np.ndarray, jmax: int, wavelet: str = wv.DEFAULT_WAVELET) -> dict:
    """The deepest depth J <= ``jmax`` whose coarse fields x_J are not in the rare-crossing band:
    the share of coarse sites whose sign differs from their field's mean is either at least
    ``MIN_SIGN_CROSSING`` (the data show both signs: the coarse factor's barrier is fitted and
    replica exchange samples it) or below ``RARE_SIGN_CROSSING`` (one basin per field: exact sign
    flips are the only crossing needed). In between, a few coarse sites tunnel: neither sampler
    weights them right and score matching does not see their weight (docs/models.md, "Across the
    phase diagram": at β = 0.70, 64², the coarse 4 x 4 fields cross at 0.0022 and depth 4 misses
    ⟨|m|⟩ by 10 %; at depth 3 (0.013) every bound holds). The deepest when every depth is in the
    band. Returns the depth and the crossings."""
    x = np.asarray(fields, np.float64)
    lows = wv.low_passes(x, jmax, wavelet)
    crossings = {J: coarse_magnetisation(lows[J])["coarse_sign_crossing"]
                 for J in range(1, jmax + 1)}
    for J in range(jmax, 0, -1):
        c = crossings[J]
        if c >= MIN_SIGN_CROSSING or c < RARE_SIGN_CROSSING:
            return {"depth": J, "crossings": crossings}
    return {"depth": jmax, "crossings": crossings}


def sign_crossing(fine: np.ndarray, coarse: np.ndarray, wavelet: str = wv.DEFAULT_WAVELET) -> float:
    """Share of the sites of the finer fields ``fine`` (x_{j-1}) whose sign differs from that of
    their condition ``coarse`` (x_j) brought to the finer grid without details: how often the
    data cross zero given the coarser field, i.e. visit the barrier of a double well there."""
    up = wv.synthesis(coarse, np.zeros((len(coarse), 3) + coarse.shape[-2:]), wavelet)
    return float(np.mean(np.sign(fine) != np.sign(up)))
