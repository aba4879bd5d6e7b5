"""Sweeps and ensembles on Dask (explorer.sweep, explorer.sweep_cli): small grids on local
clusters of 2 processes, an interrupted and resumed sweep, a killed worker, a separately started
scheduler and worker, failing points, and a chunked phi4 ensemble against a single-process run.

Expected data Binder cumulants (the tolerances of test_grid_sweep_on_a_local_cluster):
  measured with 2048 fields, U(beta=0.5) = 0.10 +- 0.03 at L = 8 and 0.05 +- 0.02 at L = 16
  (disordered: U -> 0), U(beta=0.68) = 0.601 +- 0.003 (L = 8) and 0.605 +- 0.002 (L = 16), the
  Ising value U* = 0.611 at beta_c. From N fields the estimator scatters by
  sqrt(24 / N) / 3 when m is Gaussian (0.14 for N = 128) and by ~0.01 at beta_c (jackknife,
  N = 128). So with 128 data fields: |U(0.5)| < 0.45 (about 2.5 sigma above 0.10), and
  |U(0.68) - 0.61| < 0.08 (3 sigma plus finite-size and beta_c = 0.68 +- 0.005 shifts, which
  move U at L = 16 by ~0.02).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.sweep import (COLUMNS, COMPARED_COLUMNS, VOLATILE_COLUMNS, binder_crossings,
                            curves, ensemble_observables, iter_ensemble, iter_sweep,
                            load_ensemble, make_grid, make_point, read_table, run_ensemble,
                            run_sweep, same_results)
from explorer.sweep import ensemble as ens
from explorer.sweep_cli import add_parsers, cmd_ensemble, cmd_sweep

ROOT = Path(__file__).resolve().parents[1]
#: the environment of the subprocesses: this checkout first on the path, the rest as it is (so
#: they import the same explorer and the same Dask as the test process)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}

#: the 2 x 2 grid of every sweep test: 128 data fields (the Binder checks need them), 32 model
#: samples, depth 1, 20 sampler steps per scale
GRID = dict(kind="phi4", size=[8, 16], beta=[0.5, 0.68], n_samples=32, n_data=128, J=1,
            steps=20)
POINTS = make_grid(**GRID)
#: its two L = 8 points: the fault and resume tests run these (cheaper; the same rows)
SMALL = POINTS[:2]


def by_key(rows):
    return {r["key"]: r for r in rows}


def rows_for(reference, points):
    ref = by_key(reference)
    return [ref[p["key"]] for p in points]


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 processes (1 thread each) shared by the tests that need no fresh one;
    yields its scheduler address."""
    from dask.distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                     host="127.0.0.1", silence_logs=logging.ERROR)
    try:
        yield c.scheduler_address
    finally:
        c.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep of POINTS, on a LocalCluster started by iter_sweep itself."""
    out = tmp_path_factory.mktemp("reference")
    t0 = time.perf_counter()
    reports = list(iter_sweep(POINTS, out, n_workers=2))
    return {"out": out, "reports": reports, "rows": read_table(out / "results.csv"),
            "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------ (a) the grid
def test_grid_sweep_on_a_local_cluster(reference):
    rows, reports = reference["rows"], reference["reports"]
    header = (reference["out"] / "results.csv").read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS)
    assert len(rows) == 4
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    assert [(int(r["size"]), float(r["beta"])) for r in rows] == [(8, 0.5), (8, 0.68),
                                                                 (16, 0.5), (16, 0.68)]
    assert all(r["status"] == "ok" and r["message"] == "" for r in rows)
    numeric = [c for c in COLUMNS if c.startswith(("binder_", "absm_", "chi_", "spectrum_",
                                                   "total_variation", "kl_", "std_ratio",
                                                   "kurtosis_", "seconds"))]
    for r in rows:
        assert all(math.isfinite(float(r[c])) for c in numeric), r
        assert float(r["seconds"]) >= float(r["seconds_generate"]) > 0
        assert 0 < float(r["cpu_seconds"]) <= 1.05 * float(r["seconds"]) + 0.05
        assert r["explorer_version"].startswith("0.") and r["dask_version"]
    # 2 worker processes ran the points
    assert len({r["worker"] for r in rows}) <= 2
    U = {(int(r["size"]), float(r["beta"])): float(r["binder_data"]) for r in rows}
    for L in (8, 16):  # tolerances derived in the module docstring
        assert abs(U[L, 0.5]) < 0.45
        assert abs(U[L, 0.68] - 0.61) < 0.08
        assert U[L, 0.5] < U[L, 0.68]
    # progress: points done / total and a time-left estimate once a point finished
    assert reports[0].step == 0 and reports[0].total == 4
    assert reports[1].info["last"] == "4 points submitted"
    assert [r.info["points_done"] for r in reports[2:-1]] == [1, 2, 3, 4]
    assert all(r.info["time_left"] is not None for r in reports[2:])
    final = reports[-1]
    assert final.done and not final.stopped
    assert final.result["ok"] == 4 and final.result["computed"] == 4


def test_point_keys_are_stable_and_depend_on_parameters_and_seed():
    again = make_grid(**GRID)
    assert [p["key"] for p in again] == [p["key"] for p in POINTS]
    assert make_grid(**{**GRID, "beta": [0.5, 1]})[1]["key"] != POINTS[1]["key"]  # beta 1.0
    assert make_grid(**{**GRID, "seeds": [1]})[0]["key"] != POINTS[0]["key"]
    # beta given as an int is the same point as the float
    as_int, as_float = make_grid(**{**GRID, "beta": [1]}), make_grid(**{**GRID, "beta": [1.0]})
    assert as_int[0]["key"] == as_float[0]["key"]
    with pytest.raises(ValueError, match="too deep"):
        make_grid(**{**GRID, "J": 4})  # 2^4 does not divide 8
    with pytest.raises(ValueError, match="not a parameter of phi4"):
        make_grid(**{**GRID, "eta": 2.0})


# ------------------------------------------------------------------ (b) resume
def test_stopped_sweep_resumes_without_recomputing(reference, cluster, tmp_path):
    stop = threading.Event()
    first = []
    for rep in iter_sweep(SMALL, tmp_path, scheduler=cluster, stop=stop):
        first.append(rep)
        if rep.info.get("computed", 0) >= 1:
            stop.set()
    assert first[-1].done and first[-1].stopped
    rows1 = read_table(tmp_path / "results.csv")
    assert len(rows1) == 1 and rows1[0]["status"] == "ok"
    stamps = {r["key"]: r["finished_at"] for r in rows1}
    summary = run_sweep(SMALL, tmp_path, scheduler=cluster)
    assert summary["skipped"] == 1 and summary["computed"] == 1 and summary["ok"] == 2
    rows2 = read_table(tmp_path / "results.csv")
    for k, stamp in stamps.items():  # not recomputed: its row is the one of the first run
        assert by_key(rows2)[k]["finished_at"] == stamp
    assert same_results(rows2, rows_for(reference["rows"], SMALL)) == []
    # a third run computes nothing and starts no cluster (nothing listens at that address)
    assert run_sweep(SMALL, tmp_path, scheduler="tcp://127.0.0.1:1")["computed"] == 0


def test_killed_client_leaves_a_valid_table_and_a_rerun_completes_it(reference, cluster,
                                                                       tmp_path):
    """The sweep process itself is killed (SIGKILL) after its first row: the table holds only
    complete rows, and a rerun computes only the rest."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "explorer.sweep_cli", "sweep", "phi4", "--size", "8",
           "--beta", "0.5", "0.68", "--samples", "32", "--data", "128", "--depth", "1",
           "--steps", "20", "--scheduler", cluster, "--out", str(out), "--quiet"]
    err = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            table = out / "results.csv"
            if table.exists() and len(table.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        err.close()
    rows1 = read_table(out / "results.csv")
    assert 1 <= len(rows1) <= 2, (tmp_path / "stderr.txt").read_text()[-2000:]
    assert all(r["status"] == "ok" for r in rows1)
    text = (out / "results.csv").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == len(rows1) + 1
    stamps = {r["key"]: r["finished_at"] for r in rows1}
    summary = run_sweep(SMALL, out, scheduler=cluster)
    assert summary["skipped"] == len(rows1) and summary["computed"] == 2 - len(rows1)
    rows2 = read_table(out / "results.csv")
    assert all(by_key(rows2)[k]["finished_at"] == s for k, s in stamps.items())
    assert same_results(rows2, rows_for(reference["rows"], SMALL)) == []


# ------------------------------------------------------------------ (c) a killed worker
@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_killed_worker_the_table_still_ends_complete_and_identical(reference, tmp_path):
    """On the local cluster that explorer.sweep starts (dask_client): one worker process is
    killed while it runs a point; its nanny restarts it, the point runs again, the table ends
    complete and identical. The workers, restarted one included, run without Dask's malloc trim
    setting (cluster.WORKER_CONFIG)."""
    from explorer.sweep.cluster import dask_client

    killed = []
    with dask_client(None, 2) as client:
        for rep in iter_sweep(SMALL, tmp_path, scheduler=client.scheduler.address):
            if killed or rep.done or "submitted" not in rep.info.get("last", ""):
                continue
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # a worker busy with a point
                busy = [w for w, tasks in client.processing().items()
                        if any(str(t).startswith("explorer-point-") for t in tasks)]
                if busy:
                    break
                time.sleep(0.05)
            assert busy
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        assert killed
        rows = read_table(tmp_path / "results.csv")
        assert same_results(rows, rows_for(reference["rows"], SMALL)) == []
        assert all(r["status"] == "ok" for r in rows)
        client.wait_for_workers(2, timeout=60)
        trim = client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_")
        assert len(trim) == 2 and set(trim.values()) == {None}
        assert pid not in client.run(os.getpid).values()


# ------------------------------------------------------------------ (d) a separate scheduler
def _dask(*args) -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "dask", *args]


