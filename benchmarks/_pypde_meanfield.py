r"""The mean-field equation written the way a py-pde user would write it (benchmark only).

.. math::

    \partial_t\rho = -\nabla\cdot(\rho v) + \tau\Delta\rho,\qquad
    v = -\mathrm{lr}\sum_k w_k r_k \nabla\phi(x_k;\cdot),\qquad
    r_k = \int\phi(x_k;\theta)\rho(\theta)\,d\theta - y_k ,

on a periodic ``N^d`` :class:`pde.CartesianGrid` of ``[0, 2 pi)^d`` (cell
centres).  ``phi(x_k; grid)`` and ``grad phi(x_k; grid)`` are evaluated once,
exactly, with the bound expert (``case.expert.bind(case.data.x)``); at every
right-hand-side call the residuals are trapezoid (= midpoint, spectrally
accurate for periodic integrands) sums over the grid, the velocity is the
combination of the stored gradients, and ``-div(rho v)`` is taken by
second-order central differences (py-pde's periodic divergence operator, or
the same stencil with ``np.roll``); ``tau > 0`` adds the second-order
Laplacian (py-pde's ``laplace`` operator, or the 2d+1-point stencil with ``np.roll``).
:func:`box_cell_averages` is the exact initial state of a box density (cell averages).

Two implementations of the same right-hand side, as py-pde offers them:

* ``evolution_rate`` (``backend="numpy"``): numpy, field objects, with the
  divergence either py-pde's operator (``divergence="operator"``; py-pde
  compiles it with numba once per grid) or written out with ``np.roll``
  (``divergence="roll"``; the same central differences, nothing compiled);
* ``make_evolution_rate`` (``backend="numba"``): a closure compiled by numba,
  with the compiled divergence operator of the grid.  py-pde's right-hand side
  takes only ``(state_data, t)``, so the stored arrays are closure variables,
  which numba freezes into the compiled code: compilation (every ``solve``)
  grows with the grid.

This module is not part of mfpde; only the benchmarks import it.
"""

from __future__ import annotations

import numpy as np
import pde


def periodic_grid(n: int, d: int = 2) -> pde.CartesianGrid:
    return pde.CartesianGrid([[0.0, 2.0 * np.pi]] * d, [n] * d, periodic=True)


def box_cell_averages(n: int, lower, upper) -> np.ndarray:
    """Cell averages of the normalised uniform density on the box ``[lower, upper]`` (mod 2 pi), shape (n,)*d."""
    h = 2.0 * np.pi / n
    edges = h * np.arange(n + 1)
    out = np.ones((1,) * len(lower))
    for a, (lo, hi) in enumerate(zip(lower, upper)):
        frac = np.zeros(n)
        for shift in (-2.0 * np.pi, 0.0, 2.0 * np.pi):  # the box may wrap around the seam
            frac += np.clip(np.minimum(edges[1:], hi + shift) - np.maximum(edges[:-1], lo + shift), 0.0, None)
        shape = [1] * len(lower)
        shape[a] = n
        out = out * (frac / (h * (hi - lo))).reshape(shape)
    return out


class MeanFieldFD(pde.PDEBase):
    """Continuity equation with the mean-field velocity on a periodic Cartesian grid."""

    def __init__(self, grid: pde.CartesianGrid, expert_at, y, w, lr: float, divergence: str = "operator",
                 tau: float = 0.0):
        super().__init__()
        if divergence not in ("operator", "roll"):
            raise ValueError(f"divergence must be 'operator' or 'roll', got {divergence!r}")
        self.divergence = divergence
        self.grid = grid
        d = grid.dim
        shape = grid.shape
        pts = grid.cell_coords.reshape(-1, d)
        phi, grad = expert_at(pts)  # (K, M), (K, M, d)
        K = phi.shape[0]
        self.K = K
        self.phi = np.ascontiguousarray(phi.reshape((K,) + shape))
        self.G = np.ascontiguousarray(np.moveaxis(grad, 2, 1).reshape((K, d) + shape))  # (K, d, *shape)
        self.y = np.asarray(y, dtype=np.float64).copy()
        self.w = np.asarray(w, dtype=np.float64).copy()
        self.lr = float(lr)
        self.tau = float(tau)
        self.cell_volume = float(np.prod(grid.discretization))

    # ---- observables ------------------------------------------------------------
    def outputs(self, rho: np.ndarray) -> np.ndarray:
        """``F_k = sum_ij phi(x_k; theta_ij) rho_ij |cell|`` (K,)."""
        return self.phi.reshape(self.K, -1) @ rho.reshape(-1) * self.cell_volume

    # ---- numpy backend ----------------------------------------------------------
    def evolution_rate(self, state: pde.ScalarField, t: float = 0) -> pde.ScalarField:
        rho = state.data
        c = -self.lr * self.w * (self.outputs(rho) - self.y)
        flux = rho[None] * np.tensordot(c, self.G, axes=1)  # (d, *shape)
        if self.divergence == "operator":
            rate = -pde.VectorField(self.grid, flux).divergence(bc="periodic")
            return rate + self.tau * state.laplace(bc="periodic") if self.tau else rate
        rate = np.zeros_like(rho)
        for a, h in enumerate(self.grid.discretization):
            rate -= (np.roll(flux[a], -1, axis=a) - np.roll(flux[a], 1, axis=a)) / (2.0 * h)
            if self.tau:
                rate += self.tau * (np.roll(rho, -1, axis=a) + np.roll(rho, 1, axis=a) - 2.0 * rho) / h**2
        return pde.ScalarField(self.grid, rate)

    # ---- numba backend ----------------------------------------------------------
    def make_evolution_rate(self, state: pde.ScalarField, backend):
        if self.grid.dim != 2 or self.tau:
            raise NotImplementedError("the compiled right-hand side is written for d = 2, tau = 0")
        divergence = self.grid.make_operator("divergence", bc="periodic", backend=backend, dtype=state.dtype)
        K = self.K
        n0, n1 = self.grid.shape
        phi, G = self.phi, self.G  # (K, n0, n1), (K, 2, n0, n1)
        y, w, lr, vol = self.y, self.w, self.lr, self.cell_volume

        def pde_rhs(state_data, t=0):
            c = np.empty(K)
            for k in range(K):
                s = 0.0
                for i in range(n0):
                    for j in range(n1):
                        s += phi[k, i, j] * state_data[i, j]
                c[k] = -lr * w[k] * (s * vol - y[k])
            flux = np.zeros((2, n0, n1))
            for k in range(K):
                ck = c[k]
                for a in range(2):
                    for i in range(n0):
                        for j in range(n1):
                            flux[a, i, j] += ck * G[k, a, i, j]
            for a in range(2):
                for i in range(n0):
                    for j in range(n1):
                        flux[a, i, j] *= state_data[i, j]
            return -divergence(flux)

        return pde_rhs
