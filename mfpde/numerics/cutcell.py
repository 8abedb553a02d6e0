r"""Quadrature rules on affine cells, whole or cut by an axis-aligned box.

An affine cell is :math:`\theta = v_0 + J \xi` with :math:`\xi` on the Basix
reference cell (interval ``[0, 1]``, unit simplex, unit box; DOLFINx vertex
order, so ``J``'s columns are ``v_1 - v_0`` for simplices and
``v_{2^a} - v_0`` for boxes).  Rules are returned in reference coordinates
with *physical* weights:

.. math::

    \sum_j w_j\, q(\xi_j) = \int_{K \cap B} q(\xi(\theta))\, d\theta

exactly for every polynomial ``q`` of the requested degree (total degree on
simplices, per-coordinate degree on boxes), where ``B`` is a box or the whole
space.  The cut ``K \cap B`` is a polytope: an axis-aligned sub-box when ``K``
is an axis-aligned box (tensor Gauss-Legendre on it), otherwise ``K`` is split
into simplices (Kuhn split for a box), each clipped by the ``2 d`` half-spaces
of ``B`` into sub-simplices (a Gauss rule on each).  The composite rules of
:func:`composite_rule` serve smooth weights that vary on a scale smaller than
the cell (Gauss-Legendre on sub-boxes, mapped onto simplices by the Duffy
collapse).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

DIM = {"interval": 1, "triangle": 2, "quadrilateral": 2, "tetrahedron": 3, "hexahedron": 3}
SIMPLEX = {1: "interval", 2: "triangle", 3: "tetrahedron"}


def is_box(cell_type: str) -> bool:
    return cell_type in ("quadrilateral", "hexahedron")


def affine_map(cell_type: str, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v0`` (C, d) and ``J`` (C, d, d) of ``theta = v0 + J xi`` for cells (C, nv, d)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    d = DIM[cell_type]
    corners = [2**a for a in range(d)] if is_box(cell_type) else list(range(1, d + 1))
    v0 = vertices[:, 0, :]
    J = np.stack([vertices[:, k, :] - v0 for k in corners], axis=2)
    return v0, J


@lru_cache(maxsize=None)
def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss-Legendre rule on ``[0, 1]``."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def tensor_rule(d: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Legendre on ``[0, 1]^d`` with ``n`` points per axis: (n^d, d), (n^d,)."""
    x, w = gauss_legendre(n)
    pts = np.stack(np.meshgrid(*([x] * d), indexing="ij"), axis=-1).reshape(-1, d)
    wts = np.prod(np.stack(np.meshgrid(*([w] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1)
    return pts, wts


@lru_cache(maxsize=None)
def simplex_rule(d: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Basix Gauss rule of ``degree`` on the reference simplex (weights sum to 1/d!)."""
    if d == 1:
        return tensor_rule(1, degree // 2 + 1)
    import basix  # here, not at the top: the particles (box starts on boxes) run without the FEM stack

    p, w = basix.make_quadrature(getattr(basix.CellType, SIMPLEX[d]), max(degree, 1))
    return np.asarray(p, dtype=np.float64), np.asarray(w, dtype=np.float64)


def reference_rule(cell_type: str, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Rule of ``degree`` on the reference cell (tensor Gauss-Legendre on boxes)."""
    d = DIM[cell_type]
    if is_box(cell_type):
        return tensor_rule(d, degree // 2 + 1)
    return simplex_rule(d, degree)


def rule_on_simplices(simplices: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule of total ``degree`` on each of the simplices (P, d+1, d): points (P*Q, d), weights."""
    P, _, d = simplices.shape
    if P == 0:
        return np.empty((0, d)), np.empty(0)
    p, w = simplex_rule(d, degree)
    A = np.transpose(simplices[:, 1:, :] - simplices[:, :1, :], (0, 2, 1))  # (P, d, d)
    pts = simplices[:, None, 0, :] + np.einsum("pij,qj->pqi", A, p)
    wts = np.abs(np.linalg.det(A))[:, None] * w[None, :]
    return pts.reshape(-1, d), wts.reshape(-1)


def clip_simplex(s: np.ndarray, a: np.ndarray, b: float) -> list[np.ndarray]:
    """Simplex ``s`` (d+1, d) intersected with ``{x : a.x <= b}``, as a list of simplices.

    Triangle: the kept part is a triangle or a quadrilateral (two triangles);
    tetrahedron: a tetrahedron or a triangular prism (three tetrahedra).
    """
    f = s @ a - b
    inside = [i for i in range(len(s)) if f[i] <= 0.0]
    outside = [i for i in range(len(s)) if f[i] > 0.0]
    if not outside:
        return [s]
    if not inside:
        return []

    def cut(i, j):  # the point of edge i-j on the plane
        return s[i] + (f[i] / (f[i] - f[j])) * (s[j] - s[i])

    d = s.shape[1]
    if d == 1:
        return [np.array([s[inside[0]], cut(inside[0], outside[0])])]
    if len(inside) == 1:  # a corner simplex
        i = inside[0]
        return [np.array([s[i]] + [cut(i, j) for j in outside])]
    if d == 2:  # quadrilateral a, b, p_b, p_a
        (i, j), k = inside, outside[0]
        return [np.array([s[i], s[j], cut(j, k)]), np.array([s[i], cut(j, k), cut(i, k)])]
    # d == 3: a triangular prism with bottom (a, b, c) and top (a', b', c')
    if len(inside) == 3:
        bottom = [s[i] for i in inside]
        top = [cut(i, outside[0]) for i in inside]
    else:
        (i, j), (k, m) = inside, outside
        bottom = [s[i], cut(i, k), cut(i, m)]
        top = [s[j], cut(j, k), cut(j, m)]
    a0, b0, c0 = bottom
    a1, b1, c1 = top
    return [np.array([a0, b0, c0, a1]), np.array([b0, c0, a1, b1]), np.array([c0, a1, b1, c1])]


def clip_to_box(simplices: list[np.ndarray], lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    """The simplices intersected with the box ``[lo, hi]`` (axis-aligned), as simplices."""
    d = len(lo)
    for axis in range(d):
        e = np.zeros(d)
        e[axis] = 1.0
        simplices = [p for s in simplices for p in clip_simplex(s, e, hi[axis])]
        simplices = [p for s in simplices for p in clip_simplex(s, -e, -lo[axis])]
    return simplices


def kuhn_simplices(d: int) -> np.ndarray:
    """The ``d!`` simplices of the Kuhn split of ``[0, 1]^d``: (d!, d+1, d)."""
    out = []
    for perm in itertools.permutations(range(d)):
        path = [np.zeros(d)]
        for a in perm:
            nxt = path[-1].copy()
            nxt[a] = 1.0
            path.append(nxt)
        out.append(np.array(path))
    return np.array(out)


def cell_simplices(cell_type: str, v0: np.ndarray, J: np.ndarray) -> list[np.ndarray]:
    """One cell as physical simplices (the cell itself, or the Kuhn split of a box)."""
    d = DIM[cell_type]
    ref = kuhn_simplices(d) if is_box(cell_type) else np.concatenate([np.zeros((1, d)), np.eye(d)])[None]
    return [v0 + r @ J.T for r in ref]


def cut_cell_rule(cell_type: str, v0: np.ndarray, J: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]],
                  degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Rule on the part of one cell inside the union of disjoint ``boxes`` [(lo, hi)]: reference points, weights.

    Exact for polynomials of ``degree`` in reference coordinates (per coordinate on boxes).
    """
    d = DIM[cell_type]
    Jinv = np.linalg.inv(J)
    aligned = is_box(cell_type) and np.allclose(J, np.diag(np.diag(J)), rtol=0, atol=1e-14 * np.abs(J).max())
    pts, wts = [], []
    if aligned:
        p, w = tensor_rule(d, degree // 2 + 1)
        diag = np.diag(J)
        for lo, hi in boxes:  # the sub-box in reference coordinates
            a = np.clip(np.minimum((lo - v0) / diag, (hi - v0) / diag), 0.0, 1.0)
            b = np.clip(np.maximum((lo - v0) / diag, (hi - v0) / diag), 0.0, 1.0)
            if np.all(b > a):
                pts.append(a + p * (b - a))
                wts.append(w * np.prod(b - a) * abs(np.prod(diag)))
    else:
        total = degree * d if is_box(cell_type) else degree
        whole = cell_simplices(cell_type, v0, J)
        for lo, hi in boxes:
            pieces = clip_to_box(whole, lo, hi)
            if pieces:
                x, w = rule_on_simplices(np.array(pieces), total)
                pts.append((x - v0) @ Jinv.T)
                wts.append(w)
    if not pts:
        return np.empty((0, d)), np.empty(0)
    return np.concatenate(pts), np.concatenate(wts)


def duffy(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse ``[0, 1]^d`` onto the reference simplex: points (M, d) and the Jacobian (M,)."""
    d = u.shape[1]
    xi = np.empty_like(u)
    jac = np.ones(len(u))
    scale = np.ones(len(u))
    for a in range(d):  # xi_a = u_a prod_{b<a} (1 - u_b)
        xi[:, a] = u[:, a] * scale
        jac *= scale
        scale = scale * (1.0 - u[:, a])
    return xi, jac


def composite_rule(cell_type: str, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss-Legendre per axis on each of ``m^d`` sub-boxes of ``[0, 1]^d``, on the reference cell.

    Boxes: as is; simplices: through the Duffy collapse (exact for total degree ``2 n - 1 - d``).
    Weights sum to the reference cell's volume.
    """
    d = DIM[cell_type]
    p, w = tensor_rule(d, n)
    corners = np.stack(np.meshgrid(*([np.arange(m)] * d), indexing="ij"), axis=-1).reshape(-1, d)
    u = ((corners[:, None, :] + p[None, :, :]) / m).reshape(-1, d)
    wu = np.tile(w, len(corners)) / m**d
    if is_box(cell_type) or d == 1:
        return u, wu
    xi, jac = duffy(u)
    return xi, wu * jac
