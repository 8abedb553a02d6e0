r"""A Lagrangian torus mesh: vertices carried by the mean-field velocity (arbitrary Lagrangian-Eulerian DG).

.. math::

    \frac{dX_j}{dt} = v(X_j, t), \qquad
    \frac{d}{dt}\int_{K(t)} \rho\,\psi_i = \int_{K(t)} \rho\,(v - w)\cdot\nabla\psi_i
      - \int_{\partial K(t)} \widehat{\rho\,(v - w)\cdot n}\;\psi_i ,

with ``w`` the mesh velocity, the ``Q1`` / ``P1`` interpolant of ``v`` at the
vertices ``X_j``, and test functions that move with the cells.  The unknowns
of a Runge-Kutta stage are then the cell integrals ``M(X) U`` and the vertex
positions ``X``: every Shu-Osher stage stays a convex combination of forward
Euler steps, mass is conserved exactly (the facet fluxes telescope), and the
positivity limiter acts as on a fixed mesh.

Why: with a discontinuous start (a box of small angles) whose edges are mesh
lines, the edges stay within ``O(h^2)`` of mesh facets (vertices move exactly
with the flow, straight edges approximate the curved material lines), so the
front is carried by the mesh instead of being smeared by the upwind flux and
clipped by the limiter.

Positions are kept per *topological* vertex (``P``, local vertices including
ghosts), unwrapped, with the per-cell integer periods ``S`` of the broken
geometry (see :mod:`mfpde.pde.torus`): cell ``c``'s node ``j`` is at
``P[v(c, j)] + 2 pi S[c, j]``.  Every rank integrates the positions of its
local vertices itself, with the same velocity coefficients (an allreduce), so
ghost copies agree without communication.

A flow that concentrates the density also squeezes the cells around it:
when the shape quality of the mesh (:meth:`.cells.CellData.shape_quality`)
falls below ``QUALITY_FLOOR`` the mesh stops moving (``w = 0``), and the run
goes on as on a fixed mesh, the one the flow has graded so far.  In the box
case the quality falls from 0.98 at t = 0 to 0.17 at t = 4, 0.07 at t = 6 and
0.004 at t = 10; a cell inverts near t = 11.6.
"""

from __future__ import annotations

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001
import dolfinx
import dolfinx.fem
from mpi4py import MPI

from mfpde.pde.observables import expert_in_blocks

QUALITY_FLOOR = 0.05


class LagrangianMesh:
    """Vertex positions of a torus mesh and the mesh velocity ``w = sum_k c_k grad phi_k(X_j)``."""

    def __init__(self, cells, expert_at, K: int, prescribed=None):
        msh, d = cells.msh, cells.d
        self.cells, self.d, self.K = cells, d, K
        self.expert_at, self.prescribed = expert_at, prescribed
        topo = msh.topology
        n_local = topo.index_map(d).size_local + topo.index_map(d).num_ghosts
        nv = msh.geometry.dofmaps[0].shape[1]
        self.c2v = topo.connectivity(d, 0).array.reshape(n_local, nv)
        self.nodes = msh.geometry.dofmaps[0][:n_local]  # (cells, nv) rows of geometry.x
        X = msh.geometry.x[self.nodes, :d]
        P = np.zeros((topo.index_map(0).size_local + topo.index_map(0).num_ghosts, d))
        P[self.c2v] = X
        self.period = cells.torus.period
        self.S = np.round((X - P[self.c2v]) / self.period)
        if np.abs(X - P[self.c2v] - self.period * self.S).max(initial=0.0) > 1e-10:
            raise RuntimeError("geometry nodes do not follow the cell-vertex connectivity")  # pragma: no cover
        self.P = P
        self.P0 = P.copy()  # the initial positions (displacements are measured from them)
        # the mesh velocity: vertex values -> CG1 -> the velocity space (a reference-cell interpolation)
        self.V1 = dolfinx.fem.functionspace(msh, ("Lagrange", 1, (d,)))
        self.vertex_dof = np.empty(len(P), dtype=np.int64)
        self.vertex_dof[self.c2v] = self.V1.dofmap.list[:n_local]
        self.w1 = dolfinx.fem.Function(self.V1)
        self.frozen = False  # set when the cells get too distorted: w = 0 from then on (a fixed mesh)
        self.set_positions(P)  # the vertex velocity table G

    def set_positions(self, P: np.ndarray) -> None:
        """Move the vertices to ``P`` (local vertices, unwrapped) and the gradient table with them."""
        self.P = np.array(P, dtype=np.float64).reshape(self.P.shape)
        x = self.P[self.c2v] + self.period * self.S
        self.cells.msh.geometry.x[self.nodes, : self.d] = x
        if self.prescribed is not None:
            self.G = np.asarray(self.prescribed(self.P), dtype=np.float64).reshape(self.P.shape)
            return
        grad = expert_in_blocks(self.expert_at, np.ascontiguousarray(self.P), self.K, True)
        self.G = np.ascontiguousarray(grad.transpose(1, 2, 0).reshape(-1, self.K))  # (vertices*d, K)

    def positions_from_owned(self, X: np.ndarray) -> np.ndarray:
        """Vertex positions ``P`` from the owned cells' vertices ``X`` (C_owned, nv, d) of a saved state.

        The displacement from the initial mesh (the same on every rank, whatever period a rank's copy
        of a vertex is unwrapped by) goes through the CG1 space, so that ghost vertices get their
        owner's (collective).
        """
        own = self.c2v[: self.cells.n_cells]
        D = np.zeros_like(self.P)
        D[own] = X - self.period * self.S[: self.cells.n_cells] - self.P0[own]
        buf = self.w1.x  # (a scratch vector here; the mesh velocity rewrites it)
        buf.array.reshape(-1, self.d)[self.vertex_dof] = D
        buf.scatter_forward()
        return self.P0 + buf.array.reshape(-1, self.d)[self.vertex_dof]

    def velocity(self, c: np.ndarray | None) -> np.ndarray:
        """Vertex velocities ``sum_k c_k grad phi_k(P_j)`` (or the prescribed velocity), (vertices, d);
        zero once the mesh is frozen."""
        if self.frozen:
            return np.zeros_like(self.P)
        if self.prescribed is not None:
            return self.G
        return np.einsum("mk,k->m", self.G, c).reshape(self.P.shape)

    def strain_rate(self, w: np.ndarray) -> float:
        """``max |w_a - w_b| / |X_a - X_b|`` over the edges of the owned cells, all ranks: how fast
        the cells change shape (the step keeps ``dt * strain_rate <= 2 cfl``)."""
        cells, edges = self.cells, self.cells.edges
        own = self.c2v[: cells.n_cells]
        dw = w[own[:, edges[:, 0]]] - w[own[:, edges[:, 1]]]
        dx = cells.X[:, edges[:, 0]] - cells.X[:, edges[:, 1]]
        rate = float((np.linalg.norm(dw, axis=2) / np.linalg.norm(dx, axis=2)).max()) if own.size else 0.0
        return cells.allreduce(rate, MPI.MAX)

    def set_mesh_velocity(self, target: dolfinx.fem.Function, w: np.ndarray) -> None:
        """``target`` (the velocity space) := the CG1 interpolant of the vertex velocities ``w``."""
        self.w1.x.array.reshape(-1, self.d)[self.vertex_dof] = w
        target.interpolate(self.w1)

    def inverted(self) -> bool:
        """Whether any cell has a non-positive Jacobian at a corner (collective)."""
        return self.cells.shape_quality() <= 0.0
