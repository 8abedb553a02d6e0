r"""Evaluate a saved cellwise density with numpy only (no DOLFINx needed).

A *cellwise* field is the dict of :meth:`mfpde.pde.MeanFieldSolver.gather_cellwise`
(also what the HDF5 result files store):

* ``cell_type``: interval, triangle, quadrilateral, tetrahedron or hexahedron;
* ``degree``: polynomial degree ``p`` of the discontinuous Lagrange element;
* ``vertices`` (C, nv, d): the vertices of every cell, unwrapped (a cell is a
  straight-sided cell of R^d, possibly reaching slightly past ``2 pi``), in the
  DOLFINx reference order (simplices: any; boxes: lexicographic, axis 0
  fastest);
* ``values`` (C, ndofs): the nodal values at ``reference_points``;
* ``reference_points`` (ndofs, d): the nodes on the reference cell
  (interval [0,1], unit simplex, unit box);
* ``period`` (default ``2 pi``).

The basis is rebuilt from the nodes: the Lagrange basis of ``P_p`` (simplices)
or ``Q_p`` (boxes) dual to point evaluation at ``reference_points`` (through
products of Legendre polynomials, well conditioned up to degree 6).  The map
reference -> cell is affine for simplices and multilinear for boxes (inverted
by Newton's method, exact in one step for parallelograms).
"""

from __future__ import annotations

import itertools

import numpy as np

_SIMPLEX = {"interval": 1, "triangle": 2, "tetrahedron": 3}
_BOX = {"quadrilateral": 2, "hexahedron": 3}


def _exponents(cell_type: str, p: int) -> np.ndarray:
    d = _SIMPLEX.get(cell_type) or _BOX[cell_type]
    exps = list(itertools.product(range(p + 1), repeat=d))
    if cell_type in _SIMPLEX:
        exps = [e for e in exps if sum(e) <= p]
    return np.array(exps, dtype=np.int64)


