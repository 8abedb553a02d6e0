r"""SIPG diffusion operator and the implicit solves ``(M + c A) x = r`` of the IMEX stages.

.. math::

    a(u, \psi) = \int \nabla u\cdot\nabla\psi
      - \sum_F \int_F \bigl(\{\nabla u\}\cdot[\psi n] + [u n]\cdot\{\nabla\psi\}\bigr)
      + \sum_F \int_F \frac{\alpha}{h_F} [u n]\cdot[\psi n],
    \qquad \alpha = 4 (p+1)(p+d),

the symmetric interior penalty discretization of ``-Laplace`` (no boundary
terms: the torus has none).  ``A 1 = 0`` and ``A`` is symmetric, so
``1^T A = 0`` and the implicit stages conserve mass up to the solve's
round-off.  ``M + c A`` (``c = dt a_ii tau``) is symmetric positive definite;
it is factorized once per distinct ``c`` (PETSc KSP ``preonly`` + Cholesky,
MUMPS, by default; override with ``petsc_options``) and the factorization is
kept for reuse (the last few values of ``c``).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001
import dolfinx
import dolfinx.fem
import dolfinx.fem.petsc
import ufl
from petsc4py import PETSc

from mfpde.errors import NonFiniteError
from mfpde.pde.cells import EXACT_TABLES, CellData

_SOLVER_COUNT = itertools.count()
DEFAULT_OPTIONS = {"ksp_type": "preonly", "pc_type": "cholesky", "pc_factor_mat_solver_type": "mumps"}
_KEEP = 4  # factorizations kept


class Diffusion:
    """``A`` (SIPG, assembled once), ``A U`` products and cached solves with ``M + c A``."""

    def __init__(self, cells: CellData, options: dict | None = None):
        self.cells = cells
        V, msh, p, d = cells.V, cells.msh, cells.degree, cells.d
        uu, psi = ufl.TrialFunction(V), ufl.TestFunction(V)
        nrm = ufl.FacetNormal(msh)
        hK = ufl.CellDiameter(msh)
        h_avg = (hK("+") + hK("-")) / 2
        alpha = dolfinx.fem.Constant(msh, 4.0 * (p + 1) * (p + d))
        a = (
            ufl.inner(ufl.grad(uu), ufl.grad(psi)) * ufl.dx
            - ufl.inner(ufl.avg(ufl.grad(uu)), ufl.jump(psi, nrm)) * ufl.dS
            - ufl.inner(ufl.jump(uu, nrm), ufl.avg(ufl.grad(psi))) * ufl.dS
            + alpha / h_avg * ufl.inner(ufl.jump(uu, nrm), ufl.jump(psi, nrm)) * ufl.dS
        )
        self.A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(a, form_compiler_options=EXACT_TABLES))
        self.A.assemble()
        # the same quadrature as the numpy mass (cells.quad), so both masses agree on any cell
        md = {"quadrature_degree": 2 * p + 3}
        self.M = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(uu * psi * ufl.dx(metadata=md),
                                                                    form_compiler_options=EXACT_TABLES))
        self.M.assemble()
        self.options = dict(DEFAULT_OPTIONS)
        self.options.update(options or {})
        self._solvers: OrderedDict[float, PETSc.KSP] = OrderedDict()
        self._x = dolfinx.fem.Function(V)
        self._b = dolfinx.fem.Function(V)
        self.factorizations = 0
        self.iterations = 0

    def apply(self, U: np.ndarray) -> np.ndarray:
        """``A U`` per cell (C, n)."""
        self._b.x.array[self.cells.dofs] = U
        self.A.mult(self._b.x.petsc_vec, self._x.x.petsc_vec)
        return self._x.x.array[self.cells.dofs].copy()

    def _solver(self, coef: float) -> PETSc.KSP:
        ksp = self._solvers.get(coef)
        if ksp is not None:
            self._solvers.move_to_end(coef)
            return ksp
        S = self.A.duplicate(copy=True)
        S.scale(coef)
        S.axpy(1.0, self.M, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        prefix = f"mfpde_diffusion_{next(_SOLVER_COUNT)}_"
        opts = PETSc.Options()
        for k, v in self.options.items():
            opts[prefix + k] = v
        ksp = PETSc.KSP().create(self.cells.comm)
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(S)
        ksp.setFromOptions()
        ksp.setUp()  # the factorization
        for k in self.options:
            del opts[prefix + k]
        self.factorizations += 1
        self._solvers[coef] = ksp
        while len(self._solvers) > _KEEP:
            _, old = self._solvers.popitem(last=False)
            old.destroy()
        return ksp

    def solve(self, coef: float, rhs: np.ndarray, t: float) -> np.ndarray:
        """``x`` with ``(M + coef A) x = rhs`` (rhs per cell, owned)."""
        ksp = self._solver(coef)
        self._b.x.array[self.cells.dofs] = rhs
        ksp.solve(self._b.x.petsc_vec, self._x.x.petsc_vec)
        self.iterations += ksp.getIterationNumber()
        reason = ksp.getConvergedReason()
        if reason < 0:
            raise NonFiniteError(f"pde: the diffusion solve failed (PETSc reason {reason}) at t = {t:.6g}")
        return self._x.x.array[self.cells.dofs].copy()
