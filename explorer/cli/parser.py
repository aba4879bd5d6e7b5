"""The command line's parser: every command, flag and argument type (checked by
:mod:`explorer.cli.validation` before any work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.sweep_cli import add_parsers as add_sweep_parsers
from explorer.core import workflows as wf
from explorer.core.support import DEFAULT_FLOOR as DEFAULT_SUPPORT_FLOOR
from explorer.cli.validation import (Parser, array_key, float_where, int_in, nonnegative_float,
                                     positive_float, positive_int, power_of_two, support_floor)

DESCRIPTION = "Command line: ``explorer ...`` or ``python -m explorer ...``."
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
OPT = wf.FAMILY_OPTION_DEFAULTS

#: The default data shipped in assets/, each built by one `explorer generate` command.
ASSET_COMMANDS: dict[str, list[str]] = {
    "phi4_L64_beta0.50.npz": ["phi4", "--size", "64", "--samples", "256", "--beta", "0.50",
                              "--lam", "1", "--seed", "1"],
    "phi4_L64_beta0.68.npz": ["phi4", "--size", "64", "--samples", "256", "--beta", "0.68",
                              "--lam", "1", "--seed", "2"],
    "phi4_L64_beta0.76.npz": ["phi4", "--size", "64", "--samples", "256", "--beta", "0.76",
                              "--lam", "1", "--seed", "3"],
    "gaussian_L64_eta2.npz": ["gaussian", "--size", "64", "--samples", "256", "--kind", "powerlaw",
                              "--slope", "2", "--mass", "0", "--seed", "4"],
    "turbulence_L128.npz": ["turbulence", "--size", "128", "--samples", "16", "--seed", "5"],
    "turbulence_L256.npz": ["turbulence", "--size", "256", "--samples", "16", "--seed", "6"],
}


def add_key(parser, what: str = "the field file") -> None:
    parser.add_argument("--key", type=array_key, default=None, metavar="NAME",
                        help=f"the array of {what} holding the fields, when it is an .npz whose "
                             "array is not named 'fields'")


def add_output_flags(parser, quiet: bool = True) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the whole result as JSON on stdout (nothing truncated)")
    if quiet:
        parser.add_argument("--quiet", action="store_true",
                            help="no progress display (warnings are still shown)")


def _add_generate(sub) -> None:
    gen = sub.add_parser("generate", help="generate a batch of fields into an .npz file")
    kinds = gen.add_subparsers(dest="kind", metavar="{phi4,gaussian,turbulence}")
    kinds.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--samples", type=positive_int, default=256, help="number of fields N")
    common.add_argument("--seed", type=int_in(0), default=0, help="random seed")
    common.add_argument("--out", help="output .npz file (required, except with phi4 --store)")
    common.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress display")

    def size(parser, kind: str, default: int) -> None:
        lo, hi = wf.GENERATE_SIZES[kind]
        parser.add_argument("--size", type=power_of_two(lo, hi), default=default,
                            help=f"lattice side L (a power of two in {lo}..{hi})")

    p = kinds.add_parser("phi4", parents=[common], help="lattice phi^4 (canonical form)")
    size(p, "phi4", 64)
    p.add_argument("--beta", type=nonnegative_float, default=0.68,
                   help="nearest-neighbour coupling (>= 0)")
    p.add_argument("--lam", type=nonnegative_float, default=1.0, help="quartic coupling lambda (>= 0)")
    p.add_argument("--chains", type=positive_int, default=None,
                   help="parallel Markov chains (default min(N, 256))")
    p.add_argument("--store", metavar="DIR", default=None,
                   help="a large ensemble instead of one file: chains split over Dask workers "
                        "(a local cluster, or --scheduler), chunks DIR/chunk_XXXX.npz written as "
                        "they finish; a rerun completes an interrupted ensemble")
    p.add_argument("--chunk", type=positive_int, default=None, help="with --store: fields per chunk")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="with --store: a running Dask scheduler (address or scheduler file)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="with --store: local cluster processes (default one per core)")
    p.add_argument("--local-only", action="store_true",
                   help="Metropolis moves only, no cluster updates (slow near beta_c)")
    p.add_argument("--require-equilibrium", action="store_true",
                   help="fail (exit 2, nothing written) when tau_int cannot be measured or the "
                        "production run decorrelates more slowly than the pilot said; by default "
                        "such data are written with a warning and meta equilibrated=false")

    g = kinds.add_parser("gaussian", parents=[common], help="exact Gaussian field (FFT)")
    size(g, "gaussian", 64)
    g.add_argument("--kind", dest="spectrum", choices=["powerlaw", "free"], default="powerlaw",
                   help="powerlaw: P=(k^2+m^2)^(-slope/2); free: P=1/(m^2+beta*khat^2)")
    g.add_argument("--slope", type=nonnegative_float, default=2.0,
                   help="power-law exponent eta (>= 0)")
    g.add_argument("--mass", type=nonnegative_float, default=0.0, help="mass m (>= 0)")
    g.add_argument("--beta", type=positive_float, default=1.0, help="free-field stiffness (> 0)")

    t = kinds.add_parser("turbulence", parents=[common], help="2D forced turbulence (vorticity)")
    size(t, "turbulence", 128)
    t.add_argument("--spinup", type=nonnegative_float, default=10.0,
                   help="spin-up time before sampling (>= 0)")
    t.add_argument("--interval", type=positive_float, default=1.0,
                   help="time between snapshots (> 0)")
    t.add_argument("--nu", type=positive_float, default=None,
                   help="hyperviscosity (> 0; default: scaled with the resolution)")
    t.add_argument("--order", type=int_in(1, 16), default=4,
                   help="hyperviscosity order p in (-Delta)^p (1..16)")
    t.add_argument("--drag", type=nonnegative_float, default=0.1, help="linear drag alpha (>= 0)")
    t.add_argument("--kf", type=int_in(1), default=4,
                   help="Kolmogorov forcing wavenumber (1 <= kf < size/3)")
    t.add_argument("--cfl", type=float_where("in (0, 1.5]", lambda v: 0 < v <= 1.5), default=0.5,
                   help="CFL number (0 < cfl <= 1.5)")


def _add_scattering(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("data", help="field file (.npz/.npy/.png/.jpg)")
    common.add_argument("--J", type=int_in(1, 12), default=None,
                        help="number of scales, 1..log2(size) (default log2(size) - 2)")
    common.add_argument("--L", type=int_in(1, 16), default=4,
                        help="number of orientations (1..16)")
    common.add_argument("--fields", type=int, nargs="+", default=None, metavar="I",
                        help="use only these fields of the file (default: all)")
    add_key(common)
    common.add_argument("--json", action="store_true", help="print the whole result as JSON")
    sc = sub.add_parser("scattering", parents=[common],
                        help="scattering spectra S1-S4 of a field file, with coefficient names")
    sc.add_argument("--reduction", choices=["raw", "isotropic", "fourier", "scale"],
                    default="fourier", help="how coefficients are reduced over orientations")
    sc.add_argument("--threshold", action="store_true",
                    help="drop S3/S4 coefficients with |mean| < std over the fields")
    sy = sub.add_parser("synthesize", parents=[common],
                        help="microcanonical scattering-spectra synthesis from a few fields")
    sy.add_argument("--samples", type=positive_int, default=4, help="number of syntheses")
    sy.add_argument("--iterations", type=int_in(1, 1_000_000), default=300,
                    help="L-BFGS iterations")
    sy.add_argument("--model", choices=["scattering", "gaussian"], default="scattering",
                    help="gaussian: phase-randomised data (power spectrum only)")
    sy.add_argument("--seed", type=int_in(0), default=0, help="random seed")
    sy.add_argument("--precision", choices=["single", "double"], default="single",
                    help="precision of the statistics and gradient during the optimisation "
                         "(single: float32 wavelet transforms and sums, ~1.6x faster, same quality)")
    sy.add_argument("--out", required=True, help="output .npz file")
    sy.add_argument("--quiet", action="store_true", help="no progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="explorer", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    _add_generate(sub)
    i = sub.add_parser("info", help="describe a field file (.npz/.npy/.png/.jpg) or a model file")
    i.add_argument("file", help="a field file, or a model .npz made by 'explorer fit'")
    add_key(i)
    i.add_argument("--observables", nargs="+", choices=["phi4", "turbulence"], default=[],
                   help="domain observables to add (by default only those the file's meta names: "
                        "phi4 for phi4 data, turbulence for turbulence)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    f = sub.add_parser("fit", help="fit a WCRG energy model to a field file")
    f.add_argument("data", help="field file (.npz/.npy/.png/.jpg)")
    add_key(f)
    f.add_argument("--family", choices=wf.family_choices(), default="phi4",
                   help="feature family (the registered WCRG families and their aliases)")
    f.add_argument("--eps-rel", type=positive_float, default=OPT["eps_rel"],
                   help="families with modulus terms: smooth-modulus width relative to each "
                        "scale's rms")
    f.add_argument("--depth", type=int_in(0, 12), default=None,
                   help="number of wavelet scales J (0: pixels; 2^J must divide the size); "
                        "None: the suggested depth 'explorer info' prints, i.e. the app's: the "
                        "deepest (coarse field 4x4) for Gaussian and turbulence data and for "
                        "files whose spectrum falls as k^-2 or faster, otherwise 2")
    f.add_argument("--wavelet", default="db4", help="haar, db2..db8, sym2..sym8")
    f.add_argument("--method", choices=["score", "ml"], default="score",
                   help="score matching (fast) or maximum likelihood (slow, MALA chains)")
    f.add_argument("--radius", type=int_in(0, 8), default=OPT["radius"],
                   help="coupling shifts within this radius (0..8)")
    f.add_argument("--potential", choices=["polynomial", "windows"], default=OPT["potential"],
                   help="phi4 family: scalar potential basis")
    f.add_argument("--degree", type=int_in(4, 16), default=OPT["degree"],
                   help="polynomial potential degree (4..16)")
    f.add_argument("--parity", choices=list(wf.PARITIES), default=OPT["parity"],
                   help="polynomial potential powers: even only, or all (odd terms phi, phi^3, "
                        "...: skewed one-point laws)")
    f.add_argument("--windows", type=int_in(2, 200), default=OPT["n_windows"],
                   help="number of potential windows (2..200)")
    f.add_argument("--ridge", type=nonnegative_float, default=1e-6,
                   help="Tikhonov regularisation of the score-matching system")
    f.add_argument("--support-floor", type=support_floor, default=DEFAULT_SUPPORT_FLOOR,
                   help="modes with less than this fraction of the largest modal power are "
                        "completed with noise for the fit and projected out of the samples "
                        "(dealiased or band-limited data); 'none' turns this off")
    f.add_argument("--dequantise", type=positive_float, default=None, metavar="SIGMA",
                   help="add Gaussian noise N(0, SIGMA^2) to the data before fitting (discrete "
                        "data such as +-1 spins have no density; a tenth of the gap between "
                        "levels works); recorded in the model")
    f.add_argument("--gaussianise", action="store_true",
                   help="fit the model to the data's one-point law mapped onto a standard "
                        "normal (Gaussian anamorphosis) and map the samples back: skewed or "
                        "heavy-tailed fields such as log-normal maps")
    f.add_argument("--seed", type=int_in(0), default=0,
                   help="seed of the dequantisation noise")
    f.add_argument("--refine-generated", action="store_true",
                   help="phi4: then refine the three coarsest conditionals by maximum likelihood "
                        "on coarse fields the model generates (per-scale detail stds within 1 "
                        "%% instead of 2-3 %% at 64x64, for a fit about 5 times longer)")
    f.add_argument("--out", required=True, help="model file (.npz)")
    add_output_flags(f)

    s = sub.add_parser("sample", help="sample a fitted model coarse to fine")
    s.add_argument("model", help="model file made by 'explorer fit'")
    s.add_argument("--samples", type=positive_int, default=16, help="number of fields")
    s.add_argument("--steps", type=int_in(1, 10_000_000), default=wf.DEFAULT_STEPS,
                   help="MALA steps per scale; the coarse field runs 4^J times as many (at most "
                        "16 times): it has few variables and the slowest modes")
    s.add_argument("--burn-in", type=int_in(1, 10_000_000), default=None,
                   help="burn-in steps per scale (same multipliers); None: --steps")
    s.add_argument("--sampler", choices=["mala", "ula"], default="mala",
                   help="Metropolis-adjusted (mala) or unadjusted (ula) Langevin")
    s.add_argument("--seed", type=int_in(0), default=0, help="random seed")
    s.add_argument("--size", type=int_in(4, 4096), default=None,
                   help="sample a lattice of this side, 2^k times the fitted one (learn small, "
                        "generate large: the fitted conditionals reused, the extra coarse "
                        "levels extrapolated from the coarsest; default: the fitted side)")
    s.add_argument("--allow-unbounded", action="store_true",
                   help="sample even a factor the fit flagged as unbounded below (experiments "
                        "only; a runaway is still stopped)")
    s.add_argument("--out", required=True, help="output .npz file")
    add_output_flags(s)

    e = sub.add_parser("energy", help="energies of fields under a fitted model")
    e.add_argument("model", help="model file made by 'explorer fit'")
    e.add_argument("fields", help="field file")
    add_key(e)
    add_output_flags(e, quiet=False)

    r = sub.add_parser("rgflow", help="RG flow of the depth-0 couplings under coarse-graining; "
                                      "with several files (e.g. one per beta) the distances "
                                      "between successive couplings side by side")
    r.add_argument("data", nargs="+", help="field file(s)")
    add_key(r)
    r.add_argument("--family", choices=["phi4", "gaussian"], default="phi4",
                   help="depth-0 ansatz fitted at every scale")
    r.add_argument("--radius", type=int_in(1, 8), default=1,
                   help="coupling shifts within this radius (1..8; gaussian family)")
    r.add_argument("--plot", metavar="DIR", help="also write the flow figures as PNG into DIR")
    add_output_flags(r, quiet=False)

    c = sub.add_parser("compare", help="the comparison report of samples against data (the "
                                       "app's Compare): distances, kurtosis per scale, scale "
                                       "coupling, Hessian spectra, mixing, scattering spectra")
    c.add_argument("data", help="the data's field file")
    c.add_argument("samples", help="the samples' field file (made by 'explorer sample')")
    add_key(c, "the data file")
    c.add_argument("--observables", nargs="+", choices=["phi4", "turbulence"], default=[],
                   help="domain observables to compare (phi4: the Binder cumulant); by default "
                        "only those the data's meta names")
    c.add_argument("--model", default=None,
                   help="the fitted model (.npz) the samples came from: its factors' Hessian "
                        "spectra, its depth and wavelet")
    c.add_argument("--depth", type=int_in(0, 12), default=None,
                   help="wavelet scales for std ratios and coupling (default: the model's, "
                        "else to a 4x4 field)")
    c.add_argument("--wavelet", default=None, help="default: the model's, else db4")
    c.add_argument("--plot", metavar="DIR", help="also write the figures as PNG into DIR "
                   "(with gallery.png: data and sample fields side by side)")
    add_output_flags(c, quiet=False)

    d = sub.add_parser("diagnose", help="Hessian spectra per scale, learned potentials and "
                                        "kernels of a fitted model at data fields")
    d.add_argument("model", help="model file made by 'explorer fit'")
    d.add_argument("data", help="field file")
    add_key(d)
    d.add_argument("--fields", type=positive_int, default=4,
                   help="number of data fields at which Hessians are taken")
    d.add_argument("--method", choices=["auto", "dense", "slq"], default="auto",
                   help="eigenvalues: dense (exact), slq (stochastic Lanczos quadrature "
                        "estimate), auto (dense up to 1024 variables)")
    d.add_argument("--plot", metavar="DIR", help="also write the figures as PNG into DIR")
    add_output_flags(d, quiet=False)

    _add_scattering(sub)
    add_sweep_parsers(sub)

    a = sub.add_parser("assets", help="rebuild the default data in assets/")
    a.add_argument("--out", default=str(ASSETS_DIR), help="output folder (default: assets/)")
    a.add_argument("--only", nargs="+", metavar="NAME", help="build only these files")
    add_output_flags(a)
    return parser
