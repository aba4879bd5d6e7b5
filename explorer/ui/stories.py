"""Stories: one-click presets for a class (no Panel import). Each loads a shipped data set and
model / sampler settings into a :class:`~explorer.ui.session.Session`, runs its actions one
after the other (fit, then sample — the comparison follows every sampling run in the app — or a
scattering synthesis) and says in two sentences what to look for.

The story "learn at 64², sample at 128²" samples at twice the fitted side (``sample_size``,
the size transfer of :func:`explorer.core.transfer.transferred`); its check is under Sample
(Compare needs samples of the data's size).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.core.defaults import DEFAULT_STEPS


@dataclass(frozen=True)
class Story:
    key: str
    title: str
    asset: str
    settings: dict = field(default_factory=dict)  # Session parameters
    actions: tuple[str, ...] = ("fit", "sample")  # started one after the other
    look_for: str = ""  # two sentences: what to look at, where

    @property
    def first_action(self) -> str:
        return self.actions[0]


SAMPLER = {"n_samples": 16, "steps": DEFAULT_STEPS, "sample_method": "mala", "sample_seed": 0}


def fit_and_sample(family: str, J: int) -> dict:
    """A story's settings: fit ``family`` at depth ``J`` by score matching, then sample."""
    return {"family": family, "J": J, "method": "score", **SAMPLER}


STORIES: tuple[Story, ...] = (
    Story("critical-phi4", "Critical φ⁴", "phi4_L64_beta0.68.npz",
          fit_and_sample("phi4", 4),
          look_for="At β = 0.68 the field has structure at every scale, yet the WCRG model "
          "learned scale by scale reproduces it: in Compare the spectra and histograms of data "
          "and samples overlap, and the table gives the Binder U difference. In the Hessian "
          "eigenvalues, the true pixel energy has many negative eigenvalues while the "
          "conditionals j=1, j=2 are nearly convex — why sampling coarse to fine is fast."),
    Story("ordered-phi4", "Ordered φ⁴", "phi4_L64_beta0.76.npz",
          fit_and_sample("phi4", 4),
          look_for="Beyond the critical coupling the field orders: the data's histogram has two "
          "peaks at ±⟨|m|⟩ and the kurtosis of the coarse low-passes falls well below the "
          "Gaussian 3. Check in Compare whether the samples keep both peaks and that kurtosis; "
          "the broken symmetry lives in the coarse factor."),
    Story("gaussian-kappa", "The Gaussian κ theorem", "gaussian_L64_eta2.npz",
          fit_and_sample("gaussian", 4),
          look_for="For a Gaussian field with P ∝ |k|⁻² the Hessian in the pixel basis has a "
          "condition number growing like L², while each wavelet conditional's stays of order 1 "
          "whatever L (the conditioning theorem). Read κ in the legend of Compare's Hessian "
          "eigenvalues ('pixel (fitted)' against 'conditional j=…') and the τ_int per scale in "
          "the mixing table."),
    Story("turbulence-gaussian", "Turbulence: a Gaussian model", "turbulence_L128.npz",
          fit_and_sample("gaussian", 5),
          look_for="A Gaussian model gets the vorticity's power spectrum right but not its "
          "intermittency: in Compare the samples' kurtosis per scale stays near 3 where the "
          "data's rises at fine scales, and S3/S4 of the scattering spectra miss. Run the next "
          "story (modulus family) and compare the kurtosis rows and the differences per kind."),
    Story("turbulence-modulus", "Turbulence: the modulus family", "turbulence_L128.npz",
          fit_and_sample("modulus", 5),
          look_for="The modulus family adds smooth moduli of the wavelet details and a one-point "
          "potential: at the same depth and sampler, the kurtosis per scale comes closer to the "
          "data's than the Gaussian model's. Compare the kurtosis rows and the scattering "
          "differences per kind with the previous story."),
    Story("turbulence-synthesis", "Turbulence: one-sample synthesis", "turbulence_L128.npz",
          {"synthesis_fields": 1, "n_samples": 1, "synthesis_iterations": 100,
           "sample_seed": 0},
          actions=("synthesize",),
          look_for="No model at all: from white noise, L-BFGS matches the scattering spectra "
          "S1–S4 of one single vorticity field, and vortices and filaments appear. In Compare "
          "the scattering spectra agree by construction; the histogram and the kurtosis per "
          "scale show what those statistics leave free."),
    Story("learn-64-sample-128", "Learn at 64², sample at 128²", "phi4_L64_beta0.68.npz",
          {"family": "phi4", "J": 4, "method": "score", **SAMPLER, "sample_size": 128},
          look_for="The conditionals are local and, at β_c, close to a fixed point of the RG, "
          "so a model learned on 64² fields generates 128² ones: its extra coarse level reuses "
          "the coarsest fitted conditional. Under Sample, the size-transfer table compares the "
          "Binder U of the 128² samples with the data's (≈ 0.6 at every size at β_c) and "
          "χ(128)/χ(64) with finite-size scaling's 2^(7/4) ≈ 3.4."),
)


def available_stories(assets: list[str] | None = None) -> list[Story]:
    """The stories whose data are shipped (``assets``: file names present; None: all)."""
    return [s for s in STORIES if assets is None or s.asset in assets]


def story(key: str) -> Story:
    for s in STORIES:
        if s.key == key:
            return s
    raise KeyError(f"no story {key!r}; stories: {', '.join(s.key for s in STORIES)}")
