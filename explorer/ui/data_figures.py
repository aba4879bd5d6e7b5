"""The Data view's three figures drawn straight with Bokeh: one sample as an image with its colour
bar, the batch's marginal histogram (log density) and its radial power spectrum (log-log).

The same content, axes, colour maps and tools as :func:`explorer.ui.figures.field_image`,
:func:`~explorer.ui.figures.histogram` and :func:`~explorer.ui.figures.power_spectrum` drawn through
HoloViews, without HoloViews' per-session rendering; each glyph is a single model (the
selection, non-selection and muted looks are derived by the browser: nothing is selectable
here). A figure is built once per page and updated in place (:meth:`DataFigures.show`)."""

from __future__ import annotations

import threading
import weakref
from functools import lru_cache

import numpy as np
from bokeh.models import (ColorBar, ColumnDataSource, HoverTool, Image, Line, LinearColorMapper,
                          Quad, Range1d)
from bokeh.plotting import figure

from explorer.core.observables import radial_power_spectrum
from explorer.ui.figures import _lut, display_array

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"  # HoloViews' defaults, hover added per figure
SIDE, WIDTH, HEIGHT = 300, 300, 200  # px: the frames
BINS = 80
COLOR = "#30a2da"  # HoloViews' first default colour, as these figures had


@lru_cache(maxsize=4)
def palette(cmap: str) -> tuple[str, ...]:
    """A Matplotlib colour map as 256 hex colours (the colours of the page's PNG thumbnails)."""
    return tuple(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in _lut(cmap))


def image_data(field: np.ndarray) -> dict:
    """One field ready to draw: float32, block-averaged beyond ``MAX_IMAGE_SIDE``, row 0 at the
    bottom; its extent (the field's side in pixels); a symmetric colour range around 0 and the
    ``RdBu_r`` map for a signed field, else its own range and ``viridis``."""
    x, f, clim, signed = display_array(field, "image_data")
    return {"image": x, "width": x.shape[1] * f, "height": x.shape[0] * f, "clim": clim,
            "cmap": "RdBu_r" if signed else "viridis"}


def histogram_data(fields: np.ndarray, bins: int = BINS) -> dict:
    """Marginal density of all pixel values on ``bins`` bins; empty bins are left out (nothing
    is drawn for them on the log axis)."""
    x = np.asarray(fields, dtype=np.float64).ravel()
    density, edges = np.histogram(x, bins=bins, density=True)
    keep = density > 0
    top = density[keep]
    floor = float(top.min()) / 10 if top.size else 1e-3  # the bars' foot on the log axis
    return {"left": edges[:-1][keep], "right": edges[1:][keep], "top": top,
            "bottom": np.full(top.shape, floor), "value": 0.5 * (edges[:-1] + edges[1:])[keep],
            "x_range": (float(edges[0]), float(edges[-1])),
            "y_range": (floor, float(top.max()) * 1.5 if top.size else 1.0)}


def spectrum_data(fields: np.ndarray) -> dict:
    """Radially averaged power spectrum P(k) in lattice units (positive values only: log-log)."""
    k, P = radial_power_spectrum(fields)
    k, P = np.asarray(k, np.float64), np.asarray(P, np.float64)
    keep = (k > 0) & (P > 0)
    return {"k": k[keep], "P": P[keep]}


_shared: dict[tuple[str, int], tuple[weakref.ref, dict]] = {}
_shared_lock = threading.Lock()


def of_batch(compute, fields: np.ndarray) -> dict:
    """``compute(fields)``, computed once per read-only batch while it lives: a shipped data
    set's array is one read-only array shared by every page of the process, so its histogram
    and spectrum are the same for every page. A writable batch is computed every time."""
    if fields.flags.writeable:
        return compute(fields)
    key = (compute.__name__, id(fields))
    with _shared_lock:
        hit = _shared.get(key)
        if hit is not None and hit[0]() is fields:
            return hit[1]
    out = compute(fields)
    for v in out.values():  # shared by every page's sources: nobody may change them
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    with _shared_lock:
        for k in [k for k, (ref, _) in _shared.items() if ref() is None]:
            del _shared[k]  # batches gone
        _shared[key] = (weakref.ref(fields), out)
    return out


