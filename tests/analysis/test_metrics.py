"""Tests for mfpde.analysis.metrics, mfpde.analysis.rates and mfpde.model.moments: Fourier moments, H^-s, Wasserstein on the torus, rate fits.

Every test asserts numbers that can fail.  Known answers used:
* circle: point masses (also across the seam 0 = 2 pi), a rotated uniform
  lattice, a point mass against the uniform density (W1 = pi/2, W2 = pi/sqrt 3);
* torus d = 2: a well-separated point set translated by v (W1 = W2 = |v|, since
  any other matching costs more than |v| per unit of mass);
* i.i.d. uniform samples on the circle: E W1 ~ c N^-1/2.
"""

import numpy as np
import ot
import pytest

import mfpde.analysis.metrics as metrics
import mfpde.analysis.rates as rates
import mfpde.model.moments as moments

TWO_PI = 2 * np.pi


# --------------------------------------------------------------------- moments

def test_moment_freqs_half_space():
    for d, wmax in [(1, 3), (2, 2), (3, 1)]:
        f = moments.moment_freqs(d, wmax)
        assert f.shape == (((2 * wmax + 1) ** d - 1) // 2, d)
        full = {tuple(w) for w in f} | {tuple(-w) for w in f}
        assert len(full) == 2 * len(f)                      # no +-w pair twice
        assert full == {w for w in np.ndindex(*(2 * wmax + 1,) * d)
                        for w in [tuple(np.array(w) - wmax)] if any(w)}
    assert np.array_equal(moments.moment_freqs(2, 2), moments.moment_freqs(2, 2))


def test_moments_of_uniform_grid_vanish_and_point_mass():
    g = np.arange(16) * TWO_PI / 16
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    f = moments.moment_freqs(2, 3)
    assert np.max(np.abs(moments.empirical_moments(pts, f))) < 1e-12
    th0 = np.array([0.7, 5.9])
    m = moments.empirical_moments(th0[None, :], f)
    assert np.allclose(m, np.exp(1j * f @ th0), atol=1e-14)
    # weights and chunking (large N) agree with the direct sum
    rng = np.random.default_rng(3)
    th = rng.uniform(0, TWO_PI, (300_000, 2))
    a = rng.random(300_000)
    direct = (a[:, None] * np.exp(1j * th @ f.T.astype(float))).sum(0)
    assert np.allclose(moments.empirical_moments(th, f, weights=a), direct, rtol=1e-10, atol=1e-9)


def test_negative_sobolev():
    f = moments.moment_freqs(2, 2)
    rng = np.random.default_rng(0)
    m1 = moments.empirical_moments(rng.uniform(0, TWO_PI, (100, 2)), f)
    m2 = moments.empirical_moments(rng.uniform(0, TWO_PI, (100, 2)), f)
    assert metrics.negative_sobolev(m1, m1, f) == 0.0
    assert metrics.negative_sobolev(m1, m2, f) == metrics.negative_sobolev(m2, m1, f) > 0.01
    # closed form, d = 1, wmax = 1: delta_0 - delta_pi has m_{+-1} = 2, so
    # ||.||^2 = (2 pi)^-1 * 2 * (1 + 1)^-1 * |2|^2 = 2 / pi
    f1 = moments.moment_freqs(1, 1)
    v = metrics.negative_sobolev(moments.empirical_moments([[0.0]], f1), moments.empirical_moments([[np.pi]], f1), f1)
    assert v == pytest.approx(np.sqrt(2 / np.pi), rel=1e-12)
    # leading axes broadcast (e.g. time)
    both = metrics.negative_sobolev(np.stack([m1, m2]), m1, f)
    assert both.shape == (2,) and both[0] == 0 and both[1] > 0


# -------------------------------------------------------------- W on the circle

def test_circle_point_masses_and_seam():
    # across the seam: 0.1 and 2 pi - 0.2 are 0.3 apart
    assert metrics.wasserstein_torus([[0.1]], [[TWO_PI - 0.2]], [1.0]) == pytest.approx(0.3, abs=1e-12)
    assert metrics.wasserstein_circle_discrete([0.1], [1], [TWO_PI - 0.2], [1], p=2) == pytest.approx(0.3, abs=1e-5)
    # {0, pi} -> {pi/2, 3pi/2}: every unit moves pi/2
    v = metrics.wasserstein_circle_discrete([0, np.pi], [1, 1], [np.pi / 2, 3 * np.pi / 2], [1, 1])
    assert v == pytest.approx(np.pi / 2, abs=1e-12)
    # uniform lattice of N points rotated by s < half a spacing: W1 = s
    N = 64
    x = (np.arange(N) + 0.5) * TWO_PI / N
    s = 0.3 * TWO_PI / N
    assert metrics.wasserstein_circle_discrete(x, np.ones(N), x - s, np.ones(N)) == pytest.approx(s, rel=1e-10)
    # W1 of the CDF formula and W2 of POT's circle solver equal the exact EMD
    rng = np.random.default_rng(1)
    x, y, b = rng.uniform(0, TWO_PI, 40), rng.uniform(0, TWO_PI, 60), rng.random(60)
    for p in (1, 2):
        D = np.abs((x[:, None] - y[None, :] + np.pi) % TWO_PI - np.pi) ** p
        ref = ot.emd2(np.full(40, 1 / 40), b / b.sum(), D) ** (1 / p)
        assert metrics.wasserstein_circle_discrete(x, np.ones(40), y, b, p=p) == pytest.approx(ref, rel=1e-4)


def uniform_atoms(m: int):
    """The uniform density on the circle as m midpoint atoms (W1 to it <= pi / (2 m))."""
    return ((np.arange(m) + 0.5) * TWO_PI / m)[:, None], np.full(m, 1.0 / m)


def test_circle_point_mass_against_uniform_density():
    pts, mass = uniform_atoms(4096)
    # W1(delta, uniform) = mean distance = pi/2; W2 = sqrt(mean squared distance) = pi/sqrt(3)
    assert metrics.wasserstein_torus([[1.234]], pts, mass) == pytest.approx(np.pi / 2, abs=1e-6)
    assert metrics.wasserstein_torus([[1.234]], pts, mass, p=2) == pytest.approx(np.pi / np.sqrt(3), abs=1e-6)


def test_circle_w1_rate_iid_uniform():
    """i.i.d. uniform samples vs the uniform density: W1 ~ c N^-1/2 on the circle."""
    Ns = 2 ** np.arange(6, 15)
    S = 12
    rng = np.random.default_rng(2024)
    pts, mass = uniform_atoms(1 << 16)
    err = np.array([[metrics.wasserstein_torus(rng.uniform(0, TWO_PI, (n, 1)), pts, mass) for _ in range(S)]
                    for n in Ns])
    fit = rates.fit_rate(Ns, err, n_boot=2000, seed=1)
    # measured slope -0.4965, CI [-0.524, -0.468] (bootstrap sd 0.014): the CI must hold -1/2 and be narrow
    lo, hi = fit["ci"]
    assert lo < -0.5 < hi and lo < fit["slope"] < hi and 0 < hi - lo < 0.1, fit
    # The constant: sqrt(N) W1 -> 2 pi int_0^1 |B(s) - median B| ds in law (B a Brownian bridge: the CDF
    # formula with the optimal shift); its mean C = 1.4287 +- 0.003 (Monte Carlo, 20000 bridges of 2048
    # steps), per-sample CV 0.32.  Mean of sqrt(N) W1 over the 108 runs (measured 1.45): sd ~0.044, bound
    # 4 sd; the fitted prefactor (measured 1.416, CI of exp(intercept) [1.15, 1.73]) holds C too.
    C = 1.4287
    assert abs((err * np.sqrt(Ns)[:, None]).mean() - C) < 0.18, (err * np.sqrt(Ns)[:, None]).mean(axis=1)
    assert np.exp(fit["intercept_ci"][0]) < C < np.exp(fit["intercept_ci"][1]), fit
    assert abs(fit["prefactor"] / C - 1) < 0.25, fit


# --------------------------------------------------------------- W on T^2

def _separated_lattice():
    g = np.arange(4) * np.pi / 2 + 0.05          # spacing pi/2 ~ 1.57, next to the seam
    return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


@pytest.mark.parametrize("p", [1, 2])
def test_torus_translation_exact(p):
    pts = _separated_lattice() + np.random.default_rng(5).uniform(-0.05, 0.05, (16, 2))
    v = np.array([-0.3, 0.4])                     # |v| = 0.5 < (min spacing)/2; wraps across 0
    val, info = metrics.wasserstein_torus(pts, np.mod(pts + v, TWO_PI), np.ones(16), p=p, return_info=True)
    assert info["method"] == "emd"
    assert val == pytest.approx(0.5, rel=1e-9)


def test_torus_grid_reduction_exact_on_nodes():
    """Points on the grid nodes and a shift by whole cells: the reduction is exact."""
    ng = 32
    h = TWO_PI / ng
    idx = np.stack(np.meshgrid(np.arange(0, 32, 8), np.arange(3, 32, 8), indexing="ij"), -1).reshape(-1, 2)
    pts = (idx + 0.5) * h                         # cell centres (k + 1/2) h of the reduction grid
    v = np.array([2 * h, -3 * h])                 # |v| = sqrt(13) h < 4 h = half the spacing
    for p in (1, 2):
        val, info = metrics.wasserstein_torus(pts, pts + v, np.ones(16), p=p, n_grid=ng, return_info=True)
        assert info["method"] == "grid" and info["n_grid"] == ng
        assert val == pytest.approx(np.sqrt(13) * h, rel=1e-9)
        assert info["bias_bound"] < 1e-12


def test_torus_grid_reduction_close_to_exact_emd():
    """The large-N reduction against exact EMD on the same data (N = 1500, M = 64^2)."""
    rng = np.random.default_rng(7)
    th = rng.uniform(0, TWO_PI, (1500, 2))
    g = (np.arange(64) + 0.5) * TWO_PI / 64
    P = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    m = 1 + 0.5 * np.cos(P[:, 0]) * np.sin(P[:, 1])
    exact, i1 = metrics.wasserstein_torus(th, P, m, return_info=True)
    approx, i2 = metrics.wasserstein_torus(th, P, m, n_grid=128, return_info=True)
    assert i1["method"] == "emd" and i2["method"] == "grid"
    assert abs(approx - exact) <= i2["bias_bound"]
    assert abs(approx - exact) < 0.03 * exact, (approx, exact)
    # the automatic choice goes to the grid path above max_pairs
    auto, i3 = metrics.wasserstein_torus(th, P, m, max_pairs=1_000_000, return_info=True)
    assert i3["method"] == "grid" and abs(auto - exact) <= i3["bias_bound"]


def test_w1_normalizes_masses_that_do_not_average_one():
    """The tests above use masses averaging 1 (np.ones, 1 + 0.5 cos sin on a symmetric grid), where
    dividing by the count equals dividing by the sum.  Here the masses sum to 4 and 17.5 and are unequal."""
    # circle: mu_N = 3/4 at 0.1, 1/4 at 2.5; nu = 3/4 at 0.1, 1/4 at 2.0: only 1/4 moves, by 0.5
    th = np.array([[0.1], [0.1], [0.1], [2.5]])
    assert metrics.wasserstein_torus(th, [[0.1], [2.0]], [3.0, 1.0]) == pytest.approx(0.125, abs=1e-12)
    # T^2, exact EMD: against POT with the normalized weights
    rng = np.random.default_rng(3)
    th, P = rng.uniform(0, TWO_PI, (5, 2)), rng.uniform(0, TWO_PI, (4, 2))
    m = np.array([1.0, 2.5, 6.0, 8.0])
    for p in (1, 2):
        D = np.linalg.norm(np.abs((th[:, None] - P[None] + np.pi) % TWO_PI - np.pi), axis=2) ** p
        ref = ot.emd2(np.full(5, 0.2), m / m.sum(), D) ** (1 / p)
        val, info = metrics.wasserstein_torus(th, P, m, p=p, return_info=True)
        assert info["method"] == "emd" and val == pytest.approx(ref, rel=1e-10), (p, val, ref)
    # T^2, grid reduction: points at cell centres, so binning is exact; masses 3 and 1 at two centres,
    # the particles all at a third: W1 = (3 |a - c| + |b - c|) / 4
    ng = 16
    h = TWO_PI / ng
    a, b, c = (np.array([2, 3]) + 0.5) * h, (np.array([9, 3]) + 0.5) * h, (np.array([2, 7]) + 0.5) * h
    val, info = metrics.wasserstein_torus(np.tile(c, (8, 1)), np.stack([a, b]), [3.0, 1.0], n_grid=ng,
                                          return_info=True)
    assert info["method"] == "grid" and info["bias_bound"] < 1e-12
    assert val == pytest.approx((3 * np.linalg.norm(a - c) + np.linalg.norm(b - c)) / 4, rel=1e-9)


# ------------------------------------------------------------------ fits

def test_fit_rate_recovers_known_slope():
    rng = np.random.default_rng(11)
    Ns = 2.0 ** np.arange(6, 15)
    err = 3.0 * Ns[:, None] ** -0.5 * (1 + 0.1 * rng.standard_normal((Ns.size, 20)))
    fit = rates.fit_rate(Ns, err)
    assert abs(fit["slope"] + 0.5) < 0.02
    assert fit["ci"][0] < -0.5 < fit["ci"][1]
    assert fit["prefactor"] == pytest.approx(3.0, rel=0.1)
    exact = rates.fit_rate(Ns, 2.0 * Ns[:, None] ** -0.75 * np.ones((1, 4)))
    assert exact["slope"] == pytest.approx(-0.75, abs=1e-12)
    assert exact["ci"][1] - exact["ci"][0] < 1e-12 and exact["r2"] == pytest.approx(1.0)


def test_mean_ci():
    m, lo, hi = rates.mean_ci(np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]]))
    half = 4.302652729911275 / np.sqrt(3)          # t_{0.975, 2} * s / sqrt(3), s = 1
    assert np.allclose(m, [2, 4]) and np.allclose(hi - m, [half, 0]) and np.allclose(m - lo, [half, 0])
    # NaN entries (a metric not computed for a seed) are left out, not propagated
    m, lo, hi = rates.mean_ci(np.array([[1.0, np.nan, 2.0, 3.0], [5.0, np.nan, np.nan, np.nan]]))
    assert np.allclose(m, [2, 5]) and np.isclose(hi[0] - m[0], half) and np.isnan(lo[1]) and np.isnan(hi[1])


def test_theory_slope():
    for name in ("observable_error", "risk_error", "moment_error", "sobolev"):
        for d in (1, 2, 3, 5):
            assert rates.theory_slope(name, d) == (-0.5, "N^-1/2")
    assert rates.theory_slope("wasserstein", 1) == (-0.5, "N^-1/2")
    assert rates.theory_slope("wasserstein", 2) == (-0.5, "(log N / N)^1/2")
    # over a finite range of N the slope of (log N / N)^1/2 is shallower: least squares by hand
    ns = 2 ** np.arange(6, 15)
    x = np.log(ns)
    y = 0.5 * (np.log(x) - x)
    by_hand = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    assert rates.theory_slope("wasserstein", 2, ns) == (pytest.approx(by_hand, abs=1e-14), "(log N / N)^1/2")
    assert -0.44 < by_hand < -0.42
    assert rates.theory_slope("wasserstein", 3)[0] == pytest.approx(-1 / 3)
    assert rates.theory_slope("wasserstein", 4) == (-0.25, "N^-1/4")
    with pytest.raises(ValueError):
        rates.theory_slope("nonsense", 2)
