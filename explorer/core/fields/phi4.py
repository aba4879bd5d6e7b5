"""Lattice phi^4 in the canonical form of this project (docs/fields.md, "φ⁴ canonical energy").

    E(phi) = -beta * sum_<xy> phi_x phi_y + sum_x [ phi_x^2 + lam * (phi_x^2 - 1)^2 ]

on an L x L periodic square lattice, <xy> running over the 2 L^2 nearest-neighbour bonds.  With
lam = 1 it equals (up to a constant) the WCRG papers' beta/2 phi^T(-Delta)phi + sum[phi^4 - (1+2beta)phi^2],
whose critical point is beta_c ~ 0.68.  (The look-alike beta/2 phi^T(-Delta)phi + sum (phi^2-1)^2 is a
*different* model, disordered at 0.68; the tests pin the formula above.)

Sampling combines, for a whole batch of chains at once,
  * checkerboard Metropolis sweeps (local moves, step size tuned to ~50 % acceptance in warm-up)
    on the four sublattices (p::2, q::2), whose neighbour sums are shifts of each other,
  * the Brower-Tamayo embedded-Ising cluster update: with phi_x = eps_x |phi_x|, same-sign neighbours
    are bonded with probability 1 - exp(-2 beta phi_x phi_y) and every cluster is flipped with
    probability 1/2 (Swendsen-Wang), the clusters of a group of chains labelled by one call to
    ``scipy.ndimage.label`` on an image of sites and bonds (periodic wraps joined afterwards).
The chains run in float32 (a relative rounding of ~1e-7 on each energy difference, far below any
statistical error; observables are summed in float64), in groups of ``GROUP_CHAINS`` with their own
random streams, one group per task of a small thread pool: the same seed gives the same samples
whatever the number of threads.
Cluster moves alone are not ergodic in |phi| and local moves alone suffer critical slowing down
(z ~ 2.17); together they decorrelate at beta_c in tau_int ~ 15-20 iterations for L = 16-64,
where local moves alone need more than 10^3 sweeps at L = 32.

An *iteration* below is one Metropolis sweep (every site visited once) plus, when enabled, one
cluster update.  Burn-in and thinning are chosen from the integrated autocorrelation times of m^2 and
of the energy, measured on a pilot run of all chains, and are reported with the samples.  The pilot
grows until Sokal's window fits in it; when it cannot within ``max_pilot`` iterations, the samples
are still written but flagged as not equilibrated (or refused with ``require_equilibrium``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from explorer.core.fields.base import FieldSet, as_batch
from explorer.core.fields.phi4_moves import Workspace, cluster_update, metropolis_sweep
from explorer.core.observables import (
    binder_cumulant,
    integrated_autocorrelation_time,
    jackknife,
    tau_estimate,
)
from explorer.core.progress import Progress, run, should_stop

BETA_C = 0.68  # canonical form, lam = 1 (docs/fields.md, "Phases and the critical coupling")

#: Sokal's window constant: W is the smallest lag with W >= SOKAL_C * tau_int(W).
SOKAL_C = 6.0
#: tau_int is trusted only when its window fits WINDOW_FIT times in the analysed run: W <= T / 2.
WINDOW_FIT = 2.0
#: production tau_int above this multiple of the tau used for burn-in and thinning is flagged.
TAU_GROWTH_LIMIT = 2.0
#: default cap on the pilot, as a multiple of its initial length.
MAX_PILOT_FACTOR = 8


# ------------------------------------------------------------------ energy and derivatives
def _neighbour_sum(phi: np.ndarray) -> np.ndarray:
    return (
        np.roll(phi, 1, axis=-1)
        + np.roll(phi, -1, axis=-1)
        + np.roll(phi, 1, axis=-2)
        + np.roll(phi, -1, axis=-2)
    )


def energy(phi: np.ndarray, beta: float, lam: float = 1.0) -> np.ndarray | float:
    """Canonical phi^4 energy of one field (L, L) -> float, or of a batch (N, L, L) -> (N,)."""
    x = np.asarray(phi, dtype=np.float64)
    bonds = x * (np.roll(x, -1, axis=-1) + np.roll(x, -1, axis=-2))
    x2 = x * x
    site = x2 + lam * (x2 - 1.0) ** 2
    e = -beta * bonds.sum(axis=(-2, -1)) + site.sum(axis=(-2, -1))
    return float(e) if x.ndim == 2 else e


def grad(phi: np.ndarray, beta: float, lam: float = 1.0) -> np.ndarray:
    """dE/dphi_x = -beta * sum_{y~x} phi_y + 2 phi_x + 4 lam phi_x (phi_x^2 - 1)."""
    x = np.asarray(phi, dtype=np.float64)
    return -beta * _neighbour_sum(x) + 2.0 * x + 4.0 * lam * x * (x * x - 1.0)


def hessian_diagonal(phi: np.ndarray, beta: float, lam: float = 1.0) -> np.ndarray:
    """On-site curvature 2 + 4 lam (3 phi^2 - 1); the off-diagonal part is -beta on each bond."""
    x = np.asarray(phi, dtype=np.float64)
    return 2.0 + 4.0 * lam * (3.0 * x * x - 1.0)


def hvp(phi: np.ndarray, v: np.ndarray, beta: float, lam: float = 1.0) -> np.ndarray:
    """Hessian-vector product (nabla^2 E(phi)) v, batched like ``phi``."""
    v = np.asarray(v, dtype=np.float64)
    return -beta * _neighbour_sum(v) + hessian_diagonal(phi, beta, lam) * v


# ------------------------------------------------------------------ the chain runner
#: chains per group: each group has its own random stream and is one task of the thread pool, so
#: a seed gives the same samples whatever the number of threads
GROUP_CHAINS = 32


def default_threads() -> int:
    """Threads for the chain groups: the cores this process may run on, at most
    ``OMP_NUM_THREADS`` when it is set (Dask's worker processes set it to 1: one thread each)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        n = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        n = min(n, int(env))
    return max(1, n)


class _Chains:
    """A batch of chains (C, L, L) in float32, split into groups of ``GROUP_CHAINS`` chains with
    their own random streams (spawned from ``rng``); an iteration of every group is one task on a
    pool of ``threads`` threads (numpy's arithmetic and random fills and ``ndimage.label`` release
    the GIL, so two cores run two groups at once).  Each thread reuses one
    :class:`~explorer.core.fields.phi4_moves.Workspace` for the arrays of the moves."""

    def __init__(self, phi: np.ndarray, beta: float, lam: float, rng: np.random.Generator,
                 cluster: bool, sweeps: int = 1, threads: int | None = None):
        self.phi = phi
        self.beta, self.lam, self.cluster = beta, lam, cluster
        self.sweeps = int(sweeps)
        self.step = 1.0
        self.acc = 0.0
        C = phi.shape[0]
        self.groups = [slice(c, min(c + GROUP_CHAINS, C)) for c in range(0, C, GROUP_CHAINS)]
        self.rngs = rng.spawn(len(self.groups))
        self._m2 = np.zeros(C)
        self._e = np.zeros(C)
        n = min(default_threads() if threads is None else max(1, int(threads)), len(self.groups))
        self._pool = ThreadPoolExecutor(n) if n > 1 else None
        self._local = threading.local()  # one Workspace per thread

    def _workspace(self) -> Workspace:
        work = getattr(self._local, "work", None)
        if work is None:
            work = self._local.work = Workspace()
        return work

    def _iterate_group(self, k: int, observe: bool = True) -> float:
        g, rng = self.groups[k], self.rngs[k]
        x = self.phi[g]
        work = self._workspace()
        acc = 0.0
        for _ in range(self.sweeps):
            acc += metropolis_sweep(x, self.beta, self.lam, self.step, rng, work)
        if self.cluster:
            cluster_update(x, self.beta, rng, work)
        if observe:
            self._m2[g], self._e[g] = _observables(x, self.beta, self.lam, work)
        return acc * x.shape[0] / self.sweeps

    def iterate(self, observe: bool = True) -> None:
        """One iteration of every chain: ``sweeps`` Metropolis sweeps, then (with ``cluster``)
        one cluster update; m^2 and the energy per site are recorded on the way (``observe``)."""
        ks = range(len(self.groups))
        obs = [observe] * len(self.groups)
        accs = (list(self._pool.map(self._iterate_group, ks, obs)) if self._pool is not None
                else [self._iterate_group(k, observe) for k in ks])
        self.acc = float(sum(accs)) / self.phi.shape[0]

    def adapt(self, target: float = 0.5) -> None:
        """Robbins-Monro style step-size update (warm-up only)."""
        self.step = float(np.clip(self.step * math.exp(1.5 * (self.acc - target)), 0.05, 5.0))

    def observables(self) -> tuple[np.ndarray, np.ndarray]:
        """(m^2, energy per site) for each chain after the last iteration."""
        return self._m2.copy(), self._e.copy()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _observables(x: np.ndarray, beta: float, lam: float,
                 work: Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(m^2, energy per site) of each chain (terms in the chains' dtype, sums in float64)."""
    work = Workspace() if work is None else work
    L2 = x.shape[-1] ** 2
    m = x.mean(axis=(-2, -1), dtype=np.float64)
    x2, e = work.array("obs_x2", x.shape, x.dtype), work.array("obs_e", x.shape, x.dtype)
    np.multiply(x, x, out=x2)
    np.subtract(x2, 1.0, out=e)
    e *= e
    e *= lam
    e += x2
    bonds = x2  # beta phi_x (right + lower neighbour of x), the products in this order
    bonds[..., :-1] = x[..., 1:]
    bonds[..., -1] = x[..., 0]
    bonds[:, :-1] += x[:, 1:]
    bonds[:, -1] += x[:, 0]
    beta_x = work.array("obs_beta_x", x.shape, x.dtype)
    np.multiply(x, beta, out=beta_x)
    bonds *= beta_x
    e -= bonds
    return m * m, e.sum(axis=(-2, -1), dtype=np.float64) / L2


def _init_chains(C: int, L: int, rng: np.random.Generator) -> np.ndarray:
    # hot start: |phi| near the potential minima, random signs; the chains run in float32
    phi = rng.choice([-1.0, 1.0], size=(C, L, L)) + 0.3 * rng.standard_normal((C, L, L))
    return phi.astype(np.float32)


def measure_tau(
    beta: float,
    size: int,
    lam: float = 1.0,
    cluster: bool = True,
    n_chains: int = 64,
    iterations: int = 2000,
    equilibrate: int = 200,
    seed: int | np.random.Generator = 0,
    sweeps: int = 1,
    threads: int | None = None,
) -> dict:
    """Integrated autocorrelation times (in iterations) of m^2 and of the energy per site, with
    their means and standard errors (std * sqrt(tau / samples)).

    The chains are first equilibrated *with* cluster updates (whatever ``cluster`` is), so that a
    local-only measurement starts in equilibrium and measures the local dynamics alone.
    ``sweeps`` Metropolis sweeps make one iteration (with one cluster update when enabled).
    """
    rng = np.random.default_rng(seed)
    ch = _Chains(_init_chains(n_chains, size, rng), beta, lam, rng, cluster=True, sweeps=sweeps,
                 threads=threads)
    for i in range(equilibrate):
        ch.iterate()
        if i < equilibrate // 2:
            ch.adapt()
    ch.cluster = cluster
    m2 = np.empty((iterations, n_chains))
    en = np.empty((iterations, n_chains))
    for t in range(iterations):
        ch.iterate()
        m2[t], en[t] = ch.observables()
    ch.close()
    tau_m2, w_m2 = integrated_autocorrelation_time(m2)
    tau_e, w_e = integrated_autocorrelation_time(en)
    n_eff_m2 = m2.size / tau_m2
    n_eff_e = en.size / tau_e
    return {
        "mean_m2": float(m2.mean()),
        "err_m2": float(m2.std() / math.sqrt(n_eff_m2)),
        "mean_energy_per_site": float(en.mean()),
        "err_energy_per_site": float(en.std() / math.sqrt(n_eff_e)),
        "tau_m2": tau_m2,
        "tau_energy": tau_e,
        "window_m2": w_m2,
        "window_energy": w_e,
        "iterations": iterations,
        "n_chains": n_chains,
        "cluster": cluster,
        "metropolis_step": ch.step,
    }


def iter_phi4(
    size: int = 64,
    n_samples: int = 256,
    beta: float = BETA_C,
    lam: float = 1.0,
    seed: int = 0,
    n_chains: int | None = None,
    cluster: bool = True,
    warmup: int = 50,
    pilot: int = 200,
    burn_factor: float = 20.0,
    thin_factor: float = 2.0,
    report_every: int = 10,
    stop: threading.Event | None = None,
    max_pilot: int | None = None,
    require_equilibrium: bool = False,
    threads: int | None = None,
) -> Iterator[Progress]:
    """Generate phi^4 samples; yields Progress reports, the last one carrying a FieldSet.

    Schedule: ``warmup`` iterations adapting the Metropolis step; a pilot run that measures
    tau = max(tau_int(m^2), tau_int(E)) over all chains; further burn-in up to ``burn_factor * tau``
    iterations in total; then from each chain samples every ``ceil(thin_factor * tau)`` iterations.

    tau is estimated on the pilot after its first ``pilot // 2`` iterations, from the multi-chain
    autocorrelation (pooled mean), and trusted only when Sokal's window (c = 6) satisfies
    W <= T / 2 for both observables.  Otherwise the pilot grows by a quarter of ``pilot`` at a
    time (so it ends within pilot / 4 of the length the window needs), up to ``max_pilot``
    iterations (default 8 * ``pilot``).  If it still does not fit, burn-in and thinning use the lower bound
    T / 12, a report with info["warning"] is yielded and meta["sampler"] records
    ``tau_measured = equilibrated = False``.  A production tau_int more than twice the tau used is
    flagged the same way.  With ``require_equilibrium`` either case raises ValueError instead.
    ``threads``: the chain groups run on this many threads (None: :func:`default_threads`); the
    samples do not depend on it.
    """
    _check_params(size, n_samples, beta, lam)
    cap = MAX_PILOT_FACTOR * int(pilot) if max_pilot is None else int(max_pilot)
    if pilot < 4 or cap < pilot:
        raise ValueError(f"need 4 <= pilot <= max_pilot, got pilot={pilot}, max_pilot={cap}")
    rng = np.random.default_rng(seed)
    C = int(n_chains or min(n_samples, 256))
    per_chain = math.ceil(n_samples / C)
    t0 = time.perf_counter()
    ch = _Chains(_init_chains(C, size, rng), beta, lam, rng, cluster, threads=threads)
    warnings: list[str] = []

    def report(step, total, stage, **info):
        return Progress(step, total, stage, snapshot=ch.phi[0].astype(np.float32), info=info)

    def estimate(series):
        return tau_estimate(series, SOKAL_C, WINDOW_FIT, pooled_mean=True)

    # 1. warm-up with step adaptation
    for i in range(warmup):
        if should_stop(stop):
            yield Progress(i, warmup, "warm-up", done=True, stopped=True)
            return
        ch.iterate(observe=False)
        ch.adapt()
        if i % report_every == 0:
            yield report(i, warmup, "warm-up", acceptance=ch.acc, metropolis_step=ch.step)

    # 2. pilot run on all chains, grown until Sokal's window fits (or the cap is reached)
    skip = pilot // 2  # the start of the pilot may still carry the warm-up transient
    m2 = np.empty((cap, C))
    en = np.empty((cap, C))
    length, t = int(pilot), 0
    while True:
        while t < length:
            if should_stop(stop):
                yield Progress(t, length, "pilot", done=True, stopped=True)
                return
            ch.iterate()
            m2[t], en[t] = ch.observables()
            if t % report_every == 0:
                yield report(t, length, "pilot", acceptance=ch.acc, m2=float(m2[t].mean()))
            t += 1
        est_m2, est_e = estimate(m2[skip:t]), estimate(en[skip:t])
        if (est_m2.measured and est_e.measured) or length >= cap:
            break
        length = min(length + max(1, int(pilot) // 4), cap)
        yield report(t, length, "pilot", pilot_extended_to=length,
                     tau_min=max(est_m2.lower_bound, est_e.lower_bound))
    del m2, en
    tau_measured = est_m2.measured and est_e.measured
    tau = max(est_m2.lower_bound, est_e.lower_bound, 1.0)
    if not tau_measured:
        msg = (f"tau_int could not be measured within {t} pilot iterations (Sokal's window does "
               f"not fit; tau_int > ~{tau:.0f}): the data may not be equilibrated")
        if require_equilibrium:
            raise ValueError(f"phi4 generation refused: {msg}")
        warnings.append(msg)
        yield report(t, length, "pilot", warning=msg, tau_min=tau)
    burn_in = max(warmup + t, int(math.ceil(burn_factor * tau)))
    thin = max(1, int(math.ceil(thin_factor * tau)))

    # 3. remaining burn-in
    extra = burn_in - warmup - t
    for i in range(extra):
        if should_stop(stop):
            yield Progress(i, extra, "burn-in", done=True, stopped=True)
            return
        ch.iterate(observe=False)
        if i % report_every == 0:
            yield report(i, extra, "burn-in", acceptance=ch.acc, tau=tau)

    # 4. production
    total = per_chain * thin
    samples = np.empty((per_chain, C, size, size), dtype=np.float32)
    prod_m2 = np.empty((total, C))
    prod_e = np.empty((total, C))
    taken = 0
    acc_sum = 0.0
    for t_prod in range(total):
        if should_stop(stop):
            break
        ch.iterate()
        acc_sum += ch.acc
        prod_m2[t_prod], prod_e[t_prod] = ch.observables()
        if (t_prod + 1) % thin == 0:
            samples[taken] = ch.phi
            taken += 1
        if t_prod % report_every == 0:
            yield report(t_prod, total, "sampling", acceptance=ch.acc, tau=tau, taken=taken * C)
    stopped = taken < per_chain
    if taken == 0:
        yield Progress(0, total, "sampling", done=True, stopped=True)
        return
    done_iters = taken * thin
    fields = samples[:taken].reshape(taken * C, size, size)[:n_samples]
    # sample k of every chain first: interleave so a prefix mixes chains
    sampler = {
        "iteration": "one checkerboard Metropolis sweep"
        + (" + one Brower-Tamayo Swendsen-Wang cluster update" if cluster else ""),
        "metropolis_step": ch.step,
        "metropolis_acceptance": acc_sum / max(done_iters, 1),
        "tau_estimator": f"Sokal window (c = {SOKAL_C:g}) on the multi-chain autocorrelation; "
        f"trusted when the window W <= T / {WINDOW_FIT:g}",
        "pilot": t,
        "pilot_analysed": t - skip,
        "tau_int_m2_pilot": est_m2.tau,
        "tau_int_energy_pilot": est_e.tau,
        "window_m2_pilot": est_m2.window,
        "window_energy_pilot": est_e.window,
        "tau_measured": tau_measured,
        "tau_used": tau,
        "burn_in": burn_in,
        "thin": thin,
        "samples_per_chain": taken,
    }
    equilibrated = tau_measured
    if done_iters >= 50:
        pe_m2, pe_e = estimate(prod_m2[:done_iters]), estimate(prod_e[:done_iters])
        prod_measured = pe_m2.measured and pe_e.measured
        tau_prod = max(pe_m2.lower_bound, pe_e.lower_bound)  # a lower bound if not measured
        sampler.update(tau_int_m2=pe_m2.tau, tau_int_energy=pe_e.tau,
                       tau_production_measured=prod_measured)
        if tau_prod > TAU_GROWTH_LIMIT * tau:
            msg = (f"tau_int on the production run ({'' if prod_measured else '> '}{tau_prod:.1f})"
                   f" is {tau_prod / tau:.1f} times the {tau:.1f} used for burn-in and thinning:"
                   " the data may not be equilibrated")
            if require_equilibrium:
                raise ValueError(f"phi4 generation refused: {msg}")
            equilibrated = False
            warnings.append(msg)
            yield report(total, total, "sampling", warning=msg, tau=tau)
    sampler.update(equilibrated=equilibrated, warnings=warnings,
                   seconds=time.perf_counter() - t0)
    meta = {
        "generator": "phi4",
        "params": {"size": size, "beta": beta, "lam": lam, "n_chains": C, "cluster": cluster},
        "seed": seed,
        "energy": "E = -beta sum_<xy> phi_x phi_y + sum_x [phi_x^2 + lam (phi_x^2 - 1)^2]",
        "sampler": sampler,
    }
    meta["observables"] = phi4_observables(fields, beta, lam)
    yield Progress(total, total, "done", snapshot=fields[0], done=True, stopped=stopped,
                   result=FieldSet(fields, meta))


def generate_phi4(*args, callback=None, stop=None, **kwargs) -> FieldSet | None:
    """Blocking form of :func:`iter_phi4`; returns the FieldSet (None if stopped before any sample)."""
    return run(iter_phi4(*args, stop=stop, **kwargs), callback)


def phi4_observables(fields: np.ndarray, beta: float | None = None, lam: float = 1.0) -> dict:
    """<|m|>, <m^2>, Binder U (with blocked-jackknife errors), chi = L^2 <m^2>, energy per site."""
    x = as_batch(fields)
    L = x.shape[-1]
    m = x.mean(axis=(-2, -1))
    U, dU = jackknife(m, binder_cumulant)
    out = {
        "abs_m": float(np.abs(m).mean()),
        "m2": float(np.mean(m * m)),
        "binder": U,
        "binder_err": dU,
        "chi": float(L * L * np.mean(m * m)),
        "n": int(len(m)),
    }
    if beta is not None:
        out["energy_per_site"] = float(np.mean(energy(x, beta, lam)) / (L * L))
    return out


def _check_params(size: int, n_samples: int, beta: float, lam: float) -> None:
    if not (isinstance(size, (int, np.integer)) and 8 <= size <= 256 and size & (size - 1) == 0):
        raise ValueError(f"phi4 size must be a power of two between 8 and 256, got {size}")
    if n_samples < 1:
        raise ValueError(f"number of samples must be at least 1, got {n_samples}")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite non-negative number, got {beta}")
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"lambda must be a finite positive number, got {lam}")
