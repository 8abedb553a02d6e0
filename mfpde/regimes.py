r"""Lazy (NTK) against mean-field training on the same circuit and data (DESIGN 10.4).

For each N and seed the particles are trained twice from the same initial
experts :math:`\theta_i(0)`: in the mean-field scaling (section 1) and in the
NTK scaling (:mod:`mfpde.ntk`).  Per run:

.. math::

    \mathrm{displacement} = \frac1N \sum_i \big|\,[\theta_i(t_{end}) - \theta_i(0)]\,\big|,
    \qquad [a]_j \in [-\pi, \pi) \text{ (the difference wrapped on the torus)},

    \mathrm{kernel\_change} = \frac{\|\hat\Theta(t_{end}) - \hat\Theta(0)\|_F}{\|\hat\Theta(0)\|_F},
    \qquad \hat\Theta_{kl}(t) = \frac1N\sum_i \nabla\phi(x_k;\theta_i(t))\cdot\nabla\phi(x_l;\theta_i(t)),

and the risk curve.  The limits: the mean-field risk from the PDE
(:func:`mfpde.runs.run_pde`, d <= 3) and the NTK risk in closed form
(:func:`mfpde.ntk.limit_risk`).  Slopes of displacement and kernel change
against N are fitted with a bootstrap over seeds (:func:`mfpde.metrics.fit_rate`):
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
one rank), as in :mod:`mfpde.study`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .case import SCALINGS, Case
from .errors import CaseError
from .metrics import fit_rate, mean_ci
from .ntk import empirical_kernel, limit_risk, ntk_kernel
from .progress import Progress
from .results import RegimesResult, RunInfo
from .runs import check_pde_case, run_particles, run_provenance, run_pde

QUANTITIES = ("displacement", "kernel_change")
# predicted slope against N: (value, text).  The NTK kernel change is N^{-1/2} E[grad h . u] + O(1/N)
# (h the kernel entries, u the N^{-1/2}-scaled velocity integrated over time); its leading term vanishes
# under a symmetry of rho_0 and phi (uniform rho_0 and phi(theta + pi e_j) = -phi(theta), as in the
# default circuit), and the slope is then -1.
PREDICTED = {("mean-field", "displacement"): (0.0, "0"), ("mean-field", "kernel_change"): (0.0, "0"),
             ("ntk", "displacement"): (-0.5, "-1/2"), ("ntk", "kernel_change"): (-0.5, "-1/2 or steeper")}


def regimes_path(case: Case, out_dir=None) -> Path:
    return Path(out_dir if out_dir is not None else case.output_dir) / f"{case.name}.regimes.h5"


def with_scaling(case: Case, scaling: str) -> Case:
    """A copy of ``case`` in the given scaling, saving at the PDE's times."""
    c = copy.copy(case)
    c.table = {**case.table, "dynamics": {**case.table.get("dynamics", {}), "scaling": scaling}}
    c.dynamics = dataclasses.replace(case.dynamics, scaling=scaling)
    c.particles = dataclasses.replace(case.particles, save_every=case.pde.save_every)
    return c


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
    if case.dynamics.tau > 0:
        raise CaseError("dynamics.tau", f"regimes compares noiseless limits: needs tau = 0, got {case.dynamics.tau}")
    if case.d <= 3:
        check_pde_case(with_scaling(case, "mean-field"))


def run_regimes(case: Case, ns=None, n_seeds=None, *, out_dir=None, comm: MPI.Comm = MPI.COMM_WORLD,
                progress: bool = True, plots: bool = True) -> dict:
    """Run the experiment; rank 0 writes ``NAME.regimes.h5`` (and the report).

    Returns a dict with ``path``, ``report``, ``fits`` and printable ``lines``
    (meaningful on rank 0).
    """
    t0 = time.perf_counter()
    ns = sorted(set(ns or case.regimes.n))
    if len(ns) < 2:
        raise CaseError("regimes.n", "needs at least two distinct values to fit a slope")
    n_seeds = int(n_seeds or case.regimes.seeds)
    seeds = list(range(n_seeds))
    check_regimes_case(case)
    out = Path(out_dir if out_dir is not None else case.output_dir)
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
    bar = Progress(len(tasks), "regimes runs", enabled=progress and comm.rank == 0, label="runs")
    results, snapshot = {}, {}
    for sc, n, s in tasks[comm.rank::comm.size]:
        obs, _ = run_particles(cases[sc], n, s, write=False, comm=MPI.COMM_SELF, progress=False)
        th0, th1 = obs["theta"][0], obs["theta"][-1]
        disp = torus_displacement(th0, th1)
        results[(sc, n, s)] = (disp.mean(), kernel_change(expert_at, th0, th1), obs["risk"])
        if n == ns[-1] and s == 0:
            snapshot[sc] = {"theta0": th0, "theta_end": th1, "displacement": disp}
        bar.update(comm.size)
    bar.close()

    gathered = comm.gather((results, snapshot), root=0)
    if comm.rank != 0:
        return {"path": None, "report": None, "fits": None, "lines": []}
    for r, snap in gathered:
        results.update(r)
        snapshot.update(snap)

    per_scaling, fits = {}, {}
    for sc in SCALINGS:
        arr = {q: np.empty((len(ns), n_seeds)) for q in QUANTITIES}
        arr["risk"] = np.empty((len(ns), n_seeds, len(times)))
        for a, n in enumerate(ns):
            for b, s in enumerate(seeds):
                arr["displacement"][a, b], arr["kernel_change"][a, b], arr["risk"][a, b] = results[(sc, n, s)]
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


