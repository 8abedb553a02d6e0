"""What every figure of mfpde shares (:mod:`mfpde.report.figures`, :mod:`mfpde.report.regimes`,
:mod:`mfpde.report.clt`).

* axes in theta: the range [0, 2 pi] with ticks 0, pi/2, pi, 3 pi/2, 2 pi written as multiples of pi
  (:func:`torus_axis`);
* the N drawn as separate curves in a study: the same :data:`SHOWN_N` values in every figure (:func:`shown_n`);
* confidence bands on log axes: the lower edge clipped at a positive floor, a tenth of the smallest value
  drawn (a lower edge <= 0 would vanish or stretch the axis), and the figure says so (:func:`clip_band`,
  :func:`note_clipped`);
* points drawn over a density: at most :data:`OVERLAY_POINTS`, a subset with a fixed seed, and the figure
  says "2000 of 16384 shown" (:func:`subsample`);
* PNG at :data:`DPI`, written by :func:`save` (which closes the figure).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfpde.constants import TWO_PI

DPI = 130
#: particles drawn per panel: beyond that a random subset (fixed seed), and the figure says "2000 of N shown"
OVERLAY_POINTS = 2000
OVERLAY_SEED = 0
#: curves per N in a study's figures: this many N of the study, the same ones in every figure (:func:`shown_n`)
SHOWN_N = 5
PI_TICKS = [0, np.pi / 2, np.pi, 3 * np.pi / 2, TWO_PI]
PI_LABELS = ["0", r"$\pi/2$", r"$\pi$", r"$3\pi/2$", r"$2\pi$"]


def mpl():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def torus_axis(ax, which="xy", labels=(r"$\theta_1$", r"$\theta_2$")):
    """An axis in theta: the range [0, 2 pi] with ticks 0, pi/2, pi, 3 pi/2, 2 pi written as multiples of pi."""
    if "x" in which:
        ax.set_xlim(0, TWO_PI)
        ax.set_xticks(PI_TICKS, PI_LABELS)
        ax.set_xlabel(labels[0])
    if "y" in which:
        ax.set_ylim(0, TWO_PI)
        ax.set_yticks(PI_TICKS, PI_LABELS)
        ax.set_ylabel(labels[1])


def subsample(points, n_total: int | None = None) -> tuple[np.ndarray, str]:
    """At most :data:`OVERLAY_POINTS` rows of ``points`` (a random subset, seed :data:`OVERLAY_SEED`, the same
    subset for the same count) and the words for the figure: ``"2000 of 16384 shown"`` or ``"N = 500"``."""
    pts = np.asarray(points)
    total = len(pts) if n_total is None else int(n_total)
    if len(pts) > OVERLAY_POINTS:
        pick = np.sort(np.random.default_rng(OVERLAY_SEED).choice(len(pts), OVERLAY_POINTS, replace=False))
        return pts[pick], f"{OVERLAY_POINTS} of {total} shown"
    return pts, (f"{len(pts)} of {total} shown" if len(pts) < total else f"N = {total}")


def shown_n(Ns) -> list[int]:
    """Indices of the N drawn as separate curves in every figure of a study (the same list everywhere):
    :data:`SHOWN_N` of them, evenly spread from the smallest to the largest."""
    return few(len(Ns), SHOWN_N)


def log_floor(*arrays) -> float:
    """A positive floor for the lower edge of bands on a log axis: a tenth of the smallest positive value."""
    v = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in arrays]) if arrays else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.min()) / 10.0 if v.size else 1e-300


def clip_band(lo, floor: float) -> tuple[np.ndarray, bool]:
    """The lower edge of a band on a log axis: ``max(lo, floor)`` (a lower edge <= 0 would vanish or stretch the
    axis); and whether any finite edge was clipped (the figure then says so, :func:`note_clipped`)."""
    lo = np.asarray(lo, dtype=float)
    clipped = bool(np.any(np.isfinite(lo) & (lo < floor)))
    return np.where(np.isfinite(lo), np.maximum(lo, floor), np.nan), clipped


def clip_note(floor: float) -> str:
    """The words of :func:`note_clipped`."""
    return f"CI lower edges below {floor:.1e} clipped there"


def note_clipped(ax, floor: float, in_legend: bool = True) -> None:
    """Say where the lower edges of the bands were clipped: a legend entry, or a line of text in the panel."""
    if in_legend:
        ax.plot([], [], " ", label=clip_note(floor))
    else:
        ax.text(0.02, 0.02, clip_note(floor), transform=ax.transAxes, fontsize=7, color="0.3")


def save(fig, out) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI` (creating the folder), close it, return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    mpl().close(fig)
    return out


def few(n: int, k: int = 5) -> list[int]:
    """``k`` indices of ``range(n)`` evenly spread from the first to the last (all of them if n <= k)."""
    return sorted(set(int(round(i)) for i in np.linspace(0, n - 1, min(k, n))))
