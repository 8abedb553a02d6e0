"""Figures and the study report, on small synthetic result files built with h5py
in the layout of DESIGN section 7 (no solver run needed)."""

from __future__ import annotations

import itertools
import json

import h5py
import numpy as np
import pytest

from mfpde.errors import ResultFileError
from mfpde.report.figures import DensityView, plot_file
from mfpde.report.study import write_report
from mfpde.io.results import PDEResult, StudyResult

TWO_PI = 2 * np.pi
CASE = """name = "synthetic"
[expert]
kind = "cosine"
[dynamics]
t_end = 2.0
lr = 1.0
tau = 0.0
[particles]
dt = 0.01
integrator = "rk4"
"""
METRICS = ("observable_error", "risk_error", "moment_error", "sobolev", "wasserstein")


# ------------------------------------------------------------------ meshes

def torus_cells(d: int, n: int, cell: str) -> np.ndarray:
    """(C, nv, d) unwrapped vertices of a periodic mesh of [0, 2 pi)^d."""
    h = TWO_PI / n
    cells = []
    for idx in itertools.product(range(n), repeat=d):
        o = np.array(idx, dtype=float) * h
        if d == 1:
            cells.append([o, o + h])
        elif cell == "triangle":
            a, b, c, e = o, o + [h, 0], o + [h, h], o + [0, h]
            cells += [[a, b, c], [a, c, e]]
        elif cell == "quadrilateral":  # lexicographic, axis 0 fastest
            cells.append([o, o + [h, 0], o + [0, h], o + [h, h]])
        elif cell == "tetrahedron":  # Kuhn: 6 tetrahedra per cube
            for perm in itertools.permutations(range(3)):
                v, path = o.copy(), [o.copy()]
                for axis in perm:
                    v = v.copy()
                    v[axis] += h
                    path.append(v)
                cells.append(path)
        else:
            raise ValueError(cell)
    return np.array(cells, dtype=float)


def rho_exact(theta: np.ndarray, t: float) -> np.ndarray:
    d = theta.shape[-1]
    bump = np.mean(np.cos(theta - 0.8 * t * np.arange(1, d + 1)), axis=-1)
    return (1 + 0.6 * bump) / TWO_PI**d


def p1_values(X: np.ndarray, t: float) -> np.ndarray:
    """P1 nodal values: the vertices are the nodes (simplices and lexicographic boxes)."""
    return rho_exact(X, t)


# ------------------------------------------------------------- file builders

def _common(f, kind: str, d: int, T: int, K: int = 6, complete: bool = True):
    f.attrs.update(kind=kind, case_name="synthetic", d=d, complete=complete)
    f["case"] = CASE
    f["data/x"] = np.linspace(-1, 1, K)[:, None]
    f["data/y"] = np.sin(np.linspace(-1, 1, K))
    f["data/w"] = np.full(K, 1 / K)
    t = np.linspace(0, 2.0, T)
    o = f.create_group("observables")
    o["t"] = t
    o["F"] = np.outer(np.exp(-t), np.ones(K))
    o["risk"] = 0.3 * np.exp(-1.5 * t) + 1e-4
    freqs = np.array([[1] + [0] * (d - 1), [0] * (d - 1) + [1]]) if d > 1 else np.array([[1], [2]])
    o["moment_freqs"] = freqs
    o["moments"] = np.outer(np.exp(-t), [0.1 + 0.05j, 0.02 - 0.01j])
    p = f.create_group("provenance")
    p["versions"] = json.dumps({"mfpde": "0.1.0", "numpy": np.__version__})
    p["mpi_size"] = 2
    p["git_revision"] = "abc1234"
    p["wall_time_s"] = 12.5
    p["written"] = "2026-01-01T00:00:00"
    return t


def _pde_part(f, d: int, n: int, cell: str, t):
    X = torus_cells(d, n, cell)
    f["observables/mass"] = 1.0 + 1e-14 * np.arange(len(t))
    f["observables/min_rho"] = 0.4 / TWO_PI**d * np.ones(len(t))
    g = f.create_group("pde")
    g["mesh/vertices"] = X
    g["mesh/period"] = TWO_PI
    g["density"] = np.array([p1_values(X, tt) for tt in t])
    g["cell_type"] = cell
    g["degree"] = 1
    g["n"] = n
    g["steps"] = 100


def make_pde(path, d=2, n=4, cell="triangle", T=5):
    with h5py.File(path, "w") as f:
        t = _common(f, "pde", d, T)
        _pde_part(f, d, n, cell, t)
    return path


