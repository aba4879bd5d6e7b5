"""Dashboard responsiveness: time to first render, update rate while sampling (64² and 128²).

Prints JSON; the load average (1 min) is recorded with every browser measure, CPU seconds next to
the wall times (``psutil``, a dependency of Dask's distributed).
* ``first_render``: ``panel serve explorer/app.py`` on a free port (this checkout's code), Debian's
  chromium through Playwright. ``server_session``: one plain GET of the page (the server builds a
  session's document). Then three page loads, each in a fresh browser context: seconds from
  navigation to the default field drawn (a canvas) with its observables table (the first views),
  and to every view on the page; the server's and the browser's CPU seconds over the load; the
  Bokeh models in the browser's document at first render and at the end. The first load pays the
  server's warm-up. Skipped when chromium or Playwright is missing. The browser's CPU seconds are
  those of this process's children without the server's.
* ``first_render_side_by_side`` (``--before REV``, instead of everything else): this checkout and
  the code of git revision REV served at once, their page loads alternating in one browser, with
  the requests, their bytes and the browser's CPU seconds until the first views; medians and
  ratios after / before.
* ``browser_sampling_<L>``: the same page in the browser, fitted (depth 0: the live field has its
  full size at once) and sampling; live-image updates per second *as the page sees them* (the
  image polled every 5 ms in the page), the mean size of one update, then a click on Stop: seconds
  until the Stop button is disabled (the server saw the run end and told the page).
* ``sampling_<L>``: the page's periodic callback (:meth:`Dashboard.tick`) driven in-process every
  ``TICK_MS`` while the sampler runs on its thread, as the server does: delivered live-image updates
  per second, tick duration (median, max), and the sampler's own rate with and without the page
  polling it (ratio: what the live view costs the computation).

    python benchmarks/bench_dashboard.py [--no-browser] [--seconds 8]
    python benchmarks/bench_dashboard.py --before main [--rounds 5]
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
import tarfile
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(proc: psutil.Process, children: bool = False) -> float:
    """User + system CPU seconds of a process (and its children: the browser's processes)."""
    total = 0.0
    for q in [proc, *(proc.children(recursive=True) if children else [])]:
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a browser process that ended meanwhile
            pass
    return total


def browser_cpu(me: psutil.Process, servers: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds of each of this process's children (the browser's processes, Playwright's
    driver) but the ``servers`` and theirs (children of this process too), by process id."""
    skip = {q.pid for srv in servers for q in [srv, *srv.children(recursive=True)]}
    out = {}
    for q in me.children(recursive=True):
        if q.pid not in skip:
            try:
                t = q.cpu_times()
                out[q.pid] = t.user + t.system
            except psutil.Error:  # a browser process that ended meanwhile
                pass
    return out


def cpu_since(before: dict[int, float], now: dict[int, float]) -> float:
    """CPU seconds spent between two :func:`browser_cpu` snapshots by the processes running at
    the second (one that ended meanwhile, such as a closed page's renderer, no longer counts:
    subtracting a sum over processes would then go negative)."""
    return sum(c - before.get(pid, 0.0) for pid, c in now.items())


def load() -> float:
    return os.getloadavg()[0]


@contextmanager
def server(root: Path = ROOT):
    """``panel serve explorer/app.py`` of the checkout ``root`` (its code first on the path) on a
    free port: yields (url, server process, seconds to start), or a reason string."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(root / "explorer/app.py"),
                             "--port", str(port), "--address", "127.0.0.1",
                             "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
                            env=env)
    url = f"http://127.0.0.1:{port}/app"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url, timeout=60):
                    break
            except OSError:
                if time.perf_counter() - t0 > 120:
                    yield "server did not start"
                    return
                time.sleep(0.2)
        yield url, psutil.Process(proc.pid), time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def chromium():
    """Debian's chromium through Playwright (headless, no GPU): yields the browser, or a reason
    string when chromium or Playwright is missing."""
    exe = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        yield "playwright not installed"
        return
    if exe is None:
        yield "chromium not installed"
        return
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=args)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def served():
    """``panel serve explorer/app.py`` on a free port (this checkout's code first on the path)
    and Debian's chromium through Playwright: yields (url, server process, browser), or a
    reason string when chromium, Playwright or the server is missing."""
    with server() as srv:
        if isinstance(srv, str):
            yield srv
            return
        url, proc, ready = srv
        with chromium() as b:
            yield b if isinstance(b, str) else (url, proc, b, ready)


