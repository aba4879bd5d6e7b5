"""The ``modulus`` family (registered also under its former name ``"scattering"``): the gaussian
couplings, smooth moduli of the orthogonal-wavelet details and their couplings to the coarser
scale, and a one-point log potential of the finer field, for one WCRG level. See docs/models.md,
"Scattering-Gaussian and modulus features"."""

from __future__ import annotations

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.features.base import Context, Features, FeatureSum, FitProtocol
from explorer.core.features.couplings import QuadraticCouplings
from explorer.core.fields.base import as_batch
from explorer.core.features.potentials import LogBasis, ScalarPotential

CH = wv.DETAIL_CHANNELS
PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
DEFAULT_EPS_REL = 0.5


def _roll(x, s):
    return np.roll(x, s, axis=(-2, -1)) if s != (0, 0) else x


def _check_eps(name, value) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


class ModulusFeatures(Features):
    """The modulus terms of the ``modulus`` family, in the smooth modulus m(v) = √(v² + ε²)
    (m' = v/m, m'' = ε²/m³: gradients and Laplacians exact and finite).

    Conditional level (details v = x̄_j, channels a ∈ {HL, LH, HH} on an n × n grid, condition
    c = x_j). The coarse amplitude fields F_q, computed from the condition only, are the smooth
    moduli of the next coarser details (HL', LH', HH', repeated 2 × 2 onto the n × n grid; only
    when n is even) and of the centred low-pass |c - ⟨c⟩|::

        "|a|"            Σ_u m_a(u)                      (``sparsity``)
        "|a||a|(dy,dx)"  Σ_u m_a(u) m_a(u - s), s ∈ {(0,1), (1,0), (1,1), (1,-1)}  (``products``)
        "|a||b|"         Σ_u m_a(u) m_b(u), a < b        (``products``)
        "|a|*F"          Σ_u m_a(u) F_q(u)
        "a*F"            Σ_u v_a(u) F_q(u)

    Depth 0: "|dy|" = Σ_u m(x(u) - x(u - e_y)) and "|dx|" (smooth total variation). Widths:
    ``eps`` (details or increments), ``eps_coarse`` (coarse details), ``eps_low`` (centred
    low-pass). Laplacians: Δ Σ m_a = Σ m''_a; Δ Σ m_a(u) m_a(u-s) = Σ m''_a(u)[m_a(u-s) +
    m_a(u+s)]; Δ Σ m_a m_b = Σ (m''_a m_b + m_a m''_b); Δ Σ m_a F = Σ m''_a F; Δ Σ v_a F = 0;
    Δ Σ m(D x) = 2 Σ m''(D x) for a periodic difference D (n > 1).
    """

    def __init__(self, level="depth0", L=None, wavelet=wv.DEFAULT_WAVELET, eps=1.0,
                 eps_coarse=1.0, eps_low=1.0, products=True, sparsity=True):
        super().__init__(level, L, wavelet)
        self.eps = _check_eps("eps", eps)
        self.eps_coarse = _check_eps("eps_coarse", eps_coarse)
        self.eps_low = _check_eps("eps_low", eps_low)
        names: list[str] = []
        if level == "depth0":
            names = ["|dy|", "|dx|"]
            self.terms = [("diff", (1, 0)), ("diff", (0, 1))]
        else:
            n = self.n
            self.with_coarse = n is None or n % 2 == 0
            self.fields = ([f"|{c}'|" for c in CH] if self.with_coarse else []) + ["|LL|"]
            self.terms = []
            for a in range(3 if sparsity else 0):
                self.terms.append(("mod", a))
                names.append(f"|{CH[a]}|")
            for a in range(3 if products else 0):
                seen = set()
                for s in PAIR_SHIFTS:
                    if n is not None:
                        key = frozenset({(s[0] % n, s[1] % n), ((-s[0]) % n, (-s[1]) % n)})
                        if (0, 0) in key or key in seen:
                            continue
                        seen.add(key)
                    self.terms.append(("pair", (a, s)))
                    names.append(f"|{CH[a]}||{CH[a]}|({s[0]},{s[1]})")
            for a in range(3 if products else 0):
                for b in range(a + 1, 3):
                    self.terms.append(("cross", (a, b)))
                    names.append(f"|{CH[a]}||{CH[b]}|")
            for kind, label in (("modF", "|{a}|*{f}"), ("linF", "{a}*{f}")):
                for a in range(3):
                    for q, f in enumerate(self.fields):
                        self.terms.append((kind, (a, q)))
                        names.append(label.format(a=CH[a], f=f))
        self.names = names

    # ------------------------------------------------------------ cached quantities
    def _mod(self, ctx: Context):
        """m, m', m'' of the details (conditional) or of the increments (depth 0)."""
        key = ("modulus", self.eps)
        if key not in ctx._cache:
            if self.level == "depth0":
                x = ctx.v
                z = np.stack([x - _roll(x, s) for _, s in self.terms], axis=1)  # (N, 2, n, n)
            else:
                z = ctx.v
            m = np.sqrt(z * z + self.eps**2)
            m1 = z / m
            m2 = self.eps**2 / m**3
            ctx._cache[key] = (z, m, m1, m2)
        return ctx._cache[key]

    def _coarse(self, ctx: Context) -> np.ndarray:
        """Coarse amplitude fields F (N, Q, n, n) from the condition."""
        key = ("modulus_coarse", self.eps_coarse, self.eps_low)
        if key not in ctx._cache:
            c = ctx.c
            out = []
            if self.with_coarse:
                if c.shape[-1] % 2:
                    raise ValueError("coarse-detail features need an even side of the condition")
                _, d = wv.analysis(c, ctx.wavelet)
                Fd = np.sqrt(d * d + self.eps_coarse**2)
                Fd = np.repeat(np.repeat(Fd, 2, axis=-2), 2, axis=-1)
                out.append(Fd)
            cc = c - c.mean(axis=(-2, -1), keepdims=True)
            out.append(np.sqrt(cc * cc + self.eps_low**2)[:, None])
            ctx._cache[key] = np.concatenate(out, axis=1)
        return ctx._cache[key]

    # ------------------------------------------------------------ per feature
    def phi(self, ctx):
        z, m, _, _ = self._mod(ctx)
        out = np.empty((ctx.N, len(self.terms)))
        if self.level == "depth0":
            for k in range(len(self.terms)):
                out[:, k] = m[:, k].sum(axis=(-2, -1))
            return out
        F = self._coarse(ctx)
        for k, (kind, p) in enumerate(self.terms):
            if kind == "mod":
                t = m[:, p]
            elif kind == "pair":
                a, s = p
                t = m[:, a] * _roll(m[:, a], s)
            elif kind == "cross":
                t = m[:, p[0]] * m[:, p[1]]
            elif kind == "modF":
                t = m[:, p[0]] * F[:, p[1]]
            elif kind == "linF":
                t = z[:, p[0]] * F[:, p[1]]
            else:  # sqF
                t = 0.5 * z[:, p[0]] ** 2 * F[:, p[1]]
            out[:, k] = t.sum(axis=(-2, -1))
        return out

    def grad(self, ctx):
        z, m, m1, m2 = self._mod(ctx)
        N, n = ctx.N, ctx.n
        K = len(self.terms)
        if self.level == "depth0":
            G = np.empty((N, K, n, n))
            for k, (_, s) in enumerate(self.terms):
                G[:, k] = m1[:, k] - _roll(m1[:, k], (-s[0], -s[1]))
            return G
        F = self._coarse(ctx)
        G = np.zeros((N, K, 3, n, n))
        for k, (kind, p) in enumerate(self.terms):
            if kind == "mod":
                G[:, k, p] = m1[:, p]
            elif kind == "pair":
                a, s = p
                G[:, k, a] = m1[:, a] * (_roll(m[:, a], s) + _roll(m[:, a], (-s[0], -s[1])))
            elif kind == "cross":
                a, b = p
                G[:, k, a] = m1[:, a] * m[:, b]
                G[:, k, b] = m[:, a] * m1[:, b]
            elif kind == "modF":
                G[:, k, p[0]] = m1[:, p[0]] * F[:, p[1]]
            elif kind == "linF":
                G[:, k, p[0]] = F[:, p[1]]
            else:
                G[:, k, p[0]] = z[:, p[0]] * F[:, p[1]]
        return G

    def laplacian(self, ctx):
        z, m, m1, m2 = self._mod(ctx)
        out = np.empty((ctx.N, len(self.terms)))
        if self.level == "depth0":
            n = ctx.n
            for k in range(len(self.terms)):
                out[:, k] = 2.0 * m2[:, k].sum(axis=(-2, -1)) if n > 1 else 0.0
            return out
        F = self._coarse(ctx)
        for k, (kind, p) in enumerate(self.terms):
            if kind == "mod":
                t = m2[:, p]
            elif kind == "pair":
                a, s = p
                t = m2[:, a] * (_roll(m[:, a], s) + _roll(m[:, a], (-s[0], -s[1])))
            elif kind == "cross":
                a, b = p
                t = m2[:, a] * m[:, b] + m[:, a] * m2[:, b]
            elif kind == "modF":
                t = m2[:, p[0]] * F[:, p[1]]
            elif kind == "linF":
                out[:, k] = 0.0
                continue
            else:
                t = F[:, p[1]]
            out[:, k] = t.sum(axis=(-2, -1))
        return out

    # ------------------------------------------------------------ θ-contracted
    def _coefficients(self, theta, ctx):
        """Per channel a: (A_a multiplying m'_a, B_a multiplying 1, Cq_a multiplying v_a)."""
        z, m, m1, m2 = self._mod(ctx)
        F = self._coarse(ctx)
        zero = np.zeros_like(m[:, 0])
        A = [zero.copy() for _ in range(3)]    # ∂U/∂m_a
        B = [zero.copy() for _ in range(3)]    # constant part of ∂U/∂v_a
        C = [zero.copy() for _ in range(3)]    # coefficient of v_a in ∂U/∂v_a
        for t, (kind, p) in zip(theta, self.terms):
            if t == 0.0:
                continue
            if kind == "mod":
                A[p] += t
            elif kind == "pair":
                a, s = p
                A[a] += t * (_roll(m[:, a], s) + _roll(m[:, a], (-s[0], -s[1])))
            elif kind == "cross":
                a, b = p
                A[a] += t * m[:, b]
                A[b] += t * m[:, a]
            elif kind == "modF":
                A[p[0]] += t * F[:, p[1]]
            elif kind == "linF":
                B[p[0]] += t * F[:, p[1]]
            else:
                C[p[0]] += t * F[:, p[1]]
        return A, B, C

    def _energy(self, theta, ctx):
        return self.phi(ctx) @ theta

    def _energy_grad(self, theta, ctx):
        z, m, m1, m2 = self._mod(ctx)
        if self.level == "depth0":
            g = 0.0
            for t, (k, (_, s)) in zip(theta, enumerate(self.terms)):
                g = g + t * (m1[:, k] - _roll(m1[:, k], (-s[0], -s[1])))
            return g + np.zeros_like(ctx.v)
        A, B, C = self._coefficients(theta, ctx)
        return np.stack([m1[:, a] * A[a] + B[a] + z[:, a] * C[a] for a in range(3)], axis=1)

    def _energy_and_grad(self, theta, ctx):
        return self._energy(theta, ctx), self._energy_grad(theta, ctx)

    def _hvp(self, theta, ctx, w):
        z, m, m1, m2 = self._mod(ctx)
        if self.level == "depth0":
            h = np.zeros_like(ctx.v)
            for t, (k, (_, s)) in zip(theta, enumerate(self.terms)):
                dw = w - _roll(w, s)
                q = m2[:, k] * dw
                h += t * (q - _roll(q, (-s[0], -s[1])))
            return h
        A, B, C = self._coefficients(theta, ctx)
        out = np.stack([m2[:, a] * A[a] * w[:, a] + C[a] * w[:, a] for a in range(3)], axis=1)
        # second-order terms through ∂A_a/∂v_b (products of moduli)
        mw = m1 * w                                               # d m_b along w
        for t, (kind, p) in zip(theta, self.terms):
            if t == 0.0:
                continue
            if kind == "pair":
                a, s = p
                out[:, a] += t * m1[:, a] * (_roll(mw[:, a], s) + _roll(mw[:, a], (-s[0], -s[1])))
            elif kind == "cross":
                a, b = p
                out[:, a] += t * m1[:, a] * mw[:, b]
                out[:, b] += t * m1[:, b] * mw[:, a]
        return out

    def spec(self) -> dict:
        return {"eps": self.eps, "eps_coarse": self.eps_coarse, "eps_low": self.eps_low}


