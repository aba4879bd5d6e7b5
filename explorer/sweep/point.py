"""One sweep point: generate -> fit -> sample -> compare, through the core functions, as one
tidy row of the results table.

:func:`run_point` is what a Dask task runs: it takes a point (parameters and seeds, see
:mod:`explorer.sweep.grid`), limits BLAS to one thread, and returns a dict of JSON scalars. A
point that fails in a way its parameters can cause (a ValueError such as a refused parameter or
an :class:`~explorer.core.model.UnboundedModelError`, a diverged sampler or solver, a run out of
memory) is returned as a row with ``status="failed"`` and the error in ``message``; anything
else (a bug) is raised, and the sweep records it the same way after Dask's retries.

Seeds: ``np.random.SeedSequence(seed).spawn(3)`` gives the data generator's, the fit's and the
model sampler's seeds (three independent streams from the point's one seed).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from explorer.core import observables as obs
from explorer.core.diagnostics import compare
from explorer.core.io import atomic_path, json_default
from explorer.core.model import WCRGModel
from explorer.core.progress import run
from explorer.sweep.grid import PARAMETERS, code_version

#: errors a point's parameters can cause: recorded as ``status="failed"``, never raised
RECORDED_ERRORS = (ValueError, FloatingPointError, ArithmeticError, RuntimeError, MemoryError)


def stage_seeds(seed: int) -> tuple[int, int, int]:
    """(data, fit, sample) seeds: three independent streams spawned from the point's seed."""
    children = np.random.SeedSequence(int(seed)).spawn(3)
    return tuple(int(c.generate_state(1, np.uint32)[0]) for c in children)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def _one_line(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return f"{type(e).__name__}: " + re.sub(r"\s*\n\s*", " ", text).strip()


def versions() -> dict:
    """The versions recorded in every row."""
    return {"explorer_version": code_version(), "numpy_version": np.__version__,
            "dask_version": _package_version("dask")}


def base_row(point: dict) -> dict:
    """The row of a point before any result: parameters, seed, index and key."""
    row = {k: point.get(k) for k in PARAMETERS}
    row.update(index=point.get("index"), key=point.get("key"))
    return row


def failed_row(point: dict, message: str, seconds: float | None = None) -> dict:
    """The row of a point that did not produce a result (also used by the sweep for a task that
    Dask gave up on, e.g. after repeated worker losses)."""
    return {**base_row(point), "status": "failed", "message": message, "seconds": seconds,
            "finished_at": _now(), **versions()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _generate(point: dict, seed: int):
    kind, L, n = point["kind"], int(point["size"]), int(point["n_data"])
    if kind == "phi4":
        from explorer.core.fields.phi4 import iter_phi4

        it = iter_phi4(size=L, n_samples=n, beta=float(point["beta"]), lam=float(point["lam"]),
                       seed=seed)
    elif kind == "gaussian":
        from explorer.core.fields.gaussian import iter_gaussian

        it = iter_gaussian(size=L, n_samples=n, kind="powerlaw", eta=float(point["eta"]),
                           seed=seed)
    elif kind == "turbulence":
        from explorer.core.fields.turbulence import iter_turbulence

        it = iter_turbulence(size=L, n_snapshots=n, alpha=float(point["drag"]), seed=seed)
    else:
        raise ValueError(f"unknown field kind {kind!r}")
    fs = run(it, allow_partial=False)
    if fs is None or fs.n < 2:
        raise RuntimeError("the generator produced fewer than 2 fields")
    return fs


def magnetisation_observables(fields: np.ndarray) -> dict:
    """<|m|>, the Binder cumulant U and chi = L^2 <m^2> with blocked-jackknife errors (the
    definitions of :func:`explorer.core.fields.phi4.phi4_observables`)."""
    x = np.asarray(fields)
    L2 = x.shape[-1] * x.shape[-2]
    m = obs.magnetisation(x)
    U, dU = obs.jackknife(m, obs.binder_cumulant)
    a, da = obs.jackknife(m, lambda v: float(np.mean(np.abs(v))))
    c, dc = obs.jackknife(m, lambda v: float(L2 * np.mean(v * v)))
    return {"binder": U, "binder_err": dU, "absm": a, "absm_err": da, "chi": c, "chi_err": dc}


def _distances(data: np.ndarray, samples: np.ndarray) -> dict:
    c = compare(data, samples)  # J: the deepest (4x4 coarsest), the same for every model depth
    ratios = np.asarray(c["scale_std_ratios"], dtype=np.float64)
    return {"spectrum_log_ratio": c["spectrum_log_ratio"],
            "spectrum_2d_log_ratio": c["spectrum_2d_log_ratio"],
            "total_variation": c["total_variation"], "kl_divergence": c["kl_divergence"],
            "std_ratio_max_dev": float(np.max(np.abs(ratios - 1.0))) if ratios.size else None,
            "binder_difference": c["binder_difference"],
            "kurtosis_data": c["kurtosis"]["data"], "kurtosis_samples": c["kurtosis"]["samples"]}


def _store(fields_dir, point: dict, data, samples) -> None:
    path = Path(fields_dir) / f"{point['key']}.npz"
    arrays = {"point": np.array(json.dumps(point, default=json_default))}
    if data is not None:
        arrays["data"] = np.asarray(data, np.float32)
    if samples is not None:
        arrays["samples"] = np.asarray(samples, np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def run_point(point: dict, fields_dir: str | None = None) -> dict:
    """Generate the point's data, fit its model, sample it and compare: one row (a dict).

    Columns: the parameters, ``index`` and ``key``; ``status`` ("ok" / "failed") and ``message``;
    for phi4 ``binder_*``, ``absm_*``, ``chi_*`` of data and samples with ``*_err`` jackknife
    errors (None for other kinds); the distances of :func:`explorer.core.diagnostics.compare`;
    ``equilibrated`` (phi4 data); timings ``seconds`` and ``seconds_<stage>`` (wall) and
    ``cpu_seconds`` (CPU time of the thread that ran the point: its cost on a shared machine,
    where wall times also measure the others' load); ``worker``,
    ``finished_at``; the versions. With ``fields_dir`` the data and samples are written to
    ``fields_dir/<key>.npz`` (on the worker: a shared file system on a cluster).
    """
    from threadpoolctl import threadpool_limits

    row = base_row(point)
    row.update(worker=f"{socket.gethostname()}:{os.getpid()}", **versions())
    t0, cpu0 = time.perf_counter(), time.thread_time()
    data = samples = None
    stage = "generate"
    with threadpool_limits(limits=1):
        try:
            data_seed, fit_seed, sample_seed = stage_seeds(point["seed"])
            t = time.perf_counter()
            fs = _generate(point, data_seed)
            data = fs.fields
            row["seconds_generate"] = time.perf_counter() - t
            if point["kind"] == "phi4":
                row["equilibrated"] = bool(fs.meta.get("sampler", {}).get("equilibrated", True))
            stage, t = "fit", time.perf_counter()
            model = WCRGModel(point["family"], int(point["J"]))
            model.fit(data, method=point["method"], seed=fit_seed)
            row["seconds_fit"] = time.perf_counter() - t
            stage, t = "sample", time.perf_counter()
            samples = model.sample(int(point["n_samples"]), steps=int(point["steps"]),
                                   burn_in=int(point["burn_in"]), method=point["sampler"],
                                   seed=sample_seed).fields
            row["seconds_sample"] = time.perf_counter() - t
            stage, t = "compare", time.perf_counter()
            row.update(_distances(data, samples))
            if point["kind"] == "phi4":
                for name, x in (("data", data), ("samples", samples)):
                    for k, v in magnetisation_observables(x).items():
                        q, err = (k[:-4], "_err") if k.endswith("_err") else (k, "")
                        row[f"{q}_{name}{err}"] = v
            row["seconds_compare"] = time.perf_counter() - t
            row.update(status="ok", message="")
        except RECORDED_ERRORS as e:
            row.update(status="failed", message=f"{stage}: {_one_line(e)}")
        if fields_dir is not None and (data is not None or samples is not None):
            _store(fields_dir, point, data, samples)
    row["seconds"] = time.perf_counter() - t0
    row["cpu_seconds"] = time.thread_time() - cpu0  # this thread's CPU: the point's own work
    row["finished_at"] = _now()
    return row
