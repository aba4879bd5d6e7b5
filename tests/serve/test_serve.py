"""``panel serve explorer/app.py`` answers the page (no browser)."""

import urllib.request


def test_the_served_page_answers(served_app):
    with urllib.request.urlopen(served_app, timeout=30) as r:
        assert r.status == 200
        html = r.read().decode()
    assert "Multiscale Physics Explorer" in html
    assert "bokeh" in html.lower()


def test_importing_the_app_does_no_work_and_builds_a_page():
    import time

    import panel as pn

    t0 = time.perf_counter()
    from explorer import app

    page = app.build_page()
    assert isinstance(page, pn.template.BootstrapTemplate)
    assert time.perf_counter() - t0 < 30
