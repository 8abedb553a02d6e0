"""Helpers of the robustness tests: a tiny case, and the CLI run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from mfpde.config.case import dumps_toml

MPIRUN = Path(sys.executable).parent / "mpirun"
# the console script a user runs (bootstrap installs it); the module where it is not installed
MFPDE = [str(Path(sys.executable).parent / "mfpde")] if (Path(sys.executable).parent / "mfpde").exists() \
    else [sys.executable, "-m", "mfpde.cli"]


def tiny_table(**sections) -> dict:
    """A d = 2 one-qubit case that runs in about a second (PDE n = 6, N = 16)."""
    table = {
        "name": "tiny",
        "expert": {"kind": "qnn", "wires": 1, "device": "default.qubit", "observable": [["Z", 0]],
                   "gates": [["RX", "x", [0]], ["RY", "theta[0]", [0]], ["RX", "x", [0]], ["RY", "theta[1]", [0]]]},
        "data": {"x": [-2.0, -1.0, 0.5, 1.5], "teacher_theta": [[0.9, -1.3]]},
        "dynamics": {"t_end": 0.2},
        "pde": {"n": 6, "save_every": 0.1},
        "particles": {"n": 16, "dt": 0.05, "save_every": 0.1},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            table.setdefault(key, {}).update(value)
        else:
            table[key] = value
    return table


def write_case(folder: Path, table: dict | None = None, name: str = "case.toml") -> Path:
    path = Path(folder) / name
    path.write_text(dumps_toml(table or tiny_table()))
    return path


def mfpde(*args, ranks: int = 1, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    """``mfpde ARGS`` (under ``mpirun -n ranks`` when ranks > 1); a hang fails the test."""
    cmd = ([str(MPIRUN), "-n", str(ranks)] if ranks > 1 else []) + MFPDE + [str(a) for a in args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **kw.pop("env", {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=kw.pop("cwd", ROOT),
                          **kw)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The run failed with exit code 2 and exactly one line ``mfpde: error: ...`` holding ``fragments``."""
    lines = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("mfpde: error: "), proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def unwritable_dir(tmp_path: Path) -> Path:
    """A folder no run can write to: read-only for a user, under /sys for root."""
    if os.geteuid() == 0:
        return Path("/sys/mfpde-test-output")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder
