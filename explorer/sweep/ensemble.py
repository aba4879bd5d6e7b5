"""Large phi^4 ensembles: the fields split into chunks generated on Dask workers, each chunk from
its own independent seeded stream, written to ``out_dir/chunk_XXXX.npz`` as it finishes.

Streams: chunk i is generated with ``np.random.SeedSequence(seed, spawn_key=(i,))`` — exactly
the i-th child of ``np.random.SeedSequence(seed).spawn(n)`` — so chunk i has the same fields
whatever the number of chunks, and a larger ensemble with the same chunk size extends a smaller
one. Every chunk runs its own chains (warm-up, pilot, burn-in: the samples of different chunks
are independent).

Files: ``ensemble.json`` (the parameters) and ``chunk_XXXX.npz`` written atomically by the
workers (a cluster needs a shared file system), each an ordinary field file (``fields`` plus
``meta``, with ``meta["ensemble"]`` = its parameters, index and size and ``meta["seed"]`` =
``{"entropy": seed, "spawn_key": [i]}``). A rerun keeps every chunk whose file matches and
generates the others; a folder holding an ensemble of other parameters is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from explorer.core import observables as obs
from explorer.core.budget import check_memory
from explorer.core.fields.base import FieldSet
from explorer.core.io import atomic_path, load_fields, read_meta, save_fields
from explorer.core.progress import Progress, run, should_stop
from explorer.sweep.cluster import completed, dask_client, default_workers, one_line, time_left
from explorer.sweep.grid import code_version

MANIFEST = "ensemble.json"
FORMAT = "explorer-ensemble"
KINDS = ("phi4",)
#: the parameters that identify an ensemble (and every one of its chunks)
IDENTITY = ("kind", "size", "chunk", "beta", "lam", "seed", "chains")


def chunk_path(out_dir, index: int) -> Path:
    return Path(out_dir) / f"chunk_{index:04d}.npz"


def chunk_sizes(n_samples: int, chunk: int) -> list[int]:
    """Fields per chunk: full chunks, then the remainder."""
    full, rest = divmod(int(n_samples), int(chunk))
    return [int(chunk)] * full + ([rest] if rest else [])


def chunk_memory_bytes(size: int, chunk: int, chains: int | None = None) -> int:
    """Peak memory of one chunk's generation (the phi4 sampler's chains, its samples and the
    observables computed on them, as ``explorer generate`` estimates it)."""
    C = int(chains or min(chunk, 256))
    per_chain = math.ceil(chunk / C)
    pixels = int(size) ** 2
    return max((4 * per_chain * C + 64 * C + 8 * chunk) * pixels, 44 * chunk * pixels)


def check_ensemble(kind: str, size, n_samples, chunk, beta, lam, seed, chains=None) -> None:
    """Raise ValueError (one line) for a parameter no ensemble could use."""
    if kind not in KINDS:
        raise ValueError(f"ensembles are made of {', '.join(KINDS)} fields, not {kind!r}")
    for name, v, lo in (("size", size, 8), ("n_samples", n_samples, 2), ("chunk", chunk, 2),
                        ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be a whole number >= {lo}, got {v!r}")
    if not (8 <= size <= 256 and size & (size - 1) == 0):
        raise ValueError(f"phi4 size must be a power of two between 8 and 256, got {size}")
    if chains is not None and (not isinstance(chains, (int, np.integer)) or chains < 1):
        raise ValueError(f"chains must be a whole number >= 1, got {chains!r}")
    for name, v, ok, rule in (("beta", beta, lambda x: x >= 0, ">= 0"),
                              ("lam", lam, lambda x: x > 0, "> 0")):
        if not (isinstance(v, (int, float, np.number)) and math.isfinite(v) and ok(v)):
            raise ValueError(f"{name} must be a finite number {rule}, got {v!r}")


def _read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not an ensemble manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"{path} is not an explorer ensemble manifest")
    return m


def _write_manifest(out: Path, manifest: dict) -> None:
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _chunk_done(path: Path, ident: dict, index: int, n: int) -> bool:
    """True when ``path`` is this ensemble's chunk ``index`` of ``n`` fields."""
    if not path.exists():
        return False
    try:
        meta = read_meta(path).get("ensemble", {})
    except (ValueError, OSError):
        return False
    return ({k: meta.get(k) for k in ident} == ident and meta.get("index") == index
            and meta.get("n") == n)


