"""Runs: a case through a solver to a result file, with progress and restart.

``run_particles`` and ``run_pde`` are what ``mfpde particles`` and
``mfpde pde`` call, and what scripts call under ``mpirun``.  Each saved time
records the observables of DESIGN section 7 in ``NAME.partial.h5`` (the
restart point: for particles rank 0 rewrites it atomically after every save;
for the PDE every save appends one time slice to it, written window by window
by :mod:`mfpde.pde_output` so that no rank holds the global density) and the
finished run is renamed to ``NAME.h5``.  ``resume=True`` picks up the partial
file: because every save time is hit exactly and both time steppers are
one-step methods, the resumed run ends with the same observables as an
uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .case import Case
from .errors import CaseError, NonFiniteError, ResultFileError
from .flow import risk
from .guards import (agree, check_particle_budget, check_pde_budget, check_petsc_options, collective,
                     read_resume_file, settings_json)
from .initial import initial_density
from .lock import output_lock
from .metrics import empirical_moments, moment_freqs
from .progress import Progress
from .results import Observables, ParticleResult, PDEResult, RunInfo
from .pde_output import Companion, PDEOutput
from .storage import partial_path, provenance


#: test hook: with MFPDE_TEST_KILL_AFTER_SAVE=k a run kills itself (SIGKILL, as ``kill -9``) right
#: after rank 0 has written its k-th saved state, so that resume tests do not race a poll
KILL_AFTER_SAVE = "MFPDE_TEST_KILL_AFTER_SAVE"


def _kill_after_save(saves: int) -> None:
    k = os.environ.get(KILL_AFTER_SAVE)
    if k and saves == int(k):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Record:
    """Observables at the saved times (filled on every rank, identical)."""

    t: list = field(default_factory=list)
    F: list = field(default_factory=list)
    risk: list = field(default_factory=list)
    moments: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)   # name -> list (mass, min_rho, ...)
    fields: list = field(default_factory=list)  # rank 0: per saved time the particles' theta

    def add(self, t, F, R, moments, state=None, **extra):
        self.t.append(float(t))
        self.F.append(np.asarray(F))
        self.risk.append(float(R))
        self.moments.append(np.asarray(moments))
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)
        if state is not None:
            self.fields.append(state)

    def observables(self, freqs) -> Observables:
        return Observables(t=np.array(self.t), F=np.array(self.F), risk=np.array(self.risk),
                           moments=np.array(self.moments), moment_freqs=np.asarray(freqs),
                           extra={k: np.array(v) for k, v in self.extra.items()})


def table_as_run(case: Case, section: str, **values) -> dict:
    """The case table with ``[section]`` keys set to the values that ran (command-line overrides)."""
    table = copy.deepcopy(case.table)
    table.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return table


def _out_dir(case: Case, out_dir) -> Path:
    return Path(out_dir if out_dir is not None else case.output_dir)


# ------------------------------------------------------------------ particles


def particle_path(case: Case, n: int, seed: int, out_dir=None) -> Path:
    return _out_dir(case, out_dir) / f"{case.name}.particles.N{n}.seed{seed}.h5"


def run_provenance(case: Case, mpi_size: int, t0: float) -> dict:
    """``/provenance`` of a run: versions, MPI size, wall time since ``t0``, and the expert as evaluated."""
    return provenance(mpi_size, time.perf_counter() - t0, {"expert": json.dumps(case.expert.describe())})


def particle_result(case, system, record: Record, freqs, seed, state, t0) -> ParticleResult:
    """The result of a particle run: what ran (N, seed, the integrator used, the case as run)."""
    table = table_as_run(case, "particles", n=system.n, seed=seed, save_every=case.particles.save_every)
    info = RunInfo.of_case(case, run_provenance(case, system.comm.size, t0), table,
                           settings=settings_json(case, "particles"))
    return ParticleResult(info=info, observables=record.observables(freqs), theta=np.array(record.fields),
                          N=system.n, seed=seed, integrator=system.integrator,
                          rng_state=json.dumps(state.rng.bit_generator.state), step=state.step)


def run_particles(case: Case, n: int | None = None, seed: int | None = None, *, out_dir=None,
                  resume: bool = False, write: bool = True, comm: MPI.Comm = MPI.COMM_WORLD,
                  progress: bool = True) -> tuple[dict, Path | None]:
    """Train the N-expert mixture; returns (observables dict, path written or None).

    The observables dict has t, F (T, K), risk (T,), moments (T, F),
    moment_freqs, and on rank 0 theta (T, N, d).
    """
    n = case.particles.n if n is None else int(n)
    seed = case.particles.seed if seed is None else int(seed)
    if n < 1:
        raise CaseError("particles.n", f"must be >= 1, got {n}")
    if seed < 0:
        raise CaseError("particles.seed", f"must be >= 0, got {seed}")
    agree(comm, check_particle_budget, case, n, root_only=True)
    path = particle_path(case, n, seed, out_dir) if write else None
    with output_lock(path, comm):
        return _run_particles(case, n, seed, path, resume, comm, progress)


def _run_particles(case: Case, n: int, seed: int, path: Path | None, resume: bool, comm: MPI.Comm,
                   progress: bool) -> tuple[dict, Path | None]:
    from .particles import ParticleSystem

    opts, dyn = case.particles, case.dynamics
    system = ParticleSystem(case.expert.bind(case.data.x), case.data.y, case.data.w, dyn.lr, dyn.tau, n,
                            comm, opts.integrator, scaling=dyn.scaling)
    freqs = moment_freqs(case.d, case.pde.moment_max)
    times = case.save_times(opts.save_every)
    t0 = time.perf_counter()

    record = Record()
    state = system.initial_state(initial_density(case).sample, seed)
    if resume and path is not None:
        state, finished = _resume_particles(path, case, system, record, state, n, seed)
        if finished:  # nothing left to do: the result stays as it is
            return _particle_observables(record, freqs, comm), path

    def save():
        F = system.output(state.theta)
        local = empirical_moments(state.theta, freqs, np.full(len(state.theta), 1.0 / n))
        moments = comm.allreduce(local, op=MPI.SUM) if comm.size > 1 else local
        record.add(state.t, F, risk(F, case.data.y, case.data.w), moments, system.gather(state.theta))
        if path is not None and comm.rank == 0:
            particle_result(case, system, record, freqs, seed, state, t0).to_file(partial_path(path), complete=False)
            _kill_after_save(len(record.t))

    if not record.t:
        save()
    bar = Progress(dyn.t_end, f"particles N={n} seed={seed}", enabled=progress and comm.rank == 0, start=state.t)
    try:
        for t_save in times:
            if t_save <= state.t + 1e-12:
                continue
            system.advance(state, t_save, opts.dt, on_step=bar.update)
            save()
    except NonFiniteError as exc:  # the system kept its last good state: the restart point
        raise _saved_last_good(exc, state.t > record.t[-1], save, path, comm) from None
    finally:
        bar.close()

    obs = _particle_observables(record, freqs, comm)
    if path is not None and comm.rank == 0:
        particle_result(case, system, record, freqs, seed, state, t0).to_file(path, complete=True)
        partial_path(path).unlink(missing_ok=True)
    return obs, path


def _particle_observables(record: Record, freqs, comm) -> dict:
    obs = record.observables(freqs).as_dict()
    if comm.rank == 0:
        obs["theta"] = np.array(record.fields)
    return obs


def _saved_last_good(exc: NonFiniteError, unsaved: bool, save, path, comm) -> NonFiniteError:
    """Save the last good state (unless saved already) and say where it is.
    Every rank gets here (the failure was agreed on), so the error is collective."""
    if unsaved:
        save()
    where = f"; last good state saved in {partial_path(path)}" if path is not None else ""
    return collective(type(exc)(f"{exc}{where}"), comm)


def _resume_partial(path: Path, case: Case, comm, kind: str = "pde") -> tuple[dict, dict] | None:
    """The partial (or finished) file's tree and attributes, checked on rank 0
    (:func:`mfpde.guards.read_resume_file`) and broadcast, or None."""
    return agree(comm, read_resume_file, path, case, kind, root_only=True)


def _restore_record(record: Record, obs: dict, fields, extra_keys=()) -> None:
    for i, t in enumerate(obs["t"]):
        record.add(t, obs["F"][i], obs["risk"][i], obs["moments"][i],
                   None if fields is None else fields[i], **{k: obs[k][i] for k in extra_keys})


def _resume_particles(path, case, system, record, state, n, seed):
    """(the restored state, whether the run was finished already)."""
    found = _resume_partial(path, case, system.comm, "particles")
    if found is None:
        return state, False
    tree, attrs = found
    p = tree["particles"]
    if int(p["N"]) != n or int(p["seed"]) != seed:
        raise collective(ResultFileError(f"{path}: holds N={p['N']}, seed={p['seed']}, not N={n}, seed={seed}"),
                         system.comm)
    theta = p["theta"]
    _restore_record(record, tree["observables"], list(theta) if system.comm.rank == 0 else None)
    system.set_origin(system.scatter(theta[0] if system.comm.rank == 0 else None))  # ntk: f_N centred at t = 0
    state.theta = system.scatter(theta[-1] if system.comm.rank == 0 else None)
    state.t = float(tree["observables"]["t"][-1])
    state.step = int(p["step"])
    state.rng.bit_generator.state = json.loads(p["rng_state"])
    return state, bool(attrs.get("complete"))


# ------------------------------------------------------------------ PDE


def pde_path(case: Case, out_dir=None) -> Path:
    return _out_dir(case, out_dir) / f"{case.name}.pde.h5"


def check_pde_case(case: Case) -> None:
    """What only the PDE needs: mean-field scaling, d <= 3, PETSc options PETSc has, and a mesh file
    of the torus of the expert's dimension."""
    if case.dynamics.scaling != "mean-field":
        raise CaseError("dynamics.scaling", f"the PDE is the mean-field limit; scaling = {case.dynamics.scaling!r} "
                        "is for particles (its limit is in `mfpde regimes`)")
    check_petsc_options(case.pde.petsc_options)
    from .pde.defaults import check_mesh_motion  # (no DOLFINx: this runs on rank 0 alone)

    check_mesh_motion(case.pde.mesh_motion, case.dynamics.tau)
    if case.d > 3:
        raise CaseError("expert", f"the parameter torus has d = {case.d}; the PDE solver supports d = 1, 2, 3 "
                        "(d > 3 is for particles only: use `mfpde particles`)")
    if case.pde.mesh:
        from .torus import read_torus_mesh_file

        vertices, _, cell_type, _ = read_torus_mesh_file(case.pde.mesh)
        if vertices.shape[1] != case.d:
            raise CaseError("pde.mesh", f"{Path(case.pde.mesh).name} is a {vertices.shape[1]}-d mesh ({cell_type}), "
                            f"but the expert's parameter torus has d = {case.d}")


