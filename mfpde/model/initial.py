r"""The initial density :math:`\rho_0` on the torus, i.i.d. samples from it, and cell rules for it.

All kinds are products over the coordinates :math:`i = 1..d`:

- ``uniform``: :math:`\rho_0 = (2\pi)^{-d}`;
- ``vonmises``: :math:`\prod_i e^{\kappa_i \cos(\theta_i - \mu_i)} / (2\pi I_0(\kappa_i))`;
- ``box``: :math:`\prod_i \mathbf 1[(\theta_i - l_i) \bmod 2\pi < u_i - l_i] / (u_i - l_i)`,
  uniform on :math:`\prod_i [l_i, u_i]` taken mod :math:`2\pi`;
- ``normal`` (wrapped): :math:`\prod_i \sum_{k \in \mathbb Z} e^{-(\theta_i - \mu_i + 2\pi k)^2 / 2\sigma_i^2} / (\sigma_i \sqrt{2\pi})`.

``sample`` draws exact i.i.d. points.  ``cell_quadrature`` gives, per affine
cell, a rule in reference coordinates for the weight :math:`\rho_0` (the
interface the PDE solver's initial projection uses):
:math:`\sum_j w_{cj} q(\xi_{cj}) = \int_{K_c} \rho_0(\theta) q(\xi(\theta)) d\theta`
for polynomials ``q`` of the given degree, exact up to round-off for
``uniform`` and ``box`` (the box's faces cut the cells, :mod:`mfpde.numerics.cutcell`)
and to about 1e-14 for the smooth kinds (composite Gauss-Legendre rules, :func:`smooth_rule_size`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import i0e, ive

from mfpde.numerics import cutcell
from mfpde.config.case import InitSpec
from mfpde.constants import TWO_PI

# A sub-cell of r times twice a Gaussian's standard deviation gets 8 + 3.5 r Gauss-Legendre points per
# axis (measured: error <= 4e-15 of the mass for r <= 4 with polynomial factors up to degree 6);
# sub-cells are at most R_MAX such lengths long.
R_MAX = 6.0


def smooth_rule_size(edge: float, scale: float, degree: int) -> tuple[int, int]:
    """Sub-cells per axis ``m`` and Gauss points per sub-cell axis ``n`` for a weight varying on ``scale``."""
    r = edge / (2.0 * scale)
    m = max(1, int(np.ceil(r / R_MAX)))
    n = int(np.ceil(8.0 + 3.5 * r / m)) + max(0, degree - 4) // 2
    return m, n


# a wrapped normal this wide is 1 / (2 pi) in double precision: its Fourier coefficients
# exp(-m^2 std^2 / 2) are below exp(-800), which is 0 (the image sum would need ~ std images)
UNIFORM_STD = 40.0


def wrapped_normal(theta: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Wrapped normal density per coordinate, same shape as ``theta``.

    With ``z`` in ``[-pi, pi)`` the image ``k`` is at least ``(2|k| - 1) pi`` away: images up to
    9 std away are summed (the rest is below ``e^-40`` of the peak).  Coordinates with
    ``std >= UNIFORM_STD`` are ``1 / (2 pi)`` (exactly so in double precision).
    """
    std = np.broadcast_to(np.asarray(std, dtype=float), np.shape(theta)[-1:])
    wide = std >= UNIFORM_STD
    if wide.any():
        out = np.full(np.shape(theta), 1.0 / TWO_PI)
        if not wide.all():
            narrow = ~wide
            out[..., narrow] = wrapped_normal(np.asarray(theta)[..., narrow],
                                              np.broadcast_to(mean, std.shape)[narrow], std[narrow])
        return out
    z = np.mod(theta - mean + np.pi, TWO_PI) - np.pi  # in [-pi, pi)
    kmax = int(np.ceil((9.0 * np.max(std) / np.pi + 1.0) / 2.0)) - 1
    k = TWO_PI * np.arange(-kmax, kmax + 1)
    s = np.asarray(std)[..., None]
    return np.sum(np.exp(-((z[..., None] + k) ** 2) / (2.0 * s**2)), axis=-1) / (np.asarray(std) * np.sqrt(TWO_PI))


