r"""Zhang-Shu positivity limiter, checked at the points where the scheme integrates.

.. math::

    \tilde u_K = \bar u_K + \theta_K (u_K - \bar u_K), \qquad
    \theta_K = \min\Bigl(1, \frac{\max(\bar u_K - \epsilon_K, 0)}{\bar u_K - \min_{x \in S} u_K(x)}\Bigr),
    \qquad \epsilon_K = 10^{-13} \max_i |U_{K,i}|,

with ``\bar u_K`` the cell mean and ``S`` the check points of the reference
cell: the cell quadrature points of the transport forms, their facet
quadrature points on every facet (the points FFCx integrates the upwind flux
at), the DG nodes and the observation quadrature points.  The scaling keeps
the cell mean (hence the mass) and makes ``u_K >= 0`` at every point of
``S`` (with the margin ``epsilon_K``, so that the round-off of evaluating
``u_K`` at a point never shows a negative value).  The same point set measures ``min_rho``, so ``min_rho``
reports what the integrals see; with the limiter switched off it can be
negative.

The limiter needs ``\bar u_K >= 0``; the time stepping guarantees that (a stage
with a negative cell mean is rejected and retried with half the step, or, for
the implicit diffusion stages, the negative means are removed by a
mass-conserving rescaling, see :mod:`.stepping`).
"""

from __future__ import annotations

import numpy as np

from mfpde.pde.cells import CellData, reference_facet_points, transport_quadrature_degree

_MARGIN = 1e-13
_CHUNK = 8192  # cells per block: bounds the (cells, check points) temporary


class PositivityLimiter:
    """Zhang-Shu scaling toward the cell mean, non-negative at the check points."""

    def __init__(self, cells: CellData, enabled: bool = True):
        import basix

        self.cells = cells
        self.enabled = enabled
        qdeg = transport_quadrature_degree(cells.cell_type, cells.degree)
        qp, _ = basix.make_quadrature(cells.cell, qdeg)
        self.points = np.concatenate([np.asarray(qp), reference_facet_points(cells.cell, qdeg),
                                      np.asarray(cells.basis.points), cells.quad.ref_points])
        self.P = cells.basis.tabulate(0, self.points)[0, :, :, 0]  # (n_check, n)

    def cell_minima(self, U: np.ndarray) -> np.ndarray:
        """``min_{x in S} u_K(x)`` per cell (C,)."""
        out = np.empty(U.shape[0])
        for s in range(0, U.shape[0], _CHUNK):
            out[s : s + _CHUNK] = (U[s : s + _CHUNK] @ self.P.T).min(axis=1)
        return out

    def minimum(self, U: np.ndarray) -> float:
        """Local minimum over the owned cells and the check points (``inf`` without cells)."""
        return float(self.cell_minima(U).min()) if U.size else np.inf

    def __call__(self, U: np.ndarray) -> np.ndarray:
        if not self.enabled or not U.size:
            return U
        umin = self.cell_minima(U)
        bad = np.nonzero(umin < 0)[0]
        if not bad.size:
            return U
        m = np.maximum(self.cells.means(U[bad], bad), 0.0)
        margin = _MARGIN * np.abs(U[bad]).max(axis=1)  # above the round-off of evaluating u at a point
        theta = np.clip(np.maximum(m - margin, 0.0) / (m - umin[bad]), 0.0, 1.0)
        U = U.copy()
        U[bad] = m[:, None] + theta[:, None] * (U[bad] - m[:, None])
        return U
