"""Rules for rho_0 (mfpde.numerics.quadrature): each converges at its rate on integrals known in closed form."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import i0

from mfpde.config.case import InitSpec
from mfpde.errors import CaseError
from mfpde.model.initial import InitialDensity
from mfpde.numerics.quadrature import coarser_rule, gauss_legendre_box, make_rule, resolve_rule


def vonmises(d, mean=1.0, kappa=1.5):
    return InitialDensity(d, InitSpec("vonmises", [mean] * d, [kappa] * d))


def smooth_mean(d, mean=1.0, kappa=1.5):
    """g = prod_i exp(cos(theta_i - 0.3) / 2) and its exact mean under the von Mises product."""
    g = lambda th: np.prod(np.exp(0.5 * np.cos(th - 0.3)), axis=1)  # noqa: E731
    exact = (i0(abs(kappa * np.exp(1j * mean) + 0.5 * np.exp(0.3j))) / i0(kappa)) ** d
    return g, exact


def error(rule, g, exact):
    assert abs(rule.weights.sum() - 1) < 1e-14 and np.all(rule.weights >= 0)
    return abs(g(rule.points) @ rule.weights - exact)


def test_tensor_trapezoid_converges_spectrally():
    """d = 2, von Mises weights: measured 4.4e-5 (n = 6), 3.7e-9 (12), 4e-16 (24)."""
    rho, (g, exact) = vonmises(2), smooth_mean(2)
    errs = [error(make_rule("tensor", n * n, 2, rho), g, exact) for n in (6, 12, 24)]
    assert errs[0] < 2e-4 and errs[1] < 2e-8 and errs[2] < 1e-14, errs


def test_lattice_converges_faster_than_monte_carlo():
    """d = 4: measured 1.8e-5 (M = 4096), 2.1e-9 (16384), 1.4e-10 (65536)."""
    rho, (g, exact) = vonmises(4), smooth_mean(4)
    errs = [error(make_rule("lattice", M, 4, rho), g, exact) for M in (4096, 16384, 65536)]
    assert errs[0] < 1e-4 and errs[1] < 1e-7 and errs[2] < 1e-8, errs


def test_sobol_converges():
    """d = 4, uniform start (equal weights): scrambled Sobol error falls at least ~M^-1."""
    rho = InitialDensity(4, InitSpec())
    g = lambda th: np.prod(1 + 0.5 * np.cos(th), axis=1) ** 2  # noqa: E731  mean (1 + 1/8)^4
    exact = 1.125**4
    errs = [error(make_rule("sobol", M, 4, rho), g, exact) for M in (2**8, 2**12, 2**16)]
    assert errs[2] < errs[0] / 200 and errs[2] < 1e-4, errs


def test_gauss_legendre_on_a_box_start():
    """Box start: the tensor rule is Gauss-Legendre on the box, spectral for the box's Fourier moments."""
    lower, upper = np.array([-0.6, 0.2]), np.array([0.6, 1.5])
    box = SimpleNamespace(kind="box", lower=lower.tolist(), upper=upper.tolist())
    w = np.array([2, -1])
    exact = np.prod((np.exp(1j * w * upper) - np.exp(1j * w * lower)) / (1j * w * (upper - lower)))
    errs = []
    for n in (3, 6, 10):
        rule = make_rule("tensor", n * n, 2, None, box)
        assert rule.kind == "tensor-gauss-legendre"
        assert np.all((np.mod(rule.points - lower, 2 * np.pi) <= upper - lower))
        errs.append(abs(rule.weights @ np.exp(1j * rule.points @ w) - exact))
    assert errs[1] < 1e-6 and errs[2] < 1e-13, errs
    # GL is exact for polynomials of degree 2n - 1 per axis
    pts, wts = gauss_legendre_box([0.0], [2.0], 4)
    assert abs(wts @ pts[:, 0] ** 7 - 2.0**7 / 8) < 1e-13
    for kind in ("lattice", "sobol"):  # large-d rules put their points in the box too
        rule = make_rule(kind, 4096, 2, None, box)
        assert abs(rule.weights @ np.exp(1j * rule.points @ w) - exact) < 1e-3


def test_coarser_rule_and_choices():
    rho = InitialDensity(3, InitSpec())
    r = make_rule("tensor", 10**3, 3, rho)
    c = coarser_rule(r, rho)
    assert r.size == 10 and c.size == 8 and len(c.weights) == 512
    assert len(coarser_rule(make_rule("lattice", 1000, 3, rho), rho).weights) == 500
    assert resolve_rule("auto", 4) == "tensor" and resolve_rule("auto", 5) == "lattice"
    with pytest.raises(CaseError, match="limit.rule"):
        make_rule("midpoint", 100, 2, rho)
