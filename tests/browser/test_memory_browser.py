"""Memory over many sessions: a real ``panel serve`` (sessions expire 1 s after their tab closes),
20 browser contexts one after the other, each opening the page, fitting and sampling once with
small settings and closing. After the sessions are destroyed and garbage is collected, the
server's RSS has grown by less than 100 MB over a baseline taken after two warm-up sessions, and
no explorer session is left alive.

Slow (20-40 s a session on a busy 2-core machine: 10-15 minutes): ``pytest -m slow tests/browser``."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.browser.test_dashboard_browser import LONG, wait_status
from tests.conftest import ARTIFACTS, ROOT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(3600)]

SESSIONS = 20
MAX_GROWTH_MB = 100.0
SMALL = "?data=phi4_L64_beta0.68.npz&family=phi4&J=1&n_samples=2&steps=20"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    probe_file = tmp_path_factory.mktemp("probe") / "probe.json"
    port = free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(ROOT / "explorer" / "app.py"),
           str(ROOT / "tests" / "browser" / "memory_probe.py"), "--port", str(port),
           "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
           "--check-unused-sessions", "1000", "--unused-session-lifetime", "1000"]
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"panel-serve-memory-{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1",
                                 "EXPLORER_MEMORY_PROBE": str(probe_file)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(base + "/app", timeout=60).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("panel serve did not start")
            time.sleep(0.3)
    yield base, probe_file
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def probe(base, probe_file) -> dict:
    urllib.request.urlopen(base + "/memory_probe", timeout=60).close()
    return json.loads(probe_file.read_text())


def settled(base, probe_file, timeout_s=120) -> dict:
    """Probe until every explorer session has been destroyed (the probe's own page has none)."""
    t0 = time.monotonic()
    while True:
        p = probe(base, probe_file)
        if p["sessions"] == 0 or time.monotonic() - t0 > timeout_s:
            return p
        time.sleep(1.0)


def one_session(browser, url) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(url, timeout=LONG)  # a busy machine: the default 30 s is not enough
    page.get_by_text("Binder U").first.wait_for(timeout=LONG)
    page.locator(".view-model").get_by_role("button", name="Fit", exact=True).click()
    page.get_by_text("phi4, J = 1").first.wait_for(timeout=LONG)
    sample = page.locator(".view-sampling").get_by_role("button", name="Sample", exact=True)
    t0 = time.monotonic()
    while not sample.is_enabled() and time.monotonic() - t0 < 60:
        page.wait_for_timeout(100)
    sample.click()
    wait_status(page, "sample", r"sample\*\* done|sample done")
    ctx.close()


def test_twenty_sessions_grow_the_server_by_less_than_100_mb(browser, server):
    base, probe_file = server
    url = base + "/app" + SMALL
    for _ in range(2):  # warm-up: imports, caches, compiled filters
        one_session(browser, url)
    before = settled(base, probe_file)
    assert before["sessions"] == 0, before
    t0 = time.monotonic()
    for _ in range(SESSIONS):
        one_session(browser, url)
    after = settled(base, probe_file)
    growth = after["rss_mb"] - before["rss_mb"]
    (ARTIFACTS / "memory_sessions.json").write_text(json.dumps(
        {"sessions": SESSIONS, "rss_before_mb": before["rss_mb"],
         "rss_after_mb": after["rss_mb"], "growth_mb": growth,
         "seconds": time.monotonic() - t0}, indent=1))
    assert after["sessions"] == 0, f"{after['sessions']} explorer sessions still alive"
    assert growth < MAX_GROWTH_MB, (before, after)
