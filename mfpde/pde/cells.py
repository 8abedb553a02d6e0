r"""The DG space on the torus mesh and its per-cell data: quadrature, mass matrices, sizes.

.. math::

    \int_K u\,\psi_i = \sum_j M^K_{ij} U_j, \qquad
    M^K = |\det J_K|\, \hat M \ \text{(affine cells)}, \qquad
    \hat M_{ij} = \int_{\hat K} \hat\psi_i \hat\psi_j .

The element is the discontinuous Lagrange element of degree ``p`` on
Gauss-Lobatto-Legendre (warped) nodes (Basix ``gll_warped``): tensor-product
GLL nodes on intervals, quadrilaterals and hexahedra (``Q_p``), warped nodes on
triangles and tetrahedra (``P_p``).  Degrees: 1..6 on intervals and boxes,
1..4 on simplices.

Affine cells (simplices, parallelogram / parallelepiped boxes: ``det J``
constant on the cell) keep only the scalar ``|det J_K|``; ``M^{-1}`` is then
``\hat M^{-1} / |\det J_K|`` (one reference matrix for the whole mesh).  Other
cells (a jittered quadrilateral mesh) keep their own dense inverse.
"""

from __future__ import annotations

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001  (the DOLFINx provider, imported before dolfinx / petsc4py)
import basix
import basix.ufl
import dolfinx
import dolfinx.fem
import dolfinx.la
import ufl
from mpi4py import MPI

from mfpde.config.rules import MAX_DEGREE, check_degree  # noqa: F401  (the degrees: one table)


def dg_element(cell_type: str, degree: int):
    """Discontinuous Lagrange element on GLL (warped) nodes."""
    return basix.ufl.element("P", cell_type, degree, lagrange_variant=basix.LagrangeVariant.gll_warped,
                             discontinuous=True)


# FFCx clamps basis tables to -1, 0, 1 within rtol 1e-6 / atol 1e-9 by default, which breaks the
# partition of unity (hence mass conservation, ~1e-9 per step on DG3 tetrahedra): keep the tables exact
EXACT_TABLES = {"table_rtol": 1e-15, "table_atol": 1e-15}


def transport_quadrature_degree(cell_type: str, degree: int) -> int:
    """Quadrature degree ``3p`` of the transport forms.

    Exact for ``u v . grad psi`` (``v`` in CG(p+1)) on simplices (total degree ``p + (p+1) + (p-1)``).
    On boxes the integrand has per-coordinate degree up to ``3p + 1``; degree ``3p`` (``3p/2 + 1``
    Gauss points per direction) gave the same errors on the 3-d case (1.72e-8 against 1.73e-8) and
    the orders of the tests, at 1.65x less cost per step in 3-d.
    """
    return 3 * degree


def reference_facet_points(cell: basix.CellType, degree: int) -> np.ndarray:
    """The facet quadrature points of degree ``degree`` mapped onto every facet of the reference cell.

    Same rule and map as FFCx for ``dS`` integrals (``basix.make_quadrature`` on the facet
    cell, affine map through the facet's first ``tdim`` vertices).
    """
    geom = np.asarray(basix.geometry(cell), dtype=np.float64)
    tdim = geom.shape[1]
    out = []
    for f, verts in enumerate(basix.topology(cell)[tdim - 1]):
        ftype = basix.cell.sub_entity_type(cell, tdim - 1, f)
        if ftype == basix.CellType.point:
            out.append(geom[verts])
            continue
        fp, _ = basix.make_quadrature(ftype, degree)
        v = geom[verts]
        out.append(v[0] + np.asarray(fp) @ (v[1 : tdim] - v[0]))
    return np.concatenate(out, axis=0)


def jacobian_det(J: np.ndarray) -> np.ndarray:
    """Determinants of a stack of 1x1, 2x2 or 3x3 matrices (..., d, d), written out (no LU per matrix)."""
    d = J.shape[-1]
    if d == 1:
        return J[..., 0, 0].copy()
    if d == 2:
        return J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
    return (J[..., 0, 0] * (J[..., 1, 1] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 1])
            - J[..., 0, 1] * (J[..., 1, 0] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 0])
            + J[..., 0, 2] * (J[..., 1, 0] * J[..., 2, 1] - J[..., 1, 1] * J[..., 2, 0]))


