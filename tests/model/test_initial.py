"""Initial densities: [init] refusals, exact sampling, and the cell rules for rho0 (mass, moments, exactness)."""

import numpy as np
import pytest
from mpi4py import MPI
from scipy import stats
from scipy import integrate

from mfpde.numerics import cutcell
from mfpde.config.case import InitSpec
from mfpde.errors import CaseError
from mfpde.model.initial import InitialDensity, characteristic_function
from mfpde.pde.torus import torus_mesh

TWO_PI = 2 * np.pi

# ---------------------------------------------------------------- [init] keys

BAD_INIT = [
    ("init.upper[1]", {"kind": "box", "lower": [0.0, 0.5], "upper": [1.0, 0.5]}, "must be > lower"),
    ("init.upper[0]", {"kind": "box", "lower": [-1.0, 0.0], "upper": [-2.0, 1.0]}, "must be > lower"),
    ("init.upper[0]", {"kind": "box", "lower": [-3.5, 0.0], "upper": [3.0, 1.0]}, "<= 2 pi"),
    ("init.lower", {"kind": "box", "lower": [0.0], "upper": [1.0, 1.0]}, "needs 2 entries"),
    ("init.upper", {"kind": "box", "lower": [0.0, 0.0]}, "missing"),
    ("init.lower[1]", {"kind": "box", "lower": [0.0, "a"], "upper": [1.0, 1.0]}, "must be a number"),
    ("init.std[0]", {"kind": "normal", "std": [0.0, 1.0]}, "must be > 0"),
    ("init.std[1]", {"kind": "normal", "std": [1.0, -0.1]}, "must be > 0"),
    ("init.std", {"kind": "normal", "std": [1.0, 1.0, 1.0]}, "needs 2 entries"),
    ("init.std", {"kind": "normal", "mean": [0.0, 0.0]}, "missing"),
    ("init.mean", {"kind": "normal", "mean": [0.0], "std": 0.5}, "needs 2 entries"),
    ("init.kappa", {"kind": "box", "lower": [0, 0], "upper": [1, 1], "kappa": 1.0}, "only used with kind = 'vonmises'"),
    ("init.lower", {"kind": "normal", "std": 1.0, "lower": [0, 0]}, "only used with kind = 'box'"),
    ("init.std", {"kind": "uniform", "std": 1.0}, "only used with kind = 'normal'"),
    ("init.mean", {"kind": "box", "lower": [0, 0], "upper": [1, 1], "mean": 0.0},
     "only used with kind = 'vonmises' or 'normal'"),
    ("init.std", {"kind": "vonmises", "std": 1.0}, "not 'vonmises'"),
    ("init.width", {"kind": "box", "width": 1.0}, "unknown key"),
]


@pytest.mark.parametrize("key, table, problem", BAD_INIT, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_INIT)])
def test_bad_init_is_refused_in_one_line_naming_the_key(key, table, problem):
    with pytest.raises(CaseError) as e:
        InitSpec.parse(table, 2)
    assert e.value.key == key and problem in e.value.problem
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{key}: ")


def test_good_init_specs_and_scalar_broadcast():
    s = InitSpec.parse({"kind": "box", "lower": [-0.6, 5.0], "upper": [0.6, 5.0 + TWO_PI]}, 2)
    assert s.lower == [-0.6, 5.0] and s.upper[1] == 5.0 + TWO_PI and s.mean is None
    s = InitSpec.parse({"kind": "normal", "std": 0.3}, 3)
    assert s.std == [0.3] * 3 and s.mean == [0.0] * 3 and s.kappa is None
    assert InitSpec.parse({}, 2).kind == "uniform"


# ---------------------------------------------------------------- sampling

N_SAMPLES = 200_000


def _moment_check(x, freqs, exact):
    """Empirical E exp(i w.theta) against the closed form within 5 standard errors."""
    for f, m in zip(freqs, exact):
        z = np.exp(1j * x @ np.asarray(f, float))
        se = np.sqrt(np.var(z.real) + np.var(z.imag)) / np.sqrt(len(x))
        assert abs(z.mean() - m) < 5 * se + 1e-12, (f, z.mean(), m, se)


