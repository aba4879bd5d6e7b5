"""Helpers of the teaching notebooks (``notebooks/``): claim checks printed as ✓/✗ with their
threshold, Binder cumulants with jackknife errors, and the small numerical studies the notebooks
run (score matching vs maximum likelihood on a one-dimensional double well, the WCRG drift
checks, mixing of the single-scale and of the whole multiscale sampler). No plotting here: the
figures are :mod:`explorer.ui.notebook_figures`.

A check prints one line and returns whether the claim held. A notebook keeps running when a
claim fails (a student turning a knob sees ✗ and the number instead of a traceback); with the
environment variable ``EXPLORER_STRICT=1`` (set by the notebook tests on the default settings) a
failed check raises :class:`ClaimFailed`. The science behind the studies: docs/fitting.md
(score matching and maximum likelihood), docs/sampling.md (τ_int, critical slowing down, mixing
comparisons) and docs/models.md.
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass

import numpy as np

from explorer.core import diagnostics as dg
from explorer.core import wavelets as wv
from explorer.core.model import WCRGModel
from explorer.core.observables import binder_cumulant, jackknife, magnetisation, tau_estimate
from explorer.core.sampling import langevin
from explorer.core.tempering import MIN_SIGN_CROSSING, geometric_ladder, tempered
from explorer.core.workflows import factor_label, fit_rows

STRICT_ENV = "EXPLORER_STRICT"
_RELATIONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class ClaimFailed(AssertionError):
    """A notebook's claim did not hold while ``EXPLORER_STRICT=1``."""


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "0") == "1"


def _fmt(v, fmt: str) -> str:
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return format(v, fmt) if isinstance(v, (int, float, np.integer, np.floating)) else str(v)


def check(claim: str, value, relation: str, threshold, fmt: str = ".3g") -> bool:
    """Print ``✓ claim: value relation threshold`` (or ✗) and return whether it held.

    ``relation`` is one of ``<``, ``<=``, ``>``, ``>=``; ``value`` None counts as failed. Raises
    :class:`ClaimFailed` on a failure when ``EXPLORER_STRICT=1``.
    """
    if relation not in _RELATIONS:
        raise ValueError(f"relation must be one of {sorted(_RELATIONS)}, got {relation!r}")
    ok = value is not None and bool(np.isfinite(value)) and bool(_RELATIONS[relation](value, threshold))
    line = f"{'✓' if ok else '✗'} {claim}: {_fmt(value, fmt)} (claim: {relation} {_fmt(threshold, fmt)})"
    print(line)
    if not ok and strict():
        raise ClaimFailed(line)
    return ok


# ====================================================================== Binder cumulant
def binder(fields, blocks: int = 20) -> tuple[float, float]:
    """Binder cumulant U = 1 − ⟨m⁴⟩/(3⟨m²⟩²) of a batch of fields with its blocked-jackknife
    error (``blocks`` at most the number of fields)."""
    m = magnetisation(np.asarray(fields, np.float64))
    return jackknife(m, binder_cumulant, blocks=min(blocks, len(m)))


def pm(value: float, err: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f} ± {err:.{digits}f}"


