r"""Lazy (NTK) against mean-field training on the same circuit and data (DESIGN 10.4).

For each N and seed the particles are trained twice from the same initial
experts :math:`\theta_i(0)`: in the mean-field scaling (section 1) and in the
NTK scaling (:mod:`mfpde.model.ntk`).  Per run:

.. math::

    \mathrm{displacement} = \frac1N \sum_i \big|\,[\theta_i(t_{end}) - \theta_i(0)]\,\big|,
    \qquad [a]_j \in [-\pi, \pi) \text{ (the difference wrapped on the torus)},

    \mathrm{kernel\_change} = \frac{\|\hat\Theta(t_{end}) - \hat\Theta(0)\|_F}{\|\hat\Theta(0)\|_F},
    \qquad \hat\Theta_{kl}(t) = \frac1N\sum_i \nabla\phi(x_k;\theta_i(t))\cdot\nabla\phi(x_l;\theta_i(t)),

and the risk curve.  The limits: the mean-field risk from the PDE
(:func:`mfpde.runs.pde.run_pde`, d <= 3) and the NTK risk in closed form
(:func:`mfpde.model.ntk.limit_risk`).  Slopes of displacement and kernel change
against N are fitted with a bootstrap over seeds (:func:`mfpde.analysis.rates.fit_rate`):
0 is the mean-field prediction, -1/2 the NTK one.

Time scale: both scalings use the same ``lr`` and ``t_end``.  At t = 0 their
residuals obey the same linear law :math:`\dot r = -\mathrm{lr}\,\Theta W r`
(the mean-field output moves with the kernel of the current density, which is
:math:`\Theta` at t = 0), so the two risk curves start with the same slope; if
the mean-field output at t = 0 (:math:`F_{\rho_0}`) differs from 0 their
starting residuals differ.  Afterwards the mean-field kernel changes (the
experts move, features are learned) while the NTK kernel stays frozen.

Under ``mpirun -n P`` the PDE runs on all ranks and the (scaling, N, seed)
particle runs are dealt round-robin to the ranks, largest N first (each run on
one rank), as in :mod:`mfpde.runs.study`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.analysis.rates import fit_rate
from mfpde.config.case import Case, given
from mfpde.config.rules import SCALINGS, check_tau
from mfpde.config.budgets import check_regimes_budget
from mfpde.io.results import RegimesResult, RunInfo
from mfpde.model.ntk import empirical_kernel, limit_risk, ntk_kernel
from mfpde.parallel import agree
from mfpde.io.paths import output_dir, result_path
from mfpde.report.regimes import QUANTITIES, summary_lines, write_regimes_report
from mfpde.runs.common import run_provenance
from mfpde.runs.ensemble import run_ensemble
from mfpde.runs.particles import run_particles
from mfpde.runs.pde import check_pde_case, run_pde

# predicted slope against N: (value, text).  The NTK kernel change is N^{-1/2} E[grad h . u] + O(1/N)
# (h the kernel entries, u the N^{-1/2}-scaled velocity integrated over time); its leading term vanishes
# under a symmetry of rho_0 and phi (uniform rho_0 and phi(theta + pi e_j) = -phi(theta), as in the
# default circuit), and the slope is then -1.
PREDICTED = {("mean-field", "displacement"): (0.0, "0"), ("mean-field", "kernel_change"): (0.0, "0"),
             ("ntk", "displacement"): (-0.5, "-1/2"), ("ntk", "kernel_change"): (-0.5, "-1/2 or steeper")}


def regimes_path(case: Case, out_dir=None) -> Path:
    return result_path(case, "regimes", out_dir)


def with_scaling(case: Case, scaling: str) -> Case:
    """A copy of ``case`` in the given scaling, saving at the PDE's times (:meth:`Case.with_overrides`)."""
    return case.with_overrides(dynamics={"scaling": scaling}, particles={"save_every": case.pde.save_every})


def torus_displacement(theta0: np.ndarray, theta1: np.ndarray) -> np.ndarray:
    """Torus distance of each expert (M,): differences wrapped into [-pi, pi)."""
    diff = np.mod(theta1 - theta0 + np.pi, 2 * np.pi) - np.pi
    return np.linalg.norm(diff, axis=-1)


def kernel_change(expert_at, theta0: np.ndarray, theta1: np.ndarray) -> float:
    """Relative Frobenius change of the empirical kernel between two sets of positions."""
    k0 = empirical_kernel(expert_at(theta0)[1])
    k1 = empirical_kernel(expert_at(theta1)[1])
    return float(np.linalg.norm(k1 - k0) / np.linalg.norm(k0))


def check_regimes_case(case: Case) -> None:
    """What ``regimes`` needs beyond a valid case: tau = 0 (the NTK limit is noiseless)."""
    check_tau("regimes", case.dynamics.tau)
    if case.d <= 3:
        check_pde_case(with_scaling(case, "mean-field"))


