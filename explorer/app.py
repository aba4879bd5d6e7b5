"""The served page: ``panel serve explorer/app.py``.  Thin: builds the page from ui components."""

import panel as pn

from explorer.ui.components import FieldBrowser

pn.extension(sizing_mode="fixed", notifications=True)


def build_page() -> pn.template.FastListTemplate:
    browser = FieldBrowser()
    return pn.template.FastListTemplate(
        title="Multiscale Physics Explorer",
        main=[browser],
        main_max_width="1500px",
        header_background="#2f4f6f",
    )


if pn.state.served:
    build_page().servable()
