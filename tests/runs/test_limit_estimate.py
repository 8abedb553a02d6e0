"""docs/limit.md, "Accuracy: the error estimate": /limit/error_estimate is max_k |F_M - F_coarse| with a rule
of about half the points and twice the step, "it estimates the error of the coarse run, so it is a
conservative estimate of the error of the main run".  Both claims, on cases/cosine-1d.toml to t = 1.5,
against the PDE at its default settings (DG3, 16 intervals: error ~5e-9 here, from M = 24)."""

import numpy as np
import pytest

from test_limit import cosine_case
from mfpde.runs.limit import run_limit
from mfpde.runs.pde import run_pde


@pytest.fixture(scope="module")
def pde_F():
    pde, _ = run_pde(cosine_case(), write=False, progress=False)
    return pde["F"]


@pytest.mark.parametrize("M", [6, 8])
def test_estimate_is_positive_and_bounds_the_error(pde_F, M):
    """Measured (t = 0, 0.75, 1.5): M = 6 estimate 2.9e-2 3.2e-2 3.7e-2, error 7.6e-6 3.3e-5 1.5e-4;
    M = 8: estimate 2.4e-3 4.3e-3 7.4e-3, error 1.1e-8 2.2e-7 3.3e-6 (the PDE's own error: ~5e-9)."""
    lim, _ = run_limit(cosine_case(), M, write=False, progress=False, clt=False)
    err = np.abs(lim["F"] - pde_F).max(axis=1)
    est = lim["error_estimate"]
    assert est.shape == err.shape == (3,)
    assert np.all(err > 1e-8), err  # the rule's error dominates the PDE's: the comparison means something
    assert np.all(est > 0) and np.all(est >= err), (est, err)


def test_estimate_is_the_error_of_the_coarse_run(pde_F):
    """d = 1 tensor rule: M = 16 has the coarse rule M = 8 (n' = round(n 2^(-1/d))).  The estimate of the
    M = 16 run equals the error of the M = 8 run to 2 % + 1e-8 (measured 1.131e-8 2.160e-7 3.307e-6 against
    1.132e-8 2.178e-7 3.305e-6)."""
    fine, _ = run_limit(cosine_case(), 16, write=False, progress=False, clt=False)
    coarse, _ = run_limit(cosine_case(), 8, write=False, progress=False, clt=False, estimate=False)
    err8 = np.abs(coarse["F"] - pde_F).max(axis=1)
    np.testing.assert_allclose(fine["error_estimate"], err8, rtol=0.02, atol=1e-8)
