"""Budgets: work a run cannot finish (memory, saved states, step counts) is refused
in one line before it starts, from the case alone."""

from __future__ import annotations

import math
import os

from mfpde.errors import CaseError

# Beyond these a run is refused: it would not end, or its result file would not.
MAX_STEPS = 10**9          # time steps of a particle run


MAX_SAVES = 10**5          # saved states (the partial file is rewritten at each)


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
    if need > available:
        raise CaseError(key, f"{what} needs about {_gb(need)} of memory, {_gb(available)} is available; "
                             "make it smaller")


def saved_states(case, every: float | None) -> int:
    """How many states a run saves (before building the list of times)."""
    t_end = case.dynamics.t_end
    return int(math.floor(t_end / (every or t_end / 8) + 1e-9)) + 2


def moment_count(d: int, moment_max: int) -> int:
    return ((2 * moment_max + 1) ** d - 1) // 2


def _check_common(case, save_key: str, every, available: int) -> tuple[int, int]:
    """Saved states and Fourier moments: (T, F), refused when absurd."""
    T = saved_states(case, every)
    if T > MAX_SAVES:
        raise CaseError(save_key, f"{every:g} with t_end = {case.dynamics.t_end:g} gives {T:.3g} saved states "
                                  f"(at most {MAX_SAVES}); save less often")
    m = case.pde.moment_max
    F = moment_count(case.d, m)
    # the frequency table ((2m+1)^d x d integers, twice) and the saved moments
    _fit("pde.moment_max", (2 * m + 1) ** case.d * case.d * 16 + T * F * 16,
         f"moment_max = {m} in d = {case.d} ({F:.3g} Fourier moments)", available)
    return T, F


def check_particle_budget(case, n: int, available: int | None = None) -> None:
    """Refuse a particle run whose steps, saved states or memory cannot fit."""
    available = available_memory() if available is None else available
    T, F = _check_common(case, "particles.save_every", case.particles.save_every, available)
    dt = case.particles.dt
    steps = case.dynamics.t_end / dt
    if steps > MAX_STEPS:
        raise CaseError("particles.dt", f"{dt:g} with t_end = {case.dynamics.t_end:g} is {steps:.3g} steps "
                                        f"(at most {MAX_STEPS:.0e}); use a larger step")
    d, K = case.d, len(case.data.y)
    # the expert and its gradient at every (x_k, theta_i) for the RK stages, the
    # stages themselves, and the saved positions (twice, on rank 0).  Measured
    # (one-qubit expert, d = 2, K = 4, 3 saves): 195-504 B a particle; this gives 540 B.
    per_particle = 8 * (3 * K * (d + 1) + 8 * d) + 16 * T * d
    _fit("particles.n", n * per_particle, f"N = {n} experts in d = {d} with K = {K} data points, {T} saved states",
         available)


def pde_cells(case) -> int:
    o, d = case.pde, case.d
    return o.n**d * ({1: 1, 2: 2, 3: 6}[d] if o.cell == "simplex" else 1)


def check_pde_budget(case, available: int | None = None) -> None:
    """Refuse a PDE run whose saved states or memory cannot fit (d <= 3 checked before)."""
    available = available_memory() if available is None else available
    T, F = _check_common(case, "pde.save_every", case.pde.save_every, available)
    if case.pde.mesh:
        return  # the cells of a mesh file are known only once it is read
    o, d, K = case.pde, case.d, len(case.data.y)
    cells = pde_cells(case)
    dofs = math.comb(o.degree + d, d) if o.cell == "simplex" else (o.degree + 1) ** d
    quad = 4 * dofs
    # mesh and matrices, the expert at the quadrature points, the moment phases
    # there (complex, with temporaries); the saved densities go to the file
    # window by window (mfpde.io.pde_writer), not to memory.
    # Measured (d = 2, degree 1, K = 4, peak RSS): 3.8 kB a cell at F = 12
    # (this gives 5.8 kB) and 218 B a cell per moment (this gives 288 B).
    per_cell = 1024 + 8 * quad * K * (d + 1) + 24 * quad * F
    _fit("pde.n", cells * per_cell, f"n = {o.n} in d = {d} ({cells:.3g} cells, {T} saved states)", available)