@dataclass(frozen=True)
class InitialDensity:
    d: int
    spec: InitSpec

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """Density values at points ``theta`` (M, d): shape (M,)."""
        theta = np.atleast_2d(theta)
        s = self.spec
        if s.kind == "uniform":
            return np.full(theta.shape[0], TWO_PI**-self.d)
        if s.kind == "box":
            lower, width = np.asarray(s.lower), np.asarray(s.upper) - np.asarray(s.lower)
            inside = np.all(np.mod(theta - lower, TWO_PI) < width, axis=1)
            return inside / np.prod(width)
        if s.kind == "normal":
            return np.prod(wrapped_normal(theta, np.asarray(s.mean), np.asarray(s.std)), axis=1)
        mean = np.asarray(s.mean)
        kappa = np.asarray(s.kappa)
        # exp(k cos - k) / (2 pi I0(k) e^-k): stable for large kappa
        return np.prod(np.exp(kappa * (np.cos(theta - mean) - 1.0)) / (TWO_PI * i0e(kappa)), axis=1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` i.i.d. points in [0, 2 pi)^d."""
        s = self.spec
        if s.kind == "uniform":
            return rng.uniform(0.0, TWO_PI, size=(n, self.d))
        if s.kind == "box":
            lower, upper = np.asarray(s.lower), np.asarray(s.upper)
            return np.mod(rng.uniform(lower, upper, size=(n, self.d)), TWO_PI)
        if s.kind == "normal":
            return np.mod(rng.normal(s.mean, s.std, size=(n, self.d)), TWO_PI)
        return np.mod(rng.vonmises(s.mean, s.kappa, size=(n, self.d)), TWO_PI)

    def characteristic_function(self, m) -> np.ndarray:
        """:math:`E_{\\rho_0}[e^{i m\\cdot\\theta}]` for integer frequencies ``m`` (..., d), exact: (...,) complex."""
        return characteristic_function(self.spec, m)

    def length_scale(self) -> float:
        """Smallest length on which the density varies (inf for the piecewise-constant kinds)."""
        s = self.spec
        if s.kind == "normal":
            return float(min(1.0, min(s.std)))
        if s.kind == "vonmises":
            return float(min(1.0, 1.0 / np.sqrt(max(max(s.kappa), 1e-300))))
        return np.inf

    def projection_points(self, edge: float, degree: int) -> float:
        """Quadrature points per cell of :meth:`cell_quadrature` on cells of edge ``edge`` (a float:
        inf when rho_0 is too narrow to count, e.g. std = 1e-320)."""
        scale = self.length_scale()
        if not np.isfinite(scale):  # uniform, box: the cells' own rules
            return 1.0
        with np.errstate(all="ignore"):
            r = edge / (2.0 * scale)
        if not np.isfinite(r) or r > 1e15:
            return np.inf
        m, n = smooth_rule_size(edge, scale, degree)
        return float(m * n) ** self.d

    def cell_quadrature(self, cell_type: str, vertices: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
        """Rule for ``rho0 dtheta`` on each affine cell, in reference coordinates.

        ``vertices`` (C, nv, d) in DOLFINx order (unwrapped, any position: rho0 is periodic).
        Returns ``ref_points`` (C, Q, d) and ``weights`` (C, Q) (zero-padded) with
        ``sum_j weights[c, j] q(ref_points[c, j]) = int_{cell c} rho0 q(xi(theta)) dtheta``
        for ``q`` of total (simplices) or per-coordinate (boxes) degree <= ``degree``.
        """
        vertices = np.asarray(vertices, dtype=np.float64)
        v0, J = cutcell.affine_map(cell_type, vertices)
        detJ = np.abs(np.linalg.det(J))
        kind = self.spec.kind
        if kind == "box":
            return self._box_quadrature(cell_type, vertices, v0, J, detJ, degree)
        if kind == "uniform":
            p, w = cutcell.reference_rule(cell_type, degree)
        else:
            edge = np.max(np.linalg.norm(J, axis=1), initial=0.0)  # longest reference-axis edge
            p, w = cutcell.composite_rule(cell_type, *smooth_rule_size(edge, self.length_scale(), degree))
        C = len(vertices)
        pts = np.broadcast_to(p, (C,) + p.shape).copy()
        theta = v0[:, None, :] + p @ np.transpose(J, (0, 2, 1))
        rho = self(theta.reshape(-1, self.d)).reshape(C, len(w))
        return pts, detJ[:, None] * w[None, :] * rho

    def _box_quadrature(self, cell_type, vertices, v0, J, detJ, degree):
        lower, upper = np.asarray(self.spec.lower), np.asarray(self.spec.upper)
        value = 1.0 / np.prod(upper - lower)
        cmin, cmax = vertices.min(axis=1), vertices.max(axis=1)  # (C, d)
        # images lower + 2 pi k of the box that overlap the cell's range on each axis: k in (k_lo, k_hi)
        k_lo = (cmin - upper) / TWO_PI
        k_hi = (cmax - lower) / TWO_PI
        first = np.floor(k_lo).astype(np.int64) + 1
        last = np.ceil(k_hi).astype(np.int64) - 1
        k_in = np.ceil((cmax - upper) / TWO_PI)  # the one image that may contain the range
        inside = np.all(k_in <= (cmin - lower) / TWO_PI, axis=1)
        outside = np.any(last < first, axis=1)
        p, w = cutcell.reference_rule(cell_type, degree)
        rules = {}
        for c in np.flatnonzero(~inside & ~outside):
            shifts = itertools.product(*[range(first[c, a], last[c, a] + 1) for a in range(self.d)])
            boxes = [(lower + TWO_PI * np.array(k), upper + TWO_PI * np.array(k)) for k in shifts]
            rules[c] = cutcell.cut_cell_rule(cell_type, v0[c], J[c], boxes, degree)
        Q = max([len(w)] + [len(r[1]) for r in rules.values()])
        C = len(vertices)
        pts = np.zeros((C, Q, self.d))
        wts = np.zeros((C, Q))
        pts[inside, : len(w)] = p
        wts[inside, : len(w)] = detJ[inside, None] * w[None, :] * value
        for c, (pc, wc) in rules.items():
            pts[c, : len(wc)] = pc
            wts[c, : len(wc)] = wc * value
        return pts, wts


def characteristic_function(spec: InitSpec, m) -> np.ndarray:
    r"""Fourier moments :math:`E_{\rho_0}[e^{i m\cdot\theta}]` of ``rho_0`` at integer ``m`` (..., d), in closed form.

    Per coordinate: uniform :math:`\delta_{m0}`; von Mises :math:`I_m(\kappa)/I_0(\kappa)\,e^{i m\mu}`;
    box :math:`(e^{i m u} - e^{i m l}) / (i m (u - l))` (1 at m = 0); wrapped normal
    :math:`e^{i m \mu - m^2\sigma^2/2}`.  The product over coordinates.
    """
    m = np.asarray(m)
    if spec.kind == "uniform":
        return np.all(m == 0, axis=-1).astype(complex)
    if spec.kind == "vonmises":
        kappa, mean = np.asarray(spec.kappa, float), np.asarray(spec.mean, float)
        ratio = ive(np.abs(m), kappa) / ive(0, kappa)  # I_m / I_0, scaled alike (stable for large kappa)
        return np.prod(ratio * np.exp(1j * m * mean), axis=-1)
    if spec.kind == "box":
        lo, up = np.asarray(spec.lower, float), np.asarray(spec.upper, float)
        safe = np.where(m == 0, 1, m)
        factor = np.where(m == 0, 1.0 + 0j, (np.exp(1j * safe * up) - np.exp(1j * safe * lo)) / (1j * safe * (up - lo)))
        return np.prod(factor, axis=-1)
    if spec.kind == "normal":
        mean, std = np.asarray(spec.mean, float), np.asarray(spec.std, float)
        return np.prod(np.exp(1j * m * mean - 0.5 * (m * std) ** 2), axis=-1)
    raise ValueError(f"unknown initial density kind {spec.kind!r}")  # pragma: no cover (the case refuses it)


def initial_density(case) -> InitialDensity:
    return InitialDensity(case.d, case.init)
