"""Fourier-accelerated MALA: the change of variables is exact and removes the Gaussian part of
critical slowing down."""

import numpy as np
import pytest

from explorer.core.features import make_features
from explorer.core.preconditioning import (FourierPreconditioner, iter_fourier_mala,
                                           quadratic_curvature)
from explorer.core.progress import run

L = 16


def free_field(mass2: float):
    """U = ½ xᵀ(−Δ + m²)x on L x L: (energy, grad, curvature spectrum on the rfft2 grid)."""
    k = 2 * np.pi * np.fft.fftfreq(L)
    kr = 2 * np.pi * np.fft.rfftfreq(L)
    q = (4 - 2 * np.cos(k)[:, None] - 2 * np.cos(kr)[None, :]) + mass2

    def grad(x):
        lap = (np.roll(x, 1, -1) + np.roll(x, -1, -1) + np.roll(x, 1, -2) + np.roll(x, -1, -2)
               - 4 * x)
        return -lap + mass2 * x

    def energy(x):
        return 0.5 * np.sum(x * grad(x), axis=(-2, -1))

    return energy, grad, q


def test_the_preconditioner_is_symmetric_and_inverts():
    _, _, q = free_field(0.1)
    P = FourierPreconditioner(q)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, L, L))
    np.testing.assert_allclose(P.inverse(P.apply(a)), a, atol=1e-12)
    # S symmetric: <a, S b> = <S a, b>
    assert np.sum(a * P.apply(b)) == pytest.approx(np.sum(P.apply(a) * b), rel=1e-12)
    # S² is the inverse of the curvature: S² (−Δ + m²) a = a
    _, grad, _ = free_field(0.1)
    np.testing.assert_allclose(P.apply(P.apply(grad(a))), a, atol=1e-10)


def test_flat_and_negative_curvatures_are_floored():
    q = np.ones((8, 5))
    q[0, 0] = -3.0
    P = FourierPreconditioner(q, floor=1e-2)
    assert P.floored == 1 and P.curvature[0, 0] == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="positive"):
        FourierPreconditioner(-np.ones((8, 5)))


def test_fourier_mala_samples_the_free_field_exactly_and_fast():
    # m² = 0.01: condition number (8 + m²) / m² ~ 800; plain MALA crawls in the soft modes,
    # the exact preconditioner makes every mode a unit Gaussian in y
    energy, grad, q = free_field(0.01)
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((64, L, L)) * 0.1

    def mean_mode(x):
        return x.mean(axis=(-2, -1))

    res = run(iter_fourier_mala(energy, grad, x0, q, 400, burn_in=100, observe=mean_mode, seed=2))
    # the zero mode has variance 1 / (m² L²) = 1 / 2.56; over 64 chains x 300 steps
    m = res.observable_trace[res.trace_steps > 100]
    var = np.mean(m**2)
    assert var == pytest.approx(1 / (0.01 * L * L), rel=0.15), var
    assert res.acceptance > 0.5
    assert res.x.shape == x0.shape


def test_the_curvature_of_a_phi4_model_adds_the_potential_mass():
    F = make_features("phi4", level="depth0", L=8)
    theta = np.zeros(F.n_features)
    theta[F.names.index("phi^2/2")] = -1.0      # a double well: negative quadratic mass ...
    theta[F.names.index("phi^4")] = 1.0         # ... and phi^4 with mean curvature 12 <x²>
    x = np.ones((2, 8, 8))
    q = quadratic_curvature(F, theta, 8, x)
    np.testing.assert_allclose(q, -1.0 + 12.0, atol=1e-12)
