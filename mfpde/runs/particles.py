"""``mfpde particles``: the finite-N mixture trained by gradient flow, saved at
every save time to ``NAME.partial.h5`` and renamed when finished."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.budgets import check_particle_budget
from mfpde.config.case import Case, given
from mfpde.errors import NonFiniteError, ResultFileError
from mfpde.io.hdf5 import check_space, partial_path
from mfpde.io.lock import output_lock
from mfpde.io.paths import result_path
from mfpde.io.particle_writer import ParticleOutput, read_resume
from mfpde.io.results import ParticleResult, RunInfo
from mfpde.io.resume import settings_json
from mfpde.model.initial import initial_density
from mfpde.model.moments import empirical_moments, moment_freqs
from mfpde.model.velocity import risk
from mfpde.parallel import agree, collective, uninterrupted
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


def particle_path(case: Case, n: int, seed: int, out_dir=None) -> Path:
    return result_path(case, "particles", out_dir, n=n, seed=seed)


def particle_result(case, system, record: Record, freqs, seed, state, t0, last_only: bool = False) -> ParticleResult:
    """The result of a particle run: what ran (N, seed, the integrator used, the case as run);
    with ``last_only`` the positions of the last saved time alone (what a save appends)."""
    table = table_as_run(case, "particles", n=system.n, seed=seed, save_every=case.particles.save_every)
    info = RunInfo.of_case(case, run_provenance(case, system.comm.size, t0), table,
                           settings=settings_json(case, "particles"),
                           ran={"particles": {"integrator": system.integrator}})
    theta = np.array(record.fields[-1:] if last_only else record.fields)
    return ParticleResult(info=info, observables=record.observables(freqs), theta=theta,
                          N=system.n, seed=seed, integrator=system.integrator,
                          rng_state=json.dumps(state.rng.bit_generator.state), step=state.step)


def run_particles(case: Case, n: int | None = None, seed: int | None = None, *, out_dir=None,
                  resume: bool = False, write: bool = True, comm: MPI.Comm = MPI.COMM_WORLD,
                  progress: bool = True) -> Run:
    """Train the N-expert mixture by gradient flow from N i.i.d. draws of rho_0.

    Parameters
    ----------
    case : mfpde.config.case.Case
        The case.
    n : int, optional
        Number of experts N (default ``[particles] n``).
    seed : int, optional
        Seed of the initial draw and the noise (default ``[particles] seed``).
    out_dir : str or Path, optional
        Directory of ``NAME.particles.N{n}.seed{seed}.h5`` (default: the case's).
    resume : bool
        Continue from the partial file (or return a finished file as it is).
    write : bool
        Write the result file; False keeps only the observables.
    comm : mpi4py.MPI.Comm
        The ranks that share the experts (collective call).
    progress : bool
        Progress bar or log lines on rank 0.

    Returns
    -------
    Run
        Unpacks as ``(observables, path)``: the dict ``t``, ``F`` (T, K), ``risk`` (T,),
        ``moments`` (T, F), ``moment_freqs`` and on rank 0 ``theta`` (T, N, d); and the file
        written (None with ``write=False``); ``run.result`` is the
        :class:`mfpde.io.results.ParticleResult` read from the file.
    """
    as_int = lambda v: None if v is None else int(v)  # noqa: E731  (numpy integers too, as before)
    case = case.with_overrides(particles=given(n=as_int(n), seed=as_int(seed)))  # checked as [particles] n, seed
    n, seed = case.particles.n, case.particles.seed
    agree(comm, check_particle_budget, case, n, root_only=True)
    path = particle_path(case, n, seed, out_dir) if write else None
    with output_lock(path, comm):
        return _run_particles(case, n, seed, path, resume, comm, progress)


def _run_particles(case: Case, n: int, seed: int, path: Path | None, resume: bool, comm: MPI.Comm,
                   progress: bool) -> Run:
    from mfpde.particles.system import ParticleSystem

    opts, dyn = case.particles, case.dynamics
    system = ParticleSystem(case.expert.bind(case.data.x), case.data.y, case.data.w, dyn.lr, dyn.tau, n,
                            comm, opts.integrator, scaling=dyn.scaling)
    freqs = moment_freqs(case.d, case.pde.moment_max)
    times = case.save_times(opts.save_every)
    t0 = time.perf_counter()

    record = Record()
    state = system.initial_state(initial_density(case).sample, seed)
    output = ParticleOutput(path) if path is not None and comm.rank == 0 else None
    if resume and path is not None:
        state, finished = _resume_particles(path, case, system, record, state, n, seed)
        if finished:  # nothing left to do: the result stays as it is
            return Run(_particle_observables(record, freqs, comm), path)
        if path is not None and record.t:  # the saved states in the appendable layout, a torn save dropped
            agree(comm, lambda: output.restore(particle_result(case, system, record, freqs, seed, state, t0)),
                  root_only=True)

    def observe():
        F = system.output(state.theta)
        local = empirical_moments(state.theta, freqs, np.full(len(state.theta), 1.0 / n))
        moments = comm.allreduce(local, op=MPI.SUM) if comm.size > 1 else local
        record.add(state.t, F, risk(F, case.data.y, case.data.w), moments, system.gather(state.theta))

    def write():  # rank 0: append the last saved state
        output.save(particle_result(case, system, record, freqs, seed, state, t0, last_only=True))

    save = Saver(comm, observe, write if path is not None else None, root_writes=True, count=lambda: len(record.t))

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
    if output is not None:
        result = particle_result(case, system, record, freqs, seed, state, t0)
        with uninterrupted():
            check_space(path, result.theta.nbytes + result.observables.F.nbytes + (1 << 16))
            result.to_file(path, complete=True)
            partial_path(path).unlink(missing_ok=True)
    return Run(obs, path)


def _particle_observables(record: Record, freqs, comm) -> dict:
    obs = record.observables(freqs).as_dict()
    if comm.rank == 0:
        obs["theta"] = np.array(record.fields)
    return obs


def _resume_particles(path, case, system, record, state, n, seed):
    """(the restored state, whether the run was finished already)."""
    found = agree(system.comm, read_resume, path, case, root_only=True)
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
