"""Shared helpers for the tests: running a script under ``mpirun -n 2``."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py

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


def kill_9_after_saves(proc: subprocess.Popen, partial: Path, saves: int, timeout: float = 300) -> int:
    """Wait until ``partial`` holds ``saves`` saved states, then ``kill -9`` the run.

    Returns the number of saved states the partial file holds after the kill.
    """
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if partial.exists():
            try:
                with h5py.File(partial) as f:
                    if len(f["observables/t"]) >= saves:
                        break
            except OSError:  # being replaced right now
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with h5py.File(partial) as f:
        return len(f["observables/t"])
