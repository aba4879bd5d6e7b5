#!/usr/bin/env python3
"""Rebuild assets/screenshot.png (the README picture): serve the app, run the "Critical φ⁴"
story (fit, sample, compare) and photograph the Compare view with the story's text above it.
Needs Debian's chromium + Playwright.

    .venv/bin/python scripts/readme_screenshot.py
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "explorer/app.py", "--port",
                             str(port), "--address", "127.0.0.1"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/app"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url, timeout=60).close()
                break
            except OSError:
                time.sleep(0.2)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"), args=args)
            pg = b.new_page(viewport={"width": 1500, "height": 1100})
            pg.goto(url, timeout=240_000)
            pg.get_by_text("Binder U").first.wait_for(timeout=240_000)
            pg.locator(".story-critical-phi4").get_by_role("button").click()
            pg.get_by_text("phi4, J = 2").first.wait_for(timeout=600_000)
            pg.get_by_text("histogram total variation").first.wait_for(timeout=900_000)
            pg.locator(".scattering-table").first.wait_for(timeout=240_000)
            # the Compare card at the top of the window (the template scrolls its own area)
            pg.locator(".view-compare").first.evaluate("el => el.scrollIntoView()")
            pg.wait_for_timeout(2000)  # the last figures lay out
            pg.screenshot(path=str(ROOT / "assets" / "screenshot.png"))
            b.close()
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
