"""The Python API in a notebook: runs return the typed result and still unpack as (observables, path);
the long silent phases (the limit's error estimate and CLT, compare) report progress."""

import numpy as np
import pytest

from conftest import TINY_CASE

from mfpde.config.case import case_from_dict
from mfpde.errors import ResultFileError
from mfpde.io.results import LimitResult, ParticleResult, PDEResult
from mfpde.runs import run_limit, run_particles, run_pde
from mfpde.runs.compare import compare_files

TABLE = {**TINY_CASE, "name": "api"}


@pytest.fixture(scope="module")
def case():
    return case_from_dict(TABLE)


def test_run_pde_is_the_result_and_the_pair(case, tmp_path):
    run = run_pde(case, out_dir=tmp_path, progress=False, companion=False)
    obs, path = run  # the old interface
    assert path == tmp_path / "api.pde.h5" and run[1] == path and run.path == path
    np.testing.assert_array_equal(obs["t"], [0.0, 0.1, 0.2])
    assert isinstance(run.result, PDEResult) and run.result is run.result  # read once
    assert run.density.shape == (3, 6, 2)  # the density, which the dict never had
    np.testing.assert_allclose(run.observables["F"], run.result.observables.F)
    assert len(repr(run)) < 200


def test_run_particles_and_limit_return_their_results(case, tmp_path):
    run = run_particles(case, 8, 1, out_dir=tmp_path, progress=False)
    assert isinstance(run.result, ParticleResult) and run.theta.shape == (3, 8, 1) and run.N == 8
    np.testing.assert_array_equal(run[0]["theta"], run.theta)
    lim = run_limit(case, out_dir=tmp_path, progress=False)
    assert isinstance(lim.result, LimitResult) and lim.weights.shape == (8,)
    memory = run_particles(case, 8, 1, write=False, progress=False)
    assert memory.path is None and memory[0]["F"].shape == (3, 3)
    with pytest.raises(ResultFileError, match="write=False"):
        memory.result


def test_the_limit_and_compare_report_their_silent_phases(case, tmp_path, capsys):
    run_limit(case, out_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "limit error estimate" in err and "limit clt" in err
    for desc in ("limit error estimate", "limit clt"):
        last = [line for line in err.splitlines() if line.startswith(desc)][-1]
        assert "100%" in last, last
    _, part = run_particles(case, 8, 0, out_dir=tmp_path, progress=False)
    compare_files(tmp_path / "api.limit.h5", [part], out_dir=tmp_path)
    err = capsys.readouterr().err
    last = [line for line in err.splitlines() if line.startswith("compare 1 files")][-1]
    assert "100%" in last and "times=3/3" in last, last


def test_the_public_functions_document_parameters_and_returns():
    """Numpydoc sections on the API a notebook calls: every parameter named under Parameters."""
    import inspect

    from mfpde.config.case import case_from_dict, load_case
    from mfpde.io.results import read_result
    from mfpde.runs.regimes import run_regimes
    from mfpde.runs.study import run_study

    for fn in (run_pde, run_particles, run_limit, run_study, run_regimes, load_case, case_from_dict, read_result,
               compare_files):
        doc = inspect.getdoc(fn)
        assert "Parameters\n----------" in doc and "Returns\n-------" in doc, fn.__name__
        params = doc.split("Parameters\n----------")[1].split("Returns\n-------")[0]
        for name in inspect.signature(fn).parameters:
            assert f"\n{name} : " in "\n" + params or f"\n{name}\n" in "\n" + params, (fn.__name__, name)