def closed_moment(spec: InitSpec, w) -> complex:
    """int exp(i w.theta) rho0(theta) dtheta in closed form (checked against quadrature below)."""
    return complex(characteristic_function(spec, np.asarray(w)))


@pytest.mark.parametrize("spec", [InitSpec("uniform"),
                                  InitSpec("vonmises", mean=[0.3, -2.0], kappa=[4.0, 0.5]),
                                  InitSpec("box", lower=[-0.6, 4.0], upper=[0.6, 6.5]),
                                  InitSpec("normal", mean=[0.3, 6.0], std=[0.2, 1.5])])
def test_closed_form_moments_against_adaptive_quadrature(spec):
    """The closed forms against scipy's adaptive quadrature of the density itself, per coordinate."""
    rho = InitialDensity(2, spec)
    for w in [(0, 0), (1, 0), (0, 2), (3, -1), (-2, 5)]:
        numeric = 1.0 + 0j
        for a in range(2):
            def dens(t, a=a):
                th = np.zeros((1, 2))
                th[0, a] = t
                other = InitialDensity(1, _coordinate(spec, 1 - a))
                # rho is a product: divide out the other coordinate at 0 to get this coordinate's factor
                return rho(th)[0] / other(np.zeros((1, 1)))[0]
            brk = [] if spec.kind != "box" else sorted({np.mod(spec.lower[a], 2 * np.pi), np.mod(spec.upper[a], 2 * np.pi)})
            re = integrate.quad(lambda t: dens(t) * np.cos(w[a] * t), 0, 2 * np.pi, points=brk or None, limit=200, epsabs=1e-13)[0]
            im = integrate.quad(lambda t: dens(t) * np.sin(w[a] * t), 0, 2 * np.pi, points=brk or None, limit=200, epsabs=1e-13)[0]
            numeric *= re + 1j * im
        assert abs(closed_moment(spec, w) - numeric) < 1e-10, (spec.kind, w)


def _coordinate(spec: InitSpec, a: int) -> InitSpec:
    """The 1-d factor of a product density (coordinate a)."""
    pick = {k: [getattr(spec, k)[a]] for k in ("mean", "kappa", "lower", "upper", "std") if getattr(spec, k, None) is not None}
    return InitSpec(spec.kind, **pick)


FREQS2 = [(1, 0), (0, 1), (2, -1), (-1, -3), (3, 2)]


def test_box_sampling_is_uniform_on_the_wrapped_box():
    spec = InitSpec("box", lower=[-0.6, 4.0], upper=[0.6, 6.5])
    x = InitialDensity(2, spec).sample(N_SAMPLES, np.random.default_rng(1))
    assert x.min() >= 0 and x.max() < TWO_PI
    for a in range(2):  # (theta - lower) mod 2 pi is uniform on [0, width]
        width = spec.upper[a] - spec.lower[a]
        u = np.mod(x[:, a] - spec.lower[a], TWO_PI)
        assert u.max() <= width
        assert stats.kstest(u, stats.uniform(0, width).cdf).pvalue > 1e-3
    assert stats.pearsonr(x[:, 0], x[:, 1]).pvalue > 1e-3  # independent coordinates
    _moment_check(x, FREQS2, [closed_moment(spec, f) for f in FREQS2])


def test_normal_sampling_is_the_wrapped_normal():
    spec = InitSpec("normal", mean=[0.3, 6.0], std=[0.4, 2.5])
    x = InitialDensity(2, spec).sample(N_SAMPLES, np.random.default_rng(2))
    assert x.min() >= 0 and x.max() < TWO_PI
    # std 0.4: wrapping moves a mass of 1e-14, so the centred angle is N(0, 0.4^2)
    z = np.mod(x[:, 0] - 0.3 + np.pi, TWO_PI) - np.pi
    assert stats.kstest(z, stats.norm(0, 0.4).cdf).pvalue > 1e-3
    # std 2.5 wraps a lot: the density of the samples is the wrapped normal (Fourier moments)
    _moment_check(x, FREQS2, [closed_moment(spec, f) for f in FREQS2])