def build_pde_solver(case: Case, comm: MPI.Comm = MPI.COMM_WORLD):
    """Mesh, spaces and the solver for a case (no time stepping yet)."""
    check_pde_case(case)
    from .grading import case_coordinates
    from .pde import MeanFieldSolver
    from .torus import load_torus_mesh, torus_mesh

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
    vertices are written by :class:`mfpde.pde_output.PDEOutput`."""
    n = solver.torus.n
    table = table_as_run(case, "pde", n=n)
    info = RunInfo.of_case(case, run_provenance(case, comm.size, t0), table, settings=settings_json(case, "pde"))
    return PDEResult(info=info, observables=record.observables(freqs),
                     cell_type=str(solver.torus.cell_type), degree=int(solver.degree),
                     reference_points=np.asarray(solver.cells.basis.points, dtype=np.float64), n=n,
                     mesh_file=str(case.pde.mesh) if case.pde.mesh else "", steps=0,
                     period=float(solver.torus.period))


def run_pde(case: Case, *, out_dir=None, resume: bool = False, write: bool = True,
            comm: MPI.Comm = MPI.COMM_WORLD, progress: bool = True, companion: bool = True) -> tuple[dict, Path | None]:
    """Solve the mean-field PDE; returns (observables dict, path written or None)."""
    agree(comm, check_pde_case, case, root_only=True)
    agree(comm, check_pde_budget, case, root_only=True)
    path = pde_path(case, out_dir) if write else None
    with output_lock(path, comm):
        return _run_pde(case, path, resume, comm, progress, companion)


def _run_pde(case: Case, path: Path | None, resume: bool, comm: MPI.Comm, progress: bool,
             companion: bool) -> tuple[dict, Path | None]:
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
                return tree["observables"], path
            _restore_record(record, tree["observables"], None, extra_keys=("mass", "min_rho"))
            steps = int(tree["pde"]["steps"])
            vtx = Companion(path, solver, comm) if companion else None
            output.restore(record.t, vtx)

    def save():
        o = solver.observables()
        record.add(solver.t, o["F"], o["risk"], o["moments"], mass=o["mass"], min_rho=o["min_rho"])
        if output is not None:
            if output.saved == 0:  # a fresh run: the file appears at its first save
                output.start(pde_header(case, solver, record, freqs, t0, comm))
            row = {k: v[-1] for k, v in record.observables(freqs).tree().items() if k != "moment_freqs"}
            output.save(row, steps)
            if comm.rank == 0:
                _kill_after_save(len(record.t))
        if vtx is not None:
            vtx.write(solver.t)

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

    if solver.mesh_frozen_at is not None and comm.rank == 0 and progress:
        print(f"pde: the Lagrangian mesh stopped moving at t = {solver.mesh_frozen_at:.4g} (its cells too distorted); "
              "the run went on with that mesh fixed", file=sys.stderr)
    if output is not None:
        output.finish(run_provenance(case, comm.size, t0))
    return record.observables(freqs).as_dict(), path
