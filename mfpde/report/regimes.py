"""The regimes report: summary lines and figures of a ``NAME.regimes.h5`` file
(lazy versus mean-field displacement and kernel change over N, risk curves)."""

from __future__ import annotations
import numpy as np
import os
from mfpde.analysis.rates import mean_ci
from mfpde.config.case import SCALINGS
from mfpde.io.paths import atomic_write_text
from mfpde.io.results import RegimesResult
from mfpde.report.style import clip_band, log_floor, mpl, note_clipped, save as _save, subsample, torus_axis
from pathlib import Path

QUANTITIES = ("displacement", "kernel_change")


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


COLORS = {"mean-field": "tab:blue", "ntk": "tab:red"}


#: quantity -> (panel title, y label)
VS_N_LABELS = {
    "displacement": ("mean torus displacement",
                     r"mean over experts of $|\theta_i(t_{end}) - \theta_i(0)|$ (torus)"),
    "kernel_change": ("relative kernel change",
                      r"$\|\Theta(t_{end}) - \Theta(0)\|_F \,/\, \|\Theta(0)\|_F$"),
}


def _figure_vs_n(reg, out: Path) -> Path:
    """Displacement and kernel change against N (log-log), both scalings: mean over seeds with the 95% CI
    (lower bars clipped at a positive floor, said in the legend), the fitted line and the predicted slope
    anchored at the first N (dotted, in the legend)."""
    plt = mpl()
    N = reg["N"].astype(float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    for ax, q in zip(axes, QUANTITIES):
        stats = {sc: mean_ci(reg[sc][q]) for sc in SCALINGS}
        floor = log_floor(*[m for m, _, _ in stats.values()])
        clipped = False
        for sc in SCALINGS:
            mean, lo, hi = stats[sc]
            low, cut = clip_band(lo, floor)
            clipped |= cut
            f = reg["fit"][sc][q]
            ax.errorbar(N, mean, yerr=[mean - low, hi - mean], fmt="o", color=COLORS[sc], capsize=3,
                        label=f"{sc}: mean over {reg[sc][q].shape[1]} seeds (95% CI)")
            ax.plot(N, np.exp(f["intercept"]) * N ** f["slope"], "-", color=COLORS[sc], lw=1,
                    label=f"{sc} fit: slope {f['slope']:+.2f} [{f['ci'][0]:+.2f}, {f['ci'][1]:+.2f}]")
            ax.plot(N, mean[0] * (N / N[0]) ** f["predicted"], ":", color=COLORS[sc], lw=1.4,
                    label=f"{sc} theory: slope {f['predicted_text']}")
        if clipped:
            note_clipped(ax, floor)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(N, [str(int(n)) for n in N])
        ax.minorticks_off()
        ax.set_xlabel("number of experts $N$")
        title, ylabel = VS_N_LABELS[q]
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(f"{title} at t = {reg['t'][-1]:g}", fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, out / f"{reg['name']}.regimes.vs_n.png")


def _figure_risk(reg, out: Path) -> Path:
    plt = mpl()
    t, N = reg["t"], reg["N"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, constrained_layout=True)
    for ax, sc in zip(axes, SCALINGS):
        shades = np.linspace(0.35, 1.0, len(N))
        for a, n in enumerate(N):
            ax.plot(t, reg[sc]["risk"][a].mean(axis=0), color=COLORS[sc], alpha=shades[a], label=f"N = {n}")
        ax.plot(t, reg["ntk_limit"]["risk"], "k--", label="NTK limit")
        ax.plot(t, reg["mean-field_limit"]["risk"], "k:", lw=2, label="mean-field limit (PDE)")
        ax.set_yscale("log")
        ax.set_xlabel("time $t$")
        ax.set_ylabel(r"risk $R = \frac{1}{2}\sum_k w_k (F(x_k) - y_k)^2$")
        ax.set_title(f"{sc} particles (mean over seeds) and both limits", fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, out / f"{reg['name']}.regimes.risk.png")


def _figure_snapshot(reg, out: Path) -> Path | None:
    snap = reg["snapshot"]
    if any(sc not in snap for sc in SCALINGS) or snap["mean-field"]["theta_end"].shape[1] < 2:
        return None
    plt = mpl()
    from matplotlib.colors import LogNorm

    all_disp = np.concatenate([snap[sc]["displacement"] for sc in SCALINGS])
    positive = all_disp[all_disp > 0]
    norm = LogNorm(vmin=max(positive.min(), 1e-6), vmax=positive.max())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    for ax, sc in zip(axes, SCALINGS):
        th, disp = snap[sc]["theta_end"], snap[sc]["displacement"]
        both, shown = subsample(np.column_stack([np.mod(th[:, :2], 2 * np.pi), disp]))
        sca = ax.scatter(both[:, 0], both[:, 1], c=np.maximum(both[:, 2], norm.vmin), s=3, norm=norm,
                         cmap="viridis")
        torus_axis(ax)
        ax.set_aspect("equal")
        ax.set_title(f"{sc}: experts at t = {reg['t'][-1]:g} (seed 0, {shown}), "
                     f"median move {np.median(disp):.2g}", fontsize=9)
    fig.colorbar(sca, ax=axes, label=r"$|\theta_i(t_{end}) - \theta_i(0)|$ (torus)")
    return _save(fig, out / f"{reg['name']}.regimes.snapshot.png")


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
    atomic_write_text(report, "\n".join(lines))
    return report
