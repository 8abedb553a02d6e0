r"""Observables of a DG density: model outputs, risk, Fourier moments, dissipation.

.. math::

    F(x_k) = \int \phi(x_k;\theta)\rho\,d\theta = B_k^T U, \qquad
    m_\omega = \int e^{i\omega\cdot\theta}\rho\,d\theta, \qquad
    R = \tfrac12 \sum_k w_k (F(x_k) - y_k)^2 .

``B[c, i, k] = int_c phi(x_k; .) psi_i`` is computed once by quadrature
(degree ``2p+3``) with exact ``phi`` values (it is what the velocity needs at
every stage).  The moments are only needed at saved times: they are summed
on the fly from the density at the quadrature points, in blocks of cells,
with exact ``exp(i w.theta)``, so no (cells, dofs, frequencies) table is
stored.  All sums are MPI allreduces, identical on every rank.
"""

from __future__ import annotations

import numpy as np

from .cells import CellData

_CHUNK = 4096  # cells per block of the moment sum


class Observables:
    """``B`` (C, n, K) and the moment frequencies; sums over all ranks."""

    def __init__(self, cells: CellData, expert_at, K: int, freqs: np.ndarray):
        self.cells = cells
        self.freqs = freqs
        q = cells.quad
        C = cells.n_cells
        if expert_at is not None:
            pts = q.points.reshape(-1, cells.d)
            phi_q, _ = expert_at(pts) if C else (np.zeros((K, 0)), None)
            phi_q = np.asarray(phi_q, dtype=np.float64).reshape(K, C, -1)
            self.B = np.einsum("cq,qi,kcq->cik", q.wdet, q.phi, phi_q)
        else:
            self.B = np.zeros((C, cells.dofs.shape[1], K))

    def outputs(self, U: np.ndarray) -> np.ndarray:
        """``F(x_k)`` (K,)."""
        return self.cells.sum(np.einsum("cik,ci->k", self.B, U))

    def moments(self, U: np.ndarray) -> np.ndarray:
        """``int exp(i w.theta) rho`` for every frequency w, (F,) complex."""
        q = self.cells.quad
        out = np.zeros(len(self.freqs), dtype=np.complex128)
        for s in range(0, U.shape[0], _CHUNK):
            wu = q.wdet[s : s + _CHUNK] * (U[s : s + _CHUNK] @ q.phi.T)  # (c, nq)
            phase = np.exp(1j * (q.points[s : s + _CHUNK] @ self.freqs.T))  # (c, nq, F)
            out += np.einsum("cq,cqf->f", wu, phase)
        return self.cells.sum(out)
