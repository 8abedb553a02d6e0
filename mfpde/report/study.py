"""Markdown report of a study file (``mfpde study`` writes it next to the figures).

:func:`write_report` reads a study result file (DESIGN section 7: ``/study``,
``/pde``, ``/case``, ``/provenance``) and writes a Markdown page with

* the case name as title and a paragraph of what was run (N values, seeds,
  final time, PDE mesh and element, dynamics);
* the table metric | fitted slope (sup over t) | 95% CI | slope at t_end |
  theory | within 0.1 of theory? (and whether the theory slope lies in the CI);
* the figures, embedded with links relative to the report;
* the provenance (git revision, MPI size, wall time, package versions).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mfpde.config.rules import particle_integrator
from mfpde.errors import ResultFileError
from mfpde.report.figures import METRIC_LABELS
from mfpde.report.clt import report_lines as clt_report_lines
from mfpde.io.paths import atomic_write_text
from mfpde.io.results import LimitResult, StudyResult, read_result

TOLERANCE = 0.1  # |fitted slope - theory slope| counted as agreement


def _fmt(x, spec=".3f") -> str:
    return "—" if x is None or not np.isfinite(x) else format(x, spec)


def _list(values, limit=12) -> str:
    vals = [str(int(v)) if float(v).is_integer() else f"{v:g}" for v in np.asarray(values).reshape(-1)]
    if len(vals) > limit:
        vals = vals[: limit // 2] + ["…"] + vals[-limit // 2 :]
    return ", ".join(vals)


def _what_was_run(study: StudyResult) -> str:
    case = study.info.case_table()
    d = study.info.d
    Ns, seeds, ts = np.asarray(study.N), np.asarray(study.seeds), np.asarray(study.t, dtype=float)
    t_end = float(ts[-1]) if ts.size else float(case.get("dynamics", {}).get("t_end", float("nan")))
    dyn = case.get("dynamics", {})
    expert = case.get("expert", {})
    y = study.info.data.get("y")
    K = None if y is None else len(y)
    parts = []
    exp_txt = f"a `{expert['kind']}` expert" if "kind" in expert else "the case's expert"
    data_txt = f", K = {K} data points" if K is not None else ""
    parts.append(f"Mean-field training of a mixture of experts with {exp_txt} on the torus T^{int(d)}{data_txt}")
    if dyn:
        parts[-1] += (f" (learning rate lr = {dyn.get('lr', 1.0):g}, noise tau = {dyn.get('tau', 0.0):g}, "
                      f"initial density `{case.get('init', {}).get('kind', 'uniform')}`)")
    parts[-1] += "."
    if Ns.size:
        parts.append(f"Particles: N in {{{_list(Ns)}}} ({Ns.size} values), {seeds.size} seeds "
                     f"({_list(seeds)}) per N, up to t_end = {t_end:g} with {ts.size} saved times")
        pc = case.get("particles", {})
        if "integrator" in pc or "dt" in pc:
            integrator = particle_integrator(pc.get("integrator", "rk4"), float(dyn.get("tau", 0.0)))  # what ran
            parts[-1] += f"; particle integrator `{integrator}`"
            parts[-1] += f" with dt = {pc['dt']:g}" if isinstance(pc.get("dt"), (int, float)) else ""
        parts[-1] += "."
    pde = study.pde
    if isinstance(pde, LimitResult):
        est = pde.extra.get("error_estimate")
        parts.append(f"Reference: the limit without a mesh (`mfpde limit`), quadrature rule {pde.description}"
                     + (f", estimated error in F {float(np.max(est)):.1e}" if est is not None else "") + ".")
    elif pde is not None:
        C = pde.num_cells
        how = f" ({pde.n} per direction)" if pde.n is not None else (
            f" (read from {Path(pde.mesh_file).name})" if pde.mesh_file else "")
        parts.append(f"PDE: discontinuous Galerkin of degree {pde.degree} on a periodic mesh of {C} "
                     f"{pde.cell_type} cells{how}" + (" moving with the flow" if pde.moving_mesh else "")
                     + (f", {pde.steps} time steps" if pde.steps else "") + ".")
        mass, mn = pde.observables.extra.get("mass"), pde.observables.extra.get("min_rho")
        if mass is not None and mn is not None and mass.size and mass[0]:
            drift = float(np.max(np.abs(mass - mass[0])) / abs(mass[0]))
            parts.append(f"Largest relative mass drift {drift:.2e}; smallest density value {np.min(mn):.3e}.")
    if study.example_theta is not None:
        parts.append(f"The density figure overlays the particles of one run, N = {study.example_N}, "
                     f"seed {study.example_seed}.")
    return " ".join(parts)


def _table(study: StudyResult) -> list[str]:
    lines = ["| metric | fitted slope (sup_t) | 95% CI | slope at t_end | theory | "
             f"within {TOLERANCE:g} of theory? | theory in CI? |",
             "|---|---|---|---|---|---|---|"]
    names = []
    for group in (study.fit, study.fit_t_end, study.metrics):
        names += [k for k in group if k not in names]
    names = [m for m in METRIC_LABELS if m in names] + [m for m in names if m not in METRIC_LABELS]
    for name in names:
        f, fe = study.fit.get(name), study.fit_t_end.get(name)
        desc = METRIC_LABELS.get(name, (None, name))[1]
        end = _fmt(fe.slope) if fe else "—"
        if f is None:
            lines.append(f"| {name} ({desc}) | — | — | {end} | — | — | — |")
            continue
        ts = f.theory_slope
        theory = f"{f.theory} (slope {ts:.3g})" if f.theory else _fmt(ts)
        near = "—" if not (np.isfinite(f.slope) and np.isfinite(ts)) else (
            "yes" if abs(f.slope - ts) <= TOLERANCE else "no")
        lo, hi = f.ci[0], f.ci[-1]
        inside = "—" if not (np.isfinite(lo) and np.isfinite(ts)) else ("yes" if f.theory_in_ci else "no")
        lines.append(f"| {name} ({desc}) | {_fmt(f.slope)} | [{_fmt(lo)}, {_fmt(hi)}] | "
                     f"{end} | {theory} | {near} | {inside} |")
    return lines


def _provenance(prov: dict) -> list[str]:
    if not prov:
        return ["No `/provenance` group in the file."]
    out = []
    for key, label in (("git_revision", "git revision"), ("mpi_size", "MPI size"), ("wall_time_s", "wall time"),
                       ("written", "written"), ("python", "Python"), ("host", "host")):
        if key not in prov:
            continue
        v = prov[key]
        v = f"{float(v):.1f} s" if key == "wall_time_s" else (f"`{v}`" if key == "git_revision" else v)
        out.append(f"- {label}: {v}")
    if "versions" in prov:
        try:
            vs = json.loads(prov["versions"])
            out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in vs.items()))
        except (json.JSONDecodeError, TypeError):
            out.append(f"- versions: {prov['versions']}")
    known = {"git_revision", "mpi_size", "wall_time_s", "written", "python", "host", "versions"}
    out += [f"- {key}: {prov[key]}" for key in sorted(prov) if key not in known and not isinstance(prov[key], dict)]
    return out


_FIGURE_CAPTIONS = {
    "density": ("Density", "PDE density at a few saved times, with the particles of one run on top "
                "(at most 2000 of them, a fixed random subset)."),
    "risk": ("Risk", "Risk against time: the PDE and the particles (mean over seeds, 95% band) for the N drawn "
             "in every figure of this report; on the log axis a band's lower edge is clipped at a positive floor "
             "(the legend says where)."),
    "error_vs_n": ("Error against N (sup over t)",
                   "Errors against N (max over the saved times), log-log: mean over seeds with 95% CI, "
                   "the fitted line and the theoretical slope anchored at the first point."),
    "error_vs_n_t_end": ("Error against N (t_end)", "The same at the final time t_end."),
    "error_vs_t": ("Errors against time", "Every metric against time, mean over seeds, one curve for each of "
                   "the same N as in the risk figure."),
    "conservation": ("Conservation", "PDE mass drift and minimum of the density."),
    "positions": ("Particles", "Particle positions."),
    "metrics": ("Metrics", "Metrics against time."),
    "clt": ("Fluctuations (CLT)", "Left: predicted variance of sqrt(N) f_N(x_k, t) per data point (lines) and N times "
            "the variance over seeds at the largest N (dots). Right: their ratio against time (median over k) "
            "for the same N as in the risk figure, with the 95% chi-square band of the number of seeds."),
}


def _caption(fig: Path) -> tuple[str, str]:
    parts = fig.name.split(".")
    key = parts[-2] if len(parts) >= 2 else fig.stem
    return _FIGURE_CAPTIONS.get(key, (key.replace("_", " ").capitalize(), ""))


def write_report(study, figures, out_path, source=None) -> Path:
    """Write the Markdown report of a study (a :class:`StudyResult` or the path of a study file).

    ``figures`` are linked relative to ``out_path``; ``source`` names the result file in the text.
    """
    out_path = Path(out_path)
    if not isinstance(study, StudyResult):
        source = Path(study)
        study = read_result(source)
        if not isinstance(study, StudyResult):
            raise ResultFileError(f"{source}: a report needs a study file, this one has kind {study.KIND!r}")
    name = study.info.case_name or (Path(source).stem if source else "study")
    lines = [f"# mfpde study: {name}", ""]
    if not study.info.complete:
        lines += ["> **Incomplete run**: the file is marked `complete = false`.", ""]
    lines += [_what_was_run(study), ""]
    if source is not None:
        lines += [f"Result file: `{Path(source).name}`.", ""]
    lines += ["## Convergence rates", "",
              "Error ~ C N^slope, fitted by least squares of log(mean over seeds) against log N; "
              "the interval is a bootstrap over seeds. *sup_t*: the error is the maximum over the saved "
              "times; *t_end*: at the final time.", ""]
    lines += _table(study)
    if any("log" in f.theory for f in study.fit.values()):
        lines += ["", "In d = 2, W1 ~ (log N / N)^1/2: its theory slope in the table is the least-squares slope "
                  "of that curve over the N of the study, shallower than -1/2."]
    if study.info.d == 3 and "wasserstein" in study.fit:
        lines += ["", "In d = 3, W1 is computed on a fixed 16^3 grid, coarser than the transport scale N^-1/3 "
                  "at these N: its fitted slope is biased toward -1/2 and does not test the theory's -1/3."]
    lines += clt_report_lines(study)
    lines += ["", "## Figures", ""]
    base = out_path.parent.resolve()
    for fig in figures or []:
        fig = Path(fig)
        rel = Path(os.path.relpath(fig.resolve(), base)).as_posix()
        title, cap = _caption(fig)
        lines += [f"### {title}", ""] + ([cap, ""] if cap else []) + [f"![{title}]({rel})", ""]
    lines += ["## Provenance", ""]
    lines += _provenance(study.info.provenance)
    lines.append("")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, "\n".join(lines))
    return out_path
