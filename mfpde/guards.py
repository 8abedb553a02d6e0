"""Checks made before any work starts, agreed on by every MPI rank.

A run refuses, in one line and before computing anything, what it cannot do:
an output directory it cannot write, a ``--resume`` file that is unreadable or
was written with other settings, and work that cannot fit in memory or time.

Under ``mpirun`` a check that only rank 0 can make (it owns the files) must
still stop every rank: :func:`agree` runs a check, shares whether it failed
(one ``allgather``) and raises the same error on all ranks, marked
``collective`` so that the command line reports it once and every rank exits
with code 2.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from .errors import CaseError, MfpdeError, ResultFileError

# Beyond these a run is refused: it would not end, or its result file would not.
MAX_STEPS = 10**9          # time steps of a particle run
MAX_SAVES = 10**5          # saved states (the partial file is rewritten at each)


# ---------------------------------------------------------------- agreement


def agree(comm, check, *args, root_only: bool = False):
    """Run ``check(*args)`` (on every rank, or on rank 0 with ``root_only``)
    and raise on every rank if it raised on any: the first failing rank's
    message, marked :func:`collective`.  Returns the check's result (with
    ``root_only`` broadcast from rank 0)."""
    error, result = None, None
    if comm.rank == 0 or not root_only:
        try:
            result = check(*args)
        except MfpdeError as exc:
            error = exc
        except OSError as exc:
            error = ResultFileError(str(exc))
    if comm.size > 1:
        messages = comm.allgather(None if error is None else str(error))
        first = next((m for m in messages if m is not None), None)
        if first is not None and error is None:
            error = MfpdeError(first)
        if root_only and first is None:
            result = comm.bcast(result, root=0)
    if error is not None:
        raise collective(error, comm)
    return result


def collective(error: MfpdeError, comm) -> MfpdeError:
    """Mark ``error`` as raised on every rank of ``comm``: for the command line
    that is "on every rank" only when ``comm`` spans all of them (a study's
    one-rank particle runs do not)."""
    from mpi4py import MPI

    error.collective = comm.Get_size() == MPI.COMM_WORLD.Get_size()
    return error


# ---------------------------------------------------------------- output


def check_writable(directory: str | Path) -> Path:
    """Create ``directory`` if needed and make sure a file can be written in it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".mfpde-probe-"):
            pass
    except OSError as exc:
        raise ResultFileError(f"{directory}: cannot write the output there ({exc.strerror or exc}); "
                              "choose another --out") from None
    return directory


# ---------------------------------------------------------------- resume


def run_settings(case, kind: str) -> dict:
    """The options besides the physics (:meth:`Case.physics_hash`) that change a
    run's numbers: a resumed run must have the same, key by key."""
    if kind == "pde":
        o = case.pde
        mesh = None
        if o.mesh:
            mesh = hashlib.sha256(Path(o.mesh).read_bytes()).hexdigest()[:16]
        return {"pde.n": None if o.mesh else o.n, "pde.mesh": mesh, "pde.degree": o.degree,
                "pde.cell": None if o.mesh else o.cell, "pde.cfl": o.cfl, "pde.save_every": o.save_every,
                "pde.moment_max": o.moment_max, "pde.petsc_options": o.petsc_options,
                "pde.time_scheme": o.time_scheme, "pde.grading": o.grading,
                "pde.mesh_motion": o.mesh_motion}
    if kind == "particles":
        o = case.particles
        return {"particles.dt": o.dt, "particles.integrator": o.integrator,
                "particles.save_every": o.save_every, "pde.moment_max": case.pde.moment_max}
    return {}


def settings_json(case, kind: str) -> str:
    return json.dumps(run_settings(case, kind), sort_keys=True)


_RESUME_KEYS = {
    "pde": ("observables/t", "observables/F", "observables/risk", "observables/moments", "observables/mass",
            "observables/min_rho", "pde/density", "pde/steps"),
    "particles": ("observables/t", "observables/F", "observables/risk", "observables/moments",
                  "particles/theta", "particles/N", "particles/seed", "particles/step", "particles/rng_state"),
}


def _lookup(tree: dict, key: str):
    for part in key.split("/"):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def check_resume_file(tree: dict, attrs: dict, case, kind: str, path: Path) -> None:
    """``path`` can be continued by a ``kind`` run of ``case``: the same physics,
    the same settings (:func:`run_settings`), and every dataset a restart needs."""
    hint = "remove it or run without --resume"
    if attrs.get("kind") != kind:
        raise ResultFileError(f"{path}: is not a {kind} run (kind = {attrs.get('kind')!r}); {hint}")
    if attrs.get("case_hash") != case.physics_hash():
        raise ResultFileError(f"{path}: was written for a different case (expert, data, init or dynamics "
                              f"changed); {hint}")
    for key in _RESUME_KEYS[kind]:
        if _lookup(tree, key) is None:
            raise ResultFileError(f"{path}: damaged, /{key} is missing; {hint}")
    t = _lookup(tree, "observables/t")
    saved = _lookup(tree, "pde/density" if kind == "pde" else "particles/theta")
    if getattr(t, "ndim", 0) != 1 or len(t) == 0 or len(saved) != len(t):
        raise ResultFileError(f"{path}: damaged, /observables/t does not match the saved states; {hint}")
    stored = attrs.get("run_settings")
    if stored is None:  # written before settings were recorded
        return
    stored = json.loads(stored)
    now = json.loads(settings_json(case, kind))
    for key in sorted(set(stored) | set(now)):
        if stored.get(key) != now.get(key):
            raise CaseError(key, f"{path.name} was written with {stored.get(key)!r}, this run has "
                                 f"{now.get(key)!r}; a resumed run must keep it ({hint})")