# ------------------------------------------------------------------ reading back


def _read(path) -> dict:
    result = RegimesResult.from_file(path)
    reg = dict(result.regimes)
    reg["name"] = result.info.case_name or Path(path).stem
    reg["wall_time_s"], reg["mpi_size"] = result.info.provenance["wall_time_s"], result.info.provenance["mpi_size"]
    return reg


def final_risk_gaps(reg: dict) -> dict:
    """At the largest N: mean final particle risk over seeds (with CI) and its relative gap to each limit."""
    out = {}
    for sc, limit in (("mean-field", "mean-field_limit"), ("ntk", "ntk_limit")):
        mean, lo, hi = mean_ci(reg[sc]["risk"][-1, :, -1])
        ref = float(reg[limit]["risk"][-1])
        out[sc] = {"mean": float(mean), "lo": float(lo), "hi": float(hi), "limit": ref,
                   "rel_gap": float(abs(mean - ref) / ref) if ref > 0 else float("nan")}
    return out


def summary_lines(path) -> list[str]:
    reg = _read(path)
    N = reg["N"]
    lines = [f"regimes of {reg['name']}: N = {N[0]}..{N[-1]} ({len(N)} values), {len(reg['seeds'])} seeds, "
             f"t_end = {reg['t'][-1]:g}, lr = {reg['lr']:g}, wall {reg['wall_time_s']:.1f} s on {reg['mpi_size']} rank(s)"]
    for sc in SCALINGS:
        for q in QUANTITIES:
            f = reg["fit"][sc][q]
            lines.append(f"  {sc:10s} {q:13s} slope {f['slope']:+.3f}  CI [{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}]  "
                         f"(predicted {f['predicted_text']})")
    for sc, g in final_risk_gaps(reg).items():
        lines.append(f"  {sc:10s} final risk at N={N[-1]}: {g['mean']:.4e} [{g['lo']:.4e}, {g['hi']:.4e}]  "
                     f"limit {g['limit']:.4e}  relative gap {100 * g['rel_gap']:.2f}%")
    return lines


# ------------------------------------------------------------------ figures and report


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


COLORS = {"mean-field": "tab:blue", "ntk": "tab:red"}