def make_particles(path, d=2, N=200, T=5, seed=3):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        t = _common(f, "particles", d, T)
        theta0 = rng.uniform(0, TWO_PI, (N, d))
        f["particles/theta"] = np.array([theta0 + 0.3 * tt * np.sin(theta0) for tt in t])
        f["particles/N"] = N
        f["particles/seed"] = seed
    return path


SLOPES = {"observable_error": -0.512, "risk_error": -0.4871, "moment_error": -0.5034,
          "sobolev": -0.4962, "wasserstein": -0.3577}


def make_study(path, d=2, n=4, cell="triangle", T=5, Ns=(16, 64, 256), S=3):
    rng = np.random.default_rng(0)
    Ns = np.array(Ns)
    with h5py.File(path, "w") as f:
        t = _common(f, "study", d, T)
        _pde_part(f, d, n, cell, t)
        f["study/N"] = Ns
        f["study/seeds"] = np.arange(S)
        f["study/t"] = t
        shape = (len(Ns), S, T)
        for m in METRICS:
            values = Ns[:, None, None] ** SLOPES[m] * rng.uniform(0.7, 1.3, shape) * (1 + 0.2 * t)
            if m == "wasserstein":  # as `mfpde study` does by default: only at t = 0 and t_end
                values[:, :, 1:-1] = np.nan
            f[f"study/metrics/{m}"] = values
            for group, shift in (("fit", 0.0), ("fit_t_end", 0.011)):
                g = f.create_group(f"study/{group}/{m}")
                g["slope"] = SLOPES[m] + shift
                g["ci"] = np.array([SLOPES[m] + shift - 0.06, SLOPES[m] + shift + 0.05])
                g["intercept"] = 0.3
                g["theory_slope"] = -0.5
                g["theory"] = "(log N / N)^1/2" if m == "wasserstein" else "N^-1/2"
        f["study/particles_risk"] = (np.exp(-1.5 * t)[None, None, :] * 0.3
                                     + 1.0 / Ns[:, None, None] * rng.uniform(0.5, 1.5, shape))
        th0 = rng.uniform(0, TWO_PI, (64, d))
        f["study/example/theta"] = np.array([th0 + 0.2 * tt for tt in t])
        f["study/example/N"] = 64
        f["study/example/seed"] = 1
    return path


def make_compare(path, P=3, T=6):
    with h5py.File(path, "w") as f:
        t = _common(f, "compare", 2, T)
        f["compare/t"] = t
        for k, m in enumerate(METRICS):
            f[f"compare/metrics/{m}"] = np.array([(0.1 + 0.01 * k) * (1 + t) / np.sqrt(2.0**p) for p in range(P)])
        f["compare/N"] = 2 ** (6 + np.arange(P))
        f["compare/seed"] = np.arange(P)
    return path


# ------------------------------------------------------------------- checks

def assert_png(path, min_px=200):
    import matplotlib.image as mpimg

    assert path.exists() and path.suffix == ".png", path
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n", path
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4), img.shape
    assert min(img.shape[:2]) >= min_px and max(img.shape[:2]) < 5000, img.shape
    assert float(img[..., :3].std()) > 0.01, f"{path} looks blank"


@pytest.mark.parametrize("d,cell,n", [(1, "interval", 8), (2, "triangle", 4), (2, "quadrilateral", 4),
                                      (3, "tetrahedron", 2)])
def test_pde_figures(tmp_path, d, cell, n):
    path = make_pde(tmp_path / "run.pde.h5", d=d, n=n, cell=cell)
    figs = plot_file(path)
    names = sorted(p.name for p in figs)
    assert names == ["run.pde.conservation.png", "run.pde.density.png", "run.pde.risk.png"]
    for p in figs:
        assert p.parent == tmp_path
        assert_png(p)


def test_density_evaluation_matches_p1(tmp_path):
    """The grid in the density figure is the P1 field itself (exact at vertices, linear inside)."""
    path = make_pde(tmp_path / "r.h5", d=2, n=4)
    view = DensityView(PDEResult.from_file(path).cellwise(2), n=8)
    assert view.exact  # the file has no reference_points: the reader supplies Basix's P1 nodes
    # compare with the P1 interpolant evaluated by hand at the grid points
    h = TWO_PI / 4
    a, b = np.meshgrid(view.axis, view.axis, indexing="xy")
    pts = np.stack([a.ravel(), b.ravel()], 1)
    i, j = np.floor(pts[:, 0] / h), np.floor(pts[:, 1] / h)
    u, v = pts[:, 0] / h - i, pts[:, 1] / h - j
    o = np.stack([i, j], 1) * h
    lower = u >= v  # in triangle (o, o+h e1, o+h(e1+e2)), else in (o, o+h(e1+e2), o+h e2)
    c0, c1, c2 = o, o + [h, 0], o + [h, h]
    e = o + [0, h]
    r = lambda x: rho_exact(x, 1.0)  # noqa: E731  (t[2] of linspace(0, 2, 5))
    lo = r(c0) * (1 - u) + r(c1) * (u - v) + r(c2) * v
    up = r(c0) * (1 - v) + r(c2) * u + r(e) * (v - u)
    np.testing.assert_allclose(view.grid.ravel(), np.where(lower, lo, up), rtol=1e-10)


