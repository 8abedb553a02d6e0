"""Runs: a case through a solver to a result file, with progress and restart.

``run_particles`` and ``run_pde`` are what ``mfpde particles`` and
``mfpde pde`` call, and what scripts call under ``mpirun``.  Each saved time
records the observables of DESIGN section 7; rank 0 rewrites
``NAME.partial.h5`` atomically after every save (the restart point) and the
finished run is renamed to ``NAME.h5``.  ``resume=True`` picks up the partial
file: because every save time is hit exactly and both time steppers are
one-step methods, the resumed run ends with the same observables as an
uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .case import Case
from .errors import CaseError, NonFiniteError, ResultFileError
from .flow import risk
from .initial import initial_density
from .metrics import empirical_moments, moment_freqs
from .progress import Progress
from .storage import partial_path, provenance, read_run, write_run


@dataclass
class Record:
    """Observables at the saved times (filled on every rank, identical)."""

    t: list = field(default_factory=list)
    F: list = field(default_factory=list)
    risk: list = field(default_factory=list)
    moments: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)   # name -> list (mass, min_rho, ...)
    fields: list = field(default_factory=list)  # rank 0: per saved time the state (theta or density)

    def add(self, t, F, R, moments, state=None, **extra):
        self.t.append(float(t))
        self.F.append(np.asarray(F))
        self.risk.append(float(R))
        self.moments.append(np.asarray(moments))
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)
        if state is not None:
            self.fields.append(state)

    def observables(self, freqs) -> dict:
        obs = {"t": np.array(self.t), "F": np.array(self.F), "risk": np.array(self.risk),
               "moments": np.array(self.moments), "moment_freqs": np.asarray(freqs)}
        obs.update({k: np.array(v) for k, v in self.extra.items()})
        return obs

    def truncate(self, n: int) -> None:
        for lst in (self.t, self.F, self.risk, self.moments, self.fields, *self.extra.values()):
            del lst[n:]


def _common_tree(case: Case) -> dict:
    return {"case": case.to_toml(),
            "data": {"x": case.data.x, "y": case.data.y, "w": case.data.w}}


def root_attrs(case: Case, kind: str, complete: bool) -> dict:
    from . import __version__
    return {"kind": kind, "complete": complete, "case_name": case.name,
            "case_hash": case.physics_hash(), "d": case.d, "mfpde_version": __version__}


def _out_dir(case: Case, out_dir) -> Path:
    return Path(out_dir if out_dir is not None else case.output_dir)


# ------------------------------------------------------------------ particles


def particle_path(case: Case, n: int, seed: int, out_dir=None) -> Path:
    return _out_dir(case, out_dir) / f"{case.name}.particles.N{n}.seed{seed}.h5"


def _particle_tree(case, record: Record, freqs, n, seed, rng_state, step, t0, comm) -> dict:
    tree = _common_tree(case)
    tree["observables"] = record.observables(freqs)
    tree["particles"] = {"theta": np.array(record.fields), "N": n, "seed": seed,
                         "rng_state": json.dumps(rng_state), "step": step,
                         "integrator": case.particles.integrator}
    tree["provenance"] = provenance(comm.size, time.perf_counter() - t0)
    return tree


def run_particles(case: Case, n: int | None = None, seed: int | None = None, *, out_dir=None,
                  resume: bool = False, write: bool = True, comm: MPI.Comm = MPI.COMM_WORLD,
                  progress: bool = True) -> tuple[dict, Path | None]:
    """Train the N-expert mixture; returns (observables dict, path written or None).

    The observables dict has t, F (T, K), risk (T,), moments (T, F),
    moment_freqs, and on rank 0 theta (T, N, d).
    """
    from .particles import ParticleSystem

    n = case.particles.n if n is None else int(n)
    seed = case.particles.seed if seed is None else int(seed)
    if n < 1:
        raise CaseError("particles.n", f"must be >= 1, got {n}")
    if seed < 0:
        raise CaseError("particles.seed", f"must be >= 0, got {seed}")
    opts, dyn = case.particles, case.dynamics
    system = ParticleSystem(case.expert.bind(case.data.x), case.data.y, case.data.w, dyn.lr, dyn.tau, n,
                            comm, opts.integrator)
    freqs = moment_freqs(case.d, case.pde.moment_max)
    times = case.save_times(opts.save_every)
    path = particle_path(case, n, seed, out_dir) if write else None
    t0 = time.perf_counter()

    record = Record()
    state = system.initial_state(initial_density(case).sample, seed)
    if resume and path is not None:
        state = _resume_particles(path, case, system, record, state, n, seed)

    def save():
        F = system.output(state.theta)
        local = empirical_moments(state.theta, freqs, np.full(len(state.theta), 1.0 / n))
        moments = comm.allreduce(local, op=MPI.SUM) if comm.size > 1 else local
        record.add(state.t, F, risk(F, case.data.y, case.data.w), moments, system.gather(state.theta))
        if path is not None and comm.rank == 0:
            tree = _particle_tree(case, record, freqs, n, seed, state.rng.bit_generator.state, state.step, t0, comm)
            write_run(partial_path(path), tree, root_attrs(case, "particles", False))

    if not record.t:
        save()
    bar = Progress(dyn.t_end, f"particles N={n} seed={seed}", enabled=progress and comm.rank == 0, start=state.t)
    for t_save in times:
        if t_save <= state.t + 1e-12:
            continue
        system.advance(state, t_save, opts.dt, on_step=bar.update)
        save()
    bar.close()

    obs = Record.observables(record, freqs)
    if comm.rank == 0:
        obs["theta"] = np.array(record.fields)
    if path is not None and comm.rank == 0:
        tree = _particle_tree(case, record, freqs, n, seed, state.rng.bit_generator.state, state.step, t0, comm)
        write_run(path, tree, root_attrs(case, "particles", True))
        partial_path(path).unlink(missing_ok=True)
    return obs, path


def _check_same_case(attrs: dict, case: Case, path: Path) -> None:
    if attrs.get("case_hash") != case.physics_hash():
        raise ResultFileError(f"{path}: was written for a different case (expert, data, init or dynamics changed); "
                              "remove it or run without --resume")


def _resume_partial(path: Path, case: Case, comm) -> tuple[dict, dict] | None:
    """The partial file's tree and attributes (from rank 0, broadcast), or None."""
    found = None
    if comm.rank == 0:
        part = partial_path(path)
        if part.is_file():
            found = read_run(part)
            _check_same_case(found[1], case, part)
        elif path.is_file():
            found = read_run(path)
            _check_same_case(found[1], case, path)
    return comm.bcast(found, root=0)


