"""Lattice phi^4 in the canonical form of this project (docs/fields.md, "φ⁴ canonical energy").

    E(phi) = -beta * sum_<xy> phi_x phi_y + sum_x [ phi_x^2 + lam * (phi_x^2 - 1)^2 ]

on an L x L periodic square lattice, <xy> running over the 2 L^2 nearest-neighbour bonds.  With
lam = 1 it equals (up to a constant) the WCRG papers' beta/2 phi^T(-Delta)phi + sum[phi^4 - (1+2beta)phi^2],
whose critical point is beta_c ~ 0.68.  (The look-alike beta/2 phi^T(-Delta)phi + sum (phi^2-1)^2 is a
*different* model, disordered at 0.68; the tests pin the formula above.)

Sampling combines, for a whole batch of chains at once,
  * checkerboard Metropolis sweeps (local moves, step size tuned to ~50 % acceptance in warm-up),
  * the Brower-Tamayo embedded-Ising cluster update: with phi_x = eps_x |phi_x|, same-sign neighbours
    are bonded with probability 1 - exp(-2 beta phi_x phi_y) and every cluster is flipped with
    probability 1/2 (Swendsen-Wang), clusters of all chains found by one call to
    ``scipy.sparse.csgraph.connected_components``.
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from explorer.core.fields.base import FieldSet, as_batch
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
#: default cap on the pilot, as a multiple of its initial length (three doublings).
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


# ------------------------------------------------------------------ Monte Carlo moves
class _Lattice:
    """Flat site indices of the two checkerboard sublattices and of their four neighbours."""

    def __init__(self, L: int):
        i, j = np.divmod(np.arange(L * L), L)
        self.L = L
        self.parts = []
        for parity in (0, 1):
            s = np.flatnonzero((i + j) % 2 == parity)
            si, sj = i[s], j[s]
            nbrs = np.stack(
                [
                    si * L + (sj + 1) % L,
                    si * L + (sj - 1) % L,
                    ((si + 1) % L) * L + sj,
                    ((si - 1) % L) * L + sj,
                ]
            )
            self.parts.append((s, nbrs))


def metropolis_sweep(
    phi: np.ndarray,
    beta: float,
    lam: float,
    step: float,
    rng: np.random.Generator,
    lattice: _Lattice | None = None,
) -> float:
    """One checkerboard Metropolis sweep of a batch (C, L, L), in place.  Returns acceptance.

    Sites of one colour only see neighbours of the other colour, so each half-sweep updates all
    of its sites at once with exact detailed balance.
    """
    C, L, _ = phi.shape
    lattice = _Lattice(L) if lattice is None else lattice
    flat = phi.reshape(C, L * L)
    accepted = 0
    for sites, nbrs in lattice.parts:
        old = flat[:, sites]
        h = flat[:, nbrs[0]] + flat[:, nbrs[1]] + flat[:, nbrs[2]] + flat[:, nbrs[3]]
        new = old + step * (2.0 * rng.random(old.shape) - 1.0)
        o2 = old * old
        n2 = new * new
        dE = -beta * (new - old) * h + (n2 - o2) + lam * ((n2 - 1.0) ** 2 - (o2 - 1.0) ** 2)
        # accept with probability min(1, exp(-dE)): -log(u) ~ Exp(1) > dE
        acc = rng.standard_exponential(old.shape) > dE
        flat[:, sites] = np.where(acc, new, old)
        accepted += int(acc.sum())
    return accepted / phi.size


class _ClusterGraph:
    """Bond targets of the periodic lattice for a batch of C chains: right and down neighbours."""

    def __init__(self, C: int, L: int):
        idx = np.arange(C * L * L, dtype=np.int32).reshape(C, L, L)
        self.n = C * L * L
        self.dst = np.stack(
            [np.roll(idx, -1, axis=-1).ravel(), np.roll(idx, -1, axis=-2).ravel()], axis=1
        )


def cluster_update(
    phi: np.ndarray,
    beta: float,
    rng: np.random.Generator,
    graph: _ClusterGraph | None = None,
) -> int:
    """Brower-Tamayo embedded-Ising Swendsen-Wang update of a batch (C, L, L), in place.

    Writing phi_x = eps_x |phi_x|, the energy is an Ising model in eps with couplings
    beta |phi_x| |phi_y|; same-sign neighbours are bonded with p = 1 - exp(-2 beta phi_x phi_y) and
    each cluster flips with probability 1/2.  Returns the number of clusters.
    """
    C, L, _ = phi.shape
    graph = _ClusterGraph(C, L) if graph is None else graph
    prod = np.stack(
        [(phi * np.roll(phi, -1, axis=-1)).ravel(), (phi * np.roll(phi, -1, axis=-2)).ravel()],
        axis=1,
    )
    # u < 1 - exp(-2 beta prod)  <=>  prod > Exp(1) / (2 beta); never for prod <= 0
    bond = 2.0 * beta * prod > rng.standard_exponential(prod.shape)
    # CSR built directly: rows are sites in order, each with its (at most two) bonded targets
    indptr = np.zeros(graph.n + 1, dtype=np.int32)
    np.cumsum(bond[:, 0].view(np.uint8) + bond[:, 1].view(np.uint8), out=indptr[1:])
    indices = graph.dst[bond]
    g = csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(graph.n, graph.n))
    ncomp, labels = connected_components(g, directed=True, connection="weak")
    flip = np.where(rng.random(ncomp) < 0.5, -1.0, 1.0)
    phi *= flip[labels].reshape(phi.shape)
    return int(ncomp)


# ------------------------------------------------------------------ the chain runner
@dataclass
class _Chains:
    phi: np.ndarray
    beta: float
    lam: float
    rng: np.random.Generator
    cluster: bool
    step: float = 1.0
    acc: float = 0.0
    n_clusters: int = 0

    def __post_init__(self):
        C, L, _ = self.phi.shape
        self.lattice = _Lattice(L)
        self.graph = _ClusterGraph(C, L) if self.cluster else None

    def iterate(self) -> None:
        self.acc = metropolis_sweep(self.phi, self.beta, self.lam, self.step, self.rng, self.lattice)
        if self.cluster:
            self.n_clusters = cluster_update(self.phi, self.beta, self.rng, self.graph)

    def adapt(self, target: float = 0.5) -> None:
        """Robbins-Monro style step-size update (warm-up only)."""
        self.step = float(np.clip(self.step * math.exp(1.5 * (self.acc - target)), 0.05, 5.0))

    def observables(self) -> tuple[np.ndarray, np.ndarray]:
        """(m^2, energy per site) for each chain."""
        L2 = self.phi.shape[-1] ** 2
        m = self.phi.mean(axis=(-2, -1))
        return m * m, energy(self.phi, self.beta, self.lam) / L2


def _init_chains(C: int, L: int, rng: np.random.Generator) -> np.ndarray:
    # hot start: |phi| near the potential minima, random signs
    return rng.choice([-1.0, 1.0], size=(C, L, L)) + 0.3 * rng.standard_normal((C, L, L))


def measure_tau(
    beta: float,
    size: int,
    lam: float = 1.0,
    cluster: bool = True,
    n_chains: int = 64,
    iterations: int = 2000,
    equilibrate: int = 200,
    seed: int | np.random.Generator = 0,
) -> dict:
    """Integrated autocorrelation times (in iterations) of m^2 and of the energy per site, with
    their means and standard errors (std * sqrt(tau / samples)).

    The chains are first equilibrated *with* cluster updates (whatever ``cluster`` is), so that a
    local-only measurement starts in equilibrium and measures the local dynamics alone.
    """
    rng = np.random.default_rng(seed)
    ch = _Chains(_init_chains(n_chains, size, rng), beta, lam, rng, cluster=True)
    for i in range(equilibrate):
        ch.iterate()
        if i < equilibrate // 2:
            ch.adapt()
    ch.cluster = cluster
    ch.graph = ch.graph if cluster else None
    m2 = np.empty((iterations, n_chains))
    en = np.empty((iterations, n_chains))
    for t in range(iterations):
        ch.iterate()
        m2[t], en[t] = ch.observables()
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
) -> Iterator[Progress]:
    """Generate phi^4 samples; yields Progress reports, the last one carrying a FieldSet.

    Schedule: ``warmup`` iterations adapting the Metropolis step; a pilot run that measures
    tau = max(tau_int(m^2), tau_int(E)) over all chains; further burn-in up to ``burn_factor * tau``
    iterations in total; then from each chain samples every ``ceil(thin_factor * tau)`` iterations.

    tau is estimated on the pilot after its first ``pilot // 2`` iterations, from the multi-chain
    autocorrelation (pooled mean), and trusted only when Sokal's window (c = 6) satisfies
    W <= T / 2 for both observables.  Otherwise the pilot doubles, up to ``max_pilot`` iterations
    (default 8 * ``pilot``).  If it still does not fit, burn-in and thinning use the lower bound
    T / 12, a report with info["warning"] is yielded and meta["sampler"] records
    ``tau_measured = equilibrated = False``.  A production tau_int more than twice the tau used is
    flagged the same way.  With ``require_equilibrium`` either case raises ValueError instead.
    """
    _check_params(size, n_samples, beta, lam)
    cap = MAX_PILOT_FACTOR * int(pilot) if max_pilot is None else int(max_pilot)
    if pilot < 4 or cap < pilot:
        raise ValueError(f"need 4 <= pilot <= max_pilot, got pilot={pilot}, max_pilot={cap}")
    rng = np.random.default_rng(seed)
    C = int(n_chains or min(n_samples, 256))
    per_chain = math.ceil(n_samples / C)
    t0 = time.perf_counter()
    ch = _Chains(_init_chains(C, size, rng), beta, lam, rng, cluster)
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
        ch.iterate()
        ch.adapt()
        if i % report_every == 0:
            yield report(i, warmup, "warm-up", acceptance=ch.acc, metropolis_step=ch.step)

    # 2. pilot run on all chains, doubled until Sokal's window fits (or the cap is reached)
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
        length = min(2 * length, cap)
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
        ch.iterate()
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
