r"""The CLT panel of a study report: ``N Var`` over seeds against the predicted covariance.

For each N of the study and each saved time and data point, the sample
variance over the S seeds of :math:`f_N(x_k, t)` times N is set against
``/clt/cov[t, k, k]`` (:mod:`mfpde.meshfree.clt`).  With Gaussian fluctuations
:math:`(S-1) s^2 / \sigma^2 \sim \chi^2_{S-1}`, so the ratio lies in
:math:`[\chi^2_{S-1}(0.025), \chi^2_{S-1}(0.975)] / (S-1)` with probability
0.95 (the band drawn and counted).  The table of experts needed is
``/clt/experts_needed`` of the limit run.  Both take a :class:`mfpde.io.results.StudyResult`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import chi2

from mfpde.report.style import mpl as _mpl, save as _save, shown_n


def variance_ratio(particles_F: np.ndarray, N, cov: np.ndarray) -> np.ndarray:
    """``N Var_seeds(f_N(x_k, t)) / cov[t, k, k]``: (len N, T, K); NaN where the prediction is 0."""
    var = np.var(particles_F, axis=1, ddof=1) * np.asarray(N, float)[:, None, None]
    pred = np.einsum("tkk->tk", cov)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pred > 1e-14, var / pred, np.nan)


def chi2_band(seeds: int, level: float = 0.95) -> tuple[float, float]:
    """Interval of ``s^2 / sigma^2`` with probability ``level`` for ``seeds`` Gaussian samples."""
    k = seeds - 1
    return chi2.ppf((1 - level) / 2, k) / k, chi2.ppf((1 + level) / 2, k) / k


def _clt_data(study):
    """(N, particles_F, cov, the reference's /clt group) of a study with a limit reference, else None."""
    cov = getattr(study.pde, "clt_cov", None)
    if cov is None or study.particles_F is None:
        return None
    return np.asarray(study.N), np.asarray(study.particles_F), cov, study.pde.clt


def report_lines(study) -> list[str]:
    """Markdown lines of the CLT section of a :class:`mfpde.io.results.StudyResult` (empty without a limit reference)."""
    data = _clt_data(study)
    if data is None:
        return []
    N, pF, cov, clt = data
    ratio = variance_ratio(pF, N, cov)
    lo, hi = chi2_band(pF.shape[1])
    lines = ["", "## Fluctuations (CLT)", "",
             "sqrt(N) (f_N(x_k, t) - F(x_k, t)) tends to a centred Gaussian with the covariance predicted "
             "from the dynamics linearized around the limit (`/clt/cov`, docs/limit.md). The ratio "
             f"N Var_seeds(f_N(x_k, t)) / predicted variance over every saved time and data point; with "
             f"{pF.shape[1]} seeds, 95% of the ratios should lie in the chi-square band [{lo:.2f}, {hi:.2f}].", "",
             "| N | median ratio | range | within the band |", "|---|---|---|---|"]
    for a, n in enumerate(N):
        r = ratio[a][np.isfinite(ratio[a])]
        if r.size == 0:
            continue
        inside = np.mean((r >= lo) & (r <= hi))
        lines.append(f"| {int(n)} | {np.median(r):.3f} | [{r.min():.3f}, {r.max():.3f}] | {100 * inside:.0f}% |")
    need_group = clt.get("experts_needed", {})
    if "N" in need_group:
        acc, need = np.asarray(need_group["accuracy"]), np.asarray(need_group["N"])
        level = float(np.asarray(need_group["level"]))
        lines += ["", f"Experts needed: the N at which max_k |f_N(x_k, t) - F(x_k, t)| falls below the accuracy "
                  f"with probability {level:g} at each saved time (from the CLT covariance, leading order).", "",
                  "| accuracy | experts N |", "|---|---|"]
        lines += [f"| {e:g} | {int(n)} |" for e, n in zip(acc, need)]
    return lines


def clt_figure(study, out: Path) -> Path | None:
    """Predicted variance against N Var over seeds per data point, and the ratio against time for the
    N of :func:`mfpde.report.figures.shown_n` (the N of the study's other figures)."""
    data = _clt_data(study)
    if data is None:
        return None
    plt = _mpl()

    N, pF, cov, _ = data
    t = np.asarray(study.t)
    pred = np.einsum("tkk->tk", cov)
    var = np.var(pF[-1], axis=0, ddof=1) * N[-1]
    ratio = variance_ratio(pF, N, cov)
    lo, hi = chi2_band(pF.shape[1])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.cm.viridis(np.linspace(0, 1, pred.shape[1]))
    for k in range(pred.shape[1]):
        ax1.plot(t, pred[:, k], "-", color=colors[k], lw=1)
        ax1.plot(t, var[:, k], "o", color=colors[k], ms=3)
    ax1.set_xlabel("time $t$")
    ax1.set_ylabel(r"variance of $\sqrt{N}\, f_N(x_k, t)$")
    ax1.set_title(f"CLT prediction (lines) vs N Var over seeds (dots), N = {int(N[-1])}")
    sel = shown_n(N)
    for c, a in zip(plt.get_cmap("viridis")(np.linspace(0.05, 0.85, max(len(sel), 1))), sel):
        ax2.plot(t, np.nanmedian(ratio[a], axis=1), "o-", ms=3, color=c, label=f"N = {int(N[a])} (median over k)")
    ax2.axhspan(lo, hi, color="0.85", label="95% chi-square band")
    ax2.axhline(1.0, color="k", lw=0.8)
    ax2.set_xlabel("time $t$")
    ax2.set_ylabel(r"$N\,\mathrm{Var}_{seeds}(f_N) \,/\, \Sigma_{kk}$")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)
