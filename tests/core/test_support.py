"""Spectral support of the data and its completion in the WCRG model (explorer.core.support)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.core.io import load_fields
from explorer.core.model import UnboundedModelError, WCRGModel
from explorer.core.sampling import SamplerRunaway
from explorer.core.support import SpectralSupport, modal_power

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def band_limited(n=6, L=32, cut=8, seed=0):
    """Zero-mean white noise restricted to |kx|, |ky| <= cut (a 2/3-rule-like square band)."""
    g = np.random.default_rng(seed)
    k = np.abs(np.fft.fftfreq(L) * L)
    band = (k[:, None] <= cut) & (k[None, :] <= cut)
    band[0, 0] = False
    return np.fft.ifft2(np.fft.fft2(g.standard_normal((n, L, L))) * band).real, band


def test_support_is_the_band_and_projection_restores_the_data():
    x, band = band_limited()
    sup = SpectralSupport.of(x)
    assert np.array_equal(sup.mask, band)                   # the mean mode is off the support too
    assert sup.dead_fraction == pytest.approx(1 - band.mean())
    xc = sup.completed(x, np.random.default_rng(1))
    assert np.abs(xc - x).max() > 0.01 * x.std()
    assert np.allclose(sup.project(xc), x, atol=1e-12)      # completion lives off the support only
    assert np.allclose(sup.project(x), x, atol=1e-12)
    # the completion continues the spectrum: here flat, so the completed fields are white noise
    p = modal_power(np.concatenate([sup.completed(x, np.random.default_rng(s)) for s in range(40)]))
    assert np.mean(p[~band] / sup.fill[~band]) == pytest.approx(1.0, rel=0.02)
    # ... with, in each mode, the power of a nearby mode on the band (symmetrised under k -> -k)
    on = modal_power(x)[band]
    assert on.min() <= sup.fill[~band].min() and sup.fill[~band].max() <= on.max()
    assert sup.fill[~band].mean() / on.mean() == pytest.approx(1.0, abs=0.25)


def test_full_support_is_left_alone():
    x = np.random.default_rng(3).standard_normal((4, 16, 16))
    sup = SpectralSupport.of(x)
    assert sup.complete and sup.dead_fraction == 0.0
    weak = 0
    for seed in range(20):      # one white-noise field: its weakest modes are not "off the support"
        one = np.random.default_rng(seed).standard_normal((1, 128, 128))
        p = modal_power(one)
        weak += int((p < 1e-5 * p.max()).sum())
        assert SpectralSupport.of(one).complete
    assert weak > 10            # measured 32: a per-mode threshold would have cut them
    assert np.array_equal(sup.completed(x, np.random.default_rng(0)), x)   # nothing to complete
    assert np.array_equal(sup.project(x), x)
    m = WCRGModel("gaussian", 2).fit(x)
    assert m.support is None and m.stats["support"] is None


def test_bad_support_arguments():
    with pytest.raises(ValueError, match="floor"):
        SpectralSupport.of(np.zeros((1, 8, 8)) + 1.0, floor=1.5)
    with pytest.raises(ValueError, match="support_floor"):
        WCRGModel("gaussian", 1, support_floor=-1)
    with pytest.raises(ValueError, match="shape"):
        SpectralSupport(np.ones((4, 4), bool), np.zeros((4, 5)))


def test_model_on_band_limited_data_samples_on_the_support_and_saves(tmp_path):
    x, band = band_limited(n=8, L=32, cut=10, seed=5)
    m = WCRGModel("gaussian", 2).fit(x)
    assert m.support is not None and m.stats["support"]["modes_off_support"] == int((~band).sum())
    s = m.sample(6, steps=80, burn_in=80, seed=0).fields.astype(np.float64)
    ps = modal_power(s)
    assert ps[~band].max() < 1e-8 * ps.max()                # samples carry no power off the band
    assert s.std() / x.std() == pytest.approx(1.0, abs=0.15)
    p = m.save(tmp_path / "m.npz")
    m2 = WCRGModel.load(p)
    assert np.array_equal(m2.support.mask, m.support.mask)
    assert np.array_equal(m2.support.fill, m.support.fill)
    assert m2.support_floor == m.support_floor
    s2 = m2.sample(6, steps=80, burn_in=80, seed=0).fields
    assert np.array_equal(s2, m.sample(6, steps=80, burn_in=80, seed=0).fields)
    # without the completion the same data give no support record
    assert WCRGModel("gaussian", 2, support_floor=None).fit(x).support is None


def test_turbulence_asset_support_and_projected_samples():
    """The native 128^2 turbulence asset (2/3-rule dealiased, zero mean): most modes are off
    the support at the default floor (measured 61 %), holding < 1e-4 of the variance; the samples
    of a model fitted on it carry no power there (the two families' samples are compared in
    tests/core/test_scattering.py)."""
    x = load_fields(ASSETS / "turbulence_L128.npz").fields.astype(np.float64)
    p = modal_power(x)
    m = WCRGModel("gaussian", 7).fit(x)
    assert 0.5 < m.support.dead_fraction < 0.7
    assert p[~m.support.mask].sum() < 1e-4 * p.sum()
    s = m.sample(4, steps=40, burn_in=40, seed=0).fields.astype(np.float64)
    assert np.all(np.isfinite(s))
    ps = modal_power(s)
    assert ps[~m.support.mask].max() < 1e-8 * ps.max()


def test_unbounded_factors_are_flagged_at_fit_time_and_never_sampled():
    """A shallow model of the turbulence (J = 2) has a 32^2 coarse factor whose radius-1 couplings
    cannot fit the spectrum peaked at the forcing scale: its quadratic form has a negative
    eigenvalue (Lanczos proves it). The fit warns, sampling refuses it, and with an explicit
    allow_unbounded the runaway is stopped as such instead of returned (it used to come back as
    "samples" of std about 9x the data's). At full depth nothing is flagged. A phi4 factor is
    decided by its leading potential coefficient (positive on phi4 data)."""
    x = load_fields(ASSETS / "turbulence_L128.npz").fields.astype(np.float64)
    warnings = []
    shallow = WCRGModel("gaussian", 2).fit(x, callback=lambda p: warnings.append(p.info.get("warning")))
    checks = {f"{f.level}{f.j}": f.fit["quadratic_base"] for f in shallow.factors()}
    assert checks["depth02"]["indefinite"] and checks["depth02"]["ritz_min"] < 0
    assert not checks["conditional1"]["indefinite"] and not checks["conditional2"]["indefinite"]
    assert shallow.coarse.fit["bounded"]["bounded"] is False
    assert sum(w is not None and "not bounded below" in w for w in warnings) == 1
    with pytest.raises(UnboundedModelError, match=r"scale 2 \(coarsest, 32x32\).*indefinite"):
        shallow.sample(4, steps=40, burn_in=40, seed=0)
    with pytest.raises(SamplerRunaway, match="scale 2 \\(coarsest\\).*ran away"):
        shallow.sample(4, steps=40, burn_in=40, seed=0, allow_unbounded=True)
    deep = WCRGModel("modulus", 7).fit(x)
    assert all(not f.fit["quadratic_base"]["indefinite"] for f in deep.factors())
    assert all(f.fit["bounded"]["bounded"] for f in deep.factors())
    phi = load_fields(ASSETS / "phi4_L64_beta0.68.npz").fields[:4].astype(np.float64)
    for f in WCRGModel("phi4", 1).fit(phi).factors():
        assert f.fit["quadratic_base"] is None
        assert f.fit["bounded"]["bounded"] and f.fit["bounded"]["leading"] == "phi^4"