def _restore_record(record: Record, obs: dict, fields, extra_keys=()) -> None:
    for i, t in enumerate(obs["t"]):
        record.add(t, obs["F"][i], obs["risk"][i], obs["moments"][i],
                   None if fields is None else fields[i], **{k: obs[k][i] for k in extra_keys})


def _resume_particles(path, case, system, record, state, n, seed):
    found = _resume_partial(path, case, system.comm)
    if found is None:
        return state
    tree, _ = found
    p = tree["particles"]
    if int(p["N"]) != n or int(p["seed"]) != seed:
        raise ResultFileError(f"{path}: holds N={p['N']}, seed={p['seed']}, not N={n}, seed={seed}")
    theta = p["theta"]
    _restore_record(record, tree["observables"], list(theta) if system.comm.rank == 0 else None)
    state.theta = system.scatter(theta[-1] if system.comm.rank == 0 else None)
    state.t = float(tree["observables"]["t"][-1])
    state.step = int(p["step"])
    state.rng.bit_generator.state = json.loads(p["rng_state"])
    return state


# ------------------------------------------------------------------ PDE


def pde_path(case: Case, out_dir=None) -> Path:
    return _out_dir(case, out_dir) / f"{case.name}.pde.h5"


def check_pde_case(case: Case) -> None:
    """What only the PDE needs: d <= 3, and a mesh file of the torus of the expert's dimension."""
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
    from .pde import MeanFieldSolver
    from .torus import load_torus_mesh, torus_mesh

    o = case.pde
    mesh = load_torus_mesh(comm, o.mesh) if o.mesh else torus_mesh(comm, case.d, o.n, o.cell)
    return MeanFieldSolver(mesh, case.expert.bind(case.data.x), case.data.y, case.data.w,
                           initial_density(case), case.dynamics.lr, case.dynamics.tau, degree=o.degree,
                           cfl=o.cfl, freqs=moment_freqs(case.d, o.moment_max),
                           petsc_options=o.petsc_options, time_scheme=o.time_scheme)