def test_separately_started_scheduler_and_worker(reference, tmp_path):
    f = tmp_path / "scheduler.json"
    (tmp_path / "dask-config").mkdir()
    (tmp_path / "dask-config" / "explorer.yaml").write_text(  # the README's worker config
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n")
    log = open(tmp_path / "dask.log", "w")
    procs = []
    try:
        procs.append(subprocess.Popen(
            _dask("scheduler", "--scheduler-file", str(f), "--port", "0", "--no-dashboard",
                  "--host", "127.0.0.1"), env=ENV, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while not f.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f.exists(), (tmp_path / "dask.log").read_text()
        procs.append(subprocess.Popen(
            _dask("worker", "--scheduler-file", str(f), "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--host", "127.0.0.1"),
            env={**ENV, "DASK_CONFIG": str(tmp_path / "dask-config")}, stdout=log,
            stderr=subprocess.STDOUT))
        address = json.loads(f.read_text())["address"]
        points = SMALL
        summary = run_sweep(points, tmp_path / "out", scheduler=address)
        assert summary["ok"] == 2
        rows = read_table(tmp_path / "out" / "results.csv")
        assert same_results(rows, rows_for(reference["rows"], points)) == []
        # the scheduler file works as well as the address; nothing left to compute
        assert run_sweep(points, tmp_path / "out", scheduler=str(f))["computed"] == 0
        from dask.distributed import Client

        with Client(address, timeout=30) as client:
            assert list(client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_").values()) == [None]
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        log.close()


# ------------------------------------------------------------------ (e) failing points
def test_failing_points_are_recorded_and_the_sweep_goes_on(cluster, tmp_path):
    good = POINTS[0]
    common = dict(kind="phi4", size=8, beta=0.5, family="phi4", J=1, method="score",
                  n_samples=32, steps=20, burn_in=20, sampler="mala", seed=0)
    # a parameter the generator refuses (a ValueError inside the task) ...
    bad = make_point(1, **common, lam=-1.0, n_data=128)
    # ... and a broken point that makes the task itself raise (TypeError: not a recorded
    # error), given up by Dask after its retries
    broken = make_point(2, **common, lam=1.0, n_data=None)
    points = [{**good, "index": 0}, bad, broken]
    summary = run_sweep(points, tmp_path, scheduler=cluster)
    assert summary["ok"] == 1 and summary["failed"] == 2
    rows = read_table(tmp_path / "results.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "failed"]
    assert rows[1]["message"].startswith("generate: ValueError: lambda must be")
    assert rows[2]["message"].startswith("task: TypeError")
    assert rows[1]["binder_data"] == "" and rows[1]["explorer_version"]
    # a rerun tries the failed points again, never the ok one
    again = run_sweep(points, tmp_path, scheduler=cluster)
    assert again["skipped"] == 1 and again["computed"] == 2 and again["failed"] == 2
    assert len(read_table(tmp_path / "results.csv")) == 3


def test_run_point_for_gaussian_and_turbulence_fields():
    """Other kinds in one process: no magnetisation columns; a model refused by the sampler
    (turbulence at 16x16 with 8 snapshots has been unbounded) is a failed row, never raised."""
    from explorer.sweep import run_point

    g = make_grid("gaussian", size=16, eta=2.0, n_samples=16, steps=20)[0]
    assert g["family"] == "gaussian" and g["beta"] is None and g["eta"] == 2.0
    r = run_point(g)
    assert r["status"] == "ok" and r.get("binder_data") is None
    assert math.isfinite(r["spectrum_log_ratio"]) and r["family"] == "gaussian"
    t = make_grid("turbulence", size=16, drag=0.1, n_samples=8, steps=20)[0]
    r = run_point(t)
    assert r["status"] in ("ok", "failed")
    if r["status"] == "failed":
        assert r["message"].startswith(("generate: ", "fit: ", "sample: ", "compare: "))


# ------------------------------------------------------------------ curves
def test_curves_per_size_for_data_and_model(reference):
    c = curves(reference["rows"])
    assert c["sizes"] == [8, 16]
    for q in ("binder", "absm", "chi"):
        for L in (8, 16):
            curve = c[q][L]
            assert curve["beta"] == [0.5, 0.68]
            assert len(curve["data"]) == len(curve["model_err"]) == 2
            assert all(e >= 0 for e in curve["data_err"] + curve["model_err"])
    r = by_key(reference["rows"])[POINTS[3]["key"]]
    assert c["binder"][16]["data"][1] == float(r["binder_data"])
    assert c["settings"][16]["J"] == 1
    crossing = binder_crossings(c)
    assert len(crossing) == 1 and crossing[0]["sizes"] == [8, 16]
    assert len(crossing[0]["difference"]) == len(crossing[0]["difference_err"]) == 2
    # a synthetic pair of curves crossing at 0.65: found, interpolated and significant
    fake = {"sizes": [16, 32], "binder": {
        16: {"beta": [0.6, 0.7], "data": [0.5, 0.6], "data_err": [0.01, 0.01]},
        32: {"beta": [0.6, 0.7], "data": [0.4, 0.7], "data_err": [0.01, 0.01]}}}
    (x,) = binder_crossings(fake)
    assert x["beta"] == pytest.approx(0.65) and x["crossings"][0]["significance"] > 5
    assert curves(reference["out"])["binder"][8]["data"] == c["binder"][8]["data"]


# ------------------------------------------------------------------ (f) ensembles
def test_ensemble_agrees_with_a_single_process_run(cluster, tmp_path):
    """256 fields of L = 16 at beta = 0.68 in 4 chunks on 2 workers, against 256 fields from one
    generate_phi4 call with another seed: U and chi agree within 3 combined jackknife errors."""
    from explorer.core.fields.phi4 import generate_phi4
    from explorer.sweep.point import magnetisation_observables

    reports = list(iter_ensemble("phi4", size=16, n_samples=256, chunk=64, beta=0.68, lam=1.0,
                                 seed=0, out_dir=tmp_path, scheduler=cluster))
    assert reports[1].info["submitted"] == 4
    assert [r.step for r in reports[2:-1]] == [1, 2, 3, 4]
    assert all("time_left" in r.info for r in reports)
    res = reports[-1].result
    assert res["n_fields"] == 256 and res["chunks"] == 4 and res["computed"] == 4
    assert sorted(p.name for p in tmp_path.glob("chunk_*.npz")) == [
        f"chunk_{i:04d}.npz" for i in range(4)]
    fs = load_ensemble(tmp_path)
    assert fs.fields.shape == (256, 16, 16)
    o = ensemble_observables(tmp_path)
    assert o == res["observables"]
    single = magnetisation_observables(generate_phi4(size=16, n_samples=256, beta=0.68,
                                                     seed=99).fields)
    for q, dq in (("binder", "binder_err"), ("chi", "chi_err")):
        bound = 3 * math.hypot(o[dq], single[dq])
        assert abs(o[q] - single[q]) < bound, (q, o[q], single[q], bound)
    # chunks are independent streams of one seed: distinct fields, and a rerun keeps them all;
    # a deleted chunk is regenerated bit for bit (its own SeedSequence child)
    m = [np.load(tmp_path / f"chunk_{i:04d}.npz")["fields"] for i in range(4)]
    assert not np.array_equal(m[0], m[1])
    (tmp_path / "chunk_0002.npz").unlink()
    again = run_ensemble("phi4", size=16, n_samples=256, chunk=64, beta=0.68, lam=1.0, seed=0,
                         out_dir=tmp_path, scheduler=cluster)
    assert again["computed"] == 1 and again["skipped"] == 3
    assert np.array_equal(np.load(tmp_path / "chunk_0002.npz")["fields"], m[2])
    with pytest.raises(ValueError, match="beta=0.68, not 0.5"):
        run_ensemble("phi4", size=16, n_samples=256, chunk=64, beta=0.5, out_dir=tmp_path,
                     scheduler="tcp://127.0.0.1:1")


def test_ensemble_chunk_streams_are_seedsequence_children():
    children = np.random.SeedSequence(7).spawn(3)
    for i, child in enumerate(children):
        mine = np.random.SeedSequence(7, spawn_key=(i,))
        assert np.array_equal(mine.generate_state(4), child.generate_state(4))
    assert ens.chunk_sizes(10, 4) == [4, 4, 2]


# ------------------------------------------------------------------ the CLI glue
def parser():
    p = argparse.ArgumentParser(prog="explorer")
    sub = p.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    return p


def test_cli_sweep_writes_the_contract_columns(reference, cluster, tmp_path, capsys):
    argv = ["sweep", "phi4", "--beta", "0.5", "0.68", "--size", "8", "--samples", "32",
            "--data", "128", "--family", "phi4", "--depth", "1", "--steps", "20",
            "--scheduler", cluster, "--out", str(tmp_path / "s")]
    result = cmd_sweep(parser().parse_args(argv), argv)
    assert result["ok"] == 2 and result["failed_points"] == []
    rows = read_table(tmp_path / "s" / "results.csv")
    for col in ("beta", "size", "binder_data", "binder_samples", "seconds", "status"):
        assert col in rows[0]
    assert same_results(rows, rows_for(reference["rows"], SMALL)) == []
    err = capsys.readouterr().err
    assert "2/2 points done" in err and "time left" in err


@pytest.mark.parametrize("extra, message", [
    (["--slope", "2"], "--slope is not an option of phi4"),
    (["--depth", "5"], "too deep"),
    (["--size", "12"], "power of two"),
    (["--samples", "0"], "n_samples"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers sizes the local"),
])
def test_cli_sweep_refuses_bad_input_before_any_cluster(extra, message, tmp_path, monkeypatch):
    import explorer.sweep.runner as runner

    def no_cluster(*a, **k):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(runner, "dask_client", no_cluster)
    argv = ["sweep", "phi4", "--size", "16", "--out", str(tmp_path / "s"), *extra]
    with pytest.raises(ValueError, match=message) as e:
        cmd_sweep(parser().parse_args(argv), argv)
    assert "\n" not in str(e.value)


def test_cli_ensemble_and_the_generate_store_wiring(cluster, tmp_path, capsys):
    argv = ["ensemble", "phi4", "--size", "8", "--samples", "64", "--chunk", "32", "--seed",
            "3", "--store", str(tmp_path / "e"), "--scheduler", cluster]
    result = cmd_ensemble(parser().parse_args(argv), argv)
    assert result["n_fields"] == 64 and result["chunks"] == 2
    assert "2/2 chunks done" in capsys.readouterr().err
    # what `generate phi4 ... --store DIR` passes: the generate arguments plus --store
    ns = argparse.Namespace(command="generate", kind="phi4", size=8, samples=40, beta=0.5,
                            lam=1.0, seed=0, chains=None, local_only=False,
                            require_equilibrium=False, quiet=True, json=False,
                            store=str(tmp_path / "g"), scheduler=cluster)
    out = cmd_ensemble(ns, ["generate", "phi4", "--store", str(tmp_path / "g")])
    assert out["chunks"] == 1 and out["n_fields"] == 40
    for bad, message in ((dict(chunk=1), "chunk must be"), (dict(size=12), "power of two"),
                         (dict(local_only=True), "--local-only is not supported")):
        with pytest.raises(ValueError, match=message):
            cmd_ensemble(argparse.Namespace(**{**vars(ns), **bad}), [])


def test_volatile_columns_are_exactly_the_timings_and_placement():
    assert set(VOLATILE_COLUMNS) == {"seconds", "seconds_generate", "seconds_fit",
                                     "seconds_sample", "seconds_compare", "cpu_seconds",
                                     "worker", "finished_at"}
    assert set(COMPARED_COLUMNS) | set(VOLATILE_COLUMNS) == set(COLUMNS)


@pytest.mark.slow
def test_cli_sweep_contract_at_full_size(tmp_path, capsys):
    """The issue's command as written (2 x 2 grid, L = 16 and 32, 64 samples, depth 2, 200
    sampler steps per scale; ~1-3 min on 2 cores), on a local cluster it starts itself."""
    argv = ["sweep", "phi4", "--beta", "0.5", "0.68", "--size", "16", "32", "--samples", "64",
            "--family", "phi4", "--depth", "2", "--workers", "2", "--out", str(tmp_path)]
    result = cmd_sweep(parser().parse_args(argv), argv)
    assert result["ok"] == 4
    rows = read_table(tmp_path / "results.csv")
    assert [(r["beta"], r["size"]) for r in rows] == [("0.5", "16"), ("0.68", "16"),
                                                     ("0.5", "32"), ("0.68", "32")]
    for r in rows:
        for col in ("binder_data", "binder_samples", "seconds"):
            assert math.isfinite(float(r[col]))
        if r["beta"] == "0.68":  # 64 fields: sigma ~0.015 at beta_c
            assert abs(float(r["binder_data"]) - 0.61) < 0.08
    assert "4/4 points done" in capsys.readouterr().err
