r"""Propagation of chaos: the PDE once, particles over N and seeds, fitted rates.

For each N in the study and each seed, the N-expert mixture is trained from
i.i.d. initial parameters and compared with the PDE solution at every saved
time (:mod:`mfpde.runs.compare`).  Each error is fitted as :math:`C N^{s}` in
log-log (:func:`mfpde.analysis.rates.fit_rate`, bootstrap over seeds) twice: for the
largest error over the saved times (:math:`\sup_t`, what propagation-of-chaos
bounds control) and at ``t_end``; the slopes are set beside the theory
(:func:`mfpde.analysis.rates.theory_slope`).

The reference is the PDE, or the quadrature limit (:mod:`mfpde.runs.limit`) when
d > 3 or ``[study] reference = "limit"`` (:func:`study_reference`); with the
limit the study also records every run's outputs (``/study/particles_F``)
for the CLT section of the report.

Under ``mpirun -n P`` the PDE runs on all P ranks and the (N, seed) particle
runs are dealt round-robin to the ranks (each one on a single rank, largest
first), so the study scales with P.

Each particle run is written to its own file in the output directory as it
goes, so ``resume=True`` (``mfpde study --resume``) reuses the PDE file and
every finished particle file that match the case and continues the one that
was running: a ``kill -9`` loses at most the saves since the last one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.case import Case, given
from mfpde.runs.compare import load_reference, wasserstein_times
from mfpde.parallel import agree
from mfpde.config.budgets import check_particle_budget
from mfpde.io.lock import output_lock
from mfpde.analysis.rates import METRIC_NAMES, fit_rate, mean_ci, theory_slope
from mfpde.io.paths import output_dir, result_path
from mfpde.io.results import Fit, RunInfo, StudyResult
from mfpde.runs.particles import run_particles
from mfpde.runs.pde import run_pde
from mfpde.runs.common import run_provenance
from mfpde.runs.ensemble import run_ensemble


# cells per axis of the grid reduction for W1 (d = 1 is exact, no grid)
WASSERSTEIN_GRID = {2: 64, 3: 16}


def study_path(case: Case, out_dir=None) -> Path:
    return result_path(case, "study", out_dir)


def _fits(N, errors: np.ndarray, d: int) -> dict:
    """Fit each metric; errors[name] is (n, S)."""
    out = {}
    for name in METRIC_NAMES:
        slope, text = theory_slope(name, d, N)
        fit = fit_rate(N, errors[name])
        out[name] = Fit(slope=fit["slope"], ci=np.asarray(fit["ci"]), intercept=fit["intercept"], r2=fit["r2"],
                        theory_slope=slope, theory=text)
    return out


def run_study(case: Case, ns=None, n_seeds=None, *, out_dir=None, comm: MPI.Comm = MPI.COMM_WORLD,
              progress: bool = True, plots: bool = True, wasserstein: str = "ends", resume: bool = False) -> dict:
    """Run the whole study; rank 0 writes ``NAME.study.h5`` and the report.

    In d >= 2, W1 uses the grid reduction of :func:`mfpde.analysis.metrics.wasserstein_torus`
    with a fixed grid (:data:`WASSERSTEIN_GRID`).

    Parameters
    ----------
    case : mfpde.config.case.Case
        The case.
    ns : list of int, optional
        Particle numbers N, at least two distinct (default ``[study] n``).
    n_seeds : int, optional
        Seeds per N, >= 2 (default ``[study] seeds``).
    out_dir : str or Path, optional
        Directory of every file of the study (default: the case's).
    comm : mpi4py.MPI.Comm
        The particle runs are dealt over these ranks.
    progress : bool
        Progress of each phase on rank 0.
    plots : bool
        Write the figures and the Markdown report.
    wasserstein : {"ends", "all"}
        W1 at t = 0 and t_end only (the default: an exact-enough W1 at N = 16384 in
        d = 2 costs seconds, the other metrics microseconds), or at every saved time.
    resume : bool
        Reuse the finished runs and continue the interrupted ones.

    Returns
    -------
    dict
        ``path`` (``NAME.study.h5``), ``report`` (its Markdown report or None), ``fits`` and
        ``fits_t_end`` (metric name -> :class:`mfpde.io.results.Fit`), ``lines`` (printable) and
        ``result`` (the :class:`mfpde.io.results.StudyResult` written); meaningful on rank 0.
    """
    t0 = time.perf_counter()
    case = study_case(case, ns, n_seeds)
    ns, n_seeds = case.study.n, case.study.seeds
    out = output_dir(case, out_dir)
    with output_lock(study_path(case, out), comm):  # one study per output name at a time
        return _run_study(case, ns, n_seeds, out, comm, progress, plots, wasserstein, resume, t0)


def _run_study(case: Case, ns: list, n_seeds: int, out: Path, comm: MPI.Comm, progress: bool, plots: bool,
               wasserstein: str, resume: bool, t0: float) -> dict:
    seeds = list(range(n_seeds))

    # 1. the reference (the PDE, or the limit without a mesh), once, on all ranks;
    #    the particles save at its times
    reference = study_reference(case)
    agree(comm, check_particle_budget, case, max(ns), root_only=True)
    if reference == "limit":
        from mfpde.runs.limit import run_limit

        _, pde_file = run_limit(case, out_dir=out, comm=comm, progress=progress, resume=resume)
    else:
        _, pde_file = run_pde(case, out_dir=out, comm=comm, progress=progress, resume=resume)
    pde = None
    if comm.rank == 0:
        pde = load_reference(pde_file)
    pde = comm.bcast(pde, root=0)
    T = len(pde.t)

    # 2. particle runs dealt round-robin over ranks, largest N first
    tasks = [(n, s) for n in sorted(ns, reverse=True) for s in seeds]
    w_times = None if wasserstein == "all" else {0, T - 1}
    stored = wasserstein_times(pde, pde.t)  # a limit file keeps its points at some saved times only
    if stored is not None:
        w_times = stored if w_times is None else w_times & stored

    def particle_run(task):
        n, s = task
        obs, _ = run_particles(case, n, s, out_dir=out, resume=resume, comm=MPI.COMM_SELF, progress=False)
        m = _metrics_of(pde, obs, w_times, WASSERSTEIN_GRID.get(case.d))
        example = obs["theta"][:, : min(n, 4096)] if (s == 0 and n == max(ns)) else None
        return m, obs["risk"], obs["F"], example

    results = run_ensemble(tasks, particle_run, comm, progress=progress, title="particle runs")
    if comm.rank != 0:
        return {"path": None, "report": None, "fits": None, "lines": []}
    example = results[(max(ns), 0)][3]

    metrics = {name: np.empty((len(ns), n_seeds, T)) for name in METRIC_NAMES}
    prisk = np.empty((len(ns), n_seeds, T))
    pF = np.empty((len(ns), n_seeds, T, len(case.data.y)))
    for a, n in enumerate(ns):
        for b, s in enumerate(seeds):
            m, risk, F, _ = results[(n, s)]
            prisk[a, b], pF[a, b] = risk, F
            for name in METRIC_NAMES:
                metrics[name][a, b] = m[name]
    sup = {k: np.nanmax(v, axis=2) for k, v in metrics.items()}
    end = {k: v[:, :, -1] for k, v in metrics.items()}
    fits, fits_end = _fits(ns, sup, case.d), _fits(ns, end, case.d)

    # 3. one self-describing file: the PDE result copied in, plus the study
    table = pde.info.case_table()  # the case as the PDE ran it, with the study's N, seeds and save times
    table.setdefault("study", {}).update(n=list(ns), seeds=n_seeds)
    if case.particles.save_every is not None:
        table.setdefault("particles", {})["save_every"] = case.particles.save_every
    info = RunInfo.of_case(case, run_provenance(case, comm.size, t0), table)
    result = StudyResult(info=info, pde=pde, N=np.array(ns), seeds=np.array(seeds), t=pde.t, metrics=metrics,
                         particles_risk=prisk, particles_F=pF, fit=fits, fit_t_end=fits_end, example_theta=example,
                         example_N=max(ns), example_seed=0, pde_file=str(pde_file))
    path = study_path(case, out)
    result.to_file(path)

    lines = [f"study of {case.name}: N = {ns[0]}..{ns[-1]} ({len(ns)} values), {n_seeds} seeds, "
             f"t_end = {case.dynamics.t_end:g}, "
             + (f"PDE {pde.num_cells} {pde.cell_type} cells DG{pde.degree}" if reference == "pde"
                else f"limit {pde.description}")]
    for name in METRIC_NAMES:
        f = fits[name]
        mean, lo, hi = mean_ci(sup[name][-1])
        lines.append(f"  {name:17s} slope {f.slope:+.3f}  CI [{f.ci[0]:+.3f}, {f.ci[1]:+.3f}]  "
                     f"theory {f.theory:>17s} ({f.theory_slope:+.3f});  at N={ns[-1]}: {mean:.2e}")
    report = None
    if plots:
        from mfpde.report.figures import plot_file
        from mfpde.report.study import write_report

        figures = plot_file(path, out_dir=out)
        if reference == "limit":
            from mfpde.report.clt import clt_figure

            fig = clt_figure(result, out / f"{case.name}.study.clt.png")
            figures += [fig] if fig is not None else []
        report = write_report(result, figures, out / f"{case.name}.report.md", source=path)
    return {"path": path, "report": report, "fits": fits, "fits_t_end": fits_end, "lines": lines, "result": result}


def study_case(case: Case, ns=None, n_seeds=None) -> Case:
    """The case a study runs: ``[study] n`` and ``seeds`` overridden (checked as in the case file),
    and the particles saving at the reference's times (a copy: ``case`` is not changed)."""
    case = case.with_overrides(study=given(n=None if ns is None else [int(n) for n in ns],
                                           seeds=None if n_seeds is None else int(n_seeds)))
    every = case.limit.save_every if study_reference(case) == "limit" else case.pde.save_every
    return case.with_overrides(particles={"save_every": every})


def study_reference(case: Case) -> str:
    """``"limit"`` when ``[study] reference = "limit"``, or ``"auto"`` and d > 3; else ``"pde"``."""
    ref = case.study.reference
    return "limit" if ref == "limit" or (ref == "auto" and case.d > 3) else "pde"


def _metrics_of(pde, obs: dict, w_times, grid) -> dict:
    from mfpde.runs.compare import particle_metrics

    if len(obs["t"]) != len(pde.t) or np.any(np.abs(obs["t"] - pde.t) > 1e-9):
        raise RuntimeError("particle and PDE saved times differ")
    return particle_metrics(pde, obs["t"], obs["F"], obs["risk"], obs["moments"], obs["theta"],
                            wasserstein_times=w_times, wasserstein_grid=grid)
