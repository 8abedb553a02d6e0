"""Typed results (mfpde.io.results): files say what ran, read back whole, refuse what they cannot read."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT
from mfpde.config.case import dumps_toml
from mfpde.cli import main
from mfpde.errors import ResultFileError
from mfpde.io.results import (CompareResult, LimitResult, Observables, ParticleResult, PDEResult, RunInfo,
                              read_result)

NOISY = {
    "name": "noisy-1d",
    "expert": {"kind": "cosine", "d": 1},
    "data": {"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.3, 0.1]},
    "dynamics": {"t_end": 0.2, "tau": 0.05},
    "pde": {"n": 16, "save_every": 0.1},
    "particles": {"n": 50, "dt": 0.05},
}


def write_case(tmp_path, table) -> Path:
    path = tmp_path / f"{table['name']}.toml"
    path.write_text(dumps_toml(table))
    return path


def test_files_record_what_ran_not_what_the_case_said(tmp_path, capsys):
    """tau > 0 runs the stochastic Heun method; /case carries --n and --seed of the command line."""
    case = write_case(tmp_path, NOISY)
    assert main(["particles", str(case), "--n", "20", "--seed", "3", "--out", str(tmp_path), "--quiet"]) == 0
    assert main(["pde", str(case), "--n", "8", "--out", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    run = read_result(tmp_path / "noisy-1d.particles.N20.seed3.h5")
    assert isinstance(run, ParticleResult) and run.integrator == "heun" and run.theta.shape[1:] == (20, 1)
    assert run.info.case_table()["particles"] == {"n": 20, "seed": 3, "dt": 0.05}
    pde = PDEResult.from_file(tmp_path / "noisy-1d.pde.h5")
    assert pde.n == 8 and pde.density.shape[1] == 8 and pde.info.case_table()["pde"]["n"] == 8
    assert pde.info.complete and pde.info.version and pde.steps > 0


def test_a_mesh_file_run_says_so_and_has_no_cells_per_direction(tmp_path, capsys):
    mesh = ROOT / "meshes" / "torus-2d-quad-jitter-16.npz"
    table = {"name": "meshed", "expert": {"kind": "cosine", "d": 2},
             "data": {"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.2, 0.1]}, "dynamics": {"t_end": 0.1},
             "pde": {"mesh": str(mesh)}}
    assert main(["pde", str(write_case(tmp_path, table)), "--out", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    pde = PDEResult.from_file(tmp_path / "meshed.pde.h5")
    assert pde.n is None and pde.mesh_file == str(mesh) and pde.cell_type == "quadrilateral"
    with h5py.File(tmp_path / "meshed.pde.h5") as f:
        assert "n" not in f["pde"] and f["pde/mesh_file"][()].decode() == str(mesh)


def _info(d=2, K=3):
    return RunInfo(case_name="syn", case_hash="abc", d=d, case_text='name = "syn"\n',
                   data={"x": np.zeros((K, 1)), "y": np.ones(K), "w": np.full(K, 1 / K)},
                   provenance={"mpi_size": 1})


def _observables(T=3, K=3, d=2):
    return Observables(t=np.linspace(0, 1, T), F=np.arange(T * K, dtype=float).reshape(T, K),
                       risk=np.linspace(1, 0.5, T), moments=np.full((T, 2), 0.1 + 0.2j),
                       moment_freqs=np.array([[1, 0], [0, 1]])[:, :d])


def test_limit_and_compare_results_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    limit = LimitResult(info=_info(), observables=_observables(), weights=np.full(16, 1 / 16), rule="trapezoid",
                        theta=rng.uniform(0, 6, (3, 16, 2)), theta_index=np.arange(3),
                        clt={"cov": rng.normal(size=(3, 3, 3))})
    back = read_result(limit.to_file(tmp_path / "syn.limit.h5"))
    assert isinstance(back, LimitResult) and back.rule == "trapezoid" and back.info.case_hash == "abc"
    for key in ("weights", "theta", "theta_index", "clt_cov"):
        np.testing.assert_array_equal(getattr(back, key), getattr(limit, key))
    pts, mass = back.atoms(2)  # the reference interface: the weighted points themselves
    np.testing.assert_array_equal(pts, limit.theta[2])
    assert mass.sum() == 1.0
    np.testing.assert_array_equal(back.observables.moments, limit.observables.moments)
    with h5py.File(tmp_path / "syn.limit.h5") as f:  # DESIGN 10.2 layout, plain h5py
        assert f.attrs["kind"] == "limit" and f["clt/cov"].shape == (3, 3, 3) and f["limit/theta"].shape == (3, 16, 2)

    cmp = CompareResult(info=_info(), t=np.linspace(0, 1, 3), N=np.array([8, 16]), seed=np.array([0, 1]),
                        metrics={"observable_error": rng.uniform(size=(2, 3))}, pde_file="a.h5",
                        particle_files=["b.h5", "c.h5"])
    back = read_result(cmp.to_file(tmp_path / "syn.compare.h5"))
    assert back.particle_files == ["b.h5", "c.h5"] and list(back.N) == [8, 16]
    np.testing.assert_array_equal(back.metrics["observable_error"], cmp.metrics["observable_error"])


def test_a_file_of_another_kind_or_a_newer_version_is_refused_in_one_line(tmp_path):
    path = LimitResult(info=_info(), observables=_observables(), weights=np.ones(2), rule="r",
                       theta=np.zeros((3, 2, 2))).to_file(tmp_path / "x.h5")
    with pytest.raises(ResultFileError, match="not a pde result"):
        PDEResult.from_file(path)
    with h5py.File(path, "a") as f:
        f.attrs["mfpde_version"] = "9.0.0"
    with pytest.raises(ResultFileError, match=r"written by mfpde 9\.0\.0, newer than this mfpde") as exc:
        read_result(path)
    assert "\n" not in str(exc.value)


def test_only_the_io_layer_opens_result_files():
    """Result files are read and written in mfpde/io alone (config/data reads a user's data file)."""
    allowed = {"config/data.py"}
    for path in (ROOT / "mfpde").rglob("*.py"):
        rel = path.relative_to(ROOT / "mfpde").as_posix()
        if rel.startswith("io/") or rel in allowed:
            continue
        text = path.read_text()
        assert "h5py.File" not in text and "read_run" not in text and "write_run" not in text, rel