def _figure(title: str, x_label: str, y_label: str, width: int, height: int, css: str, **kw):
    """A figure with the Data view's tools; ``css``: its class on the page (tests find it)."""
    p = figure(title=title, frame_width=width, frame_height=height, tools=TOOLS,
               active_drag="pan", active_scroll="wheel_zoom", toolbar_location="right",
               css_classes=[css], **kw)
    p.title.text_font_size = "12pt"
    p.xaxis.axis_label, p.yaxis.axis_label = x_label, y_label
    return p


class DataFigures:
    """The three figures of one page: :attr:`image`, :attr:`histogram`, :attr:`spectrum`
    (Bokeh figures), redrawn in place by :meth:`show` and :meth:`show_sample`."""

    def __init__(self) -> None:
        self.mapper = LinearColorMapper(palette=palette("RdBu_r"), low=-1, high=1)
        self.image_source = ColumnDataSource({"image": [np.zeros((2, 2), np.float32)]})
        self.image = _figure("sample 0", "x", "y", SIDE, SIDE, "data-field",
                             x_range=Range1d(0, 2), y_range=Range1d(0, 2))
        self._image_glyph = Image(image="image", x=0, y=0, dw=2, dh=2,
                                  color_mapper=self.mapper)
        r = self.image.add_glyph(self.image_source, self._image_glyph)
        self.image.add_tools(HoverTool(renderers=[r], tooltips=[
            ("x", "$x{0.0}"), ("y", "$y{0.0}"), ("value", "@image{0.000}")]))
        self.image.add_layout(ColorBar(color_mapper=self.mapper, width=12, title="value"), "right")

        self.hist_source = ColumnDataSource({k: [] for k in ("left", "right", "top", "bottom",
                                                              "value")})
        self.histogram = _figure("marginal histogram", "value", "density", WIDTH, HEIGHT,
                                 "data-histogram", y_axis_type="log", x_range=Range1d(0, 1),
                                 y_range=Range1d(1e-3, 1))
        r = self.histogram.add_glyph(self.hist_source, Quad(
            left="left", right="right", top="top", bottom="bottom", fill_color=COLOR,
            fill_alpha=0.6, line_color="black", line_alpha=0.6))
        self.histogram.add_tools(HoverTool(renderers=[r], tooltips=[
            ("value", "@value{0.000}"), ("density", "@top{0.000e}")]))

        self.spec_source = ColumnDataSource({"k": [], "P": []})
        self.spectrum = _figure("radial power spectrum", "k", "P(k)", WIDTH, HEIGHT,
                                "data-spectrum", x_axis_type="log", y_axis_type="log")
        r = self.spectrum.add_glyph(self.spec_source, Line(x="k", y="P", line_color=COLOR,
                                                           line_width=2))
        self.spectrum.add_tools(HoverTool(renderers=[r], mode="vline", tooltips=[
            ("k", "@k{0.00}"), ("P(k)", "@P{0.000e}")]))

    def show_sample(self, field: np.ndarray, index: int) -> None:
        """Draw sample ``index`` (``field``) on the image, with its own colour range."""
        d = image_data(field)
        self.image_source.data = {"image": [d["image"]]}
        g = self._image_glyph
        g.dw, g.dh = d["width"], d["height"]
        self.image.x_range.update(start=0, end=d["width"])
        self.image.y_range.update(start=0, end=d["height"])
        self.mapper.update(palette=palette(d["cmap"]), low=d["clim"][0], high=d["clim"][1])
        self.image.title.text = f"sample {index}"

    def show(self, fields: np.ndarray, index: int) -> None:
        """Draw a batch: sample ``index`` on the image, every field in the histogram and the
        spectrum."""
        self.show_sample(fields[index], index)
        h = of_batch(histogram_data, fields)
        self.hist_source.data = {k: h[k] for k in ("left", "right", "top", "bottom", "value")}
        self.histogram.x_range.update(start=h["x_range"][0], end=h["x_range"][1])
        self.histogram.y_range.update(start=h["y_range"][0], end=h["y_range"][1])
        self.spec_source.data = dict(of_batch(spectrum_data, fields))
