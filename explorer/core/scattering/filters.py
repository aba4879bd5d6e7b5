"""The Morlet filter bank of scattering spectra: J scales × L orientations of Morlet-type wavelets
built on the DFT grid (hence periodic), undecimated (:func:`morlet_bank`, :func:`morlet_transform`)
and on per-scale subsampled grids (:func:`filter_bank`). The science: docs/diagnostics.md,
"Scattering spectra" ("Filter bank").

Scale j is computed on a grid subsampled by s_j = 2^max(0, j-1) (side m_j = M / s_j): the filter is
*defined* as zero outside that grid's frequency box (|k_y|, |k_x| < m_j / 2 in units of 2π/M) and
below ``tol`` × its maximum, so that x⋆ψ_λ on the coarse grid is exactly the subsampled
full-resolution convolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from explorer.core.fields.base import as_batch

#: centre frequency ξ0 of the finest scale, envelope σ0 and relative truncation of the bank
XI0 = 3 * np.pi / 4
SIGMA0 = 0.8
TOL = 1e-3
#: an orientation whose support covers this fraction of its grid's union of supports is summed
#: over the whole union (zero weights elsewhere) rather than gathered
DENSE = 0.7
#: points per chunk of the Gram sums; a scale with fewer than CHUNK_ROWS rows R = 1 + L (j + 1)
#: takes CHUNK × CHUNK_ROWS // R points per chunk (J5 L4 j = 0, R = 5: 3686 points, 1.0-1.15
#: against 1.3-1.45 ms; more points per chunk were slower for R = 9, no faster for R >= 13)
CHUNK = 2048
CHUNK_ROWS = 9
#: a scale with at least STACKED_ROWS rows whose orientations all read the whole union (one
#: stacked product of L R rows per chunk) takes STACKED_SIZE // R points per chunk (at least
#: CHUNK / 4), so that the L weighted copies of its rows stay in the 1 MiB L2 cache (J5 L4 j = 2,
#: R = 13: 1024 points, 2.1 against 1.5 ms; j = 3: 0.9 against 0.6 ms). At L = 8 the larger
#: scales read their supports only, and smaller chunks were slower there
STACKED_ROWS = 13
STACKED_SIZE = 13312
#: a scale whose union of supports covers at least this fraction of its grid's half block (J5 L4
#: j = 0 at 256²: 99.6 %) is summed over the whole block (zero weights on the few points outside)
#: in chunks of whole block rows, so that its rows are laid out by strided copies rather than
#: index gathers (:func:`explorer.core.scattering.transform._gather_into`)
FULL = 0.99


def morlet_bank(L: int, J: int, n_orient: int = 4, xi0: float = XI0,
                sigma0: float = SIGMA0, slant: float = 0.5) -> np.ndarray:
    """Fourier-domain Morlet-type filters (J * n_orient, L, L) on the FFT grid.

    ψ̂_{j,θ}(ω) = g(2^j R_θ ω - ξ0 e_1) - g(ξ0 e_1) g(2^j R_θ ω) with g(u) = exp(-σ0² (u_1² +
    u_2²/slant²)/2): an anisotropic Gabor at centre frequency ξ0 / 2^j, direction θ = πl/n_orient,
    corrected to zero mean. Analytic (one-sided in frequency): x ⋆ ψ is complex."""
    w = 2 * np.pi * np.fft.fftfreq(L)
    wy, wx = np.meshgrid(w, w, indexing="ij")
    out = []

    def g(u1, u2):
        return np.exp(-0.5 * sigma0**2 * (u1**2 + (u2 / slant) ** 2))

    for j in range(J):
        s = 2.0**j
        for o in range(n_orient):
            t = np.pi * o / n_orient
            u1 = s * (np.cos(t) * wx + np.sin(t) * wy)
            u2 = s * (-np.sin(t) * wx + np.cos(t) * wy)
            out.append(g(u1 - xi0, u2) - g(xi0, 0.0) * g(u1, u2))
    return np.asarray(out)


def morlet_transform(fields, J: int, n_orient: int = 4, **bank) -> np.ndarray:
    """Undecimated complex coefficients x ⋆ ψ_{j,θ}: (N, J * n_orient, L, L)."""
    x = as_batch(fields)
    psi = morlet_bank(x.shape[-1], J, n_orient, **bank)
    return np.fft.ifft2(np.fft.fft2(x)[:, None] * psi[None])


@dataclass(frozen=True, eq=False)
class FilterBank:
    """Per-scale grids, box-truncated filters and the weights of the Gram sums.

    ``side[j]`` grid side m_j; ``psi[j]`` (L, m_j, m_j) real filters on that grid (FFT order), zero
    outside the open box |k_y|, |k_x| < m_j/2 and below ``tol`` × their maximum; ``box_idx[j]`` flat
    indices into x's rfft half-plane of the box of grid j (the columns k_x < 0, the right half in
    FFT order, are read conjugated). Gram sums over the full plane are taken over the half-plane
    block of grid j (its m_j rows, columns k_x = 0 .. m_j/2 - 1) with, for orientation l,
    ``even[j][l]`` = c (ψ̂²(k) + ψ̂²(-k)) and ``odd[j][l]`` = c (ψ̂²(k) - ψ̂²(-k)), c = ½ on the
    k_x = 0 column (which holds both k and -k) and 1 elsewhere: for real fields a, b,
    Σ_k a b* ψ̂² = Σ_half [even Re(a b*) + i odd Im(a b*)].

    The Gram sums skip the points where every weight of grid j is zero (a tenth of the block) and
    run over chunks of :func:`chunk_points` points (more with few rows, fewer with many rows all
    read by every orientation), so that each chunk's rows stay in cache while the L orientations
    use them. ``support[j]`` the flat indices (into the half block, m_j × m_j/2) of
    the union of the L supports; the rows gathered there are laid out chunk after chunk, each
    chunk its real parts then its imaginary parts: ``chunks[j]`` the (start, length) of every
    chunk in that layout (length = 2 × its points) and ``gather[j][m]`` the layout as indices into
    the float64 view of the rfft half-plane (m, m/2 + 1) of any grid m >= m_j (grid j's block
    sits in its rows |k_y| < m_j/2 and columns k_x < m_j/2). ``parts[j][l][i]`` what orientation
    l reads of chunk i: (sub, √even for both halves, even for both halves, odd), ``sub`` None
    for the whole chunk (when l's support covers at least :data:`DENSE` of the union; zero
    weights elsewhere) or the local indices [Re of its points | Im of its points]. ``full[j]``:
    the union is the whole half block (see :data:`FULL`), in chunks of equal numbers of whole
    rows. No term changes.
    """

    M: int
    J: int
    L: int
    xi0: float
    sigma0: float
    slant: float
    tol: float
    side: tuple
    psi: tuple
    box_idx: tuple
    support: tuple
    chunks: tuple
    parts: tuple
    gather: tuple
    full: tuple

    @property
    def n_filters(self) -> int:
        return self.J * self.L

    def spec(self) -> dict:
        return {"M": self.M, "J": self.J, "L": self.L, "xi0": self.xi0, "sigma0": self.sigma0,
                "slant": self.slant, "tol": self.tol, "grid_sides": list(self.side)}


def _half_index(k: np.ndarray, m: int) -> np.ndarray:
    """Flat index into an rfft2 half-plane (m, m//2 + 1) of the signed wavenumbers k (P, 2);
    points with k_x < 0 point to -k (whose value is the conjugate)."""
    ky, kx = k[:, 0], k[:, 1]
    neg = kx < 0
    ry = np.where(neg, -ky, ky) % m
    rx = np.where(neg, -kx, kx)
    return (ry * (m // 2 + 1) + rx).astype(np.intp)


def _signed(m: int) -> np.ndarray:
    return np.fft.fftfreq(m, 1.0 / m).astype(int)


def filter_bank(M: int, J: int, L: int = 4, xi0: float = XI0, sigma0: float = SIGMA0,
                slant: float | None = None, tol: float = TOL) -> FilterBank:
    """The (cached) filter bank for fields of side M: the filters of :func:`morlet_bank` at
    orientations θ_ℓ = πℓ/L, slant 4/L by default (kymatio's), on the per-scale grids of the
    module docstring."""
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)) or M < 4 or M & (M - 1):
        raise ValueError(f"the field side must be a power of two >= 4, got {M}")
    if isinstance(J, bool) or not isinstance(J, (int, np.integer)) or J < 1 or 2 ** J > M:
        raise ValueError(f"J must be an integer in 1..log2(M) = {int(math.log2(M))} for side {M}, "
                         f"got {J!r}")
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or not 1 <= L <= 16:
        raise ValueError(f"the number of orientations L must be an integer in 1..16, got {L!r}")
    slant = 4.0 / L if slant is None else float(slant)
    return _filter_bank(int(M), int(J), int(L), float(xi0), float(sigma0), min(slant, 1.0),
                        float(tol))


@lru_cache(maxsize=16)
def _filter_bank(M, J, L, xi0, sigma0, slant, tol) -> FilterBank:
    full = morlet_bank(M, J, L, xi0=xi0, sigma0=sigma0, slant=slant).reshape(J, L, M, M)
    side, psi, box_idx, support, chunks, parts, whole = [], [], [], [], [], [], []
    for j in range(J):
        m = M >> max(0, j - 1)
        h = m // 2
        km = _signed(m)
        ky, kx = np.meshgrid(km, km, indexing="ij")
        f = np.ascontiguousarray(full[j][:, ky % M, kx % M])    # (L, m, m) values on the box
        peak = np.abs(full[j]).max(axis=(1, 2), keepdims=True)
        f = np.where(np.abs(f) >= tol * peak, f, 0.0)
        f[:, h, :] = 0.0                                        # open box: k = -m/2 excluded
        f[:, :, h] = 0.0
        f.setflags(write=False)
        side.append(m)
        psi.append(f)
        box_idx.append(_half_index(np.stack([ky.ravel(), kx.ravel()], 1), M))
        wp = f[:, :, :h] ** 2                                   # ψ̂²(k) on the half block
        wm = (f[:, (-ky[:, :h]) % m, (-kx[:, :h]) % m]) ** 2    # ψ̂²(-k)
        c = np.ones(h)
        c[0] = 0.5
        e = (c * (wp + wm)).reshape(L, -1)
        o = (c * (wp - wm)).reshape(L, -1)
        u = np.flatnonzero((e != 0).any(axis=0))
        whole.append(u.size >= FULL * e.shape[1])
        if whole[-1]:
            u = np.arange(e.shape[1])
        support.append(u)
        ch, pj = _chunks(u, e, o, 1 + L * (j + 1), h if whole[-1] else 0)
        chunks.append(ch)
        parts.append(pj)
    gather = tuple({m: _layout(support[j], chunks[j], side[j], m)
                    for m in sorted({M, *side[: j + 1]})} for j in range(J))
    return FilterBank(M, J, L, xi0, sigma0, slant, tol, tuple(side), tuple(psi), tuple(box_idx),
                      tuple(support), tuple(chunks), tuple(parts), gather, tuple(whole))


def chunk_points(R: int, stacked: bool) -> int:
    """Points per chunk of the Gram sums of a scale with R rows (see :data:`CHUNK`);
    ``stacked``: all its orientations read the whole union (see :data:`STACKED_ROWS`)."""
    if stacked and R >= STACKED_ROWS:
        return max(CHUNK // 4, STACKED_SIZE // R)
    return max(CHUNK, CHUNK * CHUNK_ROWS // R)


def _chunks(u: np.ndarray, e: np.ndarray, o: np.ndarray, R: int,
            row: int = 0) -> tuple[tuple, tuple]:
    """Chunks of :func:`chunk_points` points of the union ``u`` (R rows) and, per orientation
    and chunk, what it reads (see :class:`FilterBank`). ``row``: u is the whole half block,
    rows of ``row`` points, and the chunks hold a power of two of its rows (the nearest to
    :func:`chunk_points`), so that they all have the same size."""
    L = e.shape[0]
    dense = [np.count_nonzero(e[l, u]) >= DENSE * u.size for l in range(L)]
    size = chunk_points(R, all(dense))
    if row:
        rows = 2 ** round(math.log2(max(1.0, size / row)))
        size = row * min(rows, u.size // row)
    spans, parts = [], [[] for _ in range(L)]
    for a in range(0, u.size, size):
        pts = u[a: a + size]
        spans.append((2 * a, 2 * pts.size))
        for l in range(L):
            on = np.arange(pts.size) if dense[l] else np.flatnonzero(e[l, pts])
            ev, od = e[l, pts[on]], o[l, pts[on]]
            sub = None if dense[l] else np.concatenate([on, on + pts.size])
            parts[l].append((sub, np.tile(np.sqrt(ev), 2), np.tile(ev, 2), od))
    return tuple(spans), tuple(tuple(p) for p in parts)


def _layout(u: np.ndarray, spans: tuple, m3: int, m: int) -> np.ndarray:
    """The chunked [Re | Im] layout of the points ``u`` of grid m3's half block as indices into the
    float64 view of an rfft2 half-plane (m, m//2 + 1), m >= m3."""
    re, _ = _block_in_half(u, m3, m)
    out = np.empty(2 * u.size, dtype=np.intp)
    for a, n in spans:
        p = re[a // 2: a // 2 + n // 2]
        out[a: a + n // 2] = p
        out[a + n // 2: a + n] = p + 1
    return out


def _block_in_half(idx: np.ndarray, m3: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the real and imaginary parts, in the float64 view of an rfft2 half-plane
    (m, m//2 + 1), of the points ``idx`` (flat into the half block m3 × m3/2 of grid m3 <= m:
    rows |k_y| < m3/2 in FFT order, columns 0 .. m3/2 - 1)."""
    h = m3 // 2
    r, c = np.divmod(idx, h)
    r = np.where(r < h, r, r + m - m3)
    flat = (r * (m // 2 + 1) + c).astype(np.intp)
    return 2 * flat, 2 * flat + 1