def test_density_values():
    box = InitialDensity(2, InitSpec("box", lower=[-0.6, 1.0], upper=[0.6, 2.0]))
    pts = np.array([[0.1, 1.5], [TWO_PI - 0.1, 1.5], [0.7, 1.5], [0.1, 2.1]])
    assert np.array_equal(box(pts), np.array([1, 1, 0, 0]) / 1.2)
    normal = InitialDensity(1, InitSpec("normal", mean=[1.0], std=[0.5]))
    t = np.array([[1.0], [1.0 + TWO_PI], [2.0]])
    ref = stats.norm(1.0, 0.5).pdf(np.array([1.0, 1.0, 2.0]))
    assert np.allclose(normal(t), ref, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- cell rules

def mesh_cells(d, n, cell):
    """Cell type and vertex coordinates (C, nv, d) of a torus mesh, in DOLFINx order."""
    m = torus_mesh(MPI.COMM_SELF, d, n, cell)
    g = m.mesh.geometry
    return m.cell_type, g.x[:, :d][g.dofmaps[0]]


def physical_points(cell_type, vertices, ref):
    v0, J = cutcell.affine_map(cell_type, vertices)
    return v0[:, None, :] + np.einsum("cij,cqj->cqi", J, ref)


SPECS = {
    1: [InitSpec("box", lower=[-0.6], upper=[0.6]), InitSpec("box", lower=[1.0], upper=[1.0 + TWO_PI]),
        InitSpec("normal", mean=[0.3], std=[0.05]), InitSpec("vonmises", mean=[2.0], kappa=[50.0]),
        InitSpec("uniform")],
    2: [InitSpec("box", lower=[-0.6, -0.6], upper=[0.6, 0.6]), InitSpec("box", lower=[2.9, -3.0], upper=[3.3, 3.1]),
        InitSpec("normal", mean=[0.3, -1.0], std=[0.2, 1.5]), InitSpec("vonmises", mean=[0.3, 3.0], kappa=[20.0, 0.5]),
        InitSpec("uniform")],
    3: [InitSpec("box", lower=[-0.6, 0.3, -3.0], upper=[0.6, 2.1, 2.5]),
        InitSpec("normal", mean=[0.3, -1.0, 2.0], std=[0.8, 1.0, 1.5]),
        InitSpec("vonmises", mean=[0.3, -1.0, 2.0], kappa=[3.0, 1.0, 0.0]), InitSpec("uniform")],
}
MESH_N = {1: 9, 2: 7, 3: 4}
FREQS = {1: [(0,), (1,), (-2,), (3,)], 2: [(0, 0), (1, 0), (0, -1), (2, -1), (-1, -3)],
         3: [(0, 0, 0), (1, 0, 0), (0, 1, -1), (2, -1, 1)]}
CASES = [(d, cell, s) for d in (1, 2, 3) for cell in ("simplex", "box") if d > 1 or cell == "simplex"
         for s in SPECS[d]]


@pytest.mark.parametrize("d, cell, spec", CASES,
                         ids=[f"{d}d-{c}-{s.kind}{i}" for i, (d, c, s) in enumerate(CASES)])
def test_cell_rule_mass_and_fourier_moments(d, cell, spec):
    """Mass 1 and low Fourier moments equal their closed forms (exp(i w.theta) on cells of size
    2pi/7 is integrated to round-off by the rule of degree 14 on every piece)."""
    cell_type, vertices = mesh_cells(d, MESH_N[d], cell)
    ref, w = InitialDensity(d, spec).cell_quadrature(cell_type, vertices, 14)
    assert ref.shape[:2] == w.shape and ref.shape[2] == d and w.shape[0] == len(vertices)
    assert np.all(w >= 0)
    assert abs(w.sum() - 1.0) < 1e-13
    theta = physical_points(cell_type, vertices, ref)
    for f in FREQS[d]:
        moment = np.sum(w * np.exp(1j * theta @ np.asarray(f, float)))
        assert abs(moment - closed_moment(spec, f)) < 1e-13, f


def shoelace_area(poly) -> float:
    """Signed area of a polygon (positive counter-clockwise)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def clip_polygon(poly, axis, bound, keep_below):
    """Sutherland-Hodgman clip of a polygon by x_axis <= bound (or >=)."""
    out = []
    for p, q in zip(poly, np.roll(poly, -1, axis=0)):
        fp = (p[axis] - bound) * (1 if keep_below else -1)
        fq = (q[axis] - bound) * (1 if keep_below else -1)
        if fp <= 0:
            out.append(p)
        if fp * fq < 0:
            out.append(p + fp / (fp - fq) * (q - p))
    return np.array(out)


@pytest.mark.parametrize("cell_type, vertices", [
    ("triangle", [[0.2, 0.1], [1.3, 0.4], [0.5, 1.2]]),
    ("quadrilateral", [[0.0, 0.0], [1.1, 0.0], [0.0, 0.9], [1.1, 0.9]]),
    ("quadrilateral", [[0.0, 0.1], [1.1, 0.3], [0.4, 0.9], [1.5, 1.1]]),  # a parallelogram: Kuhn split
])
def test_box_rule_is_exact_for_polynomials_on_cut_cells(cell_type, vertices):
    """A random polynomial of the rule's degree in reference coordinates, integrated over a cell cut by
    the box [0.45, 0.8] x [0.3, 2.0] (given as its image shifted by 2 pi), against Green's theorem
    (int q = oint Q dy, dQ/dx = q, Gauss rules exact for the polynomial) on the Sutherland-Hodgman clip
    of the cell polygon: an independent construction of the cut."""
    V = np.array(vertices, dtype=float)
    lo, up = np.array([0.45, 0.3]), np.array([0.8, 2.0])
    rho = InitialDensity(2, InitSpec("box", lower=list(lo + TWO_PI), upper=list(up + TWO_PI)))
    v0, J = cutcell.affine_map(cell_type, V[None])
    Jinv = np.linalg.inv(J[0])
    order = [0, 1, 2] if cell_type == "triangle" else [0, 1, 3, 2]
    poly = V[order]
    if shoelace_area(poly) < 0:
        poly = poly[::-1]
    for axis in range(2):
        poly = clip_polygon(poly, axis, up[axis], True)
        poly = clip_polygon(poly, axis, lo[axis], False)
    rng = np.random.default_rng(3)
    for degree in (1, 2, 4, 5):
        ref, w = rho.cell_quadrature(cell_type, V[None], degree)
        powers = [(i, j) for i in range(degree + 1) for j in range(degree + 1)
                  if (i + j <= degree if cell_type == "triangle" else True)]
        coef = rng.normal(size=len(powers))
        got = sum(c * np.sum(w[0] * ref[0, :, 0] ** i * ref[0, :, 1] ** j) for c, (i, j) in zip(coef, powers))
        # the same polynomial in physical coordinates: xi = Jinv (theta - v0), expanded by Green on edges
        x, gw = np.polynomial.legendre.leggauss(degree + 2)

        def q_of_theta(th):
            xi = (th - v0[0]) @ Jinv.T
            return sum(c * xi[..., 0] ** i * xi[..., 1] ** j for c, (i, j) in zip(coef, powers))

        # Green: int q = oint Q dy with dQ/dx = q; Q(x, y) = int_{x0}^{x} q(s, y) ds by Gauss in s
        exact = 0.0
        t, tw = 0.5 * (x + 1), 0.5 * gw
        x0 = poly[:, 0].min()
        for p, q in zip(poly, np.roll(poly, -1, axis=0)):
            pts = p + t[:, None] * (q - p)  # (n, 2) on the edge
            s = x0 + t[None, :] * (pts[:, :1] - x0)  # (n, n) abscissae from x0 to x
            inner = np.sum(tw[None, :] * q_of_theta(np.stack([s, np.repeat(pts[:, 1:], len(t), 1)], -1)), axis=1)
            exact += np.sum(tw * inner * (pts[:, 0] - x0)) * (q[1] - p[1])
        assert abs(got - exact / 0.35 / 1.7) < 1e-14 * max(1.0, abs(got)), degree
        assert abs(shoelace_area(poly) - np.sum(w) * 0.35 * 1.7) < 1e-15


def test_smooth_rule_is_exact_for_polynomials_against_a_finer_rule():
    """Normal and von Mises: a random polynomial of degree 6 in reference coordinates, the rule against
    the same rule built on 4^d times more sub-cells: agreement to 1e-14 of the mass."""
    from mfpde.model import initial

    for cell_type, V in [("triangle", [[0.2, 0.1], [1.3, 0.4], [0.5, 1.2]]),
                         ("quadrilateral", [[0.0, 0.0], [1.1, 0.0], [0.0, 0.9], [1.1, 0.9]])]:
        V = np.array(V)[None]
        for spec in (InitSpec("normal", mean=[0.6, 0.5], std=[0.08, 0.3]),
                     InitSpec("vonmises", mean=[0.6, 0.5], kappa=[80.0, 5.0])):
            rho = InitialDensity(2, spec)
            rng = np.random.default_rng(4)
            powers = [(i, j) for i in range(7) for j in range(7) if i + j <= 6]
            coef = rng.normal(size=len(powers))

            def integral(ref, w):
                return sum(c * np.sum(w[0] * ref[0, :, 0] ** i * ref[0, :, 1] ** j) for c, (i, j) in zip(coef, powers))

            got = integral(*rho.cell_quadrature(cell_type, V, 6))
            v0, J = cutcell.affine_map(cell_type, V)
            m, n = initial.smooth_rule_size(np.max(np.linalg.norm(J, axis=1)), rho.length_scale(), 6)
            p, w = cutcell.composite_rule(cell_type, 4 * m, n + 4)
            theta = v0[0] + p @ J[0].T
            fine = integral(p[None], (w * abs(np.linalg.det(J[0])) * rho(theta))[None])
            assert abs(got - fine) < 1e-14, (cell_type, spec.kind, got - fine)


def test_cells_may_lie_anywhere_the_density_is_periodic():
    """The same cells shifted by 2 pi in each coordinate get the same rule."""
    cell_type, vertices = mesh_cells(2, 5, "simplex")
    rho = InitialDensity(2, InitSpec("box", lower=[-0.6, -0.6], upper=[0.6, 0.6]))
    r1, w1 = rho.cell_quadrature(cell_type, vertices, 3)
    r2, w2 = rho.cell_quadrature(cell_type, vertices + np.array([TWO_PI, -2 * TWO_PI]), 3)
    assert np.allclose(np.sort(w1, axis=1), np.sort(w2, axis=1), rtol=0, atol=1e-15)
    assert abs(w1.sum() - 1.0) < 1e-14


@pytest.mark.parametrize("spec", SPECS[2], ids=lambda s: s.kind)
def test_a_rank_without_cells_gets_an_empty_rule(spec):
    ref, w = InitialDensity(2, spec).cell_quadrature("triangle", np.empty((0, 3, 2)), 2)
    assert ref.shape[0] == 0 and w.shape[0] == 0 and ref.shape[2] == 2


@pytest.mark.parametrize("d, cell", [(1, "simplex"), (2, "simplex"), (2, "box"), (3, "simplex"), (3, "box")])
def test_reference_points_follow_the_dolfinx_coordinate_map(d, cell):
    """The rule's reference points, pushed forward by DOLFINx's own coordinate map of each cell, are the
    points at which the rule weighs rho0 (the box density is 1/vol inside, so weights > 0 there)."""
    m = torus_mesh(MPI.COMM_SELF, d, 5, cell)
    g = m.mesh.geometry
    X = g.x[:, :d][g.dofmaps[0]]
    rho = InitialDensity(d, InitSpec("box", lower=[-0.6, 0.3, 1.0][:d], upper=[0.6, 2.1, 2.5][:d]))
    ref, w = rho.cell_quadrature(m.cell_type, X, 3)
    ours = physical_points(m.cell_type, X, ref)
    cmap = g.cmaps[0]
    for c in range(0, len(X), 7):
        theirs = cmap.push_forward(ref[c], g.x[g.dofmaps[0][c]][:, :d].copy())
        assert np.allclose(theirs, ours[c], rtol=0, atol=1e-13)
        used = w[c] > 0
        assert np.all(rho(theirs[used]) > 0)