def _pde_tree(case, record: Record, freqs, cellwise, t0, comm, steps) -> dict:
    tree = _common_tree(case)
    tree["observables"] = record.observables(freqs)
    tree["pde"] = {
        "mesh": {"vertices": cellwise["vertices"], "period": 2 * np.pi},
        "density": np.array(record.fields),
        "cell_type": cellwise["cell_type"], "degree": int(cellwise["degree"]),
        "reference_points": cellwise["reference_points"],
        "n": int(case.pde.n), "steps": int(steps),
        "README": ("density[t, c, j] is the value at node j of cell c at time observables/t[t]; "
                   "the cell's vertices are mesh/vertices[c] (unwrapped, may leave [0, 2pi)); "
                   "the field is the discontinuous Lagrange interpolant of the given degree on that cell through its nodes, "
                   "in the order of reference_points (on the reference interval [0,1], unit simplex or unit box). "
                   "mfpde.fields.evaluate_cellwise evaluates it with numpy only."),
    }
    tree["provenance"] = provenance(comm.size, time.perf_counter() - t0)
    return tree


def run_pde(case: Case, *, out_dir=None, resume: bool = False, write: bool = True,
            comm: MPI.Comm = MPI.COMM_WORLD, progress: bool = True, companion: bool = True) -> tuple[dict, Path | None]:
    """Solve the mean-field PDE; returns (observables dict, path written or None)."""
    solver = build_pde_solver(case, comm)
    freqs = moment_freqs(case.d, case.pde.moment_max)
    times = case.save_times(case.pde.save_every)
    path = pde_path(case, out_dir) if write else None
    t0 = time.perf_counter()
    record = Record()
    steps = 0
    cellwise = None

    if resume and path is not None:
        found = _resume_partial(path, case, comm)
        if found is not None:
            tree, _ = found
            dens = tree["pde"]["density"] if comm.rank == 0 else None
            _restore_record(record, tree["observables"], list(dens) if comm.rank == 0 else None,
                            extra_keys=("mass", "min_rho"))
            solver.set_cellwise(dens[-1] if comm.rank == 0 else None, float(tree["observables"]["t"][-1]))
            steps = int(tree["pde"]["steps"])

    def save():
        nonlocal cellwise
        o = solver.observables()
        cellwise = solver.gather_cellwise()
        record.add(solver.t, o["F"], o["risk"], o["moments"],
                   cellwise["values"] if comm.rank == 0 else None, mass=o["mass"], min_rho=o["min_rho"])
        if path is not None and comm.rank == 0:
            write_run(partial_path(path), _pde_tree(case, record, freqs, cellwise, t0, comm, steps),
                      root_attrs(case, "pde", False))

    if not record.t:
        save()
    bar = Progress(case.dynamics.t_end, f"pde n={case.pde.n} p={case.pde.degree}",
                   enabled=progress and comm.rank == 0, start=solver.t)

    last_t = solver.t

    def on_step(_solver):
        nonlocal steps, last_t
        steps += 1
        bar.update(solver.t - last_t)
        last_t = solver.t

    try:
        for t_save in times:
            if t_save <= solver.t + 1e-12:
                continue
            solver.advance(t_save, callback=on_step)
            save()
    except NonFiniteError as exc:
        # the solver kept its last finite state; save it as the restart point
        save()
        where = f"; last good state saved in {partial_path(path)}" if path is not None else ""
        raise NonFiniteError(f"{exc}{where}") from None
    finally:
        bar.close()

    obs = record.observables(freqs)
    if path is not None:
        if comm.rank == 0:
            write_run(path, _pde_tree(case, record, freqs, cellwise, t0, comm, steps),
                      root_attrs(case, "pde", True))
            partial_path(path).unlink(missing_ok=True)
        if companion:
            write_companion(solver, record, path, comm)
    return obs, path


def write_companion(solver, record: Record, path: Path, comm) -> Path:
    """A VTX (ADIOS2 .bp) file of the density at the saved times, for ParaView."""
    from dolfinx.io import VTXWriter

    bp = path.with_suffix(".bp")
    values = record.fields if comm.rank == 0 else [None] * len(record.t)
    with VTXWriter(comm, str(bp), [solver.function], engine="BP4") as vtx:
        for t, v in zip(record.t, values):
            solver.set_cellwise(v, t)
            vtx.write(t)
    return bp
