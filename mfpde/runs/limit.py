r"""The ``tau = 0`` limit without a mesh: ``mfpde limit`` (DESIGN 10.2).

.. math::

    \rho_t = (X_t)_\# \rho_0, \qquad
    F(x_k, t) \approx \sum_j a_j\, \phi(x_k; X_t(\theta_j)),

with ``(theta_j, a_j)`` a quadrature rule for ``rho_0``
(:mod:`mfpde.numerics.quadrature`) whose points move with the mean-field velocity
built from the weighted points (:mod:`mfpde.meshfree.characteristics`, RK4, save times
hit exactly) and whose weights stay fixed.  Any d; the points are split over
the MPI ranks (one ``Allreduce`` of K numbers per RK4 stage).

:func:`run_limit` writes ``NAME.limit.h5``: the observables as for the PDE
(no mass / min_rho), ``/limit`` (rule, weights, points at the saved times),
``/limit/error_estimate`` (per saved time ``max_k |F_M - F_coarse|``, with
the coarse run using about half the points and twice the time step: an
estimate of the error of the coarse run, hence a conservative one of the
main run) and ``/clt`` (:mod:`mfpde.meshfree.clt`: the predicted covariance of
``sqrt(N)(f_N - F)`` at every saved time and the experts needed for a given
accuracy).  Rank 0 rewrites ``NAME.limit.partial.h5`` after every saved time
of the main run; ``resume=True`` continues from it (the same steps, so the
same observables).

:class:`mfpde.io.results.LimitResult` reads the file back and serves as the reference of
``compare`` and ``study`` (the weighted points are the atoms of W1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.case import Case, given
from mfpde.config.rules import check_tau
from mfpde.meshfree.characteristics import Characteristics
from mfpde.meshfree.clt import clt_covariance, experts_needed
from mfpde.config.budgets import check_limit_budget
from mfpde.errors import NonFiniteError, ResultFileError
from mfpde.parallel import agree, collective, uninterrupted
from mfpde.io.lock import output_lock
from mfpde.model.velocity import risk
from mfpde.model.initial import initial_density
from mfpde.constants import TWO_PI
from mfpde.model.moments import moment_freqs
from mfpde.particles.system import block_range
from mfpde.progress import Progress
from mfpde.numerics.quadrature import Rule, coarser_rule, make_rule
from mfpde.io.paths import result_path
from mfpde.io.results import LimitResult, Observables, RunInfo, read_result
from mfpde.io.resume import check_settings, settings_json
from mfpde.io.hdf5 import check_space, partial_path
from mfpde.runs.common import Run
from mfpde.runs.observers import Saver

THETA_FULL_MAX = 1 << 22  # /limit/theta holds every saved time while T * M * d <= this
ACCURACIES = (1e-1, 1e-2, 1e-3)  # of max_k |f_N - F| in the experts-needed table


def check_limit_case(case: Case) -> None:
    """What ``limit`` needs: tau = 0 (it is the push-forward of rho_0)."""
    check_tau("limit d > 3" if case.d > 3 else "limit", case.dynamics.tau, case.d)


def limit_path(case: Case, out_dir=None) -> Path:
    return result_path(case, "limit", out_dir)


@dataclass
class _Pass:
    """One rule pushed forward: the flow on this rank's block and the saved observables."""

    rule: Rule
    flow: Characteristics
    start: int
    stop: int
    t: list = field(default_factory=list)
    F: list = field(default_factory=list)
    moments: list = field(default_factory=list)
    theta: list = field(default_factory=list)  # rank 0: all points at the saved times, in [0, 2 pi)
    state: np.ndarray | None = None            # rank 0: all points at the last saved time, as integrated


def _new_pass(case: Case, rule: Rule, comm) -> _Pass:
    start, stop = block_range(len(rule.weights), comm.rank, comm.size)
    flow = Characteristics(case.expert.bind(case.data.x), case.data.y, case.data.w, case.dynamics.lr,
                           rule.weights[start:stop], comm)
    return _Pass(rule, flow, start, stop)


