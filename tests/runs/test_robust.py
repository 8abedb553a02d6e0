"""Bad and extreme input is refused in one line before any work (issue 11, items 3-7):
resume compatibility, unstable particle steps, work that cannot fit, one-line errors,
inputs that were accepted but wrong."""

import h5py
import numpy as np
import pytest

from _robust_common import mfpde, tiny_table, write_case
from mfpde.config.case import case_from_dict, dumps_toml
from mfpde.cli import main
from mfpde.config.budgets import check_particle_budget, check_pde_budget


def run(tmp_path, capsys, table_or_file, *argv, command="pde", out=None):
    """``main`` in this process: (exit code, the stderr lines)."""
    case = table_or_file if not isinstance(table_or_file, dict) else write_case(tmp_path, table_or_file)
    code = main([command, str(case), "--out", str(out or tmp_path / "out"), "--quiet", *map(str, argv)])
    return code, capsys.readouterr().err.strip().splitlines()


def refused(tmp_path, capsys, table, *argv, command="pde", key: str):
    code, err = run(tmp_path, capsys, table, *argv, command=command)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mfpde: error: {key}"), (code, err)
    assert not list((tmp_path / "out").glob("*.h5")), "refused before any work"
    return err[0]


# ---------------------------------------------------------------- 3. resume compatibility


@pytest.mark.parametrize("change, argv, key", [
    ({}, ["--n", 7], "pde.n"),
    ({"pde": {"degree": 2}}, [], "pde.degree"),
    ({"pde": {"cell": "simplex"}}, [], "pde.cell"),  # the default cell is "box"
    ({"pde": {"time_scheme": "ssprk3"}}, [], "pde.time_scheme"),
    ({"pde": {"cfl": 0.1}}, [], "pde.cfl"),
    ({"pde": {"save_every": 0.05}}, [], "pde.save_every"),
])
def test_pde_resume_refuses_other_settings(tmp_path, capsys, change, argv, key):
    assert run(tmp_path, capsys, tiny_table())[0] == 0
    part = tmp_path / "out" / "tiny.pde.h5"
    part.rename(part.with_name("tiny.pde.partial.h5"))
    code, err = run(tmp_path, capsys, tiny_table(**change), "--resume", *argv)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mfpde: error: {key}: tiny.pde.partial.h5 was written"), err


@pytest.mark.parametrize("change, key", [({"dt": 0.02}, "particles.dt"), ({"integrator": "euler"}, "particles.integrator"),
                                         ({"save_every": 0.05}, "particles.save_every")])
def test_particles_resume_refuses_other_settings(tmp_path, capsys, change, key):
    assert run(tmp_path, capsys, tiny_table(), command="particles")[0] == 0
    code, err = run(tmp_path, capsys, tiny_table(particles=change), "--resume", command="particles")
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mfpde: error: {key}: "), err
    code, _ = run(tmp_path, capsys, tiny_table(), "--resume", command="particles")
    assert code == 0  # the same settings resume (here: a finished run, left as it is)


def test_partial_without_t_is_refused(tmp_path, capsys):
    assert run(tmp_path, capsys, tiny_table(), command="particles")[0] == 0
    path = tmp_path / "out" / "tiny.particles.N16.seed0.h5"
    with h5py.File(path, "a") as f:
        del f["observables/t"]
    path.rename(path.with_name("tiny.particles.N16.seed0.partial.h5"))
    code, err = run(tmp_path, capsys, tiny_table(), "--resume", command="particles")
    assert code == 2 and len(err) == 1 and "/observables/t is missing" in err[0], err


# ---------------------------------------------------------------- 4. unstable particle steps


@pytest.mark.parametrize("lr, dt", [(1e6, 0.01), (50.0, 1.0)])
def test_unstable_step_stops_with_last_good_state(tmp_path, capsys, lr, dt):
    table = tiny_table(dynamics={"lr": lr, "t_end": 4.0}, particles={"dt": dt, "save_every": 1.0})
    code, err = run(tmp_path, capsys, table, command="particles")
    assert code == 2 and len(err) == 1 and "the risk rose" in err[0] and "reduce particles.dt" in err[0], err
    with h5py.File(tmp_path / "out" / "tiny.particles.N16.seed0.partial.h5") as f:
        risk, t = f["observables/risk"][()], f["observables/t"][()]
    assert len(t) == len(set(t)) and t[-1] < 4.0
    assert np.all(np.diff(risk) <= 1e-12 * risk[0]), risk  # only good states were saved
    assert not (tmp_path / "out" / "tiny.particles.N16.seed0.h5").exists()


