"""Red-team edges of issue 19, each one line or a correct run instead of a traceback, an OOM, a hang
or a wrong success: extreme initial densities, 3000-deep arrays, ``~`` in ``--out``, an unstable limit
run, a complex-valued python expert, NaN in compare inputs."""

import shutil

import h5py
import numpy as np
import pytest

from _robust_common import tiny_table, write_case
from mfpde.cli import main


def run(tmp_path, capsys, case, command, *argv, out=None):
    """``main`` in this process: (exit code, stdout, the stderr lines)."""
    code = main([command, str(case), "--out", str(out or tmp_path / "out"), "--quiet", *map(str, argv)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err.strip().splitlines()


def one_line(tmp_path, capsys, table_or_case, command, key, *fragments, argv=()):
    case = table_or_case if not isinstance(table_or_case, dict) else write_case(tmp_path, table_or_case)
    code, _, err = run(tmp_path, capsys, case, command, *argv)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mfpde: error: {key}"), (code, err)
    for fragment in fragments:
        assert fragment in err[0], err[0]
    return err[0]


# ---------------------------------------------------------------- extreme [init] and [dynamics] values


def test_normal_std_1e9_is_the_uniform_density(tmp_path, capsys):
    """The image sum asked for 21 GiB; the density is 1 / (2 pi)^2 (the PDE's min_rho and max)."""
    code, out, err = run(tmp_path, capsys, write_case(tmp_path, tiny_table(init={"kind": "normal", "std": 1e9})),
                         "pde")
    assert code == 0, err
    with h5py.File(tmp_path / "out" / "tiny.pde.h5") as f:
        assert f["observables/min_rho"][0] == pytest.approx((2 * np.pi) ** -2, rel=1e-12)
    from mfpde.model.initial import wrapped_normal

    theta = np.linspace(0, 7, 11)[:, None] * [1.0, 1.0]
    mixed = wrapped_normal(theta, np.zeros(2), np.array([1e9, 0.5]))
    assert np.all(mixed[:, 0] == 1 / (2 * np.pi))
    assert np.array_equal(mixed[:, 1], wrapped_normal(theta[:, 1:], np.zeros(1), np.array([0.5]))[:, 0])


def test_normal_std_1e300_and_mean_1e300(tmp_path, capsys):
    """std = 1e-300: the PDE's projection could not be built (a ValueError traceback); particles can
    sample it.  mean = 1e300: an angle with no value mod 2 pi (ran, on round-off)."""
    one_line(tmp_path, capsys, tiny_table(init={"kind": "normal", "std": 1e-300}), "pde", "init.std",
             "initial projection", "(at most 5e+07)")
    code, _, err = run(tmp_path, capsys, write_case(tmp_path, tiny_table(init={"kind": "normal", "std": 1e-300})),
                       "particles")
    assert code == 0, err
    for command in ("particles", "limit", "pde"):
        one_line(tmp_path, capsys, tiny_table(init={"kind": "normal", "std": 1.0, "mean": 1e300}), command,
                 "init.mean[0]", "is an angle")


def test_deeply_nested_toml_is_one_line(tmp_path, capsys):
    case = tmp_path / "deep.toml"
    text = write_case(tmp_path, tiny_table()).read_text()
    case.write_text(text.replace("[dynamics]", "[dynamics]\nextra = " + "[" * 3000 + "]" * 3000, 1))
    one_line(tmp_path, capsys, case, "pde", str(case), "nested too deep")


# ---------------------------------------------------------------- ~ in --out


def test_tilde_in_out_is_the_home_folder_for_both_files(tmp_path, capsys, monkeypatch):
    """A quoted ``--out '~/x'``: the HDF5 file went to ./~/x and ADIOS2 (which expands ~) aborted the
    run writing the ParaView file to $HOME/x."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(tmp_path, capsys, write_case(tmp_path, tiny_table()), "pde", out="~/x")
    assert code == 0, err
    assert (home / "x" / "tiny.pde.h5").is_file() and (home / "x" / "tiny.pde.bp").is_dir()
    assert f"wrote {home / 'x' / 'tiny.pde.h5'}" in out
    assert not (tmp_path / "~").exists()


# ---------------------------------------------------------------- an unstable limit run


def _limit_table(lr: float) -> dict:
    return tiny_table(dynamics={"t_end": 2.0, "lr": lr},
                      limit={"dt": 0.5 if lr > 1e300 else 0.1, "points": 64, "save_every": 0.5, "clt_points": 16})


def test_unstable_limit_keeps_its_result(tmp_path, capsys):
    """lr = 200, dt = 0.1: the CLT covariance grows to 1e74, experts_needed overflowed int64 and the final
    write failed (a TypeError traceback, no result).  Now the result is written and N says "beyond"
    (and the command line prints it so)."""
    code, out, err = run(tmp_path, capsys, write_case(tmp_path, _limit_table(200.0)), "limit")
    assert code == 0, err
    from mfpde.meshfree.clt import N_BEYOND

    with h5py.File(tmp_path / "out" / "tiny.limit.h5") as f:
        assert f["observables/t"].shape == (5,)
        assert list(f["clt/experts_needed/N"][()]) == [N_BEYOND] * 3
    assert not (tmp_path / "out" / "tiny.limit.partial.h5").exists()
    assert "0.1: N = beyond 9.2e18 (the CLT covariance is unbounded)" in out


def test_a_limit_run_that_overflows_keeps_the_last_good_state(tmp_path, capsys):
    """lr = 1.7e308: the points overflow at the first step; the partial file was rewritten with NaN at
    every saved time and the run ended in a LinAlgError traceback."""
    one_line(tmp_path, capsys, _limit_table(1.7e308), "limit", "limit: the output is not finite at t = 0.5",
             "last good state (t = 0) saved in")
    with h5py.File(tmp_path / "out" / "tiny.limit.partial.h5") as f:
        assert list(f["observables/t"][()]) == [0.0]
        assert np.isfinite(f["observables/F"][()]).all() and np.isfinite(f["limit/state"][()]).all()


# ---------------------------------------------------------------- a complex-valued python expert


def test_complex_python_expert_is_named(tmp_path, capsys):
    """The imaginary part was dropped with a ComplexWarning and the run 'succeeded'."""
    (tmp_path / "cplx.py").write_text(
        "import numpy as np\n"
        "def phi(x, theta):\n"
        "    v = np.cos(x[:, :1] - theta[None, :, 0]) + 1j * np.sin(theta[None, :, 1])\n"
        "    g = np.stack([np.sin(x[:, :1] - theta[None, :, 0]) + 0j,\n"
        "                  1j * np.cos(theta[None, :, 1]) * np.ones((x.shape[0], 1))], axis=-1)\n"
        "    return v, g\n")
    table = tiny_table()
    table["expert"] = {"kind": "python", "function": "cplx:phi", "d": 2, "m": 1}
    one_line(tmp_path, capsys, table, "particles", "expert.function", "cplx:phi returned complex values")


# ---------------------------------------------------------------- NaN in compare inputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    case = write_case(folder, tiny_table())
    for command in ("pde", "particles"):
        assert main([command, str(case), "--out", str(folder), "--quiet"]) == 0
    return folder / "tiny.pde.h5", folder / "tiny.particles.N16.seed0.h5"


@pytest.mark.parametrize("which, dataset", [(1, "particles/theta"), (0, "pde/density"), (1, "observables/F")])
def test_nan_in_compare_inputs_is_refused(tmp_path, capsys, runs, which, dataset):
    """A NaN in a particle file gave NaN-free but wrong metrics (W1 = 0.99); in the PDE density, a
    ValueError traceback."""
    files = [tmp_path / "pde.h5", tmp_path / "particles.h5"]
    for src, dst in zip(runs, files):
        shutil.copy(src, dst)
    with h5py.File(files[which], "r+") as f:
        values = f[dataset][()]
        values.flat[values.size // 2] = np.nan
        f[dataset][...] = values
    code = main(["compare", str(files[0]), str(files[1]), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"mfpde: error: {files[which]}: /{dataset} holds NaN or inf (a failed or damaged "
                                 "run); nothing to compare with it"], err
    assert not (tmp_path / "out").exists()
