r"""Observables of a DG density: model outputs, risk, Fourier moments, dissipation.

.. math::

    F(x_k) = \int \phi(x_k;\theta)\rho\,d\theta = B_k^T U, \qquad
    m_\omega = \int e^{i\omega\cdot\theta}\rho\,d\theta, \qquad
    R = \tfrac12 \sum_k w_k (F(x_k) - y_k)^2 .

``B[c, i, k] = int_c phi(x_k; .) psi_i`` is computed once by quadrature
(degree ``2p+3``) with exact ``phi`` values (it is what the velocity needs at
every stage), the expert called on blocks of points so that its temporaries
stay bounded.  The moments are only needed at saved times: they are summed
on the fly from the density at the quadrature points, in blocks of cells,
with exact ``exp(i w.theta)``, so no (cells, dofs, frequencies) table is
stored.  All sums are MPI allreduces, identical on every rank.
"""

from __future__ import annotations

import numpy as np

from mfpde.pde.cells import CellData

_CHUNK = 4096  # cells per block of the moment sum
_POINTS = 8192  # points per call of the expert (bounds the expert's temporaries)
_PHASES = 1 << 18  # complex phases per block of the moment sum (4 MiB)


def expert_in_blocks(expert_at, points: np.ndarray, K: int, want_grad: bool) -> np.ndarray:
    """``phi`` (K, M) or ``grad phi`` (K, M, d) at ``points`` (M, d), the expert called on blocks of points
    (``phi`` through the expert's ``values`` when it has one: no gradient computed for nothing)."""
    M, d = points.shape
    out = np.empty((K, M, d) if want_grad else (K, M))
    values = None if want_grad else getattr(expert_at, "values", None)
    for s in range(0, M, _POINTS):
        if values is not None:
            out[:, s : s + _POINTS] = np.asarray(values(points[s : s + _POINTS]), dtype=np.float64)
            continue
        phi, grad = expert_at(points[s : s + _POINTS])
        block = grad if want_grad else phi
        out[:, s : s + _POINTS] = np.asarray(block, dtype=np.float64).reshape(out[:, s : s + _POINTS].shape)
    return out


class Observables:
    """``B`` (C, n, K) and the moment frequencies; sums over all ranks."""

    def __init__(self, cells: CellData, expert_at, K: int, freqs: np.ndarray):
        self.cells = cells
        self.freqs = freqs
        self.expert_at, self.K = expert_at, K
        self.update_geometry()

    def update_geometry(self) -> None:
        """``B`` from the cells' current quadrature (at set-up, and after every move of a moving mesh).

        On a moving mesh ``B`` is not formed: ``wphi[c, q, k] = |det J| w_q phi(x_k; theta_q)`` is kept
        and ``F = sum u(theta_q) wphi`` costs one pass over the points instead of one over (dofs, K).
        """
        cells, K = self.cells, self.K
        q = cells.quad
        C = cells.n_cells
        self.wphi = None
        if self.expert_at is not None and cells.moving:
            phi_q = expert_in_blocks(self.expert_at, q.points.reshape(-1, cells.d), K, False)
            self.wphi = np.ascontiguousarray((phi_q.reshape(K, C, -1) * q.wdet[None]).transpose(1, 2, 0))
        elif self.expert_at is not None:
            self.B = np.empty((C, cells.dofs.shape[1], K))
            for s in range(0, C, _CHUNK):
                pts = q.points[s : s + _CHUNK]
                phi_q = expert_in_blocks(self.expert_at, pts.reshape(-1, cells.d), K, False).reshape(K, pts.shape[0], -1)
                self.B[s : s + _CHUNK] = np.einsum("cq,qi,kcq->cik", q.wdet[s : s + _CHUNK], q.phi, phi_q)
        else:
            self.B = np.zeros((C, cells.dofs.shape[1], K))

    def outputs(self, U: np.ndarray) -> np.ndarray:
        """``F(x_k)`` (K,)."""
        if self.wphi is not None:
            return self.cells.sum(np.einsum("cq,cqk->k", self.cells.values_at_quadrature(U), self.wphi))
        return self.cells.sum(np.einsum("cik,ci->k", self.B, U))

    def moments(self, U: np.ndarray) -> np.ndarray:
        """``int exp(i w.theta) rho`` for every frequency w, (F,) complex."""
        q = self.cells.quad
        out = np.zeros(len(self.freqs), dtype=np.complex128)
        block = max(1, _PHASES // max(1, q.phi.shape[0] * len(self.freqs)))  # cells per block
        for s in range(0, U.shape[0], block):
            wu = q.wdet[s : s + block] * (U[s : s + block] @ q.phi.T)  # (c, nq)
            phase = np.exp(1j * (q.points[s : s + block] @ self.freqs.T))  # (c, nq, F)
            out += np.einsum("cq,cqf->f", wu, phase)
        return self.cells.sum(out)
