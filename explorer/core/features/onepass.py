"""The sampler's hot loop for a WCRG conditional made of quadratic couplings and scalar potentials
of the finer field (the ``phi4`` family's conditionals): the energy and its gradient in the
details in one pass, sharing the channels' spectra between the couplings and the wavelet step.
See docs/performance.md, "Gradient floor".

With the channels X = [HL, LH, HH, LL] (side n) and the finer field x_{j-1} = synthesis(c, v)
(side L = 2n), block by block the evaluation costs one forward and one inverse FFT for the
couplings plus a PyWavelets synthesis and analysis for the potential. Here:

* the forward FFT of the four channels is taken once; per frequency, one matrix product applies the
  couplings' kernels, the weights of their energy (Parseval) and — for the ``"fourier"`` method —
  the wavelet synthesis to the polyphase components of x_{j-1}
  (:func:`explorer.core.wavelets.polyphase_spectra`). The spectra are laid out (frequency, chain,
  channel), so that these products are real matrix products on the real views (:func:`_real_form`,
  twice as fast as complex ones at these sizes), and the vector registers are cleared after each
  (:mod:`explorer.core.features.products`: the FFT that follows otherwise runs at half speed);
* the potential acts on those polyphase components (it is site by site, so their order is free);
  its derivative goes back to the details by the conjugate matrices in a product that also adds
  the couplings' gradient spectrum (an identity block), and one inverse FFT of the three detail
  channels gives the whole gradient; a single power θ x^p leaves its factor p θ to that product;
* the ``"matrix"`` method (small sides, where FFTs of tiny fields cost more than they save) does
  the wavelet step in real space instead, as products with the 1D synthesis matrix G
  (:func:`explorer.core.wavelets.synthesis_matrix`) on the field laid out (row, chain, column), so
  that each side of x = G Z Gᵀ is one matrix product for the whole batch;
* the working arrays are kept between calls (per thread, for the last two batch shapes) and the FFTs
  write into them: allocating them afresh costs page faults that, on these sizes, take about as
  long as the arithmetic; the chains go a few at a time (:attr:`ConditionalPass.CHUNK_SITES`) so
  that those arrays stay in cache.

Results agree with the block-by-block evaluation to round-off (tests/core/test_onepass.py).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import scipy.fft as sfft

from explorer.core import wavelets as wv
from explorer.core.features.base import Context, Features
from explorer.core.features.couplings import QuadraticCouplings
from explorer.core.features.potentials import PolynomialBasis, ScalarPotential
from explorer.core.features.products import clear_vector_state, matmul

METHODS = ("fourier", "matrix")
#: fields of at most this side take the wavelet step as matrix products, larger ones in Fourier
#: space (measured crossover with 64 chains: benchmarks/bench_gradient.py)
MATRIX_MAX_SIDE = 32
#: working arrays above this size are not kept between calls
WORKSPACE_MAX_BYTES = 1 << 27
#: OpenBLAS runs a matrix product of at most 2^18 multiply-adds on one thread; larger ones are
#: shared between threads, which on a busy machine costs far more than it saves. The real-space
#: products are cut into pieces of that size.
_ONE_THREAD_PRODUCT = 1 << 18


class ConditionalPass:
    """Energy and gradient of Σ couplings + Σ potentials in one pass (see the module docstring).

    ``couplings`` and ``potentials`` are (block, slice of θ) pairs; ``method`` is ``"fourier"``,
    ``"matrix"`` or None (by the side: :data:`MATRIX_MAX_SIDE`).
    """

    def __init__(self, couplings: list, potentials: list, wavelet: str, method: str | None = None):
        if method is not None and method not in METHODS:
            raise ValueError(f"method must be one of {METHODS} or None, got {method!r}")
        self.couplings = list(couplings)
        self.potentials = list(potentials)
        self.wavelet = wv.check_wavelet(wavelet)
        self.method = method
        self._operators: tuple | None = None   # (key, operators) of the last θ and size
        self._local = threading.local()         # per thread: {key: working arrays}

    def __getstate__(self) -> dict:
        # caches and per-thread arrays are rebuilt on demand (a thread-local cannot be copied)
        state = dict(self.__dict__)
        state["_operators"] = None
        del state["_local"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @classmethod
    def of(cls, blocks: list[Features], slices: list[slice]) -> ConditionalPass | None:
        """The pass for these blocks of a conditional feature sum, or None when it does not apply
        (another kind of block, or no potential: the couplings alone are one FFT already)."""
        if not blocks or blocks[0].level != "conditional":
            return None
        couplings, potentials = [], []
        for b, s in zip(blocks, slices):
            if type(b) is QuadraticCouplings:
                couplings.append((b, s))
            elif type(b) is ScalarPotential:
                potentials.append((b, s))
            else:
                return None
        if not potentials:
            return None
        return cls(couplings, potentials, blocks[0].wavelet)

    # ---------------------------------------------------------------- evaluation
    def energy_and_grad(self, theta: np.ndarray, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """(U (N,), ∇_v U (N, 3, n, n)) for the validated inputs of ``ctx``, a few chains at a
        time (:attr:`CHUNK_SITES`, :attr:`CHUNK_SITES_FOURIER`: the working arrays then stay in
        cache)."""
        n, N = ctx.n, ctx.N
        method = self.method or ("matrix" if 2 * n <= MATRIX_MAX_SIDE else "fourier")
        ops = self._operators_for(theta, n, method)
        sites = self.CHUNK_SITES_FOURIER if method == "fourier" else self.CHUNK_SITES
        step = max(1, sites // (4 * n * n))
        energy = np.empty(N)
        g = np.empty((N, 3, n, n))
        for a in range(0, N, step):
            part = slice(a, min(N, a + step))
            energy[part] = self._evaluate(theta, ops, method, ctx.v[part], ctx.c[part], g[part])
        return energy, g

    #: at most this many sites (chains × L²) are evaluated together by the ``"matrix"`` method
    #: (32 chains of 32²: all 64 at once measured slower in bench_gradient.py, 1.38 against 1.25 ms)
    CHUNK_SITES = 1 << 15
    #: the same for the ``"fourier"`` method: 16 chains of 64² (measured with 64 chains: 16 at a
    #: time 4.55-4.66 ms per call, 8 at a time 4.81-4.88 ms, 32 at a time 4.59-4.74 ms with a
    #: wider spread, 4 at a time 5.37 ms)
    CHUNK_SITES_FOURIER = 1 << 16

    def _evaluate(self, theta, ops, method, v, c, g) -> np.ndarray:
        """The energies of the chains of v (N, 3, n, n), c (N, n, n); their gradient into g."""
        N, n = v.shape[0], v.shape[-1]
        w = self._workspace(method, N, n)
        _rfft2_into(v, w.C[:, :3])
        _rfft2_into(c, w.C[:, 3])
        _fields(w.Xf, n)[...] = w.C                                  # frequency-major
        rows = w.Y[:, :, 4:] if method == "fourier" else w.Y          # K, [P,] E: see _workspace
        matmul(w.Xf.view(np.float64), ops.M, out=rows.view(np.float64))
        # couplings' energy: Re Σ_k conj(V̂) · (weighted ½ K_v V̂ + K_c Ĉ), the weights in ops.M
        inner = np.einsum("kjc,kjc->j", w.Xf[:, :, :3].view(np.float64),
                          w.Y[:, :, -3:].view(np.float64))
        if method == "fourier":
            energy = self._fourier_rest(theta, ops, w, n, g)
        else:
            energy = self._matrix_rest(theta, ops, w, v, c, g)
        return energy + inner

    def _fourier_rest(self, theta, ops, w, n, g):
        _irfft2_into(_fields(w.Y[:, :, 7:11], n), n, w.x, w.C)     # polyphase components of x
        energy = self._potentials(theta, ops, w.x, 0, w.gp, w.work)
        _rfft_last_into(w.gp, _fields(w.Y[:, :, :4], n))             # beside the couplings' K
        _fft_first_in_place(w.Y.reshape(n, -1, w.Y.shape[2])[:, :, :4])   # now the rfft2
        # back to the details, plus the couplings' gradient: D = PH ĝ' + K in one product
        matmul(w.Y[:, :, :7].view(np.float64), ops.PH, out=w.D.view(np.float64))
        _irfft2_into(_fields(w.D, n), n, g, w.C[:, :3])
        return energy

    def _matrix_rest(self, theta, ops, w, v, c, g):
        N, n = v.shape[0], v.shape[-1]
        L = 2 * n
        Z = w.Z.reshape(2, n, N, 2, n)                               # (row, chain, column)
        for ch, (by, bx) in enumerate(wv.CHANNEL_BANDS[:3]):
            Z[by, :, :, bx, :] = v[:, ch].transpose(1, 0, 2)
        Z[0, :, :, 0, :] = c.transpose(1, 0, 2)
        _product_rows(w.Z.reshape(L * N, L), ops.GT, w.T)            # along x: Z Gᵀ
        _product_cols(ops.G, w.T.reshape(L, N * L), w.x)             # along y: G (Z Gᵀ)
        energy = self._potentials(theta, ops, w.x.reshape(L, N, L), 1, w.gp.reshape(L, N, L),
                                  w.work.reshape(L, N, L))
        _product_cols(ops.GT_back, w.gp, w.T.reshape(L, N * L))      # back: Gᵀ g' G
        _product_rows(w.T.reshape(L * N, L), ops.G, w.Z.reshape(L * N, L))
        _irfft2_into(_fields(w.Y[:, :, :3], n), n, g, w.C[:, :3])
        for ch, (by, bx) in enumerate(wv.CHANNEL_BANDS[:3]):
            g[:, ch] += Z[by, :, :, bx, :].transpose(1, 0, 2)
        return energy

    def _potentials(self, theta, ops, x, chain_axis, out, work) -> np.ndarray:
        """Σ of the potentials' energies per chain; ``out`` = the sum of their derivatives, but
        for a single power θ_p x^p (``ops.power``): x^(p-1), the factor p θ_p being applied by
        the products back to the details (one elementwise pass less)."""
        if ops.power is not None:
            p, t = ops.power
            _power_into(x, p - 1, out)
            idx = list(range(x.ndim))
            return t * np.einsum(x, idx, out, idx, [chain_axis])
        energy = None
        for k, (block, s) in enumerate(self.potentials):
            target = out if k == 0 else work
            e = block.basis.energy_and_derivative(theta[s], x, chain_axis, target,
                                                  work if k == 0 else np.empty_like(x))
            if k:
                out += work
            energy = e if energy is None else energy + e
        return energy

    # ---------------------------------------------------------------- operators and buffers
    def _operators_for(self, theta: np.ndarray, n: int, method: str) -> SimpleNamespace:
        key = (theta.tobytes(), n, method)
        cached = self._operators  # one read: safe if another thread replaces it meanwhile
        if cached is not None and cached[0] == key:
            return cached[1]
        m = n // 2 + 1
        K = np.zeros((3, 4, n, m), dtype=complex)
        for block, s in self.couplings:
            K = K + block._kernel_spectrum(theta[s], n)
        # Parseval on the half spectrum: the columns 1 .. ceil(n/2) - 1 stand for their mirrors
        weight = np.full(m, 2.0)
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        E = np.concatenate([0.5 * K[:, :3], K[:, 3:]], axis=1) * (weight / (n * n))
        P = wv.polyphase_spectra(n, self.wavelet) if method == "fourier" else None
        power = _single_power(self.potentials, theta)
        scale = 1.0 if power is None else power[0] * power[1]   # of the potential's derivative
        rows = [K, P, E] if method == "fourier" else [K, E]
        ops = SimpleNamespace(M=_real_form(_by_frequency(np.concatenate(rows))))
        if method == "fourier":
            eye = np.broadcast_to(np.eye(3)[:, :, None, None], (3, 3, n, m))
            ops.PH = _real_form(_by_frequency(
                np.concatenate([scale * P.conj().transpose(1, 0, 2, 3)[:3], eye], axis=1)))
        else:
            ops.G = wv.synthesis_matrix(2 * n, self.wavelet)
            ops.GT = np.ascontiguousarray(ops.G.T)
            ops.GT_back = scale * ops.GT
        ops.power = power
        self._operators = (key, ops)
        return ops

    def _workspace(self, method: str, N: int, n: int) -> SimpleNamespace:
        key = (method, N, n)
        kept = getattr(self._local, "kept", None)
        if kept is None:
            kept = self._local.kept = {}
        if key in kept:
            return kept[key]
        k, L = n * (n // 2 + 1), 2 * n
        real, cplx = np.float64, np.complex128
        shapes = {"C": ((N, 4, n, n // 2 + 1), cplx), "Xf": ((k, N, 4), cplx)}
        if method == "fourier":
            # Y: the potential's derivative ĝ' (4) | the products K (3), P (4), E (3)
            shapes.update(Y=((k, N, 14), cplx), x=((N, 4, n, n), real), gp=((N, 4, n, n), real),
                          work=((N, 4, n, n), real), D=((k, N, 3), cplx))
        else:
            shapes.update(Y=((k, N, 6), cplx), Z=((L, N, L), real), T=((L * N, L), real),
                          x=((L, N * L), real), gp=((L, N * L), real), work=((L, N * L), real))
        w = SimpleNamespace(**{name: np.empty(shape, dtype) for name, (shape, dtype) in shapes.items()})
        if sum(a.nbytes for a in vars(w).values()) <= WORKSPACE_MAX_BYTES:
            if len(kept) >= 2:   # the chunk size and the last, smaller chunk of a batch
                del kept[next(iter(kept))]
            kept[key] = w
        return w


def _pocketfft():
    """scipy.fft's own pocketfft module, whose transforms write into a given array (the public
    functions allocate their results, and fresh pages cost as much as the transform here), or
    None when this scipy does not have it in the expected form: then the public functions."""
    try:
        from scipy.fft._pocketfft import pypocketfft as pf
        x = np.arange(12.0).reshape(3, 4)
        X = np.empty((3, 3), dtype=complex)
        work = np.empty_like(X)
        y = np.empty_like(x)
        pf.r2c(x, (0, 1), True, 0, X, 1)
        pf.c2c(X, (0,), False, 2, work, 1)
        pf.c2r(work, (1,), 4, False, 2, y, 1)
        if np.allclose(X, sfft.rfft2(x)) and np.allclose(y, x):
            return pf
    except Exception:  # noqa: BLE001 - any change of the private interface: use the public one
        pass
    return None


_POCKETFFT = _pocketfft()


def _single_power(potentials: list, theta: np.ndarray) -> tuple[int, float] | None:
    """(p, θ_p) when the potentials are one polynomial block with a single non-zero coefficient
    θ_p, p >= 2 (the ``phi4`` default: θ x⁴), else None."""
    if len(potentials) != 1:
        return None
    block, s = potentials[0]
    if type(block.basis) is not PolynomialBasis:
        return None
    terms = [(p, float(t)) for p, t in zip(block.basis.powers, theta[s]) if t != 0.0]
    if len(terms) != 1 or terms[0][0] < 2:
        return None
    return terms[0]


def _power_into(x: np.ndarray, d: int, out: np.ndarray) -> None:
    """out = x^d (d >= 1) by repeated products, in place."""
    if d == 1:
        np.copyto(out, x)
        return
    np.multiply(x, x, out=out)
    for _ in range(d - 2):
        out *= x


def _rfft2_into(x: np.ndarray, out: np.ndarray) -> None:
    """out[...] = rfft2(x) over the last two axes."""
    if _POCKETFFT is None:
        out[...] = sfft.rfft2(x)
        return
    _POCKETFFT.r2c(x, (x.ndim - 2, x.ndim - 1), True, 0, out, 1)


def _rfft_last_into(x: np.ndarray, out: np.ndarray) -> None:
    """out[...] = rfft(x) along the last axis: the first half of an rfft2, written straight into
    a frequency-major buffer (no copy of the spectra)."""
    if _POCKETFFT is None:
        out[...] = sfft.rfft(x, axis=-1)
        return
    _POCKETFFT.r2c(x, (x.ndim - 1,), True, 0, out, 1)


def _fft_first_in_place(X: np.ndarray) -> None:
    """X[...] = fft(X) along the first axis: the other half, on a frequency-major buffer (whose
    chains and channels vary fastest)."""
    if _POCKETFFT is None:
        X[...] = sfft.fft(X, axis=0)
        return
    _POCKETFFT.c2c(X, (0,), True, 0, X, 1)


def _irfft2_into(X: np.ndarray, n: int, out: np.ndarray, work: np.ndarray) -> None:
    """out[...] = irfft2(X, s=(n, n)); ``work`` (complex, X's shape) is scratch."""
    if _POCKETFFT is None:
        out[...] = sfft.irfft2(X, s=(n, n))
        return
    _POCKETFFT.c2c(X, (X.ndim - 2,), False, 2, work, 1)
    _POCKETFFT.c2r(work, (X.ndim - 1,), n, False, 2, out, 1)


def _by_frequency(A: np.ndarray) -> np.ndarray:
    """(R, C, n, m) -> (n m, R, C), contiguous: one small matrix per frequency."""
    R, C = A.shape[:2]
    return np.ascontiguousarray(A.reshape(R, C, -1).transpose(2, 0, 1))


def _real_form(A: np.ndarray) -> np.ndarray:
    """(k, R, C) complex -> B (k, 2C, 2R) real, contiguous, such that the spectra X (k, N, C)
    (chains × channels per frequency) give Y = X Aᵀ as the real product X B of their real views:
    (x, y) · [[a, b], [-b, a]] = (xa - yb, xb + ya) is the product of x + iy and a + ib. OpenBLAS
    runs these real products about twice as fast as the complex ones at these sizes (8-16 chains,
    a few channels)."""
    k, R, C = A.shape
    B = np.empty((k, C, 2, R, 2))
    At = A.transpose(0, 2, 1)
    B[:, :, 0, :, 0] = At.real
    B[:, :, 0, :, 1] = At.imag
    B[:, :, 1, :, 0] = -At.imag
    B[:, :, 1, :, 1] = At.real
    return B.reshape(k, 2 * C, 2 * R)


def _fields(buf: np.ndarray, n: int) -> np.ndarray:
    """The (k, N, C) frequency-major buffer seen as the spectra (N, C, n, n//2 + 1) (a view)."""
    k, N, C = buf.shape
    return buf.reshape(n, k // n, N, C).transpose(2, 3, 0, 1)


def _product_rows(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> None:
    """out = A @ B, the rows of A cut so that every product stays on one BLAS thread (then the
    vector state cleared for the FFTs: :mod:`explorer.core.features.products`)."""
    step = max(1, _ONE_THREAD_PRODUCT // (A.shape[1] * B.shape[1]))
    for a in range(0, A.shape[0], step):
        np.matmul(A[a: a + step], B, out=out[a: a + step])
    clear_vector_state()


def _product_cols(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> None:
    """out = A @ B, the columns of B cut so that every product stays on one BLAS thread (then the
    vector state cleared)."""
    step = max(1, _ONE_THREAD_PRODUCT // (A.shape[0] * A.shape[1]))
    for a in range(0, B.shape[1], step):
        np.matmul(A, B[:, a: a + step], out=out[:, a: a + step])
    clear_vector_state()
