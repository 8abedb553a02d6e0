"""The DOLFINx provider (mfpde/pde/fem.py): the wheel, a site DOLFINx, or one clear refusal.

A site installation (conda-forge, Spack, a module) is simulated by hiding the
``dolfinx_solver`` package from the import system: ``dolfinx`` is then found
on its own, as it would be on a cluster.
"""

import subprocess
import sys
import textwrap

import pytest

from mfpde.pde import fem

BLOCK = textwrap.dedent("""
    import sys, importlib.abc
    HIDDEN = {hidden!r}
    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
    sys.meta_path.insert(0, Hide())
""")


def _python(code: str, hidden: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK.format(hidden=hidden) + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_the_wheel_is_the_provider_here():
    assert fem.PROVIDER == "dolfinx-solver-real wheel"
    assert fem.dolfinx.__version__.startswith("0.11")


def test_a_site_dolfinx_is_used_without_the_wheel_package():
    proc = _python("""
        import numpy as np
        from mpi4py import MPI
        import mfpde.pde.fem as fem
        from mfpde.pde.torus import torus_mesh
        tm = torus_mesh(MPI.COMM_WORLD, 2, 4)
        print(fem.PROVIDER, tm.mesh.topology.index_map(2).size_global)
    """, hidden=("dolfinx_solver",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["site", "dolfinx", "32"]


def test_no_dolfinx_is_one_clear_error():
    proc = _python("""
        try:
            import mfpde.pde.fem
        except ImportError as exc:
            print(type(exc).__name__, "|", exc)
    """, hidden=("dolfinx_solver", "dolfinx"))
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("DolfinxMissing | the PDE needs DOLFINx 0.11, not importable here")
    assert 'pip install ".[wheel]"' in line and "\n" not in line


@pytest.mark.parametrize("version", ["0.10.0", "0.12.1", "1.0", "garbage"])
def test_a_wrong_version_is_refused(version):
    with pytest.raises(fem.DolfinxMissing, match=f"needs DOLFINx 0.11, found {version}"):
        fem.check_version(version)


@pytest.mark.parametrize("version", ["0.11.0", "0.11.0.post0", "0.11.2.dev0"])
def test_every_0_11_release_is_accepted(version):
    fem.check_version(version)
