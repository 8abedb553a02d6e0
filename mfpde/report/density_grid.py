r"""A cellwise density on a regular grid of the torus, vectorized over cells (for the figures).

:func:`grid_values` gives the same numbers as
:func:`mfpde.numerics.fields.evaluate_cellwise` at the grid points
``x_j = (j + 1/2) L / n_i`` (per axis ``i``), without locating every point
by a search over buckets of cells.  Each cell lists the grid points of its
(unwrapped) bounding box, ``j = ceil(lo / h - 1/2) .. floor(hi / h - 1/2)`` per
axis (``j`` taken mod ``n_i``: the torus); their reference coordinates are

* simplices and parallelogram boxes (every box of a fixed mesh): the affine
  inverse ``xi = J^{-1} (x - X_0)``, ``J`` the columns ``X_{e_i} - X_0``;
* other boxes (a mesh moved with the flow): Newton's method on the
  multilinear map from that affine guess, only on the points not yet
  converged (``|delta| < 1e-13``, at most 30 steps; a point that does not
  converge lies in no cell); in 2-D only on the points inside the polygon
  ``X_0 X_1 X_3 X_2`` (even-odd rule), where it converges in a few steps.

A pair (cell, grid point) with ``xi`` in the reference cell (to 1e-9) gives
the value ``sum_j values[c, j] phi_j(xi)`` (the Lagrange basis of
:mod:`mfpde.numerics.fields`); on a shared face either cell's value is kept
(the field is discontinuous there).  Grid points in no cell (a degenerate
moved cell) are evaluated by :func:`mfpde.numerics.fields.evaluate_cellwise`.
The pairs are processed in chunks (bounded memory).
"""

from __future__ import annotations


import numpy as np

from mfpde.numerics.fields import _basis_coefficients, _box_shape, _monomials, evaluate_cellwise

_SIMPLEX = {"interval", "triangle", "tetrahedron"}
_CHUNK = 200_000  # (cell, grid point) pairs per vectorized step


