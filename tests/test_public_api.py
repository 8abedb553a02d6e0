"""The public API from ``mfpde`` itself: every name of ``__all__`` resolves lazily to its home module."""

import subprocess
import sys

import pytest

import mfpde
from tests.conftest import ROOT

HEAVY = ("pennylane", "dolfinx", "petsc4py", "mfpde.runs", "mfpde.config", "mfpde.io.results", "matplotlib", "scipy")


def test_import_mfpde_loads_nothing_heavy():
    code = ("import sys, mfpde; heavy = %r; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))" % (HEAVY,))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(mfpde.__all__))
def test_every_public_name_is_its_home_object(name):
    import importlib

    home = importlib.import_module(mfpde._HOMES[name])
    assert getattr(mfpde, name) is getattr(home, name)
    assert name in dir(mfpde)


def test_the_public_names_are_the_documented_ones():
    assert set(mfpde.__all__) == {
        "load_case", "case_from_dict", "default_case", "run_pde", "run_particles", "run_limit", "run_study",
        "run_regimes", "read_result", "PDEResult", "ParticleResult", "LimitResult", "StudyResult", "RegimesResult",
        "CompareResult"}
    with pytest.raises(AttributeError, match="has no attribute 'run'"):
        mfpde.run  # noqa: B018
    from mfpde import case_from_dict, load_case  # noqa: F401  (the README's import)