MODELS = "() => { const d = window.Bokeh && Bokeh.documents[0]; return d ? d.all_models.size : -1 }"


def page_load(browser, url: str, server: psutil.Process, servers: list[psutil.Process],
              requests: bool = False) -> dict:
    """One page load in a fresh browser context: seconds from navigation to the default field
    drawn (a canvas) with its observables table (the first views), and to every view on the
    page; the server's and the browser's CPU seconds over the load (``servers``: every server
    process running, not counted as the browser's); the Bokeh models in the browser's document
    at first render and at the end. ``requests``: also the requests the page made until every
    view was there, and their bytes (the response bodies)."""
    me = psutil.Process()
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    responses: list = []
    if requests:
        page.on("response", lambda r: responses.append(r))
    c_s, c_b, t = cpu_seconds(server), browser_cpu(me, servers), time.perf_counter()
    page.goto(url, timeout=120_000)
    page.get_by_text("Binder U").first.wait_for(timeout=120_000)
    page.locator("canvas").first.wait_for(timeout=120_000)
    first = time.perf_counter() - t
    c_first = cpu_since(c_b, browser_cpu(me, servers)) if requests else None
    models_first = page.evaluate(MODELS)
    for view in ("model", "sampling", "compare", "export", "sweep"):
        page.locator(f".view-{view}").first.wait_for(state="attached", timeout=120_000)
    out = {"first_views_seconds": first,
           "whole_page_seconds": time.perf_counter() - t,
           "server_cpu_seconds": cpu_seconds(server) - c_s,
           "browser_cpu_seconds": cpu_since(c_b, browser_cpu(me, servers)),
           "bokeh_models_first_views": models_first,
           "bokeh_models_whole_page": page.evaluate(MODELS), "load": load()}
    if requests:
        out["browser_cpu_seconds_to_first_views"] = c_first
        bodies = [len(r.body()) for r in responses if r.ok and r.url.startswith("http")
                  and r.status != 204]
        out.update({"requests": len(responses), "response_bytes": sum(bodies)})
    page.close()
    return out


def first_render() -> dict:
    """Page loads: seconds to the default field drawn with its observables table (the first
    views), then to every view on the page; the server's and the browser's CPU seconds over each
    load; the Bokeh models in the browser at first render and at the end."""
    with served() as srv:
        if isinstance(srv, str):
            return {"skipped": srv}
        url, server, browser, ready = srv
        out = {"server_start_seconds": ready}
        c, t = cpu_seconds(server), time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:  # the server builds a session
            r.read()
        out["server_session"] = {"seconds": time.perf_counter() - t,
                                 "cpu_seconds": cpu_seconds(server) - c, "load": load()}
        for name in ("first_page", "second_page", "third_page"):
            out[name] = page_load(browser, url, server, [server])
        return out