def generate_chunk(ident: dict, index: int, n: int, path: str) -> dict:
    """Dask task: generate chunk ``index`` (``n`` fields) and write it to ``path``; returns a
    small summary (never the fields)."""
    from threadpoolctl import threadpool_limits

    from explorer.core.fields.phi4 import iter_phi4

    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        stream = np.random.SeedSequence(int(ident["seed"]), spawn_key=(int(index),))
        fs = run(iter_phi4(size=int(ident["size"]), n_samples=int(n), beta=float(ident["beta"]),
                           lam=float(ident["lam"]), seed=stream, n_chains=ident["chains"]),
                 allow_partial=False)
        fs.meta["seed"] = {"entropy": int(ident["seed"]), "spawn_key": [int(index)]}
        fs.meta["ensemble"] = {**ident, "index": int(index), "n": int(n),
                               "code_version": code_version()}
        save_fields(path, fs)
    return {"index": int(index), "n": int(fs.n), "seconds": time.perf_counter() - t0,
            "equilibrated": bool(fs.meta["sampler"].get("equilibrated", True)),
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def iter_ensemble(kind: str = "phi4", size: int = 64, n_samples: int = 256, chunk: int = 64,
                  beta: float = 0.68, lam: float = 1.0, seed: int = 0, out_dir=".",
                  scheduler: str | None = None, n_workers: int | None = None,
                  stop: threading.Event | None = None, chains: int | None = None,
                  retries: int = 2) -> Iterator[Progress]:
    """Generate an ensemble of ``n_samples`` phi4 fields in chunks of ``chunk`` on Dask.

    Reports: stage "ensemble", step/total = chunks done (existing ones included) / chunks;
    ``info``: chunks_done, chunks_total, fields_done, fields_total, skipped, elapsed, time_left
    (s), ``submitted`` (on the report sent once the tasks are submitted), and ``warning`` when
    a chunk's sampler could not confirm equilibrium. The final report
    carries {out_dir, chunks, n_fields, computed, skipped, seconds, observables} (observables of
    the whole ensemble, :func:`ensemble_observables`, when it is complete).
    ``scheduler``/``n_workers`` as in :func:`explorer.sweep.runner.iter_sweep`; ``chains``:
    Markov chains per chunk (default min(chunk, 256)).
    """
    check_ensemble(kind, size, n_samples, chunk, beta, lam, seed, chains)
    workers = default_workers() if n_workers is None and not scheduler else (n_workers or 1)
    check_memory(chunk_memory_bytes(size, min(chunk, n_samples), chains) * workers,
                 "the ensemble", f"{workers} worker(s) each generating {min(chunk, n_samples)} "
                 f"fields of {size}x{size}", "use a smaller --chunk or fewer workers")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ident = {"kind": kind, "size": int(size), "chunk": int(chunk), "beta": float(beta),
             "lam": float(lam), "seed": int(seed),
             "chains": None if chains is None else int(chains)}
    old = _read_manifest(out)
    if old is not None:
        diff = [k for k in IDENTITY if old.get(k) != ident[k]]
        if diff:
            k = diff[0]
            raise ValueError(f"{out} holds an ensemble with {k}={old.get(k)!r}, not {ident[k]!r}; "
                             "use another folder")
    sizes = chunk_sizes(n_samples, chunk)
    _write_manifest(out, {"format": FORMAT, "version": 1, **ident, "n_samples": int(n_samples),
                          "chunks": len(sizes), "code_version": code_version(),
                          "streams": "chunk i: np.random.SeedSequence(seed, spawn_key=(i,))"})
    todo = [i for i, n in enumerate(sizes) if not _chunk_done(chunk_path(out, i), ident, i, n)]
    total, skipped = len(sizes), len(sizes) - len(todo)
    todo_set = set(todo)
    fields_done = sum(n for i, n in enumerate(sizes) if i not in todo_set)
    count = {"computed": 0}
    t0 = time.monotonic()

    def report(**extra) -> Progress:
        done = skipped + count["computed"]
        elapsed = time.monotonic() - t0
        info = {"chunks_done": done, "chunks_total": total, "fields_done": fields_done,
                "fields_total": int(n_samples), "skipped": skipped, "elapsed": elapsed,
                "time_left": 0.0 if done == total else
                time_left(elapsed, count["computed"], total - done), **extra}
        return Progress(done, total, "ensemble", info=info)

    yield report()
    if todo and not should_stop(stop):
        digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        tag = f"explorer-chunk-{digest}"
        with dask_client(scheduler, n_workers) as client:
            futures = {client.submit(generate_chunk, ident, i, sizes[i],
                                     str(chunk_path(out, i).resolve()), key=f"{tag}-{i}",
                                     retries=retries): i for i in todo}
            try:
                yield report(submitted=len(futures))
                for fut in completed(list(futures), stop):
                    i = futures[fut]
                    try:
                        res = fut.result()
                    except Exception as e:  # noqa: BLE001 - surfaces as one line
                        raise RuntimeError(f"ensemble chunk {i} failed: {one_line(e)}") from None
                    count["computed"] += 1
                    fields_done += res["n"]
                    extra = ({} if res["equilibrated"] else
                             {"warning": f"chunk {i}: the sampler could not confirm equilibrium "
                                         "(see its meta['sampler'])"})
                    yield report(**extra)
            finally:
                pending = [f for f in futures if not f.done()]
                if pending:
                    client.cancel(pending)
    complete = skipped + count["computed"] == total
    result = {"out_dir": str(out), "chunks": total, "n_fields": fields_done,
              "computed": count["computed"], "skipped": skipped,
              "seconds": time.monotonic() - t0,
              "observables": ensemble_observables(out) if complete else None}
    last = report()
    yield Progress(last.step, total, "done", info=last.info, done=True, stopped=not complete,
                   result=result)


def run_ensemble(*args, callback=None, **kwargs) -> dict:
    """Blocking form of :func:`iter_ensemble`: its result dict."""
    return run(iter_ensemble(*args, **kwargs), callback)


def _chunks(out_dir) -> tuple[dict, list[Path]]:
    out = Path(out_dir)
    manifest = _read_manifest(out)
    if manifest is None:
        raise ValueError(f"{out} holds no ensemble (no {MANIFEST})")
    paths = [chunk_path(out, i) for i in range(manifest["chunks"])]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise ValueError(f"the ensemble in {out} is incomplete: {len(missing)} of "
                         f"{len(paths)} chunks missing (e.g. {missing[0]}); rerun it to finish")
    return manifest, paths


def load_ensemble(out_dir) -> FieldSet:
    """All fields of a complete ensemble, in chunk order, as one FieldSet (meta: the manifest
    and each chunk's sampler diagnostics). Refused when it would not fit in memory."""
    manifest, paths = _chunks(out_dir)
    L = manifest["size"]
    check_memory(4 * manifest["n_samples"] * L * L, "loading the ensemble",
                 f"{manifest['n_samples']} fields of {L}x{L}",
                 "use ensemble_observables() or read the chunks one by one")
    parts, samplers = [], []
    for p in paths:
        fs = load_fields(p)
        parts.append(fs.fields)
        samplers.append(fs.meta.get("sampler", {}))
    meta = {"generator": "phi4-ensemble", "params": {k: manifest[k] for k in IDENTITY},
            "ensemble": manifest, "chunk_samplers": samplers}
    return FieldSet(np.concatenate(parts), meta)


def ensemble_observables(out_dir) -> dict:
    """phi4 observables of a complete ensemble, reading one chunk at a time: <|m|>, Binder U
    and chi = L^2 <m^2> with blocked-jackknife errors, energy per site, n, and how many chunks
    confirmed equilibrium."""
    from explorer.core.fields.phi4 import energy

    manifest, paths = _chunks(out_dir)
    ms, es, equilibrated = [], [], 0
    for p in paths:
        fs = load_fields(p)
        x = fs.fields.astype(np.float64)
        ms.append(obs.magnetisation(x))
        es.append(energy(x, manifest["beta"], manifest["lam"]) / x[0].size)
        equilibrated += bool(fs.meta.get("sampler", {}).get("equilibrated", True))
    m, e = np.concatenate(ms), np.concatenate(es)
    L2 = manifest["size"] ** 2
    U, dU = obs.jackknife(m, obs.binder_cumulant)
    a, da = obs.jackknife(m, lambda v: float(np.mean(np.abs(v))))
    c, dc = obs.jackknife(m, lambda v: float(L2 * np.mean(v * v)))
    en, den = obs.jackknife(e, lambda v: float(np.mean(v)))
    return {"n": int(len(m)), "binder": U, "binder_err": dU, "abs_m": a, "abs_m_err": da,
            "chi": c, "chi_err": dc, "energy_per_site": en, "energy_per_site_err": den,
            "chunks": len(paths), "chunks_equilibrated": equilibrated}
