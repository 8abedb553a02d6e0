"""One table per rule (mfpde.config.rules), one checker per command (mfpde.runs.checks), and the
command line going through the case file's rules (issue 19, item 2).

Every red-team test below failed on 488d6c4: ``--seed 2**64`` ended in a traceback at the first
save, ``regimes --seeds 1`` printed NaN intervals, ``ars443`` with tau = 0 (fixed or Lagrangian
mesh) was an AttributeError, a d = 12 particle run was refused for the PDE's moment default,
a study changed its caller's ``case.particles.save_every``, and an explicit scheme with noise was
refused only once the mesh was built (the run check let it through).
"""

import h5py
import pytest

from _robust_common import tiny_table, write_case
from mfpde.cli import main
from mfpde.errors import CaseError


def cli(tmp_path, capsys, command, *argv, table=None):
    """``mfpde COMMAND case.toml --out OUT --quiet ARGV`` in this process: (exit code, stderr lines)."""
    case = write_case(tmp_path, table or tiny_table())
    code = main([command, str(case), "--out", str(tmp_path / "out"), "--quiet", *map(str, argv)])
    return code, capsys.readouterr().err.strip().splitlines()


def refused_before_work(tmp_path, capsys, command, *argv, table=None) -> str:
    """The run is refused in one line, exit code 2, and wrote nothing; returns the message."""
    code, err = cli(tmp_path, capsys, command, *argv, table=table)
    assert code == 2 and len(err) == 1 and err[0].startswith("mfpde: error: "), (code, err)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.h5")), "refused before any work"
    return err[0].removeprefix("mfpde: error: ")


# ------------------------------------------------------------------ the tables, each defined once


def test_each_table_is_defined_once():
    from mfpde.config import case, rules
    from mfpde.pde import cells, stepping

    assert cells.MAX_DEGREE is rules.MAX_DEGREE and cells.check_degree is rules.check_degree
    assert stepping.SCHEMES is rules.TIME_SCHEMES and stepping.EXPLICIT is rules.EXPLICIT_SCHEMES
    assert case.SCALINGS is rules.SCALINGS and case.PDE_MIN_N == rules.MINIMUM["pde.n"] == 3
    assert set(rules.TIME_SCHEMES) == set(rules.EXPLICIT_SCHEMES) | set(rules.IMEX_SCHEMES)
    assert set(stepping.STEP) == set(rules.TIME_SCHEMES)


# (command, its option, the case key it overrides, the value): refused alike, with the same message
PARITY = [
    ("particles", ["--seed", str(2**64)], "particles", "seed", 2**64),
    ("particles", ["--seed", "-1"], "particles", "seed", -1),
    ("particles", ["--n", "0"], "particles", "n", 0),
    ("pde", ["--n", "2"], "pde", "n", 2),
    ("limit", ["--points", "1"], "limit", "points", 1),
    ("study", ["--seeds", "1"], "study", "seeds", 1),
    ("study", ["--n", "8,8"], "study", "n", [8, 8]),
    ("study", ["--n", "0,8"], "study", "n", [0, 8]),
    ("regimes", ["--seeds", "1"], "regimes", "seeds", 1),
    ("regimes", ["--n", "64"], "regimes", "n", [64]),
]


@pytest.mark.parametrize("command, argv, section, key, value", PARITY)
def test_the_command_line_and_the_case_file_refuse_alike(tmp_path, capsys, command, argv, section, key, value):
    from mfpde.config.case import case_from_dict
    from mfpde.config.rules import DISTINCT_N, MINIMUM

    with pytest.raises(CaseError) as exc:
        case_from_dict(tiny_table(**{section: {key: value}}))
    message = str(exc.value)
    # the message is the table's rule
    if isinstance(value, list) and min(value) >= 1:
        assert DISTINCT_N == 2 and message == f"{section}.{key}: needs at least two distinct values to fit a rate, " \
                                              f"got {sorted(set(value))}"
    elif isinstance(value, list):
        assert message == f"{section}.{key}[0]: must be >= {MINIMUM[f'{section}.{key}']}, got {value[0]}"
    elif value >= 2**63:
        assert message == f"{section}.{key}: is out of range for an integer (|value| >= 2^63)"
    else:
        assert message == f"{section}.{key}: must be >= {MINIMUM[f'{section}.{key}']}, got {value}"
    # the command line: the same message, before any work
    assert refused_before_work(tmp_path, capsys, command, *argv) == message


def test_with_overrides_returns_a_new_case_and_refuses_as_the_case_file():
    from mfpde.config.case import case_from_dict

    case = case_from_dict(tiny_table())
    table = repr(case.table)
    other = case.with_overrides(pde={"n": 8}, particles={"seed": 3, "save_every": None})
    assert (other.pde.n, other.particles.seed, other.particles.save_every) == (8, 3, None)
    assert (case.pde.n, case.particles.seed, case.particles.save_every) == (6, 0, 0.1)  # unchanged
    assert repr(case.table) == table and other.table["pde"]["n"] == 8 and "save_every" not in other.table["particles"]
    with pytest.raises(CaseError, match=r"^particles.seed: is out of range for an integer"):
        case.with_overrides(particles={"seed": 2**64})
    with pytest.raises(CaseError, match=r"^particles.bogus: unknown key"):
        case.with_overrides(particles={"bogus": 1})


# ------------------------------------------------------------------ the tau rules


