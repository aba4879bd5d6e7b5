"""The dashboard for a class in a real browser: every figure of every view drawn at 1280, 1500 and
1920 px, Sample disabled (with its reason) until a model exists, a story loads and fits, and a
copied URL reopens the same settings in a fresh browser context.

"Drawn" is measured on the element's screenshot: its size, and the share of pixels that are not
the white background (axes, labels, lines, image cells); an empty or collapsed figure fails."""

import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.test_dashboard_browser import LONG, open_app, set_int, status_text, text_of

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1500, 1920)
MIN_SHARE = 0.03  # measured: line plots with axes 4.7-7 %, images 15-57 %; a placeholder is a title
MIN_SIDE = (250, 200)  # px: a figure collapsed to its labels is far smaller
FIGURES = {
    "Data": ["data-field", "data-histogram", "data-spectrum"],
    "Model": ["model-potential", "model-kernels", "model-flow"],
    "Compare": ["compare-spectra", "compare-histograms", "compare-eigen",
                "compare-coupling-data", "compare-coupling-samples", "compare-kurtosis",
                "compare-mixing", "compare-scattering-s12", "compare-scattering-s3",
                "compare-scattering-s4"],
}


def drawn_share(png: bytes) -> float:
    """Share of the pixels of a screenshot that differ from white (the page's background)."""
    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)
    return float((np.abs(a - 255).sum(axis=-1) > 30).mean())


def wait_url(page, pattern, timeout_s=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if re.search(pattern, page.url):
            return page.url
        page.wait_for_timeout(200)
    raise AssertionError(f"the URL never matched {pattern!r}: {page.url}")


def wait_enabled(button, timeout_s=LONG / 1000):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if button.is_enabled():
            return
        button.page.wait_for_timeout(200)
    raise AssertionError("the button never became enabled")


def test_every_figure_is_drawn_at_every_width(browser, served_app, artifacts):
    ctx = browser.new_context(viewport={"width": WIDTHS[0], "height": 1000})
    page = ctx.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # small settings from the link itself
    open_app(page, served_app + "?J=1&n_samples=4&steps=40")
    sample = page.locator(".view-sampling").get_by_role("button", name="Sample", exact=True)
    # before any model: Sample disabled, with the reason beside it
    assert sample.is_disabled()
    assert "fit a model first" in text_of(page, "sample-hint")
    page.locator(".view-model").get_by_role("button", name="Fit", exact=True).click()
    page.get_by_text("phi4, J = 1").first.wait_for(timeout=LONG)
    wait_enabled(sample)
    sample.click()
    page.get_by_text("histogram total variation").first.wait_for(timeout=LONG)
    page.locator(".scattering-table").first.wait_for(timeout=LONG)
    shares = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(1500)  # the page lays out again; nothing to wait on but time
        for view, classes in FIGURES.items():
            for css in classes:
                loc = page.locator(f".{css}").first
                loc.scroll_into_view_if_needed()
                loc.locator("canvas").first.wait_for(timeout=60_000)
                box = loc.bounding_box()
                png = loc.screenshot(timeout=60_000)
                (artifacts / f"30_{width}_{css}.png").write_bytes(png)
                share = drawn_share(png)
                shares[(width, css)] = round(share, 3)
                assert box["width"] >= MIN_SIDE[0] and box["height"] >= MIN_SIDE[1], (
                    width, css, box)
                assert share >= MIN_SHARE, (width, css, share)
                assert box["x"] + box["width"] <= width + 1, (width, css, box)  # not cut off
    (artifacts / "30_drawn_shares.txt").write_text(
        "\n".join(f"{w} {css} {v}" for (w, css), v in sorted(shares.items())))
    assert errors == []
    ctx.close()


def test_a_story_loads_its_data_and_settings_and_fits(page, served_app, artifacts):
    open_app(page, served_app)
    page.locator(".story-gaussian-kappa").get_by_role("button").click()
    page.get_by_text("gaussian, J = 4").first.wait_for(timeout=LONG)  # its fit is done
    story = text_of(page, "story-text")
    assert "Gaussian κ theorem" in story and "conditioning theorem" in story
    selected = page.locator("select").first.evaluate("s => s.options[s.selectedIndex].text")
    assert "Gaussian" in selected
    # the story goes on to sample on its own: the status says so
    page.locator(".view-sampling").first.scroll_into_view_if_needed()
    t0 = time.monotonic()
    while "sample" not in status_text(page, "sample") and time.monotonic() - t0 < 120:
        page.wait_for_timeout(200)
    assert "sample" in status_text(page, "sample")
    page.screenshot(path=str(artifacts / "31_story_gaussian.png"))
    # a short story run may already be over here; if not, Stop ends it
    stop = page.locator(".view-sampling").get_by_role("button", name="Stop")
    if stop.is_enabled():
        try:
            stop.click(timeout=5_000)
        except PlaywrightTimeout:  # it ended between the check and the click
            pass
    t0 = time.monotonic()
    while stop.is_enabled() and time.monotonic() - t0 < 60:
        page.wait_for_timeout(200)
    assert not stop.is_enabled()  # the run ended, by Stop or on its own
    assert page.console_errors == []


def test_a_copied_url_reopens_the_same_settings_in_a_fresh_context(browser, served_app,
                                                                  artifacts):
    first = browser.new_context(viewport={"width": 1500, "height": 950})
    page = first.new_page()
    open_app(page, served_app)
    data = page.locator("select").first
    label = next(t for t in data.locator("option").all_inner_texts() if "disordered" in t)
    data.select_option(label=label)
    wait_url(page, r"data=phi4_L64_beta0\.50")
    page.locator(".w-family select").first.select_option("gaussian")
    set_int(page, "w-depth", 3)
    set_int(page, "w-steps", 77)
    set_int(page, "w-samples", 5)
    url = wait_url(page, r"(?=.*family=gaussian)(?=.*J=3)(?=.*steps=77)(?=.*n_samples=5)")
    first.close()

    fresh = browser.new_context(viewport={"width": 1500, "height": 950})
    page = fresh.new_page()
    open_app(page, url)
    selected = page.locator("select").first.evaluate("s => s.options[s.selectedIndex].text")
    assert "disordered" in selected
    assert page.locator(".w-family select").first.input_value() == "gaussian"
    assert page.locator(".w-depth input").first.input_value() == "3"
    assert page.locator(".w-steps input").first.input_value() == "77"
    assert page.locator(".w-samples input").first.input_value() == "5"
    page.screenshot(path=str(artifacts / "32_reopened_link.png"))
    fresh.close()
