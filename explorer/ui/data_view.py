"""The Data view: the shipped data sets (:class:`~explorer.ui.components.FieldBrowser`), the
generators with progress and Stop (their card's widgets sent when it is first opened), uploads
with validation, a gallery of the first samples."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from explorer.ui import figures
from explorer.ui.components import FieldBrowser
from explorer.ui.controls import JobControls
from explorer.ui.generic_panes import summary_markdown
from explorer.ui.session import Session


class DataView(pn.viewable.Viewer):
    """Shipped assets, generators with progress and Stop, uploads with validation, a gallery."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.browser = FieldBrowser(data=s.data)
        self.controls = JobControls(session=s, job="generate", label="Generate")
        self.gen_params = pn.Param(
            s, parameters=["gen_kind", "gen_size", "gen_samples", "gen_beta", "gen_lam",
                           "gen_eta", "gen_seed"], show_name=False, width=300,
            widgets={"gen_kind": {"name": "Generator"}, "gen_size": {"name": "Size L"},
                     "gen_samples": {"name": "Fields N"}, "gen_beta": {"name": "β"},
                     "gen_lam": {"name": "λ"}, "gen_eta": {"name": "η (Gaussian)"},
                     "gen_seed": {"name": "Seed"}})
        self.upload = pn.widgets.FileInput(accept=".npz,.npy,.png,.jpg,.jpeg", width=300,
                                           css_classes=["w-upload"])
        self.upload.param.watch(self._on_upload, "value")
        self.upload_message = pn.pane.Alert("", alert_type="danger", visible=False, width=420,
                                            css_classes=["upload-message"])
        self.upload_summary = pn.pane.Markdown("", width=420, css_classes=["upload-summary"])
        s.data.param.watch(self._on_summary, "summary")
        self._on_summary()
        # thumbnails as PNG images: four more Bokeh figures would slow the first render
        self.thumbs = [pn.pane.PNG(figures.field_png(np.zeros((2, 2)), size=150), width=150,
                                   height=150, sizing_mode="fixed") for _ in range(4)]
        self.gallery = pn.Row(*self.thumbs, css_classes=["gallery"])
        # collapsed at first: its generator settings and job controls are sent when it opens
        self.generate_card = pn.Card(pn.pane.Markdown("Opening…"), title="Generate",
                                     collapsed=True, width=460)
        self.generate_card.param.watch(self._on_generate_opened, "collapsed")
        self._gallery()
        s.data.param.watch(lambda e: self._gallery(), "fields")

    def _gallery(self) -> None:
        f = self.session.data.fields
        if f is None:
            return
        lim = float(np.abs(f[:4]).max()) or 1.0
        clim = (-lim, lim) if f[:4].min() < 0 else (float(f[:4].min()), lim)
        for i, pane in enumerate(self.thumbs):
            pane.object = figures.field_png(f[i % len(f)], size=150, clim=clim)

    def _on_summary(self, *_) -> None:
        d = self.session.data
        name = (d.meta.get("params") or {}).get("source") or d.asset or "the data"
        text = summary_markdown(d.summary)
        self.upload_summary.object = f"**{name}**\n\n{text}" if text else ""

    def _on_upload(self, event) -> None:
        if event.new is None:
            return
        ok = self.session.upload(self.upload.filename or "", event.new)
        self.upload_message.object = "" if ok else self.session.message
        self.upload_message.visible = not ok

    def _on_generate_opened(self, event) -> None:
        if not event.new and all(o is not self.gen_params for o in self.generate_card.objects):
            self.generate_card.objects = [self.gen_params, self.controls]  # first opened

    def __panel__(self):
        up = pn.Card(pn.pane.Markdown("`.npz` (array `fields` (N, L, L)), `.npy`, `.png`, `.jpg`;"
                                      " L a power of two. Files are validated, never unpickled."),
                     self.upload, self.upload_message, self.upload_summary, title="Upload",
                     width=460)
        return pn.Column(self.browser, pn.Row(self.generate_card, up),
                         pn.pane.Markdown("#### Gallery"), self.gallery)
