r"""Runge-Kutta schemes for ``M dU/dt = b(U) - tau A U`` (transport residual ``b``, SIPG ``A``).

Explicit (``tau = 0``), in Shu-Osher form, every stage a convex combination
of forward-Euler steps followed by the positivity limiter:

* ``ssprk3``: SSP-RK(3,3) of Shu and Osher, SSP coefficient 1, order 3;
* ``ssprk104``: SSP-RK(10,4) of Ketcheson (2008, low-storage form), SSP
  coefficient 6 (each stage a forward-Euler step of ``dt/6``), order 4.

A stage with a cell mean below ``-1e-12 max|U|`` is rejected and the step
retried with half the time step (never silently: ``rejected_steps`` counts
them); smaller negative means (round-off) are removed as in the IMEX stages
below, so that the limiter never changes the mass.

IMEX (``tau > 0``): ``ars443``, the L-stable ARS(4,4,3) scheme of Ascher,
Ruuth and Spiteri (1997), order 3, transport explicit, diffusion implicit,
one diagonal coefficient ``1/2`` (one factorization of ``M + dt tau A / 2``
per distinct ``dt``), stiffly accurate (the step is the last stage).  Stage
``i`` solves

.. math::

    (M + \tfrac12 \Delta t\,\tau A) U_i = M U^n
      + \Delta t \sum_{j<i} \bigl(\hat a_{ij}\, b(U_j) - a_{ij}\, \tau A U_j\bigr),

which conserves mass exactly (``1^T b = 0``, ``1^T A = 0``).  After each
stage, cells with a negative mean (SIPG is not monotone) are set to zero and
the mass they took is removed from the others by a common factor, so mass is
kept to round-off (``mean_fixes`` counts these), then the limiter.  The time
step is taken from a ladder ``2^{k/4}`` below the CFL step, so that few
distinct steps (hence factorizations) occur.
"""

from __future__ import annotations

import math

import numpy as np

from mfpde.config.rules import EXPLICIT_SCHEMES as EXPLICIT, TIME_SCHEMES as SCHEMES  # noqa: F401  (one table)

SSP_COEFFICIENT = {"ssprk3": 1.0, "ssprk104": 6.0, "ars443": 1.0}
ORDER = {"ssprk3": 3, "ssprk104": 4, "ars443": 3}

_ARS_E = np.array([[0, 0, 0, 0, 0],
                   [1 / 2, 0, 0, 0, 0],
                   [11 / 18, 1 / 18, 0, 0, 0],
                   [5 / 6, -5 / 6, 1 / 2, 0, 0],
                   [1 / 4, 7 / 4, 3 / 4, -7 / 4, 0]])
_ARS_I = np.array([[0, 0, 0, 0, 0],
                   [0, 1 / 2, 0, 0, 0],
                   [0, 1 / 6, 1 / 2, 0, 0],
                   [0, -1 / 2, 1 / 2, 1 / 2, 0],
                   [0, 3 / 2, -3 / 2, 1 / 2, 1 / 2]])
_ARS_GAMMA = 0.5


def ladder(dt: float) -> float:
    """The largest ``2^{k/4}`` (k integer) not above ``dt``."""
    k = math.floor(4.0 * math.log2(dt) + 1e-12)
    return 2.0 ** (k / 4.0)


def ssprk3(ops, U0: np.ndarray, dt: float):
    U1 = ops.stage(U0 + dt * ops.rate(U0))
    if U1 is None:
        return None
    U2 = ops.stage(0.75 * U0 + 0.25 * (U1 + dt * ops.rate(U1)))
    if U2 is None:
        return None
    return ops.stage(U0 / 3.0 + (2.0 / 3.0) * (U2 + dt * ops.rate(U2)))


def ssprk104(ops, U0: np.ndarray, dt: float):
    h = dt / 6.0
    q1, q2 = U0, U0
    for i in range(9):
        q1 = ops.stage(q1 + h * ops.rate(q1))
        if q1 is None:
            return None
        if i == 4:
            q2 = q2 / 25.0 + (9.0 / 25.0) * q1
            q1 = 15.0 * q2 - 5.0 * q1  # = 3/5 U0 + 2/5 q1: convex, stays positive
    return ops.stage(q2 + 0.6 * q1 + 0.1 * dt * ops.rate(q1))


def ars443(ops, U0: np.ndarray, dt: float):
    tau = ops.tau
    MU0 = ops.cells.apply_mass(U0)
    coef = _ARS_GAMMA * dt * tau
    KE, KI = [ops.residual(U0)], [None]
    U = U0
    for i in range(1, 5):
        r = MU0.copy()
        for j in range(i):
            if _ARS_E[i, j]:
                r += (dt * _ARS_E[i, j]) * KE[j]
            if _ARS_I[i, j]:
                r += (dt * _ARS_I[i, j]) * KI[j]
        U = ops.implicit_stage(ops.diffusion.solve(coef, r, ops.t), ops.cells.mass(U0))
        if i < 4:
            KE.append(ops.residual(U))
            KI.append(-tau * ops.diffusion.apply(U))
    return U


STEP = {"ssprk3": ssprk3, "ssprk104": ssprk104, "ars443": ars443}
