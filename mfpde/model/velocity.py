r"""The mean-field velocity shared by particles and characteristics.

For weighted points :math:`\theta_i` with weights :math:`a_i` (``1/N`` for the
N-expert mixture, quadrature weights times :math:`\rho_0` for characteristics)

.. math::

    F(x_k) = \sum_i a_i \phi(x_k;\theta_i), \qquad r_k = F(x_k) - y_k,

    v(\theta) = -\mathrm{lr} \sum_k w_k r_k \nabla_\theta \phi(x_k;\theta)

(DESIGN section 1: ``d theta_i/dt = -lr N grad_{theta_i} L_N``).  Everything
is one matrix product; there is no loop over experts or data points.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# expert_at(theta (M, d)) -> (phi (K, M), grad (K, M, d)) at the fixed data x_k
ExpertAt = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def mixture_output(phi: np.ndarray, weights: np.ndarray | float) -> np.ndarray:
    """Local part of ``F(x_k) = sum_i a_i phi(x_k; theta_i)``: shape (K,)."""
    if np.ndim(weights) == 0:
        return weights * phi.sum(axis=1)
    return phi @ weights


def velocity_from_residual(grad: np.ndarray, residual: np.ndarray, w: np.ndarray, lr: float) -> np.ndarray:
    """``v_i = -lr sum_k w_k r_k grad phi(x_k; theta_i)``: shape (M, d)."""
    return -lr * np.einsum("k,kmd->md", w * residual, grad)


def velocity(
    theta: np.ndarray,
    weights: np.ndarray | float,
    expert_at: ExpertAt,
    y: np.ndarray,
    w: np.ndarray,
    lr: float,
    allreduce: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Velocity of every point and the mixture output ``F`` (K,).

    ``allreduce`` sums the partial outputs over MPI ranks when the points are
    distributed; the sum is taken in a fixed order so that the result does not
    depend on the number of ranks beyond rounding of that one sum.
    """
    phi, grad = expert_at(theta)
    F = mixture_output(phi, weights)
    if allreduce is not None:
        F = allreduce(F)
    return velocity_from_residual(grad, F - y, w, lr), F


def risk(F: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """``R = 1/2 sum_k w_k (F_k - y_k)^2`` (also works on (T, K) arrays, giving (T,))."""
    return 0.5 * np.sum(w * (F - y) ** 2, axis=-1)
