"""Positivity where the scheme integrates, measured at points built here, not at the limiter's own.

``min_rho`` is evaluated at the limiter's check points, so a limiter that checks too few points (e.g.
only the DG nodes) still reports ``min_rho >= 0``.  Here the density is evaluated at the quadrature
points of degree 3p (the transport forms' degree, docs/pde.md) built independently with
``basix.make_quadrature``: the cell rule, and the facet rule mapped onto every facet of the reference
cell.  A box start (discontinuous, zero on most of the torus) makes the limiter act on many cells.
Measured with the check points reduced to the DG nodes (issue 20): -1.3e-2 (box DG2), -2.4e-2 (simplex DG2).
"""

import basix
import numpy as np
import pytest
from mpi4py import MPI

import dolfinx_solver  # noqa: F401
from mfpde.config.case import InitSpec
from mfpde.model.initial import InitialDensity
from mfpde.pde import MeanFieldSolver
from mfpde.pde.torus import torus_mesh

COMM = MPI.COMM_WORLD


def quadrature_points(cell: basix.CellType, degree: int) -> np.ndarray:
    """Cell quadrature points of ``degree`` and the facet quadrature points of ``degree`` on every facet
    (the facet rule mapped affinely through each facet's vertices)."""
    geom = np.asarray(basix.geometry(cell), float)
    tdim = geom.shape[1]
    pts = [np.asarray(basix.make_quadrature(cell, degree)[0])]
    facet_type = {basix.CellType.interval: None, basix.CellType.quadrilateral: basix.CellType.interval,
                  basix.CellType.triangle: basix.CellType.interval,
                  basix.CellType.hexahedron: basix.CellType.quadrilateral,
                  basix.CellType.tetrahedron: basix.CellType.triangle}[cell]
    for verts in basix.topology(cell)[tdim - 1]:
        v = geom[verts]
        if facet_type is None:  # interval: the facets are its end points
            pts.append(v)
            continue
        fp = np.asarray(basix.make_quadrature(facet_type, degree)[0])
        if facet_type == basix.CellType.quadrilateral:  # bilinear map through 4 vertices (v0, v1, v2, v3 tensor order)
            s, t = fp[:, :1], fp[:, 1:]
            pts.append((1 - s) * (1 - t) * v[0] + s * (1 - t) * v[1] + (1 - s) * t * v[2] + s * t * v[3])
        else:  # interval or triangle: affine through the first tdim vertices
            pts.append(v[0] + fp @ (v[1:tdim] - v[0]))
    return np.concatenate(pts)


def density_minimum(s: MeanFieldSolver) -> float:
    """min of u_K over the owned cells at the independent points, relative to max |U| (all ranks)."""
    c = s.cells
    P = c.basis.tabulate(0, quadrature_points(c.cell, 3 * s.degree))[0, :, :, 0]
    vals = s.U @ P.T
    lo = COMM.allreduce(float(vals.min()) if vals.size else np.inf, MPI.MIN)
    hi = COMM.allreduce(float(np.abs(s.U).max()) if s.U.size else 0.0, MPI.MAX)
    return lo / hi


def box_run(d, cell, degree, n, limiter=True, steps=2):
    rho0 = InitialDensity(d, InitSpec("box", lower=[0.3, 0.5, 1.0][:d], upper=[2.0, 1.7, 2.2][:d]))
    a = np.array([1.0, 0.5, -0.7][:d])
    s = MeanFieldSolver(torus_mesh(COMM, d, n, cell), None, [0.0], [1.0], rho0, lr=1.0, degree=degree,
                        velocity=lambda th: np.tile(a, (len(th), 1)), normalize=False)
    s.limiter.enabled = limiter
    mins = []
    for _ in range(steps):
        s.step()
        mins.append(density_minimum(s))
    return min(mins), s


@pytest.mark.parametrize("d,cell,degree,n", [(2, "box", 2, 8), (2, "simplex", 2, 8), (2, "box", 3, 8),
                                             (2, "simplex", 3, 6), (1, "box", 2, 16), (3, "box", 2, 4),
                                             (3, "simplex", 2, 3)])
def test_density_is_nonnegative_at_independent_quadrature_points(d, cell, degree, n):
    """After limited steps of a box start, u_K >= -1e-12 max|U| at the cell and facet quadrature points of
    degree 3p (the limiter's margin 1e-13 max|U_K| keeps it >= 0 up to the round-off of evaluating u).
    Control: the same run without the limiter is negative there (< -1e-7; DG3: -1.2e-6 box, -1.3e-5 simplex)."""
    mn, s = box_run(d, cell, degree, n)
    assert mn >= -1e-12, mn
    assert s.observables()["min_rho"] >= 0.0
    off, _ = box_run(d, cell, degree, n, limiter=False, steps=1)
    assert off < -1e-7, off


def test_the_points_are_the_documented_rules():
    """The facet points lie on the facets, and the counts are those of Basix's rules of degree 3p."""
    for cell, facet, nf in [(basix.CellType.quadrilateral, basix.CellType.interval, 4),
                            (basix.CellType.triangle, basix.CellType.interval, 3),
                            (basix.CellType.tetrahedron, basix.CellType.triangle, 4)]:
        pts = quadrature_points(cell, 6)
        nc, nfq = len(basix.make_quadrature(cell, 6)[0]), len(basix.make_quadrature(facet, 6)[0])
        assert len(pts) == nc + nf * nfq
        on_facet = pts[nc:]
        if cell == basix.CellType.quadrilateral:
            # exactly one coordinate at 0 or 1 (Gauss points are interior to the facet)
            assert np.all((np.isclose(on_facet, 0) | np.isclose(on_facet, 1)).sum(axis=1) == 1)
        else:
            assert np.all(np.isclose(on_facet.min(axis=1), 0) | np.isclose(on_facet.sum(axis=1), 1))
