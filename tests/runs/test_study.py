"""Compare and study (DESIGN section 5): rates that can fail, and refusals."""

import tomllib

import h5py
import numpy as np
import pytest

from conftest import mpirun
from mfpde.config.case import case_from_dict, dumps_toml
from mfpde.cli import main
from mfpde.analysis.rates import METRIC_NAMES as METRICS
from mfpde.runs.study import run_study

CHEAP = {
    "name": "cheap-1d",
    "expert": {"kind": "cosine", "d": 1},
    "data": {"x": [-2.0, -1.0, 0.0, 1.0, 2.0], "teacher_theta": [[0.5], [2.5]]},
    "init": {"kind": "uniform"},
    "dynamics": {"t_end": 1.0, "lr": 1.0},
    "pde": {"n": 64, "save_every": 0.25},
    "particles": {"dt": 0.02, "save_every": 0.125},
}


def cheap_case(**changes):
    table = tomllib.loads(dumps_toml(CHEAP))
    for section, values in changes.items():
        table[section].update(values)
    return case_from_dict(table)


def test_study_fits_the_observable_rate(tmp_path):
    """48 seeds make the bootstrap interval informative (width ~0.1): the theory slope -1/2 must lie in it.

    Measured: observable_error sup_t slope -0.467, CI [-0.516, -0.417]; every metric's
    interval contains its theory slope (-1/2 for all in d = 1).
    """
    case = cheap_case()
    out = run_study(case, ns=[64, 256, 1024, 4096], n_seeds=48, out_dir=tmp_path, progress=False, plots=False)
    for name in METRICS:
        for fits in (out["fits"], out["fits_t_end"]):
            f = fits[name]
            assert f.theory_slope == -0.5 and f.ci[0] <= -0.5 <= f.ci[1], (name, f.slope, f.ci)
            assert f.ci[0] < f.slope < f.ci[1] and f.ci[1] - f.ci[0] < 0.15, (name, f.ci)
    with h5py.File(out["path"]) as f:
        assert f.attrs["kind"] == "study"
        assert list(f["study/N"][()]) == [64, 256, 1024, 4096] and len(f["study/seeds"]) == 48
        T = len(f["study/t"])
        for name in METRICS:
            assert f[f"study/metrics/{name}"].shape == (4, 48, T)
            assert f[f"study/fit/{name}/ci"].shape == (2,)
            assert np.isfinite(f[f"study/fit/{name}/slope"][()])
        # the PDE part is copied in: the file is self-contained
        assert f["pde/density"].shape[0] == T and "observables/mass" in f


def test_compare_files_and_refusal_of_other_cases(tmp_path, capsys):
    a = tmp_path / "a.toml"
    a.write_text(dumps_toml(CHEAP))
    assert main(["pde", str(a), "--out", str(tmp_path), "--quiet"]) == 0
    for seed in (0, 1):
        assert main(["particles", str(a), "--n", "300", "--seed", str(seed), "--out", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    pde = tmp_path / "cheap-1d.pde.h5"
    parts = [tmp_path / f"cheap-1d.particles.N300.seed{s}.h5" for s in (0, 1)]
    assert main(["compare", str(pde), *map(str, parts), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "observable_error=" in printed
    with h5py.File(tmp_path / "cheap-1d.compare.h5") as f, h5py.File(pde) as p, h5py.File(parts[1]) as q:
        err = f["compare/metrics/observable_error"][()]
        assert err.shape == (2, len(p["observables/t"]))
        # the particles save twice as often (dt 0.125): compare uses the common times
        assert len(q["observables/t"]) == 2 * len(p["observables/t"]) - 1
        direct = np.max(np.abs(q["observables/F"][::2] - p["observables/F"][()]), axis=1)
        np.testing.assert_allclose(err[1], direct, rtol=0, atol=1e-15)
        assert np.all(np.isfinite(f["compare/metrics/wasserstein"][()]))

    # a particle file of another case (different teacher) is refused, one line
    other = dict(CHEAP, data={"x": CHEAP["data"]["x"], "teacher_theta": [[1.0], [3.0]]})
    b = tmp_path / "b.toml"
    b.write_text(dumps_toml(other))
    assert main(["particles", str(b), "--n", "20", "--out", str(tmp_path / "other"), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["compare", str(pde), str(tmp_path / "other" / "cheap-1d.particles.N20.seed0.h5")])
    err = capsys.readouterr().err
    assert code == 2 and "different cases" in err and len(err.strip().splitlines()) == 1


def test_compare_refuses_a_missing_or_wrong_file(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope.h5"), str(tmp_path / "nope2.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    bogus = tmp_path / "bogus.h5"
    bogus.write_text("not hdf5")
    assert main(["compare", str(bogus), str(bogus)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err


@pytest.mark.mpi
def test_d2_study_on_two_ranks_equals_one_rank(tmp_path):
    """mpirun -n 2: the d = 2 study (grid W1, particle runs dealt round-robin) equals a one-rank study."""
    out = mpirun("study_ranks.py", tmp_path)
    assert "wasserstein: max |2 ranks - 1 rank|" in out.stdout