def _gather(comm, local: np.ndarray) -> np.ndarray | None:
    if comm.size == 1:
        return local.copy()
    parts = comm.gather(local, root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


def _push(p: _Pass, theta: np.ndarray, t: float, times, dt: float, freqs, on_save=None, on_step=None,
          keep_theta: bool = True, partial: Path | None = None) -> None:
    """Advance this rank's points through the saved times after ``t``, recording each.

    With ``keep_theta`` (the main pass) a non-finite output stops the run with a
    :class:`~mfpde.errors.NonFiniteError` (on every rank: the output is summed over them) before
    the bad state is recorded: ``partial`` keeps the last good one."""
    comm = p.flow.comm
    for ts in times:
        if p.t and ts <= p.t[-1] + 1e-12:  # saved already (a resumed run)
            continue
        theta = p.flow.advance(theta, t, ts, dt, on_step)
        F = p.flow.output(theta)
        if keep_theta and not np.all(np.isfinite(F)):
            where = f"; last good state (t = {p.t[-1]:g}) saved in {partial}" if partial is not None and p.t else ""
            raise collective(NonFiniteError(f"limit: the output is not finite at t = {ts:g} (the flow is unstable "
                                            f"with dt = {dt:g}: lower limit.dt or dynamics.lr){where}"), comm)
        t = ts
        p.t.append(ts)
        p.F.append(F)
        p.moments.append(p.flow.moments(theta, freqs))
        full = _gather(comm, theta) if keep_theta else None
        if comm.rank == 0 and keep_theta:
            p.theta.append(np.mod(full, TWO_PI))
            p.state = full
        if on_save is not None:
            on_save()


def _theta_subset(T: int, M: int, d: int) -> np.ndarray:
    """Indices of the saved times whose points are stored: all, or first and last when large."""
    return np.arange(T) if T * M * d <= THETA_FULL_MAX else np.array(sorted({0, T - 1}))


LIMIT_README = ("theta[i] holds the points at the saved time observables/t[theta_index[i]] "
                "(every saved time unless T*M*d > 2^22, then the first and the last), "
                "in [0, 2 pi); the limit measure is sum_j weights[j] delta(theta[i, j]). "
                "error_estimate[t] = max_k |F - F_coarse| against a rule of about half the "
                "points with twice the time step.")


def _limit_result(case: Case, p: _Pass, freqs, extra: dict, t0: float, comm) -> LimitResult:
    """The ``NAME.limit.h5`` result (:class:`mfpde.io.results.LimitResult`) of the main pass so far."""
    from mfpde.runs.common import run_provenance

    F = np.array(p.F)
    theta = np.array(p.theta) if p.theta else np.zeros((0,) + p.rule.points.shape)
    keep = _theta_subset(len(theta), *p.rule.points.shape)
    observables = Observables(t=np.array(p.t), F=F, risk=risk(F, case.data.y, case.data.w),
                              moments=np.array(p.moments), moment_freqs=freqs)
    more = {"rule_size": p.rule.size, "points": len(p.rule.weights), "dt": case.limit.dt,
            "state": p.state if p.state is not None else p.rule.points, "README": LIMIT_README,
            **extra.get("limit", {})}
    info = RunInfo.of_case(case, run_provenance(case, comm.size, t0), settings=settings_json(case, "limit"))
    return LimitResult(info=info, observables=observables,
                       weights=p.rule.weights, rule=p.rule.kind, theta=theta[keep] if len(theta) else theta,
                       theta_index=keep, clt=extra.get("clt", {}), extra=more)


def run_limit(case: Case, points: int | None = None, *, out_dir=None, resume: bool = False, write: bool = True,
              comm: MPI.Comm = MPI.COMM_WORLD, progress: bool = True, estimate: bool = True,
              clt: bool = True) -> "Run":
    """Push rho_0 forward by quadrature (the tau = 0 limit, any d).

    Parameters
    ----------
    case : mfpde.config.case.Case
        The case (``dynamics.tau`` must be 0).
    points : int, optional
        Number of quadrature points M (default ``[limit] points``).
    out_dir : str or Path, optional
        Directory of ``NAME.limit.h5`` (default: the case's).
    resume : bool
        Continue from ``NAME.limit.partial.h5``.
    write : bool
        Write the result file; False keeps only the observables.
    comm : mpi4py.MPI.Comm
        The ranks that share the points (collective call).
    progress : bool
        Progress of the main pass, the error estimate and the CLT on rank 0.
    estimate : bool
        Also run the coarser rule: ``error_estimate`` per saved time.
    clt : bool
        Also compute the CLT covariance and the experts needed.

    Returns
    -------
    Run
        Unpacks as ``(observables, path)``: the dict ``t``, ``F`` (T, K), ``risk``, ``moments``,
        ``moment_freqs``, ``rule``, ``error_estimate`` (T,) when ``estimate``, ``clt_cov``
        (T, K, K) and ``experts_needed`` when ``clt``; and the file written (None with
        ``write=False``); ``run.result`` is the :class:`mfpde.io.results.LimitResult`.
    """
    case = case.with_overrides(limit=given(points=None if points is None else int(points)))  # as [limit] points
    check_limit_case(case)
    agree(comm, check_limit_budget, case, points, root_only=True)
    path = limit_path(case, out_dir) if write else None
    with output_lock(path, comm):  # one run per output name at a time
        return _run_limit(case, None, path, resume, comm, progress, estimate, clt)


def _run_limit(case: Case, points, path: Path | None, resume: bool, comm, progress: bool, estimate: bool,
               clt: bool) -> "Run":
    opts = case.limit
    M = opts.points if points is None else int(points)
    rho0 = initial_density(case)
    rule = make_rule(opts.rule, M, case.d, rho0, case.init)
    freqs = moment_freqs(case.d, case.pde.moment_max)
    times = case.save_times(opts.save_every)
    t0 = time.perf_counter()
    main = _new_pass(case, rule, comm)
    theta, t = rule.points[main.start:main.stop], 0.0

    if resume and path is not None:
        theta, t = _resume(path, case, main, comm) or (theta, t)

    def write():  # rank 0 rewrites the partial file (the points move: no row to append)
        result = _limit_result(case, main, freqs, {}, t0, comm)
        check_space(partial_path(path), 2 * (result.theta.nbytes + result.extra["state"].nbytes) + (1 << 16))
        with uninterrupted():
            result.to_file(partial_path(path), complete=False)

    save = Saver(comm, None, write if path is not None else None, root_writes=True, count=lambda: len(main.t))

    bar = Progress(case.dynamics.t_end, f"limit {rule.kind} M={len(rule.weights)}",
                   enabled=progress and comm.rank == 0, start=t)
    try:
        _push(main, theta, t, times, opts.dt, freqs, on_save=save, on_step=bar.update,
              partial=partial_path(path) if path is not None else None)
    finally:
        bar.close()

    obs = {"t": np.array(main.t), "F": np.array(main.F), "moments": np.array(main.moments),
           "moment_freqs": freqs, "rule": rule.describe}
    obs["risk"] = risk(obs["F"], case.data.y, case.data.w)
    extra: dict = {"limit": {}}
    if estimate:
        coarse = _new_pass(case, coarser_rule(rule, rho0, case.init), comm)
        bar = Progress(case.dynamics.t_end, f"limit error estimate {coarse.rule.kind} M={len(coarse.rule.weights)}",
                       enabled=progress and comm.rank == 0)
        _push(coarse, coarse.rule.points[coarse.start:coarse.stop], 0.0, times, 2 * opts.dt, freqs,
              on_step=bar.update, keep_theta=False)
        bar.close()
        err = np.abs(np.array(coarse.F) - obs["F"]).max(axis=1)
        obs["error_estimate"] = err
        extra["limit"] = {"error_estimate": err, "coarse_rule": coarse.rule.describe}
    if clt:
        c_rule = rule if len(rule.weights) <= opts.clt_points else make_rule(opts.rule, opts.clt_points, case.d,
                                                                            rho0, case.init)
        c_pass = _new_pass(case, c_rule, comm)
        # forward to t_end, then the adjoint back to 0: 2 t_end of steps
        bar = Progress(2 * case.dynamics.t_end, f"limit clt {c_rule.kind} M={len(c_rule.weights)} (forward, adjoint)",
                       enabled=progress and comm.rank == 0)
        cov = clt_covariance(c_pass.flow, c_rule.points[c_pass.start:c_pass.stop], times, opts.dt, bar.update)
        bar.close()
        need = experts_needed(cov, ACCURACIES)
        obs["clt_cov"] = cov
        extra["clt"] = {"cov": cov, "rule": c_rule.describe,
                        "experts_needed": {"accuracy": need["accuracy"], "N": need["N"],
                                           "quantile": need["quantile"], "level": need["level"]},
                        "README": ("cov[t] is the predicted covariance of sqrt(N) (f_N(x_k, t) - F(x_k, t)) "
                                   "for N i.i.d. initial experts (mfpde.meshfree.clt); experts_needed/N[i] is the N at "
                                   "which max_k |f_N - F| <= accuracy[i] with probability "
                                   "level at each saved time (quantile[t] is the level-quantile of max_k |Z_k|, Z ~ N(0, cov[t])).")}
        obs["experts_needed"] = need
    if path is not None and comm.rank == 0:
        _limit_result(case, main, freqs, extra, t0, comm).to_file(path, complete=True)
        partial_path(path).unlink(missing_ok=True)
    return Run(obs, path)


def _resume(path: Path, case: Case, p: _Pass, comm) -> tuple[np.ndarray, float] | None:
    """Restore the main pass from the partial file (rank 0 reads and checks, every rank agrees on an
    error and gets its block)."""
    found = agree(comm, _read_partial, path, case, p.rule, root_only=True)
    if found is None:
        return None
    o, theta_saved, state = found
    p.t, p.F, p.moments = list(o.t), list(o.F), list(o.moments)
    if comm.rank == 0:
        p.theta, p.state = list(theta_saved), state
    return np.array(state[p.start:p.stop]), float(o.t[-1])


def _read_partial(path: Path, case: Case, rule: Rule):
    """(observables, saved points, last state) of ``NAME.limit.partial.h5`` if it continues this run, else None."""
    part = partial_path(path)
    if not part.is_file():
        return None
    hint = "remove it or run without --resume"
    res = read_result(part)
    if not isinstance(res, LimitResult):
        raise ResultFileError(f"{part}: is not a limit run (kind = {res.KIND!r}); {hint}")
    if res.info.case_hash != case.physics_hash():
        raise ResultFileError(f"{part}: was written for a different case (expert, data, init or dynamics changed); "
                              f"{hint}")
    check_settings(res.info.settings or None, case, "limit", part)
    if int(res.extra["points"]) != len(rule.weights) or res.rule != rule.kind:
        raise ResultFileError(f"{part}: holds a {res.rule} rule of {int(res.extra['points'])} points, "
                              f"not {rule.describe}; {hint}")
    return res.observables, res.theta, np.asarray(res.extra["state"])


