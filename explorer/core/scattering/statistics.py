"""Scattering spectra S1–S4 of a batch (:func:`scattering_spectra`), their reductions to a vector
with a table naming every coefficient (:func:`reduce_spectra`, :func:`scattering_statistics`) and
signal-to-noise thresholding. The science: docs/diagnostics.md, "Definitions S1–S4" and
"Reductions and coefficient counts".

Reductions: ``raw`` every (j, ℓ) coefficient; ``isotropic`` the average over a global rotation
ℓ -> ℓ + r (mod L) keeping angle differences (S1[j], S2[j], S3[j1,j2,Δ], S4[j1,j2,j3,Δ1,Δ2], Δ = ℓ2 -
ℓ1 resp. Δi = ℓi - ℓ3); ``fourier`` (default) isotropic, then the DFT over the angle differences
(harmonics m, m1, m2); ``scale`` fourier, then an orthonormal DCT-II over the scale position at
fixed scale gaps (S3: gap a = j2 - j1, over j1; S4: gaps (a, b) = (j2 - j1, j3 - j2), over j1).
The last three have :func:`isotropic_count` coefficients. Thresholding keeps S3/S4 coefficients
with |mean_n v_n| >= std_n(v_n) over the batch (mean, S1, S2 always kept; needs N >= 2).

Every table entry is a dict with ``kind`` ("mean", "S1", "S2", "S3", "S4"), ``j1``, ``j2``, ``j3``
(None when absent), angle indices (``l1``, ``l2``, ``l3`` raw; ``dl``, ``dl1``, ``dl2``
isotropic; ``m``, ``m1``, ``m2`` harmonics), and for the scale reduction ``gap`` / ``gaps`` and
``q`` instead of j's; :func:`coefficient_name` makes a readable name of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft

from explorer.core.fields.base import as_batch
from explorer.core.scattering.filters import FilterBank, filter_bank
from explorer.core.scattering.transform import WORKERS, _Forward, _forward

REDUCTIONS = ("raw", "isotropic", "fourier", "scale")


def default_J(M: int) -> int:
    """Default number of scales: log2(M) - 2 (coarsest wavelet ~ M/4 pixels), at least 1."""
    return max(1, int(math.log2(M)) - 2)


@dataclass
class ScatteringSpectra:
    """Raw (orientation-resolved) scattering spectra of a batch; S3, S4 normalised by √(S2 S2).

    Shapes: mean (N,), S1, S2 (N, J, L), S3 (N, J, L, J, L), S4 (N, J, L, J, L, J, L) complex,
    zero outside j1 <= j2 (<= j3). ``bank`` is the filter bank used.
    """

    mean: np.ndarray
    S1: np.ndarray
    S2: np.ndarray
    S3: np.ndarray
    S4: np.ndarray
    bank: FilterBank

    @property
    def J(self) -> int:
        return self.bank.J

    @property
    def L(self) -> int:
        return self.bank.L


def _normalise(fw: _Forward, S2=None):
    S2 = fw.S2 if S2 is None else S2
    r = np.sqrt(np.clip(S2, 1e-300, None))
    J, L = fw.bank.J, fw.bank.L
    n12 = r[:, :, :, None, None] * r[:, None, None, :, :]            # (N, J, L, J, L)
    return fw.S3 / n12, fw.S4 / n12[..., None, None]


def scattering_spectra(fields, J: int | None = None, L: int = 4, batch: int = 8,
                       workers=WORKERS, **bank_options) -> ScatteringSpectra:
    """Raw scattering spectra of a batch (N, M, M) (or one field), computed ``batch`` at a time.

    The orientations' FFTs of a chunk of several fields are dealt over ``workers`` threads (each
    transform on one thread); a single field's run on one: on two threads it cost 4-10 % more
    CPU time for no wall time (256², J5 L4, J7 L4, J5 L8), while 8 fields gained a fifth of
    theirs. The Gram sums run on one thread: they are many small numpy and BLAS calls, and on
    two threads the contention for the interpreter cost more CPU time than it saved wall time
    (docs/performance.md, "Scattering spectra")."""
    x = as_batch(fields)
    M = x.shape[-1]
    bank = filter_bank(M, default_J(M) if J is None else J, L, **bank_options)
    parts = []
    for a in range(0, len(x), max(1, int(batch))):
        chunk = x[a: a + batch]
        fw = _forward(chunk, bank, workers if len(chunk) > 1 else 1, gram_workers=1)
        S3, S4 = _normalise(fw)
        parts.append((fw.mean, fw.S1, fw.S2, S3, S4))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return ScatteringSpectra(*cat, bank=bank)


def _scale_triples(J):
    return [(j1, j2, j3) for j1 in range(J) for j2 in range(j1, J) for j3 in range(j2, J)]


def _pairs(J):
    return [(j1, j2) for j1 in range(J) for j2 in range(j1, J)]


@dataclass
class ScatteringStatistics:
    """Reduced scattering statistics: ``values`` (N, K) complex, ``table`` naming each column."""

    values: np.ndarray
    table: list[dict]
    reduction: str
    params: dict
    thresholded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [coefficient_name(t) for t in self.table]

    def __len__(self) -> int:
        return len(self.table)

    def mean(self) -> np.ndarray:
        return self.values.mean(axis=0)

    def std(self) -> np.ndarray:
        return np.sqrt(np.mean(np.abs(self.values - self.mean()) ** 2, axis=0))

    def select(self, kind: str) -> np.ndarray:
        """Columns of one kind ("mean", "S1", "S2", "S3", "S4")."""
        return np.array([i for i, t in enumerate(self.table) if t["kind"] == kind], dtype=int)

    def to_dict(self) -> dict:
        """JSON-able: table entries with mean (re, im) and batch std of every coefficient."""
        mu, sd = self.mean(), self.std()
        rows = []
        for t, v, s in zip(self.table, mu, sd):
            rows.append({**t, "name": coefficient_name(t), "re": float(v.real),
                         "im": float(v.imag), "std": float(s)})
        return {"reduction": self.reduction, "params": self.params, "count": len(self.table),
                "n_fields": int(self.values.shape[0]), "thresholded": self.thresholded,
                "notes": list(self.notes), "coefficients": rows}


def coefficient_name(t: dict) -> str:
    """Readable name of a table entry, e.g. ``S4[j=0,1,3;m=1,0]``."""
    kind = t["kind"]
    if kind == "mean":
        return "mean"
    if "q" in t:
        gaps = t.get("gaps", [t.get("gap")] if t.get("gap") is not None else [])
        ang = ",".join(str(t[k]) for k in ("m", "m1", "m2") if k in t)
        g = ",".join(map(str, gaps))
        return f"{kind}[gap={g};q={t['q']}" + (f";m={ang}]" if ang else "]")
    js = ",".join(str(t[k]) for k in ("j1", "j2", "j3") if t.get(k) is not None)
    angle_keys = [k for k in ("l1", "l2", "l3", "dl", "dl1", "dl2", "m", "m1", "m2") if k in t]
    if not angle_keys:
        return f"{kind}[j={js}]"
    label = {"l": "l", "d": "dl", "m": "m"}[angle_keys[0][0]]
    ang = ",".join(str(t[k]) for k in angle_keys)
    return f"{kind}[j={js};{label}={ang}]"


def reduce_spectra(spec: ScatteringSpectra, reduction: str = "fourier",
                   threshold: bool = False) -> ScatteringStatistics:
    """Reduce raw spectra to a vector + table (see the module docstring for the reductions)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    J, L = spec.J, spec.L
    N = spec.mean.shape[0]
    cols: list[np.ndarray] = [spec.mean[:, None].astype(complex)]
    table: list[dict] = [{"kind": "mean", "j1": None, "j2": None, "j3": None}]
    pairs, triples = _pairs(J), _scale_triples(J)
    if reduction == "raw":
        for kind, S in (("S1", spec.S1), ("S2", spec.S2)):
            cols.append(S.reshape(N, -1).astype(complex))
            table += [{"kind": kind, "j1": j, "j2": None, "j3": None, "l1": l}
                      for j in range(J) for l in range(L)]
        for j1, j2 in pairs:
            cols.append(spec.S3[:, j1, :, j2, :].reshape(N, -1))
            table += [{"kind": "S3", "j1": j1, "j2": j2, "j3": None, "l1": a, "l2": b}
                      for a in range(L) for b in range(L)]
        for j1, j2, j3 in triples:
            cols.append(spec.S4[:, j1, :, j2, :, j3, :].reshape(N, -1))
            table += [{"kind": "S4", "j1": j1, "j2": j2, "j3": j3, "l1": a, "l2": b, "l3": c}
                      for a in range(L) for b in range(L) for c in range(L)]
        return _finish(cols, table, reduction, spec, threshold)
    # rotation average over the cyclic orientation index
    l = np.arange(L)
    d = (l[:, None] + l[None, :]) % L                       # d[r, Δ] = r + Δ
    S1 = spec.S1.mean(axis=2)
    S2 = spec.S2.mean(axis=2)
    S3 = np.stack([spec.S3[:, :, r, :, d[r]] for r in range(L)]).mean(axis=0)
    # spec.S3[:, :, r, :, d[r]] -> (L_Δ, N, J, J) by advanced indexing rules; reorder below
    S3 = np.moveaxis(S3, 0, -1)                             # (N, J, J, Δ)
    S4 = np.mean([spec.S4[:, :, d[r][:, None], :, d[r][None, :], :, r] for r in range(L)], axis=0)
    S4 = np.moveaxis(S4, (0, 1), (-2, -1))                  # (N, J, J, J, Δ1, Δ2)
    ang3, ang4 = ("dl",), ("dl1", "dl2")
    if reduction in ("fourier", "scale"):
        S3 = np.fft.fft(S3, axis=-1) / L
        S4 = np.fft.fft2(S4, axes=(-2, -1)) / (L * L)
        ang3, ang4 = ("m",), ("m1", "m2")
    for kind, S in (("S1", S1), ("S2", S2)):
        cols.append(S.astype(complex))
        table += [{"kind": kind, "j1": j, "j2": None, "j3": None} for j in range(J)]
    if reduction != "scale":
        for j1, j2 in pairs:
            cols.append(S3[:, j1, j2])
            table += [{"kind": "S3", "j1": j1, "j2": j2, "j3": None, ang3[0]: a} for a in range(L)]
        for j1, j2, j3 in triples:
            cols.append(S4[:, j1, j2, j3].reshape(N, -1))
            table += [{"kind": "S4", "j1": j1, "j2": j2, "j3": j3, ang4[0]: a, ang4[1]: b}
                      for a in range(L) for b in range(L)]
        return _finish(cols, table, reduction, spec, threshold)
    for gap in range(J):
        seq = np.stack([S3[:, j1, j1 + gap] for j1 in range(J - gap)], axis=1)  # (N, P, L)
        c = sfft.dct(seq.real, type=2, norm="ortho", axis=1) + 1j * sfft.dct(
            seq.imag, type=2, norm="ortho", axis=1)
        cols.append(c.reshape(N, -1))
        table += [{"kind": "S3", "j1": None, "j2": None, "j3": None, "gap": gap, "q": q, "m": a}
                  for q in range(J - gap) for a in range(L)]
    for a in range(J):
        for b in range(J - a):
            P = J - a - b
            seq = np.stack([S4[:, j1, j1 + a, j1 + a + b] for j1 in range(P)], axis=1)
            c = sfft.dct(seq.real, type=2, norm="ortho", axis=1) + 1j * sfft.dct(
                seq.imag, type=2, norm="ortho", axis=1)
            cols.append(c.reshape(N, -1))
            table += [{"kind": "S4", "j1": None, "j2": None, "j3": None, "gaps": [a, b], "q": q,
                       "m1": m1, "m2": m2} for q in range(P) for m1 in range(L) for m2 in range(L)]
    return _finish(cols, table, reduction, spec, threshold)


