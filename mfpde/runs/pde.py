"""Runs: a case through a solver to a result file, with progress and restart.

``run_particles`` and ``run_pde`` are what ``mfpde particles`` and
``mfpde pde`` call, and what scripts call under ``mpirun``.  Each saved time
records the observables of DESIGN section 7 in ``NAME.partial.h5`` (the
restart point: every save appends to it -- for particles rank 0 appends the
saved state (:mod:`mfpde.io.particle_writer`), for the PDE one time slice
written window by window by :mod:`mfpde.io.pde_writer` so that no rank holds
the global density -- through the run's :class:`mfpde.runs.observers.Saver`)
and the finished run is renamed (PDE) or written whole (particles) to ``NAME.h5``.  ``resume=True`` picks up the partial
file: because every save time is hit exactly and both time steppers are
one-step methods, the resumed run ends with the same observables as an
uninterrupted one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.budgets import MAX_QUADRATURE_POINTS, check_count, check_pde_budget, pde_cells
from mfpde.config.case import Case
from mfpde.errors import CaseError, NonFiniteError
from mfpde.io.lock import output_lock
from mfpde.io.paths import result_path
from mfpde.io.pde_writer import Companion, PDEOutput
from mfpde.io.results import PDEResult, RunInfo
from mfpde.io.resume import settings_json
from mfpde.model.initial import initial_density
from mfpde.model.moments import moment_freqs
from mfpde.parallel import agree
from mfpde.pde.petsc_options import check_petsc_options
from mfpde.progress import Progress
from mfpde.runs.observers import Saver
from mfpde.runs.common import (
    Record,
    Run,
    _restore_record,
    _saved_last_good,
    run_provenance,
    table_as_run,
)


def pde_path(case: Case, out_dir=None) -> Path:
    return result_path(case, "pde", out_dir)


def check_pde_case(case: Case) -> None:
    """What only the PDE needs: mean-field scaling, d <= 3, PETSc options PETSc has, a time scheme and a
    mesh motion that fit tau (:mod:`mfpde.config.rules`), and a mesh file of the torus of the expert's
    dimension with cells that have the degree."""
    if case.dynamics.scaling != "mean-field":
        raise CaseError("dynamics.scaling", f"the PDE is the mean-field limit; scaling = {case.dynamics.scaling!r} "
                        "is for particles (its limit is in `mfpde regimes`)")
    check_petsc_options(case.pde.petsc_options)
    from mfpde.config.rules import check_degree, check_mesh_motion, resolve_time_scheme  # (no DOLFINx here)

    resolve_time_scheme(case.pde.time_scheme, case.dynamics.tau)  # the tau rules of the schemes, before the mesh
    check_mesh_motion(case.pde.mesh_motion, case.dynamics.tau)
    if case.d > 3:
        raise CaseError("expert", f"the parameter torus has d = {case.d}; the PDE solver supports d = 1, 2, 3 "
                        "(d > 3 is for particles only: use `mfpde particles`)")
    if case.pde.mesh:
        from mfpde.pde.torus import read_torus_mesh_file

        vertices, _, cell_type, _ = read_torus_mesh_file(case.pde.mesh)
        if vertices.shape[1] != case.d:
            raise CaseError("pde.mesh", f"{Path(case.pde.mesh).name} is a {vertices.shape[1]}-d mesh ({cell_type}), "
                            f"but the expert's parameter torus has d = {case.d}")
        check_degree(str(cell_type), case.pde.degree)


def check_initial_projection(case: Case) -> None:
    """The quadrature of the initial projection of a smooth rho_0 (normal, von Mises) resolves its
    length scale on every cell (:func:`mfpde.model.initial.smooth_rule_size`): refuse a rho_0 too
    narrow for it (``std = 1e-300``) before any work, within :data:`MAX_QUADRATURE_POINTS`."""
    rho0 = initial_density(case)
    o = case.pde
    if case.init.kind not in ("normal", "vonmises") or o.mesh:
        return
    count = pde_cells(case) * rho0.projection_points(2 * np.pi / o.n, o.degree)
    key = "init.std" if case.init.kind == "normal" else "init.kappa"
    check_count(key, f"rho_0 varies on {rho0.length_scale():.3g}: the initial projection's quadrature points "
                f"on {pde_cells(case)} cells", count, MAX_QUADRATURE_POINTS,
                "widen rho_0 (the PDE cannot resolve it; particles can)")


def build_pde_solver(case: Case, comm: MPI.Comm = MPI.COMM_WORLD):
    """Mesh, spaces and the solver for a case (no time stepping yet)."""
    check_pde_case(case)
    from mfpde.pde import MeanFieldSolver
    from mfpde.pde.grading import case_coordinates
    from mfpde.pde.torus import load_torus_mesh, torus_mesh

    o = case.pde
    coordinates = comm.bcast(case_coordinates(case) if comm.rank == 0 else None, root=0)
    mesh = load_torus_mesh(comm, o.mesh) if o.mesh else torus_mesh(comm, case.d, o.n, o.cell, coordinates)
    return MeanFieldSolver(mesh, case.expert.bind(case.data.x), case.data.y, case.data.w,
                           initial_density(case), case.dynamics.lr, case.dynamics.tau, degree=o.degree,
                           cfl=o.cfl, freqs=moment_freqs(case.d, o.moment_max),
                           petsc_options=o.petsc_options, time_scheme=o.time_scheme, mesh_motion=o.mesh_motion)


def pde_header(case, solver, record: Record, freqs, t0, comm) -> PDEResult:
    """What a PDE run's file starts with: the solver's mesh (cells per direction, or the mesh file), cell,
    degree and nodes, and the observables recorded so far (their shapes); the density and the mesh
    vertices are written by :class:`mfpde.io.pde_writer.PDEOutput`."""
    n = solver.torus.n
    table = table_as_run(case, "pde", n=n)
    info = RunInfo.of_case(case, run_provenance(case, comm.size, t0), table, settings=settings_json(case, "pde"))
    return PDEResult(info=info, observables=record.observables(freqs),
                     cell_type=str(solver.torus.cell_type), degree=int(solver.degree),
                     reference_points=np.asarray(solver.cells.basis.points, dtype=np.float64), n=n,
                     mesh_file=str(case.pde.mesh) if case.pde.mesh else "", steps=0,
                     period=float(solver.torus.period))


def run_pde(case: Case, *, out_dir=None, resume: bool = False, write: bool = True,
            comm: MPI.Comm = MPI.COMM_WORLD, progress: bool = True, companion: bool = True) -> Run:
    """Solve the mean-field PDE from t = 0 to ``t_end``, saving at ``[pde] save_every``.

    Parameters
    ----------
    case : mfpde.config.case.Case
        The case (:func:`mfpde.config.case.load_case` or :func:`~mfpde.config.case.case_from_dict`).
    out_dir : str or Path, optional
        Directory of ``NAME.pde.h5`` (default: the case's ``[output] directory``).
    resume : bool
        Continue from ``NAME.pde.partial.h5`` (or return a finished file as it is).
    write : bool
        Write the result file (and the ParaView companion); False keeps only the observables.
    comm : mpi4py.MPI.Comm
        The ranks that share the mesh (collective call).
    progress : bool
        Progress bar on a terminal, sparse lines in a log (rank 0).
    companion : bool
        Write the VTX (ADIOS2 ``.bp``) file of the density for ParaView.

    Returns
    -------
    Run
        Unpacks as ``(observables, path)``: the dict ``t`` (T,), ``F`` (T, K), ``risk``, ``moments``
        (T, F), ``moment_freqs``, ``mass``, ``min_rho``, and the file written (None with
        ``write=False``); ``run.result`` is the :class:`mfpde.io.results.PDEResult` read from the
        file, with the density ``(T, cells, nodes)`` at every saved time.
    """
    agree(comm, check_pde_case, case, root_only=True)
    agree(comm, check_pde_budget, case, None, comm.size, root_only=True)
    agree(comm, check_initial_projection, case, root_only=True)
    path = pde_path(case, out_dir) if write else None
    with output_lock(path, comm):
        return _run_pde(case, path, resume, comm, progress, companion)


def _run_pde(case: Case, path: Path | None, resume: bool, comm: MPI.Comm, progress: bool,
             companion: bool) -> Run:
    solver = build_pde_solver(case, comm)
    freqs = moment_freqs(case.d, case.pde.moment_max)
    times = case.save_times(case.pde.save_every)
    t0 = time.perf_counter()
    record = Record()
    steps = 0
    output = PDEOutput(path, solver, comm) if path is not None else None
    vtx = None  # the ParaView companion, written at every save

    if resume and output is not None:
        found = output.find(case)
        if found is not None:
            tree, attrs = found
            if attrs.get("complete"):  # nothing left to do: the result stays as it is
                return Run(tree["observables"], path)
            _restore_record(record, tree["observables"], None, extra_keys=("mass", "min_rho"))
            steps = int(tree["pde"]["steps"])
            vtx = Companion(path, solver, comm) if companion else None
            output.restore(record.t, vtx)

    def observe():
        o = solver.observables()
        record.add(solver.t, o["F"], o["risk"], o["moments"], mass=o["mass"], min_rho=o["min_rho"])

    def write():  # collective: the density goes to rank 0 window by window
        if output.saved == 0:  # a fresh run: the file appears at its first save
            output.start(pde_header(case, solver, record, freqs, t0, comm))
        row = {k: v[-1] for k, v in record.observables(freqs).tree().items() if k != "moment_freqs"}
        output.save(row, steps, vtx.step_bytes if vtx is not None else 0)

    def companion():
        if vtx is not None:
            vtx.write(solver.t)

    save = Saver(comm, observe, write if output is not None else None, count=lambda: len(record.t),
                 after=[companion])

    bar = Progress(case.dynamics.t_end, f"pde n={solver.torus.n or case.pde.mesh} p={case.pde.degree}",
                   enabled=progress and comm.rank == 0, start=solver.t)

    last_t = solver.t

    def on_step(_solver):
        nonlocal steps, last_t
        steps += 1
        bar.update(solver.t - last_t)
        last_t = solver.t

    try:
        if path is not None and companion and vtx is None:
            vtx = Companion(path, solver, comm)
        if not record.t:
            save()
        for t_save in times:
            if t_save <= solver.t + 1e-12:
                continue
            solver.advance(t_save, callback=on_step)
            save()
    except NonFiniteError as exc:  # the solver kept its last finite state: the restart point
        raise _saved_last_good(exc, solver.t > record.t[-1], save, path, comm) from None
    finally:
        bar.close()
        if vtx is not None:
            vtx.close()

    if solver.mesh_frozen_at is not None and comm.rank == 0:  # also with --quiet: the result is not what was asked
        print(f"pde: the Lagrangian mesh stopped moving at t = {solver.mesh_frozen_at:.4g} (its cells too distorted); "
              "the run went on with that mesh fixed (/pde/mesh_frozen_at)", file=sys.stderr)
    if output is not None:
        output.finish(run_provenance(case, comm.size, t0))
    return Run(record.observables(freqs).as_dict(), path)
