"""The served app in a real browser: it loads, shows the default field, switches data."""

import pytest

pytestmark = pytest.mark.browser


def _wait_ready(page, url):
    page.goto(url)
    # the observables table is rendered server-side once the default data are loaded
    page.get_by_text("Binder U").first.wait_for(timeout=60_000)
    page.locator(".bk-Canvas, canvas").first.wait_for(timeout=60_000)


def test_page_loads_default_data_without_console_errors(page, served_app, artifacts):
    _wait_ready(page, served_app)
    assert "Multiscale Physics Explorer" in page.title() or page.get_by_text(
        "Multiscale Physics Explorer").count() > 0
    selected = page.locator("select").first.evaluate("s => s.options[s.selectedIndex].text")
    assert "β=0.68" in selected
    page.screenshot(path=str(artifacts / "01_default_phi4.png"), full_page=True)
    assert page.console_errors == []


def test_switching_data_set_updates_the_view(page, served_app, artifacts):
    _wait_ready(page, served_app)
    select = page.locator("select").first
    labels = select.locator("option").all_inner_texts()
    target = next(label for label in labels if "turbulence" in label.lower())
    select.select_option(label=target)
    page.get_by_text("vorticity kurtosis").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "02_turbulence.png"), full_page=True)
    assert page.console_errors == []
