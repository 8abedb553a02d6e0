r"""Exactly periodic meshes of the torus :math:`T^d = [0, 2\pi)^d`, d = 1, 2, 3.

DOLFINx has no periodic constraint, so periodicity is put into the mesh
*topology*: the cells of a structured grid are built with vertex indices taken
modulo ``n`` in every direction (``n^d`` distinct vertices), so the facets on
the seam are ordinary interior facets shared by two cells, on one rank or
across ranks (the partitioner and the ghost layer follow the periodic
connectivity).  The resulting geometry is then replaced by a *broken* one in
which every local cell owns its nodes, unwrapped so that the cell is a proper
straight-sided cell of :math:`\mathbb{R}^d` whose centroid lies in
:math:`[0, 2\pi)^d` (recipe in ``shared/notes/periodic-torus-mesh.md``).

Consequences: the mesh has no exterior facets, DG fields (and CG fields, whose
dofs follow the topology) are periodic by construction, and coordinates of
seam cells may reach ``2 pi`` (or slightly beyond for unstructured meshes);
everything evaluated on the mesh must be ``2 pi``-periodic.

Mesh files (``load_torus_mesh``) are ``.npz`` with ``vertices`` (N, d) in
``[0, period)``, ``cells`` (C, nv) vertex indices in DOLFINx reference order,
``cell_type`` (one of interval, triangle, quadrilateral, tetrahedron,
hexahedron) and ``period`` (a float; ``2 pi`` for mfpde).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001  (the DOLFINx provider, imported before dolfinx / petsc4py)
import basix.ufl
import dolfinx
import dolfinx.cpp
import dolfinx.mesh
import ufl
from mpi4py import MPI

from mfpde.errors import CaseError
from mfpde.constants import TWO_PI


_CELL_NAMES = {
    (1, "simplex"): "interval",
    (1, "box"): "interval",
    (2, "simplex"): "triangle",
    (2, "box"): "quadrilateral",
    (3, "simplex"): "tetrahedron",
    (3, "box"): "hexahedron",
}
_DIM_OF = {"interval": 1, "triangle": 2, "quadrilateral": 2, "tetrahedron": 3, "hexahedron": 3}
_NV_OF = {"interval": 2, "triangle": 3, "quadrilateral": 4, "tetrahedron": 4, "hexahedron": 8}


@dataclass
class TorusMesh:
    """A DOLFINx mesh of the torus ``[0, period)^d`` with its description.

    ``h`` is the grid spacing ``period / n`` of a structured mesh (for a loaded
    mesh: the largest cell diameter); ``n`` is ``None`` for loaded meshes.
    """

    mesh: dolfinx.mesh.Mesh
    d: int
    n: int | None
    cell_type: str
    h: float
    period: float = TWO_PI

    @property
    def comm(self):
        return self.mesh.comm

    @property
    def num_cells_global(self) -> int:
        return self.mesh.topology.index_map(self.d).size_global

    def exterior_facet_count(self) -> int:
        """Number of exterior facets over all ranks (0 for a torus)."""
        tdim = self.d
        self.mesh.topology.create_connectivity(tdim - 1, tdim)
        ext = dolfinx.mesh.exterior_facet_indices(self.mesh.topology)
        nf = self.mesh.topology.index_map(tdim - 1).size_local
        return self.comm.allreduce(int(np.count_nonzero(ext < nf)), op=MPI.SUM)

    def volume(self) -> float:
        """Total volume (``period^d`` for a correct torus mesh)."""
        one = dolfinx.fem.form(dolfinx.fem.Constant(self.mesh, 1.0) * ufl.dx(domain=self.mesh))
        return self.comm.allreduce(dolfinx.fem.assemble_scalar(one), op=MPI.SUM)


def check_dimension(d: int, key: str = "pde.d") -> None:
    """Refuse a dimension the PDE solver cannot mesh (d > 3 is particles only)."""
    if int(d) != d or d < 1:
        raise CaseError(key, f"the dimension must be a positive integer, got {d!r}")
    if d > 3:
        raise CaseError(
            key,
            f"the PDE solver supports d = 1, 2, 3; d = {d} is for particles only "
            "(use `mfpde particles`)",
        )


def structured_torus_cells(d: int, n: int, cell: str = "simplex",
                           coordinates: list | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Vertices ``(prod n_a, d)`` and cells of the structured periodic grid.

    Axis ``a`` has ``n_a`` vertex coordinates: ``2 pi i / n`` (``n_a = n``), or
    ``coordinates[a]`` (strictly increasing, in ``[0, 2 pi)``, spacings and the
    wrap-around gap below ``pi``: a graded grid).  Vertex ``(i_0, ..., i_{d-1})``
    has index ``sum_a i_a prod_{b<a} n_b``; cell vertex indices are taken modulo
    ``n_a``.  Boxes use the DOLFINx (lexicographic) vertex order; simplices are
    the Kuhn (Freudenthal) split of each box, which is conforming and
    translation invariant, hence periodic.
    """
    check_dimension(d)
    if cell not in ("simplex", "box"):
        raise CaseError("pde.cell", f"unknown cell kind {cell!r} (simplex or box)")
    axes = [TWO_PI * np.arange(n) / n for _ in range(d)] if coordinates is None else check_coordinates(coordinates, d)
    counts = np.array([len(x) for x in axes])
    if counts.min() < 3:
        raise CaseError("pde.n", f"a periodic mesh needs n >= 3 cells per direction, got {counts.min()}")
    name = _CELL_NAMES[(d, cell)]
    idx = np.indices(counts[::-1]).reshape(d, -1).T  # multi-index, last axis fastest
    idx = idx[:, ::-1]  # so that column 0 varies fastest
    strides = np.concatenate([[1], np.cumprod(counts[:-1])])
    vertices = np.stack([axes[a][idx[:, a]] for a in range(d)], axis=1)

    def vid(offset):
        return ((idx + np.asarray(offset)) % counts) @ strides

    # corners of the box in lexicographic order (axis 0 fastest)
    corners = [tuple((k >> a) & 1 for a in range(d)) for k in range(2**d)]
    if cell == "box" or d == 1:
        cells = np.stack([vid(c) for c in corners], axis=1)
    else:
        simplices = []
        for perm in itertools.permutations(range(d)):
            path = [np.zeros(d, dtype=int)]
            for a in perm:
                nxt = path[-1].copy()
                nxt[a] = 1
                path.append(nxt)
            simplices.append(np.stack([vid(p) for p in path], axis=1))
        cells = np.stack(simplices, axis=1).reshape(-1, d + 1)
    return vertices, cells.astype(np.int64), name


