"""A Dask client for sweeps and ensembles: connect to a running scheduler, or start (and close)
a local cluster of processes with one thread each.

Dask is imported only here, and only when a client is made: the rest of :mod:`explorer.sweep`
(grids, :func:`~explorer.sweep.point.run_point`, tables, curves) works without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: seconds to wait for a scheduler to answer
CONNECT_TIMEOUT = 30

#: Dask's nannies start their workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off
#: glibc's dynamic mmap threshold: every numpy temporary above 128 KiB is then mapped, faulted in
#: and unmapped again, and a sweep point runs ~1.7-2x slower (phi4 L = 32 point: 31 s with it,
#: 18 s without, in one process). The local cluster starts its workers without it; for workers
#: started elsewhere, set this in their Dask configuration.
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


@contextmanager
def _without_dask_trim() -> Iterator[None]:
    """Dask's nannies write their pre-spawn variables into this process's ``os.environ`` for
    good, so after any default-configured local cluster every later worker would inherit
    MALLOC_TRIM_THRESHOLD_ whatever the configuration says. While our cluster lives, the variable
    is removed when it holds Dask's default value, and put back afterwards."""
    import importlib

    import dask

    importlib.import_module("distributed")  # loads Dask's distributed defaults
    default = dask.config.get(f"distributed.nanny.pre-spawn-environ.{TRIM_VARIABLE}", None)
    saved = os.environ.get(TRIM_VARIABLE)
    remove = saved is not None and default is not None and saved == str(default)
    if remove:
        del os.environ[TRIM_VARIABLE]
    try:
        yield
    finally:
        if remove and TRIM_VARIABLE not in os.environ:
            os.environ[TRIM_VARIABLE] = saved


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _worker_code_version() -> str:
    from explorer.sweep.grid import code_version

    return code_version()


def check_workers(client) -> None:
    """Raise ValueError when a connected worker cannot import explorer or runs other code than
    this client (its results would be keyed under the wrong code version). Workers that join
    later are not checked here; their rows record their own ``explorer_version``."""
    from explorer.sweep.grid import code_version

    try:
        found = client.run(_worker_code_version)
    except Exception as e:  # noqa: BLE001 - any failure means the workers cannot run points
        text = " ".join(str(e).split())
        raise ValueError(f"the Dask workers cannot run explorer code ({type(e).__name__}: "
                         f"{text}); install this project on them or put it on their "
                         "PYTHONPATH") from None
    mine = code_version()
    other = {w: v for w, v in found.items() if v != mine}
    if other:
        w, v = next(iter(other.items()))
        raise ValueError(f"{len(other)} Dask worker(s) run other explorer code than this client "
                         f"(e.g. {w}: {v}, here: {mine}); update them first")


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None,
                dashboard: bool = False) -> Iterator:
    """Yield a ``dask.distributed.Client``.

    ``scheduler``: an address (``tcp://host:port``) or a scheduler file (JSON written by
    ``dask scheduler --scheduler-file F``) of a running cluster, left running afterwards. None:
    a ``LocalCluster`` of ``n_workers`` processes (default: one per core), one thread each, no
    dashboard, bound to 127.0.0.1, workers without Dask's malloc trim setting
    (:data:`WORKER_CONFIG`), closed at the end. ``dashboard``: the local cluster also serves
    Dask's dashboard on a free port of 127.0.0.1 (``client.dashboard_link``; the app uses it).
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        if Path(scheduler).is_file():
            client = Client(scheduler_file=str(scheduler), timeout=CONNECT_TIMEOUT)
        else:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        try:
            check_workers(client)
            yield client
        finally:
            client.close()
        return
    n = default_workers() if n_workers is None else int(n_workers)
    if n < 1:
        raise ValueError(f"the number of workers must be at least 1, got {n}")
    with _without_dask_trim():
        with dask.config.set(WORKER_CONFIG):  # read by the nannies when they are made
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0" if dashboard else None,
                                   host="127.0.0.1",
                                   silence_logs=logging.ERROR)
        try:
            client = Client(cluster)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


def completed(futures, stop=None, poll: float = 0.2) -> Iterator:
    """Yield ``futures`` as they finish (``dask.distributed.as_completed``), returning early when
    ``stop`` (a ``threading.Event``) is set; polls so that a stop is seen within ``poll`` s."""
    import time

    from dask.distributed import as_completed

    from explorer.core.progress import should_stop

    ac = as_completed(futures)
    while not ac.is_empty():
        if should_stop(stop):
            return
        batch = ac.next_batch(block=False)
        if not batch:
            time.sleep(poll)
            continue
        for fut in batch:
            yield fut
            if should_stop(stop):
                return


def time_left(elapsed: float, computed: int, remaining: int) -> float | None:
    """Seconds left at the rate seen so far (None before the first result)."""
    if computed <= 0:
        return None
    return remaining * elapsed / computed


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
