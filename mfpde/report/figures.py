"""Figures of mfpde result files (``mfpde plot RUN.h5``).

:func:`plot_file` reads the root attribute ``kind`` of an HDF5 result file
(DESIGN section 7) and writes the figures of that kind as PNG files beside it
(or in ``out_dir``), named ``<file stem>.<figure>.png``:

==========  ================================================================
kind        figures
==========  ================================================================
pde         ``density`` (snapshots), ``risk``, ``conservation`` (mass drift,
            min rho)
particles   ``positions`` (snapshots), ``risk``
study       ``density`` (PDE snapshots with the example particles on top),
            ``risk`` (PDE against particles, mean over seeds per N),
            ``error_vs_n`` (sup over t, log-log, fitted and theory slopes),
            ``error_vs_n_t_end`` (the same at the final time),
            ``error_vs_t`` (every metric against t, one curve per N),
            ``conservation``
compare     ``metrics`` (every metric against t, one curve per particle file)
limit       ``risk``, ``F`` (F(x_k, t) at a few saved times with the data),
            ``points`` (the quadrature points at a few stored times),
            ``clt`` (the diagonal of the CLT covariance, if the file has it)
regimes     ``vs_n``, ``risk``, ``snapshot`` (:mod:`mfpde.report.regimes`)
==========  ================================================================

Conventions of every figure: axes in theta carry the ticks 0, pi/2, pi,
3 pi/2, 2 pi (:func:`torus_axis`); the curves per N of a study are the same
:data:`SHOWN_N` values in every figure (:func:`shown_n`; the error-against-N
panels show every N); on log axes the lower edge of a confidence band is
clipped at a positive floor, a tenth of the smallest value drawn, and the
legend says so (:func:`clip_band`); particles drawn as points are at most
:data:`OVERLAY_POINTS`, a subset with a fixed seed, and the figure says
"2000 of 16384 shown" (:func:`subsample`).

Every ``plot_*`` function takes a result object of :mod:`mfpde.io.results`
and the output path and returns that path.  Only numpy, h5py and matplotlib
(Agg) are needed; the PDE density is evaluated on a regular grid by
:mod:`mfpde.report.density_grid` (numpy only, seconds for 10^4 cells), with
cell averages as a fallback.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from mfpde.errors import ResultFileError
from mfpde.analysis.rates import METRIC_NAMES, mean_ci
from mfpde.constants import TWO_PI
from mfpde.report.style import (DPI, OVERLAY_POINTS, OVERLAY_SEED, PI_LABELS, PI_TICKS, SHOWN_N, clip_band,  # noqa: F401
                                clip_note, log_floor, note_clipped, shown_n, subsample, torus_axis)
from mfpde.report.style import mpl as _mpl, save as _save
from mfpde.io.results import (CompareResult, LimitResult, ParticleResult, PDEResult, Result, StudyResult,
                              read_result)

#: metric name -> (axis label, long description)
METRIC_LABELS = {  # one per name of mfpde.analysis.rates.METRIC_NAMES
    "observable_error": (r"$\max_k |f_N(x_k) - F_\rho(x_k)|$", "observable error"),
    "risk_error": (r"$|R_N - R(\rho)|$", "risk error"),
    "moment_error": (r"$\max_w |m_w(\mu_N) - m_w(\rho)|$", "Fourier moment error"),
    "sobolev": (r"$\|\mu_N - \rho\|_{H^{-s}}$", "negative Sobolev distance"),
    "wasserstein": (r"$W(\mu_N, \rho)$", "Wasserstein distance on the torus"),
}
_MAX_SNAPSHOTS = 4


# --------------------------------------------------------------------- helpers

def _title(res: Result) -> str:
    tail = f" (d = {res.info.d})"
    if not res.info.complete:
        tail += " (incomplete run)"
    return f"{res.info.case_name or 'run'}{tail}"


def _snapshot_indices(T: int, k: int = _MAX_SNAPSHOTS) -> list[int]:
    if T <= 0:
        return []
    return sorted(set(int(round(i)) for i in np.linspace(0, T - 1, min(k, T))))


def _positive(a):
    """Values for a log axis: non-positive entries become NaN (not drawn)."""
    a = np.asarray(a, dtype=float)
    return np.where(a > 0, a, np.nan)


def _auto_log_y(ax, *arrays) -> None:
    """Log y when the positive data span more than a factor 10, else linear (no clutter of minor labels)."""
    v = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in arrays]) if arrays else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() > 10 * v.min():
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useMathText=True)


# ------------------------------------------------------------ PDE density

def _cell_volumes(X: np.ndarray, cell_type: str) -> np.ndarray:
    C, nv, d = X.shape
    if cell_type in ("interval", "triangle", "tetrahedron"):
        J = X[:, 1 : d + 1, :] - X[:, :1, :]
        return np.abs(np.linalg.det(J)) / math.factorial(d)
    return np.prod(X.max(axis=1) - X.min(axis=1), axis=1)  # boxes: axis-aligned on the torus meshes


class DensityView:
    """The density at one saved time, as a grid (exact evaluation) or as cell averages.

    ``grid`` (d = 1: (n,), d >= 2: (n, n) indexed [theta_2, theta_1]) with the
    centres ``axis``; for d = 3 the grid is the marginal ``int rho d theta_3``.
    The grid is :func:`mfpde.report.density_grid.grid_values` (the values of
    :func:`mfpde.numerics.fields.evaluate_cellwise`, vectorized over cells).
    If it is not usable, ``grid`` is None
    and ``polys`` / ``avg`` hold the (wrapped) cells and their nodal means.
    """

    def __init__(self, cw: dict, n: int | None = None):
        X = cw["vertices"]
        C, nv, d = X.shape
        self.d = d
        self.cw = cw
        self.exact = False
        self.grid = None
        n = n or {1: 512, 2: 240, 3: 64}.get(d, 64)
        self.axis = (np.arange(n) + 0.5) * TWO_PI / n
        try:
            from mfpde.report.density_grid import grid_values

            if "reference_points" not in cw:
                raise KeyError("reference_points")
            if d == 1:
                self.grid = grid_values(cw, (n,))
            elif d == 2:
                self.grid = grid_values(cw, (n, n)).T  # [theta_2, theta_1]
            else:
                n3 = max(8, n // 4)
                self.grid = grid_values(cw, (n, n, n3)).mean(axis=2).T * TWO_PI
            self.exact = True
        except Exception:  # fields.py missing or the file lacks what it needs: cell averages
            self.grid = None
            self._cell_averages(n)

    def _cell_averages(self, n: int) -> None:
        cw, d = self.cw, self.d
        X = cw["vertices"]
        avg = cw["values"].mean(axis=1)
        self.avg = avg
        cent = np.mod(X.mean(axis=1), TWO_PI)
        if d == 1:
            order = np.argsort(cent[:, 0])
            lo = np.mod(X.min(axis=1)[:, 0], TWO_PI)
            self.steps = (lo[order], (lo + (X.max(axis=1) - X.min(axis=1))[:, 0])[order], avg[order])
        elif d == 2:
            shift = X.mean(axis=1) - cent  # wrap each cell as a whole
            P = X - shift[:, None, :]
            if cw["cell_type"] == "quadrilateral":
                P = P[:, [0, 1, 3, 2], :]  # lexicographic -> counter-clockwise
            self.polys = P
        else:  # marginal over theta_3 from cell averages times volumes
            vol = _cell_volumes(X, str(cw["cell_type"]))
            m = int(round(len(X) ** (1 / 3))) or 1
            edges = np.linspace(0, TWO_PI, m + 1)
            H, _, _ = np.histogram2d(cent[:, 1], cent[:, 0], bins=[edges, edges], weights=avg * vol)
            self.grid = H / (TWO_PI / m) ** 2
            self.axis = 0.5 * (edges[1:] + edges[:-1])

    @property
    def vmax(self) -> float:
        v = self.grid if self.grid is not None else self.avg
        return float(np.nanmax(v)) if np.size(v) else 1.0

    @property
    def vmin(self) -> float:
        v = self.grid if self.grid is not None else self.avg
        return float(np.nanmin(v)) if np.size(v) else 0.0

    def draw(self, ax, norm, cmap="viridis", label=None, color=None):
        """d = 1: a curve; d >= 2: an image (returns the mappable)."""
        if self.d == 1:
            if self.grid is not None:
                return ax.plot(self.axis, self.grid, color=color, lw=1.6, label=label)
            lo, hi, v = self.steps
            xs = np.column_stack([lo, hi]).ravel()
            return ax.plot(xs, np.repeat(v, 2), color=color, lw=1.6, label=label)
        if self.grid is not None:
            return ax.imshow(self.grid, origin="lower", extent=(0, TWO_PI, 0, TWO_PI), cmap=cmap, norm=norm,
                             interpolation="nearest" if not self.exact else "bilinear", aspect="equal")
        from matplotlib.collections import PolyCollection

        pc = PolyCollection(self.polys, array=self.avg, cmap=cmap, norm=norm, edgecolors="face", linewidths=0.2)
        ax.add_collection(pc)
        ax.set_aspect("equal")
        return pc


def _density_views(pde: PDEResult, indices) -> list[DensityView]:
    return [DensityView(pde.cellwise(i)) for i in indices]


def _scatter_particles(ax, theta, n_total) -> str:
    """The particles on top of the density: at most :data:`OVERLAY_POINTS` (fixed seed), small and
    translucent so that the density stays visible; returns "2000 of 16384 shown" or "N = 500"."""
    pts, shown = subsample(np.mod(np.asarray(theta, dtype=float), TWO_PI), n_total)
    size = float(np.clip(600.0 / max(len(pts), 1), 1.0, 10.0))
    ax.scatter(pts[:, 0], pts[:, 1], s=size, c="white", edgecolors="black", linewidths=0.2, alpha=0.6,
               label=f"particles ({shown})")
    return shown


def plot_density_snapshots(pde: PDEResult, out, particles=None, particle_t=None, n_particles=None, seed=None) -> Path:
    """PDE density at a few saved times; optionally the particles ``(T_p, N, d)`` on top.

    d = 1: one curve per time (with particle histograms, one panel per time,
    when particles are given); d = 2: a row of images on ``[0, 2 pi)^2`` with a
    shared colorbar; d = 3: the marginal ``int rho d theta_3``.
    """
    plt = _mpl()
    from matplotlib.colors import Normalize

    t = pde.t
    d = int(pde.vertices.shape[-1])
    idx = _snapshot_indices(len(t))
    views = _density_views(pde, idx)
    # particle snapshot closest to each PDE time
    pidx = None
    if particles is not None:
        pt = np.asarray(particle_t if particle_t is not None else t, dtype=float)
        pidx = [int(np.argmin(np.abs(pt - t[i]))) for i in idx]
    exact = all(v.exact for v in views)
    how = "" if exact else " (cell averages)"
    who = ""
    if particles is not None:
        who = f"N = {n_particles if n_particles is not None else particles.shape[1]} particles"
        who += f" (seed {seed})" if seed is not None else ""

    if d == 1:
        if particles is None:
            fig, ax = plt.subplots(figsize=(7.0, 4.2), layout="constrained")
            colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(idx)))
            for v, i, c in zip(views, idx, colors):
                v.draw(ax, None, label=f"t = {t[i]:.3g}", color=c)
            ax.axhline(1 / TWO_PI, color="0.5", ls=":", lw=1, label=r"uniform $1/2\pi$")
            torus_axis(ax, "x", labels=(r"$\theta$", ""))
            ax.set_ylabel(r"density $\rho(t,\theta)$")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            ax.set_title(f"{_title(pde)} — PDE density{how}")
            return _save(fig, out)
        fig, axes = plt.subplots(1, len(idx), figsize=(3.4 * len(idx) + 0.5, 3.6), layout="constrained",
                                 sharey=True, squeeze=False)
        for ax, v, i, j in zip(axes[0], views, idx, pidx):
            bins = np.linspace(0, TWO_PI, max(16, min(80, int(np.sqrt(particles.shape[1])) * 2)) + 1)
            ax.hist(np.mod(particles[j][:, 0], TWO_PI), bins=bins, density=True, color="tab:orange", alpha=0.55,
                    label="particles")
            v.draw(ax, None, label="PDE", color="black")
            torus_axis(ax, "x", labels=(r"$\theta$", ""))
            ax.set_title(f"t = {t[i]:.3g}")
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel(r"density $\rho(t,\theta)$")
        axes[0, 0].legend(fontsize=8)
        fig.suptitle(f"{_title(pde)} — PDE density{how} and histogram of {who}")
        return _save(fig, out)

    norm = Normalize(vmin=min(0.0, min(v.vmin for v in views)), vmax=max(v.vmax for v in views) or 1.0)
    fig, axes = plt.subplots(1, len(idx), figsize=(2.9 * len(idx) + 1.1, 3.7), layout="compressed",
                             squeeze=False)
    im = None
    for k, (ax, v, i) in enumerate(zip(axes[0], views, idx)):
        im = v.draw(ax, norm)
        if pidx is not None:
            shown = _scatter_particles(ax, particles[pidx[k]][:, :2],
                                       n_particles if n_particles is not None else particles.shape[1])
            if k == 0 and shown.endswith("shown"):
                who += f", {shown}"
        torus_axis(ax)
        if k:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
        ax.set_title(f"t = {t[i]:.3g}")
    label = r"$\rho(t,\theta)$" if d == 2 else r"$\int \rho(t,\theta)\,d\theta_3$"
    fig.colorbar(im, ax=axes[0].tolist(), label=label, shrink=0.85, aspect=22, pad=0.015)
    what = "PDE density" if d == 2 else r"PDE marginal over $\theta_3$"
    fig.suptitle(f"{_title(pde)} — {what}{how}" + (f" with {who}" if who else ""))
    return _save(fig, out)


# ---------------------------------------------------------------- particles

def plot_particle_positions(res: ParticleResult, out) -> Path:
    """Particles at a few saved times: d = 1 histograms, d >= 2 scatter of (theta_1, theta_2)."""
    plt = _mpl()
    t = res.observables.t
    theta = res.theta
    T, N, d = theta.shape
    idx = _snapshot_indices(min(T, len(t)))
    shown = ""
    w = 3.4 if d == 1 else 2.9
    fig, axes = plt.subplots(1, len(idx), figsize=(w * len(idx) + 0.4, 3.9 if d > 1 else 3.6),
                             layout="constrained" if d == 1 else "compressed", squeeze=False, sharey=(d == 1))
    for k, (ax, i) in enumerate(zip(axes[0], idx)):
        th = np.asarray(theta[i], dtype=float)
        if d == 1:
            bins = np.linspace(0, TWO_PI, max(16, min(80, int(np.sqrt(N)) * 2)) + 1)
            ax.hist(np.mod(th[:, 0], TWO_PI), bins=bins, density=True, color="tab:blue", alpha=0.7)
            ax.axhline(1 / TWO_PI, color="0.5", ls=":", lw=1)
            torus_axis(ax, "x", labels=(r"$\theta$", ""))
            if k == 0:
                ax.set_ylabel("empirical density")
            ax.grid(alpha=0.3)
        else:
            pts, shown = subsample(np.mod(th[:, :2], TWO_PI))
            ax.scatter(pts[:, 0], pts[:, 1], s=float(np.clip(3000.0 / len(pts), 1.5, 14.0)), c="tab:blue",
                       alpha=0.6, linewidths=0)
            torus_axis(ax)
            ax.set_aspect("equal")
            ax.grid(alpha=0.25)
            if k:
                ax.set_ylabel("")
                ax.tick_params(labelleft=False)
        ax.set_title(f"t = {t[i]:.3g}")
    seed = res.seed if res.seed >= 0 else None
    proj = "" if d <= 2 else rf" (projection on $(\theta_1,\theta_2)$ of d = {d})"
    shown = f", {shown}" if shown.endswith("shown") else ""
    fig.suptitle(f"{_title(res)} — particles N = {N}{shown}{', seed ' + str(seed) if seed is not None else ''}{proj}")
    return _save(fig, out)


# --------------------------------------------------------------------- risk

def _reference_label(res) -> str:
    """"PDE" or "limit (rule, M = ...)": the mean-field reference of a pde, limit or study result."""
    ref = res.pde if isinstance(res, StudyResult) else res
    return f"limit ({ref.description})" if isinstance(ref, LimitResult) else "PDE"


def plot_risk(res: PDEResult | ParticleResult | LimitResult, out) -> Path:
    """Risk against time (log y) of a pde, particles or limit result."""
    plt = _mpl()
    t, R = res.observables.t, res.observables.risk
    particles = isinstance(res, ParticleResult)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    label = f"particles N = {res.N}" if particles else _reference_label(res)
    ax.plot(t, _positive(R), "o-", ms=3, lw=1.6, color="tab:blue" if particles else "black", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"risk $R = \frac{1}{2}\sum_k w_k (F(x_k) - y_k)^2$")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(f"{_title(res)} — risk")
    return _save(fig, out)


def plot_conservation(res: PDEResult | StudyResult, out) -> Path:
    """Relative mass drift (log y) and min rho against time of the PDE."""
    plt = _mpl()
    o = res.observables
    t = o.t
    mass = np.asarray(o.extra["mass"], dtype=float)
    mn = np.asarray(o.extra["min_rho"], dtype=float)
    drift = np.abs(mass - mass[0]) / abs(mass[0]) if mass.size and mass[0] != 0 else np.abs(mass - 1.0)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.0, 3.8), layout="constrained")
    nz = drift > 0  # an exact zero (t = 0) has no place on a log axis
    a1.semilogy(t[nz], drift[nz], "o-", ms=3, color="tab:purple", label="relative drift (zeros not shown)")
    a1.axhline(1e-12, color="tab:red", ls="--", lw=1, label="tolerance $10^{-12}$")
    if not np.any(nz):
        a1.text(0.5, 0.5, "no drift: M(t) = M(0) exactly", ha="center", va="center", transform=a1.transAxes)
    a1.set_xlabel("time $t$")
    a1.set_ylabel(r"$|M(t) - M(0)| / M(0)$,  $M = \int \rho$")
    a1.set_title(f"mass drift (M(0) = {mass[0]:.12g})" if mass.size else "mass drift")
    a1.set_ylim(min(1e-16, float(drift[nz].min()) / 3) if np.any(nz) else 1e-16,
                max(1e-11, float(drift.max()) * 3))
    if t.size > 1:
        a1.set_xlim(t[0] - 0.05 * (t[-1] - t[0]), t[-1] + 0.05 * (t[-1] - t[0]))
    a1.legend(fontsize=8, loc="lower right")
    a1.grid(alpha=0.3)
    a2.plot(t, mn, "o-", ms=3, color="tab:green")
    a2.axhline(0.0, color="tab:red", ls="--", lw=1)
    a2.set_xlabel("time $t$")
    a2.set_ylabel(r"$\min_\theta \rho(t,\theta)$")
    a2.set_title("minimum of the density")
    a2.grid(alpha=0.3)
    fig.suptitle(f"{_title(res)} — PDE conservation and positivity")
    return _save(fig, out)


# -------------------------------------------------------------------- limit

def _data_axis(res) -> tuple[np.ndarray, str]:
    """Positions of the data points on a figure's x axis: x itself for 1-D data, else the index k."""
    K = np.shape(res.observables.F)[1]
    x = np.asarray(res.info.data.get("x", np.arange(K)[:, None]), dtype=float).reshape(K, -1)
    return (x[:, 0], "data point $x$") if x.shape[1] == 1 else (np.arange(K, dtype=float), "data point index $k$")


