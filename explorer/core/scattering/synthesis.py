"""Microcanonical synthesis from scattering spectra: from white noise, L-BFGS on
ℓ(x) = Σ_groups Σ_k |Φ_k(x) - Φ_k(data)|² / scale_k² with a hand-derived gradient, Φ = (mean, S1,
S2, S3, S4 over all orientations, the power spectrum on integer shells covering the whole DFT
plane). The science: docs/diagnostics.md, "Microcanonical synthesis".

Scales: S1 by √S2_data, S2 by S2_data, S3/S4 by √(S2_data S2_data), shells by P_data (shells with
power above 1e-12 of the largest), the mean by the data's standard deviation. Modes off the data's
spectral support are projected out of the syntheses, and L-BFGS works on z with x = C z, C(k) =
√(P_data(|k|) / mean P_data) (the mean over |k| <= M/2). ``model="gaussian"`` returns
phase-randomised copies of the data (the power-spectrum-only maximum-entropy reference).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.fft as sfft

from explorer.core.fields.base import FieldSet, as_batch
from explorer.core.progress import Progress, run, should_stop
from explorer.core.scattering.filters import filter_bank
from explorer.core.scattering.statistics import default_J
from explorer.core.scattering.transform import (WORKERS, _backward, _forward, _map,
                                                _one_blas_thread, n_threads)
from explorer.core.spectra import (half_plane_multiplicity, phase_randomise, shell_average,
                                   shell_counts, shell_index)
from explorer.core.support import ZERO_POWER

#: Fourier modes with less than this fraction of the data's largest modal power are outside the
#: data's spectral support (syntheses are projected onto the support)
SUPPORT_FLOOR = ZERO_POWER
#: precisions of the synthesis's loss and gradient (:class:`SynthesisObjective`); "single" (the
#: default) is ~1.6x cheaper and gives the same syntheses' quality (docs/performance.md)
PRECISIONS = ("double", "single")


def n_shells(M: int) -> int:
    """Number of integer shells 1..S covering the whole DFT plane, corners included:
    S = rint(M/√2) (the shell of the corner mode (M/2, M/2))."""
    return int(np.rint(np.hypot(M // 2, M // 2)))


def _shells(M: int):
    """Integer shell of every half-plane mode, multiplicity (2 for interior columns) and counts
    of the shells 1 .. :func:`n_shells` (the whole plane: the corners |k| > M/2 included)."""
    shell = shell_index(M, half=True)
    return shell, half_plane_multiplicity(M), shell >= 1, shell_counts(M, n_shells(M), half=True)


def shell_spectrum(xh: np.ndarray, M: int) -> np.ndarray:
    """Mean of |x̃(k)|² over the integer shells 1 .. :func:`n_shells` (M/2 is the inscribed circle;
    the shells beyond it cover the corners) from half-planes (N, M, M//2+1): the radial spectrum
    of :func:`explorer.core.spectra.shell_average` per field, in the normalisation x̃ = rfft2 / M²."""
    return shell_average(np.abs(xh) ** 2, n_shells(M), half=True)


class SynthesisObjective:
    """ℓ(x) summed over a batch of syntheses and its exact gradient (see the module docstring).

    ``targets`` come from the data (averaged over the data fields, always in float64);
    ``weights`` per group ("mean", "S1", "S2", "S3", "S4", "spectrum"), default 1.
    ``precision`` of the syntheses' statistics and gradient (see :data:`PRECISIONS`): "double"
    computes them in float64 (exact to rounding); "single" computes the wavelet coefficients,
    moduli, Gram sums and their adjoint in float32 / complex64 (about 1e-7 relative error on
    the loss and gradient), x̃, the spectrum and mean terms and the final adjoint in float64; the
    loss is summed in float64 and the gradient returned as float64.
    """

    GROUPS = ("mean", "S1", "S2", "S3", "S4", "spectrum")

    def __init__(self, data, J: int | None = None, L: int = 4, weights: dict | None = None,
                 workers=WORKERS, precision: str = "single", **bank_options):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        d = as_batch(data, "data")
        self.M = d.shape[-1]
        self.bank = filter_bank(self.M, default_J(self.M) if J is None else J, L, **bank_options)
        self.workers = workers
        self.weights = {g: 1.0 for g in self.GROUPS}
        for k, v in (weights or {}).items():
            if k not in self.weights:
                raise ValueError(f"unknown weight group {k!r}; groups: {self.GROUPS}")
            self.weights[k] = float(v)
        fw = _forward(d, self.bank, workers)
        self.t_mean = fw.mean.mean()
        self.t_S1 = fw.S1.mean(axis=0)
        self.t_S2 = fw.S2.mean(axis=0)
        self.t_S3 = fw.S3.mean(axis=0)
        self.t_S4 = fw.S4.mean(axis=0)
        self.t_P = shell_spectrum(fw.xh, self.M).mean(axis=0)
        if not np.all(self.t_S2 > 0):
            raise ValueError("the data have no power at some wavelet scale (constant fields?)")
        self.data_std = float(d.std())
        self.data_mean = float(d.mean())
        r = np.sqrt(self.t_S2)
        n12 = (r[:, :, None, None] * r[None, None]) ** 2      # S2 S2 (J, L, J, L)
        self.s_S3 = 1.0 / n12
        self.s_S4 = 1.0 / n12[..., None, None]
        J_, L_ = self.bank.J, self.bank.L
        jj = np.arange(J_)
        self.m3 = (jj[:, None] <= jj[None, :])[:, None, :, None]
        self.m4 = (self.m3[..., None, None] & (jj[None, None, :, None] <= jj[None, None, None, :]
                                                ).reshape(1, 1, J_, 1, J_, 1))
        # spectral support of the data: modes with power above 1e-12 of the largest (e.g. the
        # 2/3-rule dealiasing of a spectral solver leaves exact zeros, up to float32 rounding)
        p2 = (np.abs(fw.xh) ** 2).mean(axis=0)
        p2[0, 0] = 0.0
        self.mode_mask = p2 > SUPPORT_FLOOR * p2.max()
        self.mode_mask[0, 0] = True
        self.restricted = not bool(self.mode_mask.all())
        # relative spectrum error on the shells that carry power
        self.shell_on = self.t_P > SUPPORT_FLOOR * self.t_P.max()
        self.inv_tP = np.where(self.shell_on, 1.0 / np.where(self.shell_on, self.t_P, 1.0), 0.0)
        self.shells = _shells(self.M)
        self.n_evaluations = 0
        self.last_parts: dict = {}
        self.data_fields = d

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(loss, gradient) for syntheses x (N, M, M). With several syntheses and several worker
        threads, the syntheses are split between the threads (each computes its share on one
        thread: the terms of the loss are sums over the syntheses)."""
        x = np.asarray(x, dtype=np.float64)
        groups = _split(len(x), n_threads(self.workers))
        if len(groups) == 1:
            parts, g = self._evaluate(x, self.workers)
        else:
            with _one_blas_thread():
                res = _map(lambda s: self._evaluate(x[s], 1), groups, self.workers)
            parts = {k: sum(r[0][k] for r in res) for k in res[0][0]}
            g = np.concatenate([r[1] for r in res])
        self.n_evaluations += 1
        self.last_parts = parts
        return float(sum(parts.values())), np.asarray(g, dtype=np.float64)

    def _evaluate(self, x: np.ndarray, workers) -> tuple[dict, np.ndarray]:
        """The loss's parts (floats) and the gradient for syntheses x (N, M, M), on ``workers``."""
        w = self.weights
        fw = _forward(x, self.bank, workers, keep=True, single=self.precision == "single")
        N = x.shape[0]
        parts = {}
        dm = fw.mean - self.t_mean
        parts["mean"] = w["mean"] * np.sum(dm**2) / self.data_std**2
        d1 = fw.S1 - self.t_S1
        parts["S1"] = w["S1"] * np.sum(d1**2 / self.t_S2)
        d2 = fw.S2 - self.t_S2
        parts["S2"] = w["S2"] * np.sum(d2**2 / self.t_S2**2)
        d3 = (fw.S3 - self.t_S3) * self.m3
        parts["S3"] = w["S3"] * np.sum(np.abs(d3) ** 2 * self.s_S3)
        d4 = (fw.S4 - self.t_S4) * self.m4
        parts["S4"] = w["S4"] * np.sum(np.abs(d4) ** 2 * self.s_S4)
        P = shell_spectrum(fw.xh, self.M)
        dP = (P - self.t_P) * self.inv_tP
        parts["spectrum"] = w["spectrum"] * np.sum(dP**2)
        # gradients
        gS1 = 2 * w["S1"] * d1 / self.t_S2
        gS2 = 2 * w["S2"] * d2 / self.t_S2**2
        gS3 = 2 * w["S3"] * d3 * self.s_S3
        gS4 = 2 * w["S4"] * d4 * self.s_S4
        shell, mult, ok, counts = self.shells
        gP = 2 * w["spectrum"] * dP * self.inv_tP                          # (N, M/2)
        coef = np.zeros((N, self.M, self.M // 2 + 1))
        coef[:, ok] = (gP / counts)[:, shell[ok] - 1] * mult[ok]
        gxh = 2.0 * coef * fw.xh
        gxh[:, 0, 0] += 2 * w["mean"] * dm / self.data_std**2
        g = _backward(fw, gS1, gS2, gS3, gS4, gxh, workers)
        return {k: float(v) for k, v in parts.items()}, g


def _split(n: int, threads: int) -> list:
    """Slices splitting n syntheses between up to ``threads`` threads (one slice: no split)."""
    k = max(1, min(n, threads))
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


# ====================================================================== synthesis
def gaussian_synthesis(data, n_samples: int = 1, seed: int = 0) -> np.ndarray:
    """Power-spectrum-only references: phase-randomised copies of the data fields (cycled)."""
    d = as_batch(data, "data")
    pick = d[np.arange(int(n_samples)) % len(d)]
    return phase_randomise(pick, seed=seed)


def iter_synthesize(data, n_samples: int = 1, J: int | None = None, L: int = 4,
                    iterations: int = 300, seed: int = 0, stop: threading.Event | None = None,
                    report_every: int = 10, model: str = "scattering",
                    weights: dict | None = None, x0=None, workers=WORKERS,
                    precision: str = "single", **bank_options) -> Iterator[Progress]:
    """Microcanonical synthesis of ``n_samples`` fields from one or a few data fields.

    Yields :class:`Progress` (stage "synthesis", step = L-BFGS iteration, snapshot = first
    synthesis as float32, info = {loss, loss_<group>, evaluations}); honours ``stop`` (the partial
    result is returned with ``stopped=True``). The final report carries a FieldSet whose meta
    records the parameters, the final loss and the timings. ``model="gaussian"``: phase-randomised
    data (no optimisation). ``precision``: of the loss and gradient ("single", the default, or
    "double"; :class:`SynthesisObjective`); L-BFGS itself runs in float64 either way.
    """
    from scipy.optimize import minimize

    d = as_batch(data, "data")
    M = d.shape[-1]
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"the number of syntheses must be at least 1, got {n_samples}")
    if model not in ("scattering", "gaussian"):
        raise ValueError(f"model must be 'scattering' or 'gaussian', got {model!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    J = default_J(M) if J is None else int(J)
    t0 = time.perf_counter()
    meta: dict[str, Any] = {"generator": "scattering-synthesis",
                            "params": {"model": model, "J": J, "L": int(L), "iterations": iterations,
                                       "n_data": int(len(d)), "n": n_samples, "size": int(M)},
                            "seed": seed}
    if model == "gaussian":
        x = gaussian_synthesis(d, n_samples, seed)
        meta["seconds"] = time.perf_counter() - t0
        yield Progress(1, 1, "done", snapshot=x[0].astype(np.float32), done=True,
                       result=FieldSet(x.astype(np.float32), meta))
        return
    obj = SynthesisObjective(d, J, L, weights, workers, precision, **bank_options)
    meta["params"]["precision"] = precision
    rng = np.random.default_rng(seed)
    if x0 is None:
        x0 = obj.data_mean + obj.data_std * rng.standard_normal((n_samples, M, M))
    else:
        x0 = as_batch(x0, "x0")
        if x0.shape != (n_samples, M, M):
            raise ValueError(f"x0 must have shape {(n_samples, M, M)}, got {x0.shape}")
    shape = x0.shape
    # Preconditioning: L-BFGS works on z with x = C z, C diagonal in Fourier with
    # C(k) = √(P_data(|k|) / mean P_data) on the data's spectral support and 0 off it (an
    # orthogonal projection there). The start is still the white noise x0 (z0 = C⁻¹ x0 on the
    # support); C only changes the geometry of the descent, so that scales whose power differs by
    # decades converge together.
    shell, _mult, _ok, _counts = _shells(M)
    Pd = np.where(obj.shell_on, obj.t_P, 0.0)
    Ps = np.concatenate([[Pd[0] if len(Pd) else 1.0], Pd])     # shell 0 (the mean) -> shell 1
    Pin = Pd[: M // 2]                                          # normalised on the disc |k| <= M/2
    cpre = np.sqrt(Ps[shell] / max(Pin[Pin > 0].mean() if (Pin > 0).any() else 1.0, 1e-300))
    cpre = np.where(obj.mode_mask & (cpre > 0), cpre, 0.0)
    cinv = np.where(cpre > 0, 1.0 / np.where(cpre > 0, cpre, 1.0), 0.0)
    cpre[0, 0] = cinv[0, 0] = 1.0

    def apply(z, c):
        zh = sfft.rfft2(z, workers=workers)
        zh *= c
        return sfft.irfft2(zh, s=(M, M), workers=workers)

    def to_x(z):
        return apply(z.reshape(shape), cpre)

    def fun(z):
        loss, g = obj(to_x(z))
        return loss, apply(g, cpre).ravel()

    z0 = apply(x0, cinv)
    reports: queue.Queue = queue.Queue()
    halt = threading.Event()
    state = {"it": 0, "loss": float("nan")}

    def callback(intermediate_result):
        state["it"] += 1
        state["loss"] = float(intermediate_result.fun)
        it = state["it"]
        if it % report_every == 0 or it == iterations:
            reports.put(("progress", it, to_x(intermediate_result.x)[0],
                         dict(obj.last_parts)))
        if halt.is_set() or should_stop(stop):
            raise StopIteration

    def worker():
        try:
            # L-BFGS-B's products with its n × 20 history are memory-bound level-2 BLAS: threaded
            # OpenBLAS made them 10x dearer per iteration than one thread (as dear as the loss)
            with _one_blas_thread():
                res = minimize(fun, z0.ravel(), jac=True, method="L-BFGS-B", callback=callback,
                               options={"maxiter": iterations, "maxcor": 20,
                                        "maxfun": 2 * iterations + 20, "ftol": 0.0, "gtol": 0.0})
            reports.put(("done", res))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            reports.put(("error", e))

    th = threading.Thread(target=worker, name="scattering-synthesis", daemon=True)
    th.start()
    res = None
    try:
        while True:
            item = reports.get()
            if item[0] == "progress":
                _, it, snap, parts = item
                yield Progress(it, iterations, "synthesis", snapshot=snap.astype(np.float32),
                               info={"loss": state["loss"], "evaluations": obj.n_evaluations,
                                     **{f"loss_{k}": v for k, v in parts.items()}})
            elif item[0] == "done":
                res = item[1]
                break
            else:
                raise item[1]
    finally:
        halt.set()
        th.join()
    x = to_x(res.x)
    final_loss, _ = obj(x)
    meta["synthesis"] = {"loss": final_loss, "loss_parts": dict(obj.last_parts),
                         "spectral_support_restricted": obj.restricted, "iterations": int(state["it"]),
                         "evaluations": obj.n_evaluations, "message": str(res.message),
                         "seconds": time.perf_counter() - t0}
    meta["params"]["bank"] = obj.bank.spec()
    yield Progress(state["it"], iterations, "done", snapshot=x[0].astype(np.float32), done=True,
                   stopped=should_stop(stop),
                   result=FieldSet(x.astype(np.float32), meta))


def synthesize(data, n_samples: int = 1, callback=None, stop: threading.Event | None = None,
               **kwargs) -> FieldSet:
    """Run :func:`iter_synthesize` to completion (or until ``stop``); returns the FieldSet."""
    return run(iter_synthesize(data, n_samples, stop=stop, **kwargs), callback)
