"""`mfpde pde` end to end: the examples on 1 and 2 ranks, the file, resume after kill -9."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from _cli_runs import MFPDE, MPIRUN, run, shrunk
from conftest import ROOT, killed_after_save, saved_states
from mfpde.config.case import dumps_toml
from mfpde.numerics.fields import evaluate_cellwise
from mfpde.io.hdf5 import partial_path

@pytest.mark.mpi
@pytest.mark.parametrize("case, n, t_end", [("default", 16, 0.5), ("cosine-1d.toml", 64, 1.0),
                                            ("qnn-2q-3p.toml", 4, 0.3), ("qnn-1q-2p-noisy.toml", 12, 0.5)])
def test_examples_on_one_and_two_ranks_agree(tmp_path, case, n, t_end):
    path = shrunk(tmp_path, case, n, t_end, t_end / 2)
    one = run([*MFPDE, "pde", str(path), "--out", str(tmp_path / "one"), "--quiet"])
    two = run([str(MPIRUN), "-n", "2", *MFPDE, "pde", str(path), "--out", str(tmp_path / "two"), "--quiet"])
    with h5py.File(one) as a, h5py.File(two) as b:
        assert a["provenance/mpi_size"][()] == 1 and b["provenance/mpi_size"][()] == 2
        for key in ("observables/F", "observables/risk", "observables/moments", "observables/mass"):
            np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-10, err_msg=key)
        np.testing.assert_allclose(b["pde/density"][()], a["pde/density"][()], rtol=0, atol=1e-10)
        mass = a["observables/mass"][()]
        assert np.max(np.abs(mass / mass[0] - 1)) < 1e-12
        assert np.min(a["observables/min_rho"][()]) >= 0.0
    assert (tmp_path / "one" / (Path(one).stem + ".bp")).is_dir()  # the ParaView companion


def test_pde_file_is_evaluable_without_dolfinx(tmp_path):
    path = run([*MFPDE, "pde", str(shrunk(tmp_path, "default", 16, 0.5, 0.25)), "--out", str(tmp_path), "--quiet"])
    with h5py.File(path) as f:
        cw = {"cell_type": f["pde/cell_type"][()].decode(), "degree": int(f["pde/degree"][()]),
              "vertices": f["pde/mesh/vertices"][()], "values": f["pde/density"][-1],
              "reference_points": f["pde/reference_points"][()]}
        mass = f["observables/mass"][-1]
    # the midpoint rule on a fine grid of point evaluations recovers the mass
    g = (np.arange(200) + 0.5) * 2 * np.pi / 200
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    integral = evaluate_cellwise(cw, pts).sum() * (2 * np.pi / 200) ** 2
    assert abs(integral - mass) < 1e-3


@pytest.mark.mpi
@pytest.mark.parametrize("case, ranks", [("default", 1), ("qnn-1q-2p-noisy.toml", 2)])
def test_pde_resume_after_kill_9_gives_the_same_observables(tmp_path, case, ranks):
    """The run kills itself (SIGKILL) after its 4th save; --resume ends equal to an uninterrupted run,
    also with diffusion (tau > 0) and under mpirun -n 2."""
    path = shrunk(tmp_path, case, 12, 1.0, 0.125)
    launcher = [str(MPIRUN), "-n", str(ranks)] if ranks > 1 else []
    cmd = [*launcher, *MFPDE, "pde", str(path), "--quiet"]
    ref = run([*cmd, "--out", str(tmp_path / "ref")])
    out = tmp_path / "killed"
    final = out / Path(ref).name
    part = partial_path(final)
    killed_after_save([*cmd, "--out", str(out)], 4)
    assert saved_states(part) == 4 and not final.exists()
    run([*cmd, "--out", str(out), "--resume"])
    with h5py.File(ref) as a, h5py.File(final) as b:
        assert len(a["observables/t"]) == 9
        for key in ("observables/t", "observables/F", "observables/risk", "observables/moments",
                    "observables/mass", "observables/min_rho", "pde/density"):
            np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-12, err_msg=key)
    assert not part.exists() and not any(p.suffix == ".tmp" for p in out.iterdir())


def test_a_case_may_name_its_own_mesh(tmp_path, capsys):
    from mfpde.cli import main

    table = {"name": "meshed", "expert": {"kind": "cosine", "d": 2},
             "data": {"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.2, 0.1]}, "dynamics": {"t_end": 0.25},
             "pde": {"mesh": str(ROOT / "meshes" / "torus-2d-quad-jitter-16.npz")}}
    (tmp_path / "ok.toml").write_text(dumps_toml(table))
    assert main(["pde", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "ok"), "--quiet"]) == 0
    with h5py.File(tmp_path / "ok" / "meshed.pde.h5") as f:
        assert f["pde/cell_type"][()].decode() == "quadrilateral" and f["pde/density"].shape[1] == 256
        mass = f["observables/mass"][()]
        assert np.max(np.abs(mass / mass[0] - 1)) < 1e-12
    capsys.readouterr()
    for mesh, text in (("torus-1d-64.npz", "1-d mesh"), ("nope.npz", "mesh file not found")):
        table["pde"]["mesh"] = str(ROOT / "meshes" / mesh)
        (tmp_path / "bad.toml").write_text(dumps_toml(table))
        assert main(["pde", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "bad"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "pde.mesh" in err and text in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_importing_mfpde_first_keeps_h5py_working_beside_dolfinx(tmp_path):
    code = ("import mfpde, dolfinx_solver, dolfinx.fem.petsc, h5py, numpy as np\n"
            f"with h5py.File({str(tmp_path / 'x.h5')!r}, 'w') as f: f['a'] = np.arange(3)\n"
            "print('written')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "written" in proc.stdout, proc.stderr[-2000:]
