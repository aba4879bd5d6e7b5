"""Orthogonal periodic 2D wavelet transform on batches of fields ``(..., L, L)`` (PyWavelets,
``mode="periodization"``, computed in float64): one step maps x_{j-1} (side L) to its low-pass x_j
and three detail channels x̄_j (3, L/2, L/2) stacked on axis -3 as ``"HL"`` (high-pass along
axis -2 / y), ``"LH"`` (along axis -1 / x), ``"HH"`` (diagonal); ``"LL"`` is the low-pass. Scales
are numbered from the finest, j = 1; ``decompose(x, J)`` returns ``(x_J, [x̄_1, ..., x̄_J])``. No
normalisation inside the transform. See docs/models.md, "Orthogonal periodic wavelet step".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pywt

DEFAULT_WAVELET = "db4"
WAVELETS: tuple[str, ...] = (
    ("haar",) + tuple(f"db{k}" for k in range(2, 9)) + tuple(f"sym{k}" for k in range(2, 9))
)
DETAIL_CHANNELS: tuple[str, str, str] = ("HL", "LH", "HH")
LOW_CHANNEL = "LL"
_MODE = "periodization"
_AXES = (-2, -1)


# ------------------------------------------------------------------ validation
def check_wavelet(wavelet: str) -> str:
    """Return the canonical (lower-case) wavelet name or raise ValueError with the allowed list."""
    if not isinstance(wavelet, str):
        raise ValueError(f"wavelet must be a name such as 'db4', got {wavelet!r}")
    name = wavelet.strip().lower()
    if name == "db1":
        name = "haar"
    if name not in WAVELETS:
        raise ValueError(
            f"unsupported wavelet {wavelet!r}: choose one of the orthogonal wavelets "
            f"{', '.join(WAVELETS)}"
        )
    return name


def filter_length(wavelet: str = DEFAULT_WAVELET) -> int:
    """Number of taps of the wavelet's filters (2 for haar, 2k for db<k> and sym<k>)."""
    return pywt.Wavelet(check_wavelet(wavelet)).dec_len


def max_levels(L: int) -> int:
    """Largest J such that L is divisible by 2^J (so ``decompose(x, J)`` is allowed)."""
    L = _check_side(L)
    J = 0
    while L % 2 == 0:
        L //= 2
        J += 1
    return J


def check_size(L: int, J: int = 1) -> None:
    """Raise ValueError unless a field of side L can be decomposed over J levels."""
    L = _check_side(L)
    if not isinstance(J, (int, np.integer)) or isinstance(J, bool) or J < 0:
        raise ValueError(f"the number of scales J must be an integer >= 0, got {J!r}")
    if L % (2**J) != 0:
        raise ValueError(
            f"field side {L} is not divisible by 2^J = {2**J} (J = {J}); "
            f"at most J = {max_levels(L)} levels are possible for this size"
        )


def _check_side(L) -> int:
    if not isinstance(L, (int, np.integer)) or isinstance(L, bool) or L < 1:
        raise ValueError(f"field side must be a positive integer, got {L!r}")
    return int(L)


def _as_field(x, what: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"{what} must be a field (L, L) or a batch (N, L, L), got shape {x.shape}")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{what} must be square in its last two axes, got shape {x.shape}")
    return x


# ------------------------------------------------------------------ one step
def analysis(x, wavelet: str = DEFAULT_WAVELET) -> tuple[np.ndarray, np.ndarray]:
    """One orthogonal step: x (..., L, L) -> (low (..., L/2, L/2), details (..., 3, L/2, L/2))."""
    wavelet = check_wavelet(wavelet)
    x = _as_field(x)
    L = x.shape[-1]
    if L % 2:
        raise ValueError(f"one wavelet step needs an even side, got {L}")
    low, (ch, cv, cd) = pywt.dwt2(x, wavelet, mode=_MODE, axes=_AXES)
    return low, np.stack((ch, cv, cd), axis=-3)


