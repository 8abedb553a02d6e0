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
import tomllib
from pathlib import Path

import h5py
import numpy as np

from .errors import ResultFileError
from .plot import METRIC_LABELS, _text

TOLERANCE = 0.1  # |fitted slope - theory slope| counted as agreement


def _num(g, key, default=float("nan")) -> float:
    try:
        return float(np.asarray(g[key][()]).reshape(-1)[0]) if key in g else default
    except (TypeError, ValueError):
        return default


def _fmt(x, spec=".3f") -> str:
    return "—" if x is None or not np.isfinite(x) else format(x, spec)


def _fit(h5, group: str, name: str) -> dict | None:
    key = f"study/{group}/{name}"
    if key not in h5:
        return None
    g = h5[key]
    ci = np.asarray(g["ci"][()], dtype=float).reshape(-1) if "ci" in g else np.array([np.nan, np.nan])
    return {"slope": _num(g, "slope"), "ci": ci, "theory_slope": _num(g, "theory_slope"),
            "theory": _text(g["theory"][()]) if "theory" in g else ""}


def _list(values, limit=12) -> str:
    vals = [str(int(v)) if float(v).is_integer() else f"{v:g}" for v in np.asarray(values).reshape(-1)]
    if len(vals) > limit:
        vals = vals[: limit // 2] + ["…"] + vals[-limit // 2 :]
    return ", ".join(vals)


def _case(h5) -> dict:
    if "case" not in h5:
        return {}
    try:
        return tomllib.loads(_text(h5["case"][()]))
    except tomllib.TOMLDecodeError:
        return {}


def _what_was_run(h5) -> str:
    case = _case(h5)
    d = h5.attrs.get("d")
    Ns = np.asarray(h5["study/N"][()]) if "study/N" in h5 else np.array([])
    seeds = np.asarray(h5["study/seeds"][()]) if "study/seeds" in h5 else np.array([])
    ts = np.asarray(h5["study/t"][()], dtype=float) if "study/t" in h5 else np.array([])
    t_end = float(ts[-1]) if ts.size else float(case.get("dynamics", {}).get("t_end", float("nan")))
    dyn = case.get("dynamics", {})
    expert = case.get("expert", {})
    K = h5["data/y"].shape[0] if "data/y" in h5 else None
    parts = []
    exp_txt = f"a `{expert['kind']}` expert" if "kind" in expert else "the case's expert"
    dim = f" on the torus T^{int(d)}" if d is not None else ""
    data_txt = f", K = {K} data points" if K is not None else ""
    parts.append(f"Mean-field training of a mixture of experts with {exp_txt}{dim}{data_txt}")
    if dyn:
        parts[-1] += (f" (learning rate lr = {dyn.get('lr', 1.0):g}, noise tau = {dyn.get('tau', 0.0):g}, "
                      f"initial density `{case.get('init', {}).get('kind', 'uniform')}`)")
    parts[-1] += "."
    if Ns.size:
        parts.append(f"Particles: N in {{{_list(Ns)}}} ({Ns.size} values), {seeds.size} seeds "
                     f"({_list(seeds)}) per N, up to t_end = {t_end:g} with {ts.size} saved times")
        pc = case.get("particles", {})
        if "integrator" in pc or "dt" in pc:
            parts[-1] += "; particle integrator " + (f"`{pc['integrator']}`" if "integrator" in pc else "(default)")
            parts[-1] += f" with dt = {pc['dt']:g}" if isinstance(pc.get("dt"), (int, float)) else ""
        parts[-1] += "."
    if "pde" in h5:
        p = h5["pde"]
        cell = _text(p["cell_type"][()]) if "cell_type" in p else "?"
        deg = int(_num(p, "degree", -1))
        C = p["mesh/vertices"].shape[0] if "mesh/vertices" in p else None
        n = _num(p, "n")
        steps = _num(p, "steps")
        mesh = f"{C} {cell} cells" + (f" ({int(n)} per direction)" if np.isfinite(n) else "")
        parts.append(f"PDE: discontinuous Galerkin of degree {deg} on a periodic mesh of {mesh}"
                     + (f", {int(steps)} time steps" if np.isfinite(steps) else "") + ".")
        if "observables/mass" in h5 and "observables/min_rho" in h5:
            mass = np.asarray(h5["observables/mass"][()], dtype=float)
            mn = np.asarray(h5["observables/min_rho"][()], dtype=float)
            drift = float(np.max(np.abs(mass - mass[0])) / abs(mass[0])) if mass.size and mass[0] else float("nan")
            parts.append(f"Largest relative mass drift {drift:.2e}; smallest density value {np.min(mn):.3e}.")
    if "study/example/N" in h5:
        parts.append(f"The density figure overlays the particles of one run, N = {int(_num(h5, 'study/example/N'))}, "
                     f"seed {int(_num(h5, 'study/example/seed', -1))}.")
    return " ".join(parts)


def _table(h5) -> list[str]:
    lines = ["| metric | fitted slope (sup_t) | 95% CI | slope at t_end | theory | "
             f"within {TOLERANCE:g} of theory? | theory in CI? |",
             "|---|---|---|---|---|---|---|"]
    names = []
    for group in ("fit", "fit_t_end", "metrics"):
        if f"study/{group}" in h5:
            names += [k for k in h5[f"study/{group}"] if k not in names]
    names = [m for m in METRIC_LABELS if m in names] + [m for m in names if m not in METRIC_LABELS]
    for name in names:
        f, fe = _fit(h5, "fit", name), _fit(h5, "fit_t_end", name)
        desc = METRIC_LABELS.get(name, (None, name))[1]
        if f is None:
            lines.append(f"| {name} ({desc}) | — | — | {_fmt(fe['slope']) if fe else '—'} | — | — | — |")
            continue
        ts = f["theory_slope"]
        theory = f"{f['theory']} (slope {ts:.3g})" if f["theory"] else _fmt(ts)
        if np.isfinite(f["slope"]) and np.isfinite(ts):
            near = "yes" if abs(f["slope"] - ts) <= TOLERANCE else "no"
        else:
            near = "—"
        lo, hi = f["ci"][0], f["ci"][-1]
        inside = "yes" if (np.isfinite(lo) and np.isfinite(ts) and lo <= ts <= hi) else (
            "no" if np.isfinite(lo) and np.isfinite(ts) else "—")
        lines.append(f"| {name} ({desc}) | {_fmt(f['slope'])} | [{_fmt(lo)}, {_fmt(hi)}] | "
                     f"{_fmt(fe['slope']) if fe else '—'} | {theory} | {near} | {inside} |")
    return lines


def _provenance(h5) -> list[str]:
    if "provenance" not in h5:
        return ["No `/provenance` group in the file."]
    g = h5["provenance"]

    def get(key):
        return _text(g[key][()]) if key in g else None

    out = []
    for key, label in (("git_revision", "git revision"), ("mpi_size", "MPI size"), ("wall_time_s", "wall time"),
                       ("written", "written"), ("python", "Python"), ("host", "host")):
        v = get(key)
        if v is None:
            continue
        if key == "wall_time_s":
            v = f"{float(v):.1f} s"
        elif key == "git_revision":
            v = f"`{v}`"
        out.append(f"- {label}: {v}")
    versions = get("versions")
    if versions:
        try:
            vs = json.loads(versions)
            out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in vs.items()))
        except json.JSONDecodeError:
            out.append(f"- versions: {versions}")
    known = {"git_revision", "mpi_size", "wall_time_s", "written", "python", "host", "versions"}
    for key in sorted(k for k in g if k not in known and isinstance(g[k], h5py.Dataset)):
        out.append(f"- {key}: {_text(g[key][()])}")
    return out


_FIGURE_CAPTIONS = {
    "density": ("Density", "PDE density at a few saved times, with the particles of one run on top."),
    "risk": ("Risk", "Risk against time: the PDE and the particles (mean over seeds, 95% band) for a few N."),
    "error_vs_n": ("Error against N (sup over t)",
                   "Errors against N (max over the saved times), log-log: mean over seeds with 95% CI, "
                   "the fitted line and the theoretical slope anchored at the first point."),
    "error_vs_n_t_end": ("Error against N (t_end)", "The same at the final time t_end."),
    "error_vs_t": ("Errors against time", "Every metric against time, mean over seeds, one curve per N."),
    "conservation": ("Conservation", "PDE mass drift and minimum of the density."),
    "positions": ("Particles", "Particle positions."),
    "metrics": ("Metrics", "Metrics against time."),
    "clt": ("Fluctuations (CLT)", "Left: predicted variance of sqrt(N) f_N(x_k, t) per data point (lines) and N times "
            "the variance over seeds at the largest N (dots). Right: their ratio against time (median over k) "
            "for every N, with the 95% chi-square band of the number of seeds."),
}


def _caption(fig: Path) -> tuple[str, str]:
    parts = fig.name.split(".")
    key = parts[-2] if len(parts) >= 2 else fig.stem
    return _FIGURE_CAPTIONS.get(key, (key.replace("_", " ").capitalize(), ""))


def write_report(study_h5_path, figures, out_path) -> Path:
    """Write the Markdown report of a study file; ``figures`` are linked relative to ``out_path``."""
    study_h5_path, out_path = Path(study_h5_path), Path(out_path)
    try:
        h5 = h5py.File(study_h5_path, "r")
    except OSError as exc:
        raise ResultFileError(f"{study_h5_path}: not a readable HDF5 file ({exc})") from None
    with h5:
        kind = _text(h5.attrs.get("kind", ""))
        if kind != "study":
            raise ResultFileError(f"{study_h5_path}: a report needs a study file, this one has kind {kind!r}")
        name = _text(h5.attrs.get("case_name", study_h5_path.stem))
        lines = [f"# mfpde study: {name}", ""]
        if not bool(h5.attrs.get("complete", True)):
            lines += ["> **Incomplete run**: the file is marked `complete = false`.", ""]
        lines += [_what_was_run(h5), "", f"Result file: `{study_h5_path.name}`.", "",
                  "## Convergence rates", "",
                  "Error ~ C N^slope, fitted by least squares of log(mean over seeds) against log N; "
                  "the interval is a bootstrap over seeds. *sup_t*: the error is the maximum over the saved "
                  "times; *t_end*: at the final time.", ""]
        lines += _table(h5)
        if any("log" in (_fit(h5, "fit", m) or {}).get("theory", "") for m in h5.get("study/fit", {})):
            lines += ["", "A theory with a log N factor (e.g. N^-1/2 log N) makes the fitted power slightly "
                      "shallower than its slope on a finite range of N."]
        from .clt_report import report_lines

        lines += report_lines(h5)
        lines += ["", "## Figures", ""]
        base = out_path.parent.resolve()
        for fig in figures or []:
            fig = Path(fig)
            rel = Path(os.path.relpath(fig.resolve(), base)).as_posix()
            title, cap = _caption(fig)
            lines += [f"### {title}", ""] + ([cap, ""] if cap else []) + [f"![{title}]({rel})", ""]
        lines += ["## Provenance", ""]
        lines += _provenance(h5)
        lines.append("")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path
