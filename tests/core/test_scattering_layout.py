"""The layout of the gathered rows of the scattering Gram sums: a scale whose union of supports
is its grid's whole half block is gathered by strided copies, which must give exactly the rows
of the index gather, and the statistics and their gradient must not depend on that choice."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from explorer.core import scattering as sc
from explorer.core.scattering import filters
from explorer.core.scattering import transform as tr

SEED = 2024_07


@pytest.fixture
def no_full(monkeypatch):
    """Banks built without whole-block scales (every union gathered by index)."""
    def build(*args):
        filters._filter_bank.cache_clear()
        monkeypatch.setattr(filters, "FULL", 2.0)
        bank = sc.filter_bank(*args)
        monkeypatch.setattr(filters, "FULL", filters.FULL)
        filters._filter_bank.cache_clear()
        return bank
    filters._filter_bank.cache_clear()
    yield build
    filters._filter_bank.cache_clear()


@pytest.mark.parametrize("L", [4, 8])
def test_whole_block_scale_copies_the_rows_of_the_index_gather(L):
    bank = sc.filter_bank(128, 3, L)
    assert bank.full[0] and not any(bank.full[1:])
    m, h = bank.side[0], bank.side[0] // 2
    assert bank.support[0].size == m * h
    n = bank.chunks[0][0][1] // 2
    assert n % h == 0 and len({w for _, w in bank.chunks[0]}) == 1 and len(bank.chunks[0]) > 1
    rng = np.random.default_rng(SEED)
    for dtype in (np.complex128, np.complex64):
        H = (rng.standard_normal((2, 3, m, h + 1))
             + 1j * rng.standard_normal((2, 3, m, h + 1))).astype(dtype)
        A = np.empty((2, 4, bank.gather[0][m].size), dtype=H.real.dtype)
        tr._gather_into(A, 1, H, bank, 0)
        expect = np.take(H.reshape(2, 3, -1).view(A.dtype), bank.gather[0][m], axis=2)
        assert np.array_equal(A[:, 1:], expect)


def test_whole_block_statistics_and_gradient_match_the_index_gather(no_full):
    x = np.random.default_rng(SEED).standard_normal((2, 128, 128)) ** 3
    full, gathered = sc.filter_bank(128, 3, 4), no_full(128, 3, 4)
    assert full.full[0] and not any(gathered.full)
    assert gathered.support[0].size < full.support[0].size
    a, b = tr._forward(x, full, keep=True), tr._forward(x, gathered, keep=True)
    for name in ("S1", "S2", "S3", "S4"):
        u, v = getattr(a, name), getattr(b, name)
        assert np.allclose(u, v, rtol=0, atol=1e-13 * np.abs(v).max()), name
    rng = np.random.default_rng(SEED + 1)
    grads = [rng.standard_normal(s.shape) + (1j * rng.standard_normal(s.shape) if k > 1 else 0)
             for k, s in enumerate((a.S1, a.S2, a.S3, a.S4))]
    ga, gb = tr._backward(a, *grads), tr._backward(b, *grads)
    assert np.allclose(ga, gb, rtol=0, atol=1e-12 * np.abs(gb).max())


def test_small_ufunc_buffers_change_no_number_and_leave_the_callers_setting(monkeypatch):
    """The transforms run with numpy's ufunc buffer at UFUNC_BUFSIZE elements (an execution
    choice, on every thread of the pool): the statistics and the synthesis gradient are the same
    bit for bit as with numpy's default buffer, and the caller's own buffer size is restored."""
    x = np.random.default_rng(SEED + 5).standard_normal((3, 64, 64)) ** 3
    bank = sc.filter_bank(64, 4, 4)
    seen, tasks = [], []
    old_forward, old_rows = tr._forward_impl, tr._orientation_rows

    def spy(*args):
        seen.append(np.getbufsize())
        return old_forward(*args)

    def spy_rows(*args):
        tasks.append((threading.get_ident(), np.getbufsize()))
        return old_rows(*args)

    monkeypatch.setattr(tr, "_forward_impl", spy)
    monkeypatch.setattr(tr, "_orientation_rows", spy_rows)
    before = np.getbufsize()
    np.setbufsize(4096)
    try:
        small = tr._forward(x, bank, workers=2)
        assert np.getbufsize() == 4096 and seen == [tr.UFUNC_BUFSIZE]
        main = threading.get_ident()       # the tasks ran in the pool, every one under the setting
        assert tasks and main not in {t for t, _ in tasks}
        assert {b for _, b in tasks} == {tr.UFUNC_BUFSIZE}
        monkeypatch.setattr(tr, "UFUNC_BUFSIZE", 8192)
        default = tr._forward(x, bank, workers=2)
        assert np.getbufsize() == 4096
    finally:
        np.setbufsize(before)
    for name in ("S1", "S2", "S3", "S4"):
        assert np.array_equal(getattr(small, name), getattr(default, name)), name
    obj = sc.SynthesisObjective(x[:1], J=4, L=4, precision="double")
    z = np.random.default_rng(SEED + 6).standard_normal((2, 64, 64))
    monkeypatch.setattr(tr, "UFUNC_BUFSIZE", 512)
    loss_small, g_small = obj(z)
    monkeypatch.setattr(tr, "UFUNC_BUFSIZE", 8192)
    loss_default, g_default = obj(z)
    assert loss_small == loss_default and np.array_equal(g_small, g_default)
