"""Closed-form classical expert and data shared by the PDE tests and the MPI script.

phi(x; theta) = prod_i cos(x - theta_i), grad_j = sin(x - theta_j) prod_{i != j} cos(x - theta_i),
data x_k = linspace(-3, 3, 8), y from a teacher mixture of two such experts, w = 1/K.
"""

import numpy as np

X_DATA = np.linspace(-3.0, 3.0, 8)
TEACHER = np.array([[0.9, -1.3, 0.7], [-2.0, 0.4, -0.3]])


def cos_expert_at(theta, x=X_DATA):
    theta = np.asarray(theta, dtype=np.float64)
    c = np.cos(x[:, None, None] - theta[None])
    s = np.sin(x[:, None, None] - theta[None])
    phi = c.prod(axis=2)
    grad = np.empty_like(c)
    for j in range(theta.shape[1]):
        grad[:, :, j] = s[:, :, j] * np.prod(np.delete(c, j, axis=2), axis=2)
    return phi, grad


def cos_problem(d):
    """(expert_at, y, w) for dimension d."""
    y = cos_expert_at(TEACHER[:, :d])[0].mean(axis=1)
    w = np.full(X_DATA.size, 1.0 / X_DATA.size)
    return cos_expert_at, y, w


def smooth_rho0(theta):
    """A smooth, positive, non-uniform density (unnormalised)."""
    return np.exp(np.sum(np.cos(theta - 1.0 + 0.7 * np.arange(theta.shape[1])), axis=1))
