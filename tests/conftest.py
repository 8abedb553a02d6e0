"""Shared helpers for the tests: running a script under ``mpirun -n 2``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MPI_DIR = Path(__file__).resolve().parent / "mpi"


def mpirun(script: str, *args, ranks: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``tests/mpi/<script>`` with the venv's mpirun; fail the test with its output if it fails."""
    exe = Path(sys.executable)
    launcher = exe.parent / "mpirun"
    if not launcher.exists():
        pytest.fail(f"mpirun not found next to {exe}: the mpich wheel should provide it")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([str(launcher), "-n", str(ranks), str(exe), str(MPI_DIR / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if proc.returncode != 0:
        pytest.fail(f"mpirun -n {ranks} {script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def killed_after_save(cmd: list[str], saves: int, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``cmd`` with the test hook that makes the run ``kill -9`` itself after its save number ``saves``.

    Fails the test unless the run died of SIGKILL (under mpirun: a non-zero exit).
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", MFPDE_TEST_KILL_AFTER_SAVE=str(saves))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if proc.returncode == 0:
        pytest.fail(f"the run should have been killed after save {saves}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def saved_states(partial: Path) -> int:
    """How many saved states a (partial) result file holds."""
    from mfpde.io.results import read_result

    return len(read_result(partial).observables.t)


#: a case small enough for every command in seconds (d = 1, a few cells, particles and points)
TINY_CASE = {
    "name": "tiny",
    "expert": {"kind": "cosine", "d": 1},
    "data": {"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.3, 0.1]},
    "dynamics": {"t_end": 0.2},
    "pde": {"n": 6, "degree": 1, "save_every": 0.1},
    "particles": {"n": 8, "dt": 0.05, "save_every": 0.1},
    "limit": {"points": 8, "dt": 0.05, "save_every": 0.1, "clt_points": 8},
    "study": {"n": [4, 8], "seeds": 2},
    "regimes": {"n": [4, 8], "seeds": 2},
}
