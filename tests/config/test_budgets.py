"""Budgets for every command (issue 19, items 4 and 5): what cannot finish within a stated bound is
refused in one line (the key, the estimate, the bound) before any work; the default moment set
scales with d, so the README's commands run on a d = 20 case as on d = 2; ``limit --resume``
keeps its settings."""

import copy
import shutil

import numpy as np
import pytest

from _robust_common import mfpde, one_line_error, tiny_table, write_case
from mfpde.cli import main
from mfpde.config.case import case_from_dict
from mfpde.errors import CaseError
from mfpde.model.moments import moment_freqs


def refused(tmp_path, capsys, table, *argv, command: str, key: str, text: str = "") -> str:
    """``mfpde COMMAND`` exits 2 with one line starting with the key, and writes no result file."""
    case = write_case(tmp_path, table)
    code = main([command, str(case), "--out", str(tmp_path / "out"), "--quiet", *map(str, argv)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mfpde: error: {key}: "), (code, err)
    assert text in err[0], err[0]
    assert not list((tmp_path / "out").glob("*.h5")), "refused before any work"
    return err[0]


def _wide(d: int, **sections) -> dict:
    """A cosine-expert case in dimension d (no circuit: fast at any d)."""
    table = tiny_table(**sections)
    table["expert"] = {"kind": "cosine", "d": d}
    table["data"] = {"x": [[0.1 * (i + 1)] * d for i in range(3)], "y": [0.1, 0.2, -0.1]}
    return table


# ---------------------------------------------------------------- 4. a budget for every command


@pytest.mark.parametrize("table, argv, command, key, text", [
    # limit: saved states (1e-9 grew to 19.7 GB), steps (1e-9 ran unbounded), points (a 7 TiB grid)
    (tiny_table(limit={"save_every": 1e-9, "points": 64}), [], "limit", "limit.save_every", "2e+08 saved states"),
    (tiny_table(limit={"dt": 1e-9, "points": 64}), [], "limit", "limit.dt", "(at most 1e+07)"),
    (tiny_table(limit={"points": 10**12}), [], "limit", "limit.points", "GB of memory"),
    (tiny_table(), ["--points", 10**12], "limit", "limit.points", "GB of memory"),
    # pde: step counts from the residual step cap (both ran for hours)
    (tiny_table(pde={"cfl": 1e-9}), [], "pde", "pde.cfl", "time steps"),
    (tiny_table(dynamics={"lr": 1e6}), [], "pde", "dynamics.lr", "(at most 1e+05)"),
    # experts: a dense 2^20 x 2^20 matrix was built (a MemoryError traceback)
    (tiny_table(expert={"wires": 20}), [], "particles", "expert.wires", "1.76e+04 GB each (at most 1.07 GB)"),
    # t_end = 1e308: an OverflowError traceback
    (tiny_table(dynamics={"t_end": 1e308}), [], "particles", "particles.save_every", "inf saved states"),
    (tiny_table(dynamics={"t_end": 1e308}, limit={"save_every": 1e307}), [], "limit", "limit.dt", "inf"),
    (tiny_table(dynamics={"t_end": 1e308}, pde={"save_every": 1e307}), [], "pde", "dynamics.t_end", "inf"),
])
def test_every_command_refuses_what_cannot_finish(tmp_path, capsys, table, argv, command, key, text):
    refused(tmp_path, capsys, table, *argv, command=command, key=key, text=text)


def test_regimes_checks_the_particles_before_the_pde(tmp_path, capsys):
    """The largest N of a regimes run is refused before the PDE runs (it was refused after)."""
    refused(tmp_path, capsys, tiny_table(), "--n", f"16,{2**34}", "--seeds", 2, "--no-plots",
            command="regimes", key="particles.n", text="GB of memory")


def test_the_pde_step_bound_is_a_lower_bound():
    """The estimate never exceeds the steps taken (measured 124 against 132 at lr = 100), and scales
    as lr / cfl."""
    from mfpde.config import budgets

    case = case_from_dict(tiny_table(dynamics={"lr": 100.0, "t_end": 0.5}))
    steps = budgets._pde_steps(case)
    assert 100 < steps < 132
    case.pde.cfl /= 10
    assert budgets._pde_steps(case) == pytest.approx(10 * steps)


def test_particles_in_d1_with_a_million_experts_fit_or_are_refused_per_memory():
    from mfpde.config import budgets

    case = case_from_dict(_wide(1))
    budgets.check_particle_budget(case, 10**6, available=2 * 10**9)  # ~0.3 GB
    with pytest.raises(CaseError, match=r"particles\.n: N = 1000000 .* needs about 0\.\d+ GB"):
        budgets.check_particle_budget(case, 10**6, available=10**8)


def test_more_ranks_than_cells_is_one_line(tmp_path):
    """mpirun -n 4 on a 3-cell mesh stopped with "no positive step found"."""
    table = _wide(1, pde={"n": 3, "cell": "box", "degree": 1})
    proc = mfpde("pde", write_case(tmp_path, table), "--out", tmp_path / "out", "--quiet", ranks=4)
    one_line_error(proc, "pde.n: n = 3 in d = 1 makes 3 cells, fewer than the 4 MPI ranks")


# ---------------------------------------------------------------- 5. defaults that hold at every d


def test_the_moment_set_is_the_box_up_to_d3_and_the_l1_ball_beyond():
    from mfpde.config import budgets

    for d, count in [(1, 2), (2, 12), (3, 62)]:  # the sets of 488d6c4 (their order is checked in test_metrics)
        f = moment_freqs(d)
        assert f.shape == (count, d) and np.abs(f).max(axis=1).max() == 2
        assert np.array_equal(f, moment_freqs(d, 2, "inf"))
    for d, count in [(4, 20), (12, 156), (20, 420)]:  # d^2 + d
        f = moment_freqs(d)
        assert f.shape == (count, d) == (budgets.moment_count(d, 2), d)
        assert np.abs(f).sum(axis=1).max() == 2
        full = {tuple(w) for w in f} | {tuple(-w) for w in f}
        assert len(full) == 2 * count and (0,) * d not in full  # one of each +-w, never 0
        first = np.array([w[np.flatnonzero(w)[0]] for w in f])
        assert (first > 0).all()
    assert budgets.moment_count(5, 3, "1") == len(moment_freqs(5, 3, "1"))


def test_readme_commands_run_on_a_d20_case(tmp_path):
    """particles, limit and compare on a d = 20 case with the default moment set (refused by 488d6c4:
    5^20 / 2 moments)."""
    case = write_case(tmp_path, _wide(20, dynamics={"t_end": 0.1}, particles={"save_every": 0.05},
                                      limit={"save_every": 0.05, "dt": 0.05}))
    out = tmp_path / "out"
    for args in (["particles", case, "--n", 16], ["limit", case, "--points", 64]):
        proc = mfpde(*args, "--out", out, "--quiet")
        assert proc.returncode == 0, proc.stderr[-2000:]
    import h5py

    with h5py.File(out / "tiny.particles.N16.seed0.h5") as f:
        assert f["observables/moment_freqs"].shape == (420, 20)
        assert f["observables/moments"].shape == (3, 420)
    proc = mfpde("compare", out / "tiny.limit.h5", out / "tiny.particles.N16.seed0.h5", "--out", out)
    assert proc.returncode == 0 and "moment_error=" in proc.stdout, proc.stderr[-2000:]


def test_an_explicit_moment_max_is_still_budgeted_at_large_d(tmp_path, capsys):
    refused(tmp_path, capsys, _wide(12, pde={"moment_max": 40}), command="particles", key="pde.moment_max",
            text="Fourier moments")


# ---------------------------------------------------------------- limit --resume keeps its settings


@pytest.mark.parametrize("change, key", [
    ({"limit": {"dt": 0.025}}, "limit.dt"),
    ({"pde": {"moment_max": 1}}, "pde.moment_max"),
    ({"limit": {"save_every": 0.05}}, "limit.save_every"),
])
def test_limit_resume_refuses_other_settings(tmp_path, change, key):
    """488d6c4 resumed such a file and recorded the mixed run as the new setting's."""
    from mfpde.io.hdf5 import partial_path
    from mfpde.runs.limit import run_limit

    table = tiny_table(limit={"points": 64, "clt_points": 16, "save_every": 0.1, "dt": 0.05})
    _, path = run_limit(case_from_dict(table), out_dir=tmp_path, progress=False)
    shutil.move(path, partial_path(path))  # a partial holding every saved time
    same, _ = run_limit(case_from_dict(table), out_dir=tmp_path, progress=False, resume=True)
    assert len(same["t"]) == 3
    shutil.move(path, partial_path(path))
    changed = copy.deepcopy(table)
    for section, values in change.items():
        changed[section].update(values)
    with pytest.raises(CaseError, match=rf"^{key}: tiny.limit.partial.h5 was written with"):
        run_limit(case_from_dict(changed), out_dir=tmp_path, progress=False, resume=True)
