"""UI without a browser: pure plot functions, the param state, the Viewer component."""

import holoviews as hv
import numpy as np
import pytest

from explorer.core.fields.base import FieldSet
from explorer.core.fields.gaussian import generate_gaussian
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.io import save_fields
from explorer.core.observables import radial_power_spectrum
from explorer.ui import figures
from explorer.ui.state import FieldData, available_assets

hv.extension("bokeh")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("assets")
    save_fields(d / "phi4_L64_beta0.68.npz",
                generate_phi4(size=16, n_samples=8, beta=0.68, seed=0, warmup=5, pilot=20))
    save_fields(d / "gaussian_L64_eta2.npz", generate_gaussian(size=32, n_samples=4, seed=1))
    (d / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return d


def test_field_image_is_float32_with_symmetric_limits_and_downsampled_when_large():
    x = np.random.default_rng(0).standard_normal((512, 512))
    img = figures.field_image(x)
    assert isinstance(img, hv.Image)
    data = img.dimension_values(2, flat=False)
    assert data.shape == (256, 256) and data.dtype == np.float32
    lo, hi = img.opts.get().kwargs["clim"]
    assert lo == -hi
    with pytest.raises(ValueError, match="2-D"):
        figures.field_image(np.zeros((2, 4, 4)))


def test_the_data_views_image_matches_field_image():
    from explorer.ui.data_figures import histogram_data, image_data

    x = np.random.default_rng(0).standard_normal((512, 512))
    d = image_data(x)
    hv_img = figures.field_image(x)
    assert d["image"].shape == (256, 256) and d["image"].dtype == np.float32
    # both with row 0 at the bottom (y = 0): the same picture
    np.testing.assert_allclose(d["image"], hv_img.dimension_values(2, flat=False))
    assert d["clim"] == pytest.approx(hv_img.opts.get().kwargs["clim"])
    assert (d["width"], d["height"], d["cmap"]) == (512, 512, "RdBu_r")
    pos = image_data(np.abs(x[:64, :64]) + 1)
    assert pos["cmap"] == "viridis" and pos["clim"][0] >= 1
    with pytest.raises(ValueError, match="2-D"):
        image_data(np.zeros((2, 4, 4)))
    y = np.random.default_rng(1).standard_normal((4, 32, 32))
    y[0, 0, 0] = 9.0  # empty bins in the tail are left out, never drawn at 0 on the log axis
    h = histogram_data(y, bins=40)
    assert len(h["top"]) < 40 and np.all(h["top"] > 0) and np.all(h["bottom"] < h["top"])
    assert np.sum(h["top"] * (h["right"] - h["left"])) == pytest.approx(1.0)


def test_a_shared_batchs_histogram_and_spectrum_are_computed_once():
    from explorer.ui.data_figures import DataFigures, histogram_data, of_batch, spectrum_data

    x = np.random.default_rng(2).standard_normal((4, 16, 16)).astype(np.float32)
    x.setflags(write=False)   # as a shipped data set is shared by every page
    a, b = DataFigures(), DataFigures()
    a.show(x, 0)
    b.show(x, 1)
    assert a.hist_source.data["top"] is b.hist_source.data["top"]
    assert a.spec_source.data["P"] is b.spec_source.data["P"]
    assert not a.hist_source.data["top"].flags.writeable
    np.testing.assert_allclose(a.spec_source.data["P"], spectrum_data(x)["P"])
    y = x.copy()   # writable: computed every time
    assert of_batch(histogram_data, y) is not of_batch(histogram_data, y)
    np.testing.assert_allclose(of_batch(histogram_data, y)["top"], a.hist_source.data["top"])


def test_histogram_is_a_normalised_density_on_a_log_axis():
    x = np.random.default_rng(1).standard_normal((4, 32, 32))
    x[0, 0, 0] = 9.0  # leaves empty bins in the tail
    h = figures.histogram(x, bins=40)
    edges = h.interface.coords(h, h.kdims[0], edges=True)
    dens = h.dimension_values(1)
    assert np.isnan(dens).any()  # empty bins are not drawn
    assert np.nansum(dens * np.diff(edges)) == pytest.approx(1.0, rel=1e-9)
    assert h.opts.get().kwargs["logy"] is True


def test_power_spectrum_curve_carries_the_radial_spectrum():
    x = generate_gaussian(size=32, n_samples=4, seed=2).fields
    c = figures.power_spectrum(x)
    k, P = radial_power_spectrum(x)
    np.testing.assert_allclose(c.dimension_values(0), k)
    np.testing.assert_allclose(c.dimension_values(1), P)
    assert c.opts.get().kwargs["logx"] and c.opts.get().kwargs["logy"]


def test_gallery_shares_one_colour_scale():
    x = np.random.default_rng(3).standard_normal((6, 16, 16))
    g = figures.gallery(x, n=4)
    clims = {el.opts.get().kwargs["clim"] for el in g}
    assert len(g) == 4 and len(clims) == 1


def test_state_loads_the_default_first_and_switches_data(folder):
    names = list(available_assets(folder).values())
    assert names[0] == "phi4_L64_beta0.68.npz"
    d = FieldData(folder=folder)
    assert d.asset == "phi4_L64_beta0.68.npz" and d.fields.shape == (8, 16, 16)
    assert "binder" in d.summary["observables"]["phi4"]
    d.index = 5
    d.asset = "gaussian_L64_eta2.npz"
    assert d.fields.shape == (4, 32, 32)
    assert d.index == 3 and d.param.index.bounds == (0, 3)  # clamped to the new batch


def test_a_broken_file_shows_a_message_and_keeps_the_previous_data(folder):
    d = FieldData(folder=folder)
    before = d.fields.copy()
    d.asset = "broken.npz"
    assert "zip" in d.message.lower() or "archive" in d.message.lower()
    np.testing.assert_array_equal(d.fields, before)
    d.asset = "gaussian_L64_eta2.npz"
    assert d.message == ""


def test_field_browser_updates_its_figures_in_place(folder):
    from bokeh.document import Document

    from explorer.ui.components import FieldBrowser

    d = FieldData(folder=folder)
    b = FieldBrowser(data=d)
    root = b.__panel__().get_root(Document())
    assert root is not None
    image = b._image.object
    first = image.renderers[0].data_source.data["image"][0]
    np.testing.assert_allclose(first, d.fields[0])   # row 0 at the bottom, as stored
    d.index = 2
    assert b._image.object is image and image.title.text == "sample 2"
    shown = image.renderers[0].data_source.data["image"][0]
    np.testing.assert_allclose(shown, d.fields[2])
    lim = float(np.abs(d.fields[2]).max())
    mapper = image.renderers[0].glyph.color_mapper
    assert (mapper.low, mapper.high) == pytest.approx((-lim, lim))   # signed: symmetric
    d.asset = "gaussian_L64_eta2.npz"
    assert b._index.end == 3
    assert "gaussian" in b._table.object
    spec = b._spec.object.renderers[0].data_source.data
    k, P = radial_power_spectrum(d.fields)
    keep = (k > 0) & (P > 0)
    np.testing.assert_allclose(spec["k"], k[keep])
    np.testing.assert_allclose(spec["P"], P[keep])
    hist = b._hist.object.renderers[0].data_source.data
    density, edges = np.histogram(d.fields.astype(np.float64).ravel(), bins=80, density=True)
    np.testing.assert_allclose(hist["top"], density[density > 0])
    assert {t.__class__.__name__ for t in image.tools} >= {
        "PanTool", "WheelZoomTool", "BoxZoomTool", "ResetTool", "SaveTool", "HoverTool"}


def test_fieldset_from_a_generator_can_be_installed():
    d = FieldData(folder="/nonexistent-folder-for-test")
    assert d.fields is None
    d.set_fieldset(FieldSet(np.random.default_rng(0).standard_normal((3, 8, 8)),
                            {"generator": "file", "params": {}}))
    assert d.fields.shape == (3, 8, 8) and d.param.index.bounds == (0, 2)