def extract_revision(rev: str, into: Path) -> str:
    """The ``explorer`` package and the shipped data at git revision ``rev``, extracted under
    ``into`` (``git archive``: nothing written in the repository); its commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], check=True,
                            capture_output=True, text=True).stdout.strip()
    tar = into / "src.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "explorer", "assets"],
                       check=True, stdout=f)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    tar.unlink()
    return commit


def _summary(loads: list[dict]) -> dict:
    keys = ["first_views_seconds", "whole_page_seconds", "browser_cpu_seconds_to_first_views",
            "browser_cpu_seconds", "server_cpu_seconds"]
    return {f"median_{k}": float(np.median([x[k] for x in loads])) for k in keys}


def first_render_side_by_side(before: str, rounds: int) -> dict:
    """The first render of this checkout ("after") and of git revision ``before``, both served
    at once and loaded alternately in one browser (``rounds`` loads each, the order swapped
    every round), so that both see the same machine load; each load as :func:`page_load`, with
    its requests and bytes. Ratios after / before of the medians."""
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        if isinstance(browser, str):
            return {"skipped": browser}
        commit = extract_revision(before, Path(tmp))
        with server(Path(tmp)) as old, server(ROOT) as new:
            if isinstance(old, str) or isinstance(new, str):
                return {"skipped": old if isinstance(old, str) else new}
            sides = {"before": old, "after": new}
            procs = [old[1], new[1]]
            for url, _, _ in sides.values():  # the servers' warm-up: one session each
                with urllib.request.urlopen(url, timeout=120) as r:
                    r.read()
            loads: dict[str, list[dict]] = {"before": [], "after": []}
            for i in range(rounds):
                for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
                    url, proc, _ = sides[side]
                    loads[side].append(page_load(browser, url, proc, procs, requests=True))
    out = {"before_commit": commit, "rounds": rounds,
           "before": {**_summary(loads["before"]), "loads": loads["before"]},
           "after": {**_summary(loads["after"]), "loads": loads["after"]}}
    out["ratio_after_over_before"] = {
        k: out["after"][k] / out["before"][k] for k in out["after"] if k.startswith("median_")}
    return out


LIVE_JS = """async ([host, status, seconds]) => {
  const img = () => { const r = host.shadowRoot; const i = r && r.querySelector("img");
                      return i ? [i.src, i.naturalWidth] : [null, 0]; };
  const text = n => {  // the text of an element, shadow roots included
    let t = n.shadowRoot ? text(n.shadowRoot) : "";
    for (const c of n.childNodes) t += c.nodeType === 3 ? c.textContent : text(c);
    return t;
  };
  const reports = () => { const m = /update (\\d+)/.exec(text(status)); return m ? +m[1] : 0; };
  const pause = ms => new Promise(r => setTimeout(r, ms));
  let [last] = img(), n = 0, bytes = 0, side = 0;
  const r0 = reports();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await pause(5);
    const [src, w] = img();
    if (src !== last) { n += 1; bytes += src.length; last = src; side = w || side; }
  }
  return {updates: n, seconds: (performance.now() - t0) / 1000,
          sampler_reports_shown: reports() - r0,
          mean_update_chars: n ? bytes / n : 0, image_pixels_side: side};
}"""


def browser_live(asset: str, family: str, L: int, seconds: float, J: int | None = 0,
                 n_samples: int = 16, stops: int = 3) -> dict:
    """In the browser: fit through the page, click Sample and, once the live field has its full
    ``L`` × ``L`` size, count for ``seconds`` the live image's updates the page receives (polled
    every 5 ms in the page; server and browser CPU over that window) and the sampler's reports
    its status line counted meanwhile (the live image can only follow the reports, one every 10
    sampler steps); then click Stop: seconds
    until the Stop button is disabled (the server saw the run end and told the page) and until
    the status says it stopped — Playwright's click with its own checks included, an upper
    bound; ``stops`` times (sampling again for 2 s in between). ``J``: the model's depth (None: the data's default); at depth 0 the live field has
    its full size from the first step."""
    with served() as srv:
        if isinstance(srv, str):
            return {"skipped": srv}
        url, server, browser, _ = srv
        me = psutil.Process()
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        depth = "" if J is None else f"&J={J}"
        page.goto(f"{url}?data={asset}&family={family}{depth}&n_samples={n_samples}&steps=5000",
                  timeout=120_000)
        page.locator(".view-model").get_by_role("button", name="Fit", exact=True).click(
            timeout=120_000)
        page.locator(".fit-status").get_by_text("done").first.wait_for(timeout=300_000)
        sample = page.locator(".view-sampling").get_by_role("button", name="Sample", exact=True)
        t0 = time.perf_counter()
        while not sample.is_enabled() and time.perf_counter() - t0 < 60:
            page.wait_for_timeout(100)
        stop = page.locator(".view-sampling").get_by_role("button", name="Stop")
        live = page.locator(".live-field").first
        sample.click()
        t0 = time.perf_counter()
        page.get_by_text(f"{L}×{L} at this scale").first.wait_for(timeout=300_000)
        waited = time.perf_counter() - t0
        c_s, c_b = cpu_seconds(server), browser_cpu(me, [server])
        status = page.locator(".sample-status").first.element_handle()
        r = page.evaluate(LIVE_JS, [live.element_handle(), status, seconds])
        cpu = {"server_cpu_seconds": cpu_seconds(server) - c_s,
               "browser_cpu_seconds": cpu_since(c_b, browser_cpu(me, [server]))}
        out = {"L": L, "family": family, "J": J, "n_samples": n_samples, "load": load(),
               "live_updates_per_second": r["updates"] / r["seconds"], **r, **cpu,
               "seconds_from_sample_click_to_full_size": waited}
        disabled, stopped = [], []
        for i in range(stops):
            if i:  # sample again for 2 s
                sample.click()
                page.locator(".sample-status").get_by_text("running").first.wait_for(
                    timeout=120_000)
                page.wait_for_timeout(2000)
            if not stop.is_enabled():  # the run ended by itself
                continue
            t = time.perf_counter()
            stop.click()
            while stop.is_enabled() and time.perf_counter() - t < 60:
                pass  # each check is a round trip to the page (a few ms)
            disabled.append(time.perf_counter() - t)
            page.locator(".sample-status").get_by_text("stopped").first.wait_for(
                timeout=60_000)
            stopped.append(time.perf_counter() - t)
        out.update({"stop_click_to_button_disabled_seconds": disabled,
                    "stop_click_to_status_stopped_seconds": stopped, "load_after": load()})
        page.close()
        return out


def sampling_rate(asset: str, family: str, J: int, seconds: float) -> dict:
    """The in-process tick rate; ``J`` is a request: data that start at their deepest depth
    (φ⁴, turbulence) keep it, and the depth used is reported."""
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
        ticks, updates, last, due = [], 0, None, t0
        while time.perf_counter() - t0 < seconds:
            # every TICK_MS on a fixed grid, as the server's periodic callback (a late tick is
            # not made up for)
            due = max(due + TICK_MS / 1000, time.perf_counter())
            time.sleep(max(0.0, due - time.perf_counter()))
            if poll:
                t = time.perf_counter()
                d.tick()
                ticks.append(time.perf_counter() - t)
                img = d.sampling_view.live.object
                if img is not last:
                    updates += 1
                    last = img
        rate = (job.reports - r0) / (time.perf_counter() - t0)
        t = time.perf_counter()
        s.stop("sample")  # what the Stop button does; then the page's ticks see the end
        while job.running and time.perf_counter() - t < 60:
            time.sleep(0.002)
        ended = time.perf_counter() - t
        d.tick()
        stops.append({"stop_to_job_ended_seconds": ended,
                      "stop_to_next_tick_done_seconds": time.perf_counter() - t,
                      "stop_button_disabled_then": d.sampling_view.controls.stop_button.disabled})
        s.wait("sample", timeout=60)
        return rate, ticks, updates

    stops: list[dict] = []
    rate_alone, _, _ = run(poll=False)
    rate_polled, ticks, updates = run(poll=True)
    d.shutdown()
    return {"L": L, "family": family, "J": s.J, "tick_ms": TICK_MS,
            "live_updates_per_second": updates / seconds,
            "tick_seconds_median": float(np.median(ticks)), "tick_seconds_max": float(np.max(ticks)),
            "sampler_reports_per_second_alone": rate_alone,
            "sampler_reports_per_second_with_page": rate_polled,
            "ratio_sampler_with_page_over_alone": rate_polled / rate_alone,
            # in-process, without the next tick's wait (≤ TICK_MS) and the browser's round trip
            "stop_in_process": stops[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--before", default=None, metavar="REV",
                    help="only the first render: this checkout against git revision REV, served "
                         "side by side and loaded alternately")
    ap.add_argument("--rounds", type=int, default=5, help="page loads of each side (--before)")
    a = ap.parse_args()
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if a.before:
        out["first_render_side_by_side"] = first_render_side_by_side(a.before, a.rounds)
        print(json.dumps(out, indent=2))
        return
    if not a.no_browser:
        out["first_render"] = first_render()
        out["browser_sampling_64"] = browser_live("phi4_L64_beta0.68.npz", "phi4", 64,
                                                  a.seconds)
        # depth 0 on turbulence: the phi4 family (the Gaussian family's depth-0 energy is not
        # bounded below there, and a deep model reaches 128² only after minutes)
        out["browser_sampling_128"] = browser_live("turbulence_L128.npz", "phi4", 128,
                                                   a.seconds)
    out["sampling_64"] = sampling_rate("phi4_L64_beta0.68.npz", "phi4", 2, a.seconds)
    out["sampling_128"] = sampling_rate("turbulence_L128.npz", "gaussian", 2, a.seconds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