class CellMap:
    """The P1/Q1 coordinate map at fixed reference points: ``x = N X``, ``J = dN X`` for cells ``X`` (C, nv, d)."""

    def __init__(self, cell: basix.CellType, ref_points: np.ndarray):
        cmap = basix.create_element(basix.ElementFamily.P, cell, 1, basix.LagrangeVariant.equispaced)
        tab = cmap.tabulate(1, ref_points)  # (1+d, nq, nv, 1)
        self.N, self.dN = tab[0, :, :, 0], tab[1:, :, :, 0]

    def points(self, X: np.ndarray) -> np.ndarray:
        return self.N @ X  # (C, nq, d)

    def jacobians(self, X: np.ndarray) -> np.ndarray:
        return np.stack([dNj @ X for dNj in self.dN], axis=-1)  # (C, nq, d, d): J[c, q, i, j] = dx_i / dxi_j


class CellQuadrature:
    """Physical quadrature points ``(C, nq, d)``, weights ``|det J| w`` ``(C, nq)`` and the basis ``(nq, n)``."""

    def __init__(self, cell: basix.CellType, X: np.ndarray, degree: int, basis):
        qp, qw = basix.make_quadrature(cell, degree)
        self.ref_points = np.asarray(qp, dtype=np.float64)
        self.weights = np.asarray(qw, dtype=np.float64)
        self.map = CellMap(cell, self.ref_points)
        self.phi = basis.tabulate(0, qp)[0, :, :, 0]  # (nq, n)
        self.move(X)

    def move(self, X: np.ndarray) -> None:
        """Points and weights for the cells ``X`` (C, nv, d) (the reference data are kept)."""
        self.points = self.map.points(X)
        self.jacobian_det = jacobian_det(self.map.jacobians(X))  # (C, nq), signed
        self.wdet = self.weights[None, :] * np.abs(self.jacobian_det)