def test_density_fallback_cell_averages(tmp_path, monkeypatch):
    """Without reference points (and no Basix) the figure falls back to cell averages."""
    import mfpde.io.results as results

    monkeypatch.setattr(results, "lagrange_nodes", lambda *a: None)
    path = make_pde(tmp_path / "r.pde.h5", d=2, n=4)
    view = DensityView(PDEResult.from_file(path).cellwise(0))
    assert not view.exact and view.grid is None and len(view.polys) == 32
    for p in plot_file(path):
        assert_png(p)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_particle_figures(tmp_path, d):
    path = make_particles(tmp_path / "p.h5", d=d)
    figs = plot_file(path, out_dir=tmp_path / "figs")
    assert sorted(p.name for p in figs) == ["p.positions.png", "p.risk.png"]
    for p in figs:
        assert p.parent == tmp_path / "figs"
        assert_png(p)


def test_compare_figure(tmp_path):
    figs = plot_file(make_compare(tmp_path / "c.compare.h5"))
    assert [p.name for p in figs] == ["c.compare.metrics.png"]
    assert_png(figs[0])


def test_study_figures_and_report(tmp_path):
    path = make_study(tmp_path / "s.study.h5", d=2, n=4, cell="triangle")
    figs = plot_file(path, out_dir=tmp_path / "figures")
    assert [p.name for p in figs] == [f"s.study.{k}.png" for k in (
        "density", "risk", "error_vs_n", "error_vs_n_t_end", "error_vs_t", "conservation")]
    for p in figs:
        assert_png(p)
    report = write_report(path, figs, tmp_path / "report.md")
    text = report.read_text()
    assert text.startswith("# mfpde study: synthetic")
    for m, s in SLOPES.items():
        assert f"{s:.3f}" in text, m                          # sup_t slope
        assert f"{s + 0.011:.3f}" in text, m                  # t_end slope
        assert f"[{s - 0.06:.3f}, {s + 0.05:.3f}]" in text, m  # CI
    assert "(log N / N)^1/2" in text
    assert "16, 64, 256" in text and "3 seeds" in text and "t_end = 2" in text and "32 triangle cells" in text
    for p in figs:
        assert f"](figures/{p.name})" in text
    # within 0.1 of theory: wasserstein (-0.358) is not, the others are
    rows = {line.split("|")[1].strip().split(" ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert rows["wasserstein"].split("|")[6].strip() == "no"
    assert rows["observable_error"].split("|")[6].strip() == "yes"
    assert "abc1234" in text and "MPI size: 2" in text and "12.5 s" in text and "numpy" in text


def test_study_d1_density_with_particles(tmp_path):
    """d = 1: PDE curve over the histogram of the example particles; report beside the figures."""
    from mfpde.report.figures import plot_study_density

    path = make_study(tmp_path / "s1.study.h5", d=1, n=8, cell="interval")
    fig = plot_study_density(StudyResult.from_file(path), tmp_path / "s1.density.png")
    assert_png(fig)
    text = write_report(path, [fig], tmp_path / "out" / "report.md").read_text()
    assert "](../s1.density.png)" in text and "T^1" in text


def test_unknown_kind(tmp_path):
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = "banana"
    with pytest.raises(ResultFileError, match="kind 'banana'.*pde, particles, study, compare"):
        plot_file(path)
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(ResultFileError, match="no root attribute 'kind'"):
        plot_file(path)
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ResultFileError, match="not a readable HDF5"):
        plot_file(tmp_path / "junk.h5")
    with pytest.raises(ResultFileError, match="no such file"):
        plot_file(tmp_path / "missing.h5")


def test_report_refuses_non_study(tmp_path):
    with pytest.raises(ResultFileError, match="needs a study file"):
        write_report(make_pde(tmp_path / "r.h5"), [], tmp_path / "r.md")
