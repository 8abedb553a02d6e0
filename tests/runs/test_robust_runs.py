"""Runs as processes (issue 11, items 8-10): two runs on one output, study --resume,
Ctrl-C, warnings and a failure at t = 0."""

import os
import signal
import subprocess
import time

import h5py
import numpy as np

from _robust_common import MFPDE, mfpde, one_line_error, tiny_table, write_case
from conftest import ROOT


def _saves(path) -> int:
    """Saved states in a partial file (0 while there is none)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs.get("saved", len(f["observables/t"])))
    except (OSError, KeyError):
        return 0


def _wait_for(path, proc, timeout=120, saves=1):
    """Until ``path`` holds ``saves`` saved states: a condition, not a guessed sleep."""
    deadline = time.time() + timeout
    while _saves(path) < saves and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert _saves(path) >= saves, "the first run never started writing"


def _default_sigint():
    """In the child: SIGINT as a terminal gives it (a pytest run as a background job ignores SIGINT,
    and a child inherits that: its Ctrl-C would never come)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args, stderr=subprocess.PIPE):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(MFPDE + [str(a) for a in args], stdout=subprocess.PIPE, stderr=stderr,
                            text=True, env=env, cwd=ROOT, preexec_fn=_default_sigint)


# ---------------------------------------------------------------- 8. concurrency


def test_two_runs_on_one_output_one_wins_the_other_is_refused(tmp_path):
    case = write_case(tmp_path, tiny_table(dynamics={"t_end": 2.0}, particles={"dt": 0.0005, "n": 2000}))
    out = tmp_path / "out"
    first = _start("particles", case, "--out", out, "--quiet")
    try:
        _wait_for(out / "tiny.particles.N2000.seed0.partial.h5", first)
        second = mfpde("particles", case, "--out", out, "--quiet", timeout=120)
        one_line_error(second, "another mfpde run is writing it", "tiny.particles.N2000.seed0.lock")
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        first.kill()
        first.wait()
    with h5py.File(out / "tiny.particles.N2000.seed0.h5") as f:
        assert f.attrs["complete"] and f["observables/t"][-1] == 2.0
    assert sorted(p.name for p in out.iterdir()) == ["tiny.particles.N2000.seed0.h5"]  # no .tmp, no .lock
    again = mfpde("particles", case, "--out", out, "--quiet", "--resume")  # the lock was released
    assert again.returncode == 0, again.stderr


# ---------------------------------------------------------------- 9. study --resume


def test_study_resume_reuses_finished_runs_and_ends_with_the_same_result(tmp_path):
    case = write_case(tmp_path)
    out = tmp_path / "out"
    args = ("study", case, "--out", out, "--n", "8,16", "--seeds", "2", "--quiet", "--no-plots")
    first = mfpde(*args)
    assert first.returncode == 0, first.stderr
    study = out / "tiny.study.h5"
    with h5py.File(study) as f:
        ref = {k: f[f"study/metrics/{k}"][()] for k in f["study/metrics"]}

    def written(path):
        with h5py.File(path) as f:
            return f["provenance/written"][()], f["provenance/wall_time_s"][()]

    kept = {p: written(p) for p in out.glob("tiny.particles.*.h5")}
    assert len(kept) == 4 and (out / "tiny.pde.h5").exists()
    # a kill -9 in the middle: the study file and one particle run not written, another one half done
    study.unlink()
    (out / "tiny.particles.N16.seed1.h5").unlink()
    half = out / "tiny.particles.N8.seed1.h5"
    with h5py.File(half, "a") as f:
        f.attrs["complete"] = False
    half.rename(half.with_name("tiny.particles.N8.seed1.partial.h5"))
    del kept[out / "tiny.particles.N16.seed1.h5"], kept[half]
    pde_written = written(out / "tiny.pde.h5")

    again = mfpde(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert written(out / "tiny.pde.h5") == pde_written
    for path, stamp in kept.items():
        assert written(path) == stamp, f"{path.name} was recomputed"
    with h5py.File(study) as f:
        for k, v in ref.items():
            np.testing.assert_allclose(f[f"study/metrics/{k}"][()], v, rtol=0, atol=1e-12, err_msg=k)


# ---------------------------------------------------------------- 10. small things


def test_interrupt_message_on_its_own_line(tmp_path):
    case = write_case(tmp_path, tiny_table(dynamics={"t_end": 2.0}, particles={"dt": 0.0005, "n": 2000}))
    log = tmp_path / "stderr.txt"
    with open(log, "w") as sink:
        proc = _start("particles", case, "--out", tmp_path, stderr=sink)  # with the progress bar
        _wait_for(tmp_path / "tiny.particles.N2000.seed0.partial.h5", proc, saves=2)  # in the loop, bar open
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    err = log.read_text().replace("\r", "\n")
    assert proc.returncode == 130, err
    last = err.rstrip("\n").split("\n")[-1]  # text mode turns the bar's "\r" into "\n"
    assert last == "mfpde: interrupted (the last saved state can be resumed with --resume)", repr(err[-300:])


def test_failure_at_t0_is_one_line_and_saves_t0_once(tmp_path):
    proc = mfpde("particles", write_case(tmp_path, tiny_table(dynamics={"lr": 1e300})), "--out", tmp_path, "--quiet")
    line = one_line_error(proc, "last good state saved in")  # no RuntimeWarning lines before it
    assert "Warning" not in proc.stderr, line
    with h5py.File(next(tmp_path.glob("*.partial.h5"))) as f:
        assert list(f["observables/t"][()]) == [0.0]


def test_a_pde_that_would_fail_at_t0_is_refused_before_it_starts(tmp_path):
    """lr = 1e300 made the PDE's velocity overflow at its first step; its step budget
    (mfpde.config.budgets) now refuses it before any work (tests/config/test_budgets.py)."""
    proc = mfpde("pde", write_case(tmp_path, tiny_table(dynamics={"lr": 1e300})), "--out", tmp_path, "--quiet")
    one_line_error(proc, "dynamics.lr: ", "the number of time steps", "(at most 1e+05)")
    assert not list(tmp_path.glob("*.h5"))


def test_read_only_home(tmp_path):
    """The JIT cache and matplotlib fall back to a temporary folder when HOME cannot be written."""
    from _robust_common import unwritable_dir

    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "MPLCONFIGDIR", "XDG_CONFIG_HOME")}
    env.update(HOME=str(unwritable_dir(tmp_path)), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    case = write_case(tmp_path, tiny_table(pde={"n": 5}))  # a mesh size no other test compiled for
    for args in (["pde", case, "--out", tmp_path, "--quiet"], ["plot", tmp_path / "tiny.pde.h5"]):
        proc = subprocess.run(MFPDE + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Matplotlib" not in proc.stderr and "Permission" not in proc.stderr, proc.stderr[-2000:]


def test_two_studies_on_one_output(tmp_path):
    """A study holds the lock of its own output for its whole length, not only while its PDE runs."""
    from mfpde.config.case import case_from_dict
    from mfpde.io.lock import output_lock
    from mfpde.runs.study import study_path
    from mpi4py import MPI

    case = write_case(tmp_path)
    out = tmp_path / "out"
    with output_lock(study_path(case_from_dict(tiny_table()), out), MPI.COMM_SELF):  # a study in its particle runs
        proc = mfpde("study", case, "--out", out, "--n", "8,16", "--seeds", "2", "--quiet", "--no-plots")
    one_line_error(proc, "another mfpde run is writing it", "tiny.study.lock")
    assert not (out / "tiny.pde.h5").exists()  # refused before the PDE
