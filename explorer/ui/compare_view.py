"""The Compare view: data vs samples on shared axes, every figure at a fixed size, wrapping to
the page's width (:class:`CompareView`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param

from explorer.core.support import DEFAULT_FLOOR
from explorer.ui import figures
from explorer.ui.controls import LEGEND_RIGHT, MATRIX, PLOT, JobControls, _empty, _fmt
from explorer.ui.generic_panes import verdicts_markdown
from explorer.ui.session import Session


MIXING_COLUMNS = ["scale", "τ_int (gradient evaluations)", "τ_int (reports)", "window (reports)",
                  "n_eff"]   # figures.mixing_rows
SCATTERING_COLUMNS = ["kind", "relative difference (%)", "coefficients"]  # scattering_differences


def _table(columns: list[str], css: str, width: int = 420, height: int = 180):
    return pn.widgets.Tabulator(pd.DataFrame(columns=columns), disabled=True, show_index=False,
                                width=width, height=height, layout="fit_data_table",
                                visible=False, css_classes=[css])


class CompareView(pn.viewable.Viewer):
    """Data vs samples on shared axes: spectra, histograms, Hessian eigenvalue histograms,
    scale-coupling matrices, kurtosis per scale, mixing, scattering spectra. Every figure has a
    fixed size; the figures wrap to the page's width."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.controls = JobControls(session=s, job="compare", label="Compare")
        # the generic statistics with a verdict each (any data: skewness, kurtosis, per-field
        # means, extremes, quantiles), README "Your own data"
        self.generic = pn.pane.Markdown("", css_classes=["compare-generic"], width=720)
        self.table = pn.pane.Markdown("Sample the model, then Compare.", width=560,
                                      css_classes=["compare-table"])
        # result panes start empty (no figure for the browser to lay out until there is data)
        pane = lambda css: pn.pane.HoloViews(None, css_classes=[css], sizing_mode="fixed")  # noqa: E731
        self.spectra = pane("compare-spectra")
        self.hist = pane("compare-histograms")
        self.eigen = pane("compare-eigen")
        self.coupling_data = pane("compare-coupling-data")
        self.coupling_samples = pane("compare-coupling-samples")
        self.kurtosis = pane("compare-kurtosis")
        self.mixing = pane("compare-mixing")
        # every column from the start: a Tabulator whose columns change while its tab is hidden
        # fails in the browser (setColumns on a table that was never drawn)
        self.mixing_table = _table(MIXING_COLUMNS, "mixing-table", width=460, height=150)
        self.scattering_s12 = pane("compare-scattering-s12")
        self.scattering_s3 = pane("compare-scattering-s3")
        self.scattering_s4 = pane("compare-scattering-s4")
        self.scattering_table = _table(SCATTERING_COLUMNS, "scattering-table", width=330,
                                       height=170)
        self.scattering_note = pn.pane.Markdown("", width=330)
        s.param.watch(self._on_samples, "samples")
        s.param.watch(self._on_report, "compare_report")

    @property
    def figures(self) -> dict[str, pn.pane.HoloViews]:
        """Every figure pane of the view by name (tests, screenshots)."""
        return {"spectra": self.spectra, "histograms": self.hist, "eigen": self.eigen,
                "coupling data": self.coupling_data, "coupling samples": self.coupling_samples,
                "kurtosis": self.kurtosis, "mixing": self.mixing,
                "scattering S1 S2": self.scattering_s12, "scattering S3": self.scattering_s3,
                "scattering S4": self.scattering_s4}

    def _on_samples(self, *_):
        s = self.session
        if s.samples is None or s.data.fields is None:
            return
        self.spectra.object = figures.spectra_compare(s.data.fields, s.samples).opts(**PLOT)
        self.hist.object = figures.histograms_compare(s.data.fields, s.samples).opts(**PLOT)

    @staticmethod
    def distance_rows(r: dict) -> str:
        """The distances of a comparison report as a Markdown table (numbers and words only)."""
        ratios = " / ".join(f"{x:.3f}" for x in r["scale_std_ratios"])
        rows = [
            "| distance (data vs samples) | value |", "|---|---|",
            f"| radial spectrum mean \\|log ratio\\|, on the data's spectral support "
            f"(shells with power > {DEFAULT_FLOOR:g} of the peak) | "
            f"{r['spectrum_log_ratio']:.4f} |",
            f"| 2D spectrum mean \\|log ratio\\| on the support (noise level) | "
            f"{r['spectrum_2d_log_ratio']:.4f} ({r['spectrum_2d_noise']:.4f}) |",
            f"| corner power ratio \\|k\\| > L/2 (samples / data) | "
            f"{_fmt(r['corner_power_ratio'])} |",
            f"| histogram total variation | {r['total_variation']:.4f} |",
            f"| histogram KL | {r['kl_divergence']:.4f} |",
            f"| per-scale std ratios (j = 1 … J, coarse) | {ratios} |",
            f"| kurtosis data / samples | {r['kurtosis']['data']:.3f} / "
            f"{r['kurtosis']['samples']:.3f} |"]
        if r.get("binder_difference") is not None:  # φ⁴ data, or asked for
            rows.insert(-1, f"| Binder U difference | {r['binder_difference']:.4f} |")
        sk = r.get("scale_kurtosis")
        if sk:
            for part, label in (("low", "low-passes x₀ … x_J"), ("details", "details j = 1 … J")):
                data, samples = (" / ".join(_fmt(k) for k in sk[who][part])
                                 for who in ("data", "samples"))
                rows.append(f"| kurtosis of the {label}, data / samples | {data} <br> "
                            f"{samples} |")
        reasons = {k: v for k, v in (r.get("reasons") or {}).items() if v}
        if reasons:
            rows.append("\n" + "; ".join(f"*{k}*: {v}" for k, v in reasons.items()))
        return "\n".join(rows)

    def _on_report(self, *_):
        r = self.session.compare_report
        if not r:
            return
        reasons = {k: v for k, v in (r.get("reasons") or {}).items() if v}
        self.table.object = self.distance_rows(r)
        self.generic.object = verdicts_markdown(r.get("generic"))
        sk = r.get("scale_kurtosis")
        self.kurtosis.object = (figures.scale_kurtosis_compare(sk).opts(**LEGEND_RIGHT) if sk
                                else _empty("no kurtosis per scale (depth 0)"))
        hess = r.get("hessian")
        self.eigen.object = (figures.eigen_histograms(hess["histograms"]).opts(
            frame_width=420, frame_height=260) if hess and hess["histograms"]
            else _empty(reasons.get("hessian", "no Hessian spectra")))
        c = r.get("coupling")
        for who, pane_ in (("data", self.coupling_data), ("samples", self.coupling_samples)):
            pane_.object = (figures.coupling_matrix(np.asarray(c[who]["moduli"]), c["labels"],
                                                    title=f"{who}: coupling of |details|")
                            .opts(**MATRIX) if c
                            else _empty(reasons.get("coupling", "no scale coupling")))
        mix = r.get("mixing")
        self.mixing.object = (figures.mixing(mix).opts(**LEGEND_RIGHT) if mix
                              else _empty(reasons.get("mixing", "no sampler traces")))
        if mix:
            self.mixing_table.value = pd.DataFrame(figures.mixing_rows(mix),
                                                   columns=MIXING_COLUMNS)
        self.mixing_table.visible = bool(mix)
        sc = r.get("scattering")
        panels = figures.scattering_panels(sc) if sc else {}
        for key, pane_ in (("S1 S2", self.scattering_s12), ("S3", self.scattering_s3),
                           ("S4", self.scattering_s4)):
            pane_.object = (panels[key].opts(**LEGEND_RIGHT) if key in panels
                            else _empty(reasons.get("scattering", f"no {key} coefficients")))
        rows = figures.scattering_differences(sc) if sc else []
        if rows:
            self.scattering_table.value = pd.DataFrame(rows, columns=SCATTERING_COLUMNS)
        self.scattering_table.visible = bool(rows)
        self.scattering_note.object = (
            "Scattering spectra, mean relative difference |S_samples − S_data| / |S_data| per "
            "kind (coefficients above 10⁻³ of the kind's largest)." if rows else "")

    def __panel__(self):
        wrap = dict(flex_wrap="wrap", sizing_mode="stretch_width")
        return pn.Column(
            pn.Row(self.controls, self.table),
            self.generic,
            pn.FlexBox(self.spectra, self.hist, self.eigen, **wrap),
            pn.pane.Markdown("#### Scale coupling of the wavelet details' moduli "
                             "(co-located, scales × orientations)"),
            pn.FlexBox(self.coupling_data, self.coupling_samples, **wrap),
            pn.FlexBox(self.kurtosis, pn.Column(self.mixing, self.mixing_table), **wrap),
            pn.pane.Markdown("#### Scattering spectra: data (solid) and samples (dashed)"),
            pn.FlexBox(self.scattering_s12, self.scattering_s3, self.scattering_s4,
                       pn.Column(self.scattering_note, self.scattering_table), **wrap),
            sizing_mode="stretch_width")
