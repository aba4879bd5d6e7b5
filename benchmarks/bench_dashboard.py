"""Dashboard responsiveness: time to first render, update rate while sampling (64² and 128²).

Prints JSON.
* ``first_render``: ``panel serve explorer/app.py`` on a free port, Debian's chromium through
  Playwright; seconds from navigation to the default field drawn (a canvas) with its observables
  table, for a first and a second page load (the second shows the per-page cost without the
  server's warm-up). Skipped when chromium or Playwright is missing.
* ``sampling_<L>``: the page's periodic callback (:meth:`Dashboard.tick`) driven in-process every
  ``TICK_MS`` while the sampler runs on its thread, as the server does: delivered live-image updates
  per second, tick duration (median, max), and the sampler's own rate with and without the page
  polling it (ratio: what the live view costs the computation).

    python benchmarks/bench_dashboard.py [--no-browser] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_render() -> dict:
    exe = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright not installed"}
    if exe is None:
        return {"skipped": "chromium not installed"}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(ROOT / "explorer/app.py"),
                             "--port", str(port), "--address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/app"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url, timeout=60):
                    break
            except OSError:
                if time.perf_counter() - t0 > 120:
                    return {"skipped": "server did not start"}
                time.sleep(0.2)
        server_ready = time.perf_counter() - t0
        out = {"server_start_seconds": server_ready}
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=exe, args=args)
            for name in ("first_page_seconds", "second_page_seconds"):
                page = b.new_page(viewport={"width": 1500, "height": 950})
                t = time.perf_counter()
                page.goto(url, timeout=120_000)
                page.get_by_text("Binder U").first.wait_for(timeout=120_000)
                page.locator("canvas").first.wait_for(timeout=120_000)
                out[name] = time.perf_counter() - t
                page.close()
            b.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sampling_rate(asset: str, family: str, J: int, seconds: float) -> dict:
    import holoviews as hv

    from explorer.ui.dashboard import TICK_MS, Dashboard
    from explorer.ui.session import Session
    from explorer.ui.state import FieldData

    hv.extension("bokeh")
    s = Session(data=FieldData(asset=asset), family=family, J=J, n_samples=16, steps=5000)
    d = Dashboard(session=s)
    s.start_fit()
    s.wait("fit")
    d.tick()
    L = s.L

    def run(poll: bool) -> tuple[float, list[float], int]:
        s.start_sample()
        job = s.jobs["sample"]
        while job.reports < 2:
            time.sleep(0.01)
        r0, t0 = job.reports, time.perf_counter()
        ticks, updates, last = [], 0, None
        while time.perf_counter() - t0 < seconds:
            time.sleep(TICK_MS / 1000)
            if poll:
                t = time.perf_counter()
                d.tick()
                ticks.append(time.perf_counter() - t)
                img = d.sampling_view.live.object
                if img is not last:
                    updates += 1
                    last = img
        rate = (job.reports - r0) / (time.perf_counter() - t0)
        s.stop("sample")
        s.wait("sample", timeout=60)
        return rate, ticks, updates

    rate_alone, _, _ = run(poll=False)
    rate_polled, ticks, updates = run(poll=True)
    d.shutdown()
    return {"L": L, "family": family, "J": J, "tick_ms": TICK_MS,
            "live_updates_per_second": updates / seconds,
            "tick_seconds_median": float(np.median(ticks)), "tick_seconds_max": float(np.max(ticks)),
            "sampler_reports_per_second_alone": rate_alone,
            "sampler_reports_per_second_with_page": rate_polled,
            "ratio_sampler_with_page_over_alone": rate_polled / rate_alone}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if not a.no_browser:
        out["first_render"] = first_render()
    out["sampling_64"] = sampling_rate("phi4_L64_beta0.68.npz", "phi4", 2, a.seconds)
    out["sampling_128"] = sampling_rate("turbulence_L128.npz", "gaussian", 2, a.seconds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
