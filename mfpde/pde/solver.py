r"""The mean-field solver: DG(p) upwind transport, positivity limiter, RK / IMEX time stepping.

.. math::

    \partial_t \rho + \nabla\cdot(\rho v) = \tau \Delta\rho, \qquad
    v = -\mathrm{lr} \sum_k w_k r_k \nabla_\theta \phi(x_k;\cdot), \qquad
    r_k = \int \phi(x_k;\theta)\rho(\theta)\,d\theta - y_k .

Pieces: :mod:`.cells` (space, mass), :mod:`.transport` (upwind operator),
:mod:`.limiter` (Zhang-Shu), :mod:`.diffusion` (SIPG, factorized solves),
:mod:`.stepping` (SSP-RK3, SSP-RK(10,4), IMEX ARS(4,4,3)),
:mod:`.observables`.

Time step: ``dt = C_ssp * cfl * 3 h_min / ((2p + 1) max|v|)`` with ``C_ssp``
the scheme's SSP coefficient (1 for ssprk3 and ars443, 6 for ssprk104) and
``h_min = min d |K| / |dK|``; for ``p = 1`` and ssprk3 this is ``cfl h_min /
max|v|``.  As the velocity vanishes near a stationary state this step would
grow without bound while the residuals still evolve (``dr/dt = -lr Theta W
r``), so ``dt`` is also capped by ``2 cfl / (lr sum_k w_k max|grad phi_k|^2)``
(an accuracy bound on the residual dynamics, ``lr |Theta W| dt <= 1/2`` at
the default ``cfl = 1/4``).  On a moving mesh ``max|v|`` is ``max|v - w|``
(the flux is relative to the mesh) and, while the mesh moves, ``dt <= 2 cfl /
max |w_a - w_b| / |X_a - X_b|`` over the cells' edges (a cell's shape changes
by a bounded fraction per step; see :mod:`.moving`).

Initial density: L2 projection of ``rho0`` onto DG(p), using
``rho0.cell_quadrature`` when the density offers it (exact for piecewise
polynomial densities), otherwise a quadrature of degree ``2p+3`` of the
callable; then the limiter, then scaled to mass 1 (``normalize=True``; the
factor is kept in ``normalization``).

Non-finite values raise :class:`mfpde.errors.NonFiniteError` and keep the last
good state; ``d > 3`` raises :class:`mfpde.errors.CaseError`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001  (the DOLFINx provider, imported before dolfinx / petsc4py)
import dolfinx
import dolfinx.fem
import ufl
from mpi4py import MPI

from mfpde.config.rules import check_mesh_motion, resolve_time_scheme
from mfpde.errors import CaseError, NonFiniteError
from mfpde.model.moments import moment_freqs
from mfpde.model.velocity import ExpertAt
from mfpde.pde import stepping
from mfpde.pde.cells import CellData
from mfpde.pde.diffusion import Diffusion
from mfpde.pde.limiter import PositivityLimiter
from mfpde.pde.moving import QUALITY_FLOOR, LagrangianMesh
from mfpde.pde.observables import Observables
from mfpde.pde.torus import TorusMesh, check_dimension
from mfpde.pde.transport import TransportOperator

_CHUNK = 4096


class MeanFieldSolver:
    """DG solver of the mean-field continuity equation on a torus mesh (see module doc).

    Parameters
    ----------
    mesh : TorusMesh from :func:`mfpde.pde.torus.torus_mesh` / :func:`load_torus_mesh`.
    expert_at : ``theta (M, d) -> (phi (K, M), grad (K, M, d))`` at the data points.
    y, w : targets and weights (K,).
    rho0 : ``theta (M, d) -> (M,)`` initial density (projected, limited, normalised);
        may offer ``cell_quadrature`` (see module doc).
    lr, tau : learning rate and noise temperature.
    degree : DG degree, 1..6 on intervals and boxes, 1..4 on simplices.
    cfl : Courant number (see module doc).
    freqs : (F, d) integer frequencies of the Fourier moments (default
        :func:`mfpde.model.moments.moment_freqs`).
    petsc_options : PETSc options of the implicit diffusion solves
        (default preonly + Cholesky, MUMPS).
    velocity : optional prescribed velocity ``theta (M, d) -> (M, d)``
        replacing the mean-field one (exact-solution tests).
    time_scheme : ``auto`` (ssprk104 if tau = 0, ars443 if tau > 0), ``ssprk3``,
        ``ssprk104`` or ``ars443``.
    mesh_motion : ``fixed``, or ``lagrangian`` (vertices carried by the flow,
        ALE fluxes, see :mod:`.moving`; tau = 0 only).
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
        time_scheme: str = "auto",
        mesh_motion: str = "fixed",
    ):
        check_dimension(mesh.d)
        if not (np.isfinite(cfl) and cfl > 0):
            raise CaseError("pde.cfl", f"must be a positive number, got {cfl!r}")
        if not (np.isfinite(tau) and tau >= 0):
            raise CaseError("dynamics.tau", f"must be >= 0, got {tau!r}")
        if not np.isfinite(lr):
            raise CaseError("dynamics.lr", f"must be finite, got {lr!r}")
        if expert_at is None and velocity is None:
            raise ValueError("give expert_at (mean-field velocity) or a prescribed velocity")
        self.time_scheme = resolve_time_scheme(time_scheme, float(tau))
        moving = check_mesh_motion(mesh_motion, float(tau))
        self.mesh_motion = mesh_motion
        self.mesh_frozen_at = None  # a Lagrangian mesh: the time it stopped moving (see .moving)
        self.torus = mesh
        self.cells = cells = CellData(mesh, degree, moving=moving)
        self.msh, self.comm, self.d, self.degree = cells.msh, cells.comm, cells.d, cells.degree
        self.V = cells.V
        self.lr = float(lr)
        self.tau = float(tau)
        self.cfl = float(cfl)
        self.y = np.asarray(y, dtype=np.float64).reshape(-1)
        self.w = np.asarray(w, dtype=np.float64).reshape(-1)
        self.K = self.y.size
        self.prescribed = velocity is not None
        self.t = 0.0
        self.steps = 0
        self.rejected_steps = 0
        self.mean_fixes = 0
        self._scale = 1.0  # max |U| at the start of the step: the tolerance of the stage check
        self.function = dolfinx.fem.Function(cells.V, name="rho")

        self.freqs = moment_freqs(self.d) if freqs is None else np.asarray(freqs, dtype=np.int64).reshape(-1, self.d)
        self.obs = Observables(cells, expert_at, self.K, self.freqs)
        self.transport = TransportOperator(cells, expert_at, self.K, velocity, moving=moving)
        self.mover = LagrangianMesh(cells, expert_at, self.K, velocity) if moving else None
        self.limiter = PositivityLimiter(cells)
        self.diffusion = Diffusion(cells, petsc_options) if self.tau > 0 else None
        self._diss_form = dolfinx.fem.form(ufl.inner(self.transport.vel, self.transport.vel) * self.function * ufl.dx)

        U = self.limiter(self._project(rho0))
        mass = cells.mass(U)
        if not np.isfinite(mass) or mass <= 0:
            raise CaseError("init", f"the initial density has mass {mass} (must be positive and finite)")
        self.normalization = 1.0 / mass if normalize else 1.0
        self.U = U * self.normalization
        self._write(self.U)

    # ------------------------------------------------------------------ set-up
    def _project(self, rho0) -> np.ndarray:
        """L2 projection of rho0 (``rho0.cell_quadrature`` when offered)."""
        c = self.cells
        if hasattr(rho0, "cell_quadrature"):
            ref, wts = rho0.cell_quadrature(c.cell_type, c.X, c.degree)
            ref, wts = np.asarray(ref, dtype=np.float64), np.asarray(wts, dtype=np.float64)
            rhs = np.empty(c.dofs.shape)
            for s in range(0, c.n_cells, _CHUNK):
                r = ref[s : s + _CHUNK]
                tab = c.basis.tabulate(0, r.reshape(-1, c.d))[0, :, :, 0].reshape(r.shape[0], r.shape[1], -1)
                rhs[s : s + _CHUNK] = np.einsum("cq,cqi->ci", wts[s : s + _CHUNK], tab)
        else:
            q = c.quad
            r0 = np.asarray(rho0(q.points.reshape(-1, c.d)), dtype=np.float64).reshape(c.n_cells, -1)
            rhs = (q.wdet * r0) @ q.phi
        return c.apply_mass_inverse(rhs)

    # ------------------------------------------------------------------ helpers
    def _sum(self, x):
        return self.cells.sum(x)

    def _write(self, U: np.ndarray) -> None:
        self.function.x.array[self.cells.dofs] = U
        self.function.x.scatter_forward()

    def _set_velocity(self, U: np.ndarray) -> None:
        c = None
        if not self.prescribed:
            F = self.obs.outputs(U)
            c = -self.lr * self.w * (F - self.y)
            self.transport.set_coefficients(c)
        if self.mover is not None:
            self._vertex_velocity = self.mover.velocity(c)
            self.mover.set_mesh_velocity(self.transport.mesh_velocity, self._vertex_velocity)

    # a moving mesh: the Runge-Kutta unknowns are Z = (M(X) U, X), see .moving
    def _move_to(self, P: np.ndarray) -> None:
        if np.array_equal(P, self.mover.P):
            return
        self.mover.set_positions(P)
        self.cells.update_geometry()
        self.obs.update_geometry()
        self.transport.update_geometry()

    def _pack(self, U: np.ndarray) -> np.ndarray:
        return np.concatenate([self.cells.apply_mass(U).ravel(), self.mover.P.ravel()])

    def _unpack(self, Z: np.ndarray) -> np.ndarray:
        n = self.U.size
        if not self.mover.frozen:  # (a frozen mesh: the positions' round-off must not trigger geometry updates)
            self._move_to(Z[n:].reshape(self.mover.P.shape))
        return self.cells.apply_mass_inverse(Z[:n].reshape(self.U.shape))

    def _all_finite(self, U: np.ndarray) -> bool:
        return bool(self.cells.allreduce(bool(np.all(np.isfinite(U))), op=MPI.LAND))

    def _stop_if_not_finite(self, U: np.ndarray) -> None:
        if not self._all_finite(U):
            self._write(self.U)
            raise NonFiniteError(
                f"pde: non-finite density in a Runge-Kutta stage from t = {self.t:.6g}; the last finite state is kept"
            )

    # ------------------------------------------------------------------ stage operations (used by .stepping)
    def rate(self, U: np.ndarray) -> np.ndarray:
        """Transport time derivative ``M^{-1} b(U)`` with the velocity of U (moving mesh: of ``Z``, ``(b, w)``)."""
        if self.mover is not None:
            U = self._unpack(U)
            self._set_velocity(U)
            return np.concatenate([self.transport.residual(U).ravel(), self._vertex_velocity.ravel()])
        self._set_velocity(U)
        return self.transport(U)

    def residual(self, U: np.ndarray) -> np.ndarray:
        """Assembled transport residual ``b(U)`` with the velocity of U."""
        self._set_velocity(U)
        return self.transport.residual(U)

    def stage(self, U: np.ndarray) -> np.ndarray | None:
        """Limited stage value, or None if a cell mean is negative or a moved cell inverted (the step is retried)."""
        if self.mover is None:
            return self._limited(U)
        U = self._unpack(U)
        if self.mover.inverted():
            return None
        U = self._limited(U)
        if U is None:
            return None
        self._stage_density = U  # the step's result when this is its last stage (M^-1 M U would not be exact)
        return self._pack(U)

    def _limited(self, U: np.ndarray) -> np.ndarray | None:
        means = self.cells.means(U)
        mmin = float(means.min()) if means.size else np.inf
        mmin = self.cells.allreduce(mmin if np.isfinite(mmin) else -np.inf, op=MPI.MIN)
        if not mmin > -np.inf:
            self._stop_if_not_finite(U)
        if mmin < -1e-12 * self._scale:
            return None
        return self.limiter(self._remove_negative_means(U) if mmin < 0 else U)

    def implicit_stage(self, U: np.ndarray, mass0: float) -> np.ndarray:
        """Round-off mass shift, removal of negative cell means (mass-conserving), limiter."""
        self._stop_if_not_finite(U)
        U = U - (self.cells.mass(U) - mass0) / self.volume
        return self.limiter(self._remove_negative_means(U))

    def _remove_negative_means(self, U: np.ndarray) -> np.ndarray:
        """Cells with a negative mean set to 0, the others scaled by one factor: mass and positivity kept."""
        c = self.cells
        means = c.means(U)
        neg = means < 0
        if not self.cells.allreduce(bool(neg.any()), op=MPI.LOR):
            return U
        self.mean_fixes += 1
        cell_mass = means * c.cellvol
        taken = self._sum(float(-cell_mass[neg].sum()))
        positive = self._sum(float(cell_mass[~neg].sum()))
        U = U * (1.0 - taken / positive)
        U[neg] = 0.0
        return U

    @property
    def volume(self) -> float:
        return self.cells.volume

    @property
    def h_min(self) -> float:
        return self.cells.h_min

    # ------------------------------------------------------------------ stepping
    def stable_dt(self) -> float:
        """Time step of the scheme at the current state (``inf`` if the velocity vanishes)."""
        self._set_velocity(self.U)
        vmax = self.transport.vmax()
        if not np.isfinite(vmax):
            self._write(self.U)
            raise NonFiniteError(
                f"pde: non-finite velocity at t = {self.t:.6g} (expert gradients or residuals); "
                "the last finite state is kept"
            )
        p = self.degree
        c_ssp = stepping.SSP_COEFFICIENT[self.time_scheme]
        dt = c_ssp * self.cfl * 3.0 * self.h_min / ((2 * p + 1) * vmax) if vmax > 0 else math.inf
        if self.mover is not None and not self.mover.frozen:
            # the vertices move with v: keep the change of a cell's shape per step bounded
            strain = self.mover.strain_rate(self._vertex_velocity)
            if strain > 0:
                dt = min(dt, 2.0 * self.cfl / strain)
        gsq = self.transport.grad_sq_max
        if gsq is not None and self.lr:
            # the residuals relax as dr/dt = -lr Theta W r, |Theta W| <= sum_k w_k max|grad phi_k|^2:
            # resolve that rate (default cfl = 1/4: dt lr |Theta W| <= 1/2) whatever the SSP coefficient
            dt = min(dt, 2.0 * self.cfl / (abs(self.lr) * float(np.sum(self.w * gsq))))
        return dt

    def step(self, dt_max: float = math.inf) -> float:
        """One CFL-adaptive step; returns the dt used."""
        if not dt_max > 0:
            raise ValueError(f"step: dt_max must be positive, got {dt_max}")
        if self.mover is not None and not self.mover.frozen and self.cells.shape_quality() < QUALITY_FLOOR:
            self.mover.frozen = True
            self.mesh_frozen_at = self.t
        dt = self.stable_dt()
        if not math.isfinite(dt):
            dt = self.h_min  # zero velocity: any step is exact for transport
        if self.time_scheme not in stepping.EXPLICIT:
            dt = stepping.ladder(dt)
        dt = min(dt, dt_max)
        U0 = self.U
        self._scale = self.cells.allreduce(float(np.abs(U0).max()) if U0.size else 0.0, op=MPI.MAX)
        scheme = stepping.STEP[self.time_scheme]
        P0 = None if self.mover is None else self.mover.P.copy()
        Z0 = U0 if self.mover is None else self._pack(U0)
        try:
            for _ in range(30):
                U = scheme(self, Z0, dt)
                if U is not None:
                    break
                self.rejected_steps += 1
                dt = dt / 2
                if P0 is not None:
                    self._move_to(P0)
            else:  # pragma: no cover
                raise NonFiniteError(f"pde: no positive step found at t = {self.t:.6g} (last dt {dt:.3g})")
            if P0 is not None:
                U = self._stage_density
            self._stop_if_not_finite(U)
        except NonFiniteError:
            if P0 is not None:
                self._move_to(P0)
            raise
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
        """F (K,), risk, mass, min_rho, moments (F,) complex, dissipation, t: same on all ranks.

        ``min_rho`` is the minimum of the density at the limiter's check points
        (the quadrature points of every integral of the scheme, and the nodes).
        """
        U = self.U
        F = self.obs.outputs(U)
        r = F - self.y
        self._set_velocity(U)
        diss = self._sum(dolfinx.fem.assemble_scalar(self._diss_form))
        return {
            "t": self.t,
            "F": F,
            "risk": float(0.5 * np.sum(self.w * r * r)),
            "mass": self.cells.mass(U),
            "min_rho": self.cells.allreduce(self.limiter.minimum(U), op=MPI.MIN),
            "moments": self.obs.moments(U),
            "dissipation": diss / self.lr if self.lr else 0.0,  # lr int |grad Psi|^2 rho
        }

    def l2_error(self, exact: Callable[[np.ndarray], np.ndarray]) -> float:
        """``||rho_h - exact||_{L2(T^d)}`` with quadrature of degree ``2p+3`` (collective)."""
        q = self.cells.quad
        uq = self.cells.values_at_quadrature(self.U)
        ex = np.asarray(exact(q.points.reshape(-1, self.d)), dtype=np.float64).reshape(uq.shape)
        return math.sqrt(self._sum(float(np.sum(q.wdet * (uq - ex) ** 2))))

    def gather_cellwise(self) -> dict | None:
        """The density per cell on rank 0, ordered by the global input cell index.

        Keys: ``cell_type``, ``degree``, ``vertices`` (C, nv, d) unwrapped per
        cell, ``values`` (C, ndofs_cell) nodal values at ``reference_points``
        (ndofs_cell, d) of the reference cell (DOLFINx / Basix conventions:
        interval [0,1], triangle/tet unit simplex, quad/hex unit box; GLL
        nodes), ``t``, ``period``.  None on other ranks.
        """
        c = self.cells
        parts = self.comm.gather((c.original_cell_index, c.X, self.U), root=0)
        if self.comm.rank != 0:
            return None
        idx = np.concatenate([a[0] for a in parts])
        order = np.argsort(idx, kind="stable")
        return {
            "cell_type": self.torus.cell_type,
            "degree": self.degree,
            "vertices": np.concatenate([a[1] for a in parts])[order],
            "values": np.concatenate([a[2] for a in parts])[order],
            "reference_points": np.asarray(c.basis.points, dtype=np.float64),
            "t": self.t,
            "period": self.torus.period,
        }

    def set_cellwise(self, values, t: float, vertices=None) -> None:
        """Restore a state written by :meth:`gather_cellwise` (values, and on a moving mesh its
        ``vertices``, on rank 0), collective."""
        c = self.cells
        values = self.comm.bcast(np.asarray(values, dtype=np.float64) if self.comm.rank == 0 else None, root=0)
        if values.shape != (c.n_cells_global, c.dofs.shape[1]):
            raise ValueError(f"set_cellwise: values have shape {values.shape}, expected {(c.n_cells_global, c.dofs.shape[1])}")
        if self.mover is not None:
            vertices = self.comm.bcast(np.asarray(vertices, dtype=np.float64) if self.comm.rank == 0 else None, root=0)
            self._move_to(self.mover.positions_from_owned(vertices[c.original_cell_index]))
        self.U = values[c.original_cell_index].copy()
        self._write(self.U)
        self.t = float(self.comm.bcast(t, root=0))

    @property
    def num_dofs(self) -> int:
        return self.cells.n_dofs_global

    def set_owned_cells(self, values, t: float, vertices=None) -> None:
        """Restore this rank's cells: ``values`` (C_local, ndofs) in the order of
        ``cells.original_cell_index`` (the rows of :meth:`gather_cellwise` this rank owns), and on a
        moving mesh their ``vertices`` (C_local, nv, d). The distributed counterpart of
        :meth:`set_cellwise`; communication only to move a moving mesh's ghost vertices (collective then)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != self.U.shape:
            raise ValueError(f"set_owned_cells: values have shape {values.shape}, expected {self.U.shape}")
        if self.mover is not None:
            self._move_to(self.mover.positions_from_owned(np.asarray(vertices, dtype=np.float64)))
        self.U = values.copy()
        self._write(self.U)
        self.t = float(t)
