"""Checks of the files given to ``mfpde compare``: same physics, readable observables, finite numbers."""

from __future__ import annotations
from mfpde.errors import ResultFileError
from pathlib import Path


_COMPARE_KEYS = {
    "any": ("observables/t", "observables/F", "observables/risk", "observables/moments"),
    "pde": ("observables/moment_freqs", "pde/cell_type", "pde/degree", "pde/mesh/vertices", "pde/density",
            "pde/reference_points"),
    "particles": ("particles/theta", "particles/N", "particles/seed"),
}


# the datasets a comparison computes with: NaN or inf in one would give NaN metrics (or a crash)
_FINITE_KEYS = ("observables/t", "observables/F", "observables/risk", "observables/moments", "pde/density",
                "pde/mesh/vertices", "particles/theta", "limit/theta", "limit/weights")
_ROWS = 1 << 22  # numbers read at a time (a density may not fit in memory)


def _first_non_finite(dataset) -> bool:
    """Whether ``dataset`` (numeric) holds a NaN or inf, read in slices along its first axis."""
    import numpy as np

    if dataset.dtype.kind not in "fc" or dataset.size == 0:
        return False
    if dataset.ndim == 0:
        return not np.isfinite(dataset[()])
    step = max(1, _ROWS // max(1, dataset.size // dataset.shape[0]))
    return any(not np.all(np.isfinite(dataset[i:i + step])) for i in range(0, dataset.shape[0], step))


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
                bad = next((k for k in _FINITE_KEYS if k in f and _first_non_finite(f[k])), None)
        except OSError as exc:
            raise ResultFileError(f"{path}: not a readable HDF5 file ({exc})") from None
        if role == "PARTICLES.h5" and kind != "particles":
            raise ResultFileError(f"{path}: is not a particles run (kind = {kind!r})")
        if missing:
            raise ResultFileError(f"{path}: not a complete mfpde result, /{missing[0]} is missing")
        if bad is not None:
            raise ResultFileError(f"{path}: /{bad} holds NaN or inf (a failed or damaged run); "
                                  "nothing to compare with it")
