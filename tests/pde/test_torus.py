"""Periodic torus meshes: topology (no boundary), volume, shipped mesh files, d > 3 refused."""

from pathlib import Path

import numpy as np
import pytest

import dolfinx_solver  # noqa: F401
from mpi4py import MPI

from mfpde.errors import CaseError
from mfpde.pde.torus import load_torus_mesh, save_torus_mesh, structured_torus_cells, torus_mesh

MESHES = Path(__file__).resolve().parents[2] / "meshes"
COMM = MPI.COMM_WORLD


@pytest.mark.parametrize("d,n", [(1, 7), (2, 5), (3, 4)])
@pytest.mark.parametrize("cell", ["simplex", "box"])
def test_structured_torus_has_no_boundary_and_full_volume(d, n, cell):
    m = torus_mesh(COMM, d, n, cell)
    assert m.exterior_facet_count() == 0
    assert m.volume() == pytest.approx((2 * np.pi) ** d, rel=1e-13)
    per_box = {1: 1, 2: 2, 3: 6}[d] if cell == "simplex" else 1
    assert m.num_cells_global == per_box * n**d
    # each facet is shared by exactly two cells (closed manifold): 2 F = (facets per cell) C
    tdim = d
    m.mesh.topology.create_connectivity(tdim - 1, tdim)
    nf = m.mesh.topology.index_map(tdim - 1).size_global
    fpc = {("interval"): 2, "triangle": 3, "quadrilateral": 4, "tetrahedron": 4, "hexahedron": 6}[m.cell_type]
    assert 2 * nf == fpc * m.num_cells_global
    # cells are unwrapped straight-sided cells inside [0, 2 pi]^d
    x = m.mesh.geometry.x[:, :d]
    assert x.min() >= 0.0 and x.max() <= 2 * np.pi + 1e-12


def test_structured_vertices_are_periodic():
    v, cells, name = structured_torus_cells(2, 4, "simplex")
    assert name == "triangle" and v.shape == (16, 2) and cells.max() == 15
    assert np.all(v < 2 * np.pi)


@pytest.mark.parametrize("path", sorted(MESHES.glob("*.npz")), ids=lambda p: p.stem)
def test_shipped_meshes_are_tori(path):
    m = load_torus_mesh(COMM, path)
    assert m.exterior_facet_count() == 0
    assert m.volume() == pytest.approx((2 * np.pi) ** m.d, rel=1e-12)


def test_mesh_file_roundtrip_and_errors(tmp_path):
    v, c, name = structured_torus_cells(2, 5, "box")
    save_torus_mesh(tmp_path / "m.npz", v, c, name)
    m = load_torus_mesh(COMM, tmp_path / "m.npz")
    assert m.cell_type == "quadrilateral" and m.num_cells_global == 25 and m.exterior_facet_count() == 0
    save_torus_mesh(tmp_path / "bad.npz", v, c + 100, name)
    with pytest.raises(CaseError, match="vertices that do not exist"):
        load_torus_mesh(COMM, tmp_path / "bad.npz")
    with pytest.raises(CaseError, match="cannot read"):
        load_torus_mesh(COMM, tmp_path / "missing.npz")


def test_dimension_above_three_is_refused():
    with pytest.raises(CaseError, match=r"pde\.d: .*d = 1, 2, 3; d = 5 is for particles only"):
        torus_mesh(COMM, 5, 4)
    with pytest.raises(CaseError, match="n >= 3"):
        torus_mesh(COMM, 2, 2)


# ---------------------------------------------------------------- graded meshes

@pytest.mark.parametrize("d, cell", [(1, "simplex"), (2, "box"), (2, "simplex"), (3, "box"), (3, "simplex")])
def test_graded_torus_is_a_torus(d, cell):
    from mfpde.pde.grading import graded_coordinates

    n = {1: 20, 2: 12, 3: 6}[d]
    coords = graded_coordinates(n, [(-0.75, 0.75), (2.0, 3.5), (5.9, 6.6)][:d], 4.0)
    m = torus_mesh(COMM, d, n, cell, coords)
    assert m.exterior_facet_count() == 0
    assert m.volume() == pytest.approx((2 * np.pi) ** d, rel=1e-13)
    per_box = {1: 1, 2: 2, 3: 6}[d] if cell == "simplex" else 1
    assert m.num_cells_global == per_box * n**d and m.n == n
    gaps = np.diff(np.concatenate([coords[0], [coords[0][0] + 2 * np.pi]]))
    assert m.h == pytest.approx(max(np.diff(np.concatenate([x, [x[0] + 2 * np.pi]])).max() for x in coords))
    assert gaps.max() / gaps.min() == pytest.approx(4.0, rel=0.05)  # the grading


def test_graded_axis_is_fine_inside_the_interval_and_starts_at_its_edge():
    from mfpde.pde.grading import graded_axis

    x = graded_axis(40, (-0.75, 0.75), 5.0)
    assert len(x) == 40 and np.all(np.diff(x) > 0) and x[0] >= 0 and x[-1] < 2 * np.pi
    assert np.min(np.abs(x - (2 * np.pi - 0.75))) < 1e-12  # a vertex at the interval's lower end
    gaps = np.diff(np.concatenate([x, [x[0] + 2 * np.pi]]))
    mid = 0.5 * (x + np.roll(x, -1) + 2 * np.pi * (np.roll(x, -1) < x))  # cell centres
    inside = np.abs(np.mod(mid + np.pi, 2 * np.pi) - np.pi) < 0.75
    assert gaps[inside].max() == pytest.approx(gaps.min(), rel=1e-3)
    assert gaps.max() == pytest.approx(5.0 * gaps.min(), rel=0.02)
    assert np.array_equal(graded_axis(8, (0.0, 1.0), 1.0), 2 * np.pi * np.arange(8) / 8)


@pytest.mark.parametrize("coords, problem", [
    ([[0.0, 1.0, 0.5], [0.0, 1.0, 2.0]], "strictly increasing"),
    ([[0.0, 1.0, 2.0, 7.0], [0.0, 1.0, 2.0]], "strictly increasing"),
    ([[0.0, 1.0, 4.5], [0.0, 2.0, 4.0]], "shorter than pi"),
    ([[0.0, 2.0, 4.0]], "needs 2 axes"),
])
def test_bad_coordinates_are_refused(coords, problem):
    with pytest.raises(CaseError, match=problem):
        torus_mesh(COMM, 2, 3, "box", coords)


@pytest.mark.mpi
def test_graded_torus_on_two_ranks():
    from conftest import mpirun

    out = mpirun("graded_torus_ranks.py").stdout
    assert out.count("ok  ") == 15 and "FAIL" not in out
