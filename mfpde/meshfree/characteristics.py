r"""The method of characteristics for ``tau = 0``: weighted points moved by the mean-field flow.

For ``tau = 0`` the solution is the push-forward of ``rho_0`` by the flow of
``d theta/dt = v(theta; rho_t)``, so for every smooth ``g``

.. math::

    \int g\, d\rho_t = \int g(X_t(\theta))\, \rho_0(\theta)\, d\theta
                    \approx \sum_j a_j\, g(X_t(\theta_j)),

with ``(theta_j, a_j)`` a quadrature rule for ``rho_0``
(:mod:`mfpde.numerics.quadrature`).  The weights stay fixed; the points move with the
velocity of :func:`mfpde.model.velocity.velocity`, whose ``F = sum_j a_j phi(x; X_j)``
is the same quadrature, by the classical RK4 scheme with equal steps of at
most ``dt`` between consecutive save times (every save time is hit exactly).

:class:`Characteristics` holds one MPI rank's block of the points; the only
communication is the sum of the K partial outputs (one ``Allreduce`` per RK4
stage), as for the particles.  :func:`characteristics_reference` is the
one-call form on the tensor trapezoid grid used as an independent check of
the PDE solver; nothing here uses the finite-element code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from mpi4py import MPI

from mfpde.errors import CaseError
from mfpde.model.velocity import ExpertAt, mixture_output, risk, velocity
from mfpde.model.moments import empirical_moments
from mfpde.numerics.quadrature import trapezoid_grid


def step_count(span: float, dt: float) -> int:
    """Number of equal steps of at most ``dt`` covering ``span`` (0 for an empty span)."""
    return int(np.ceil(span / dt - 1e-12)) if span > 0 else 0


class Characteristics:
    """This rank's weighted points, the velocity they create, and RK4 steps."""

    def __init__(self, expert_at: ExpertAt, y, w, lr: float, weights: np.ndarray,
                 comm: MPI.Comm = MPI.COMM_SELF):
        self.expert_at = expert_at
        self.y, self.w = np.asarray(y, float).reshape(-1), np.asarray(w, float).reshape(-1)
        self.lr, self.weights, self.comm = float(lr), np.asarray(weights, float), comm

    def allreduce(self, local: np.ndarray) -> np.ndarray:
        """Sum of a local array over the ranks (identical on every rank)."""
        if self.comm.size == 1:
            return local
        out = np.empty_like(local)
        self.comm.Allreduce(np.ascontiguousarray(local), out, op=MPI.SUM)
        return out

    def rhs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(velocity of this rank's points (M_local, d), F(x_k) (K,))."""
        return velocity(theta, self.weights, self.expert_at, self.y, self.w, self.lr, self.allreduce)

    def output(self, theta: np.ndarray) -> np.ndarray:
        """``F(x_k) = sum_j a_j phi(x_k; theta_j)`` over all ranks: (K,)."""
        phi, _ = self.expert_at(theta)
        return self.allreduce(mixture_output(phi, self.weights))

    def moments(self, theta: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        """Fourier moments of the weighted points over all ranks: (F,) complex."""
        return self.allreduce(empirical_moments(theta, freqs, self.weights))

    def step(self, theta: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
        """One RK4 step: (new points, velocity at the old points)."""
        k1, _ = self.rhs(theta)
        k2, _ = self.rhs(theta + 0.5 * h * k1)
        k3, _ = self.rhs(theta + 0.5 * h * k2)
        k4, _ = self.rhs(theta + h * k3)
        return theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4), k1

    def advance(self, theta: np.ndarray, t: float, t_target: float, dt: float,
                on_step: Callable[[float], None] | None = None) -> np.ndarray:
        """Points at ``t_target`` from points at ``t``: equal RK4 steps of at most ``dt``."""
        n = step_count(t_target - t, dt)
        h = (t_target - t) / max(n, 1)
        for _ in range(n):
            theta, _ = self.step(theta, h)
            if on_step is not None:
                on_step(h)
        return theta


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
    """Observables of the ``tau = 0`` mean-field flow at the times ``t_save``,
    from the ``n_grid^d`` trapezoid grid with weights ``rho0(theta_j)`` normalised to sum 1.

    Returns ``{"t" (T,), "F" (T, K), "risk" (T,)}`` and, if ``freqs`` (F, d)
    is given, ``"moments"`` (T, F) complex.
    """
    if d < 1:
        raise CaseError("d", f"must be >= 1, got {d}")
    t_save = np.atleast_1d(np.asarray(t_save, dtype=np.float64))
    if np.any(np.diff(t_save) < 0) or t_save[0] < 0:
        raise ValueError("t_save must be non-negative and non-decreasing")
    theta = trapezoid_grid(d, n_grid)
    a = np.asarray(rho0(theta), dtype=np.float64).reshape(-1)
    flow = Characteristics(expert_at, y, w, lr, a / a.sum())
    freqs = None if freqs is None else np.asarray(freqs, dtype=np.int64).reshape(-1, d)
    Fs, moms = [], []
    t = 0.0
    for ts in t_save:
        theta = flow.advance(theta, t, ts, dt)
        t = ts
        Fs.append(flow.output(theta))
        if freqs is not None:
            moms.append(flow.moments(theta, freqs))
    F = np.array(Fs)
    out = {"t": t_save, "F": F, "risk": risk(F, flow.y, flow.w)}
    if freqs is not None:
        out["moments"] = np.array(moms)
    return out
