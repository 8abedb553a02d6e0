"""`mfpde limit` (DESIGN 10.2): the quadrature push-forward against the PDE, rules, refusals, resume,
the file, and the study with a limit reference."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT, mpirun
from mfpde.config.case import case_from_dict, default_case, dumps_toml, load_case
from mfpde.meshfree.characteristics import Characteristics
from mfpde.errors import CaseError
from mfpde.runs.limit import run_limit
from mfpde.io.results import LimitResult
from mfpde.runs.pde import run_pde

MFPDE = [sys.executable, "-m", "mfpde.cli"]


def cosine_case(t_end=1.5):
    case = load_case(ROOT / "cases" / "cosine-1d.toml")
    case.dynamics.t_end = t_end
    case.limit.save_every = case.pde.save_every
    return case


def test_limit_agrees_with_the_pde_to_1e8():
    """d = 1, smooth von Mises start: limit (256-point trapezoid, RK4 dt = 0.01) against DG2 with
    n = 256: measured max_k |F_pde - F_limit| at t_end = 1.5: 2.8e-9 (n = 256), 3.5e-10 (n = 512)."""
    case = cosine_case()
    lim, _ = run_limit(case, 256, write=False, progress=False, clt=False)
    assert lim["error_estimate"].max() < 1e-10  # trapezoid and RK4 are both far below the PDE's error
    case.pde.n, case.pde.degree = 256, 2
    pde, _ = run_pde(case, write=False, progress=False)
    np.testing.assert_allclose(pde["t"], lim["t"])
    assert np.abs(pde["F"][-1] - lim["F"][-1]).max() < 1e-8
    assert np.abs(pde["risk"] - lim["risk"]).max() < 1e-9
    assert np.abs(pde["moments"] - lim["moments"]).max() < 1e-8


def test_two_rules_agree_in_d2():
    """Default expert (d = 2), von Mises start, to t = 1: the tensor trapezoid (24^2) and the rank-1
    lattice (2^12), independent point sets, agree to round-off (measured 1.7e-16 in F; with 3^2 vs 8^2
    trapezoid points the difference is 2.9e-2, so the rule matters and both have converged)."""
    from mfpde.config.case import InitSpec

    case = default_case()
    case.dynamics.t_end = 1.0
    case.init = InitSpec("vonmises", [1.0, 2.0], [1.0, 0.5])
    tensor, _ = run_limit(case, 24**2, write=False, progress=False, clt=False, estimate=False)
    case.limit.rule = "lattice"
    lattice, _ = run_limit(case, 2**12, write=False, progress=False, clt=False, estimate=False)
    assert np.abs(tensor["F"] - lattice["F"]).max() < 1e-12


def d4_table(**dynamics):
    return {"name": "cos4", "expert": {"kind": "cosine", "d": 4},
            "data": {"x": [[-1.0], [0.0], [1.0], [2.0]], "y": [0.1, -0.2, 0.05, 0.3]},
            "dynamics": {"t_end": 0.5, **dynamics}, "limit": {"points": 4**4, "save_every": 0.25}}


def test_refusals(tmp_path):
    with pytest.raises(CaseError, match=r"dynamics.tau: tau = 0.1 > 0 with d = 4: no solver"):
        run_limit(case_from_dict(d4_table(tau=0.1)), write=False)
    case = cosine_case()
    case.dynamics.tau = 0.05
    with pytest.raises(CaseError, match=r"dynamics.tau: .*tau = 0 method.*mfpde pde"):
        run_limit(case, write=False)
    for key, value, match in (("rule", "midpoint", "limit.rule: must be one of"),
                              ("points", 1, "limit.points: must be >= 2"),
                              ("dt", -1.0, "limit.dt: must be > 0"), ("extra", 1, "limit.extra: unknown key")):
        table = d4_table()
        table["limit"][key] = value
        with pytest.raises(CaseError, match=match):
            case_from_dict(table)
    table = d4_table()
    table["study"] = {"reference": "mesh"}
    with pytest.raises(CaseError, match="study.reference"):
        case_from_dict(table)
    # the CLI: one line, exit 2, nothing written
    table = d4_table(tau=0.1)
    path = tmp_path / "noisy.toml"
    path.write_text(dumps_toml(table))
    proc = subprocess.run([*MFPDE, "limit", str(path), "--out", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "dynamics.tau" in proc.stderr
    assert not list(tmp_path.glob("*.h5"))


def test_limit_file_layout_via_the_cli(tmp_path):
    path = tmp_path / "cos4.toml"
    path.write_text(dumps_toml(d4_table()))
    proc = subprocess.run([*MFPDE, "limit", str(path), "--out", str(tmp_path), "--quiet", "--points", "625"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    out = Path(proc.stdout.strip().splitlines()[-1].removeprefix("wrote "))
    assert out.name == "cos4.limit.h5" and "error estimate" in proc.stdout and "experts needed" in proc.stdout
    with h5py.File(out) as f:
        assert f.attrs["kind"] == "limit" and f.attrs["complete"]
        T = len(f["observables/t"])
        assert T == 3 and f["observables/F"].shape == (T, 4) and f["observables/moments"].shape[0] == T
        assert "mass" not in f["observables"] and "min_rho" not in f["observables"]
        assert f["limit/theta"].shape == (T, 625, 4) and f["limit/weights"].shape == (625,)
        assert f["limit/rule"][()].decode() == "tensor-trapezoid"
        assert f["limit/error_estimate"].shape == (T,) and f["clt/cov"].shape == (T, 4, 4)
        assert list(f["clt/experts_needed/accuracy"][()]) == [0.1, 0.01, 0.001]
        assert "provenance/git_revision" in f and "case" in f
        # the observables are those of the stored weighted points
        th, a = f["limit/theta"][-1], f["limit/weights"][()]
        x = f["data/x"][()][:, 0]
        F = np.prod(np.cos(x[:, None, None] - th[None]), axis=2) @ a
        np.testing.assert_allclose(F, f["observables/F"][-1], atol=1e-12)
    assert not (tmp_path / "cos4.limit.partial.h5").exists()


def test_resume_continues_to_the_same_observables(tmp_path, monkeypatch):
    """Interrupted after two saved times, resumed: the same observables as an uninterrupted run."""
    case = cosine_case(t_end=1.5)
    case.limit.save_every = 0.25
    full, _ = run_limit(case, 128, out_dir=tmp_path / "full", progress=False, clt=False)
    calls = {"n": 0}
    advance = Characteristics.advance

    def crash(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # t = 0 (no step), 0.25, 0.5, then interrupted
            raise KeyboardInterrupt
        return advance(self, *args, **kw)

    monkeypatch.setattr(Characteristics, "advance", crash)
    with pytest.raises(KeyboardInterrupt):
        run_limit(case, 128, out_dir=tmp_path / "cut", progress=False, clt=False)
    monkeypatch.setattr(Characteristics, "advance", advance)
    with h5py.File(tmp_path / "cut" / "cosine-1d.limit.partial.h5") as f:
        assert len(f["observables/t"]) == 3 and not f.attrs["complete"]
    resumed, path = run_limit(case, 128, out_dir=tmp_path / "cut", resume=True, progress=False, clt=False)
    for key in ("t", "F", "risk", "moments", "error_estimate"):
        np.testing.assert_allclose(resumed[key], full[key], rtol=0, atol=1e-12, err_msg=key)
    with h5py.File(path) as f:
        assert f["limit/theta"].shape[0] == len(full["t"])
    with pytest.raises(Exception, match="rule"):  # a partial file of another rule is refused
        (tmp_path / "cut" / "cosine-1d.limit.partial.h5").write_bytes(
            (tmp_path / "cut" / "cosine-1d.limit.h5").read_bytes())
        run_limit(case, 64, out_dir=tmp_path / "cut", resume=True, progress=False, clt=False)


@pytest.mark.mpi
def test_limit_on_two_ranks_equals_one_rank():
    out = mpirun("limit_ranks.py")
    assert "max diff" in out.stdout


def test_compare_and_study_with_a_limit_reference(tmp_path):
    """A d = 4 case: the study runs without a mesh (reference = limit automatically), the
    observable error of i.i.d. experts decays like N^-1/2, the report has the CLT section."""
    from mfpde.runs.compare import compare_files
    from mfpde.runs.particles import run_particles
    from mfpde.runs.study import run_study

    table = d4_table()
    table["study"] = {"n": [64, 256, 1024], "seeds": 8}
    table["particles"] = {"dt": 0.05}
    case = case_from_dict(table)
    out = run_study(case, out_dir=tmp_path, progress=False)
    assert (tmp_path / "cos4.limit.h5").is_file()
    # 8 seeds: the bootstrap CI of the slope is ~0.34 wide (measured -0.637, CI [-0.803, -0.467], r2 0.992),
    # so a fixed band +-0.2 around -1/2 says no more than the CI; the CI must hold -1/2 and be that narrow
    fit = out["fits"]["observable_error"]
    assert fit.ci[0] <= -0.5 <= fit.ci[1] and fit.ci[1] - fit.ci[0] < 0.4 and fit.r2 > 0.95, fit
    assert out["fits"]["wasserstein"].theory_slope == -0.25  # N^-1/d for d = 4
    report = Path(out["report"]).read_text()
    assert "## Fluctuations (CLT)" in report and "| 0.01 |" in report
    with h5py.File(out["path"]) as f:
        assert f["study/reference"][()].decode() == "limit" and f["study/particles_F"].shape == (3, 8, 3, 4)
    _, p = run_particles(case, 128, 1, out_dir=tmp_path, progress=False)
    res = compare_files(tmp_path / "cos4.limit.h5", [p], out_dir=tmp_path)
    ref = LimitResult.from_file(tmp_path / "cos4.limit.h5")
    assert res["path"].name == "cos4.limit.compare.h5"
    assert np.isfinite(res["metrics"][0]["wasserstein"]).all()
    assert ref.clt_cov.shape == (3, 4, 4)
