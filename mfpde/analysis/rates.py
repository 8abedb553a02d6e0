"""Rate fits of a study over N (DESIGN section 5): least squares in log-log with
bootstrap confidence intervals, means with t intervals, and the theory's slopes."""

from __future__ import annotations

import numpy as np


def _ls_fit(x, Y):
    """Least squares ``Y = b + a x`` for each row of ``Y`` (..., n); returns (a, b)."""
    xm = x.mean()
    xc = x - xm
    a = (Y - Y.mean(axis=-1, keepdims=True)) @ xc / np.dot(xc, xc)
    b = Y.mean(axis=-1) - a * xm
    return a, b


def fit_rate(N, errors, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Fit ``error ~ C N^slope`` in log-log, with a bootstrap confidence interval.

    ``N`` ``(n,)``, ``errors`` ``(n, S)`` (one column per seed; a 1-d array is
    one seed).  The fit is ordinary least squares of ``log(mean_s errors)``
    against ``log N``.  Bootstrap (``n_boot`` replicates): for every ``N``
    independently, the ``S`` seeds are resampled with replacement, the means
    recomputed and the line refitted; the interval is the percentile
    interval ``[(1 - level)/2, (1 + level)/2]`` of the replicate slopes.

    Returns a dict: ``slope``, ``intercept`` (of ``log``), ``prefactor``
    ``= exp(intercept)``, ``ci`` (2,), ``intercept_ci`` (2,), ``stderr``
    (bootstrap standard deviation of the slope), ``r2`` of the fit on the
    means, ``level``, ``n_boot``.
    """
    N = np.asarray(N, dtype=float).reshape(-1)
    E = np.asarray(errors, dtype=float)
    if E.ndim == 1:
        E = E[:, None]
    if E.shape[0] != N.size:
        raise ValueError(f"fit_rate: {N.size} values of N but errors has {E.shape[0]} rows")
    if N.size < 2:
        raise ValueError("fit_rate: need at least two values of N")
    if np.any(N <= 0) or np.any(~np.isfinite(E)) or np.any(E <= 0):
        raise ValueError("fit_rate: N and errors must be finite and positive")
    x = np.log(N)
    y = np.log(E.mean(axis=1))
    slope, intercept = _ls_fit(x, y)
    resid = y - (intercept + slope * x)
    sst = np.sum((y - y.mean()) ** 2)
    r2 = 1.0 - np.sum(resid ** 2) / sst if sst > 0 else 1.0
    n, S = E.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, S, size=(n_boot, n, S))
    means = np.take_along_axis(np.broadcast_to(E, (n_boot, n, S)), idx, axis=2).mean(axis=2)
    bs, bi = _ls_fit(x, np.log(means))
    q = [(1 - level) / 2, (1 + level) / 2]
    return dict(slope=float(slope), intercept=float(intercept), prefactor=float(np.exp(intercept)),
                ci=np.quantile(bs, q), intercept_ci=np.quantile(bi, q),
                stderr=float(bs.std(ddof=1)) if n_boot > 1 else float("nan"),
                r2=float(r2), level=float(level), n_boot=int(n_boot))


def mean_ci(values, level: float = 0.95):
    """Mean and Student-t confidence interval over the last axis (the seeds).

    ``mean +- t_{(1+level)/2, S-1} * std(ddof=1) / sqrt(S)`` over the finite
    entries (NaN entries, a metric not computed for a seed, are left out).
    Returns ``(mean, lo, hi)`` with the leading shape; with fewer than two
    finite seeds ``lo = hi = nan`` (and with none the mean is nan too).
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    S = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(S > 0, np.sum(np.where(finite, v, 0.0), axis=-1) / np.maximum(S, 1), np.nan)
        dev = np.where(finite, v - np.asarray(m)[..., None], 0.0)
        sd = np.sqrt(np.sum(dev ** 2, axis=-1) / np.maximum(S - 1, 1))
        q = np.where(S >= 2, stats.t.ppf((1 + level) / 2, np.maximum(S - 1, 1)), np.nan)
        half = q * sd / np.sqrt(np.maximum(S, 1))
    return m, m - half, m + half


METRIC_NAMES = ("observable_error", "risk_error", "moment_error", "sobolev", "wasserstein")


def theory_slope(metric: str, d: int, ns=None):
    """Predicted log-log slope of an error against N, and its text form (DESIGN section 5).

    * ``observable_error``, ``risk_error``, ``moment_error``, ``sobolev``
      (alias ``negative_sobolev``): ``-1/2`` ("N^-1/2"), any d: they are
      averages of fixed bounded test functions over i.i.d.-like particles.
    * ``wasserstein`` (aliases ``w1``, ``w2``): ``-1/2`` in d = 1; in d = 2
      ``(log N / N)^1/2`` (Ajtai-Komlos-Tusnady): its log-log slope is
      ``-1/2 + 1/(2 log N)``, so with the study's particle numbers ``ns`` the
      slope returned is the least-squares slope of ``log (log N / N)^1/2``
      against ``log N`` over them (-0.425 for N = 64 ... 16384), and ``-1/2``
      without ``ns``; ``-1/d`` for ``d >= 3`` (a study's grid reduction in
      d = 3 resolves scales down to its grid only, which biases the fitted
      slope towards ``-1/2``: see :func:`wasserstein_torus`).
    """
    d = int(d)
    if d < 1:
        raise ValueError(f"theory_slope: d must be >= 1, got {d}")
    key = str(metric).lower()
    if key in ("observable_error", "risk_error", "moment_error", "sobolev", "negative_sobolev"):
        return -0.5, "N^-1/2"
    if key in ("wasserstein", "w1", "w2"):
        if d == 1:
            return -0.5, "N^-1/2"
        if d == 2:
            if ns is None or len(set(ns)) < 2:
                return -0.5, "(log N / N)^1/2"
            x = np.log(np.asarray(sorted(set(ns)), dtype=float))
            slope, _ = _ls_fit(x, 0.5 * (np.log(x) - x))
            return float(slope), "(log N / N)^1/2"
        return -1.0 / d, f"N^-1/{d}"
    raise ValueError(f"theory_slope: unknown metric {metric!r} (known: {', '.join(METRIC_NAMES)})")