def synthesis(low, details, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """Inverse (= transpose) of :func:`analysis`: (low, details) -> x (..., L, L).

    ``low`` may be None (treated as zeros): synthesis from the details only.
    """
    wavelet = check_wavelet(wavelet)
    details = np.asarray(details, dtype=np.float64)
    if details.ndim < 3 or details.shape[-3] != 3 or details.shape[-1] != details.shape[-2]:
        raise ValueError(f"details must have shape (..., 3, n, n), got {details.shape}")
    if low is None:
        low = np.zeros(details.shape[:-3] + details.shape[-2:])
    low = np.asarray(low, dtype=np.float64)
    if low.shape != details.shape[:-3] + details.shape[-2:]:
        raise ValueError(
            f"low-pass shape {low.shape} does not match details shape {details.shape} "
            f"(expected {details.shape[:-3] + details.shape[-2:]})"
        )
    return pywt.idwt2(
        (low, (details[..., 0, :, :], details[..., 1, :, :], details[..., 2, :, :])),
        wavelet, mode=_MODE, axes=_AXES,
    )


# ------------------------------------------------------------------ J levels
def decompose(x, J: int, wavelet: str = DEFAULT_WAVELET) -> tuple[np.ndarray, list[np.ndarray]]:
    """J steps: x -> (x_J (..., L/2^J, L/2^J), [x̄_1, ..., x̄_J]), x̄_1 the finest (..., 3, L/2, L/2)."""
    wavelet = check_wavelet(wavelet)
    x = _as_field(x)
    check_size(x.shape[-1], J)
    details = []
    for _ in range(J):
        x, d = analysis(x, wavelet)
        details.append(d)
    return x, details


def reconstruct(low, details: list, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """Inverse of :func:`decompose`: (x_J, [x̄_1, ..., x̄_J]) -> x."""
    x = np.asarray(low, dtype=np.float64)
    for d in reversed(list(details)):
        x = synthesis(x, d, wavelet)
    return x


def low_passes(x, J: int, wavelet: str = DEFAULT_WAVELET) -> list[np.ndarray]:
    """[x_0 = x, x_1, ..., x_J]: the low-pass fields at every scale."""
    wavelet = check_wavelet(wavelet)
    x = _as_field(x)
    check_size(x.shape[-1], J)
    out = [x]
    for _ in range(J):
        x, _d = analysis(x, wavelet)
        out.append(x)
    return out


# ------------------------------------------------------------------ per-scale statistics
@dataclass
class ScaleStats:
    """Per-scale statistics of a data set of fields (what the WCRG model normalises by).

    ``detail_std[j-1]`` is σ_j, the root-mean-square of the three detail channels x̄_j over samples
    and positions (around 0: for a stationary field E[x̄_j] = 0 exactly, the high-pass filter
    annihilating constants). ``detail_std_channels[j-1]`` is the same per channel (HL, LH, HH).
    ``low_mean[j]``, ``low_std[j]`` describe x_j for j = 0..J (x_0 the field itself).

    Normalising x̄_j -> z_j = x̄_j / σ_j is a constant Jacobian:
        log p(x̄_j | x_j) = log p(z_j | x_j) - n_j log σ_j,   n_j = 3 (L / 2^j)^2,
    see :meth:`log_jacobian`.
    """

    wavelet: str
    J: int
    L: int
    n_samples: int
    detail_std: np.ndarray           # (J,)
    detail_std_channels: np.ndarray  # (J, 3)
    low_mean: np.ndarray             # (J + 1,)
    low_std: np.ndarray              # (J + 1,)

    def n_details(self, j: int) -> int:
        """Number of detail coefficients at scale j (1-based)."""
        self._check_j(j)
        return 3 * (self.L // 2**j) ** 2

    def log_jacobian(self, j: int) -> float:
        """n_j log σ_j: subtract from a log density in normalised variables z_j to get x̄_j's."""
        self._check_j(j)
        return float(self.n_details(j) * np.log(self.detail_std[j - 1]))

    def _check_j(self, j: int) -> None:
        if not 1 <= j <= self.J:
            raise ValueError(f"scale j must be in 1..{self.J}, got {j}")

    def to_dict(self) -> dict:
        """JSON-able dictionary (lists of floats)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                d[k] = v.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ScaleStats:
        return cls(
            wavelet=check_wavelet(d["wavelet"]), J=int(d["J"]), L=int(d["L"]),
            n_samples=int(d["n_samples"]),
            detail_std=np.asarray(d["detail_std"], dtype=np.float64),
            detail_std_channels=np.asarray(d["detail_std_channels"], dtype=np.float64),
            low_mean=np.asarray(d["low_mean"], dtype=np.float64),
            low_std=np.asarray(d["low_std"], dtype=np.float64),
        )


def scale_stats(x, J: int, wavelet: str = DEFAULT_WAVELET, chunk: int = 64) -> ScaleStats:
    """Per-scale standard deviations of the details and low-passes of a batch x (N, L, L).

    Streams over chunks of ``chunk`` samples so large data sets do not need float64 copies.
    """
    wavelet = check_wavelet(wavelet)
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != x.shape[-2] or len(x) == 0:
        raise ValueError(f"expected a non-empty batch of square fields (N, L, L), got shape {x.shape}")
    L = x.shape[-1]
    check_size(L, J)
    d2 = np.zeros((J, 3))
    lsum = np.zeros(J + 1)
    l2 = np.zeros(J + 1)
    for s in range(0, len(x), chunk):
        low = np.asarray(x[s: s + chunk], dtype=np.float64)
        lsum[0] += low.sum()
        l2[0] += np.square(low).sum()
        for j in range(1, J + 1):
            low, det = analysis(low, wavelet)
            d2[j - 1] += np.square(det).sum(axis=(0, 2, 3))
            lsum[j] += low.sum()
            l2[j] += np.square(low).sum()
    N = len(x)
    side = L // 2 ** np.arange(J + 1)
    count_low = N * side.astype(np.float64) ** 2
    count_det = count_low[1:]
    low_mean = lsum / count_low
    low_var = np.clip(l2 / count_low - low_mean**2, 0.0, None)
    return ScaleStats(
        wavelet=wavelet, J=int(J), L=int(L), n_samples=int(N),
        detail_std=np.sqrt(d2.sum(axis=1) / (3 * count_det)),
        detail_std_channels=np.sqrt(d2 / count_det[:, None]),
        low_mean=low_mean,
        low_std=np.sqrt(low_var),
    )


# ------------------------------------------------------------------ projector onto details
def detail_projector_diagonal(L: int, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """Diagonal d (L, L) of the orthogonal projector P = B B^T onto one level's detail space.

    B maps details (3, L/2, L/2) to a field (L, L) (synthesis with a zero low-pass), so
    d_i = ||B^T e_i||^2 = squared norm of the details of analysis(e_i). The transform commutes with
    shifts by 2, so d is 2-periodic in each direction and sum(d) = trace P = 3 L^2 / 4; it is
    computed from the four impulses of one 2 x 2 cell. Read-only, cached per (L, wavelet).

    It gives exact Laplacians of scalar potentials through the inverse transform:
    Δ_x̄ Σ_i ρ(x_{j-1}(i)) = Σ_i ρ''(x_{j-1}(i)) d_i.
    """
    return _detail_projector_diagonal(_check_side(L), check_wavelet(wavelet))


@lru_cache(maxsize=64)
def _detail_projector_diagonal(L: int, wavelet: str) -> np.ndarray:
    if L % 2:
        raise ValueError(f"one wavelet step needs an even side, got {L}")
    impulses = np.zeros((4, L, L))
    for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        impulses[k, a, b] = 1.0
    _low, det = analysis(impulses, wavelet)
    cell = np.square(det).sum(axis=(1, 2, 3)).reshape(2, 2)
    d = np.tile(cell, (L // 2, L // 2))
    d.setflags(write=False)
    return d


# ------------------------------------------------------------------ the step as matrices
# The same one-level step, as the linear maps the samplers' hot loop applies in batches: the 1D
# periodised synthesis matrix (a field's rows and columns are transformed separably) and, per
# frequency, the 4 x 4 matrix taking the spectra of the four channels to those of the field's four
# polyphase components. Both are read off PyWavelets' own synthesis of unit impulses, so they follow
# its convention exactly (tests/core/test_wavelets.py checks the transforms they give against
# :func:`analysis` and :func:`synthesis`).

#: (row, column) parity of the polyphase components x[..., p::2, q::2] of a field, in the order of
#: :func:`polyphase` and of the rows of :func:`polyphase_spectra`
POLYPHASE: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))
#: (band along y, band along x) of each channel HL, LH, HH, LL (0 = low-pass, 1 = high-pass)
CHANNEL_BANDS: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (1, 1), (0, 0))


def polyphase(x) -> np.ndarray:
    """(..., L, L) -> (..., 4, L/2, L/2): the components x[..., p::2, q::2] in :data:`POLYPHASE` order."""
    x = _as_field(x)
    if x.shape[-1] % 2:
        raise ValueError(f"polyphase components need an even side, got {x.shape[-1]}")
    return np.stack([x[..., p::2, q::2] for p, q in POLYPHASE], axis=-3)


def from_polyphase(xp) -> np.ndarray:
    """Inverse of :func:`polyphase`: (..., 4, n, n) -> (..., 2n, 2n)."""
    xp = np.asarray(xp, dtype=np.float64)
    if xp.ndim < 3 or xp.shape[-3] != 4 or xp.shape[-1] != xp.shape[-2]:
        raise ValueError(f"polyphase components must have shape (..., 4, n, n), got {xp.shape}")
    n = xp.shape[-1]
    x = np.empty(xp.shape[:-3] + (2 * n, 2 * n))
    for i, (p, q) in enumerate(POLYPHASE):
        x[..., p::2, q::2] = xp[..., i, :, :]
    return x


def synthesis_matrix(L: int, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """The 1D step's synthesis matrix G (L, L): a signal s = G [a; d] from its low-pass a (L/2)
    and detail d (L/2) coefficients. G is orthogonal (the analysis is Gᵀ), and one 2D step is
    separable: x = G Z Gᵀ with Z = [[LL, LH], [HL, HH]] (rows along y, columns along x; the
    blocks placed by :data:`CHANNEL_BANDS`). Read-only, cached per (L, wavelet)."""
    return _synthesis_matrix(_check_side(L), check_wavelet(wavelet))


@lru_cache(maxsize=64)
def _synthesis_matrix(L: int, wavelet: str) -> np.ndarray:
    if L % 2:
        raise ValueError(f"one wavelet step needs an even side, got {L}")
    n = L // 2
    units = np.eye(L)
    G = pywt.idwt(units[:, :n], units[:, n:], wavelet, mode=_MODE, axis=-1).T
    G = np.ascontiguousarray(G)
    G.setflags(write=False)
    return G


def polyphase_spectra(n: int, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """P (4, 4, n, n//2 + 1) complex: the synthesis of one step in Fourier space.

    The step commutes with shifts by 2, so each polyphase component of x = synthesis(low, details)
    (side 2n) is a periodic convolution of the channels (side n): in terms of ``rfft2`` spectra,
    x̂_p(k) = Σ_c P[p, c](k) X̂_c(k) with p in :data:`POLYPHASE` order and c = HL, LH, HH, LL. The
    step being orthogonal, the analysis is the conjugate transpose, frequency by frequency:
    X̂_c(k) = Σ_p conj(P[p, c](k)) x̂_p(k). Read-only, cached per (n, wavelet)."""
    n = _check_side(n)
    return _polyphase_spectra(n, check_wavelet(wavelet))


@lru_cache(maxsize=64)
def _polyphase_spectra(n: int, wavelet: str) -> np.ndarray:
    impulses = np.zeros((4, 4, n, n))  # a unit impulse at the origin of each channel in turn
    for c in range(4):
        impulses[c, c, 0, 0] = 1.0
    responses = polyphase(synthesis(impulses[:, 3], impulses[:, :3], wavelet))  # (c, p, n, n)
    P = np.ascontiguousarray(np.fft.rfft2(responses).transpose(1, 0, 2, 3))
    P.setflags(write=False)
    return P


def _channels(low, details) -> np.ndarray:
    details = np.asarray(details, dtype=np.float64)
    if details.ndim < 3 or details.shape[-3] != 3 or details.shape[-1] != details.shape[-2]:
        raise ValueError(f"details must have shape (..., 3, n, n), got {details.shape}")
    low = np.asarray(low, dtype=np.float64)
    if low.shape != details.shape[:-3] + details.shape[-2:]:
        raise ValueError(f"low-pass shape {low.shape} does not match details shape {details.shape}")
    return np.concatenate([details, low[..., None, :, :]], axis=-3)


def fourier_synthesis(low, details, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """:func:`synthesis` computed in Fourier space with :func:`polyphase_spectra` (same result to
    round-off)."""
    X = _channels(low, details)
    n = X.shape[-1]
    P = polyphase_spectra(n, wavelet)
    xh = np.einsum("pckm,...ckm->...pkm", P, np.fft.rfft2(X))
    return from_polyphase(np.fft.irfft2(xh, s=(n, n)))


def fourier_analysis(x, wavelet: str = DEFAULT_WAVELET) -> tuple[np.ndarray, np.ndarray]:
    """:func:`analysis` computed in Fourier space with :func:`polyphase_spectra` (same result to
    round-off): (low, details)."""
    xp = polyphase(x)
    n = xp.shape[-1]
    P = polyphase_spectra(n, wavelet)
    X = np.fft.irfft2(np.einsum("pckm,...pkm->...ckm", P.conj(), np.fft.rfft2(xp)), s=(n, n))
    return X[..., 3, :, :], X[..., :3, :, :]


def matrix_synthesis(low, details, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """:func:`synthesis` as x = G Z Gᵀ with G = :func:`synthesis_matrix` (same result to
    round-off)."""
    X = _channels(low, details)
    n = X.shape[-1]
    Z = np.empty(X.shape[:-3] + (2, n, 2, n))
    for c, (by, bx) in enumerate(CHANNEL_BANDS):
        Z[..., by, :, bx, :] = X[..., c, :, :]
    G = synthesis_matrix(2 * n, wavelet)
    return G @ Z.reshape(X.shape[:-3] + (2 * n, 2 * n)) @ G.T


def matrix_analysis(x, wavelet: str = DEFAULT_WAVELET) -> tuple[np.ndarray, np.ndarray]:
    """:func:`analysis` as Z = Gᵀ x G with G = :func:`synthesis_matrix` (same result to
    round-off): (low, details)."""
    x = _as_field(x)
    L = x.shape[-1]
    if L % 2:
        raise ValueError(f"one wavelet step needs an even side, got {L}")
    G = synthesis_matrix(L, wavelet)
    Z = (G.T @ x @ G).reshape(x.shape[:-2] + (2, L // 2, 2, L // 2))
    bands = [Z[..., by, :, bx, :] for by, bx in CHANNEL_BANDS]
    return bands[3], np.stack(bands[:3], axis=-3)
