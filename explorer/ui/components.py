"""Panel components (``pn.viewable.Viewer``) over the param state; they display in notebooks too."""

from __future__ import annotations

import panel as pn
import param

from explorer.ui import figures
from explorer.ui.data_figures import DataFigures
from explorer.ui.generic_panes import summary_markdown
from explorer.ui.state import FieldData

figures.ensure_backends(("bokeh",))  # the page draws with Bokeh


def _observables_markdown(summary: dict) -> str:
    """Human-readable table of the batch summary and its physics observables."""
    if not summary:
        return ""
    s = summary["summary"]
    rows = [
        f"**{summary['generator']}** data: {s['n']} fields of {s['size']}×{s['size']}, "
        f"mean {s['mean']:.3g}, std {s['std']:.3g}",
        "",
        "| observable | value |",
        "|---|---|",
    ]
    params = summary.get("params", {})
    shown = {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))}
    if shown:
        rows.append("| parameters | " + ", ".join(f"{k} = {v}" for k, v in shown.items()) + " |")
    phi = summary["observables"].get("phi4")
    if phi:
        rows += [
            f"| ⟨\\|m\\|⟩ | {phi['abs_m']:.4f} |",
            f"| ⟨m²⟩ | {phi['m2']:.4f} |",
            f"| Binder U = 1 − ⟨m⁴⟩/3⟨m²⟩² | {phi['binder']:.4f} ± {phi['binder_err']:.4f} |",
        ]
        if "energy_per_site" in phi:
            rows.append(f"| energy per site | {phi['energy_per_site']:.4f} |")
        if "tau_int_m2_pilot" in phi:
            rows.append(f"| τ_int(m²) / burn-in / thinning (iterations) | "
                        f"{phi['tau_int_m2_pilot']:.1f} / {phi['burn_in']} / {phi['thin']} |")
    turb = summary["observables"].get("turbulence")
    if turb and "slope_range" in turb:
        lo, hi = turb["slope_range"]
        flat = ", ".join(f"{k}px {v:.2f}" for k, v in turb["flatness"].items())
        rows += [
            f"| energy-spectrum slope, k∈[{lo:.0f}, {hi:.0f}] | {turb['slope']:.2f} |",
            f"| vorticity kurtosis (Gaussian: 3) | {turb['kurtosis']:.2f} |",
            f"| increment flatness | {flat} |",
        ]
    generic = summary_markdown(summary)
    if generic:
        rows += ["", generic]
    return "\n".join(rows)


class FieldBrowser(pn.viewable.Viewer):
    """Choose a shipped data set, look at one sample, its batch histogram and power spectrum."""

    data = param.ClassSelector(class_=FieldData)

    def __init__(self, **params):
        if "data" not in params:
            params["data"] = FieldData()
        super().__init__(**params)
        d = self.data
        self._asset = pn.widgets.Select.from_param(d.param.asset, name="Data set", width=300)
        self._index = pn.widgets.IntSlider.from_param(d.param.index, name="Sample", width=300,
                                                      end=max(0, self._n() - 1))
        self.figures = DataFigures()  # drawn with Bokeh, updated in place
        opts = dict(sizing_mode="fixed")
        self._image = pn.pane.Bokeh(self.figures.image, **opts)
        self._hist = pn.pane.Bokeh(self.figures.histogram, **opts)
        self._spec = pn.pane.Bokeh(self.figures.spectrum, **opts)
        self._draw()
        self._table = pn.pane.Markdown(_observables_markdown(d.summary), width=400)
        self._message = pn.pane.Alert(d.message, alert_type="danger", visible=bool(d.message))
        d.param.watch(self._on_fields, "fields")
        d.param.watch(self._on_index, "index")
        d.param.watch(self._on_message, "message")

    def _n(self) -> int:
        return 0 if self.data.fields is None else len(self.data.fields)

    def _draw(self) -> None:
        """The current batch in the three figures (left as they are when there is none)."""
        f = self.data.fields
        if f is not None:  # a new batch arrives before its index is clamped to its size
            self.figures.show(f, min(self.data.index, len(f) - 1))

    def _on_fields(self, event) -> None:
        self._index.end = max(0, self._n() - 1)
        self._draw()
        self._table.object = _observables_markdown(self.data.summary)

    def _on_index(self, event) -> None:
        if self.data.fields is not None:
            self.figures.show_sample(self.data.current, self.data.index)

    def _on_message(self, event) -> None:
        self._message.object = event.new
        self._message.visible = bool(event.new)

    def __panel__(self):
        controls = pn.Column(self._asset, self._index, self._message, self._table, width=420)
        return pn.Row(controls, pn.Column(self._image), pn.Column(self._hist, self._spec))
