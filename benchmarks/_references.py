r"""Independent references for the PDE benchmark: the method of characteristics (numpy only).

For ``tau = 0`` the solution is the push-forward of ``rho_0`` by the mean-field
flow, so with a quadrature rule ``(theta_j, a_j)`` for ``rho_0``

.. math::

    F(x_k, t) = \sum_j a_j\,\phi(x_k; X_t(\theta_j)),\qquad
    \dot X = -\mathrm{lr}\sum_k w_k (F(x_k, t) - y_k)\,\nabla\phi(x_k; X),

the points moved by classical RK4, the weights fixed.  Rules: the tensor
trapezoid grid (smooth periodic ``rho_0``; spectrally accurate) and tensor
Gauss-Legendre on a box (``rho_0`` uniform on ``[lower, upper]``: the
discontinuity sits on the rule's boundary, and ``phi(X_t(.))`` is analytic on
the box, so the rule converges geometrically).  Shares no code with the DG
solver or with mfpde's own characteristics module.
"""

from __future__ import annotations

import numpy as np


def trapezoid_rule(rho0, d: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    g = 2.0 * np.pi * np.arange(n) / n
    pts = np.stack(np.meshgrid(*([g] * d), indexing="ij"), axis=-1).reshape(-1, d)
    a = np.asarray(rho0(pts), float).reshape(-1)
    return pts, a / a.sum()


def box_gauss_legendre(lower, upper, n: int) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    x, wt = np.polynomial.legendre.leggauss(n)
    axes = [lo + (hi - lo) * (x + 1) / 2 for lo, hi in zip(lower, upper)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, lower.size)
    wts = np.prod(np.stack(np.meshgrid(*([wt / 2] * lower.size), indexing="ij"), axis=-1).reshape(-1, lower.size), axis=1)
    return pts, wts  # sums to 1: the normalised uniform density on the box


def characteristics(expert_at, y, w, lr, points, weights, t_end: float, dt: float) -> np.ndarray:
    """``F(x_k, t_end)`` (K,) by RK4 steps of at most ``dt``."""
    y, w = np.asarray(y, float), np.asarray(w, float)

    def vel(th):
        phi, grad = expert_at(th)
        return -lr * np.einsum("k,kmd->md", w * (phi @ weights - y), grad)

    nsteps = max(1, int(np.ceil(t_end / dt - 1e-12)))
    h, th = t_end / nsteps, np.array(points, float)
    for _ in range(nsteps):
        k1 = vel(th)
        k2 = vel(th + 0.5 * h * k1)
        k3 = vel(th + 0.5 * h * k2)
        k4 = vel(th + h * k3)
        th = th + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    return expert_at(th)[0] @ weights
