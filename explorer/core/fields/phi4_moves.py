"""The Monte Carlo moves of the phi^4 generator (:mod:`explorer.core.fields.phi4`) on a batch of
fields (C, L, L), in place:

  * :func:`metropolis_sweep`: checkerboard Metropolis on the four sublattices (p::2, q::2);
  * :func:`cluster_update`: the Brower-Tamayo embedded-Ising Swendsen-Wang update, clusters
    labelled by ``scipy.ndimage.label`` on an image of sites and bonds.

Both accept-or-reject tests compare with a unit exponential E = -log(1 - u), u uniform: since
P(E > d) = exp(-d), a Metropolis move is accepted when E > dE (probability min(1, exp(-dE))) and
a pair is bonded when 2 beta phi_x phi_y > E (probability 1 - exp(-2 beta phi_x phi_y) for a
same-sign pair, never for an opposite-sign one, without a clip: E >= 0).

The arrays a move needs are kept in a :class:`Workspace` and reused from one call to the next:
a fresh temporary of a whole group of chains (~0.5 MB) costs more to obtain from the system than
the arithmetic done in it.  A workspace holds no state between calls (every array is overwritten
before it is read), so the results do not depend on which workspace a call is given.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: chains per block of the Metropolis sweep: ~32k sites per quarter-lattice array keeps the
#: working set in cache (the block size depends on L only, so a seed gives the same samples anywhere)
_BLOCK_SITES = 32768

#: 4-connectivity of ndimage.label: a pixel joins its left, right, upper and lower neighbours
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


class Workspace:
    """Named arrays reused across calls (one workspace per thread: the arrays are overwritten)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
        """The array ``name`` of this shape and dtype, created (and filled by ``fill(a)``, once)
        on first use."""
        key = (name, tuple(shape), np.dtype(dtype).str)
        a = self._arrays.get(key)
        if a is None:
            a = np.empty(shape, dtype=dtype)
            if fill is not None:
                fill(a)
            self._arrays[key] = a
        return a


def _quarters(phi: np.ndarray) -> np.ndarray:
    """View (C, 2, 2, L/2, L/2) of a batch (C, L, L): [:, p, q] is the sublattice (p::2, q::2)."""
    C, L, _ = phi.shape
    h = L // 2
    return phi.reshape(C, h, 2, h, 2).transpose(0, 2, 4, 1, 3)


def _roll_columns(out: np.ndarray, a: np.ndarray, shift: int) -> None:
    """out = np.roll(a, shift, axis=-1) (shift = +-1) for (C, h, h) arrays whose fields are each
    contiguous: one contiguous shifted copy per field, then the wrapped column."""
    C, h, _ = a.shape
    flat_out, flat_a = out.reshape(C, h * h), a.reshape(C, h * h)
    if shift == 1:
        flat_out[:, 1:] = flat_a[:, :-1]
        out[..., 0] = a[..., -1]
    else:
        flat_out[:, :-1] = flat_a[:, 1:]
        out[..., -1] = a[..., 0]


def _add_rolled_rows(out: np.ndarray, a: np.ndarray, shift: int) -> None:
    """out += np.roll(a, shift, axis=-2) (shift = +-1), without a temporary."""
    if shift == 1:
        out[..., 1:, :] += a[..., :-1, :]
        out[..., :1, :] += a[..., -1:, :]
    else:
        out[..., :-1, :] += a[..., 1:, :]
        out[..., -1:, :] += a[..., :1, :]


def _neighbour_sum(out, near1, near2, far1, s1, far2, s2) -> np.ndarray:
    """out = roll(far1, s1, -1) + near1 + near2 + roll(far2, s2, -2): a sublattice's neighbours."""
    _roll_columns(out, far1, s1)
    out += near1
    out += near2
    _add_rolled_rows(out, far2, s2)
    return out


