"""The DOLFINx provider: one place that imports the finite-element stack.

mfpde runs on any DOLFINx 0.11 with real (float64) PETSc scalars:

* the ``dolfinx-solver-real`` wheel (``pip install ".[wheel]"``, what
  ``scripts/bootstrap.sh`` installs): DOLFINx, PETSc, parallel HDF5 and MPICH
  in one binary; its package ``dolfinx_solver`` must be imported before
  ``dolfinx`` and ``petsc4py`` so that its libraries are the ones loaded;
* a site installation (conda-forge ``fenics-dolfinx=0.11``, Spack, an
  environment module) built against the site's MPI.

Modules that need DOLFINx import it from here (``from .fem import dolfinx``),
so the choice is made once, and a missing or wrong DOLFINx is one clear line.
"""

from __future__ import annotations

# h5py before dolfinx.fem.petsc: with the wheel's HDF5 the other order makes h5py's
# type registration fail ("ValueError: Not a datatype").
import h5py  # noqa: F401, I001
import numpy as np

from mfpde.errors import MfpdeError

REQUIRED = (0, 11)
HOW_TO_GET = ('pip install ".[wheel]" (the DOLFINx wheel with its own MPICH) or load your site\'s DOLFINx 0.11 '
              "(conda-forge fenics-dolfinx=0.11, Spack, a module; docs/clusters.md)")


class DolfinxMissing(MfpdeError, ImportError):
    """No usable DOLFINx 0.11 could be imported."""


def _provider() -> str:
    try:
        import dolfinx_solver  # noqa: F401  (before dolfinx / petsc4py)
        return "dolfinx-solver-real wheel"
    except ImportError:
        return "site dolfinx"


PROVIDER = _provider()

try:
    from mpi4py import MPI  # noqa: F401  (MPI before the compiled bindings, as the wheel does)
    import dolfinx
    import dolfinx.fem
    import dolfinx.fem.petsc
    import dolfinx.la
    import dolfinx.mesh
    from petsc4py import PETSc
except ImportError as exc:  # pragma: no cover - exercised by a simulated missing provider
    raise DolfinxMissing(f"the PDE needs DOLFINx 0.11, not importable here ({exc}): {HOW_TO_GET}") from exc


def check_version(version: str, provider: str = PROVIDER) -> None:
    """Refuse a DOLFINx whose major.minor is not :data:`REQUIRED` (the API changes between releases)."""
    parts = version.split(".")
    try:
        found = int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()))
    except (IndexError, ValueError):
        found = None
    if found != REQUIRED:
        raise DolfinxMissing(f"needs DOLFINx {REQUIRED[0]}.{REQUIRED[1]}, found {version} ({provider}): "
                             f"{HOW_TO_GET}")


check_version(dolfinx.__version__)
if np.dtype(PETSc.ScalarType).kind != "f":  # pragma: no cover
    raise DolfinxMissing(f"needs real PETSc scalars, found {PETSc.ScalarType}: {HOW_TO_GET}")

__all__ = ["dolfinx", "PETSc", "PROVIDER", "DolfinxMissing", "check_version"]
