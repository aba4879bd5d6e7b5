"""The refinement of the coarsest conditionals' detail variances on coarse fields the model
generates (:mod:`explorer.core.fit.variances`, part of the default φ⁴ fit at depth >= 3): what
it moves and records, that it brings the generated detail stds to the data's, where it refuses."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

from explorer.core import wavelets as wv
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.fit.variances import (FINEST_SITES, ON_SITE, VARIANCE_GENERATED,
                                         default_counts, detail_part_target,
                                         iter_refine_variances, refine_variances,
                                         refine_variances_on_generated, relaxed_coarse,
                                         variance_parameters)
from explorer.core.model import WCRGModel
from tests.core.chains import generated_std_ratios

STEPS = 100


@pytest.fixture(scope="module")
def fitted():
    """Critical phi^4 32^2 (128 fields), score matching at depth 3, and the copy whose variances
    are refined at j = 3, 2."""
    x = generate_phi4(size=32, n_samples=128, beta=0.68, seed=12).fields.astype(np.float64)
    model = WCRGModel("phi4", 3, "db4", radius=1).fit(x)
    return x, model, refine_variances_on_generated(model, x, levels=(3, 2), n=(128, 64))


def test_the_sub_family_is_the_on_site_couplings_and_the_potential(fitted):
    _, model, _ = fitted
    names = model.conditionals[0].names
    free = [names[i] for i in variance_parameters(names)]
    assert free == [*ON_SITE, "phi^4"]
    assert variance_parameters(["coupling[HL,LH](0,0)", "coupling(0,1)"]) == []


def test_the_finest_level_gets_enough_sites_and_feeds_from_coarser_levels():
    # depth 4 at 64^2 (levels 4, 3, 2) and depth 3 at 64^2 keep the measured counts; at 32^2 the
    # finest level (j = 1) needs 128 fields of 32^2, and the coarser levels supply as many
    assert default_counts(64, (4, 3, 2)) == VARIANCE_GENERATED
    assert default_counts(64, (3, 2, 1)) == VARIANCE_GENERATED
    assert 32 * 64 ** 2 >= FINEST_SITES
    n = default_counts(32, (3, 2, 1))
    assert n == (256, 128, 128) and n[-1] * 32 ** 2 >= FINEST_SITES
    assert default_counts(16, (2, 1)) == (512, 512)
    assert default_counts(32, (3, 2)) == VARIANCE_GENERATED[:2]


def test_moves_only_the_sub_family_and_records_it(fitted):
    x, model, refined = fitted
    info = refined.provenance["refine_variances"]
    assert info["levels"] == [3, 2] and info["n"] == [128, 64] and info["kept_previous"] == []
    assert info["parameters"] == [*ON_SITE, "phi^4"] and info["cpu_seconds"] > 0
    for j in (3, 2):
        lv = info["per_level"][f"j={j}"]
        assert lv["kept"] and lv["mismatch"] < 0.6 * lv["mismatch_before"]
        m, m0 = refined.conditionals[j - 1], model.conditionals[j - 1]
        free = variance_parameters(m.names)
        held = np.setdiff1d(np.arange(len(m.theta)), free)
        assert np.array_equal(m.theta[held], m0.theta[held])
        assert not np.allclose(m.theta[free], m0.theta[free])
        assert m.fit["theta"] == dict(zip(m.names, map(float, m.theta)))
    assert np.array_equal(refined.conditionals[0].theta, model.conditionals[0].theta)
    assert "refine_variances" not in model.provenance


def test_brings_the_generated_detail_stds_to_the_data(fitted):
    x, model, refined = fitted
    coarse = relaxed_coarse(model, x, 128, 200, seed=7)   # other chains than the refinement's
    before = generated_std_ratios(model, x, coarse, steps=STEPS, seed=20)
    after = generated_std_ratios(refined, x, coarse, steps=STEPS, seed=20)
    # score matching leaves j = 3, 2 a few per cent high on these data
    assert max(before) > 1.02 and all(abs(after - 1) < abs(before - 1))
    assert all(abs(after - 1) < 0.02)


def test_relaxed_coarse_fields_start_at_the_data_and_move(fitted):
    x, model, _ = fitted
    start = wv.low_passes(x[:16], 3, "db4")[-1]
    c = relaxed_coarse(model, x, 16, 50, seed=1)
    assert c.shape == start.shape and np.all(np.isfinite(c)) and not np.allclose(c, start)
    assert 0.8 < c.std() / start.std() < 1.2


def test_refuses_what_it_cannot_do(fitted):
    x, model, _ = fitted
    with pytest.raises(ValueError, match="levels must be J"):
        refine_variances_on_generated(model, x, levels=(2, 1), n=(64, 64))
    with pytest.raises(ValueError, match=r"must be the fit's fields, \(n, 32, 32\)"):
        refine_variances_on_generated(model, x[:, :16, :16], levels=(3, 2), n=(64, 64))
    with pytest.raises(ValueError, match="one field count per level"):
        refine_variances_on_generated(model, x, levels=(3, 2), n=(64,))
    with pytest.raises(ValueError, match="at least 12 needed"):
        refine_variances_on_generated(model, x, levels=(3,), n=(8,))
    with pytest.raises(ValueError, match="'gaussian' family"):
        refine_variances_on_generated(WCRGModel("gaussian", 1).fit(x), x)
    with pytest.raises(ValueError, match="not fitted"):
        refine_variances_on_generated(WCRGModel("phi4", 2), x)


def test_the_fit_records_why_it_skipped():
    """Asked of a fit it cannot apply to (too few data fields), the fit goes on and says why."""
    x = generate_phi4(size=16, n_samples=8, beta=0.68, seed=3).fields.astype(np.float64)
    model = WCRGModel("phi4", 1, "db4", radius=1).fit(x, refine_variances=True)
    assert "at least" in model.provenance["refine_variances"]["skipped"]
    assert model.fitted


def test_a_potential_the_fit_held_at_zero_stays_there():
    from types import SimpleNamespace

    from explorer.core.fit.variances import _free

    names = ["coupling[HL,HL](0,0)", "coupling[HL,HL](0,1)", "coupling[LH,LH](0,0)",
             "coupling[HH,HH](0,0)", "phi^4"]
    assert _free(SimpleNamespace(names=names, fit={"potential_held_at_zero": False})) == [0, 2, 3, 4]
    assert _free(SimpleNamespace(names=names, fit={"potential_held_at_zero": True})) == [0, 2, 3]


def test_the_target_takes_the_condition_only_part_on_the_generated_conditions(fitted):
    """The detail-dependent part of each feature's mean is the data's; the part a feature has with
    zero details (a function of the condition alone: the potential's) is the generated
    conditions' own, which no parameter of the conditional can change."""
    x, model, _ = fitted
    f = model.conditionals[1].features
    lows = wv.low_passes(x, 3, "db4")
    _, details = wv.decompose(x, 3, "db4")
    v, c = details[1], lows[2]
    plain = f.phi(f.prepare(v, c)).mean(axis=0)
    assert np.allclose(detail_part_target(f, v, c, c), plain)
    xg = 1.2 * c[:64]   # conditions unlike the data's
    target = detail_part_target(f, v, c, xg)
    on_site = variance_parameters(f.names)[:3]
    pot = f.names.index("phi^4")
    assert np.allclose(target[on_site], plain[on_site])   # no condition-only part
    zero = f.phi(f.prepare(np.zeros((64,) + v.shape[1:]), xg)).mean(axis=0)
    zero_data = f.phi(f.prepare(np.zeros_like(v), c)).mean(axis=0)
    assert zero[pot] > 1.5 * zero_data[pot]   # the scaled conditions have a larger <x^4>
    assert np.isclose(target[pot], plain[pot] - zero_data[pot] + zero[pot])


def test_the_conditions_own_part_no_longer_counts_as_mismatch(fitted):
    """On the generated conditions, the refinement starts closer to the target without the
    conditions' own difference from the data's; the same chains otherwise."""
    x, model, _ = fitted
    runs = {}
    for part in ("generated", "data"):
        runs[part] = refine_variances(copy.deepcopy(model), x, levels=(3, 2), n=(128, 64),
                                      condition_part=part)
    lv = {p: runs[p]["per_level"]["j=3"] for p in runs}
    assert lv["generated"]["mismatch_before"] < 0.8 * lv["data"]["mismatch_before"]
    assert runs["generated"]["condition_part"] == "generated"
    assert lv["generated"]["condition_part"] == "generated" and lv["data"]["condition_part"] == "data"
    with pytest.raises(ValueError, match="condition_part"):
        refine_variances(copy.deepcopy(model), x, levels=(3, 2), n=(128, 64),
                         condition_part="paired")


def test_below_an_ordered_conditional_the_generated_conditions_part_is_the_default(fitted):
    """The default ("auto") takes the condition-only part on the generated conditions at a level
    whose coarser conditional held its potential at 0 (ordered data: the β = 0.76 regression of
    scale 2), the data's target elsewhere (critical data: the potential's making up for the
    generated conditions keeps scale 1 and the one-point law right)."""
    x, model, _ = fitted
    ordered = copy.deepcopy(model)
    ordered.conditionals[2].fit["potential_held_at_zero"] = True   # as j = 3 at β = 0.76
    auto = refine_variances(copy.deepcopy(ordered), x, levels=(3, 2), n=(128, 64))
    assert auto["condition_part"] == "auto"
    assert [auto["per_level"][f"j={j}"]["condition_part"] for j in (3, 2)] == ["data",
                                                                              "generated"]
    for part in ("generated", "data"):   # the same chains: the same start but for the target
        rec = refine_variances(copy.deepcopy(ordered), x, levels=(3, 2), n=(128, 64),
                               condition_part=part)
        same = rec["per_level"]["j=2"]["mismatch_before"] == auto["per_level"]["j=2"][
            "mismatch_before"]
        assert same == (part == "generated")
    plain = refine_variances(copy.deepcopy(model), x, levels=(3, 2), n=(128, 64))
    assert [plain["per_level"][f"j={j}"]["condition_part"] for j in (3, 2)] == ["data", "data"]


def test_reports_each_level_and_stops_between_levels(fitted):
    x, model, _ = fitted
    m = copy.deepcopy(model)
    stop = threading.Event()
    seen = []
    for j, rec in iter_refine_variances(m, x, levels=(3, 2), n=(128, 64), stop=stop):
        seen.append(j)
        stop.set()   # after the first level
    assert seen == [3, None]
    assert rec["stopped"] and rec["per_level"]["j=2"] == {"kept": False, "reason": "stopped"}
    assert np.array_equal(m.conditionals[1].theta, model.conditionals[1].theta)
    assert not np.array_equal(m.conditionals[2].theta, model.conditionals[2].theta)


def test_the_fit_reports_the_refinement_per_level_and_honours_stop():
    """``WCRGModel.iter_fit`` yields one report per factor, then one per refined level (the app's
    progress bar moves during the refinement); a stop set during the refinement ends the fit
    stopped."""
    x = generate_phi4(size=32, n_samples=64, beta=0.68, seed=5).fields.astype(np.float64)
    reps = list(WCRGModel("phi4", 3, "db4", radius=1).iter_fit(x, refine_variances=True))
    steps = [(r.step, r.total, r.info.get("scale")) for r in reps[:-1]]
    assert [s for s, _, _ in steps] == list(range(1, 8)) and {t for _, t, _ in steps} == {7}
    assert [sc for _, _, sc in steps[4:]] == [f"scale {j} (variances on generated fields)"
                                              for j in (3, 2, 1)]
    assert reps[-1].done and not reps[-1].stopped and reps[-1].step == reps[-1].total
    stop = threading.Event()
    model = WCRGModel("phi4", 3, "db4", radius=1)
    out = []
    for r in model.iter_fit(x, refine_variances=True, stop=stop):
        out.append(r)
        if "variances" in str(r.info.get("scale", "")):
            stop.set()
    assert out[-1].done and out[-1].stopped and len(out) == 4 + 1 + 1   # factors, j = 3, end
    assert model.provenance["refine_variances"]["stopped"]