def check_coordinates(coordinates, d: int) -> list[np.ndarray]:
    """Per-axis vertex coordinates of a graded grid, checked: ``d`` increasing arrays in ``[0, 2 pi)``."""
    if len(coordinates) != d:
        raise CaseError("pde.coordinates", f"needs {d} axes, got {len(coordinates)}")
    axes = []
    for a, x in enumerate(coordinates):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        gaps = np.diff(np.concatenate([x, [x[0] + TWO_PI]])) if len(x) else np.empty(0)
        if len(x) < 3 or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() >= TWO_PI or np.any(gaps <= 0):
            raise CaseError(f"pde.coordinates[{a}]", "must be >= 3 strictly increasing values in [0, 2 pi)")
        if gaps.max() >= np.pi:
            raise CaseError(f"pde.coordinates[{a}]", f"cells must be shorter than pi, got {gaps.max()}")
        axes.append(x)
    return axes


def _broken_mesh(comm, cells: np.ndarray, vertices: np.ndarray, cell_name: str, period: float) -> dolfinx.mesh.Mesh:
    """Periodic topology from ``cells`` / ``vertices``, then a broken geometry."""
    d = _DIM_OF[cell_name]
    element = basix.ufl.element("Lagrange", cell_name, 1, shape=(d,))
    domain = ufl.Mesh(element)
    if comm.rank != 0:
        cells = np.empty((0, _NV_OF[cell_name]), dtype=np.int64)
        vertices = np.empty((0, d), dtype=np.float64)
    partitioner = dolfinx.mesh.create_cell_partitioner(dolfinx.mesh.GhostMode.shared_facet, 2)
    msh = dolfinx.mesh.create_mesh(comm, cells, domain, vertices, partitioner=partitioner)

    topo = msh.topology
    nloc = topo.index_map(d).size_local + topo.index_map(d).num_ghosts
    gdofs = msh.geometry.dofmaps[0]
    nv = gdofs.shape[1]
    X = msh.geometry.x[:, :d][gdofs[:nloc]]  # (nloc, nv, d)
    X = X - period * np.round((X - X[:, :1, :]) / period)
    centroid = X.mean(axis=1, keepdims=True)
    X = X - period * np.floor(centroid / period)

    imap = dolfinx.cpp.common.IndexMap(comm, nloc * nv)
    dofmap = np.arange(nloc * nv, dtype=np.int32).reshape(nloc, nv)
    x = np.zeros((nloc * nv, 3), dtype=np.float64)
    x[:, :d] = X.reshape(-1, d)
    cidx = topo.original_cell_index[:nloc].astype(np.int64)
    igi = (cidx[:, None] * nv + np.arange(nv)[None, :]).reshape(-1)
    geometry = dolfinx.mesh.create_geometry(imap, dofmap, msh.geometry.cmaps[0], x[:, :d].copy(), igi)
    cpp_mesh = dolfinx.cpp.mesh.Mesh_float64(comm, topo._cpp_object, geometry._cpp_object)
    return dolfinx.mesh.Mesh(cpp_mesh, domain)


