r"""Quadrature rules for the initial density: :math:`\int g\,\rho_0 \approx \sum_j a_j g(\theta_j)`.

A rule is a set of points ``theta`` (M, d) and weights ``a`` (M,) with
``sum a = 1`` (the weights are normalised like the PDE solver normalises its
initial density).  Kinds:

``tensor``
    On the torus, the tensor trapezoid rule with ``n`` points per axis,
    :math:`\theta = 2\pi i / n`, :math:`a \propto \rho_0(\theta)`: exact for
    trigonometric polynomials of degree ``< n`` per coordinate when
    :math:`\rho_0` is uniform, spectrally accurate for smooth periodic
    integrands.  On a box start (``[init] kind = "box"``) the tensor
    Gauss-Legendre rule on the box instead (the density is discontinuous at
    the box faces, so a torus rule would converge only at first order).
``lattice``
    A rank-1 lattice :math:`\theta_j = 2\pi \{ j z / M \}`, generating vector
    ``z`` by component-by-component construction for the periodic
    Korobov space of smoothness 2 (criterion :math:`P_2`, unit product weights;
    candidates searched over a fixed pseudo-random subset of ``1..M-1`` coprime
    with ``M``).  :math:`a \propto \rho_0(\theta)`.  For large d.  On a box
    the lattice is mapped into the box after the tent transform (which keeps
    second-order convergence for non-periodic integrands).
``sobol``
    Scrambled Sobol points (:class:`scipy.stats.qmc.Sobol`, fixed seed),
    :math:`a \propto \rho_0(\theta)`, on a box mapped into the box.

Densities given by a formula (uniform, von Mises, wrapped normal, ...) enter
through the weights :math:`a_j = \rho_0(\theta_j) / \sum_i \rho_0(\theta_i)`;
a box through the placement of the points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy.stats import qmc

from mfpde.errors import CaseError
from mfpde.constants import TWO_PI

RULES = ("auto", "tensor", "lattice", "sobol")
AUTO_TENSOR_MAX_D = 4  # rule = "auto": tensor up to this d, lattice above


@dataclass(frozen=True)
class Rule:
    """Points (M, d), weights (M,) summing to 1, and how they were made."""

    points: np.ndarray
    weights: np.ndarray
    kind: str            # tensor-trapezoid, tensor-gauss-legendre, lattice, sobol
    size: int            # points per axis (tensor) or M

    @property
    def describe(self) -> str:
        M, d = self.points.shape
        per_axis = f", {self.size} per axis" if self.kind.startswith("tensor") else ""
        return f"{self.kind}, M = {M}{per_axis}, d = {d}"


def trapezoid_grid(d: int, n: int) -> np.ndarray:
    """The ``n^d`` points ``2 pi i / n`` of ``[0, 2 pi)^d``, C order: (n^d, d)."""
    g = TWO_PI * np.arange(n) / n
    return np.stack(np.meshgrid(*([g] * d), indexing="ij"), axis=-1).reshape(-1, d)


def gauss_legendre_box(lower, upper, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Legendre rule with ``n`` nodes per axis on the box, weights summing to 1."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    x, w = leggauss(n)
    half = 0.5 * (upper - lower)
    axes = [lower[i] + half[i] * (x + 1.0) for i in range(len(lower))]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(lower))
    wts = np.ones(1)
    for _ in lower:
        wts = np.multiply.outer(wts, 0.5 * w).reshape(-1)
    return pts, wts / wts.sum()


def _p2_factor(x: np.ndarray) -> np.ndarray:
    """``1 + 2 pi^2 B_2(x)`` with ``B_2(x) = x^2 - x + 1/6``: the 1-d kernel of the P_2 criterion."""
    return 1.0 + TWO_PI * np.pi * (x * x - x + 1.0 / 6.0)


def lattice_vector(M: int, d: int, candidates: int = 512, seed: int = 2026) -> np.ndarray:
    """Generating vector (d,) of a rank-1 lattice rule with M points, component by component.

    Each new component is the candidate (among up to ``candidates`` integers
    coprime with M, the same subset for every component) that minimises the
    worst-case error :math:`P_2` of the rule built so far.
    """
    j = np.arange(M)
    pool = np.arange(1, M, dtype=np.int64)
    pool = pool[np.gcd(pool, M) == 1]
    if pool.size > candidates:
        pool = np.sort(np.random.default_rng(seed).choice(pool, candidates, replace=False))
    z = [1]
    prod = _p2_factor((j % M) / M)
    for _ in range(1, d):
        best, best_err = None, np.inf
        for c in pool:
            err = float(np.mean(prod * _p2_factor(((j * c) % M) / M)))
            if err < best_err:
                best, best_err = int(c), err
        z.append(best)
        prod = prod * _p2_factor(((j * best) % M) / M)
    return np.array(z, dtype=np.int64)


def lattice_points(M: int, d: int) -> np.ndarray:
    """The rank-1 lattice ``{j z / M}`` in ``[0, 1)^d``: (M, d)."""
    z = lattice_vector(M, d)
    return (np.outer(np.arange(M), z) % M) / M


def sobol_points(M: int, d: int, seed: int = 2026) -> np.ndarray:
    """``M`` scrambled Sobol points in ``[0, 1)^d`` (M rounded up to a power of two)."""
    m = int(np.ceil(np.log2(max(M, 2))))
    return qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)


def _box(init) -> tuple[np.ndarray, np.ndarray] | None:
    if getattr(init, "kind", None) == "box":
        return np.asarray(init.lower, float), np.asarray(init.upper, float)
    return None


def resolve_rule(rule: str, d: int) -> str:
    if rule not in RULES:
        raise CaseError("limit.rule", f"must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    if rule == "auto":
        return "tensor" if d <= AUTO_TENSOR_MAX_D else "lattice"
    return rule


def per_axis(M: int, d: int) -> int:
    """Points per axis of a tensor rule with about M points (at least 2)."""
    return max(2, int(round(M ** (1.0 / d) + 1e-9)))


def make_rule(rule: str, points: int, d: int, rho0, init=None) -> Rule:
    """A rule of about ``points`` points for the density ``rho0`` (callable (M, d) -> (M,)).

    ``init`` is the case's ``[init]`` spec; a box start (``init.kind == "box"``
    with ``lower``, ``upper``) places the points in the box.
    """
    rule = resolve_rule(rule, d)
    if points < 2:
        raise CaseError("limit.points", f"must be >= 2, got {points}")
    box = _box(init)
    if rule == "tensor":
        n = per_axis(points, d)
        if box is not None:
            pts, wts = gauss_legendre_box(*box, n)
            return Rule(np.mod(pts, TWO_PI), wts, "tensor-gauss-legendre", n)
        pts = trapezoid_grid(d, n)
        return Rule(pts, _density_weights(rho0, pts), "tensor-trapezoid", n)
    unit = lattice_points(points, d) if rule == "lattice" else sobol_points(points, d)
    if box is not None:
        if rule == "lattice":
            unit = 1.0 - np.abs(2.0 * unit - 1.0)  # tent transform
        lo, hi = box
        pts = np.mod(lo + (hi - lo) * unit, TWO_PI)
        return Rule(pts, np.full(len(pts), 1.0 / len(pts)), rule, len(pts))
    pts = TWO_PI * unit
    return Rule(pts, _density_weights(rho0, pts), rule, len(pts))


def coarser_rule(rule: Rule, rho0, init=None) -> Rule:
    """A second rule of the same kind with about half the points (for an error estimate)."""
    M, d = rule.points.shape
    if rule.kind.startswith("tensor"):
        n = min(rule.size - 1, max(2, int(round(rule.size * 2.0 ** (-1.0 / d)))))
        return make_rule("tensor", n**d, d, rho0, init)
    return make_rule(rule.kind, max(2, M // 2), d, rho0, init)


def _density_weights(rho0, pts: np.ndarray) -> np.ndarray:
    a = np.asarray(rho0(pts), dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)) or np.any(a < 0) or a.sum() <= 0:
        raise CaseError("init", "the initial density is not a finite non-negative function on the rule's points")
    return a / a.sum()
