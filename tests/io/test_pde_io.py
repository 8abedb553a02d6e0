"""The PDE output path (issue 13): rank 0 writes the density window by window and holds no global state,
a save killed half-way resumes to the file of an uninterrupted run (a run killed inside its first save
starts again), the VTX companion is written at every save, and a partial file of the older whole-file
layout is upgraded and resumed."""

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT, mpirun
from mfpde.io.pde_writer import KILL_IN_SAVE
from mfpde.io.hdf5 import partial_path
from _cli_runs import MFPDE, MPIRUN, run, shrunk


@pytest.mark.mpi
def test_two_ranks_write_by_windows_what_one_rank_writes(tmp_path):
    """tests/mpi/pde_io_ranks.py: the window exchange, rank 0's memory (tracemalloc: measured 6 kB beyond
    rank 1 against 2.5 MB for the old gather-everything path, bound 74 kB), 1 vs 2 ranks (2e-16)."""
    proc = mpirun("pde_io_ranks.py", tmp_path)
    assert "FAIL" not in proc.stdout and proc.stdout.count("ok ") == 7, proc.stdout


def _companion(bp: Path, ranks: int) -> tuple[np.ndarray, list]:
    """(times, density values per step: the blocks of all ranks, ghosts included) of a VTX file."""
    from mfpde.pde import fem  # noqa: F401  (the provider's libraries before adios2's)
    from adios2 import FileReader

    with FileReader(str(bp)) as f:
        steps = f.num_steps()
        times = np.asarray(f.read("step", step_selection=[0, steps])).reshape(-1)
        rho = [np.concatenate([np.asarray(f.read("rho", step_selection=[k, 1], block_id=b)).reshape(-1)
                               for b in range(ranks)]) for k in range(steps)]
    return times, rho


@pytest.mark.mpi
def test_a_save_killed_half_way_resumes_to_the_uninterrupted_file(tmp_path):
    """Rank 0 dies (SIGKILL) inside its 5th save, the density slice on disk and the save not committed:
    --resume drops the torn slice and ends with the file of an uninterrupted run (1e-12), companion too."""
    case = shrunk(tmp_path, "default", 12, 1.0, 0.125)
    cmd = [str(MPIRUN), "-n", "2", *MFPDE, "pde", str(case), "--quiet"]
    ref = Path(run([*cmd, "--out", str(tmp_path / "ref")]))
    out = tmp_path / "killed"
    final = out / ref.name
    env = dict(os.environ, OMP_NUM_THREADS="1", **{KILL_IN_SAVE: "5"})
    killed = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert killed.returncode != 0, killed.stderr[-2000:]
    with h5py.File(partial_path(final)) as f:  # the torn save: 5 density slices, 4 committed states
        assert int(f.attrs["saved"]) == 4 and f["pde/density"].shape[0] == 5 and len(f["observables/t"]) == 4
    assert not final.exists()
    run([*cmd, "--out", str(out), "--resume"])
    with h5py.File(ref) as a, h5py.File(final) as b:
        assert len(a["observables/t"]) == 9 and int(b.attrs["saved"]) == 9
        for key in ("observables/t", "observables/F", "observables/risk", "observables/moments",
                    "observables/mass", "observables/min_rho", "pde/density", "pde/mesh/vertices"):
            np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-12, err_msg=key)
        assert b["pde/steps"][()] == a["pde/steps"][()]
        t, density = b["observables/t"][()], b["pde/density"][()]
    # the companion, rewritten from the file on resume then continued: every saved time, the values of
    # the file's density, and the uninterrupted run's companion exactly
    times, rho = _companion(final.with_suffix(".bp"), 2)
    ref_times, ref_rho = _companion(ref.with_suffix(".bp"), 2)
    np.testing.assert_array_equal(times, t)
    np.testing.assert_array_equal(ref_times, t)
    for k in range(len(t)):
        np.testing.assert_array_equal(np.unique(rho[k]), np.unique(density[k]), err_msg=f"step {k}")
        np.testing.assert_array_equal(rho[k], ref_rho[k], err_msg=f"step {k}")


def test_a_run_killed_inside_its_first_save_starts_again(tmp_path):
    """Killed inside save 1 (no whole state in the partial file): --resume starts from t = 0 and ends
    with the file of an uninterrupted run."""
    case = shrunk(tmp_path, "default", 8, 0.5, 0.25)
    cmd = [*MFPDE, "pde", str(case), "--quiet"]
    ref = Path(run([*cmd, "--out", str(tmp_path / "ref")]))
    final = tmp_path / "killed" / ref.name
    env = dict(os.environ, OMP_NUM_THREADS="1", **{KILL_IN_SAVE: "1"})
    killed = subprocess.run([*cmd, "--out", str(final.parent)], capture_output=True, text=True, timeout=300,
                            env=env, cwd=ROOT)
    assert killed.returncode != 0
    with h5py.File(partial_path(final)) as f:
        assert int(f.attrs["saved"]) == 0 and f["pde/density"].shape[0] == 1
    run([*cmd, "--out", str(final.parent), "--resume"])
    with h5py.File(ref) as a, h5py.File(final) as b:
        assert len(b["observables/t"]) == 3
        for key in ("observables/t", "observables/F", "pde/density"):
            np.testing.assert_array_equal(b[key][()], a[key][()], err_msg=key)


def test_a_partial_file_of_the_whole_file_layout_is_upgraded_and_resumed(tmp_path):
    """A partial file written by an mfpde that rewrote the whole file at every save (fixed-size
    datasets, no 'saved'), holding 2 of 3 states, resumes to the file of an uninterrupted run."""
    from mfpde.io.results import Observables, read_result

    case = shrunk(tmp_path, "default", 8, 0.5, 0.25)
    cmd = [*MFPDE, "pde", str(case), "--quiet"]
    done = Path(run([*cmd, "--out", str(tmp_path / "a")]))
    res = read_result(done)
    o = res.observables
    res.observables = Observables(t=o.t[:2], F=o.F[:2], risk=o.risk[:2], moments=o.moments[:2],
                                  moment_freqs=o.moment_freqs, extra={k: v[:2] for k, v in o.extra.items()})
    res.density = res.density[:2]
    old = partial_path(tmp_path / "b" / done.name)
    old.parent.mkdir()
    res.to_file(old, complete=False)
    with h5py.File(old) as f:
        assert f["pde/density"].maxshape == (2, 64, 16) and "saved" not in f.attrs
    final = Path(run([*cmd, "--out", str(old.parent), "--resume"]))
    with h5py.File(done) as a, h5py.File(final) as b:
        assert int(b.attrs["saved"]) == 3 and b.attrs["complete"] and not old.exists()
        for key in ("observables/t", "observables/F", "observables/risk", "observables/moments",
                    "observables/mass", "observables/min_rho", "pde/density", "pde/mesh/vertices"):
            np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-12, err_msg=key)