def torus_mesh(comm, d: int, n: int, cell: str = "simplex", coordinates: list | None = None) -> TorusMesh:
    """Structured, exactly periodic mesh of ``[0, 2 pi)^d`` with ``n`` cells per direction.

    d = 1: intervals; d = 2: triangles (``simplex``, 2 per rectangle) or
    quadrilaterals (``box``); d = 3: tetrahedra (6 per box) or hexahedra.
    ``coordinates`` (one array per axis, see :func:`structured_torus_cells`)
    gives a graded grid instead (``n`` is then ignored; ``h`` is the largest
    spacing).  Collective on ``comm``; rank 0's grid is the one distributed.
    """
    vertices, cells, name = structured_torus_cells(d, n, cell, coordinates)
    msh = _broken_mesh(comm, cells, vertices, name, TWO_PI)
    if coordinates is None:
        return TorusMesh(msh, d, n, name, TWO_PI / n)
    gaps = [np.diff(np.concatenate([x, [x[0] + TWO_PI]])) for x in check_coordinates(coordinates, d)]
    counts = {len(g) for g in gaps}
    return TorusMesh(msh, d, counts.pop() if len(counts) == 1 else None, name, float(max(g.max() for g in gaps)))


def save_torus_mesh(path, vertices: np.ndarray, cells: np.ndarray, cell_type: str, period: float = TWO_PI) -> None:
    """Write a mesh file readable by :func:`load_torus_mesh` (``.npz``)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim == 1:
        vertices = vertices[:, None]
    np.savez_compressed(
        path,
        vertices=vertices,
        cells=np.asarray(cells, dtype=np.int64),
        cell_type=np.array(cell_type),
        period=np.array(float(period)),
    )


def read_torus_mesh_file(path) -> tuple[np.ndarray, np.ndarray, str, float]:
    """Vertices, cells, cell type and period of a mesh file, checked."""
    path = Path(path)
    key = f"pde.mesh ({path})"
    try:
        with np.load(path, allow_pickle=False) as f:
            vertices = np.array(f["vertices"], dtype=np.float64)
            cells = np.array(f["cells"], dtype=np.int64)
            cell_type = str(f["cell_type"])
            period = float(f["period"]) if "period" in f else TWO_PI
    except (OSError, KeyError, ValueError) as e:
        raise CaseError(key, f"cannot read the mesh file: {e}") from None
    if cell_type not in _DIM_OF:
        raise CaseError(key, f"unknown cell_type {cell_type!r} (known: {', '.join(_DIM_OF)})")
    d = _DIM_OF[cell_type]
    if vertices.ndim == 1:
        vertices = vertices[:, None]
    if vertices.shape[1] != d:
        raise CaseError(key, f"vertices have {vertices.shape[1]} coordinates but {cell_type} needs {d}")
    if cells.ndim != 2 or cells.shape[1] != _NV_OF[cell_type]:
        raise CaseError(key, f"cells must have shape (C, {_NV_OF[cell_type]}) for {cell_type}")
    if cells.size and (cells.min() < 0 or cells.max() >= len(vertices)):
        raise CaseError(key, "cells refer to vertices that do not exist")
    if not np.all(np.isfinite(vertices)):
        raise CaseError(key, "vertices are not finite")
    if abs(period - TWO_PI) > 1e-12:
        raise CaseError(key, f"period must be 2 pi for the mfpde torus, got {period}")
    return np.mod(vertices, period), cells, cell_type, period


def load_torus_mesh(comm, path) -> TorusMesh:
    """A periodic mesh from a file written by :func:`save_torus_mesh` (collective)."""
    if comm.rank == 0:
        vertices, cells, cell_type, period = read_torus_mesh_file(path)
        meta = (cell_type, period)
    else:
        meta = None
    meta = comm.bcast(meta, root=0)
    cell_type, period = meta
    d = _DIM_OF[cell_type]
    if comm.rank != 0:
        vertices = np.empty((0, d))
        cells = np.empty((0, _NV_OF[cell_type]), dtype=np.int64)
    msh = _broken_mesh(comm, cells, vertices, cell_type, period)
    tdim = d
    nloc = msh.topology.index_map(tdim).size_local
    h = msh.h(tdim, np.arange(nloc, dtype=np.int32)).max(initial=0.0)
    h = comm.allreduce(h, op=MPI.MAX)
    return TorusMesh(msh, d, None, cell_type, float(h), period)
