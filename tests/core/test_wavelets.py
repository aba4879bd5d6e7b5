"""Orthogonal periodic wavelet transform: exact inverse, orthogonality, adjointness, projector."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import wavelets as wv

SEED = 20240611


def rng(k: int = 0) -> np.random.Generator:
    return np.random.default_rng(SEED + k)


def brute_force_synthesis_matrix(L: int, wavelet: str) -> np.ndarray:
    """B (L*L, 3*(L/2)^2): columns = synthesis of unit detail coefficients (zero low-pass)."""
    n = L // 2
    units = np.eye(3 * n * n).reshape(3 * n * n, 3, n, n)
    return wv.synthesis(np.zeros((3 * n * n, n, n)), units, wavelet).reshape(3 * n * n, L * L).T


# ------------------------------------------------------------------ one step
@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "sym4", "db8"])
@pytest.mark.parametrize("L", [2, 4, 8, 16])
def test_one_step_inverse_and_shapes(wavelet, L):
    x = rng(L).standard_normal((3, L, L))
    low, det = wv.analysis(x, wavelet)
    assert low.shape == (3, L // 2, L // 2)
    assert det.shape == (3, 3, L // 2, L // 2)
    assert np.abs(wv.synthesis(low, det, wavelet) - x).max() < 1e-10


@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym8", "db8"])
@pytest.mark.parametrize("L", [2, 4, 16])
def test_one_step_is_orthogonal(wavelet, L):
    g = rng(1)
    x, y = g.standard_normal((2, 5, L, L))
    lx, dx = wv.analysis(x, wavelet)
    ly, dy = wv.analysis(y, wavelet)
    # Parseval per sample, and conservation of inner products
    norm_x = np.sum(x**2, axis=(1, 2))
    assert np.allclose(np.sum(lx**2, axis=(1, 2)) + np.sum(dx**2, axis=(1, 2, 3)), norm_x,
                       rtol=1e-10, atol=0)
    inner = np.sum(x * y, axis=(1, 2))
    inner_w = np.sum(lx * ly, axis=(1, 2)) + np.sum(dx * dy, axis=(1, 2, 3))
    assert np.abs(inner_w - inner).max() < 1e-10 * L * L


@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym4"])
def test_synthesis_is_the_transpose_of_analysis(wavelet):
    g = rng(2)
    L = 16
    x = g.standard_normal((4, L, L))
    a = g.standard_normal((4, L // 2, L // 2))
    d = g.standard_normal((4, 3, L // 2, L // 2))
    la, da = wv.analysis(x, wavelet)
    lhs = np.sum(la * a, axis=(1, 2)) + np.sum(da * d, axis=(1, 2, 3))
    rhs = np.sum(x * wv.synthesis(a, d, wavelet), axis=(1, 2))
    assert np.abs(lhs - rhs).max() < 1e-10


def test_detail_channel_convention():
    """HL = high-pass along axis -2 (y), LH = high-pass along axis -1 (x)."""
    L = 8
    alt = (-1.0) ** np.arange(L)
    along_x = np.tile(alt, (L, 1))           # oscillates along axis -1
    along_y = along_x.T.copy()               # oscillates along axis -2
    for field, channel in ((along_y, 0), (along_x, 1)):
        low, det = wv.analysis(field[None], "haar")
        energy = np.sum(det[0] ** 2, axis=(1, 2))
        assert np.isclose(energy[channel], L * L) and np.allclose(np.delete(energy, channel), 0)
        assert np.allclose(low, 0)
    assert wv.DETAIL_CHANNELS == ("HL", "LH", "HH")


def test_unbatched_field_and_zero_low_synthesis():
    x = rng(3).standard_normal((8, 8))
    low, det = wv.analysis(x)
    assert low.shape == (4, 4) and det.shape == (3, 4, 4)
    assert np.allclose(wv.synthesis(None, det), wv.synthesis(np.zeros((4, 4)), det))


# ------------------------------------------------------------------ J levels
@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym6"])
@pytest.mark.parametrize("J", [1, 2, 3, 5])
def test_decompose_reconstruct(wavelet, J):
    L = 32
    x = rng(J).standard_normal((2, L, L))
    xJ, details = wv.decompose(x, J, wavelet)
    assert xJ.shape == (2, L >> J, L >> J)
    assert [d.shape for d in details] == [(2, 3, L >> j, L >> j) for j in range(1, J + 1)]
    assert np.abs(wv.reconstruct(xJ, details, wavelet) - x).max() < 1e-10
    total = np.sum(xJ**2) + sum(np.sum(d**2) for d in details)
    assert np.isclose(total, np.sum(x**2), rtol=1e-11)
    lows = wv.low_passes(x, J, wavelet)
    assert len(lows) == J + 1 and np.allclose(lows[-1], xJ) and lows[0] is not None


def test_decompose_down_to_one_pixel():
    """Periodization stays orthogonal below the filter length (db8: 16 taps on 2 x 2)."""
    x = rng(4).standard_normal((3, 16, 16))
    xJ, details = wv.decompose(x, 4, "db8")
    assert xJ.shape == (3, 1, 1)
    assert np.abs(wv.reconstruct(xJ, details, "db8") - x).max() < 1e-10
    # the 1 x 1 low-pass of an orthonormal transform is the mean times L (sum / sqrt(L^2) * ...)
    assert np.allclose(xJ[:, 0, 0], x.sum(axis=(1, 2)) / 16)


def test_J0_is_identity():
    x = rng(5).standard_normal((2, 8, 8))
    xJ, details = wv.decompose(x, 0)
    assert details == [] and np.array_equal(xJ, x)


# ------------------------------------------------------------------ statistics
def test_scale_stats_white_noise():
    """An orthogonal transform keeps white noise white: every std is 1 within sampling error."""
    N, L, J = 64, 32, 3
    x = rng(6).standard_normal((N, L, L))
    st = wv.scale_stats(x, J, "db4", chunk=16)
    assert st.detail_std.shape == (J,) and st.detail_std_channels.shape == (J, 3)
    assert st.low_std.shape == (J + 1,) and st.low_mean.shape == (J + 1,)
    for j in range(1, J + 1):
        n = 3 * N * (L >> j) ** 2
        # std of a sample std of n unit Gaussians ~ 1/sqrt(2n); 5 sigma
        assert abs(st.detail_std[j - 1] - 1) < 5 / np.sqrt(2 * n)
        assert abs(st.low_std[j] - 1) < 5 / np.sqrt(2 * n / 3)
        assert st.n_details(j) == 3 * (L >> j) ** 2
        assert np.isclose(st.log_jacobian(j), st.n_details(j) * np.log(st.detail_std[j - 1]))
    d = st.to_dict()
    back = wv.ScaleStats.from_dict(d)
    assert np.array_equal(back.detail_std, st.detail_std) and back.wavelet == "db4"


def test_scale_stats_constant_field_haar():
    """A constant c: details vanish, the orthonormal haar low-pass at scale j is c 2^j."""
    x = np.full((2, 16, 16), 0.5)
    st = wv.scale_stats(x, 3, "haar")
    assert np.allclose(st.detail_std, 0, atol=1e-14)
    assert np.allclose(st.low_mean, 0.5 * 2.0 ** np.arange(4))
    assert np.allclose(st.low_std, 0, atol=1e-7)


# ------------------------------------------------------------------ projector onto details
@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "sym4"])
def test_detail_projector_diagonal_brute_force(wavelet):
    L = 8
    B = brute_force_synthesis_matrix(L, wavelet)
    assert np.allclose(B.T @ B, np.eye(B.shape[1]), atol=1e-10)       # orthonormal columns
    P = B @ B.T
    d = wv.detail_projector_diagonal(L, wavelet)
    assert d.shape == (L, L)
    assert np.abs(d - np.diag(P).reshape(L, L)).max() < 1e-12
    assert np.isclose(d.sum(), 3 * L * L / 4)
    # 2-periodic in each direction, values in [0, 1]
    assert np.allclose(d, np.roll(d, 2, axis=0)) and np.allclose(d, np.roll(d, 2, axis=1))
    assert d.min() >= 0 and d.max() <= 1 + 1e-12
    assert not d.flags.writeable


def test_detail_projector_haar_is_three_quarters():
    assert np.allclose(wv.detail_projector_diagonal(16, "haar"), 0.75)


def test_detail_projector_db4_is_not_constant():
    d = wv.detail_projector_diagonal(16, "db4")
    assert np.isclose(d.sum(), 3 * 16 * 16 / 4) and np.ptp(d) > 1e-3


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("name", ["db20", "bior2.2", "coif1", "morlet", "", None, 4])
def test_bad_wavelet_names(name):
    with pytest.raises(ValueError, match="wavelet"):
        wv.check_wavelet(name)
    with pytest.raises(ValueError, match="wavelet"):
        wv.analysis(np.zeros((1, 8, 8)), name)


def test_wavelet_names_are_normalised():
    assert wv.check_wavelet("DB4") == "db4"
    assert wv.check_wavelet("db1") == "haar"
    assert wv.filter_length("db4") == 8 and wv.filter_length("haar") == 2


def test_bad_sizes():
    with pytest.raises(ValueError, match="divisible by 2\\^J"):
        wv.decompose(np.zeros((1, 12, 12)), 3)
    with pytest.raises(ValueError, match="even"):
        wv.analysis(np.zeros((1, 7, 7)))
    with pytest.raises(ValueError, match="square"):
        wv.analysis(np.zeros((1, 8, 16)))
    with pytest.raises(ValueError, match="field"):
        wv.analysis(np.zeros(8))
    with pytest.raises(ValueError, match="J"):
        wv.decompose(np.zeros((1, 8, 8)), -1)
    with pytest.raises(ValueError, match="at most J = 3"):
        wv.decompose(np.zeros((1, 8, 8)), 4)
    with pytest.raises(ValueError, match="shape"):
        wv.synthesis(np.zeros((1, 4, 4)), np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="details"):
        wv.synthesis(np.zeros((1, 4, 4)), np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="even"):
        wv.detail_projector_diagonal(7)
    assert wv.max_levels(96) == 5 and wv.max_levels(1) == 0


# ------------------------------------------------------------------ the step as matrices
@pytest.mark.parametrize("wavelet", wv.WAVELETS)
@pytest.mark.parametrize("L", [2, 4, 6, 8, 16, 32])
def test_fourier_and_matrix_steps_agree_with_pywavelets(wavelet, L):
    """The one-level step from the per-frequency polyphase matrices and from the 1D synthesis
    matrix equals PyWavelets' periodised transform, for every offered wavelet, including sides
    shorter than the filter (where the filters wrap around the torus several times)."""
    g = rng(40 + L)
    n = L // 2
    low, det = g.standard_normal((3, n, n)), g.standard_normal((3, 3, n, n))
    x = g.standard_normal((3, L, L))
    ref_x = wv.synthesis(low, det, wavelet)
    ref_low, ref_det = wv.analysis(x, wavelet)
    for synthesis, analysis in ((wv.fourier_synthesis, wv.fourier_analysis),
                                (wv.matrix_synthesis, wv.matrix_analysis)):
        assert np.abs(synthesis(low, det, wavelet) - ref_x).max() < 1e-10
        a_low, a_det = analysis(x, wavelet)
        assert np.abs(a_low - ref_low).max() < 1e-10
        assert np.abs(a_det - ref_det).max() < 1e-10


@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym8"])
def test_step_matrices_are_orthogonal_and_read_only(wavelet):
    for L in (2, 8, 32):
        G = wv.synthesis_matrix(L, wavelet)
        assert np.abs(G.T @ G - np.eye(L)).max() < 1e-10
        P = wv.polyphase_spectra(L // 2, wavelet)
        assert P.shape == (4, 4, L // 2, L // 4 + 1)
        # unitary frequency by frequency, up to the rfft2 normalisation (|P|² sums to 1 per column)
        PP = np.einsum("pckm,pdkm->cdkm", P.conj(), P)
        assert np.abs(PP - np.eye(4)[:, :, None, None]).max() < 1e-10
        for arr in (G, P):
            with pytest.raises(ValueError):
                arr[0, 0] = 1.0


def test_polyphase_components_round_trip():
    x = rng(5).standard_normal((2, 3, 8, 8))
    xp = wv.polyphase(x)
    assert xp.shape == (2, 3, 4, 4, 4)
    assert np.array_equal(xp[..., 1, :, :], x[..., 0::2, 1::2])   # POLYPHASE[1] = (0, 1)
    assert np.array_equal(wv.from_polyphase(xp), x)
    with pytest.raises(ValueError, match="even"):
        wv.polyphase(np.zeros((5, 5)))