def _affine(cell_type: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin (C, d) and inverse Jacobian (C, d, d) of the affine map of each cell
    (the exact map for simplices and parallelograms, a first guess otherwise)."""
    C, nv, d = X.shape
    if cell_type in _SIMPLEX:
        corners = [1 + i for i in range(d)]
    else:  # lexicographic box vertices: e_i is vertex 2^i
        corners = [2**i for i in range(d)]
    J = np.transpose(X[:, corners, :] - X[:, :1, :], (0, 2, 1))
    return X[:, 0, :], np.linalg.inv(J)


def _is_parallelepiped(X: np.ndarray) -> np.ndarray:
    """(C,) whether each lexicographic box is the affine image of the unit box."""
    C, nv, d = X.shape
    corners = np.array([[(k >> a) & 1 for a in range(d)] for k in range(nv)], dtype=float)
    E = X[:, [2**i for i in range(d)], :] - X[:, :1, :]  # (C, d, d): row i = X_{e_i} - X_0
    affine = X[:, :1, :] + np.einsum("ka,cai->cki", corners, E)
    scale = np.abs(E).max(axis=(1, 2)) + 1e-300
    return np.abs(affine - X).max(axis=(1, 2)) <= 1e-12 * scale


def _newton(X: np.ndarray, x: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Reference coordinates of x (P, d) in the multilinear boxes X (P, nv, d) from the guess xi."""
    d = x.shape[1]
    xi = xi.copy()
    active = np.arange(len(x))
    for _ in range(30):
        if not active.size:
            break
        N, dN = _box_shape(xi[active], d)
        r = np.einsum("pa,pai->pi", N, X[active]) - x[active]
        J = np.einsum("pai,paj->pij", X[active], dN)
        with np.errstate(all="ignore"):
            delta = np.linalg.solve(J, r[:, :, None])[:, :, 0]
        xi[active] -= delta
        bad = ~np.all(np.isfinite(xi[active]), axis=1) | np.any(np.abs(xi[active]) > 4.0, axis=1)
        xi[active[bad]] = np.nan
        done = bad | (np.abs(delta).max(axis=1) < 1e-13)
        active = active[~done]
    xi[active] = np.nan  # not converged: in no cell
    return xi


def _in_quadrilateral(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(P,) whether x (P, 2) lies in the polygon X_0 X_1 X_3 X_2 of the quadrilaterals X (P, 4, 2)
    (even-odd rule; the image of the unit square under a non-degenerate multilinear map)."""
    poly = X[:, [0, 1, 3, 2], :]
    inside = np.zeros(len(x), dtype=bool)
    for k in range(4):
        a, b = poly[:, k, :], poly[:, (k + 1) % 4, :]
        crosses = (a[:, 1] > x[:, 1]) != (b[:, 1] > x[:, 1])
        with np.errstate(all="ignore"):
            at = a[:, 0] + (x[:, 1] - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        inside ^= crosses & (x[:, 0] < at)
    return inside


def _pairs(lo: np.ndarray, hi: np.ndarray, h: np.ndarray, cells: np.ndarray):
    """(cell, unwrapped grid index (P, d)) for every grid point in each cell's bounding box."""
    first = np.ceil(lo / h - 0.5 - 1e-9).astype(np.int64)
    count = np.maximum(np.floor(hi / h - 0.5 + 1e-9).astype(np.int64) - first + 1, 0)  # (C, d)
    total = count.prod(axis=1)
    c = np.repeat(np.arange(len(cells)), total)
    local = np.arange(int(total.sum())) - np.repeat(np.cumsum(total) - total, total)
    stride = np.cumprod(count[:, ::-1], axis=1)[:, ::-1]  # stride of axis i: prod(count[i+1:])
    stride = np.concatenate([stride[:, 1:], np.ones((len(cells), 1), np.int64)], axis=1)
    j = first[c] + (local[:, None] // stride[c]) % count[c]
    return cells[c], j


def grid_values(cellwise: dict, shape) -> np.ndarray:
    """The field on the cell-centred grid of ``[0, L)^d``: array of ``shape`` (n_1, ..., n_d), indexed
    ``[j_1, ..., j_d]`` at ``((j_1 + 1/2) L / n_1, ...)`` (see the module docstring)."""
    cell_type = str(cellwise["cell_type"])
    X = np.asarray(cellwise["vertices"], dtype=np.float64)
    C, nv, d = X.shape
    shape = tuple(int(s) for s in shape)
    if len(shape) != d:
        raise ValueError(f"grid_values: a grid of {len(shape)} axes for a field on T^{d}")
    L = float(cellwise.get("period", 2.0 * np.pi))
    n = np.array(shape)
    h = L / n
    values = np.asarray(cellwise["values"], dtype=np.float64)
    exps, Cinv = _basis_coefficients(cellwise)
    origin, Jinv = _affine(cell_type, X)
    curved = np.zeros(C, bool) if cell_type in _SIMPLEX else ~_is_parallelepiped(X)
    out = np.full(int(np.prod(n)), np.nan)
    strides = np.array([int(np.prod(n[i + 1 :])) for i in range(d)])  # C order: [j_1, ..., j_d]
    lo, hi = X.min(axis=1), X.max(axis=1)
    per_cell = np.prod(np.maximum(np.floor(hi / h - 0.5 + 1e-9) - np.ceil(lo / h - 0.5 - 1e-9) + 1, 0), axis=1)
    cum = np.cumsum(per_cell)
    edges = np.unique(np.concatenate([[0], np.searchsorted(cum, np.arange(_CHUNK, cum[-1], _CHUNK)), [C]]))
    for a, b in zip(edges[:-1], edges[1:]):
        cells = np.arange(a, b)
        c, j = _pairs(lo[cells], hi[cells], h, cells)
        if not c.size:
            continue
        x = (j + 0.5) * h
        xi = np.einsum("pij,pj->pi", Jinv[c], x - origin[c])
        if curved.any():
            bent = curved[c]
            if bent.any() and d == 2:  # Newton only where the point is in the quadrilateral
                rows = np.flatnonzero(bent)
                out_of = rows[~_in_quadrilateral(X[c[rows]], x[rows])]
                xi[out_of] = np.nan
                bent[out_of] = False
            if bent.any():
                xi[bent] = _newton(X[c[bent]], x[bent], xi[bent])
        tol = 1e-9
        if cell_type in _SIMPLEX:
            inside = np.all(xi >= -tol, axis=1) & (xi.sum(axis=1) <= 1.0 + tol)
        else:
            inside = np.all((xi >= -tol) & (xi <= 1.0 + tol), axis=1)
        c, j, xi = c[inside], j[inside], xi[inside]
        basis = _monomials(xi, exps) @ Cinv
        out[np.mod(j, n) @ strides] = np.einsum("pj,pj->p", basis, values[c])
    missing = np.flatnonzero(np.isnan(out))
    if missing.size:  # points of no cell's bounding box or of a degenerate moved cell: the point search
        idx = np.stack(np.unravel_index(missing, shape), axis=1)
        out[missing] = evaluate_cellwise(cellwise, (idx + 0.5) * h)
    return out.reshape(shape)
