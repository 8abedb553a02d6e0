"""Case files: every bad input is refused before any work, with one line naming the key."""

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from mfpde.config.case import case_from_dict, default_case, default_case_text, dumps_toml, load_case
from mfpde.cli import main
from mfpde.errors import CaseError


def base() -> dict:
    return tomllib.loads(default_case_text())


def write_case(tmp_path: Path, table: dict, name="case.toml") -> Path:
    path = tmp_path / name
    path.write_text(dumps_toml(table))
    return path


def test_default_case_is_the_contract():
    case = default_case()
    assert case.name == "qnn-1q-2p" and case.d == 2 and case.data.K == 16
    np.testing.assert_allclose(case.data.w, 1 / 16)
    # realizable teacher: y_k is the mean over the two teacher parameters of <0| U^+ Z U |0>,
    # U = RY(theta_1) RX(x) RY(theta_0) RX(x), written out with 2 x 2 matrices (not through mfpde)
    def rx(a):
        return np.array([[np.cos(a / 2), -1j * np.sin(a / 2)], [-1j * np.sin(a / 2), np.cos(a / 2)]])

    def ry(a):
        return np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])

    def phi(x, th):
        psi = ry(th[1]) @ rx(x) @ ry(th[0]) @ rx(x) @ np.array([1.0, 0.0])
        return float(abs(psi[0]) ** 2 - abs(psi[1]) ** 2)

    y = [np.mean([phi(x, th) for th in ([0.9, -1.3], [-2.0, 0.4])]) for x in case.data.x[:, 0]]
    np.testing.assert_allclose(case.data.y, y, rtol=0, atol=1e-14)
    assert case.save_times(0.5) == [0.5 * i for i in range(9)]


def test_particles_seeds_is_the_study_default():
    table = base()
    del table["study"]["seeds"]
    table["particles"]["seeds"] = 3
    assert case_from_dict(table).study.seeds == 3
    table["study"]["seeds"] = 5  # [study] wins
    assert case_from_dict(table).study.seeds == 5


def test_toml_round_trip(tmp_path):
    case = load_case(write_case(tmp_path, base()))
    again = case_from_dict(tomllib.loads(case.to_toml()))
    assert again.physics_hash() == case.physics_hash()


def mutate(path: str, value):
    """A case table with ``path`` (dotted, or a callable) changed."""
    table = base()
    if callable(value):
        value(table)
        return table
    *parents, last = path.split(".")
    t = table
    for p in parents:
        t = t.setdefault(p, {})
    if value is _DELETE:
        del t[last]
    else:
        t[last] = value
    return table


_DELETE = object()

BAD = [
    ("expert.gates[1]", "expert.gates", [["RX", "x", [0]], ["RQ", "theta[0]", [0]], ["RY", "theta[1]", [0]]]),
    ("theta[1]", "expert.gates", [["RY", "theta[0]", [0]], ["RY", "theta[2]", [0]]]),
    ("expert.gates[1]", "expert.gates", [["RY", "theta[0]", [0]], ["RY", "theta[1]", [3]]]),
    ("expert.observable", "expert.observable", [["Q", 0]]),
    ("expert.device", "expert.device", "no.such.device"),
    ("data.y", "data", {"x": [0.1, 0.2, 0.3], "y": [1.0, 2.0]}),
    ("data.w", "data", {"x": [0.1, 0.2], "y": [1.0, 2.0], "w": [0.5, 0.0]}),
    ("data.w", "data", {"x": [0.1, 0.2], "y": [1.0, 2.0], "w": [0.5, float("inf")]}),
    ("data.y", "data", {"x": [0.1, 0.2], "y": [1.0, float("nan")]}),
    ("data.x", "data", {"x": [0.1, float("nan")], "y": [1.0, 2.0]}),
    ("data.file", "data", {"file": "missing.csv"}),
    ("dynamics.t_end", "dynamics.t_end", -1.0),
    ("particles.n", "particles.n", -4),
    ("pde.n", "pde.n", 0),
    ("dynamics.tau", "dynamics.tau", -0.1),
    ("init.kind", "init.kind", "gaussian"),
    ("init.kappa", "init", {"kind": "vonmises", "kappa": [1.0, 2.0, 3.0]}),
    ("data.teacher_theta", "data.teacher_theta", [[0.1, 0.2, 0.3]]),
    ("dynamics.t_emd", "dynamics.t_emd", 3.0),
    ("expert.kind", "expert.kind", "transformer"),
]


@pytest.mark.parametrize("key, path, value", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_case_is_refused_naming_the_key(tmp_path, capsys, key, path, value):
    case_file = write_case(tmp_path, mutate(path, value))
    out = tmp_path / "out"
    code = main(["particles", str(case_file), "--n", "4", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("mfpde: error: ")
    assert key in err
    assert not out.exists()  # nothing written


def test_unreadable_toml_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[expert\nkind = 1")
    assert main(["pde", str(bad), "--quiet"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["pde", str(tmp_path / "nope.toml"), "--quiet"]) == 2
    assert "case file not found" in capsys.readouterr().err


def test_pde_refuses_d_above_3_before_work(tmp_path, capsys):
    gates = [["RY", f"theta[{i}]", [0]] for i in range(5)]
    table = mutate("expert.gates", gates)
    table["data"] = {"x": [0.1, 0.2], "y": [0.3, 0.4]}
    code = main(["pde", str(write_case(tmp_path, table)), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "d = 5" in err and "particles only" in err
    assert not (tmp_path / "o").exists()


def test_data_files(tmp_path):
    x = np.linspace(-1, 1, 5)
    y = np.sin(x)
    w = np.arange(1, 6) / 15.0
    (tmp_path / "d.csv").write_text("x,y,w\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(x, y, w)))
    np.savez(tmp_path / "d.npz", x=x, y=y, w=w)
    import h5py

    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"], f["w"] = x, y, w
    for name in ("d.csv", "d.npz", "d.h5"):
        table = mutate("data", {"file": name})
        case = case_from_dict(table, tmp_path)
        np.testing.assert_allclose(case.data.x[:, 0], x, rtol=1e-15)
        np.testing.assert_allclose(case.data.y, y, rtol=1e-15)
        np.testing.assert_allclose(case.data.w, w, rtol=1e-15)
    (tmp_path / "bad.csv").write_text("x,y\n0.1,abc\n")
    with pytest.raises(CaseError, match="data.file"):
        case_from_dict(mutate("data", {"file": "bad.csv"}), tmp_path)


def test_cli_error_is_one_line_without_traceback(tmp_path):
    table = mutate("dynamics.t_end", 0.0)
    case_file = write_case(tmp_path, table)
    proc = subprocess.run([sys.executable, "-m", "mfpde.cli", "particles", str(case_file), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mfpde: error: dynamics.t_end: must be > 0, got 0.0"
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("argv, text", [(["particles", "default", "--n", "3.5"], "--n: expected an integer"),
                                        (["study", "default", "--n", "64,x"], "comma-separated integers"),
                                        ([], "required: COMMAND")])
def test_usage_errors_are_one_line(capsys, argv, text):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and text in err and len(err.strip().splitlines()) == 1