class CellData:
    """DG(p) space of a torus mesh with the owned cells' geometry, quadrature and mass matrices."""

    def __init__(self, torus, degree: int, moving: bool = False):
        self.torus = torus
        self.msh = msh = torus.mesh
        self.comm = msh.comm
        self.d = d = torus.d
        self.cell_type = torus.cell_type
        self.degree = p = check_degree(self.cell_type, degree)
        self.V = V = dolfinx.fem.functionspace(msh, dg_element(self.cell_type, p))
        topo = msh.topology
        self.n_cells = C = topo.index_map(d).size_local
        self.n_cells_global = topo.index_map(d).size_global
        self.dofs = V.dofmap.list[:C].copy()  # (C, n)
        n_own = V.dofmap.index_map.size_local
        if self.dofs.size != n_own or (C and self.dofs.max() >= n_own):
            raise RuntimeError("DG dofs of owned cells are not the owned dofs")  # pragma: no cover
        self.n_dofs_global = V.dofmap.index_map.size_global
        self.basis = V.ufl_element().basix_element
        self.cell = msh.basix_cell()
        self.original_cell_index = np.asarray(topo.original_cell_index[:C], dtype=np.int64)
        qp, qw = basix.make_quadrature(self.cell, 2 * p)
        phi = self.basis.tabulate(0, qp)[0, :, :, 0]
        self.Mref = np.einsum("q,qi,qj->ij", qw, phi, phi)
        self.Mref_inv = np.linalg.inv(self.Mref)
        self.moving = moving  # a moving mesh keeps a dense mass matrix per cell (see _mass_matrices)
        V0 = dolfinx.fem.functionspace(msh, ("DG", 0))
        v0 = ufl.TestFunction(V0)
        self._perimeter = dolfinx.fem.form((v0("+") + v0("-")) * ufl.dS)
        self._perimeter_dofs = V0.dofmap.list[:C, 0]
        self._perimeter_vector = dolfinx.la.vector(V0.dofmap.index_map, 1)

        self._corners = CellMap(self.cell, np.asarray(basix.geometry(self.cell), dtype=np.float64))
        self.edges = np.asarray(basix.topology(self.cell)[1])  # (edges, 2) local vertex pairs of a cell
        self.quad = None
        self.update_geometry()
        # a cell's orientation as built (half the Kuhn simplices are clockwise): shape_quality measures against it
        self._orientation = np.sign(jacobian_det(self._corners.jacobians(self.X))[:, 0]) if C else np.ones(0)
        self.volume = self.sum(self.cellvol.sum())
        self._h_min = self._cell_size()  # now, collectively

    def update_geometry(self) -> None:
        """Cell vertices, quadrature, mass matrices and ``h_min`` from the mesh geometry (after a move)."""
        msh, C = self.msh, self.n_cells
        self.X = msh.geometry.x[msh.geometry.dofmaps[0][:C], : self.d].copy()  # (C, nv, d)
        if self.quad is None:
            self.quad = CellQuadrature(self.cell, self.X, 2 * self.degree + 3, self.basis)  # observables, projection
        else:
            self.quad.move(self.X)
        self._mass_matrices()
        self._h_min = None

    @property
    def h_min(self) -> float:
        """``min_cells d |K| / |dK|`` over all ranks (collective on first use after a move)."""
        if self._h_min is None:
            self._h_min = self._cell_size()
        return self._h_min

    def shape_quality(self) -> float:
        """``min_K min_corners det J_K(corner) / (longest edge of K)^d`` over all ranks (collective),
        the determinant signed relative to the cell's orientation at set-up.

        1 for a square, 0.5 for a right simplex; it reaches 0 when a cell
        degenerates (a quadrilateral whose corner angle closes, a flattened cell)
        and is negative for an inverted one.
        """
        e = self.edges
        longest = np.linalg.norm(self.X[:, e[:, 0]] - self.X[:, e[:, 1]], axis=2).max(axis=1)
        corner_det = (jacobian_det(self._corners.jacobians(self.X)) * self._orientation[:, None]).min(axis=1)
        q = float((corner_det / longest**self.d).min()) if self.n_cells else np.inf
        return self.allreduce(q, MPI.MIN)

    # ------------------------------------------------------------------ mass
    def _mass_matrices(self) -> None:
        q = self.quad
        det = q.wdet / q.weights[None, :]  # |det J| at the quadrature points
        self.det = det.mean(axis=1) if det.size else np.zeros(0)
        spread = np.abs(det - self.det[:, None]).max(axis=1) if det.size else np.zeros(0)
        # on a moving mesh every cell takes the dense path, so that the work per stage does not depend on the shape
        self.curved = np.arange(self.n_cells) if self.moving else np.nonzero(spread > 1e-12 * self.det)[0]
        self.cellint = self.det[:, None] * self.Mref.sum(axis=1)[None, :]  # int psi_i over the cell, (C, n)
        self.M_curved = np.einsum("cq,qi,qj->cij", q.wdet[self.curved], q.phi, q.phi)
        self.Minv_curved = np.linalg.inv(self.M_curved) if self.curved.size else self.M_curved
        if self.curved.size:
            self.cellint[self.curved] = self.M_curved.sum(axis=2)
        self.cellvol = self.cellint.sum(axis=1)

    def apply_mass(self, U: np.ndarray) -> np.ndarray:
        """``M U`` per cell (C, n)."""
        MU = self.det[:, None] * (U @ self.Mref)
        if self.curved.size:
            MU[self.curved] = np.einsum("cij,cj->ci", self.M_curved, U[self.curved])
        return MU

    def apply_mass_inverse(self, R: np.ndarray) -> np.ndarray:
        """``M^{-1} R`` per cell (C, n)."""
        U = (R @ self.Mref_inv) / self.det[:, None]
        if self.curved.size:
            U[self.curved] = np.einsum("cij,cj->ci", self.Minv_curved, R[self.curved])
        return U

    # ------------------------------------------------------------------ helpers
    def allreduce(self, x, op=MPI.SUM):
        """``x`` reduced over the ranks; on one rank ``x`` itself (no MPI call: ~20 us a stage)."""
        return x if self.comm.size == 1 else self.comm.allreduce(x, op=op)

    def sum(self, x):
        return self.allreduce(x, MPI.SUM)

    def mass(self, U: np.ndarray) -> float:
        return self.sum(float(np.einsum("ci,ci->", self.cellint, U)))

    def means(self, U: np.ndarray, which=slice(None)) -> np.ndarray:
        """Cell means of the cells ``which`` (U holds those cells' rows)."""
        return np.einsum("ci,ci->c", self.cellint[which], U) / self.cellvol[which]

    def values_at_quadrature(self, U: np.ndarray) -> np.ndarray:
        """``u`` at the observation quadrature points, (C, nq)."""
        return U @ self.quad.phi.T

    def _cell_size(self) -> float:
        """``min_cells d |K| / |dK|`` over all ranks (inradius for simplices)."""
        per = self._perimeter_vector
        per.array[:] = 0.0
        dolfinx.fem.assemble_vector(per.array, self._perimeter)
        per.scatter_reverse(dolfinx.la.InsertMode.add)
        perim = per.array[self._perimeter_dofs]
        h = self.d * self.cellvol / perim if self.n_cells else np.array([np.inf])
        return self.comm.allreduce(float(h.min()), op=MPI.MIN)
