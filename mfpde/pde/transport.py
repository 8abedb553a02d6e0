r"""Upwind DG transport operator with the mean-field velocity.

.. math::

    (\partial_t \rho, \psi) = (\rho v, \nabla\psi)
      - \sum_F \int_F \bigl((v\cdot n)^+ \rho^+ - (v\cdot n)^- \rho^-\bigr)[\psi],
    \qquad v = \sum_k c_k \nabla_\theta\phi(x_k;\cdot),\quad c_k = -\mathrm{lr}\, w_k r_k .

The velocity lives in the vector ``CG(p+1)`` space.  ``grad phi(x_k; .)`` is
evaluated once at its interpolation points (matrix ``G``, (points*d, K)); a
Runge-Kutta stage sets the velocity coefficients to ``G c``, so the expert is
never called inside the time loop.  The residual is assembled by DOLFINx
(FFCx kernels) with the quadrature degree of
:func:`.cells.transport_quadrature_degree` fixed in the form metadata, so the
positivity limiter knows the points the integrals use.
"""

from __future__ import annotations

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001
import dolfinx
import dolfinx.fem
import dolfinx.la
import ufl
from mpi4py import MPI

from mfpde.pde.cells import EXACT_TABLES, CellData, transport_quadrature_degree
from mfpde.pde.observables import expert_in_blocks


class TransportOperator:
    """``M^{-1}`` times the upwind transport residual, for the velocity ``G c`` (or a prescribed one).

    With ``moving=True`` the flux is that of the velocity relative to the mesh,
    ``v - w`` (``mesh_velocity``, see :mod:`.moving`), and :meth:`update_geometry`
    re-tabulates ``grad phi`` at the moved velocity nodes.
    """

    def __init__(self, cells: CellData, expert_at, K: int, velocity=None, moving: bool = False):
        msh, d, p = cells.msh, cells.d, cells.degree
        self.cells = cells
        self.expert_at, self.K, self.prescribed = expert_at, K, velocity
        self.W = W = dolfinx.fem.functionspace(msh, ("Lagrange", p + 1, (d,)))
        self.vel = dolfinx.fem.Function(W, name="velocity")
        self.G = self.grad_sq_max = None
        self.update_geometry()
        self._n_vel_own = W.dofmap.index_map.size_local * d

        self.stage = dolfinx.fem.Function(cells.V)  # the density a residual is evaluated at
        psi = ufl.TestFunction(cells.V)
        nrm = ufl.FacetNormal(msh)
        u, vel = self.stage, self.vel
        self.mesh_velocity = dolfinx.fem.Function(W, name="mesh_velocity") if moving else None
        if moving:
            vel = vel - self.mesh_velocity
        vn = ufl.dot(vel, nrm)
        un = (vn + abs(vn)) / 2
        md = {"quadrature_degree": transport_quadrature_degree(cells.cell_type, p)}
        L = (ufl.inner(u * vel, ufl.grad(psi)) * ufl.dx(metadata=md)
             - (un("+") * u("+") - un("-") * u("-")) * ufl.jump(psi) * ufl.dS(metadata=md))
        self._L = dolfinx.fem.form(L, form_compiler_options=EXACT_TABLES)
        self._b = dolfinx.la.vector(cells.V.dofmap.index_map, cells.V.dofmap.index_map_bs)

    def update_geometry(self) -> None:
        """The velocity table at the velocity space's nodes (at set-up, and after every move of the mesh)."""
        d, K = self.cells.d, self.K
        coords = self.W.tabulate_dof_coordinates()[:, :d]
        if self.prescribed is not None:
            v = np.asarray(self.prescribed(coords), dtype=np.float64).reshape(len(coords), d)
            self.vel.x.array[:] = v.reshape(-1)
            return
        grad = expert_in_blocks(self.expert_at, np.ascontiguousarray(coords), K, True)
        self.G = np.ascontiguousarray(grad.transpose(1, 2, 0).reshape(-1, K))
        if self.grad_sq_max is None:
            gsq = np.ascontiguousarray((grad * grad).sum(axis=2).max(axis=1) if grad.shape[1] else np.zeros(K))
            self.cells.comm.Allreduce(MPI.IN_PLACE, gsq, op=MPI.MAX)
            self.grad_sq_max = gsq  # max |grad phi_k|^2 over the velocity points at set-up, (K,)

    def set_coefficients(self, c: np.ndarray) -> None:
        """Velocity ``sum_k c_k grad phi_k`` (no-op for a prescribed velocity)."""
        if self.G is not None:
            # einsum, not BLAS gemv: a threaded BLAS on a busy machine costs more than it gains here
            self.vel.x.array[:] = np.einsum("mk,k->m", self.G, c)

    def vmax(self) -> float:
        """``max |v|`` (``max |v - w|`` on a moving mesh) over the velocity nodes, all ranks."""
        v = self.vel.x.array[: self._n_vel_own]
        if self.mesh_velocity is not None:
            v = v - self.mesh_velocity.x.array[: self._n_vel_own]
        v = v.reshape(-1, self.cells.d)
        vmax = float(np.sqrt((v * v).sum(axis=1)).max()) if v.size else 0.0
        return self.cells.allreduce(vmax, MPI.MAX)

    def residual(self, U: np.ndarray) -> np.ndarray:
        """The assembled residual ``b_i = (rho v, grad psi_i) - upwind flux`` per cell (C, n)."""
        f = self.stage
        f.x.array[self.cells.dofs] = U
        f.x.scatter_forward()
        b = self._b
        b.array[:] = 0.0
        dolfinx.fem.assemble_vector(b.array, self._L)
        b.scatter_reverse(dolfinx.la.InsertMode.add)
        return b.array[self.cells.dofs]

    def __call__(self, U: np.ndarray) -> np.ndarray:
        """``M^{-1} b(U)``: the time derivative of the transport part."""
        return self.cells.apply_mass_inverse(self.residual(U))
