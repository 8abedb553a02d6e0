r"""Independent reference for the PDE with ``tau = 0``: the method of characteristics.

For ``tau = 0`` the solution is the push-forward of ``rho_0`` by the flow of
``d theta/dt = v(theta; rho_t)``, so for every smooth ``g``

.. math::

    \int g\, d\rho_t = \int g(X_t(\theta))\, \rho_0(\theta)\, d\theta
                    \approx \sum_j a_j\, g(X_t(\theta_j)),

with ``theta_j`` the ``n_grid^d`` points of the trapezoid grid of
``[0, 2 pi)^d`` and ``a_j = rho0(theta_j) (2 pi / n_grid)^d`` (spectrally
accurate for smooth periodic integrands), normalised to sum 1 exactly as the
PDE solver normalises its initial density.  The points are moved with the
classical RK4 scheme and the velocity of :func:`mfpde.flow.velocity` (whose
``F`` is the same quadrature).  Nothing here uses the finite-element code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import CaseError
from .flow import ExpertAt, velocity


def trapezoid_grid(d: int, n_grid: int) -> np.ndarray:
    """The ``n_grid^d`` points ``2 pi (i + 0) / n_grid`` of ``[0, 2 pi)^d``: (n_grid^d, d)."""
    g = 2.0 * np.pi * np.arange(n_grid) / n_grid
    return np.stack(np.meshgrid(*([g] * d), indexing="ij"), axis=-1).reshape(-1, d)


def characteristics_reference(
    expert_at: ExpertAt,
    y,
    w,
    rho0: Callable[[np.ndarray], np.ndarray],
    lr: float,
    d: int,
    t_save,
    n_grid: int,
    dt: float,
    freqs=None,
) -> dict:
    """Observables of the ``tau = 0`` mean-field flow at the times ``t_save``.

    Returns ``{"t" (T,), "F" (T, K), "risk" (T,)}`` and, if ``freqs`` (F, d)
    is given, ``"moments"`` (T, F) complex.  RK4 steps of at most ``dt``,
    shortened to land exactly on every save time.
    """
    if d < 1:
        raise CaseError("d", f"must be >= 1, got {d}")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    t_save = np.atleast_1d(np.asarray(t_save, dtype=np.float64))
    if np.any(np.diff(t_save) < 0) or t_save[0] < 0:
        raise ValueError("t_save must be non-negative and non-decreasing")
    theta = trapezoid_grid(d, n_grid)
    a = np.asarray(rho0(theta), dtype=np.float64).reshape(-1) * (2.0 * np.pi / n_grid) ** d
    a = a / a.sum()
    freqs = None if freqs is None else np.asarray(freqs, dtype=np.int64).reshape(-1, d)

    def rhs(th):
        return velocity(th, a, expert_at, y, w, lr)

    def observe(th):
        phi, _ = expert_at(th)
        F = phi @ a
        out = [F, 0.5 * float(np.sum(w * (F - y) ** 2))]
        if freqs is not None:
            out.append(np.exp(1j * (th @ freqs.T)).T @ a)
        return out

    Fs, risks, moms = [], [], []
    t = 0.0
    for ts in t_save:
        nsub = int(np.ceil((ts - t) / dt - 1e-12)) if ts > t else 0
        if nsub > 0:
            h = (ts - t) / nsub
            for _ in range(nsub):
                k1, _ = rhs(theta)
                k2, _ = rhs(theta + 0.5 * h * k1)
                k3, _ = rhs(theta + 0.5 * h * k2)
                k4, _ = rhs(theta + h * k3)
                theta = theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
            t = ts
        obs = observe(theta)
        Fs.append(obs[0])
        risks.append(obs[1])
        if freqs is not None:
            moms.append(obs[2])
    out = {"t": t_save, "F": np.array(Fs), "risk": np.array(risks)}
    if freqs is not None:
        out["moments"] = np.array(moms)
    return out
