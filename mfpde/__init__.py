"""mfpde: the mean-field limit of mixtures of experts, classical and quantum.

The flow goes one way: case -> expert and data -> solver (PDE or particles)
-> observables -> files -> report.  See DESIGN.md (shared) for the contract.
"""

__version__ = "0.1.0"
