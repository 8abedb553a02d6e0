"""A plain ``pip install .``: no DOLFINx (no ``wheel`` extra), or no MPI library at all.

Each case is simulated in a fresh interpreter by a meta-path finder that makes
the named packages fail to import the way they fail on such an install:
``dolfinx``/``dolfinx_solver``/``basix``/``petsc4py`` with ``ImportError``
(absent), ``mpi4py.MPI`` with mpi4py 4's ``RuntimeError: cannot load MPI
library`` (no libmpi on the system).  Then ``mfpde pde`` and ``mfpde study``
are one line naming the fix with exit code 2, and ``mfpde particles`` runs
(it needs neither DOLFINx nor Basix) and gives the numbers of an unblocked run.
"""

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from tests.conftest import ROOT

FEM_STACK = ("dolfinx", "dolfinx_solver", "basix", "ufl", "ffcx", "petsc4py")

BLOCK = textwrap.dedent("""
    import sys, importlib.abc
    HIDDEN, NO_MPI = {hidden!r}, {no_mpi!r}
    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
            if NO_MPI and name == "mpi4py.MPI":
                raise RuntimeError("cannot load MPI library\\nlibmpi.so: cannot open shared object file")
    sys.meta_path.insert(0, Hide())
    from mfpde.cli import main
    rc = main(sys.argv[1:])
    print("MODULES", sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN))
    sys.exit(rc)
""")

SHORT_CASE = """
name = "tiny"
[expert]
kind = "cosine"
d = 2
[data]
x = [-2.0, -0.5, 0.5, 2.0]
teacher_theta = [[0.9, -1.3]]
[init]
kind = "box"
lower = [-1.0, -1.0]
upper = [1.0, 1.0]
[dynamics]
t_end = 0.5
[particles]
dt = 0.05
save_every = 0.25
"""


def _mfpde(args, tmp_path, hidden=FEM_STACK, no_mpi=False) -> subprocess.CompletedProcess:
    code = BLOCK.format(hidden=hidden, no_mpi=no_mpi)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                          "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"})


def _one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["pde", "study"])
def test_no_dolfinx_is_one_line_naming_the_fix(tmp_path, command):
    (tmp_path / "tiny.toml").write_text(SHORT_CASE)
    line = _one_line(_mfpde([command, "tiny.toml", "--out", tmp_path / "out", "--quiet"], tmp_path))
    assert line.startswith("mfpde: error: the PDE needs DOLFINx 0.11"), line
    assert 'pip install ".[wheel]"' in line and "site's DOLFINx" in line and "docs/clusters.md" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_mpi_library_is_one_line_naming_the_fix(tmp_path):
    line = _one_line(_mfpde(["particles", "default", "--n", "4"], tmp_path, hidden=(), no_mpi=True))
    assert line.startswith("mfpde: error: mpi4py finds no MPI library (cannot load MPI library)"), line
    assert 'pip install ".[wheel]"' in line and "pip install mpich" in line and "docs/clusters.md" in line


def test_particles_run_without_dolfinx_and_equal_a_normal_run(tmp_path):
    (tmp_path / "tiny.toml").write_text(SHORT_CASE)
    proc = _mfpde(["particles", "tiny.toml", "--n", "32", "--seed", "1", "--out", "out", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MODULES []" in proc.stdout  # nothing of the FEM stack was imported (or tried and failed quietly)
    with h5py.File(tmp_path / "out" / "tiny.particles.N32.seed1.h5") as f:
        risk = f["observables/risk"][...]

    from mfpde.config.case import load_case
    from mfpde.runs.particles import run_particles

    obs, _ = run_particles(load_case(tmp_path / "tiny.toml"), 32, 1, write=False, progress=False)
    assert risk.shape == obs["risk"].shape == (3,)
    np.testing.assert_array_equal(risk, obs["risk"])
    assert risk[-1] < risk[0]  # it trained
