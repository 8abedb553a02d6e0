"""Checks of the files given to ``mfpde compare``: same physics, readable observables."""

from __future__ import annotations
from mfpde.errors import ResultFileError
from pathlib import Path


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