NAN_LATER = '''
import numpy as np
calls = [0]

def phi(x, theta):
    calls[0] += 1
    arg = x[:, :1] - theta[None, :, 0]
    value, grad = np.cos(arg), np.sin(arg)[:, :, None]
    return (value * np.nan if calls[0] > 12 else value), grad
'''


def test_expert_nan_is_not_blamed_on_the_step(tmp_path, capsys):
    (tmp_path / "nan_later.py").write_text(NAN_LATER)
    table = tiny_table()
    table["expert"] = {"kind": "python", "function": "nan_later:phi", "d": 1}
    table["data"] = {"x": [-2.0, -1.0, 0.5, 1.5], "y": [0.1, 0.2, 0.3, 0.4]}
    code, err = run(tmp_path, capsys, table, command="particles")
    assert code == 2 and len(err) == 1, err
    # the expert wrapper catches it first and names the user's function, not the step
    assert "nan_later:phi returned non-finite values" in err[0] and "particles.dt" not in err[0], err


# ---------------------------------------------------------------- 5. work that cannot fit


def _cosine12(**sections) -> dict:
    table = tiny_table(**sections)
    table["expert"] = {"kind": "cosine", "d": 12}
    table["data"] = {"x": [[0.1] * 12, [0.2] * 12], "y": [0.1, 0.2]}
    return table


@pytest.mark.parametrize("table, argv, command, key, text", [
    (tiny_table(pde={"n": 10000}), [], "pde", "pde.n", "GB of memory"),
    (tiny_table(), ["--n", 2**30], "particles", "particles.n", "GB of memory"),
    (tiny_table(particles={"save_every": 1e-12}), [], "particles", "particles.save_every", "saved states"),
    (tiny_table(pde={"save_every": 1e-12}), [], "pde", "pde.save_every", "saved states"),
    (tiny_table(dynamics={"t_end": 1e9}), [], "particles", "particles.save_every", "saved states"),
    (tiny_table(pde={"moment_max": 300, "n": 64}), [], "pde", "pde.n", "GB of memory"),
    # d = 12: the default moment set is |w|_1 <= 2 (156 moments, tests/config/test_budgets.py); a large moment_max
    # is still refused (the box |w|_inf <= 2 of 1.22e+08 moments was refused at the default)
    (dict(_cosine12(), pde={"moment_max": 40}), [], "particles", "pde.moment_max", "8.98e+13 Fourier moments"),
    (tiny_table(particles={"dt": 1e-300}), [], "particles", "particles.dt", "steps"),
])
def test_work_that_cannot_fit_is_refused_with_the_estimate(tmp_path, capsys, table, argv, command, key, text):
    line = refused(tmp_path, capsys, table, *argv, command=command, key=key)
    assert text in line


def test_theta_index_too_large(tmp_path, capsys):
    table = tiny_table()
    table["expert"]["gates"][1][1] = "theta[99999999999]"
    refused(tmp_path, capsys, table, key="expert.gates[1]")


def test_the_default_case_fits_and_the_estimate_scales(tmp_path):
    case = case_from_dict(tiny_table(pde={"n": 64}))
    check_pde_budget(case, available=10**9)
    check_particle_budget(case, 16384, available=10**9)
    case.pde.n = 640  # 100 x the cells: the estimate grows with them
    with pytest.raises(Exception, match="pde.n"):
        check_pde_budget(case, available=10**9)


# ---------------------------------------------------------------- 6. one line, not a traceback