def _figure_vs_n(reg, out: Path) -> Path:
    plt = _plt()
    N = reg["N"].astype(float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    labels = {"displacement": "mean torus displacement", "kernel_change": "relative kernel change"}
    for ax, q in zip(axes, QUANTITIES):
        for sc in SCALINGS:
            mean, lo, hi = mean_ci(reg[sc][q])
            f = reg["fit"][sc][q]
            ax.errorbar(N, mean, yerr=[mean - lo, hi - mean], fmt="o", color=COLORS[sc], capsize=3,
                        label=f"{sc}: slope {f['slope']:+.2f} [{f['ci'][0]:+.2f}, {f['ci'][1]:+.2f}]")
            ax.plot(N, np.exp(f["intercept"]) * N ** f["slope"], "-", color=COLORS[sc], lw=1)
            ax.plot(N, mean[0] * (N / N[0]) ** f["predicted"], ":", color="gray", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("N (experts)")
        ax.set_title(f"{labels[q]} at t = {reg['t'][-1]:g} (dotted: slope 0 and -1/2)", fontsize=9)
        ax.legend(fontsize=8)
    path = out / f"{reg['name']}.regimes.vs_n.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _figure_risk(reg, out: Path) -> Path:
    plt = _plt()
    t, N = reg["t"], reg["N"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, constrained_layout=True)
    for ax, sc in zip(axes, SCALINGS):
        shades = np.linspace(0.35, 1.0, len(N))
        for a, n in enumerate(N):
            ax.plot(t, reg[sc]["risk"][a].mean(axis=0), color=COLORS[sc], alpha=shades[a], label=f"N = {n}")
        ax.plot(t, reg["ntk_limit"]["risk"], "k--", label="NTK limit")
        ax.plot(t, reg["mean-field_limit"]["risk"], "k:", lw=2, label="mean-field limit (PDE)")
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_title(f"{sc} particles (mean over seeds) and both limits", fontsize=9)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("risk")
    path = out / f"{reg['name']}.regimes.risk.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _figure_snapshot(reg, out: Path) -> Path | None:
    snap = reg["snapshot"]
    if any(sc not in snap for sc in SCALINGS) or snap["mean-field"]["theta_end"].shape[1] < 2:
        return None
    plt = _plt()
    from matplotlib.colors import LogNorm

    all_disp = np.concatenate([snap[sc]["displacement"] for sc in SCALINGS])
    positive = all_disp[all_disp > 0]
    norm = LogNorm(vmin=max(positive.min(), 1e-6), vmax=positive.max())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    rng = np.random.default_rng(0)
    for ax, sc in zip(axes, SCALINGS):
        th, disp = snap[sc]["theta_end"], snap[sc]["displacement"]
        pick = rng.permutation(len(th))[:4000]
        sca = ax.scatter(th[pick, 0], th[pick, 1], c=np.maximum(disp[pick], norm.vmin), s=3, norm=norm, cmap="viridis")
        ax.set_xlim(0, 2 * np.pi)
        ax.set_ylim(0, 2 * np.pi)
        ax.set_xlabel(r"$\theta_1$")
        ax.set_ylabel(r"$\theta_2$")
        ax.set_title(f"{sc}: experts at t = {reg['t'][-1]:g} (N = {snap['N']}, seed 0), "
                     f"median move {np.median(disp):.2g}", fontsize=9)
    fig.colorbar(sca, ax=axes, label=r"$|\theta_i(t_{end}) - \theta_i(0)|$ (torus)")
    path = out / f"{reg['name']}.regimes.snapshot.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _figures(reg: dict, out: Path) -> list[Path | None]:
    return [_figure_vs_n(reg, out), _figure_risk(reg, out), _figure_snapshot(reg, out)]


def regimes_figures(path, out_dir=None) -> list[Path]:
    """The figures of a regimes file (what ``mfpde plot NAME.regimes.h5`` writes)."""
    path = Path(path)
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    return [f for f in _figures(_read(path), out) if f is not None]


def write_regimes_report(path, out_dir=None) -> Path:
    """Figures (displacement and kernel change vs N, risk vs t, snapshot) and the Markdown report."""
    path = Path(path)
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    reg = _read(path)
    figures = _figures(reg, out)
    lines = [f"# mfpde regimes: {reg['name']}", "",
             f"Result file: `{path.name}`. Particles trained in both scalings from the same initial experts; "
             f"N = {', '.join(map(str, reg['N']))}; {len(reg['seeds'])} seeds; lr = {reg['lr']:g}; "
             f"t_end = {reg['t'][-1]:g}; wall time {reg['wall_time_s']:.1f} s on {reg['mpi_size']} rank(s).", "",
             "## Slopes against N", "",
             "quantity ~ C N^slope, least squares of log(mean over seeds) against log N, 95% bootstrap interval over seeds. "
             "The NTK kernel change is N^-1/2 E[grad h . u] + O(1/N); its leading term vanishes under a symmetry of "
             "rho_0 and phi (uniform rho_0 and phi(theta + pi e_j) = -phi(theta), as in the default circuit): "
             "the slope is then -1.", "",
             "| scaling | quantity | slope | 95% CI | predicted |", "|---|---|---|---|---|"]
    for sc in SCALINGS:
        for q in QUANTITIES:
            f = reg["fit"][sc][q]
            lines.append(f"| {sc} | {q} | {f['slope']:+.3f} | [{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}] | "
                         f"{f['predicted_text']} |")
    lines += ["", f"## Final risk at N = {reg['N'][-1]} against the limits", "",
              "| scaling | particles (mean, 95% CI over seeds) | limit | relative gap |", "|---|---|---|---|"]
    for sc, g in final_risk_gaps(reg).items():
        lines.append(f"| {sc} | {g['mean']:.4e} [{g['lo']:.4e}, {g['hi']:.4e}] | {g['limit']:.4e} | "
                     f"{100 * g['rel_gap']:.2f}% |")
    lines += ["", "Both scalings use the same lr and t_end. At t = 0 the two residuals follow the same law "
              "dr/dt = -lr Theta W r (the mean-field output moves with the kernel of the current density, "
              "Theta at t = 0); afterwards the mean-field kernel changes while the NTK kernel stays frozen. "
              f"Mean-field limit: {reg['mean-field_limit']['source']}.", "", "## Figures", ""]
    for fig in figures:
        if fig is not None:
            rel = Path(os.path.relpath(fig.resolve(), out.resolve())).as_posix()
            lines += [f"![{fig.stem.split('.')[-1]}]({rel})", ""]
    report = out / f"{reg['name']}.regimes.md"
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, report)
    return report
