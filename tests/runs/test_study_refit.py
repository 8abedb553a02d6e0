"""The study's fits recomputed from the stored per-seed metrics: /study/fit is the rate of sup over the
saved times (nanmax: the Wasserstein distance is stored at t = 0 and t_end only), /study/fit_t_end the
rate at the last saved time, each the least-squares fit of log(mean over seeds) against log N."""

import h5py
import numpy as np

from mfpde.analysis.rates import METRIC_NAMES, fit_rate
from test_study import cheap_case
from mfpde.runs.study import run_study


def test_stored_fits_are_refitted_from_the_stored_metrics(tmp_path):
    case = cheap_case()
    out = run_study(case, ns=[16, 64, 256], n_seeds=3, out_dir=tmp_path, progress=False, plots=False)
    with h5py.File(out["path"]) as f:
        N = f["study/N"][()]
        T = len(f["study/t"])
        for name in METRIC_NAMES:
            E = f[f"study/metrics/{name}"][()]
            assert E.shape == (3, 3, T)
            sup, end = np.nanmax(E, axis=2), E[:, :, -1]
            assert np.all(np.isfinite(end)) and np.all(sup >= end)
            if name != "wasserstein":  # the sup is not the mean: the check below can fail
                assert np.abs(sup / np.nanmean(E, axis=2) - 1).max() > 1e-2, name
            for group, errors in (("fit", sup), ("fit_t_end", end)):
                ref = fit_rate(N, errors)
                g = f[f"study/{group}/{name}"]
                np.testing.assert_allclose(g["slope"][()], ref["slope"], rtol=1e-12, err_msg=f"{group}/{name}")
                np.testing.assert_allclose(g["intercept"][()], ref["intercept"], rtol=1e-12)
                np.testing.assert_allclose(g["ci"][()], ref["ci"], rtol=1e-12)