def read_resume_file(path: Path, case, kind: str):
    """(tree, attrs) of the partial file of ``path``, or of ``path`` itself
    when the run is finished, checked by :func:`check_resume_file`; None when
    there is neither (the run starts from t = 0)."""
    from .storage import partial_path, read_run

    for candidate in (partial_path(path), Path(path)):
        if candidate.is_file():
            tree, attrs = read_run(candidate)
            check_resume_file(tree, attrs, case, kind, candidate)
            return tree, attrs
    return None


# ---------------------------------------------------------------- budget


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
    # window by window (mfpde.pde_output), not to memory.
    # Measured (d = 2, degree 1, K = 4, peak RSS): 3.8 kB a cell at F = 12
    # (this gives 5.8 kB) and 218 B a cell per moment (this gives 288 B).
    per_cell = 1024 + 8 * quad * K * (d + 1) + 24 * quad * F
    _fit("pde.n", cells * per_cell, f"n = {o.n} in d = {d} ({cells:.3g} cells, {T} saved states)", available)


# ---------------------------------------------------------------- caches


def _can_write(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def use_writable_cache() -> Path:
    """Point the FFCx/DOLFINx JIT cache and matplotlib at a writable folder.

    Both honour ``XDG_CACHE_HOME`` (default ``~/.cache``); when it cannot be
    written (a read-only HOME), ``XDG_CACHE_HOME`` is set to a folder of the
    temporary directory, and matplotlib's ``MPLCONFIGDIR`` likewise.  Call it
    before DOLFINx or matplotlib is imported.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    if not _can_write(cache):
        cache = Path(tempfile.gettempdir()) / f"mfpde-cache-{os.getuid()}"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["XDG_CACHE_HOME"] = str(cache)
    if "MPLCONFIGDIR" not in os.environ:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
        if not _can_write(config):
            os.environ["MPLCONFIGDIR"] = str(cache / "matplotlib")
    return cache


# ---------------------------------------------------------------- compare


_COMPARE_KEYS = {
    "any": ("observables/t", "observables/F", "observables/risk", "observables/moments"),
    "pde": ("observables/moment_freqs", "pde/cell_type", "pde/degree", "pde/mesh/vertices", "pde/density",
            "pde/reference_points"),
    "particles": ("particles/theta", "particles/N", "particles/seed"),
}


def check_compare_files(pde_file: str, particle_files: list[str]) -> None:
    """The files of ``mfpde compare`` are distinct, readable result files of the
    right kinds, with the datasets a comparison reads."""
    import h5py

    seen = {}
    for role, name in [("PDE.h5", pde_file)] + [("PARTICLES.h5", p) for p in particle_files]:
        path = Path(name)
        if not path.is_file():
            raise ResultFileError(f"{path}: no such file")
        key = path.resolve()
        if key in seen:
            raise ResultFileError(f"{path}: given twice (as {seen[key]} and as {role}); each file once")
        seen[key] = role
        try:
            with h5py.File(path, "r") as f:
                kind = f.attrs.get("kind")
                kind = kind.decode() if isinstance(kind, bytes) else kind
                needed = _COMPARE_KEYS["any"] + _COMPARE_KEYS.get("pde" if kind == "study" else kind, ())
                missing = [k for k in needed if k not in f]
        except OSError as exc:
            raise ResultFileError(f"{path}: not a readable HDF5 file ({exc})") from None
        if role == "PARTICLES.h5" and kind != "particles":
            raise ResultFileError(f"{path}: is not a particles run (kind = {kind!r})")
        if missing:
            raise ResultFileError(f"{path}: not a complete mfpde result, /{missing[0]} is missing")


# ---------------------------------------------------------------- PETSc


_PETSC_TYPES = {"ksp_type": "KSP", "pc_type": "PC"}
_PETSC_NUMBERS = ("rtol", "atol", "dtol", "divtol", "max_it")


def check_petsc_options(options: dict) -> None:
    """``[pde] petsc_options``: solver and preconditioner types this PETSc has,
    numbers where PETSc reads numbers (it would fail only at the first solve)."""
    if not options:
        return
    from . import fem  # noqa: F401  (loads the MPI and PETSc libraries)
    from petsc4py import PETSc

    for key, value in options.items():
        where = f"pde.petsc_options.{key}"
        kind = next((k for suffix, k in _PETSC_TYPES.items() if key.endswith(suffix)), None)
        if kind is not None:
            known = sorted(v for k, v in vars(getattr(PETSc, kind).Type).items()
                           if not k.startswith("_") and isinstance(v, str))
            if str(value) not in known:
                raise CaseError(where, f"{value!r} is not a PETSc {kind} type (known: {', '.join(known)})")
        elif key.endswith(_PETSC_NUMBERS):
            try:
                ok = not isinstance(value, bool) and math.isfinite(float(value))
            except (TypeError, ValueError, OverflowError):
                ok = False
            if not ok:
                raise CaseError(where, f"must be a finite number, got {value!r}")
