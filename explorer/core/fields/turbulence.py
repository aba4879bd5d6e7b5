"""Forced 2D turbulence data: vorticity snapshots of one spun-up trajectory of the solver
(:mod:`explorer.core.fields.turbulence_solver`, re-exported here) with the energy budget, and the
observables of vorticity batches (energy spectrum and its slope, kurtosis, increment flatness).
The science: docs/fields.md, "2D turbulence" ("Measured statistics"); docs/diagnostics.md,
"Power spectra" and "Kurtosis and increment flatness".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from explorer.core.budget import check_memory
from explorer.core.fields.base import FieldSet, as_batch, check_number
from explorer.core.fields.turbulence_solver import (  # noqa: F401  the solver, re-exported
    HYPERVISCOUS_RATE, MAX_ORDER, MAX_SIZE, MIN_SIZE, SOLVER_BYTES_PER_PIXEL, TurbulenceDiverged,
    TurbulenceSolver, _is_int, check_solver_params, default_nu)
from explorer.core.observables import increment_flatness, kurtosis, skewness, spectrum_slope
from explorer.core.progress import Progress, run, should_stop
from explorer.core.spectra import shell_average, shell_counts

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


def turbulence_memory_bytes(size: int, n_snapshots: int) -> int:
    """Peak memory of :func:`iter_turbulence`: the solver state plus the snapshots, kept as
    float32 and stacked once at the end (two copies)."""
    pixels = int(size) * int(size)
    return (SOLVER_BYTES_PER_PIXEL + 8 * int(n_snapshots)) * pixels


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
    check_number("spinup", spinup, lambda v: v >= 0, ">= 0")
    check_number("interval", interval, lambda v: v > 0, "> 0")
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
    corner modes beyond k = L/2.  The shell sum is :func:`explorer.core.spectra.shell_average`
    times the shell population (:func:`explorer.core.spectra.shell_counts`).
    """
    x = as_batch(fields)
    L = x.shape[-1]
    p2 = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
    n = np.fft.fftfreq(L, 1.0 / L)
    k2 = n[:, None] ** 2 + n[None, :] ** 2
    dens = np.where(k2 > 0, p2 / (2.0 * np.where(k2 > 0, k2, 1.0)), 0.0) / float(L) ** 4
    shells = np.arange(1, L // 2 + 1)
    return shells.astype(np.float64), shell_average(dens) * shell_counts(L)


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
    x = as_batch(x)
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
