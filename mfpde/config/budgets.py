"""Budgets: work a run cannot finish (memory, saved states, step counts, Fourier moments,
dense matrices) is refused in one line before it starts, from the case alone.

Every refusal is a :class:`~mfpde.errors.CaseError` whose message names the key, the
estimate and the bound.  One checker per command, each called before any work:

============  =====================================================================
command       checker
============  =====================================================================
particles     :func:`check_particle_budget` (saves, moments, steps ``t_end / dt``, memory per expert)
pde           :func:`check_pde_budget` (saves, moments, a lower bound on the steps, memory per
              cell, MPI ranks against cells); the initial projection: :func:`check_count`
              from :mod:`mfpde.runs.pde`
limit         :func:`check_limit_budget` (saves, moments, steps of the three passes, memory per point)
study         the particle budget at the largest N, then the reference's (pde or limit)
regimes       :func:`check_regimes_budget` (both scalings' particles at the largest N, the PDE)
experts       :data:`mfpde.experts.cost.DENSE_MATRIX_BYTES` (qubits, checked when the expert is
              built) and :data:`mfpde.experts.cost.FOURIER_TABLE_BYTES`
============  =====================================================================

The step bounds: a step of the smallest cases costs about 1 ms (measured: limit, 64
points, and particles, N = 16, one qubit, K = 4: 1.0 and 0.9 ms), so
:data:`MAX_STEPS` is about 3 hours of the cheapest run; a PDE step costs more (11 ms at
n = 6, DG3 boxes, d = 2) and :data:`MAX_PDE_STEPS` (about 20 minutes of it) is compared with
a lower bound on the number of steps (measured: bound 124, steps taken 132 at lr = 100).
"""

from __future__ import annotations

import math
import os

from mfpde.errors import CaseError
from mfpde.experts.cost import DENSE_MATRIX_BYTES, FOURIER_TABLE_BYTES  # noqa: F401 (the expert budgets)
from mfpde.config.moment_set import moment_count

# Beyond these a run is refused: it would not end, or its result file would not.
MAX_STEPS = 10**7          # time steps of a particle run, or of the three passes of a limit run
MAX_PDE_STEPS = 10**5      # time steps of a PDE run (a lower bound from the residual step cap)
MAX_SAVES = 10**5          # saved states (the partial file is rewritten at each)
MAX_QUADRATURE_POINTS = 5 * 10**7  # points of the PDE's initial projection (smooth rho_0)


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or the physical free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**62


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB"


def _fit(key: str, need: float, what: str, available: int) -> None:
    if not need <= available:  # (need may be inf or nan)
        raise CaseError(key, f"{what} needs about {_gb(need)} of memory, {_gb(available)} is available; "
                             "make it smaller")


def _ratio(a: float, b: float) -> float:
    """``a / b`` as a float, ``inf`` where it overflows (t_end = 1e308 over a small step)."""
    try:
        return a / b
    except (OverflowError, ZeroDivisionError):
        return math.inf


def check_count(key: str, what: str, count: float, bound: float, hint: str) -> None:
    """Refuse ``count`` (an estimate of ``what``) beyond ``bound``: ``key: what is ~count (at most bound); hint``."""
    if not count <= bound:
        raise CaseError(key, f"{what} is about {count:.3g} (at most {bound:.3g}); {hint}")


def saved_states(case, every: float | None) -> float:
    """How many states a run saves (before building the list of times; a float, inf when absurd)."""
    t_end = case.dynamics.t_end
    x = _ratio(t_end, every or t_end / 8)
    return float(math.floor(x + 1e-9) + 2) if math.isfinite(x) else math.inf


def _check_common(case, save_key: str, every, available: int) -> tuple[int, int]:
    """Saved states and Fourier moments: (T, F), refused when absurd."""
    T = saved_states(case, every)
    if T > MAX_SAVES:
        raise CaseError(save_key, f"{every:g} with t_end = {case.dynamics.t_end:g} gives {T:.3g} saved states "
                                  f"(at most {MAX_SAVES}); save less often")
    T = int(T)
    m = case.pde.moment_max
    F = moment_count(case.d, m)
    # the frequency table (F x d integers, with the candidates' tuples) and the saved moments
    _fit("pde.moment_max", F * case.d * 64 + T * F * 16,
         f"moment_max = {m} in d = {case.d} ({F:.3g} Fourier moments)", available)
    return T, F


def _check_steps(key: str, dt: float, passes: float, bound: int, case, hint: str = "use a larger step") -> None:
    steps = passes * _ratio(case.dynamics.t_end, dt)
    check_count(key, f"{dt:g} with t_end = {case.dynamics.t_end:g}: the number of time steps", steps, bound, hint)


def _per_point(case, T: int) -> int:
    """Bytes per expert (or limit point): the expert and its gradient at every (x_k, theta_i) for
    the RK stages, the stages themselves, and the saved positions (twice, on rank 0).
    Measured (one-qubit expert, d = 2, K = 4, 3 saves): 195-504 B a particle; this gives 540 B."""
    d, K = case.d, len(case.data.y)
    return 8 * (3 * K * (d + 1) + 8 * d) + 16 * T * d