def _monomials(xi: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """(P, d) reference points -> (P, n_monomials): products of shifted Legendre polynomials
    ``prod_i P_{e_i}(2 xi_i - 1)`` (same span as the monomials, well conditioned up to degree 6)."""
    top = int(exps.max(initial=0))
    leg = np.stack([np.polynomial.legendre.legval(2.0 * xi - 1.0, np.eye(top + 1)[e]) for e in range(top + 1)])
    # leg[e, P, d] = P_e(2 xi - 1); pick the degree of each coordinate
    return np.prod(np.stack([leg[exps[:, i], :, i] for i in range(xi.shape[1])], axis=2), axis=2).T


def _basis_coefficients(cf: dict) -> tuple[np.ndarray, np.ndarray]:
    exps = _exponents(str(cf["cell_type"]), int(cf["degree"]))
    ref = np.asarray(cf["reference_points"], dtype=np.float64)
    V = _monomials(ref, exps)  # V[i, a] = m_a(node_i); basis_j = sum_a m_a C[a, j]
    return exps, np.linalg.inv(V)


def _box_shape(xi: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Multilinear shape functions (P, 2^d) and derivatives (P, 2^d, d), lexicographic order."""
    corners = np.array([[(k >> a) & 1 for a in range(d)] for k in range(2**d)])
    f = np.where(corners[None], xi[:, None, :], 1.0 - xi[:, None, :])  # (P, nv, d)
    N = f.prod(axis=2)
    dN = np.empty(f.shape)
    for j in range(d):
        g = f.copy()
        g[:, :, j] = np.where(corners[None, :, j] == 1, 1.0, -1.0)
        dN[:, :, j] = g.prod(axis=2)
    return N, dN


def _to_reference(cell_type: str, Xc: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Reference coordinates of points x (P, d) in cells Xc (P, nv, d)."""
    d = x.shape[1]
    if cell_type in _SIMPLEX:
        J = np.transpose(Xc[:, 1 : d + 1, :] - Xc[:, :1, :], (0, 2, 1))  # columns X_i - X_0
        return np.linalg.solve(J, (x - Xc[:, 0, :])[:, :, None])[:, :, 0]
    # Newton on the multilinear map; a point it does not bring back to itself (a distorted cell
    # of a moving mesh, a point outside the cell) gets NaN, hence is in no cell
    xi = np.full(x.shape, 0.5)
    scale = np.abs(Xc - Xc[:, :1]).max(axis=(1, 2)) + 1e-300
    for _ in range(40):
        N, dN = _box_shape(np.clip(xi, -1.0, 2.0), d)
        r = np.einsum("pa,pai->pi", N, Xc) - x
        J = np.einsum("pai,paj->pij", Xc, dN)
        with np.errstate(all="ignore"):
            delta = np.linalg.solve(J, r[:, :, None])[:, :, 0]
        xi = np.clip(xi, -1.0, 2.0) - delta
        if not np.any(np.abs(delta) > 1e-14):
            break
    N, _ = _box_shape(xi, d)
    miss = np.abs(np.einsum("pa,pai->pi", N, Xc) - x).max(axis=1) > 1e-10 * scale
    xi[miss] = np.nan
    return xi


def _inside(cell_type: str, xi: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    if cell_type in _SIMPLEX:
        return np.all(xi >= -tol, axis=1) & (xi.sum(axis=1) <= 1.0 + tol)
    return np.all((xi >= -tol) & (xi <= 1.0 + tol), axis=1)


def locate(cellwise: dict, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell index (P,) and reference coordinates (P, d) of each point (taken mod period)."""
    cell_type = str(cellwise["cell_type"])
    X = np.asarray(cellwise["vertices"], dtype=np.float64)
    C, nv, d = X.shape
    L = float(cellwise.get("period", 2.0 * np.pi))
    pts = np.mod(np.asarray(points, dtype=np.float64).reshape(-1, d), L)
    P = len(pts)
    lo, hi = X.min(axis=1), X.max(axis=1)
    centroid = X.mean(axis=1)
    ext = float(np.median((hi - lo).max(axis=1))) if C else 0.0  # typical, not largest: stretched cells span buckets
    nb = max(1, int(L / ext)) if ext > 0 else 1
    bs = L / nb
    # every cell in every bucket its bounding box touches (periodically)
    pairs_b, pairs_c = [], []
    strides = nb ** np.arange(d)
    lo_b = np.floor(lo / bs).astype(np.int64)
    hi_b = np.floor(hi / bs).astype(np.int64)
    for off in itertools.product(range(int((hi_b - lo_b).max(initial=0)) + 1), repeat=d):
        b = lo_b + np.array(off)
        ok = np.all(b <= hi_b, axis=1)
        pairs_b.append((np.mod(b[ok], nb) @ strides))
        pairs_c.append(np.nonzero(ok)[0])
    pb, pc = np.concatenate(pairs_b), np.concatenate(pairs_c)
    order = np.lexsort((pc, pb))
    pb, pc = pb[order], pc[order]
    keep = np.ones(len(pb), dtype=bool)
    keep[1:] = (pb[1:] != pb[:-1]) | (pc[1:] != pc[:-1])
    pb, pc = pb[keep], pc[keep]
    start = np.searchsorted(pb, np.arange(nb**d))
    count = np.searchsorted(pb, np.arange(nb**d), side="right") - start

    point_b = np.mod(np.floor(pts / bs).astype(np.int64), nb) @ strides
    cell = np.full(P, -1, dtype=np.int64)
    xi_all = np.zeros((P, d))
    for k in range(int(count.max(initial=0))):
        todo = np.nonzero((cell < 0) & (count[point_b] > k))[0]
        if not todo.size:
            break
        c = pc[start[point_b[todo]] + k]
        x = pts[todo] - L * np.round((pts[todo] - centroid[c]) / L)
        xi = _to_reference(cell_type, X[c], x)
        ok = _inside(cell_type, xi)
        cell[todo[ok]] = c[ok]
        xi_all[todo[ok]] = xi[ok]
    if np.any(cell < 0):
        bad = pts[cell < 0][0]
        raise ValueError(f"evaluate_cellwise: point {bad} is in no cell (is the mesh a torus of period {L}?)")
    return cell, xi_all


def evaluate_cellwise(cellwise: dict, points) -> np.ndarray:
    """Values (P,) of the cellwise field at ``points`` (P, d), taken modulo the period."""
    cell, xi = locate(cellwise, points)
    exps, Cinv = _basis_coefficients(cellwise)
    basis = _monomials(xi, exps) @ Cinv  # (P, ndofs)
    values = np.asarray(cellwise["values"], dtype=np.float64)
    return np.einsum("pj,pj->p", basis, values[cell])


def _reference_quadrature(cell_type: str, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights on the reference cell, exact for polynomials of degree ``order``."""
    m = order // 2 + 2
    g, gw = np.polynomial.legendre.leggauss(m)
    g, gw = (g + 1) / 2, gw / 2
    d = _SIMPLEX.get(cell_type) or _BOX[cell_type]
    U = np.stack(np.meshgrid(*([g] * d), indexing="ij"), axis=-1).reshape(-1, d)
    W = np.prod(np.stack(np.meshgrid(*([gw] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1)
    if cell_type in _BOX or d == 1:
        return U, W
    # collapsed (Duffy) coordinates
    if d == 2:
        u, v = U[:, 0], U[:, 1]
        return np.stack([u, v * (1 - u)], axis=1), W * (1 - u)
    u, v, s = U[:, 0], U[:, 1], U[:, 2]
    return np.stack([u, v * (1 - u), s * (1 - u) * (1 - v)], axis=1), W * (1 - u) ** 2 * (1 - v)


def cellwise_quadrature(cellwise: dict, order: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Weighted points of the density: ``points`` (C*nq, d) in ``[0, period)^d`` and
    ``weights * values`` (C*nq,), so that ``sum(wv * g(points)) ~ int g rho`` for
    smooth periodic ``g`` (exact for polynomials of degree ``order`` times the field
    on every affine cell).  The weights sum to the mass; they can be negative only
    where the density itself is (never, for the positivity-limited solver)."""
    cell_type = str(cellwise["cell_type"])
    X = np.asarray(cellwise["vertices"], dtype=np.float64)
    C, nv, d = X.shape
    L = float(cellwise.get("period", 2.0 * np.pi))
    p = int(cellwise["degree"])
    xi, wq = _reference_quadrature(cell_type, order + p)
    exps, Cinv = _basis_coefficients(cellwise)
    basis = _monomials(xi, exps) @ Cinv  # (nq, ndofs)
    rho = np.asarray(cellwise["values"], dtype=np.float64) @ basis.T  # (C, nq)
    if cell_type in _SIMPLEX:
        J = np.transpose(X[:, 1 : d + 1, :] - X[:, :1, :], (0, 2, 1))
        detJ = np.abs(np.linalg.det(J))[:, None]
        x = X[:, :1, :] + np.einsum("cij,qj->cqi", J, xi)
    else:
        N, dN = _box_shape(xi, d)
        x = np.einsum("qa,cai->cqi", N, X)
        detJ = np.abs(np.linalg.det(np.einsum("cai,qaj->cqij", X, dN)))
    return np.mod(x.reshape(-1, d), L), (wq[None, :] * detJ * rho).reshape(-1)
