"""Errors under mpirun -n 2 end every rank with one line and exit code 2 (issue 11.1), and
--resume of a finished run succeeds there too (11.2).  Each run has a timeout: a hang fails."""

import h5py
import numpy as np
import pytest

from _robust_common import mfpde, one_line_error, tiny_table, unwritable_dir, write_case

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("command", ["pde", "particles", "study"])
def test_unwritable_out_ends_all_ranks(tmp_path, command):
    extra = ["--n", "8,16", "--seeds", "2", "--no-plots"] if command == "study" else []
    proc = mfpde(command, write_case(tmp_path), "--out", unwritable_dir(tmp_path), "--quiet", *extra,
                 ranks=2, timeout=120)
    one_line_error(proc, "cannot write the output there")


def test_overlong_name_ends_all_ranks(tmp_path):
    proc = mfpde("pde", write_case(tmp_path, tiny_table(name="a" * 300)), "--out", tmp_path, "--quiet",
                 ranks=2, timeout=120)
    one_line_error(proc, "name: ", "at most 100 characters")


def test_corrupt_partial_ends_all_ranks(tmp_path):
    (tmp_path / "tiny.pde.partial.h5").write_bytes(b"not an HDF5 file")
    proc = mfpde("pde", write_case(tmp_path), "--out", tmp_path, "--resume", "--quiet", ranks=2, timeout=120)
    one_line_error(proc, "tiny.pde.partial.h5", "not a readable HDF5 file")


@pytest.mark.parametrize("command", ["pde", "particles"])
def test_partial_of_another_case_ends_all_ranks(tmp_path, command):
    first = mfpde(command, write_case(tmp_path), "--out", tmp_path, "--quiet")
    assert first.returncode == 0, first.stderr
    done = next(tmp_path.glob(f"tiny.{command}*.h5"))
    done.rename(done.with_name(done.stem + ".partial.h5"))
    other = write_case(tmp_path, tiny_table(dynamics={"t_end": 0.3}), "other.toml")
    proc = mfpde(command, other, "--out", tmp_path, "--resume", "--quiet", ranks=2, timeout=120)
    one_line_error(proc, "was written for a different case")


RANK_ONE_FAILS = '''
import numpy as np
from mpi4py import MPI
from mfpde.errors import CaseError

def phi(x, theta):
    if MPI.COMM_WORLD.rank == 1 and len(theta) < 16:   # a rank's block, not the first whole-sample check
        raise CaseError("expert.function", "fails on rank 1 only")
    arg = x[:, :1] - theta[None, :, 0]
    return np.cos(arg), np.sin(arg)[:, :, None]
'''


def test_error_on_one_rank_only_ends_the_job(tmp_path):
    """The class, not the examples: an error that only rank 1 meets (no collective
    check can see it coming) still ends both ranks with its line and exit code 2."""
    (tmp_path / "rank_one.py").write_text(RANK_ONE_FAILS)
    table = tiny_table()
    table["expert"] = {"kind": "python", "function": "rank_one:phi", "d": 1}
    table["data"] = {"x": [-2.0, -1.0, 0.5, 1.5], "y": [0.1, 0.2, 0.3, 0.4]}
    proc = mfpde("particles", write_case(tmp_path, table), "--out", tmp_path, "--quiet", ranks=2, timeout=120)
    one_line_error(proc, "expert.function: fails on rank 1 only")


@pytest.mark.parametrize("ranks", [1, 2])
def test_resume_of_a_finished_or_fully_saved_pde_run(tmp_path, ranks):
    case = write_case(tmp_path)
    first = mfpde("pde", case, "--out", tmp_path, "--quiet", ranks=ranks, timeout=180)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "tiny.pde.h5"
    with h5py.File(path) as f:
        ref = {k: f[k][()] for k in ("observables/t", "observables/F", "pde/density")}
        written = f["provenance/written"][()]

    # finished: --resume succeeds and leaves the file as it is
    again = mfpde("pde", case, "--out", tmp_path, "--quiet", "--resume", ranks=ranks, timeout=180)
    assert again.returncode == 0, again.stderr
    with h5py.File(path) as f:
        assert f["provenance/written"][()] == written

    # killed after the last save, before the rename: the partial holds every save
    partial = path.with_name("tiny.pde.partial.h5")
    path.rename(partial)
    with h5py.File(partial, "a") as f:
        f.attrs["complete"] = False
    again = mfpde("pde", case, "--out", tmp_path, "--quiet", "--resume", ranks=ranks, timeout=180)
    assert again.returncode == 0, again.stderr
    assert not partial.exists()
    with h5py.File(path) as f:
        assert f.attrs["complete"]
        for key, value in ref.items():
            np.testing.assert_array_equal(f[key][()], value, err_msg=key)