# ====================================================================== notebook 01
def well_passages(traj: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Completed passages between the wells x < −threshold and x > threshold per chain of a
    trajectory (T, chains) (hysteresis: jitter around 0 is not counted)."""
    state = np.zeros(traj.shape[1])
    count = np.zeros(traj.shape[1], dtype=int)
    for row in traj:
        new = np.where(row > threshold, 1.0, np.where(row < -threshold, -1.0, 0.0))
        count += (new != 0) & (state != 0) & (new != state)
        state = np.where(new != 0, new, state)
    return count


def settled_from(path: np.ndarray, target: float, tol: float = 0.10) -> int | None:
    """First index from which ``path`` stays within ``tol`` (relative) of ``target``; None when
    it is still outside at the end."""
    rel = np.abs(np.asarray(path, np.float64) / target - 1.0)
    late = np.flatnonzero(rel >= tol)
    if late.size == 0:
        return 0
    return int(late[-1] + 1) if late[-1] + 1 < len(rel) else None


@dataclass
class DoubleWell:
    """The one-dimensional family U_θ(x) = θ·Φ(x), Φ = (x, x², x⁴), around the tilted double well
    a(x² − 1)² + h x: true θ = (h, −2a, a); ``a = 0`` stands for the convex well
    x²/2 + x⁴/4 + h x instead. Everything is computed on a grid (no sampling), so maximum
    likelihood is exact and fast here."""

    a: float
    h: float = 0.1
    lim: float = 3.5
    points: int = 2001

    def __post_init__(self):
        self.x = np.linspace(-self.lim, self.lim, self.points)
        self.dx = self.x[1] - self.x[0]
        self.theta = (np.array([self.h, -2.0 * self.a, self.a]) if self.a > 0
                      else np.array([self.h, 0.5, 0.25]))

    @staticmethod
    def features(x):
        return np.stack([x, x**2, x**4])

    @staticmethod
    def dfeatures(x):
        return np.stack([np.ones_like(x), 2 * x, 4 * x**3]), np.stack([np.zeros_like(x), 2 + 0 * x, 12 * x**2])

    def density(self, theta=None) -> np.ndarray:
        u = (self.theta if theta is None else theta) @ self.features(self.x)
        p = np.exp(-(u - u.min()))
        return p / (p.sum() * self.dx)

    def sample(self, n: int, rng) -> np.ndarray:
        """Exact samples by inverting the CDF on the grid."""
        cdf = np.cumsum(self.density()) * self.dx
        return np.interp(rng.random(n), cdf / cdf[-1], self.x)

    @classmethod
    def score_matching(cls, x) -> np.ndarray:
        """θ solving H θ = b with H = mean ∇Φ∇Φᵀ, b = mean ΔΦ (Hyvärinen's estimator)."""
        d1, d2 = cls.dfeatures(x)
        return np.linalg.solve(d1 @ d1.T / x.size, d2.mean(axis=1))

    def _loglik(self, th, target) -> float:
        u = th @ self.features(self.x)
        umin = u.min()
        return float(-th @ target + umin - np.log(np.sum(np.exp(-(u - umin))) * self.dx))

    def maximum_likelihood(self, x, theta0=None, iterations: int = 100) -> np.ndarray:
        """θ matching the model moments of Φ to the data's: Newton steps on the exact mean
        log-likelihood (normalisation on the grid), halved until the likelihood increases."""
        target = self.features(x).mean(axis=1)
        F = self.features(self.x)
        th = np.array(self.theta if theta0 is None else theta0, np.float64)
        ll = self._loglik(th, target)
        for _ in range(iterations):
            p = self.density(th) * self.dx
            mean = F @ p
            cov = (F * p) @ F.T - np.outer(mean, mean)
            # ascent direction of the mean log-likelihood: model moments minus data moments
            step = np.linalg.solve(cov + 1e-12 * np.eye(3), mean - target)
            for _ in range(40):
                new = self._loglik(th + step, target)
                if new >= ll:
                    break
                step = step / 2
            th, ll = th + step, max(new, ll)
            if np.max(np.abs(step)) < 1e-10:
                break
        return th

    def asymptotic_variances(self) -> dict:
        """n × the asymptotic variance of each coordinate of θ̂: maximum likelihood Cov(Φ)⁻¹
        (the Cramér–Rao bound), score matching H⁻¹ Cov(ψ) H⁻¹ with ψ = ∇Φ∇Φᵀθ − ΔΦ."""
        p = self.density() * self.dx
        F = self.features(self.x)
        d1, d2 = self.dfeatures(self.x)
        mean = F @ p
        ml = np.linalg.inv((F * p) @ F.T - np.outer(mean, mean))
        H = (d1 * p) @ d1.T
        psi = d1 * (self.theta @ d1)[None] - d2
        mpsi = psi @ p
        S = (psi * p) @ psi.T - np.outer(mpsi, mpsi)
        Hi = np.linalg.inv(H)
        return {"ml": np.diag(ml), "sm": np.diag(Hi @ S @ Hi)}


def double_well_efficiency(barriers, n: int = 200, replicates: int = 200, h: float = 0.1,
                           seed: int = 0) -> list[dict]:
    """Score matching vs maximum likelihood on the tilted double well for each barrier height a
    (0: the convex well of :class:`DoubleWell`):
    ``replicates`` data sets of ``n`` exact samples, both estimators on each; the mean error
    (consistency) and the spread (efficiency) of the field h, which sets the weights of the two
    wells, with the asymptotic variance ratio from the grid."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in barriers:
        fam = DoubleWell(float(a), h)
        sm, ml = [], []
        for _ in range(replicates):
            x = fam.sample(n, rng)
            sm.append(fam.score_matching(x))
            ml.append(fam.maximum_likelihood(x))
        sm, ml = np.array(sm), np.array(ml)
        asym = fam.asymptotic_variances()
        rows.append({
            "barrier a": float(a),
            "true h": h,
            "mean h, SM": float(sm[:, 0].mean()), "mean h, ML": float(ml[:, 0].mean()),
            "std h, SM": float(sm[:, 0].std()), "std h, ML": float(ml[:, 0].std()),
            "variance ratio SM/ML (measured)": float(sm[:, 0].var() / ml[:, 0].var()),
            "variance ratio SM/ML (asymptotic)": float(asym["sm"][0] / asym["ml"][0]),
            "mean rel. error of θ_x⁴, SM": float(sm[:, 2].mean() / fam.theta[2] - 1),
            "mean rel. error of θ_x⁴, ML": float(ml[:, 2].mean() / fam.theta[2] - 1),
        })
    return rows


# ====================================================================== notebook 02
def kappa_table(model: WCRGModel) -> dict:
    """κ(H_SM) of every factor's score-matching matrix, raw → Jacobi-preconditioned, by name."""
    return {f"κ(H_SM) {r['scale']}": f"{r['kappa_raw']:.2g} → {r['kappa_preconditioned']:.3g}"
            for r in fit_rows(model)}


def sample_metrics(x: np.ndarray, s: np.ndarray, J: int, wavelet: str = wv.DEFAULT_WAVELET) -> dict:
    """Data vs samples: the distances of :func:`diagnostics.compare`, the histogram distance of
    the symmetrised batches (the law is even), the worst detail-std ratio, ⟨|m|⟩ and the Binder
    cumulants with jackknife errors."""
    c = dg.compare(x, s, J=J, wavelet=wavelet)
    sym = np.concatenate([s, -s])
    ub, eb = binder(x)
    us, es = binder(s)
    return {"spectrum log-ratio": c["spectrum_log_ratio"], "histogram TV": c["total_variation"],
            "histogram TV (symmetrised)": dg.total_variation(np.concatenate([x, -x]), sym),
            "max |std ratio − 1| (details)": float(np.max(np.abs(np.array(c["scale_std_ratios"][:J]) - 1))),
            "std ratio per scale": np.round(c["scale_std_ratios"], 2).tolist(),
            "⟨|m|⟩ data": float(np.abs(magnetisation(x)).mean()),
            "⟨|m|⟩ samples": float(np.abs(magnetisation(s)).mean()),
            "Binder U data": ub, "Binder U data err": eb,
            "Binder U samples": us, "Binder U samples err": es}


def _coherence(z: np.ndarray) -> float:
    return float(np.mean(np.abs(np.sign(z).mean(axis=(-2, -1)))))


def drift_check(model: WCRGModel, x: np.ndarray, steps: int = 150, coarse_steps: int = 1000,
                seed: int = 0) -> dict:
    """Two checks that separate a bad model from a bad sampler: MALA on each conditional j ≥ 2
    started at the data's own details (condition: the data's coarser field) — the detail std
    after / before; and MALA on the coarse factor from noise — the sign coherence |⟨sign x_J⟩|
    of model and data."""
    J = model.J
    lows = wv.low_passes(x, J, model.wavelet)
    _, details = wv.decompose(x, J, model.wavelet)
    out = {}
    for f in model.conditionals[1:]:
        d, c = details[f.j - 1], lows[f.j]
        r = langevin(lambda v: f.energy(v, c), lambda v: f.grad(v, c), d,
                     n_steps=steps, burn_in=steps, seed=seed)
        out[f"j={f.j}: std after / before"] = float(r.x.std() / d.std())
    coarse = model.coarse
    rng = np.random.default_rng(seed)
    x0 = model.stats["coarse_mean"] + model.stats["coarse_std"] * rng.standard_normal(lows[-1].shape)
    r = langevin(coarse.energy, coarse.grad, x0, n_steps=coarse_steps, burn_in=coarse_steps, seed=seed)
    out["coarse sign coherence, data"] = _coherence(lows[-1])
    out["coarse sign coherence, model"] = _coherence(r.x)
    out["coarse κ(H_SM) preconditioned"] = coarse.fit["kappa_H_preconditioned"]
    return out


def worst_drift(d: dict) -> float:
    return max(abs(v - 1) for k, v in d.items() if k.startswith("j="))


def coarse_ladder(model: WCRGModel) -> list[float]:
    """The temperatures the model's sampler uses on its coarse factor (replica exchange when the
    data's coarse fields cross zero, for the phi4 family; one temperature otherwise)."""
    crossing = model.stats.get("coarse_sign_crossing", 0.0)
    n = 8 if model.family == "phi4" and crossing >= MIN_SIGN_CROSSING else 1
    return geometric_ladder(n, 64.0)


def _tau(series, steps_per_record: int = 1) -> dict:
    est = tau_estimate(series)
    return {"tau": steps_per_record * est.tau, "measured": est.measured,
            "lower bound": steps_per_record * est.lower_bound}


def mixing_at_size(x: np.ndarray, chains: int = 16, single_steps: int = 5000, thin: int = 5,
                   conditional_steps: int = 600, coarse_steps: int = 2000, wavelet: str = wv.DEFAULT_WAVELET,
                   seed: int = 0) -> dict:
    """τ_int per factor and the cost per independent sample at one lattice side L, at β from
    the data (chains start at data fields, so burn-in is not mistaken for mixing).

    * single-scale sampler: MALA on the depth-0 model fitted to ``x``, observable m²;
    * the whole multiscale sampler (depth with a 4×4 coarse field): each conditional by MALA
      given the data's coarser field, observable the mean square of its details; the coarse
      factor as the model's sampler runs it (MALA + exact sign flips, with replica exchange on
      the model's ladder when the coarse data cross zero), observable m²; and, for comparison,
      the coarse factor by MALA alone.

    τ is in gradient evaluations of its factor. The cost of a gradient is counted in
    full-resolution equivalents: a factor evaluated on an n × n field costs (n/L)² (conditional j:
    n = L/2^(j−1), the finer field its features live on; coarse: n = 4, times the number of
    replicas). Cost per independent sample: the single-scale τ; for the multiscale sampler
    Σ_factors τ × cost (each factor must produce one independent draw given the coarser one).
    """
    L = x.shape[-1]
    J = int(np.log2(L)) - 2
    x0 = x[:chains]
    m2 = lambda s: s.mean(axis=(-2, -1)) ** 2  # noqa: E731
    single = WCRGModel("phi4", 0, wavelet, radius=1).fit(x).coarse
    r = langevin(single.energy, single.grad, x0, n_steps=single_steps, burn_in=400, thin=thin, seed=seed)
    row = {"L": L, "single-scale": _tau(m2(r.samples.astype(np.float64)), thin)}
    row["single-scale run / τ"] = single_steps / row["single-scale"]["tau"]
    model = WCRGModel("phi4", J, wavelet, radius=1).fit(x)
    lows = wv.low_passes(x0, J, wavelet)
    _, details = wv.decompose(x0, J, wavelet)
    factors = []
    for f in model.conditionals:
        r = langevin(lambda v, f=f, c=lows[f.j]: f.energy(v, c), lambda v, f=f, c=lows[f.j]: f.grad(v, c),
                     details[f.j - 1], n_steps=conditional_steps, burn_in=200, thin=1, seed=seed)
        power = (r.samples.astype(np.float64) ** 2).mean(axis=(-3, -2, -1))
        factors.append({"factor": factor_label(f), "side": L >> (f.j - 1),
                        "cost per gradient": 4.0 ** (-(f.j - 1)), **_tau(power)})
    ladder = coarse_ladder(model)
    c = model.coarse
    rt = tempered(c.energy, c.grad, lows[-1], n_steps=coarse_steps, burn_in=200,
                  temperatures=ladder, seed=seed)
    factors.append({"factor": f"coarse 4×4 ({len(ladder)} replica{'s' if len(ladder) > 1 else ''} + flips)",
                    "side": 4, "cost per gradient": len(ladder) * (4.0 / L) ** 2,
                    **_tau(rt.magnetisation_trace ** 2)})
    rm = langevin(c.energy, c.grad, lows[-1], n_steps=coarse_steps, burn_in=200, thin=1, seed=seed)
    row["coarse MALA alone"] = _tau(m2(rm.samples.astype(np.float64)))
    for f in factors:
        f["cost per independent sample"] = f["tau"] * f["cost per gradient"]
    row["factors"] = factors
    row["multiscale cost"] = float(sum(f["cost per independent sample"] for f in factors))
    row["single-scale cost"] = row["single-scale"]["tau"]
    return row


def flow_speed(flow: dict) -> float:
    """Mean relative change ‖θ_{j+1} − θ_j‖ / ‖θ_j‖ of the raw couplings per coarse-graining step."""
    th = np.array([[s["theta"][k] for k in ("nn", "phi^2", "phi^4")] for s in flow["scales"]])
    return float(np.mean(np.linalg.norm(np.diff(th, axis=0), axis=1) / np.linalg.norm(th[:-1], axis=1)))


# ====================================================================== notebook 03
def sparsity(fields, J: int, L: int = 4) -> np.ndarray:
    """S1 / √S2 per scale, averaged over orientations and fields (√π/2 ≈ 0.886 for a Gaussian
    field)."""
    from explorer.core.scattering import scattering_spectra

    s = scattering_spectra(fields, J, L)
    return (s.S1 / np.sqrt(s.S2)).mean(axis=(0, 2))


def scattering_by_kind(fields, J: int, L: int = 4) -> dict:
    """The isotropic scattering spectra of a batch, their moduli grouped by kind:
    ``{"S1": [...], "S2": [...], "S3": [...], "S4": [...], "names": {kind: [...]}}`` (means over
    the fields)."""
    from explorer.core.scattering import scattering_statistics

    st = scattering_statistics(np.asarray(fields, np.float64), J=J, L=L, reduction="isotropic")
    v = np.abs(st.values.mean(axis=0))
    out: dict = {"names": {}}
    for kind in ("S1", "S2", "S3", "S4"):
        idx = [i for i, t in enumerate(st.table) if t["kind"] == kind]
        out[kind] = v[idx]
        out["names"][kind] = [st.names[i] for i in idx]
    return out
