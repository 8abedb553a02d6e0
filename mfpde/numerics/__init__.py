"""Numerical building blocks with no knowledge of the case: quadrature rules,
cut-cell integration and evaluation of cellwise (DG) fields at points."""
