"""Figures and the study report, on small synthetic result files built with h5py
in the layout of DESIGN section 7 (no solver run needed)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mfpde.cli import main
from mfpde.errors import ResultFileError
from mfpde.report import figures
from mfpde.report.figures import DensityView, plot_file
from mfpde.report.study import write_report
from mfpde.io.results import LimitResult, Observables, PDEResult, RegimesResult, RunInfo, StudyResult

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


def make_study(path, d=2, n=4, cell="triangle", T=5, Ns=(16, 64, 256), S=3, n_example=64, risk_spread=0.5):
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
                                     + 1.0 / Ns[:, None, None] * rng.uniform(1 - risk_spread, 1 + risk_spread, shape))
        th0 = rng.uniform(0, TWO_PI, (n_example, d))
        f["study/example/theta"] = np.array([th0 + 0.2 * tt for tt in t])
        f["study/example/N"] = n_example
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


# ----------------------------------------------- figures read through matplotlib's objects

@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions save, kept open: {file name: matplotlib Figure}."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    kept, real = {}, Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        kept[Path(fname).name] = self
        return real(self, fname, *args, **{**kwargs, "dpi": 50})  # drawn (tick labels resolved), cheaply

    monkeypatch.setattr(Figure, "savefig", savefig)
    monkeypatch.setattr(plt, "close", lambda *a, **k: None)
    yield kept
    monkeypatch.undo()
    plt.close("all")


def legend_texts(ax) -> list[str]:
    leg = ax.get_legend()
    return [] if leg is None else [t.get_text() for t in leg.get_texts()]


def tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


def scatter_counts(ax) -> list[int]:
    from matplotlib.collections import PathCollection

    return [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def band_lower_edges(ax) -> np.ndarray:
    """The smallest y of every filled band (fill_between) and error bar drawn on ``ax``."""
    from matplotlib.collections import FillBetweenPolyCollection, LineCollection, PolyCollection

    low = []
    for c in ax.collections:
        if isinstance(c, (FillBetweenPolyCollection, PolyCollection)):
            for path in c.get_paths():
                y = path.vertices[:, 1]
                low.append(np.nanmin(y[np.isfinite(y)]))
        elif isinstance(c, LineCollection):
            for seg in c.get_segments():
                low.append(np.nanmin(seg[:, 1]))
    return np.array(low)


def test_torus_axes_carry_pi_ticks_and_the_overlay_is_subsampled(tmp_path, drawn):
    """The density with 16384 particles on top: 2000 of them drawn (fixed seed), said in the title; pi ticks."""
    path = make_study(tmp_path / "s.study.h5", d=2, n=4, n_example=16384)
    figures.plot_study_density(StudyResult.from_file(path), tmp_path / "s.density.png")
    fig = drawn["s.density.png"]
    panels = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(panels) == 4
    for ax in panels:
        assert tick_texts(ax.xaxis) == ["0", r"$\pi/2$", r"$\pi$", r"$3\pi/2$", r"$2\pi$"]
        assert scatter_counts(ax) == [figures.OVERLAY_POINTS] == [2000]
    assert tick_texts(panels[0].yaxis)[2] == r"$\pi$"
    assert "2000 of 16384 shown" in fig._suptitle.get_text()
    pts, text = figures.subsample(np.arange(16384.0)[:, None])
    again, _ = figures.subsample(np.arange(16384.0)[:, None])
    assert text == "2000 of 16384 shown" and len(np.unique(pts)) == 2000
    np.testing.assert_array_equal(pts, again)  # fixed seed: the same subset every time
    assert figures.subsample(np.zeros((500, 2)))[1] == "N = 500"


def test_study_figures_show_the_same_n_and_keep_bands_positive_on_log_axes(tmp_path, drawn):
    """7 N in the study: the risk, error-vs-t and CLT figures draw the same 5; CI bands whose lower edge
    reaches 0 (3 seeds, a wide spread) are clipped to a positive floor and the figure says so."""
    from types import SimpleNamespace

    from mfpde.report.clt import clt_figure

    Ns = (16, 32, 64, 128, 256, 512, 1024)
    path = make_study(tmp_path / "s.study.h5", Ns=Ns, risk_spread=0.99)
    res = StudyResult.from_file(path)
    # a negative lower limit must really happen for the test to mean something
    from mfpde.analysis.rates import mean_ci

    assert np.any(mean_ci(np.moveaxis(res.particles_risk[0], 0, -1))[1] < 0)
    for name, plot in (("risk", figures.plot_study_risk), ("error_vs_t", figures.plot_study_error_vs_t),
                       ("error_vs_n", figures.plot_error_vs_n)):
        plot(res, tmp_path / f"s.study.{name}.png")
    shown = [f"N = {Ns[j]}" for j in figures.shown_n(Ns)]
    assert len(shown) == figures.SHOWN_N == 5 and shown[0] == "N = 16" and shown[-1] == "N = 1024"
    risk_ax = drawn["s.study.risk.png"].axes[0]
    assert [t.replace("particles ", "") for t in legend_texts(risk_ax) if t.startswith("particles")] == shown
    evt = drawn["s.study.error_vs_t.png"]
    shared = [t for ax in evt.axes for t in legend_texts(ax)]
    assert shared == shown
    # the CLT panel draws the same N
    K, T, S = 6, len(res.t), 3
    fake = SimpleNamespace(N=np.array(Ns), t=res.t, pde=SimpleNamespace(clt_cov=np.tile(np.eye(K), (T, 1, 1)), clt={}),
                           particles_F=np.random.default_rng(1).normal(size=(len(Ns), S, T, K)))
    clt_figure(fake, tmp_path / "clt.png")
    ratio_ax = drawn["clt.png"].axes[1]
    assert [t.split(" (")[0] for t in legend_texts(ratio_ax) if t.startswith("N =")] == shown
    assert ratio_ax.get_ylabel() and drawn["clt.png"].axes[0].get_ylabel()
    # bands on log axes: lower edges > 0 and the clipping said in the legend
    assert risk_ax.get_yscale() == "log"
    low = band_lower_edges(risk_ax)
    assert low.size >= 5 and np.all(low > 0), low
    assert any("clipped" in t for t in legend_texts(risk_ax))
    floor = float(legend_texts(risk_ax)[-1].split("below ")[1].split(" ")[0])
    assert np.isclose(low.min(), floor, rtol=0.05) and risk_ax.get_ylim()[0] > 0
    for ax in drawn["s.study.error_vs_n.png"].axes:
        if ax.get_visible() and ax.get_yscale() == "log":
            low = band_lower_edges(ax)
            assert ax.get_ylabel() and low.size >= len(Ns) and np.all(low > 0) and ax.get_ylim()[0] > 0
    assert figures.clip_band([-1.0, 0.0, 0.5, np.nan], 0.1)[1]
    np.testing.assert_array_equal(figures.clip_band([-1.0, 0.0, 0.5, np.nan], 0.1)[0], [0.1, 0.1, 0.5, np.nan])


def _regimes_file(tmp_path, M=5000):
    rng = np.random.default_rng(2)
    N, S, T = np.array([16, 64, 256]), 3, 4
    t = np.linspace(0, 1, T)
    reg = {"N": N, "seeds": np.arange(S), "t": t, "lr": 1.0, "fit": {}, "snapshot": {"N": M}}
    predicted = {"mean-field": (0.0, "0"), "ntk": (-0.5, "-1/2")}
    for sc, (slope, text) in predicted.items():
        disp = 0.3 * (N[:, None] / 16.0) ** slope * rng.uniform(0.9, 1.1, (3, S))
        kern = 0.05 * (N[:, None] / 16.0) ** slope * np.array([0.02, 1.0, 2.0])  # CI reaching below 0
        reg[sc] = {"displacement": disp, "kernel_change": kern,
                   "risk": 0.2 * np.exp(-t)[None, None, :] * rng.uniform(0.9, 1.1, (3, S, T))}
        reg["fit"][sc] = {q: {"slope": slope + 0.01, "ci": np.array([slope - 0.05, slope + 0.05]), "intercept": -1.0,
                              "r2": 0.99, "predicted": slope, "predicted_text": text}
                          for q in ("displacement", "kernel_change")}
        reg["snapshot"][sc] = {"theta_end": rng.uniform(0, TWO_PI, (M, 2)), "displacement": rng.uniform(0, 1, M)}
    reg["ntk_limit"] = {"risk": 0.2 * np.exp(-t)}
    reg["mean-field_limit"] = {"risk": 0.2 * np.exp(-1.1 * t), "source": "PDE"}
    info = RunInfo(case_name="reg", case_hash="h", d=2, case_text='name = "reg"\n',
                   data={"x": np.zeros((3, 1)), "y": np.ones(3), "w": np.full(3, 1 / 3)},
                   provenance={"mpi_size": 1, "wall_time_s": 1.0})
    return RegimesResult(info=info, regimes=reg).to_file(tmp_path / "reg.regimes.h5")


def test_regimes_figures_have_y_labels_theory_in_the_legend_and_pi_ticks(tmp_path, drawn):
    figs = plot_file(_regimes_file(tmp_path))
    assert sorted(p.name for p in figs) == ["reg.regimes.risk.png", "reg.regimes.snapshot.png",
                                            "reg.regimes.vs_n.png"]
    vs_n = drawn["reg.regimes.vs_n.png"].axes
    assert [ax.get_xlabel() for ax in vs_n] == ["number of experts $N$"] * 2
    assert "theta_i" in vs_n[0].get_ylabel() and r"\Theta" in vs_n[1].get_ylabel()
    for ax in vs_n:
        texts = legend_texts(ax)
        assert "mean-field theory: slope 0" in texts and "ntk theory: slope -1/2" in texts
        assert any(t.startswith("ntk fit: slope") for t in texts)
        assert tick_texts(ax.xaxis) == ["16", "64", "256"]
        assert np.all(band_lower_edges(ax) > 0) and ax.get_ylim()[0] > 0
    assert any("clipped" in t for t in legend_texts(vs_n[1]))  # the kernel change's CI reaches below 0
    assert all(ax.get_ylabel() for ax in drawn["reg.regimes.risk.png"].axes)
    for ax in [a for a in drawn["reg.regimes.snapshot.png"].axes if a.get_xlabel() == r"$\theta_1$"]:
        assert tick_texts(ax.xaxis) == tick_texts(ax.yaxis) == ["0", r"$\pi/2$", r"$\pi$", r"$3\pi/2$", r"$2\pi$"]
        assert scatter_counts(ax) == [2000] and "2000 of 5000 shown" in ax.get_title()


def _limit_file(tmp_path, d=2, M=2500, K=5, T=4, clt=True):
    rng = np.random.default_rng(3)
    t = np.linspace(0, 2, T)
    x = np.linspace(-1, 1, K)[:, None]
    obs = Observables(t=t, F=np.outer(1 - np.exp(-t), np.sin(x[:, 0])), risk=0.3 * np.exp(-t) + 1e-3,
                      moments=np.zeros((T, 1), complex), moment_freqs=np.ones((1, d), int))
    info = RunInfo(case_name="lim", case_hash="h", d=d, case_text='name = "lim"\n',
                   data={"x": x, "y": np.sin(x[:, 0]), "w": np.full(K, 1 / K)}, provenance={"mpi_size": 1})
    theta0 = rng.uniform(0, TWO_PI, (M, d))
    res = LimitResult(info=info, observables=obs, weights=np.full(M, 1 / M), rule="synthetic",
                      theta=np.array([theta0 + 0.1 * tt for tt in t]), theta_index=np.arange(T),
                      clt={"cov": np.array([(1 + tt) * np.eye(K) for tt in t])} if clt else {},
                      extra={"error_estimate": np.full(T, 1e-6)})
    return res.to_file(tmp_path / f"lim{d}.limit.h5")


@pytest.mark.parametrize("d", [1, 2])
def test_mfpde_plot_writes_the_figures_of_a_limit_file(tmp_path, capsys, drawn, d):
    path = _limit_file(tmp_path, d=d)
    assert main(["plot", str(path), "--out", str(tmp_path / "p")]) == 0
    names = ["risk", "F", "points", "clt"]
    assert sorted(p.name for p in (tmp_path / "p").glob("*.png")) == sorted(f"lim{d}.limit.{k}.png" for k in names)
    assert capsys.readouterr().out.count("wrote ") == 4
    for k in names:
        assert_png(tmp_path / "p" / f"lim{d}.limit.{k}.png", min_px=150)
    F_ax = drawn[f"lim{d}.limit.F.png"].axes[0]
    assert legend_texts(F_ax) == ["t = 0", "t = 0.667", "t = 1.33", "t = 2", "data $y_k$"]
    assert F_ax.get_xlabel() == "data point $x$" and "F(x_k, t)" in F_ax.get_ylabel()
    line = F_ax.get_lines()[-2]  # F at t = 2 against x
    np.testing.assert_allclose(line.get_ydata(), (1 - np.exp(-2.0)) * np.sin(np.linspace(-1, 1, 5)))
    clt_ax = drawn[f"lim{d}.limit.clt.png"].axes[0]
    np.testing.assert_allclose(clt_ax.get_lines()[-1].get_ydata(), np.full(5, 3.0))  # cov[t = 2] = 3 I
    assert r"\Sigma_{kk}" in clt_ax.get_ylabel()
    risk_ax = drawn[f"lim{d}.limit.risk.png"].axes[0]
    assert legend_texts(risk_ax) == ["limit (synthetic, M = 2500)"] and risk_ax.get_ylabel()
    panels = [ax for ax in drawn[f"lim{d}.limit.points.png"].axes if ax.get_xlabel()]
    assert len(panels) == 4
    for ax in panels:
        assert tick_texts(ax.xaxis)[2] == r"$\pi$"
        assert scatter_counts(ax) == ([2000] if d == 2 else [])
    if d == 2:
        assert "2000 of 2500 shown" in drawn["lim2.limit.points.png"]._suptitle.get_text()


def test_a_limit_file_without_clt_gets_three_figures(tmp_path):
    figs = plot_file(_limit_file(tmp_path, clt=False))
    assert [p.name for p in figs] == ["lim2.limit.risk.png", "lim2.limit.F.png", "lim2.limit.points.png"]


# ------------------------------------------------ the density on a grid, vectorized over cells

def _nodes_of(X, cell, ref):
    """Physical positions (C, ndofs, d) of the reference nodes in the cells X."""
    from mfpde.numerics.fields import _box_shape

    if cell in ("interval", "triangle", "tetrahedron"):
        d = X.shape[2]
        J = np.transpose(X[:, 1 : d + 1, :] - X[:, :1, :], (0, 2, 1))
        return X[:, None, 0, :] + np.einsum("cij,qj->cqi", J, ref)
    N, _ = _box_shape(ref, X.shape[2])
    return np.einsum("qa,cai->cqi", N, X)


@pytest.mark.parametrize("d,cell,n,degree,bend", [(1, "interval", 5, 2, False), (2, "triangle", 3, 2, False),
                                                  (2, "quadrilateral", 3, 2, False),
                                                  (2, "quadrilateral", 5, 1, True),
                                                  (3, "tetrahedron", 2, 1, False)])
def test_grid_values_equal_the_point_evaluation(d, cell, n, degree, bend):
    """report.density_grid gives fields.evaluate_cellwise's values at every grid point (a moved, bilinear
    quadrilateral mesh included); the field interpolates a smooth function, so it is continuous."""
    from mfpde.io.results import lagrange_nodes
    from mfpde.numerics.fields import evaluate_cellwise
    from mfpde.report.density_grid import grid_values

    ref = lagrange_nodes(cell, degree)
    assert ref is not None
    X = torus_cells(d, n, cell)
    if bend:  # move every vertex by a smooth periodic field: the cells stop being parallelograms
        X = X + 0.25 * (TWO_PI / n) * np.stack([np.sin(X[..., 1] + 0.3), np.sin(2 * X[..., 0])], axis=-1)
    values = rho_exact(_nodes_of(X, cell, ref), 0.7)
    cw = {"cell_type": cell, "degree": degree, "vertices": X, "values": values, "reference_points": ref}
    shape = {1: (40,), 2: (24, 18), 3: (10, 8, 6)}[d]
    grid = grid_values(cw, shape)
    axes = [(np.arange(s) + 0.5) * TWO_PI / s for s in shape]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    np.testing.assert_allclose(grid.ravel(), evaluate_cellwise(cw, pts), rtol=1e-10, atol=1e-13)
    assert np.ptp(grid) > 0.1 / TWO_PI**d  # a field that varies: the comparison means something
