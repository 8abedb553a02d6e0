r"""Graded torus meshes: small cells where the support of :math:`\rho_t` goes during :math:`[0, t_\mathrm{end}]`.

Per axis ``a``, the ``n`` vertices equidistribute the periodic mesh density

.. math::

    M_a(x) = 1 + (g - 1)\, s_a(x), \qquad
    x_i = \Phi_a^{-1}\!\big(i\, \Phi_a(2\pi) / n\big), \quad \Phi_a(x) = \int_{x_0}^{x} M_a,

with ``g`` the grading (cells ``g`` times smaller inside than far outside) and
``s_a`` a smoothed indicator of the interval swept by the support on axis ``a``
(transition over ``TRANSITION`` radians, so neighbouring cells differ in size by
a bounded ratio).  The swept interval is predicted by the method of
characteristics (``tau = 0``): tensor Gauss-Legendre points of the initial
support carry the mass (weights ``rho0 x`` Gauss weights) and points on the
support's boundary are carried as tracers; the unwrapped per-axis range of all
points over the saved times, widened by ``MARGIN``, is the swept interval.
With ``tau > 0`` the prediction ignores diffusion (widen the margin by
grading less).
"""

from __future__ import annotations

import numpy as np

from mfpde.model.velocity import velocity
from mfpde.model.initial import InitialDensity
from mfpde.constants import TWO_PI

MARGIN = 0.15  # radians added on each side of the predicted swept interval
TRANSITION = 0.3  # radians over which the mesh density goes from fine to coarse


def initial_support(rho0: InitialDensity) -> list[tuple[float, float]]:
    """Per-axis interval (unwrapped) outside which ``rho0`` is negligible; the whole circle if none."""
    s = rho0.spec
    if s.kind == "box":
        return list(zip(s.lower, s.upper))
    if s.kind == "normal":
        return [(m - 5.0 * sd, m + 5.0 * sd) if sd < 0.5 else (0.0, TWO_PI) for m, sd in zip(s.mean, s.std)]
    if s.kind == "vonmises":  # exp(k (cos - 1)) < e^-12 beyond |x| = acos(1 - 12 / k)
        return [(m - np.arccos(1.0 - 12.0 / k), m + np.arccos(1.0 - 12.0 / k)) if k > 6.0 else (0.0, TWO_PI)
                for m, k in zip(s.mean, s.kappa)]
    return [(0.0, TWO_PI)] * rho0.d


def swept_intervals(expert_at, y, w, rho0: InitialDensity, lr: float, t_end: float,
                    points: int = 12, dt: float = 0.05) -> list[tuple[float, float]]:
    """Per-axis unwrapped interval that the support of ``rho_t`` covers for ``t`` in ``[0, t_end]``.

    RK4 steps of at most ``dt`` of the mean-field flow; ``points`` Gauss-Legendre points per axis.
    """
    d = rho0.d
    support = np.array(initial_support(rho0))  # (d, 2)
    x, gw = np.polynomial.legendre.leggauss(points)
    u = 0.5 * (x + 1.0)
    grid = np.stack(np.meshgrid(*([u] * d), indexing="ij"), -1).reshape(-1, d)
    gw = np.prod(np.stack(np.meshgrid(*([gw] * d), indexing="ij"), -1).reshape(-1, d), axis=1)
    # tracers: the faces of the support box, on a grid of `points` per axis including the corners
    edge = np.linspace(0.0, 1.0, points)
    full = np.stack(np.meshgrid(*([edge] * d), indexing="ij"), -1).reshape(-1, d)
    tracers = full[np.any((full == 0.0) | (full == 1.0), axis=1)]
    lo, width = support[:, 0], support[:, 1] - support[:, 0]
    theta = lo + np.concatenate([grid, tracers]) * width
    weights = np.concatenate([rho0(theta[: len(grid)]) * gw, np.zeros(len(tracers))])
    weights /= weights.sum()

    def rhs(th):
        return velocity(th, weights, expert_at, y, w, lr)[0]

    lo_seen, hi_seen = theta.min(axis=0), theta.max(axis=0)
    steps = max(1, int(np.ceil(t_end / dt)))
    h = t_end / steps
    for _ in range(steps):
        k1 = rhs(theta)
        k2 = rhs(theta + 0.5 * h * k1)
        k3 = rhs(theta + 0.5 * h * k2)
        k4 = rhs(theta + h * k3)
        theta = theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        lo_seen, hi_seen = np.minimum(lo_seen, theta.min(axis=0)), np.maximum(hi_seen, theta.max(axis=0))
    return [(float(a - MARGIN), float(b + MARGIN)) for a, b in zip(lo_seen, hi_seen)]


