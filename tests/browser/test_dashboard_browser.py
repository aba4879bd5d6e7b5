"""The dashboard in a real browser: fit, live sampling, Stop, Compare, bad uploads, two users.

Screenshots of each state go to test-artifacts/. Conditions are waited on (texts, element
states), never slept on."""

import re
import time

import pytest

pytestmark = pytest.mark.browser

LONG = 240_000  # ms: fitting/sampling/comparing share 2 cores with the server and the browser


def open_app(page, url):
    page.goto(url)
    page.get_by_text("Binder U").first.wait_for(timeout=90_000)
    page.locator("canvas").first.wait_for(timeout=90_000)


def tab(page, name):
    """Bring a view (a card of the page) into sight."""
    page.locator(f".view-{name.lower()}").first.scroll_into_view_if_needed()


def set_int(page, css, value):
    box = page.locator(f".{css} input").first
    box.fill(str(value))
    box.press("Enter")


DEEP_TEXT = """el => {
  const walk = n => {
    let t = "";
    if (n.shadowRoot) t += walk(n.shadowRoot);
    for (const c of n.childNodes) {
      if (c.nodeName === "STYLE" || c.nodeName === "SCRIPT") continue;
      t += c.nodeType === 3 ? c.textContent : walk(c);
    }
    return t;
  };
  return walk(el);
}"""


def text_of(page, css):
    """Text of the first element with class ``css``, shadow roots included (Bokeh renders
    its widgets and panes inside shadow DOM)."""
    loc = page.locator(f".{css}")
    return loc.first.evaluate(DEEP_TEXT) if loc.count() else ""


def status_text(page, job):
    return text_of(page, f"{job}-status")


def fit(page, family="phi4", depth=2):
    tab(page, "Model")
    page.locator(".w-family select").first.select_option(family)
    set_int(page, "w-depth", depth)
    page.get_by_role("button", name="Fit", exact=True).click()
    page.get_by_text(f"{family}, J = {depth}").first.wait_for(timeout=LONG)


def wait_status(page, job, pattern, timeout_s=240):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        text = status_text(page, job)
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(200)
    raise AssertionError(f"{job} status never matched {pattern!r}: {status_text(page, job)!r}")


def test_fit_sample_live_stop_and_compare(page, served_app, artifacts):
    open_app(page, served_app)
    page.screenshot(path=str(artifacts / "10_data.png"), full_page=True)
    # change family and depth, fit: kappa(H) per scale appears
    fit(page, family="gaussian", depth=1)
    assert page.get_by_text("gaussian, J = 1").count() > 0
    fit(page, family="phi4", depth=2)
    table = text_of(page, "kappa-table")
    assert "κ(H) raw" in table and "j=1" in table and "j=2" in table, table
    page.screenshot(path=str(artifacts / "11_fitted.png"), full_page=True)

    # sample: progress advances at least 3 times and the live image changes; then Stop
    tab(page, "Sampling")
    set_int(page, "w-steps", 400)
    page.get_by_role("button", name="Sample", exact=True).click()
    live = page.locator(".live-field").first
    live.wait_for(timeout=LONG)
    seen, shots = [], []
    t0 = time.monotonic()
    while (len(set(seen)) < 4 or len(set(shots)) < 2) and time.monotonic() - t0 < 180:
        m = re.search(r"update (\d+)", status_text(page, "sample"))
        if m:
            seen.append(int(m.group(1)))
            shots.append(live.screenshot(timeout=60_000))
        page.wait_for_timeout(400)
    assert len(set(seen)) >= 4, seen  # the first value and at least 3 advances
    assert seen == sorted(seen)
    assert len(set(shots)) >= 2, "the live field never changed"
    page.screenshot(path=str(artifacts / "12_sampling_live.png"), full_page=True)
    page.locator(".view-sampling").get_by_role("button", name="Stop").click()
    wait_status(page, "sample", r"stopped")
    assert page.get_by_role("button", name="Sample", exact=True).is_enabled()
    page.screenshot(path=str(artifacts / "13_stopped.png"), full_page=True)

    # a short complete run; the comparison follows on its own
    set_int(page, "w-steps", 40)
    set_int(page, "w-samples", 8)
    page.get_by_role("button", name="Sample", exact=True).click()
    wait_status(page, "sample", r"sample\*\* done|sample done")
    tab(page, "Compare")
    page.get_by_text("histogram total variation").first.wait_for(timeout=LONG)
    for css in ("compare-spectra", "compare-histograms", "compare-eigen", "compare-coupling-data",
                "compare-coupling-samples", "compare-scattering-s12"):
        page.locator(f".{css} canvas").first.wait_for(timeout=LONG)
    assert page.get_by_text("radial power spectrum").count() + page.locator(
        ".compare-spectra canvas").count() > 0
    page.screenshot(path=str(artifacts / "14_compare.png"), full_page=True)
    assert page.console_errors == []


def test_bad_upload_shows_its_message_and_the_app_keeps_working(page, served_app, artifacts,
                                                                tmp_path):
    open_app(page, served_app)
    bad = tmp_path / "not_a_field.npz"
    bad.write_bytes(b"this is not an npz archive")
    page.locator(".w-upload input[type=file]").first.set_input_files(str(bad))
    msg = page.locator(".upload-message").first
    msg.get_by_text("upload refused").wait_for(timeout=60_000)
    assert "not_a_field.npz" in text_of(page, "upload-message")
    page.screenshot(path=str(artifacts / "15_bad_upload.png"), full_page=True)
    # the page still works: switch data set, the view follows
    select = page.locator("select").first
    target = next(t for t in select.locator("option").all_inner_texts() if "turbulence" in t)
    select.select_option(label=target)
    page.get_by_text("vorticity kurtosis").first.wait_for(timeout=60_000)
    assert page.console_errors == []


def test_two_browser_contexts_sample_at_once_without_interfering(browser, served_app, artifacts):
    pages = []
    for n in (4, 8):
        ctx = browser.new_context(viewport={"width": 1500, "height": 950})
        pg = ctx.new_page()
        pg.console_errors = []
        pg.on("console", lambda m, pg=pg: pg.console_errors.append(m.text)
              if m.type == "error" else None)
        open_app(pg, served_app)
        fit(pg, family="phi4", depth=1)
        tab(pg, "Sampling")
        set_int(pg, "w-steps", 40)
        set_int(pg, "w-samples", n)
        pages.append((pg, ctx, n))
    for pg, _, _ in pages:  # start both, then wait for both
        pg.get_by_role("button", name="Sample", exact=True).click()
    for pg, ctx, n in pages:
        wait_status(pg, "sample", r"sample\*\* done|sample done")
        text = status_text(pg, "sample")
        assert f"{n} fields" in text, text
        pg.screenshot(path=str(artifacts / f"16_two_users_{n}.png"), full_page=True)
        assert pg.console_errors == []
        ctx.close()
