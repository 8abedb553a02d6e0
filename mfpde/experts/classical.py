r"""Closed-form classical experts.

``cosine``: :math:`\phi(x;\theta)=\prod_{i<d}\cos(x_{i \bmod m}-\theta_i)`, degree 1 in
each coordinate.
"""

from __future__ import annotations

import numpy as np

from mfpde.experts.base import BoundExpert, Expert, as_data, as_theta, positive_int


class CosineExpert(Expert):
    r"""Classical expert :math:`\phi(x;\theta)=\prod_{i<d}\cos(x_{i \bmod m}-\theta_i)`.

    Gradient in closed form:
    :math:`\partial_{\theta_j}\phi = \sin(x_{j \bmod m}-\theta_j)\prod_{i\ne j}\cos(x_{i \bmod m}-\theta_i)`
    (computed with prefix/suffix products, no division).  ``m`` fixes the
    number of input columns; ``None`` uses all columns of the data.
    """

    kind = "cosine"

    def __init__(self, d: int, m: int | None = None):
        self.d = positive_int("expert.d", d)
        self.m = None if m is None else positive_int("expert.m", m)

    def bind(self, x) -> BoundExpert:
        x = as_data(x, self.m)
        m = self.m or x.shape[1]
        xs = x[:, [i % m for i in range(self.d)]]  # (K, d)
        d = self.d

        def f(theta):
            theta = as_theta(theta, d)
            a = xs[:, None, :] - theta[None, :, :]  # (K, M, d)
            c, s = np.cos(a), np.sin(a)
            ones = np.ones(c.shape[:2] + (1,))
            before = np.cumprod(np.concatenate([ones, c[..., :-1]], axis=2), axis=2)
            after = np.cumprod(np.concatenate([ones, c[..., :0:-1]], axis=2), axis=2)[..., ::-1]
            others = before * after  # prod_{i != j} cos(a_i)
            return others[..., 0] * c[..., 0], s * others

        return f

    def max_frequency(self) -> tuple[int, ...]:
        return (1,) * self.d

    def describe(self) -> dict:
        return {"kind": self.kind, "d": self.d, "m": self.m, "max_frequency": [1] * self.d}
