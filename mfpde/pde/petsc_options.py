"""Validation of ``[pde] petsc_options`` against the installed PETSc (no solver built)."""

from __future__ import annotations
import math
from mfpde.errors import CaseError


_PETSC_TYPES = {"ksp_type": "KSP", "pc_type": "PC"}


_PETSC_NUMBERS = ("rtol", "atol", "dtol", "divtol", "max_it")


def check_petsc_options(options: dict) -> None:
    """``[pde] petsc_options``: solver and preconditioner types this PETSc has,
    numbers where PETSc reads numbers (it would fail only at the first solve)."""
    if not options:
        return
    from mfpde.pde import fem  # noqa: F401  (loads the MPI and PETSc libraries)
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