def _per_data_point(res, values: np.ndarray, ylabel: str, title: str, out, data=True) -> Path:
    """``values`` (T, K) against the data points at a few saved times (one curve per time)."""
    plt = _mpl()
    t = res.t
    pos, xlabel = _data_axis(res)
    order = np.argsort(pos, kind="stable")
    fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
    idx = _snapshot_indices(min(len(t), len(values)))
    for c, i in zip(_n_colors(len(idx)), idx):
        ax.plot(pos[order], values[i, order], "o-", ms=3, lw=1.3, color=c, label=f"t = {t[i]:.3g}")
    y = res.info.data.get("y")
    if data and y is not None:
        ax.plot(pos[order], np.asarray(y, dtype=float)[order], "kx", ms=7, label="data $y_k$")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{_title(res)} — {title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_limit_F(res: LimitResult, out) -> Path:
    """The limit's output ``F(x_k, t)`` at a few saved times against the data point (against x for 1-D
    data), with the targets ``y_k``; the estimated error of F (``/limit/error_estimate``) in the title."""
    est = res.extra.get("error_estimate")
    tail = f" (estimated error of F at most {float(np.max(est)):.1e})" if est is not None and np.size(est) else ""
    return _per_data_point(res, np.asarray(res.observables.F, dtype=float),
                           r"$F(x_k, t) = \int \phi(\theta, x_k)\, d\rho_t(\theta)$", f"limit output{tail}", out)


def plot_limit_points(res: LimitResult, out) -> Path:
    """The limit's quadrature points at (up to four of) the saved times stored in the file: d = 1 a
    weighted histogram, d >= 2 the points on (theta_1, theta_2), at most :data:`OVERLAY_POINTS` of them."""
    plt = _mpl()
    index = np.arange(len(res.theta)) if res.theta_index is None else np.asarray(res.theta_index)
    picks = [int(index[k]) for k in _snapshot_indices(len(index))]
    d = int(res.theta.shape[-1])
    w = np.asarray(res.weights, dtype=float)
    fig, axes = plt.subplots(1, len(picks), figsize=(3.1 * len(picks) + 0.6, 3.7), squeeze=False, sharey=(d == 1),
                             layout="constrained" if d == 1 else "compressed")
    shown = ""
    for k, (ax, i) in enumerate(zip(axes[0], picks)):
        theta, _ = res.atoms(i)
        theta = np.mod(np.asarray(theta, dtype=float), TWO_PI)
        if d == 1:
            bins = np.linspace(0, TWO_PI, max(16, min(80, int(np.sqrt(len(theta))) * 2)) + 1)
            ax.hist(theta[:, 0], bins=bins, weights=w / w.sum(), density=True, color="tab:green", alpha=0.7)
            torus_axis(ax, "x", labels=(r"$\theta$", ""))
            if k == 0:
                ax.set_ylabel(r"density of the limit $\rho_t$")
        else:
            pts, shown = subsample(theta[:, :2])
            ax.scatter(pts[:, 0], pts[:, 1], s=float(np.clip(1500.0 / len(pts), 1.0, 12.0)), c="tab:green",
                       alpha=0.6, linewidths=0)
            torus_axis(ax)
            ax.set_aspect("equal")
            if k:
                ax.set_ylabel("")
                ax.tick_params(labelleft=False)
        ax.grid(alpha=0.25)
        ax.set_title(f"t = {res.t[i]:.3g}")
    proj = "" if d <= 2 else rf" (projection on $(\theta_1,\theta_2)$ of d = {d})"
    shown = f", {shown}" if shown.endswith("shown") else ""
    fig.suptitle(f"{_title(res)} — limit points ({res.description}{shown}){proj}")
    return _save(fig, out)


def plot_limit_clt(res: LimitResult, out) -> Path:
    """The diagonal of the CLT covariance ``/clt/cov[t, k, k]`` (the predicted variance of
    ``sqrt(N) (f_N(x_k, t) - F(x_k, t))``) against the data point at the times of the F figure."""
    var = np.einsum("tkk->tk", np.asarray(res.clt_cov, dtype=float))
    return _per_data_point(res, var, r"$\Sigma_{kk}(t)$: variance of $\sqrt{N}\,(f_N(x_k,t) - F(x_k,t))$",
                           "CLT covariance, diagonal", out, data=False)


def _n_colors(n):
    plt = _mpl()
    return plt.get_cmap("viridis")(np.linspace(0.05, 0.85, max(n, 1)))


def plot_study_risk(res: StudyResult, out) -> Path:
    """PDE risk against the particle risk (mean over seeds, 95% band) for a few N."""
    plt = _mpl()
    t, R = res.observables.t, res.observables.risk
    Ns, ts = res.N, res.t
    PR = res.particles_risk  # (n, S, T)
    fig, ax = plt.subplots(figsize=(7.0, 4.6), layout="constrained")
    sel = shown_n(Ns)
    stats = [mean_ci(np.moveaxis(PR[j], 0, -1)) for j in sel]
    floor = log_floor(R, *[m for m, _, _ in stats])
    clipped = False
    for c, j, (m, lo, hi) in zip(_n_colors(len(sel)), sel, stats):
        ax.plot(ts, _positive(m), "-", lw=1.3, color=c, label=f"particles N = {int(Ns[j])}")
        if np.any(np.isfinite(lo)):
            low, cut = clip_band(lo, floor)
            clipped |= cut
            ax.fill_between(ts, low, _positive(hi), color=c, alpha=0.18, lw=0)
    ax.plot(t, _positive(R), "k--", lw=2.0, label=_reference_label(res))
    if clipped:
        note_clipped(ax, floor)
    ax.set_yscale("log")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("risk $R$")
    S = PR.shape[1]
    ax.set_title(f"{_title(res)} — risk, PDE vs particles (mean over {S} seeds, 95% CI band)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, out)


# ---------------------------------------------------------- error against N

def _metric_names(group) -> list[str]:
    known = [m for m in METRIC_NAMES if m in group]
    return known + sorted(m for m in group if m not in METRIC_NAMES)


def theory_curve(fit, N: np.ndarray) -> np.ndarray:
    """The theory's shape at N, up to a constant: ``(log N / N)^1/2``, ``N^slope log N`` or ``N^slope``."""
    if "(log N / N)^1/2" in fit.theory:
        return np.sqrt(np.log(N) / N)
    if "log N" in fit.theory:
        return N ** fit.theory_slope * np.log(N)
    return N ** fit.theory_slope


def theory_tex(text: str) -> str:
    """``"N^-1/2 log N"`` -> ``"$N^{-1/2}\\,\\log N$"`` for legends (plain text if it does not parse)."""
    import re

    if text.strip() == "(log N / N)^1/2":
        return r"$(\log N / N)^{1/2}$"
    if not text or not re.fullmatch(r"[N0-9^./+\- ]*(log N)?[N0-9^./+\- ]*", text.strip()):
        return text or ""
    tex = re.sub(r"N\^(-?[0-9./]+)", r"N^{\1}", text.strip())
    tex = tex.replace("log N", r"\log N").replace(" ", r"\,")
    return f"${tex}$"


def _grid(n: int):
    cols = min(3, n)
    rows = math.ceil(n / cols)
    return rows, cols


def plot_error_vs_n(res: StudyResult, out, at: str = "sup") -> Path:
    """Each metric against N, log-log: mean over seeds with the 95% t-interval,
    the fitted line (slope and bootstrap CI from the file) and the theory line
    anchored at the first point.  ``at="sup"``: the error is the max over the
    saved times (``/study/fit``); ``at="end"``: at the final time (``/study/fit_t_end``)."""
    plt = _mpl()
    Ns = np.asarray(res.N, dtype=float)
    metrics = res.metrics
    names = _metric_names(metrics)
    fits = res.fit if at == "sup" else res.fit_t_end
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.7 * rows), layout="constrained", squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    S = None
    for ax, name in zip(axes.ravel(), names):
        M = np.asarray(metrics[name], dtype=float)  # (n, S, T)
        S = M.shape[1]
        with warnings.catch_warnings():  # all-NaN rows: a metric not computed for some N
            warnings.simplefilter("ignore", RuntimeWarning)
            E = np.nanmax(M, axis=2) if at == "sup" and np.any(np.isfinite(M)) else M[:, :, -1]
        m, lo, hi = mean_ci(E)
        ylabel, desc = METRIC_LABELS.get(name, (name, name.replace("_", " ")))
        ax.set_title(desc, fontsize=10)
        ax.set_xlabel("number of particles $N$")
        ax.set_ylabel((r"$\sup_t$ " if at == "sup" else r"at $t_{end}$: ") + ylabel, fontsize=9)
        ok = np.isfinite(m) & (m > 0)
        if not np.any(ok):
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_xscale("log")
            continue
        floor = log_floor(m[ok])
        low, clipped = clip_band(np.where(ok, lo, np.nan), floor)
        yerr = np.array([np.where(np.isfinite(low), m - low, 0), np.where(np.isfinite(hi), hi - m, 0)])
        ax.errorbar(Ns[ok], m[ok], yerr=yerr[:, ok], fmt="o", ms=4, capsize=3, color="tab:blue",
                    label=f"mean over {S} seeds (95% CI)")
        fit = fits.get(name)
        Nl = np.geomspace(Ns[ok].min(), Ns[ok].max(), 100)
        if fit is not None and np.isfinite(fit.slope) and np.isfinite(fit.intercept):
            lo_s, hi_s = fit.ci
            ax.plot(Nl, np.exp(fit.intercept) * Nl ** fit.slope, "-", color="tab:red", lw=1.5,
                    label=f"fit: slope {fit.slope:.3f}, 95% CI [{lo_s:.3f}, {hi_s:.3f}]")
        if fit is not None and np.isfinite(fit.theory_slope):
            j0 = int(np.nonzero(ok)[0][0])
            N0, E0 = Ns[j0], m[j0]
            shape, ref = theory_curve(fit, Nl), theory_curve(fit, np.array([N0]))[0]
            ax.plot(Nl, E0 * shape / ref, "--", color="0.3", lw=1.2,
                    label=f"theory {theory_tex(fit.theory)} (slope {fit.theory_slope:.3g})")
        if clipped:
            note_clipped(ax, floor)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _n_ticks(ax, Ns[ok])
        # the y range: the means, the upper bars and the clipped lower bars
        top = np.nanmax(np.where(np.isfinite(hi[ok]), hi[ok], m[ok]))
        ax.set_ylim((floor if clipped else np.nanmin(m[ok]) / 3.0) / 1.5, top * 1.6)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=7, loc="lower left")
    when = "max over the saved times" if at == "sup" else "at the final time"
    fig.suptitle(f"{_title(res)} — error against N ({when})")
    return _save(fig, out)


