r"""Finite-element solver of the mean-field equation on the torus (DESIGN section 2).

.. math::

    \partial_t \rho + \nabla\cdot(\rho v) = \tau \Delta\rho, \qquad
    v = -\mathrm{lr} \sum_k w_k r_k \nabla_\theta \phi(x_k;\cdot), \qquad
    r_k = \int \phi(x_k;\theta)\rho(\theta)\,d\theta - y_k .

Discretization
--------------
* Space: discontinuous Lagrange ``DG(p)``, ``p`` in {1, 2}, on the exactly
  periodic torus mesh of :mod:`mfpde.torus` (seam facets are interior facets).
  Transport in weak form with the upwind flux,
  ``(d_t rho, psi) = (rho v, grad psi) - sum_F int_F (v.n)^+ rho^+ - (v.n)^- rho^-) [psi]``.
* Velocity: interpolant in the vector ``CG(p+1)`` space.  ``grad phi(x_k; .)``
  is evaluated once at its interpolation points (matrix ``G``, (points*d, K));
  at every Runge-Kutta stage the velocity coefficients are ``G c`` with
  ``c_k = -lr w_k r_k`` from the current stage density.  The expert is never
  called inside the time loop.
* Observables: ``F = B^T u`` with ``B[j, k] = int phi(x_k; .) psi_j`` computed
  once by quadrature (degree ``2p+3``) with exact ``phi`` values; Fourier
  moments likewise with exact ``exp(i w.theta)``.  Identical on all ranks
  (MPI allreduce).
* Time: explicit SSP-RK3; ``dt = cfl * h_min / max|v|`` recomputed every step,
  ``h_min = min_cells d |K| / |dK|`` (the inradius for simplices).  Cell-local
  mass matrices are inverted exactly (dense per-cell inverses, numpy).
* Positivity: Zhang-Shu scaling limiter after every stage: each cell is scaled
  toward its mean until its minimum nodal value is >= 0; the mean, hence the
  mass, is untouched.  For ``p = 1`` the cell means stay non-negative for
  ``cfl <= 1/(d+1)``; a stage producing a negative cell mean is rejected and the
  step retried with half the time step (never silently).
* Diffusion (``tau > 0``): Strang splitting, half step of diffusion, full
  transport step, half step of diffusion.  Each diffusion half step is the
  L-stable two-stage SDIRK2 (second order) on the symmetric interior penalty
  (SIPG) discretization, solved with PETSc KSP (default CG + Jacobi, relative
  tolerance 1e-13; override with ``petsc_options``).  SIPG on a torus has
  ``1^T A = 0``, so the solve conserves mass up to the solver tolerance; the
  remaining round-off-level mass defect (<= 1e-13) is removed by a constant
  shift, then the positivity limiter is applied (SIPG is not monotone).
* Initial density: L2 projection of ``rho0`` onto ``DG(p)`` (exact per-cell
  mass inverse, quadrature degree ``2p+3``), then the positivity limiter, then
  scaled to mass 1 (``normalize=True``, the default; the factor is kept in
  ``self.normalization``).

Non-finite values raise :class:`mfpde.errors.NonFiniteError` and keep the last
good state; ``d > 3`` raises :class:`mfpde.errors.CaseError`.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np

from .. import fem  # noqa: F401, I001  (the DOLFINx provider, imported before dolfinx / petsc4py)
import basix
import dolfinx
import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.la
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from ..errors import CaseError, NonFiniteError
from ..flow import ExpertAt
from ..metrics import moment_freqs
from ..torus import TorusMesh, check_dimension, load_torus_mesh, torus_mesh  # noqa: F401

__all__ = ["MeanFieldSolver", "TorusMesh", "torus_mesh", "load_torus_mesh"]

_SOLVER_COUNT = itertools.count()



class _CellQuadrature:
    """Physical quadrature points and weights of the owned cells (numpy)."""

    def __init__(self, cell: basix.CellType, X: np.ndarray, degree: int, basis):
        qp, qw = basix.make_quadrature(cell, degree)
        cmap = basix.create_element(basix.ElementFamily.P, cell, 1, basix.LagrangeVariant.equispaced)
        tab = cmap.tabulate(1, qp)  # (1+d, nq, nv, 1)
        N, dN = tab[0, :, :, 0], tab[1:, :, :, 0]
        self.points = np.einsum("qa,cai->cqi", N, X)  # (C, nq, d)
        J = np.einsum("cai,jqa->cqij", X, dN)  # (C, nq, d, d)
        self.wdet = qw[None, :] * np.abs(np.linalg.det(J))  # (C, nq)
        self.phi = basis.tabulate(0, qp)[0, :, :, 0]  # (nq, ndofs)


class MeanFieldSolver:
    """DG solver of the mean-field continuity equation on a torus mesh (see module doc).

    Parameters
    ----------
    mesh : TorusMesh from :func:`mfpde.torus.torus_mesh` / :func:`load_torus_mesh`.
    expert_at : ``theta (M, d) -> (phi (K, M), grad (K, M, d))`` at the data points.
    y, w : targets and weights (K,).
    rho0 : ``theta (M, d) -> (M,)`` initial density (projected, limited, normalised).
    lr, tau : learning rate and noise temperature.
    degree : DG degree (1 or 2).  cfl : Courant number (see module doc).
    freqs : (F, d) integer frequencies of the Fourier moments (default
        :func:`mfpde.metrics.moment_freqs`).
    petsc_options : dict of PETSc options for the diffusion solve.
    velocity : optional prescribed velocity ``theta (M, d) -> (M, d)``
        replacing the mean-field one (exact-solution tests).
    """

    def __init__(
        self,
        mesh: TorusMesh,
        expert_at: ExpertAt | None,
        y,
        w,
        rho0: Callable[[np.ndarray], np.ndarray],
        lr: float,
        tau: float = 0.0,
        degree: int = 1,
        cfl: float = 0.25,
        freqs=None,
        petsc_options: dict | None = None,
        velocity: Callable[[np.ndarray], np.ndarray] | None = None,
        normalize: bool = True,
    ):
        check_dimension(mesh.d)
        if degree not in (1, 2):
            raise CaseError("pde.degree", f"the DG degree must be 1 or 2, got {degree!r}")
        if not (np.isfinite(cfl) and cfl > 0):
            raise CaseError("pde.cfl", f"must be a positive number, got {cfl!r}")
        if not (np.isfinite(tau) and tau >= 0):
            raise CaseError("dynamics.tau", f"must be >= 0, got {tau!r}")
        if not np.isfinite(lr):
            raise CaseError("dynamics.lr", f"must be finite, got {lr!r}")
        if expert_at is None and velocity is None:
            raise ValueError("give expert_at (mean-field velocity) or a prescribed velocity")
        self.torus = mesh
        self.msh = msh = mesh.mesh
        self.comm = msh.comm
        self.d = d = mesh.d
        self.degree = p = int(degree)
        self.lr = float(lr)
        self.tau = float(tau)
        self.cfl = float(cfl)
        self.y = np.asarray(y, dtype=np.float64).reshape(-1)
        self.w = np.asarray(w, dtype=np.float64).reshape(-1)
        self.K = K = self.y.size
        self.expert_at = expert_at
        self.prescribed = velocity is not None
        self.t = 0.0
        self.steps = 0
        self.rejected_steps = 0
        self._dtype = np.float64

        # ---- spaces and per-cell (owned) data -------------------------------------
        self.V = V = dolfinx.fem.functionspace(msh, ("DG", p))
        self.function = dolfinx.fem.Function(V, name="rho")
        self._stage = dolfinx.fem.Function(V)  # input of a Runge-Kutta stage
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
        self.X = msh.geometry.x[msh.geometry.dofmaps[0][:C], :d].copy()  # (C, nv, d)
        self.original_cell_index = np.asarray(topo.original_cell_index[:C], dtype=np.int64)

        q = _CellQuadrature(self.cell, self.X, 2 * p + 3, self.basis)
        self._quad = q
        M = np.einsum("cq,qi,qj->cij", q.wdet, q.phi, q.phi)
        self.Mcell = M
        self.Minv = np.linalg.inv(M) if C else M
        self.cellint = M.sum(axis=2)  # int psi_i over the cell, (C, n)
        self.cellvol = q.wdet.sum(axis=1)
        self.volume = self._sum(self.cellvol.sum())
        self.h_min = self._cell_size()

        # ---- observables: B (C, n, K), moments E (C, n, F) ---------------------------
        self.freqs = moment_freqs(d) if freqs is None else np.asarray(freqs, dtype=np.int64).reshape(-1, d)
        pts = q.points.reshape(-1, d)
        phase = np.exp(1j * (pts @ self.freqs.T)).reshape(C, -1, len(self.freqs))
        self.E = np.einsum("cq,qi,cqf->cif", q.wdet, q.phi, phase)
        if expert_at is not None:
            phi_q, _ = expert_at(pts) if C else (np.zeros((K, 0)), None)
            phi_q = np.asarray(phi_q, dtype=np.float64).reshape(K, C, -1)
            self.B = np.einsum("cq,qi,kcq->cik", q.wdet, q.phi, phi_q)
        else:
            self.B = np.zeros((C, self.dofs.shape[1], K))

        # ---- velocity space: vector CG(p+1) ---------------------------------------
        self.W = W = dolfinx.fem.functionspace(msh, ("Lagrange", p + 1, (d,)))
        self.vel = dolfinx.fem.Function(W, name="velocity")
        coords = W.tabulate_dof_coordinates()[:, :d]
        if velocity is not None:
            v = np.asarray(velocity(coords), dtype=np.float64).reshape(len(coords), d)
            self.vel.x.array[:] = v.reshape(-1)
            self.G = None
        else:
            _, grad = expert_at(coords)
            grad = np.asarray(grad, dtype=np.float64).reshape(K, len(coords), d)
            self.G = np.ascontiguousarray(grad.transpose(1, 2, 0).reshape(-1, K))
        self._n_vel_own = W.dofmap.index_map.size_local * d

        # ---- transport form -------------------------------------------------------
        psi = ufl.TestFunction(V)
        nrm = ufl.FacetNormal(msh)
        u, vel = self._stage, self.vel
        vn = ufl.dot(vel, nrm)
        un = (vn + abs(vn)) / 2
        L = ufl.inner(u * vel, ufl.grad(psi)) * ufl.dx - (un("+") * u("+") - un("-") * u("-")) * ufl.jump(psi) * ufl.dS
        self._L = dolfinx.fem.form(L)
        self._b = dolfinx.la.vector(V.dofmap.index_map, V.dofmap.index_map_bs)
        self._diss_form = dolfinx.fem.form(ufl.inner(vel, vel) * self.function * ufl.dx)

        # ---- diffusion ------------------------------------------------------------
        self._ksp = None
        if self.tau > 0:
            self._setup_diffusion(petsc_options or {})

        # ---- initial density ----------------------------------------------------------
        r0 = np.asarray(rho0(pts), dtype=np.float64).reshape(C, -1)
        rhs = np.einsum("cq,qi,cq->ci", q.wdet, q.phi, r0)
        U = np.einsum("cij,cj->ci", self.Minv, rhs)
        U = self._limit(U)
        mass = self._mass(U)
        if not np.isfinite(mass) or mass <= 0:
            raise CaseError("init", f"the initial density has mass {mass} (must be positive and finite)")
        self.normalization = 1.0 / mass if normalize else 1.0
        self.U = U * self.normalization
        self._write(self.U)

    # ------------------------------------------------------------------ helpers
    def _sum(self, x):
        return self.comm.allreduce(x, op=MPI.SUM)

    def _cell_size(self) -> float:
        """``min_cells d |K| / |dK|`` over all ranks (inradius for simplices)."""
        V0 = dolfinx.fem.functionspace(self.msh, ("DG", 0))
        v0 = ufl.TestFunction(V0)
        per = dolfinx.fem.assemble_vector(dolfinx.fem.form((v0("+") + v0("-")) * ufl.dS))
        per.scatter_reverse(dolfinx.la.InsertMode.add)
        perim = per.array[V0.dofmap.list[: self.n_cells, 0]]
        h = self.d * self.cellvol / perim if self.n_cells else np.array([np.inf])
        return self.comm.allreduce(float(h.min()), op=MPI.MIN)

    def _write(self, U: np.ndarray, f: dolfinx.fem.Function | None = None) -> None:
        f = self.function if f is None else f
        f.x.array[self.dofs] = U
        f.x.scatter_forward()

    def _mass(self, U: np.ndarray) -> float:
        return self._sum(float(np.einsum("ci,ci->", self.cellint, U)))

    def _outputs(self, U: np.ndarray) -> np.ndarray:
        return self._sum(np.einsum("cik,ci->k", self.B, U))

    def _set_velocity(self, U: np.ndarray) -> np.ndarray | None:
        if self.prescribed:
            return None
        F = self._outputs(U)
        c = -self.lr * self.w * (F - self.y)
        # einsum, not BLAS gemv: a threaded BLAS on a busy machine costs more than it gains here
        self.vel.x.array[:] = np.einsum("mk,k->m", self.G, c)
        return F

    def _vmax(self) -> float:
        v = self.vel.x.array[: self._n_vel_own].reshape(-1, self.d)
        vmax = float(np.sqrt((v * v).sum(axis=1)).max()) if v.size else 0.0
        return self.comm.allreduce(vmax, op=MPI.MAX)

    def _means(self, U: np.ndarray) -> np.ndarray:
        return np.einsum("ci,ci->c", self.cellint, U) / self.cellvol

    def _limit(self, U: np.ndarray) -> np.ndarray:
        """Zhang-Shu scaling toward the cell mean: nodal min >= 0, mean kept."""
        if not U.size:
            return U
        umin = U.min(axis=1)
        bad = umin < 0
        if not np.any(bad):
            return U
        m = np.einsum("ci,ci->c", self.cellint[bad], U[bad]) / self.cellvol[bad]
        mpos = np.maximum(m, 0.0)
        denom = mpos - umin[bad]
        theta = np.where(denom > 0, mpos / np.where(denom > 0, denom, 1.0), 0.0)
        theta = np.clip(theta, 0.0, 1.0)
        U = U.copy()
        # the scaled minimum is exactly 0 up to round-off (~1e-19): clip that round-off
        U[bad] = np.maximum(m[:, None] + theta[:, None] * (U[bad] - m[:, None]), 0.0)
        return U

    def _rhs(self, U: np.ndarray) -> np.ndarray:
        """``M^{-1}`` times the transport residual at state U (velocity already set)."""
        self._write(U, self._stage)
        b = self._b
        b.array[:] = 0.0
        dolfinx.fem.assemble_vector(b.array, self._L)
        b.scatter_reverse(dolfinx.la.InsertMode.add)
        return np.einsum("cij,cj->ci", self.Minv, b.array[self.dofs])

    def _min_mean_ok(self, U: np.ndarray, scale: float) -> bool:
        mmin = float(self._means(U).min()) if U.size else np.inf
        mmin = self.comm.allreduce(mmin if np.isfinite(mmin) else -np.inf, op=MPI.MIN)
        if mmin == -np.inf and not self._all_finite(U):
            self._write(self.U)
            raise NonFiniteError(
                f"pde: non-finite density in a Runge-Kutta stage from t = {self.t:.6g}; the last finite state is kept"
            )
        return mmin >= -1e-12 * scale

    def _all_finite(self, U: np.ndarray) -> bool:
        return bool(self.comm.allreduce(bool(np.all(np.isfinite(U))), op=MPI.LAND))

    # ------------------------------------------------------------------ diffusion
    def _setup_diffusion(self, options: dict) -> None:
        V, msh, p = self.V, self.msh, self.degree
        uu, psi = ufl.TrialFunction(V), ufl.TestFunction(V)
        nrm = ufl.FacetNormal(msh)
        hK = ufl.CellDiameter(msh)
        h_avg = (hK("+") + hK("-")) / 2
        alpha = dolfinx.fem.Constant(msh, 4.0 * (p + 1) * (p + self.d))
        a = (
            ufl.inner(ufl.grad(uu), ufl.grad(psi)) * ufl.dx
            - ufl.inner(ufl.avg(ufl.grad(uu)), ufl.jump(psi, nrm)) * ufl.dS
            - ufl.inner(ufl.jump(uu, nrm), ufl.avg(ufl.grad(psi))) * ufl.dS
            + alpha / h_avg * ufl.inner(ufl.jump(uu, nrm), ufl.jump(psi, nrm)) * ufl.dS
        )
        self._A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(a))
        self._A.assemble()
        self._Mp = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(uu * psi * ufl.dx))
        self._Mp.assemble()
        self._S = self._A.duplicate(copy=True)
        self._S_coef = None
        prefix = f"mfpde_diffusion_{next(_SOLVER_COUNT)}_"
        opts = PETSc.Options()
        defaults = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-13, "ksp_atol": 1e-300, "ksp_max_it": 20000}
        defaults.update(options)
        for k, v in defaults.items():
            opts[prefix + k] = v
        ksp = PETSc.KSP().create(self.comm)
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(self._S)
        ksp.setFromOptions()
        for k in defaults:
            del opts[prefix + k]
        self._ksp = ksp
        self._xf = dolfinx.fem.Function(V)
        self._bf = dolfinx.fem.Function(V)
        self._yf = dolfinx.fem.Function(V)
        self.diffusion_iterations = 0

    def _solve(self, coef: float, rhs_cells: np.ndarray) -> np.ndarray:
        """Solve ``(M + coef A) x = rhs`` (rhs given per cell, owned)."""
        if self._S_coef != coef:
            self._A.copy(self._S, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            self._S.scale(coef)
            self._S.axpy(1.0, self._Mp, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
            self._ksp.setOperators(self._S)
            self._S_coef = coef
        self._bf.x.array[self.dofs] = rhs_cells
        self._ksp.solve(self._bf.x.petsc_vec, self._xf.x.petsc_vec)
        reason = self._ksp.getConvergedReason()
        self.diffusion_iterations += self._ksp.getIterationNumber()
        if reason < 0:
            raise NonFiniteError(f"pde: the diffusion solve did not converge (PETSc reason {reason}) at t = {self.t:.6g}")
        return self._xf.x.array[self.dofs].copy()

    def _diffuse(self, U: np.ndarray, h: float) -> np.ndarray:
        """SDIRK2 (L-stable, order 2) for ``M dU/dt = -tau A U`` over a step h."""
        g = 1.0 - 1.0 / math.sqrt(2.0)
        mass0 = self._mass(U)
        MU = np.einsum("cij,cj->ci", self.Mcell, U)
        coef = g * h * self.tau
        U1 = self._solve(coef, MU)
        self._bf.x.array[self.dofs] = U1
        self._A.mult(self._bf.x.petsc_vec, self._yf.x.petsc_vec)
        AU1 = self._yf.x.array[self.dofs]
        U2 = self._solve(coef, MU - (1.0 - g) * h * self.tau * AU1)
        U2 = U2 - (self._mass(U2) - mass0) / self.volume  # round-off mass defect, constant shift
        return self._limit(U2)

    # ------------------------------------------------------------------ stepping
    def _transport(self, U0: np.ndarray, dt: float) -> np.ndarray | None:
        """One SSP-RK3 step; None if a stage produced a negative cell mean."""
        scale = float(np.abs(U0).max()) if U0.size else 0.0
        scale = self.comm.allreduce(scale, op=MPI.MAX)
        U = U0
        for a0, a1 in ((0.0, 1.0), (0.75, 0.25), (1.0 / 3.0, 2.0 / 3.0)):
            if U is not U0:
                self._set_velocity(U)
            Un = U + dt * self._rhs(U)
            if a0:
                Un = a0 * U0 + a1 * Un
            if not self._min_mean_ok(Un, scale):
                return None
            U = self._limit(Un)
        return U

    def stable_dt(self) -> float:
        """CFL time step at the current state (``inf`` if the velocity vanishes)."""
        self._set_velocity(self.U)
        vmax = self._vmax()
        if not np.isfinite(vmax):
            self._write(self.U)
            raise NonFiniteError(
                f"pde: non-finite velocity at t = {self.t:.6g} (expert gradients or residuals); "
                "the last finite state is kept"
            )
        return self.cfl * self.h_min / vmax if vmax > 0 else math.inf

    def step(self, dt_max: float = math.inf) -> float:
        """One CFL-adaptive step (Strang splitting if tau > 0); returns the dt used."""
        dt = min(self.stable_dt(), dt_max)
        if not math.isfinite(dt):
            dt = self.h_min  # zero velocity and no cap: any step is exact for transport
        if dt <= 0:
            raise ValueError(f"step: dt_max must be positive, got {dt_max}")
        U0 = self.U
        for _ in range(30):
            U = U0
            if self.tau > 0:
                U = self._diffuse(U, dt / 2)
                self._set_velocity(U)
            Ut = self._transport(U, dt)
            if Ut is not None:
                U = Ut
                break
            self.rejected_steps += 1
            dt_cfl = dt
            dt = dt / 2
            self._set_velocity(U0)
        else:  # pragma: no cover
            raise NonFiniteError(f"pde: no positive step found at t = {self.t:.6g} (last dt {dt_cfl:.3g})")
        if self.tau > 0:
            U = self._diffuse(U, dt / 2)
        if not self._all_finite(U):
            self._write(self.U)
            raise NonFiniteError(
                f"pde: non-finite density after the step from t = {self.t:.6g} (dt = {dt:.3g}); "
                "the last finite state is kept"
            )
        self.U = U
        self._write(U)
        self.t += dt
        self.steps += 1
        return dt

    def advance(self, t_target: float, callback: Callable[["MeanFieldSolver"], None] | None = None) -> None:
        """Step until exactly ``t_target`` (the last step is shortened)."""
        while self.t < t_target:
            remaining = t_target - self.t
            if remaining <= 1e-14 * max(1.0, abs(t_target)):
                break
            dt = self.step(dt_max=remaining)
            if dt >= remaining:
                self.t = float(t_target)
            if callback is not None:
                callback(self)
        self.t = float(t_target) if abs(self.t - t_target) <= 1e-12 * max(1.0, abs(t_target)) else self.t

    # ------------------------------------------------------------------ output
    def observables(self) -> dict:
        """F (K,), risk, mass, min_rho, moments (F,) complex, dissipation, t: same on all ranks."""
        U = self.U
        F = self._outputs(U)
        r = F - self.y
        mn = float(U.min()) if U.size else np.inf
        moments = self._sum(np.einsum("cif,ci->f", self.E, U))
        self._set_velocity(U)
        diss = self._sum(dolfinx.fem.assemble_scalar(self._diss_form))
        return {
            "t": self.t,
            "F": F,
            "risk": float(0.5 * np.sum(self.w * r * r)),
            "mass": self._mass(U),
            "min_rho": self.comm.allreduce(mn, op=MPI.MIN),
            "moments": moments,
            "dissipation": diss / self.lr if self.lr else 0.0,  # lr int |grad Psi|^2 rho
        }

    def l2_error(self, exact: Callable[[np.ndarray], np.ndarray]) -> float:
        """``||rho_h - exact||_{L2(T^d)}`` with quadrature of degree ``2p+3`` (collective)."""
        q = self._quad
        uq = np.einsum("qi,ci->cq", q.phi, self.U)
        ex = np.asarray(exact(q.points.reshape(-1, self.d)), dtype=np.float64).reshape(uq.shape)
        return math.sqrt(self._sum(float(np.sum(q.wdet * (uq - ex) ** 2))))

    def gather_cellwise(self) -> dict | None:
        """The density per cell on rank 0, ordered by the global input cell index.

        Keys: ``cell_type``, ``degree``, ``vertices`` (C, nv, d) unwrapped per
        cell, ``values`` (C, ndofs_cell) nodal values at ``reference_points``
        (ndofs_cell, d) of the reference cell (DOLFINx / Basix conventions:
        interval [0,1], triangle/tet unit simplex, quad/hex unit box), ``t``,
        ``period``.  None on other ranks.
        """
        parts = self.comm.gather((self.original_cell_index, self.X, self.U), root=0)
        if self.comm.rank != 0:
            return None
        idx = np.concatenate([a[0] for a in parts])
        order = np.argsort(idx, kind="stable")
        return {
            "cell_type": self.torus.cell_type,
            "degree": self.degree,
            "vertices": np.concatenate([a[1] for a in parts])[order],
            "values": np.concatenate([a[2] for a in parts])[order],
            "reference_points": np.asarray(self.basis.points, dtype=np.float64),
            "t": self.t,
            "period": self.torus.period,
        }

    def set_cellwise(self, values, t: float) -> None:
        """Restore a state written by :meth:`gather_cellwise` (values on rank 0), collective."""
        values = self.comm.bcast(np.asarray(values, dtype=np.float64) if self.comm.rank == 0 else None, root=0)
        if values.shape != (self.n_cells_global, self.dofs.shape[1]):
            raise ValueError(f"set_cellwise: values have shape {values.shape}, expected {(self.n_cells_global, self.dofs.shape[1])}")
        self.U = values[self.original_cell_index].copy()
        self._write(self.U)
        self.t = float(self.comm.bcast(t, root=0))

    @property
    def num_dofs(self) -> int:
        return self.n_dofs_global