@pytest.mark.parametrize("table, key", [
    (tiny_table(dynamics={"t_end": 10**400}), "dynamics.t_end"),
    (tiny_table(pde={"n": 10**400}), "pde.n"),
    (tiny_table(data={"x": [10**400, 1.0, 2.0, 3.0]}), "data.x"),
    (tiny_table(dynamics={"tau": 0.01}, pde={"petsc_options": {"ksp_type": "nonsense"}}),
     "pde.petsc_options.ksp_type"),
    (tiny_table(pde={"petsc_options": {"ksp_rtol": "abc"}}), "pde.petsc_options.ksp_rtol"),
    (tiny_table(pde={"petsc_options": {"ksp_type": ["cg"]}}), "pde.petsc_options.ksp_type"),
    (tiny_table(name="a\0b"), "name"),
    (tiny_table(name="a\nb"), "name"),
    (tiny_table(name="..\\..\\x"), "name"),
    (tiny_table(name="../x"), "name"),
    (tiny_table(name="a" * 101), "name"),
])
def test_bad_values_are_one_line(tmp_path, capsys, table, key):
    refused(tmp_path, capsys, table, key=key)


def test_huge_integer_beyond_python_limit(tmp_path, capsys):
    path = tmp_path / "case.toml"
    path.write_text(dumps_toml(tiny_table()).replace("t_end = 0.2", "t_end = 1" + "0" * 5000))
    code, err = run(tmp_path, capsys, path)
    assert code == 2 and len(err) == 1 and "not valid TOML" in err[0], err


@pytest.mark.parametrize("argv, text", [(["--n", "8"], "study.n: needs at least two distinct values"),
                                        (["--n", "8,8"], "study.n: needs at least two distinct values"),
                                        (["--n", "8,16", "--seeds", "1"], "study.seeds: must be >= 2")])
def test_study_refuses_a_fit_it_cannot_make_before_the_pde(tmp_path, argv, text):
    proc = mfpde("study", write_case(tmp_path), "--out", tmp_path / "out", "--quiet", "--no-plots", *argv)
    assert proc.returncode == 2 and text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


def test_compare_with_missing_groups_or_the_same_file_twice(tmp_path, capsys):
    assert run(tmp_path, capsys, tiny_table())[0] == 0
    assert run(tmp_path, capsys, tiny_table(), command="particles")[0] == 0
    pde, part = tmp_path / "out" / "tiny.pde.h5", tmp_path / "out" / "tiny.particles.N16.seed0.h5"
    assert main(["compare", str(pde), str(part), str(part)]) == 2
    assert "given twice" in capsys.readouterr().err
    with h5py.File(part, "a") as f:
        del f["observables"]
    assert main(["compare", str(pde), str(part)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/observables/t is missing" in err[0], err


# ---------------------------------------------------------------- 7. accepted but wrong


def test_accepted_but_wrong_is_refused(tmp_path, capsys):
    refused(tmp_path, capsys, tiny_table(data={"x": [True, False, 1.0, 2.0]}), key="data.x")
    refused(tmp_path, capsys, tiny_table(output={"directory": 5}), key="output.directory")
    mesh = tmp_path / "mesh.xdmf"
    mesh.write_text("")
    table = tiny_table()
    del table["pde"]["n"]
    table["pde"]["mesh"] = "mesh.xdmf"
    refused(tmp_path, capsys, table, "--n", 8, key="pde.n: the mesh comes from pde.mesh")
    table["pde"]["n"] = 6
    refused(tmp_path, capsys, table, key="pde.n")


def test_one_lower_limit_for_pde_n(tmp_path, capsys):
    line = refused(tmp_path, capsys, tiny_table(), "--n", 2, key="pde.n")
    assert line == refused(tmp_path, capsys, tiny_table(pde={"n": 2}), key="pde.n") == "mfpde: error: pde.n: must be >= 3, got 2"
    code, _ = run(tmp_path, capsys, tiny_table(pde={"n": 3, "save_every": 0.2}))
    assert code == 0  # the limit itself runs


def test_a_converging_run_is_not_taken_for_an_unstable_one(tmp_path, capsys):
    """Down to round-off (risk 1e-26) the risk watch of tau = 0 stays quiet."""
    from conftest import ROOT

    path = tmp_path / "cosine.toml"
    text = (ROOT / "cases" / "cosine-1d.toml").read_text()
    path.write_text(text.replace("t_end = 6.0", "t_end = 60.0"))
    code, err = run(tmp_path, capsys, path, "--n", 64, command="particles")
    assert code == 0, err
    with h5py.File(tmp_path / "out" / "cosine-1d.particles.N64.seed0.h5") as f:
        assert f["observables/risk"][-1] < 1e-20 * f["observables/risk"][0]