def run_regimes(case: Case, ns=None, n_seeds=None, *, out_dir=None, comm: MPI.Comm = MPI.COMM_WORLD,
                progress: bool = True, plots: bool = True) -> dict:
    """Run the experiment; rank 0 writes ``NAME.regimes.h5`` (and the report).

    Parameters
    ----------
    case : mfpde.config.case.Case
        The case (mean-field scaling; its ``ntk`` twin is derived from it).
    ns : list of int, optional
        Particle numbers N, at least two distinct (default ``[regimes] n``).
    n_seeds : int, optional
        Seeds per N (default ``[regimes] seeds``).
    out_dir : str or Path, optional
        Directory of the files (default: the case's).
    comm : mpi4py.MPI.Comm
        The runs are dealt over these ranks.
    progress : bool
        Progress on rank 0.
    plots : bool
        Write the figures and the report.

    Returns
    -------
    dict
        ``path`` (``NAME.regimes.h5``), ``report`` (or None), ``fits`` (scaling -> quantity ->
        slope, ci, intercept, r2, predicted) and printable ``lines``; meaningful on rank 0.
    """
    t0 = time.perf_counter()
    case = case.with_overrides(regimes=given(n=ns, seeds=n_seeds))  # checked as [regimes] n and seeds
    ns, n_seeds = case.regimes.n, case.regimes.seeds
    seeds = list(range(n_seeds))
    check_regimes_case(case)
    agree(comm, check_regimes_budget, case, max(ns), None, comm.size, root_only=True)
    out = output_dir(case, out_dir)
    cases = {s: with_scaling(case, s) for s in SCALINGS}
    times = np.array(case.save_times(case.pde.save_every))

    # 1. the limits: NTK in closed form, mean-field from the PDE on all ranks
    kernel = ntk_kernel(case.expert, case.data.x, case.init)
    ntk_risk = limit_risk(kernel, case.data.w, case.data.y, case.dynamics.lr, times)
    mf_risk, pde_file = np.full(len(times), np.nan), None
    if case.d <= 3:
        obs, pde_file = run_pde(cases["mean-field"], out_dir=out, comm=comm, progress=progress)
        mf_risk = obs["risk"]

    # 2. particle runs, round-robin over ranks, largest N first
    tasks = [(sc, n, s) for n in sorted(ns, reverse=True) for s in seeds for sc in SCALINGS]
    expert_at = case.expert.bind(case.data.x)

    def particle_run(task):
        sc, n, s = task
        obs, _ = run_particles(cases[sc], n, s, write=False, comm=MPI.COMM_SELF, progress=False)
        th0, th1 = obs["theta"][0], obs["theta"][-1]
        disp = torus_displacement(th0, th1)
        snap = {"theta0": th0, "theta_end": th1, "displacement": disp} if (n == ns[-1] and s == 0) else None
        return disp.mean(), kernel_change(expert_at, th0, th1), obs["risk"], snap

    results = run_ensemble(tasks, particle_run, comm, progress=progress, title="regimes runs")
    if comm.rank != 0:
        return {"path": None, "report": None, "fits": None, "lines": []}
    snapshot = {sc: results[(sc, ns[-1], 0)][3] for sc in SCALINGS}

    per_scaling, fits = {}, {}
    for sc in SCALINGS:
        arr = {q: np.empty((len(ns), n_seeds)) for q in QUANTITIES}
        arr["risk"] = np.empty((len(ns), n_seeds, len(times)))
        for a, n in enumerate(ns):
            for b, s in enumerate(seeds):
                arr["displacement"][a, b], arr["kernel_change"][a, b], arr["risk"][a, b] = results[(sc, n, s)][:3]
        per_scaling[sc] = arr
        fits[sc] = {}
        for q in QUANTITIES:
            f = fit_rate(ns, arr[q])
            fits[sc][q] = {"slope": f["slope"], "ci": np.asarray(f["ci"]), "intercept": f["intercept"],
                           "r2": f["r2"], "predicted": PREDICTED[sc, q][0], "predicted_text": PREDICTED[sc, q][1]}

    regimes = {
        "N": np.array(ns), "seeds": np.array(seeds), "t": times, "lr": case.dynamics.lr,
        **per_scaling,
        "ntk_limit": {"risk": ntk_risk, "kernel": kernel},
        "mean-field_limit": {"risk": mf_risk, "source": "pde" if pde_file else "none (d > 3)",
                             "file": str(pde_file) if pde_file else ""},
        "fit": fits,
        "snapshot": {**snapshot, "N": ns[-1], "seed": 0},
    }
    path = regimes_path(case, out)
    RegimesResult(info=RunInfo.of_case(case, run_provenance(case, comm.size, t0)),
                  regimes=regimes).to_file(path)

    lines = summary_lines(path)
    report = write_regimes_report(path, out) if plots else None
    return {"path": path, "report": report, "fits": fits, "lines": lines}
