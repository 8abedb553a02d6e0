"""Faults of issue 20 (interrupts, a full disk, the ParaView companion, particle saves, error lines,
the moving mesh's freeze): each test fails on 488d6c4 and passes now."""

import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from _robust_common import MFPDE, MPIRUN, mfpde, one_line_error, tiny_table, write_case
from conftest import ROOT

RESUME_HINT = "mfpde: interrupted (the last saved state can be resumed with --resume)"


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()]


def _saved(partial: Path) -> int:
    """Whole saved states of a partial file (0 while it is not there or being written)."""
    try:
        with h5py.File(partial, "r", locking=False) as f:
            return int(f.attrs.get("saved", len(f["observables/t"])))
    except (OSError, KeyError):
        return 0


def _wait(condition, proc, timeout=180, what="the run"):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"{what} ended early: {proc.returncode}"
        assert time.time() < deadline, f"{what}: timed out"
        time.sleep(0.05)


def _rank_pids(root: int) -> dict[int, int]:
    """rank -> pid of the MPI ranks below process ``root`` (PMI_RANK of their environment)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    ranks, todo = {}, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        rank = next((int(e.split(b"=", 1)[1]) for e in env if e.startswith(b"PMI_RANK=")), None)
        if rank is not None and pid != root:
            ranks[rank] = pid
    return ranks


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background pytest ignores SIGINT, and children inherit it


def _start(*args, ranks=1, **env):
    cmd = ([str(MPIRUN), "-n", str(ranks)] if ranks > 1 else []) + MFPDE + [str(a) for a in args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **env),
                            preexec_fn=_default_sigint, start_new_session=True)


# ---------------------------------------------------------------- 1. SIGINT to one rank


@pytest.mark.parametrize("rank", [0, 1])
def test_sigint_to_one_rank_ends_the_job_with_a_resumable_partial(tmp_path, rank):
    case = write_case(tmp_path, tiny_table(dynamics={"t_end": 10.0}))
    proc = _start("pde", case, "--out", tmp_path, "--quiet", ranks=2)
    partial = tmp_path / "tiny.pde.partial.h5"
    try:
        _wait(lambda: _saved(partial) >= 2, proc)
        os.kill(_rank_pids(proc.pid)[rank], signal.SIGINT)
        t0 = time.time()
        _, err = proc.communicate(timeout=60)  # before the fix: still running after 60-90 s
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert _lines(err) == [RESUME_HINT], err[-2000:]
    assert took < 30, took
    saved = _saved(partial)
    assert saved >= 2
    if rank == 1:  # the partial continues (one rank, to be quick)
        again = mfpde("pde", case, "--out", tmp_path, "--quiet", "--resume", env={"MFPDE_TEST_KILL_AFTER_SAVE":
                                                                                   str(saved + 1)})
        assert again.returncode != 0 and _saved(partial) == saved + 1, again.stderr[-2000:]


# ---------------------------------------------------------------- 5. one line per error under mpirun

EXPERT = '''
import numpy as np
from mpi4py import MPI

def phi(x, theta):
    if MPI.COMM_WORLD.rank in RANKS:
        raise ERROR
    a = x[:, :1] - theta[None, :, 0]
    return np.sin(a) * np.cos(theta[None, :, 1]), np.stack([-np.cos(a) * np.cos(theta[None, :, 1]),
                                                           -np.sin(a) * np.sin(theta[None, :, 1])], axis=-1)
'''


def _python_expert_case(tmp_path, ranks, error):
    (tmp_path / "faulty_expert.py").write_text(EXPERT.replace("RANKS", repr(ranks)).replace("ERROR", error))
    table = tiny_table()
    table["expert"] = {"kind": "python", "function": "faulty_expert:phi", "d": 2, "m": 1}
    return write_case(tmp_path, table)


def test_keyboard_interrupt_in_user_code_on_one_rank_is_said(tmp_path):
    case = _python_expert_case(tmp_path, (1,), "KeyboardInterrupt")
    proc = mfpde("particles", case, "--out", tmp_path, "--quiet", ranks=2, timeout=120)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-2000:])
    assert _lines(proc.stderr) == [RESUME_HINT], proc.stderr[-2000:]  # before: empty stderr


def test_an_error_on_every_rank_is_one_line(tmp_path):
    case = _python_expert_case(tmp_path, (0, 1), "ValueError('bad theta')")
    proc = mfpde("particles", case, "--out", tmp_path, "--quiet", ranks=2, timeout=120)
    one_line_error(proc, "faulty_expert:phi raised ValueError: bad theta")  # before: the line twice, on one line


# ---------------------------------------------------------------- 7. the interrupt test with SIGINT ignored


def test_robust_runs_children_get_sigint_even_when_pytest_ignores_it(tmp_path):
    """``tests/test_robust_runs._start`` resets SIGINT in the child: a pytest run as a background job
    (SIGINT ignored, and inherited) must not make the interrupt test fail."""
    import test_robust_runs

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = test_robust_runs._start("--version")
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        ignored = int(next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                           if line.startswith("SigIgn:")).split()[1], 16)
    finally:
        proc.communicate(timeout=60)
    assert not ignored & (1 << (signal.SIGINT - 1))


# ---------------------------------------------------------------- 6. the moving mesh's freeze


def _freezing_case(tmp_path):
    """A Lagrangian run whose mesh stops moving at t ~ 2.0, in about a second."""
    return write_case(tmp_path, tiny_table(
        dynamics={"t_end": 3.0, "lr": 4.0}, init={"kind": "box", "lower": [-0.6, -0.6], "upper": [0.6, 0.6]},
        pde={"n": 6, "degree": 1, "cell": "box", "mesh_motion": "lagrangian", "save_every": 0.5}))


def test_mesh_freeze_is_said_with_quiet_and_stored_also_across_a_resume(tmp_path):
    from conftest import killed_after_save

    case = _freezing_case(tmp_path)
    whole = mfpde("pde", case, "--out", tmp_path / "whole", "--quiet")
    assert whole.returncode == 0, whole.stderr[-2000:]
    with h5py.File(tmp_path / "whole" / "tiny.pde.h5") as f:
        frozen = f["pde/mesh_frozen_at"][()]  # before: not stored
    assert 1.9 < frozen < 2.1  # measured: 2.0 (the first step after the save at t = 2)
    assert f"the Lagrangian mesh stopped moving at t = {frozen:.4g} " in whole.stderr, whole.stderr  # before: silent
    # killed after the save at t = 2.5 (the mesh frozen before it), then resumed: the same time stored
    killed_after_save(MFPDE + ["pde", str(case), "--out", str(tmp_path / "cut"), "--quiet"], saves=6)
    again = mfpde("pde", case, "--out", tmp_path / "cut", "--quiet", "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    with h5py.File(tmp_path / "cut" / "tiny.pde.h5") as f, h5py.File(tmp_path / "whole" / "tiny.pde.h5") as g:
        assert f["pde/mesh_frozen_at"][()] == frozen
        # (a moving mesh is restored to round-off, as in test_moving_mesh)
        np.testing.assert_allclose(f["pde/density"][()], g["pde/density"][()], rtol=0, atol=1e-12)
    from mfpde.io.results import PDEResult

    assert PDEResult.from_file(tmp_path / "cut" / "tiny.pde.h5").mesh_frozen_at == frozen