def check_particle_budget(case, n: int, available: int | None = None) -> None:
    """Refuse a particle run whose steps, saved states or memory cannot fit."""
    available = available_memory() if available is None else available
    T, F = _check_common(case, "particles.save_every", case.particles.save_every, available)
    _check_steps("particles.dt", case.particles.dt, 1, MAX_STEPS, case)
    d, K = case.d, len(case.data.y)
    _fit("particles.n", n * _per_point(case, T),
         f"N = {n} experts in d = {d} with K = {K} data points, {T} saved states", available)


def check_limit_budget(case, points: int | None = None, available: int | None = None) -> None:
    """Refuse a limit run whose saved states, moments, steps or points cannot fit.

    Steps: the main pass (``t_end / dt``), the coarse one (half as many) and the CLT pass: 2.5 t_end / dt.
    Memory: the rule (its tensor grid is built whole) and the flow at the main rule's points, per point
    as for particles, the saved points kept for at most 2^22 numbers (:mod:`mfpde.runs.limit`)."""
    available = available_memory() if available is None else available
    o = case.limit
    T, F = _check_common(case, "limit.save_every", o.save_every, available)
    _check_steps("limit.dt", o.dt, 2.5, MAX_STEPS, case)
    M = o.points if points is None else int(points)
    per = _per_point(case, 2) + 8 * case.d * 4   # (rule construction: a few copies of the grid)
    _fit("limit.points", max(M, o.clt_points) * per + 8 * min(T * M * case.d, 1 << 22),
         f"{M} points in d = {case.d} with K = {len(case.data.y)} data points", available)


def pde_cells(case) -> int:
    o, d = case.pde, case.d
    return o.n**d * ({1: 1, 2: 2, 3: 6}[d] if o.cell == "simplex" else 1)


def _pde_steps(case) -> float:
    r"""A lower bound on the PDE's time steps: ``dt <= 2 cfl / (lr sum_k w_k max|grad phi_k|^2)``
    (:mod:`mfpde.pde.solver`), the max over a grid of 8 points per axis (at most the solver's max,
    so the bound stays a lower bound)."""
    import numpy as np

    d = case.d
    axis = (np.arange(8) + 0.5) * (2 * np.pi / 8)
    theta = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
    _, grads = case.expert.bind(case.data.x)(theta)
    gsq = (np.asarray(grads) ** 2).sum(axis=2).max(axis=1)
    rate = case.dynamics.lr * float(np.sum(case.data.w * gsq))
    return _ratio(case.dynamics.t_end * rate, 2.0 * case.pde.cfl)


def check_pde_budget(case, available: int | None = None, ranks: int = 1) -> None:
    """Refuse a PDE run whose saved states, steps or memory cannot fit, or with more MPI ranks
    than cells (d <= 3 checked before)."""
    available = available_memory() if available is None else available
    T, F = _check_common(case, "pde.save_every", case.pde.save_every, available)
    o, d, K = case.pde, case.d, len(case.data.y)
    dyn = case.dynamics
    key = "pde.cfl" if o.cfl < 0.25 else "dynamics.lr" if dyn.lr > 1 else "dynamics.t_end"
    check_count(key, f"with cfl = {o.cfl:g}, lr = {dyn.lr:g}, t_end = {dyn.t_end:g} the number of time steps "
                "(at least t_end lr sum_k w_k max|grad phi_k|^2 / (2 cfl))", _pde_steps(case), MAX_PDE_STEPS,
                "shorten t_end, lower lr or raise cfl")
    if o.mesh:
        return  # the cells of a mesh file are known only once it is read
    cells = pde_cells(case)
    if ranks > cells:
        raise CaseError("pde.n", f"n = {o.n} in d = {d} makes {cells} cells, fewer than the {ranks} MPI ranks "
                                 f"(each rank needs a cell): run with at most {cells} ranks or more cells")
    dofs = math.comb(o.degree + d, d) if o.cell == "simplex" else (o.degree + 1) ** d
    quad = 4 * dofs
    # mesh and matrices, the expert at the quadrature points, the moment phases
    # there (complex, with temporaries); the saved densities go to the file
    # window by window (mfpde.io.pde_writer), not to memory.
    # Measured (d = 2, degree 1, K = 4, peak RSS): 3.8 kB a cell at F = 12
    # (this gives 5.8 kB) and 218 B a cell per moment (this gives 288 B).
    per_cell = 1024 + 8 * quad * K * (d + 1) + 24 * quad * F
    _fit("pde.n", cells * per_cell, f"n = {o.n} in d = {d} ({cells:.3g} cells, {T} saved states)", available)


def check_regimes_budget(case, n_max: int, available: int | None = None, ranks: int = 1) -> None:
    """``regimes``: the particle runs at the largest N (both scalings save alike) and, in d <= 3, the PDE."""
    check_particle_budget(case, n_max, available)
    if case.d <= 3:
        check_pde_budget(case, available, ranks)