def _finish(cols, table, reduction, spec, threshold) -> ScatteringStatistics:
    values = np.concatenate([c.reshape(c.shape[0], -1) for c in cols], axis=1)
    assert values.shape[1] == len(table)
    params = {"J": spec.J, "L": spec.L, **spec.bank.spec()}
    stats = ScatteringStatistics(values, table, reduction, params)
    if threshold:
        stats = snr_threshold(stats)
    return stats


def snr_threshold(stats: ScatteringStatistics, ratio: float = 1.0) -> ScatteringStatistics:
    """Drop S3/S4 coefficients with |mean| < ratio × std over the batch (needs >= 2 fields)."""
    N = stats.values.shape[0]
    if N < 2:
        return ScatteringStatistics(stats.values, stats.table, stats.reduction, stats.params,
                                    False, stats.notes + ["one field: no signal-to-noise "
                                                          "thresholding (needs >= 2)"])
    mu, sd = np.abs(stats.mean()), stats.std()
    keep = np.array([t["kind"] in ("mean", "S1", "S2") or mu[i] >= ratio * sd[i]
                     for i, t in enumerate(stats.table)])
    table = [t for t, k in zip(stats.table, keep) if k]
    note = f"kept {int(keep.sum())} of {len(keep)} coefficients (|mean| >= {ratio} std)"
    return ScatteringStatistics(stats.values[:, keep], table, stats.reduction, stats.params, True,
                                stats.notes + [note])


def scattering_statistics(fields, J: int | None = None, L: int = 4, reduction: str = "fourier",
                          threshold: bool = False, **kwargs) -> ScatteringStatistics:
    """Scattering spectra of a batch reduced to a named vector (the main entry point)."""
    return reduce_spectra(scattering_spectra(fields, J, L, **kwargs), reduction, threshold)


def isotropic_count(J: int, L: int) -> int:
    """1 + 2J + L·J(J+1)/2 + L²·C(J+2, 3) (631 at J=5, L=4; 1471 at J=7, L=4)."""
    return 1 + 2 * J + L * J * (J + 1) // 2 + L * L * math.comb(J + 2, 3)