def _minus_exponential(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill ``out`` with -E, E ~ Exp(1) (float32-exact enough): log1p(-u), u uniform in [0, 1)."""
    rng.random(dtype=out.dtype, out=out)
    np.negative(out, out=out)
    return np.log1p(out, out=out)


def _metropolis_update(x, hsum, beta, lam, step, rng, work: Workspace) -> int:
    """Metropolis move of every site of ``x`` (one sublattice of a block) given its neighbour sums,
    in place; returns the number of accepted moves."""
    dt = x.dtype
    delta, new, a, dE = (work.array(n, x.shape, dt) for n in ("delta", "new", "a", "dE"))
    acc = work.array("acc", x.shape, bool)
    rng.random(dtype=dt, out=delta)
    delta *= 2.0 * step
    delta -= step  # step * (2u - 1)
    np.add(x, delta, out=new)
    # dE = (n2 - o2) * (1 + lam * (n2 + o2 - 2)) - beta * delta * hsum, with
    # (n2 - 1)^2 - (o2 - 1)^2 = (n2 - o2)(n2 + o2 - 2), n2 = new^2 and o2 = x^2
    np.multiply(new, new, out=a)
    np.multiply(x, x, out=dE)
    a -= dE  # n2 - o2
    dE *= 2.0
    dE += a  # n2 + o2
    dE -= 2.0
    dE *= lam
    dE += 1.0
    dE *= a
    np.multiply(delta, hsum, out=a)
    a *= beta
    dE -= a
    # accept with probability min(1, exp(-dE)): a unit exponential E exceeds dE
    dE += _minus_exponential(a, rng)
    np.less(dE, 0.0, out=acc)
    # x += delta where accepted: the same rounding as ``new`` (faster than a masked copy)
    delta *= acc
    x += delta
    return int(np.count_nonzero(acc))


def metropolis_sweep(
    phi: np.ndarray,
    beta: float,
    lam: float,
    step: float,
    rng: np.random.Generator,
    work: Workspace | None = None,
) -> float:
    """One checkerboard Metropolis sweep of a batch (C, L, L) (L even), in place.  Returns acceptance.

    Sites of one colour only see neighbours of the other colour, so each half-sweep updates all
    of its sites at once with exact detailed balance.  The lattice is split into its four
    sublattices (p::2, q::2) — colour 0 is (0, 0) and (1, 1), colour 1 is (0, 1) and (1, 0) — whose
    neighbour sums are plain shifts of each other; chains are processed in blocks small enough to
    stay in cache.  The arithmetic runs in ``phi``'s dtype (float32 in the generator: a relative
    error ~1e-7 on dE, far below any statistical error).  ``work``: arrays to reuse (a new
    :class:`Workspace` when None).
    """
    C, L, L2 = phi.shape
    if L != L2 or L % 2:
        raise ValueError(f"checkerboard sweeps need square fields of even side, got {phi.shape}")
    work = Workspace() if work is None else work
    dt = phi.dtype
    beta_, lam_, step_ = dt.type(beta), dt.type(lam), dt.type(step)
    q = _quarters(phi)
    h = L // 2
    block = max(1, _BLOCK_SITES // (h * h))
    accepted = 0
    for c0 in range(0, C, block):
        nb = min(block, C - c0)
        Q = work.array("quarters", (nb, 2, 2, h, h), dt)
        np.copyto(Q, q[c0:c0 + nb])
        A, B, Cq, D = Q[:, 0, 0], Q[:, 0, 1], Q[:, 1, 0], Q[:, 1, 1]
        s = work.array("hsum", (nb, h, h), dt)

        def update(x, sums):
            return _metropolis_update(x, sums, beta_, lam_, step_, rng, work)

        # colour 0: A = (2a, 2b) sees B[a, b], B[a, b-1], Cq[a, b], Cq[a-1, b];
        #           D = (2a+1, 2b+1) sees Cq[a, b], Cq[a, b+1], B[a, b], B[a+1, b]
        accepted += update(A, _neighbour_sum(s, B, Cq, B, 1, Cq, 1))
        accepted += update(D, _neighbour_sum(s, B, Cq, Cq, -1, B, -1))
        # colour 1: B = (2a, 2b+1) sees A[a, b], A[a, b+1], D[a, b], D[a-1, b];
        #           Cq = (2a+1, 2b) sees D[a, b], D[a, b-1], A[a, b], A[a+1, b]
        accepted += update(B, _neighbour_sum(s, A, D, A, -1, D, 1))
        accepted += update(Cq, _neighbour_sum(s, A, D, D, 1, A, -1))
        for p in (0, 1):  # back quarter by quarter: ~4x faster than one strided copy
            for r in (0, 1):
                q[c0:c0 + nb, p, r] = Q[:, p, r]
    return accepted / phi.size


def _bond_image(C: int, L: int, work: Workspace) -> np.ndarray:
    """The (C * 2L, 2L) uint8 labelling image: sites (even row and column) set, the rest 0; the
    bond pixels between open neighbours are written by each update, the wrap ones stay 0."""
    def fill(img):
        img[:] = 0
        img.reshape(C, 2 * L, 2 * L)[:, 0::2, 0::2] = 1
    return work.array("image", (C * 2 * L, 2 * L), np.uint8, fill)


def _draw_bonds(phi, axis, two_beta, rng, open_out, work: Workspace) -> np.ndarray:
    """Bonds between each site and its neighbour at +1 along ``axis`` (-1 or -2, periodic): the open
    ones are written into ``open_out`` (the image's bond pixels), the wrap ones returned (C, L).
    A pair is bonded when 2 beta phi_x phi_y > E, E ~ Exp(1): probability 1 - exp(-2 beta phi_x
    phi_y) for a same-sign pair, never for an opposite-sign one."""
    prod = work.array("prod", phi.shape, phi.dtype)
    # products with the next site in memory order (one contiguous pass), then the wraps fixed
    shift = 1 if axis == -1 else phi.shape[-1]
    flat, p = phi.reshape(-1), prod.reshape(-1)
    np.multiply(flat[:-shift], flat[shift:], out=p[:-shift])
    cut = (lambda s: (Ellipsis, s)) if axis == -1 else (lambda s: (Ellipsis, s, slice(None)))
    np.multiply(phi[cut(-1)], phi[cut(0)], out=prod[cut(-1)])
    prod *= two_beta
    prod += _minus_exponential(work.array("expo", phi.shape, phi.dtype), rng)
    np.greater(prod[cut(slice(None, -1))], 0.0, out=open_out)
    return prod[cut(-1)] > 0.0


def _components(ia: np.ndarray, ib: np.ndarray, m: int) -> np.ndarray:
    """Connected components of a small graph of ``m`` nodes and edges (ia, ib): each node's
    smallest node index in its component (min-label hooking along the edges, then pointer
    jumping until every node points at its root, repeated until every edge joins equal roots)."""
    comp = np.arange(m)
    while True:
        low = np.minimum(comp[ia], comp[ib])
        np.minimum.at(comp, ia, low)
        np.minimum.at(comp, ib, low)
        while True:
            up = comp[comp]
            if np.array_equal(up, comp):
                break
            comp = up
        if np.array_equal(comp[ia], comp[ib]):
            return comp


def _random_signs(k: int, rng: np.random.Generator, dt) -> np.ndarray:
    """``k`` independent fair signs +-1 of dtype ``dt`` (one random bit each)."""
    bits = np.unpackbits(np.frombuffer(rng.bytes((k + 7) // 8), dtype=np.uint8), count=k)
    sign = bits.astype(dt)
    sign *= -2
    sign += 1
    return sign


def _cluster_signs(site, wrap_right, wrap_down, n: int, rng, dt) -> tuple[np.ndarray, int]:
    """A random sign per cluster, indexed by open label (0..n), and the number of clusters.

    Open clusters joined by periodic wrap bonds form one cluster: only the labels at the edges
    take part (renumbered 0..m-1); their components share the sign drawn for their smallest label."""
    a = np.concatenate([site[..., -1][wrap_right], site[:, -1][wrap_down]])
    b = np.concatenate([site[..., 0][wrap_right], site[:, 0][wrap_down]])
    sign = _random_signs(n + 1, rng, dt)
    if len(a) == 0:
        return sign, n
    on_edge = np.zeros(n + 1, dtype=bool)
    on_edge[a] = True
    on_edge[b] = True
    nodes = np.flatnonzero(on_edge)
    index = np.empty(n + 1, dtype=np.intp)
    index[nodes] = np.arange(len(nodes))
    comp = _components(index[a], index[b], len(nodes))
    sign[nodes] = sign[nodes[comp]]
    return sign, n - len(nodes) + int(np.count_nonzero(comp == np.arange(len(nodes))))


def cluster_update(phi: np.ndarray, beta: float, rng: np.random.Generator,
                   work: Workspace | None = None) -> int:
    """Brower-Tamayo embedded-Ising Swendsen-Wang update of a batch (C, L, L), in place.

    Writing phi_x = eps_x |phi_x|, the energy is an Ising model in eps with couplings
    beta |phi_x| |phi_y|; same-sign neighbours are bonded with p = 1 - exp(-2 beta phi_x phi_y) and
    each cluster flips with probability 1/2.  Returns the number of clusters.

    Clusters of all chains at once: each chain becomes a (2L, 2L) image with its sites at even
    rows and columns and a pixel between two neighbours set when they are bonded; the chains are
    stacked into one image (the last, periodic-wrap row of each is left empty, so chains never
    touch) and ``scipy.ndimage.label`` with 4-connectivity finds the open clusters.  The periodic
    wrap bonds (last column to first, last row to first) then join the labels at the edges (the
    components of a small graph).  ``work``: arrays to reuse.
    """
    C, L, _ = phi.shape
    work = Workspace() if work is None else work
    dt = phi.dtype
    two_beta = dt.type(2.0 * beta)
    img = _bond_image(C, L, work)
    img4 = img.reshape(C, 2 * L, 2 * L)
    wrap_right = _draw_bonds(phi, -1, two_beta, rng, img4[:, 0::2, 1:-1:2], work)
    wrap_down = _draw_bonds(phi, -2, two_beta, rng, img4[:, 1:-1:2, 0::2], work)
    lab = work.array("labels", img.shape, np.int32)
    n = ndimage.label(img, structure=_CROSS, output=lab)
    site = lab.reshape(C, 2 * L, 2 * L)[:, 0::2, 0::2]  # open-boundary labels 1..n
    sign, clusters = _cluster_signs(site, wrap_right, wrap_down, n, rng, dt)
    flips = work.array("prod", phi.shape, dt)  # the bonds' products are no longer needed
    np.take(sign, site, out=flips, mode="clip")
    phi *= flips
    return clusters
