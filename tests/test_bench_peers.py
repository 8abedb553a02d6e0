"""The benchmark's own peers are right: the spectral solver and the characteristics references
(benchmarks/spectral_peer.py, benchmarks/_references.py) against closed forms and each other."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _references import box_gauss_legendre, characteristics, trapezoid_rule  # noqa: E402
from spectral_peer import GIBBS_CASE, SpectralMeanField, box_fourier, gibbs_fixed_point  # noqa: E402

from mfpde.config.case import case_from_dict, default_case  # noqa: E402
from mfpde.model.initial import initial_density  # noqa: E402


def test_gibbs_fixed_point_closed_form():
    # issue 7: m = 0.3502911822 for beta = 5; spectral d = 1, tau = 0.1 reaches it (measured 4.9e-10)
    m = gibbs_fixed_point()
    assert abs(m - 0.3502911822) < 1e-10
    g = case_from_dict(GIBBS_CASE)
    s = SpectralMeanField(g.expert.bind(g.data.x), g.data.y, g.data.w, 1.0, 0.1, 1, 16, lambda th: np.ones(len(th)))
    r = s.run(60.0, 0.1)
    assert abs(r["F"][0] - m) < 3e-9
    assert abs(r["F"][1]) < 1e-12
    assert abs(r["mass"] - 1) < 1e-13


def test_spectral_converges_to_characteristics():
    # default case to t = 1: measured |spectral - characteristics| 5.5e-7 at M = 8, 3.5e-11 at M = 20
    c = default_case()
    ex, y, w, rho0 = c.expert.bind(c.data.x), c.data.y, c.data.w, initial_density(c)
    F_ref = characteristics(ex, y, w, 1.0, *trapezoid_rule(rho0, 2, 32), 1.0, 0.02)
    errs = [np.abs(SpectralMeanField(ex, y, w, 1.0, 0.0, 2, M, rho0).run(1.0, 0.25)["F"] - F_ref).max() for M in (8, 20)]
    assert errs[1] < 2e-10 and errs[0] / errs[1] > 1e3


def test_box_start_is_exact_and_gauss_legendre_agrees():
    # the truncated Fourier series of the box has mass 1 and gives the exact F at t = 0 (phi is band-limited)
    c = default_case()
    ex, y, w = c.expert.bind(c.data.x), c.data.y, c.data.w
    lower, upper = [-0.6, -0.6], [0.6, 0.6]
    s = SpectralMeanField(ex, y, w, 1.0, 0.0, 2, 32, box_fourier(lower, upper, 32))
    pts, wts = box_gauss_legendre(lower, upper, 16)
    assert abs(wts.sum() - 1) < 1e-14
    assert np.abs(s.outputs(s.density()) - ex(pts)[0] @ wts).max() < 1e-13
    F = s.run(1.0, 1.0)["F"]
    F_ref = characteristics(ex, y, w, 1.0, pts, wts, 1.0, 0.02)
    assert np.abs(F - F_ref).max() < 1e-7  # measured 1.6e-8 at M = 32 (t = 1)
