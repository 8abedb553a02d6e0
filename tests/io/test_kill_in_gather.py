"""A run killed inside the windowed gather of a save's density resumes to the file of an uninterrupted run.

The kill point is inside :meth:`mfpde.io.distributed_rows.DistributedRows.gather` (after the first of
several density windows of the save, flushed), driven by ``tests/_kill_in_gather.py``: the save is not
committed (``saved`` counts the states before it), so ``--resume`` drops the torn slice.  A save that
committed before its density was written would resume from a density with rows missing.
"""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from conftest import ROOT
from mfpde.io.hdf5 import partial_path
from _cli_runs import shrunk

DRIVER = [sys.executable, str(Path(__file__).resolve().parents[1] / "_kill_in_gather.py")]
WINDOW = 2048  # bytes: default case n = 8, DG3 boxes: 64 cells x 16 dofs x 8 B = 8 kB, 4 windows


def drive(kill_at: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*DRIVER, str(kill_at), str(WINDOW), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_a_kill_inside_the_density_gather_resumes_exactly(tmp_path, monkeypatch, capsys):
    """The uninterrupted and the resumed runs in this process (same window size), the killed one in a
    subprocess (tests/_kill_in_gather.py)."""
    import mfpde.io.pde_writer as writer
    from mfpde.cli import main

    monkeypatch.setattr(writer, "WINDOW_BYTES", WINDOW)
    case = shrunk(tmp_path, "default", 8, 1.0, 0.25)
    cmd = ["pde", str(case), "--quiet"]
    assert main([*cmd, "--out", str(tmp_path / "ref")]) == 0
    ref = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("wrote "))
    final = tmp_path / "killed" / ref.name
    killed = drive(3, *cmd, "--out", str(final.parent))
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    with h5py.File(partial_path(final)) as f:  # the torn save: 3 density slices, the third in part
        assert f["pde/density"].shape[0] == 3 and int(f.attrs["saved"]) == 2, dict(f.attrs)
        torn = f["pde/density"][2]
        assert np.any(torn[: WINDOW // (16 * 8)] != 0) and np.all(torn[-1] == 0)
    assert main([*cmd, "--out", str(final.parent), "--resume"]) == 0
    with h5py.File(ref) as a, h5py.File(final) as b:
        assert len(a["observables/t"]) == 5 and int(b.attrs["saved"]) == 5
        for key in ("observables/t", "observables/F", "observables/risk", "observables/moments",
                    "observables/mass", "observables/min_rho", "pde/density"):
            np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-12, err_msg=key)
        assert b["pde/steps"][()] == a["pde/steps"][()]
