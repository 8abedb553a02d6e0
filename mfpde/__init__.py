"""mfpde: the mean-field limit of mixtures of experts, classical and quantum.

The flow goes one way: case -> expert and data -> solver (PDE or particles)
-> observables -> files -> report.  The contract is docs/design.md.
"""

# h5py must be loaded before dolfinx.fem.petsc: the HDF5 inside the DOLFINx
# wheel and h5py's own clash otherwise ("ValueError: Not a datatype" on the
# first write).  Importing mfpde first is enough.
import h5py as _h5py  # noqa: F401

__version__ = "0.1.0"