@pytest.mark.parametrize("command, changes, rule", [
    ("pde", {"dynamics": {"tau": 0.01}, "pde": {"time_scheme": "ssprk3"}}, "time_scheme ssprk3"),
    ("pde", {"dynamics": {"tau": 0.01}, "pde": {"time_scheme": "ssprk104"}}, "time_scheme ssprk104"),
    ("pde", {"dynamics": {"tau": 0.01}, "pde": {"mesh_motion": "lagrangian"}}, "mesh_motion lagrangian"),
    ("pde", {"pde": {"time_scheme": "ars443"}}, "time_scheme ars443"),
    ("limit", {"dynamics": {"tau": 0.01}}, "limit"),
    ("regimes", {"dynamics": {"tau": 0.01}}, "regimes"),
])
def test_the_tau_rules_come_from_one_table(tmp_path, capsys, command, changes, rule):
    from mfpde.config.rules import NOISELESS_ONLY, NOISY_ONLY

    tau = changes.get("dynamics", {}).get("tau", 0.0)
    key, message = (NOISELESS_ONLY if tau > 0 else NOISY_ONLY)[rule]
    line = refused_before_work(tmp_path, capsys, command, table=tiny_table(**changes))
    assert line == f"{key}: {message.format(tau=tau, d=2)}"


def test_an_explicit_scheme_with_noise_is_refused_by_the_run_check_before_the_mesh():
    from mfpde.config.case import case_from_dict
    from mfpde.runs.pde import check_pde_case

    case = case_from_dict(tiny_table(dynamics={"tau": 0.01}, pde={"time_scheme": "ssprk3"}))
    with pytest.raises(CaseError, match=r"^pde.time_scheme: ssprk3 is explicit"):
        check_pde_case(case)  # no DOLFINx mesh is built here


def test_noise_runs_rk4_as_heun(tmp_path, capsys):
    from mfpde.config.rules import NOISY_INTEGRATOR, particle_integrator

    assert particle_integrator("rk4", 0.1) == NOISY_INTEGRATOR["rk4"] == "heun"
    assert particle_integrator("rk4", 0.0) == "rk4" and particle_integrator("euler", 0.1) == "euler"
    code, err = cli(tmp_path, capsys, "particles", table=tiny_table(dynamics={"tau": 0.01}))
    assert code == 0, err
    with h5py.File(tmp_path / "out" / "tiny.particles.N16.seed0.h5") as f:
        assert f["particles/integrator"][()].decode() == "heun"


# ------------------------------------------------------------------ red-team items (each failed on 488d6c4)


def test_seed_beyond_the_integer_range_is_refused_at_the_start(tmp_path, capsys):
    line = refused_before_work(tmp_path, capsys, "particles", "--seed", 2**64)
    assert line == "particles.seed: is out of range for an integer (|value| >= 2^63)"
    code, err = cli(tmp_path, capsys, "particles", "--seed", 2**63 - 1, "--n", 4)
    assert code == 0, err  # the largest seed runs and is saved
    with h5py.File(tmp_path / "out" / f"tiny.particles.N4.seed{2**63 - 1}.h5") as f:
        assert int(f["particles/seed"][()]) == 2**63 - 1


def test_regimes_with_one_seed_is_refused(tmp_path, capsys):
    line = refused_before_work(tmp_path, capsys, "regimes", "--seeds", 1, "--n", "4,8", "--no-plots")
    assert line == "regimes.seeds: must be >= 2, got 1"


@pytest.mark.parametrize("motion", ["fixed", "lagrangian"])
def test_ars443_without_noise_is_refused(tmp_path, capsys, motion):
    table = tiny_table(pde={"time_scheme": "ars443", "mesh_motion": motion})
    line = refused_before_work(tmp_path, capsys, "pde", table=table)
    assert line.startswith("pde.time_scheme: ars443 is the IMEX scheme of tau > 0"), line
    # with noise it runs on the fixed mesh (the Lagrangian mesh needs tau = 0)
    table["dynamics"]["tau"] = 0.01
    if motion == "fixed":
        code, err = cli(tmp_path, capsys, "pde", table=table)
        assert code == 0, err
    else:
        assert refused_before_work(tmp_path, capsys, "pde", table=table).startswith("pde.mesh_motion: a Lagrangian")


def test_the_pde_moment_default_does_not_refuse_a_particle_run_in_d12(tmp_path, capsys):
    table = tiny_table(particles={"n": 4}, dynamics={"t_end": 0.1})
    table["expert"] = {"kind": "cosine", "d": 12}
    table["data"] = {"x": [[0.1] * 12, [0.2] * 12], "y": [0.1, 0.2]}
    code, err = cli(tmp_path, capsys, "particles", table=table)
    assert code == 0, err
    with h5py.File(tmp_path / "out" / "tiny.particles.N4.seed0.h5") as f:
        freqs = f["observables/moment_freqs"]
        # the default moment set beyond d = 3 is |w|_1 <= 2 (mfpde.config.moment_set): d^2 + d = 156 rows
        assert freqs.shape == (156, 12) and abs(freqs[()]).sum(axis=1).max() == 2
    from mfpde.config.rules import default_moment_max

    assert [default_moment_max(d) for d in (1, 2, 3, 8, 9, 12, 20, 446, 447)] == [2] * 8 + [1]
    # asked for explicitly, a set beyond the budget is still refused (one line, the key named)
    table["pde"] = {"moment_max": 40}
    (tmp_path / "asked").mkdir()
    assert refused_before_work(tmp_path / "asked", capsys, "particles", table=table).startswith("pde.moment_max: ")


def test_a_study_does_not_change_its_callers_case(tmp_path):
    from mfpde.config.case import case_from_dict
    from mfpde.runs.study import run_study

    case = case_from_dict(tiny_table(particles={"save_every": 0.05}))  # the PDE saves every 0.1
    out = run_study(case, ns=[4, 8], n_seeds=2, out_dir=tmp_path / "out", progress=False, plots=False)
    assert case.particles.save_every == 0.05 and case.study.n != [4, 8]
    assert list(out["result"].N) == [4, 8] and len(out["result"].t) == 3  # the particles saved at the PDE's times