def _n_ticks(ax, Ns) -> None:
    """Major ticks of a log N axis at the N values themselves (every other one beyond 6), no minor labels."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    Ns = np.unique(np.asarray(Ns, dtype=float))
    step = 1 if len(Ns) <= 6 else 2
    shown = Ns[::step]
    ax.xaxis.set_major_locator(FixedLocator(shown))
    ax.set_xticklabels([f"{int(n)}" if float(n).is_integer() else f"{n:g}" for n in shown])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(Ns.min() / 1.35, Ns.max() * 1.35)


def _metrics_vs_t(fig_title, t, metrics: dict, labels: list[str], out, band_over_seeds=False) -> Path:
    """One panel per metric against t; ``metrics[name]`` is (curves, T) or (curves, S, T)."""
    plt = _mpl()
    names = _metric_names(metrics)
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.5 * rows), layout="constrained", squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    colors = _n_colors(len(labels))
    for ax, name in zip(axes.ravel(), names):
        M = np.asarray(metrics[name], dtype=float)
        ylabel, desc = METRIC_LABELS.get(name, (name, name.replace("_", " ")))
        curves = []
        for j in range(len(labels)):
            if band_over_seeds:
                m, lo, hi = mean_ci(np.moveaxis(M[j], 0, -1))
            else:
                m, lo, hi = M[j], None, None
            curves.append((m, lo, hi))
        means = [m for m, _, _ in curves]
        _auto_log_y(ax, *means)
        log = ax.get_yscale() == "log"
        floor = log_floor(*means) if log else 0.0
        clipped = False
        drawn = False
        sparse = False
        for (m, lo, hi), lab, c in zip(curves, labels, colors):
            ok = np.isfinite(m) & ((m > 0) if log else True)
            if not np.any(ok):
                continue
            sparse |= not np.all(np.isfinite(m))
            ax.plot(t[ok], m[ok], "-o", ms=2.5, lw=1.2, color=c, label=lab)
            if lo is not None and np.any(np.isfinite(lo[ok])):
                low, cut = clip_band(lo[ok], floor) if log else (lo[ok], False)
                clipped |= cut
                ax.fill_between(t[ok], low, hi[ok], color=c, alpha=0.15, lw=0)
            drawn = True
        if clipped:  # in the panel: the legend is shared by the panels
            note_clipped(ax, floor, in_legend=False)
        ax.set_title(desc + (" (not at every saved time)" if sparse else ""), fontsize=10)
        ax.set_xlabel("time $t$")
        ax.set_ylabel(ylabel, fontsize=9)
        if drawn:
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes, color="0.4")
    handles, labs = [], []
    for ax in axes.ravel():
        h, lab = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labs = h, lab
    if handles:
        if len(names) < rows * cols:
            axes.ravel()[-1].set_visible(True)
            axes.ravel()[-1].axis("off")
            axes.ravel()[-1].legend(handles, labs, loc="center", fontsize=8)
        else:
            axes.ravel()[0].legend(handles, labs, fontsize=7)
    fig.suptitle(fig_title)
    return _save(fig, out)


def plot_study_error_vs_t(res: StudyResult, out) -> Path:
    """Every metric against t, mean over seeds (95% band), one curve per N."""
    Ns = res.N
    sel = shown_n(Ns)
    t = res.t
    metrics = {k: np.asarray(v, dtype=float)[sel] for k, v in res.metrics.items()}
    S = next(iter(metrics.values())).shape[1] if metrics else 0
    return _metrics_vs_t(f"{_title(res)} — PDE vs particles over time (mean over {S} seeds, 95% CI)", t, metrics,
                         [f"N = {int(Ns[j])}" for j in sel], out, band_over_seeds=True)


def plot_compare(res: CompareResult, out) -> Path:
    """Every metric against t, one curve per particle file of a compare result."""
    labels = [f"N = {int(n)}, seed {int(s)}" for n, s in zip(res.N, res.seed)]
    t, metrics = res.t, res.metrics
    return _metrics_vs_t(f"{_title(res)} — PDE vs particles", t, metrics, labels, out)


# ------------------------------------------------------------------ dispatch

def plot_study_density(res: StudyResult, out) -> Path:
    """PDE snapshots with the example particle run on top."""
    th = res.example_theta
    if th is None:
        return plot_density_snapshots(res.pde, out)
    pt = res.t if len(res.t) == th.shape[0] else None
    return plot_density_snapshots(res.pde, out, particles=th, particle_t=pt, n_particles=res.example_N,
                                  seed=res.example_seed if res.example_seed >= 0 else None)


_FIGURES = {
    "pde": [("density", plot_density_snapshots), ("risk", plot_risk), ("conservation", plot_conservation)],
    "particles": [("positions", plot_particle_positions), ("risk", plot_risk)],
    "study": [("density", plot_study_density), ("risk", plot_study_risk),
              ("error_vs_n", lambda res, out: plot_error_vs_n(res, out, "sup")),
              ("error_vs_n_t_end", lambda res, out: plot_error_vs_n(res, out, "end")),
              ("error_vs_t", plot_study_error_vs_t), ("conservation", plot_conservation)],
    "compare": [("metrics", plot_compare)],
    "limit": [("risk", plot_risk), ("F", plot_limit_F), ("points", plot_limit_points), ("clt", plot_limit_clt)],
}


def _needs(res: Result, name: str) -> bool:
    """Skip a figure whose data the result does not have (e.g. a study without fit_t_end)."""
    if name == "clt":
        return res.clt_cov is not None
    if name == "error_vs_n_t_end":
        return bool(res.fit_t_end)
    if name == "conservation":
        return "mass" in res.observables.extra and "min_rho" in res.observables.extra
    if name == "density" and isinstance(res, StudyResult):
        return isinstance(res.pde, PDEResult)  # a limit reference has no density field
    if name == "risk" and isinstance(res, StudyResult):
        return res.particles_risk is not None
    return True


def plot_file(path, out_dir=None, result: Result | None = None) -> list[Path]:
    """Write the figures of a result file (dispatch on its kind); returns the PNG paths.

    ``result`` is the file's result when the caller already holds it (not read again).
    """
    path = Path(path)
    res = read_result(path) if result is None else result
    if res.KIND == "regimes":  # its figures live with the experiment
        from mfpde.report.regimes import regimes_figures

        return regimes_figures(path, out_dir)
    if res.KIND not in _FIGURES:
        raise ResultFileError(f"{path}: has kind {res.KIND!r}; mfpde plot knows the kinds {', '.join(_FIGURES)}")
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    stem = path.name[:-3] if path.name.endswith(".h5") else path.stem
    return [fn(res, out / f"{stem}.{name}.png") for name, fn in _FIGURES[res.KIND] if _needs(res, name)]
