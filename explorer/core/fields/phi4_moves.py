"""The Monte Carlo moves of the phi^4 generator (:mod:`explorer.core.fields.phi4`) on a batch of
fields (C, L, L), in place:

  * :func:`metropolis_sweep`: checkerboard Metropolis on the four sublattices (p::2, q::2);
  * :func:`cluster_update`: the Brower-Tamayo embedded-Ising Swendsen-Wang update, clusters
    labelled by ``scipy.ndimage.label`` on an image of sites and bonds.

The random draws and the floating-point operations are those of the earlier implementation (in
the same order), so a seed gives bit for bit the same chains; a comparison ``u < q`` is evaluated
as ``u - q < 0`` where that saves a pass (the rounded difference has the sign of the exact one).

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


def _neighbour_sum(out, near1, near2, far1, s1, far2, s2, work: Workspace) -> np.ndarray:
    """out = near1 + near2 + roll(far1, s1, -1) + roll(far2, s2, -2), summed in this order: a
    sublattice's neighbours."""
    np.add(near1, near2, out=out)
    rolled = work.array("rolled", out.shape, out.dtype)
    _roll_columns(rolled, far1, s1)
    out += rolled
    _add_rolled_rows(out, far2, s2)
    return out


def _minus_exponential(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill ``out`` with -E, E = -log(1 - u) ~ Exp(1), u uniform in [0, 1): log1p(-u)."""
    rng.random(dtype=out.dtype, out=out)
    np.negative(out, out=out)
    return np.log1p(out, out=out)


def _select(x: np.ndarray, where: np.ndarray, new: np.ndarray, work: Workspace) -> None:
    """x = np.where(where, new, x) in place, bit for bit and without a branch per element (a
    masked copy of a random half is several times slower): x ^= (x ^ new) & -where on the bits."""
    udt = np.dtype(f"u{x.dtype.itemsize}")
    bits, diff = x.view(udt), work.array("bits", x.shape, udt)
    mask = work.array("mask", x.shape, udt)
    np.copyto(mask, where, casting="unsafe")
    np.negative(mask, out=mask)  # 0 or all ones
    np.bitwise_xor(bits, new.view(udt), out=diff)
    diff &= mask
    bits ^= diff


def _metropolis_update(x, hsum, beta, lam, step, rng, work: Workspace) -> int:
    """Metropolis move of every site of ``x`` (one sublattice of a block) given its neighbour sums,
    in place; returns the number of accepted moves."""
    dt = x.dtype
    new, a, n2, dE = (work.array(n, x.shape, dt) for n in ("new", "a", "n2", "dE"))
    acc = work.array("acc", x.shape, bool)
    rng.random(dtype=dt, out=new)
    new *= 2.0 * step
    np.subtract(x, step, out=a)
    new += a  # x + step * (2u - 1)
    # dE = ((n2 + o2 - 2) lam + 1)(n2 - o2) - beta (new - x) hsum, with n2 = new^2, o2 = x^2:
    # (n2 - 1)^2 - (o2 - 1)^2 = (n2 - o2)(n2 + o2 - 2)
    np.multiply(x, x, out=a)
    np.multiply(new, new, out=n2)
    np.add(n2, a, out=dE)
    dE -= 2.0
    dE *= lam
    dE += 1.0
    n2 -= a
    dE *= n2
    np.subtract(new, x, out=a)
    a *= beta
    a *= hsum
    dE -= a
    # accept with probability min(1, exp(-dE)): E > dE, i.e. dE + log1p(-u) < 0 (the rounded sum
    # has the sign of the exact one)
    dE += _minus_exponential(a, rng)
    np.less(dE, 0.0, out=acc)
    _select(x, acc, new, work)
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
        Q = work.array("quarters", (2, 2, nb, h, h), dt)  # each sublattice contiguous
        for p in (0, 1):
            for r in (0, 1):
                np.copyto(Q[p, r], q[c0:c0 + nb, p, r])
        A, B, Cq, D = Q[0, 0], Q[0, 1], Q[1, 0], Q[1, 1]
        s = work.array("hsum", (nb, h, h), dt)

        def update(x, sums):
            return _metropolis_update(x, sums, beta_, lam_, step_, rng, work)

        # colour 0: A = (2a, 2b) sees B[a, b], B[a, b-1], Cq[a, b], Cq[a-1, b];
        #           D = (2a+1, 2b+1) sees Cq[a, b], Cq[a, b+1], B[a, b], B[a+1, b]
        accepted += update(A, _neighbour_sum(s, B, Cq, B, 1, Cq, 1, work))
        accepted += update(D, _neighbour_sum(s, B, Cq, Cq, -1, B, -1, work))
        # colour 1: B = (2a, 2b+1) sees A[a, b], A[a, b+1], D[a, b], D[a-1, b];
        #           Cq = (2a+1, 2b) sees D[a, b], D[a, b-1], A[a, b], A[a+1, b]
        accepted += update(B, _neighbour_sum(s, A, D, A, -1, D, 1, work))
        accepted += update(Cq, _neighbour_sum(s, A, D, D, 1, A, -1, work))
        for p in (0, 1):
            for r in (0, 1):
                q[c0:c0 + nb, p, r] = Q[p, r]
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
    A pair is bonded with probability p = 1 - exp(-2 beta max(phi_x phi_y, 0)): when u < p, i.e.
    u + expm1(-2 beta max(phi_x phi_y, 0)) < 0 (the rounded sum has the sign of the exact one)."""
    prod = work.array("prod", phi.shape, phi.dtype)
    # products with the next site in memory order (one contiguous pass), then the wraps fixed
    shift = 1 if axis == -1 else phi.shape[-1]
    flat, p = phi.reshape(-1), prod.reshape(-1)
    np.multiply(flat[:-shift], flat[shift:], out=p[:-shift])
    cut = (lambda s: (Ellipsis, s)) if axis == -1 else (lambda s: (Ellipsis, s, slice(None)))
    np.multiply(phi[cut(-1)], phi[cut(0)], out=prod[cut(-1)])
    np.maximum(prod, 0, out=prod)
    prod *= -two_beta
    np.expm1(prod, out=prod)  # -p
    prod += rng.random(dtype=phi.dtype, out=work.array("uniform", phi.shape, phi.dtype))
    np.less(prod[cut(slice(None, -1))], 0.0, out=open_out)
    return prod[cut(-1)] < 0.0


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


def _cluster_signs(site, wrap_right, wrap_down, n: int, rng, dt) -> tuple[np.ndarray, int]:
    """A random sign per open label (0..n), the same for open clusters joined by wrap bonds, and
    the number of clusters.

    Only the labels at the edges take part in the joins (renumbered 0..m-1 for the search).  The
    clusters are numbered by their smallest open label, and cluster k flips when the k-th of
    ``rng.random(clusters + 1)`` (one for the background label 0) is below 1/2: the numbering and
    the draws of a sparse-graph ``connected_components`` over all labels, without building it."""
    a = np.concatenate([site[..., -1][wrap_right], site[:, -1][wrap_down]])
    b = np.concatenate([site[..., 0][wrap_right], site[:, 0][wrap_down]])
    merged = their_root = np.empty(0, dtype=np.intp)  # labels joined to a smaller one, and it
    if len(a):
        on_edge = np.zeros(n + 1, dtype=bool)
        on_edge[a] = True
        on_edge[b] = True
        nodes = np.flatnonzero(on_edge)
        index = np.empty(n + 1, dtype=np.intp)
        index[nodes] = np.arange(len(nodes))
        comp = _components(index[a], index[b], len(nodes))
        joined = comp != np.arange(len(nodes))
        merged, their_root = nodes[joined], nodes[comp[joined]]
    count = n + 1 - len(merged)
    u = rng.random(count, dtype=dt)  # one per cluster, numbered by smallest label (0: background)
    if len(merged):  # one per label: placeholders at the merged labels (sorted), then the root's
        u = np.insert(u, merged - np.arange(len(merged)), 0)
        u[merged] = u[their_root]
    sign = (u < 0.5).astype(dt)
    sign *= -2
    sign += 1
    return sign, count - 1


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
