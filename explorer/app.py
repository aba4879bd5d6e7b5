"""The served page: ``panel serve explorer/app.py``.  Thin: builds the page from ui components."""

import panel as pn

from explorer.ui.dashboard import Dashboard

pn.extension("tabulator", notifications=True)


def build_page() -> pn.template.BootstrapTemplate:
    # Bootstrap rather than the Fast templates: those always request a web font from a CDN,
    # which fails (and logs a console error) wherever the app runs offline.
    dashboard = Dashboard()
    dashboard.start()
    return pn.template.BootstrapTemplate(
        title="Multiscale Physics Explorer",
        main=[dashboard],
        header_background="#2f4f6f",
    )


if pn.state.served:
    build_page().servable()
