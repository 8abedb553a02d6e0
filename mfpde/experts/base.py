r"""The expert interface: :math:`\phi(x;\theta)` and :math:`\nabla_\theta\phi` at data and many parameters.

Every solver needs, at fixed data :math:`x_1..x_K` and many parameter points
:math:`\theta_1..\theta_M` on the torus :math:`T^d`,

.. math::

    \Phi_{km} = \phi(x_k;\theta_m), \qquad G_{kmj} = \partial_{\theta_j}\phi(x_k;\theta_m).

``expert.bind(x)`` does once the work that depends only on the data and
returns a callable ``theta (M, d) -> (Phi (K, M), G (K, M, d))`` that the
solvers call every step.  This module holds the base class and the small
validation helpers the expert kinds share.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from mfpde.errors import CaseError

BoundExpert = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def as_data(x: Any, m: int | None, what: str = "x") -> np.ndarray:
    """``x`` as a float array (K, m'); a 1-D array is read as K points in R^1."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{what} must have shape (K, m), got {x.shape}")
    if m is not None and x.shape[1] < m:
        raise ValueError(f"{what} has {x.shape[1]} column(s) but the expert reads {m}")
    return x


def as_theta(theta: Any, d: int) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 2 or theta.shape[1] != d:
        raise ValueError(f"theta must have shape (M, {d}), got {theta.shape}")
    return theta


class Expert:
    """Base class of all experts.

    Attributes
    ----------
    kind : str
        Case-file kind (``"qnn"``, ``"cosine"``, ``"python"``).
    d : int
        Dimension of the parameter torus :math:`T^d`.
    m : int or None
        Number of input columns the expert reads (it reads ``x[:, :m]``); data
        with fewer columns are refused.  ``None``: any number of columns.
    """

    kind: str = "expert"
    d: int
    m: int | None = None
    _cache_size = 4

    # -- to implement in subclasses ------------------------------------------
    def bind(self, x) -> BoundExpert:
        """Precompute what depends on the data ``x`` (K, m) only.

        Returns ``f(theta (M, d)) -> (phi (K, M), grad (K, M, d))``, vectorized
        over K and M.  Called once per run; ``f`` is called every step.
        """
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON-able summary for provenance."""
        return {"kind": self.kind, "d": self.d, "m": self.m}

    def max_frequency(self) -> tuple[int, ...] | None:
        r"""Per-coordinate trigonometric degree :math:`n_i` when known, else None.

        :math:`\phi(x;\cdot)` then has Fourier modes only for
        :math:`|s_i| \le n_i`.
        """
        return None

    # -- shared ----------------------------------------------------------------
    def evaluate(self, x, theta) -> tuple[np.ndarray, np.ndarray]:
        """``(phi (K, M), grad (K, M, d))`` at data ``x`` (K, m) and ``theta`` (M, d).

        Same as ``self.bind(x)(theta)``; the binding is cached by the bytes of
        ``x``, so repeated calls with the same data cost one bound call.
        """
        xa = as_data(x, self.m)
        key = (xa.shape, xa.tobytes())
        cache = self.__dict__.setdefault("_bind_cache", OrderedDict())
        f = cache.get(key)
        if f is None:
            f = self.bind(xa)
            cache[key] = f
            while len(cache) > self._cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return f(theta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def data_dim_required(expert: Expert) -> int | None:
    """Number of input columns the expert reads (None: any)."""
    return expert.m


def is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def positive_int(key: str, v) -> int:
    if not is_int(v) or v <= 0:
        raise CaseError(key, f"must be a positive integer, got {v!r}")
    return int(v)