def modulus_family(level, L, wavelet, radius=1, eps=1.0, eps_coarse=1.0, eps_low=1.0,
                   eps_rel=DEFAULT_EPS_REL, products=False, min_side=8, staged=True,
                   sparsity=True, point=True, point_scale=None, point_centre=0.0):
    """Builder of the ``modulus`` family: the gaussian couplings (``radius``), the one-point log
    potential log(1 + ((x - μ)/s)²) of the finer field (``point``; present when ``point_scale`` s
    is given, centre ``point_centre`` μ) and :class:`ModulusFeatures`.

    ``products`` (default False: products of moduli grow quadratically with a free sign, and the
    couplings then no longer decide boundedness); ``sparsity`` (the plain "|a|" terms);
    ``min_side``: levels whose varying lattice is smaller than min_side × min_side get the
    couplings only (too few coefficients to estimate modulus terms). ``eps_rel`` is only used by
    :func:`modulus_data_options` (the model sets the absolute widths from the data at each level);
    it is kept in the spec for the record.

    Fit protocol (docs/fitting.md, "Constrained coefficients"): with ``staged`` the couplings and
    the log potential are solved first and the modulus terms given them; the log potential's
    coefficient is kept >= 0 and, if the first stage softens the couplings too much, the fit
    moves back towards the couplings-alone fit (``stage_base``). Without products every term but
    the couplings grows at most linearly, so the couplings decide boundedness.
    """
    for name, value in (("eps_rel", eps_rel), ("eps", eps), ("eps_coarse", eps_coarse),
                        ("eps_low", eps_low)):
        _check_eps(name, value)
    quad = QuadraticCouplings.gaussian(level, L, wavelet, radius=radius)
    n = None if L is None else (L if level == "depth0" else L // 2)
    if n is not None and n < int(min_side):
        return quad
    blocks: list[Features] = [quad]
    if point and point_scale is not None:
        blocks.append(ScalarPotential(LogBasis([_check_eps("point_scale", point_scale)],
                                              float(point_centre)), level, L, wavelet))
    blocks.append(ModulusFeatures(level, L, wavelet, eps=eps, eps_coarse=eps_coarse,
                                  eps_low=eps_low, products=bool(products),
                                  sparsity=bool(sparsity)))
    staged_point = staged and len(blocks) == 3
    protocol = FitProtocol(
        stage_first=sum(b.n_features for b in blocks[:-1]) if staged else None,
        stage_base=quad.n_features if staged_point else None,
        nonnegative=(quad.n_features,) if staged_point else (),  # log potential: never wells
        bound=None if products else "couplings")
    return FeatureSum(blocks, fit_protocol=protocol)


def _rms(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def modulus_data_options(options: dict, level: str, fine: np.ndarray, wavelet: str) -> dict:
    """Fill the absolute smoothing widths from the data of one level (those not given):
    eps = eps_rel × rms of the details x̄_j (depth 0: of the unit increments), eps_coarse =
    eps_rel × rms of the next coarser details, eps_low = eps_rel × std of the low-pass."""
    opts = dict(options)
    rel = float(opts.get("eps_rel", DEFAULT_EPS_REL))
    x = as_batch(fine)

    def pos(v):
        return v if v > 0 else 1.0

    if level == "depth0":
        inc = np.concatenate([(x - np.roll(x, 1, axis=-2)).ravel(),
                              (x - np.roll(x, 1, axis=-1)).ravel()])
        opts.setdefault("eps", rel * pos(_rms(inc)))
        if opts.get("point", True):
            opts.setdefault("point_centre", float(x.mean()))
            opts.setdefault("point_scale", pos(float(x.std())))
        return opts
    low, det = wv.analysis(x, wavelet)
    opts.setdefault("eps", rel * pos(_rms(det)))
    if opts.get("point", True):
        opts.setdefault("point_centre", float(x.mean()))
        opts.setdefault("point_scale", pos(float(x.std())))
    cc = low - low.mean(axis=(-2, -1), keepdims=True)
    opts.setdefault("eps_low", rel * pos(_rms(cc)))
    if low.shape[-1] % 2 == 0:
        _, d2 = wv.analysis(low, wavelet)
        opts.setdefault("eps_coarse", rel * pos(_rms(d2)))
    return opts

