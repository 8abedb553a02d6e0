"""mfpde: the mean-field limit of mixtures of experts, classical and quantum.

The flow goes one way: case -> expert and data -> solver (PDE or particles)
-> observables -> files -> report.  The contract is docs/design.md.

The public API is importable from here (``from mfpde import load_case,
run_pde, read_result``); the names are resolved on first use, so that
``import mfpde`` loads neither PennyLane nor DOLFINx nor the runs.
"""

# h5py must be loaded before dolfinx.fem.petsc: the HDF5 inside the DOLFINx
# wheel and h5py's own clash otherwise ("ValueError: Not a datatype" on the
# first write).  Importing mfpde first is enough.
import h5py as _h5py  # noqa: F401

__version__ = "0.1.0"

# public name -> the module that defines it
_HOMES = {
    "load_case": "mfpde.config.case",
    "case_from_dict": "mfpde.config.case",
    "default_case": "mfpde.config.case",
    "run_pde": "mfpde.runs.pde",
    "run_particles": "mfpde.runs.particles",
    "run_limit": "mfpde.runs.limit",
    "run_study": "mfpde.runs.study",
    "run_regimes": "mfpde.runs.regimes",
    "read_result": "mfpde.io.results",
    "PDEResult": "mfpde.io.results",
    "ParticleResult": "mfpde.io.results",
    "LimitResult": "mfpde.io.results",
    "StudyResult": "mfpde.io.results",
    "RegimesResult": "mfpde.io.results",
    "CompareResult": "mfpde.io.results",
}

__all__ = list(_HOMES)


def __getattr__(name):
    """Import the public name's module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