def graded_axis(n: int, interval: tuple[float, float], grading: float, samples: int = 20000) -> np.ndarray:
    """``n`` vertex coordinates in ``[0, 2 pi)``, ``grading`` times denser inside ``interval`` (unwrapped)."""
    a, b = interval
    if grading == 1.0 or b - a >= TWO_PI - 2 * TRANSITION:
        return TWO_PI * np.arange(n) / n
    x = np.linspace(0.0, TWO_PI, samples + 1)
    # periodic signed distance outside the interval: 0 inside, growing away from it
    centre, half = 0.5 * (a + b), 0.5 * (b - a)
    dist = np.maximum(np.abs(np.mod(x - centre + np.pi, TWO_PI) - np.pi) - half, 0.0)
    s = 0.5 * (1.0 + np.cos(np.pi * np.minimum(dist / TRANSITION, 1.0)))  # 1 inside, 0 beyond the transition
    density = 1.0 + (grading - 1.0) * s
    Phi = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    # start the grid at the interval's lower end (mod 2 pi), so the box edges are vertices when it is the support
    start = np.mod(a, TWO_PI)
    Phi_start = np.interp(start, x, Phi)
    targets = np.mod(Phi_start + Phi[-1] * np.arange(n) / n, Phi[-1])
    coords = np.interp(targets, Phi, x)
    return np.sort(np.mod(coords, TWO_PI))


def graded_coordinates(n: int, intervals: list[tuple[float, float]], grading: float) -> list[np.ndarray]:
    """One :func:`graded_axis` per axis (``mfpde.pde.torus.torus_mesh(..., coordinates=...)``)."""
    return [graded_axis(n, iv, grading) for iv in intervals]


def aligned_axis(n: int, interval: tuple[float, float]) -> np.ndarray:
    """``n`` vertex coordinates in ``[0, 2 pi)`` with both ends of ``interval`` among them, spacing
    uniform inside and outside it (as close to ``2 pi / n`` as the split allows)."""
    a, b = interval
    if b - a >= TWO_PI * (1.0 - 1e-12):  # the whole circle: nothing to align
        return np.sort(np.mod(a + TWO_PI * np.arange(n) / n, TWO_PI))
    inside = min(n - 1, max(1, round(n * (b - a) / TWO_PI)))
    coords = np.concatenate([np.linspace(a, b, inside + 1), np.linspace(b, a + TWO_PI, n - inside + 1)[1:-1]])
    return np.sort(np.mod(coords, TWO_PI))


def case_coordinates(case) -> list[np.ndarray] | None:
    """The mesh axes of a case, None for the uniform mesh.

    ``[pde] grading > 1``: graded axes.  A Lagrangian mesh (``[pde] mesh_motion``)
    of a box start: the box's edges are mesh lines, which the vertices then carry
    along as the fronts move (:mod:`mfpde.pde.moving`).
    """
    from mfpde.model.initial import initial_density

    if case.pde.mesh_motion == "lagrangian" and case.init.kind == "box":
        return [aligned_axis(case.pde.n, iv) for iv in zip(case.init.lower, case.init.upper)]
    if case.pde.grading == 1.0:
        return None
    expert_at = case.expert.bind(case.data.x)
    intervals = swept_intervals(expert_at, case.data.y, case.data.w, initial_density(case), case.dynamics.lr,
                                case.dynamics.t_end)
    return graded_coordinates(case.pde.n, intervals, case.pde.grading)
