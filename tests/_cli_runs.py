"""The `mfpde` command as the PDE, I/O and moving-mesh tests run it: its paths, a shrunk example case,
and one run whose last line names the file written."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT

from mfpde.config.case import dumps_toml

MPIRUN = Path(sys.executable).parent / "mpirun"
MFPDE = [sys.executable, "-m", "mfpde.cli"]


def shrunk(tmp_path, case: str, n: int, t_end: float, save_every: float) -> Path:
    """A copy of an example case, smaller and shorter (same physics otherwise)."""
    table = tomllib.loads((ROOT / "cases" / case).read_text()) if case != "default" else \
        tomllib.loads((ROOT / "mfpde" / "cases" / "default.toml").read_text())
    table["pde"].update(n=n, save_every=save_every)
    table["dynamics"]["t_end"] = t_end
    path = tmp_path / f"{table['name']}.toml"
    path.write_text(dumps_toml(table))
    return path


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1].removeprefix("wrote ")
