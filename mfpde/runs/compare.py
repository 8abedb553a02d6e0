r"""Particles against the PDE, per saved time (DESIGN section 5).

For the empirical measure :math:`\mu_N` of a particle run and the PDE density
:math:`\rho_t` at the same saved time:

* ``observable_error`` :math:`\max_k |f_N(x_k) - F_\rho(x_k)|`;
* ``risk_error`` :math:`|R_N - R(\rho)|`;
* ``moment_error`` :math:`\max_w |m_w(\mu_N) - m_w(\rho)|` over the saved frequencies;
* ``sobolev`` the negative-Sobolev distance built from those moments
  (:func:`mfpde.analysis.metrics.negative_sobolev`);
* ``wasserstein`` :math:`W_1(\mu_N, \rho_t)` with the periodic ground cost, the
  density discretized by a cell quadrature (:func:`mfpde.numerics.fields.cellwise_quadrature`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfpde.errors import ResultFileError
from mfpde.progress import Progress
from mfpde.analysis.rates import METRIC_NAMES
from mfpde.analysis.metrics import negative_sobolev, wasserstein_torus
from mfpde.io.results import (CompareResult, LimitResult, ParticleResult, PDEResult, RunInfo, StudyResult,
                              read_result)


def load_reference(path) -> PDEResult | LimitResult:
    """The reference of a comparison: a PDE, study or limit file (one line if it is none of them)."""
    ref = read_result(path)
    if isinstance(ref, StudyResult):
        return ref.pde
    if not isinstance(ref, (PDEResult, LimitResult)):
        raise ResultFileError(f"{path}: not a PDE or limit result (kind = {ref.KIND!r})")
    return ref


def wasserstein_times(reference, t) -> set[int] | None:
    """Indices of ``t`` at which the reference has atoms (a limit file may keep its points at some times only)."""
    stored = getattr(reference, "theta_index", None)
    if stored is None:
        return None
    stored = set(int(j) for j in stored)
    return {i for i, ti in enumerate(t) if reference.index_of(ti) in stored}


def common_times(t_a: np.ndarray, t_b: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs of the saved times the two runs share (to 1e-9)."""
    pairs = []
    for i, t in enumerate(t_a):
        j = int(np.argmin(np.abs(t_b - t)))
        if abs(t_b[j] - t) <= 1e-9 * max(1.0, abs(t)):
            pairs.append((i, j))
    return pairs


def particle_metrics(pde: PDEResult, t, F, risk, moments, theta, *,
                     wasserstein_times=None, wasserstein_grid: int | None = None,
                     on_time=None) -> dict[str, np.ndarray]:
    """Every metric at the saved times ``t`` of a particle run (arrays of len(t)).

    ``theta`` (T, N, d); the times must be saved times of the PDE run.
    ``wasserstein_times`` restricts the (costlier) W1 to those indices (NaN elsewhere);
    ``wasserstein_grid`` fixes the grid of the reduction used for large problems in
    d >= 2 (:func:`mfpde.analysis.metrics.wasserstein_torus`; the same grid at every N keeps
    the bias of the reduction the same kind across a study); ``on_time(1)`` is called after each time.
    """
    T = len(t)
    out = {name: np.full(T, np.nan) for name in METRIC_NAMES}
    for i in range(T):
        j = pde.index_of(t[i])
        o = pde.observables
        out["observable_error"][i] = np.max(np.abs(F[i] - o.F[j]))
        out["risk_error"][i] = abs(risk[i] - o.risk[j])
        out["moment_error"][i] = np.max(np.abs(moments[i] - o.moments[j]))
        out["sobolev"][i] = negative_sobolev(moments[i], o.moments[j], o.moment_freqs)
        if wasserstein_times is None or i in wasserstein_times:
            pts, mass = pde.atoms(j)
            out["wasserstein"][i] = wasserstein_torus(theta[i], pts, mass, p=1, n_grid=wasserstein_grid)
        if on_time is not None:
            on_time(1)
    return out


def compare_files(pde_path, particle_paths, out_dir=None, *, progress: bool = True) -> dict:
    """``mfpde compare``: metrics per saved time for each particle file against the reference.

    Parameters
    ----------
    pde_path : str or Path
        The reference: a PDE, study or limit file (DESIGN 10.2).
    particle_paths : list of str or Path
        Particle files of the same case; their saved times in common with the reference are compared.
    out_dir : str or Path, optional
        Directory of ``NAME.compare.h5`` (default: beside ``pde_path``).
    progress : bool
        Progress over the files and their saved times on stderr.

    Returns
    -------
    dict
        ``path`` (the file written), ``lines`` (one summary line per particle file), ``metrics`` (per
        file, name -> (T,) array of :data:`mfpde.analysis.rates.METRIC_NAMES`) and ``result`` (the
        :class:`mfpde.io.results.CompareResult`).
    """
    pde = load_reference(pde_path)
    bar = Progress(len(particle_paths) * len(pde.t), f"compare {len(particle_paths)} files with {Path(pde_path).name}",
                   enabled=progress, label="times")
    rows, lines, Ns, seeds = [], [], [], []
    t_ref = None
    for path in particle_paths:
        run = ParticleResult.from_file(path)
        if run.info.case_hash != pde.info.case_hash:
            raise ResultFileError(
                f"{path} and {pde_path} come from different cases "
                f"({run.info.case_name!r} vs {pde.info.case_name!r}: expert, data, init or dynamics differ)")
        o = run.observables
        idx = [i for i, _ in common_times(o.t, pde.t)]
        if not idx:
            raise ResultFileError(f"{path}: no saved time in common with {pde_path}")
        t = o.t[idx]
        if t_ref is None:
            t_ref = t
        elif len(t) != len(t_ref) or np.any(np.abs(t - t_ref) > 1e-9):
            raise ResultFileError(f"{path}: saved times differ from the other particle files")
        m = particle_metrics(pde, t, o.F[idx], o.risk[idx], o.moments[idx], run.theta[idx],
                             wasserstein_times=wasserstein_times(pde, t), on_time=bar.update)
        bar.update(len(pde.t) - len(idx))  # the reference's times this file does not have
        rows.append(m)
        Ns.append(run.N)
        seeds.append(run.seed)
        lines.append(f"{Path(path).name} (N={run.N}, seed={run.seed}) at t={t[-1]:g}: "
                     + ", ".join(f"{k}={m[k][-1]:.3e}" for k in METRIC_NAMES))
    bar.close()
    out_dir = Path(out_dir).expanduser() if out_dir else Path(pde_path).expanduser().parent
    out_path = out_dir / (Path(pde_path).name.removesuffix(".h5").removesuffix(".pde") + ".compare.h5")
    info = RunInfo(case_name=pde.info.case_name, case_hash=pde.info.case_hash, d=pde.info.d,
                   case_text=pde.info.case_text, data=pde.info.data, resolved_text=pde.info.resolved_text)
    result = CompareResult(info=info, t=t_ref, N=np.array(Ns), seed=np.array(seeds),
                           metrics={k: np.array([r[k] for r in rows]) for k in METRIC_NAMES},
                           pde_file=str(pde_path), particle_files=[str(p) for p in particle_paths])
    result.to_file(out_path)
    return {"path": out_path, "lines": lines, "metrics": rows, "result": result}
