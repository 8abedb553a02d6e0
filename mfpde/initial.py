r"""The initial density :math:`\rho_0` on the torus and i.i.d. samples from it.

``uniform``: :math:`\rho_0 = (2\pi)^{-d}`.
``vonmises``: independent per coordinate,
:math:`\rho_0(\theta) = \prod_i e^{\kappa_i \cos(\theta_i - \mu_i)} / (2\pi I_0(\kappa_i))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import i0e

from .case import InitSpec


@dataclass(frozen=True)
class InitialDensity:
    d: int
    spec: InitSpec

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """Density values at points ``theta`` (M, d): shape (M,)."""
        theta = np.atleast_2d(theta)
        if self.spec.kind == "uniform":
            return np.full(theta.shape[0], (2 * np.pi) ** -self.d)
        mean = np.asarray(self.spec.mean)
        kappa = np.asarray(self.spec.kappa)
        # exp(k cos - k) / (2 pi I0(k) e^-k): stable for large kappa
        return np.prod(np.exp(kappa * (np.cos(theta - mean) - 1.0)) / (2 * np.pi * i0e(kappa)), axis=1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` i.i.d. points in [0, 2 pi)^d."""
        if self.spec.kind == "uniform":
            return rng.uniform(0.0, 2 * np.pi, size=(n, self.d))
        mean = np.asarray(self.spec.mean)
        kappa = np.asarray(self.spec.kappa)
        return np.mod(rng.vonmises(mean, kappa, size=(n, self.d)), 2 * np.pi)


def initial_density(case) -> InitialDensity:
    return InitialDensity(case.d, case.init)
