"""Lazy (NTK) scaling and the regimes experiment (DESIGN 10.4)."""

import tomllib

import h5py
import numpy as np
import pennylane as qml
import pytest
import scipy.linalg
from mpi4py import MPI
from pennylane import numpy as pnp

from conftest import mpirun
from mfpde.config.case import InitSpec, case_from_dict, default_case, default_case_text, dumps_toml
from mfpde.cli import main
from mfpde.model.velocity import risk
from mfpde.analysis.rates import fit_rate
from mfpde.model.ntk import limit_residual, limit_risk, ntk_kernel
from mfpde.particles.system import ParticleSystem
from mfpde.runs.regimes import torus_displacement
from mfpde.runs.particles import run_particles
from mfpde.io.hdf5 import partial_path, read_run, write_run


def small_table(**dynamics) -> dict:
    table = tomllib.loads(default_case_text())
    table["dynamics"].update(t_end=0.5, **dynamics)
    table["pde"].update(n=8, save_every=0.25)
    table["particles"].update(dt=0.05, save_every=0.25)
    return table


def write_case(tmp_path, table, name="case.toml"):
    path = tmp_path / name
    path.write_text(dumps_toml(table))
    return path


def test_ntk_rhs_equals_pennylane_autodiff_of_the_literal_loss():
    case = default_case()
    lr, N = 0.7, 5
    x, y, w = case.data.x[:, 0], case.data.y, case.data.w
    qnode = case.expert.qnode()
    rng = np.random.default_rng(3)
    theta0 = rng.uniform(0, 2 * np.pi, (N, 2))
    theta = theta0 + rng.normal(0, 0.3, (N, 2))
    phi0 = [[float(qnode(np.array([xk]), th)) for th in theta0] for xk in x]

    def loss(th):  # L_N = 1/2 sum_k w_k (f_N(x_k) - y_k)^2, f_N = N^-1/2 sum_i (phi(x_k; th_i) - phi(x_k; th_i(0)))
        total = 0.0
        for k in range(len(x)):
            f = sum(qnode(pnp.array([x[k]], requires_grad=False), th[i]) - phi0[k][i] for i in range(N)) / np.sqrt(N)
            total = total + 0.5 * w[k] * (f - y[k]) ** 2
        return total

    grad = qml.grad(loss)(pnp.array(theta, requires_grad=True))
    system = ParticleSystem(case.expert.bind(case.data.x), y, w, lr, 0.0, N, scaling="ntk")
    system.set_origin(theta0)
    v, F = system.rhs(theta)
    np.testing.assert_allclose(v, -lr * np.asarray(grad), rtol=0, atol=1e-10)  # d theta_i/dt = -lr grad_i L_N
    f_ref = (np.array([[float(qnode(np.array([xk]), th)) for th in theta] for xk in x]) - phi0).sum(axis=1) / np.sqrt(N)
    np.testing.assert_allclose(F, f_ref, atol=1e-12)
    np.testing.assert_allclose(system.output(theta), f_ref, atol=1e-12)
    np.testing.assert_array_equal(system.output(theta0), 0.0)  # centred: f_N = 0 at t = 0


def _direct_kernel(bound, init, n=96):
    """Theta_kl = int grad phi_k . grad phi_l rho_0 by the trapezoid rule on an n x n grid (spectral for smooth rho_0)."""
    from mfpde.model.initial import InitialDensity

    g = 2 * np.pi * np.arange(n) / n
    pts = np.stack([a.ravel() for a in np.meshgrid(g, g, indexing="ij")], axis=1)
    _, grad = bound(pts)  # (K, M, 2)
    q = InitialDensity(2, init)(pts) * (2 * np.pi / n) ** 2
    return np.einsum("kmd,lmd,m->kl", grad, grad, q)


@pytest.mark.parametrize("init", [InitSpec(), InitSpec("vonmises", [0.3, -1.0], [1.5, 0.7])],
                         ids=["uniform", "vonmises"])
def test_kernel_is_exact_against_a_direct_quadrature(init):
    case = default_case()
    exact = ntk_kernel(case.expert, case.data.x, init)
    direct = _direct_kernel(case.expert.bind(case.data.x), init)
    assert np.max(np.abs(exact - direct)) < 1e-13 * np.max(np.abs(direct))
    assert np.all(np.linalg.eigvalsh(exact) > -1e-13)  # a Gram matrix


def test_limit_risk_is_the_matrix_exponential():
    case = default_case()
    K, w, y, lr = ntk_kernel(case.expert, case.data.x, case.init), case.data.w, case.data.y, 0.8
    t = np.array([0.0, 0.3, 1.0, 4.0])
    ref = np.array([scipy.linalg.expm(-lr * K @ np.diag(w) * s) @ (-y) for s in t])
    np.testing.assert_allclose(limit_residual(K, w, y, lr, t), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(limit_risk(K, w, y, lr, t), risk(ref, y * 0, w), rtol=1e-12)


def test_ntk_experts_move_like_n_to_the_minus_half_and_the_risk_approaches_the_limit():
    case = default_case()
    bound = case.expert.bind(case.data.x)
    kernel = ntk_kernel(case.expert, case.data.x, case.init)
    limit = limit_risk(kernel, case.data.w, case.data.y, 1.0, [1.0])[0]
    ns, seeds = [32, 128, 512, 2048], range(4)
    disp, gap = np.empty((len(ns), len(seeds))), np.empty((len(ns), len(seeds)))
    for a, n in enumerate(ns):
        system = ParticleSystem(bound, case.data.y, case.data.w, 1.0, 0.0, n, scaling="ntk")
        for s in seeds:
            state = system.initial_state(lambda m, rng: rng.uniform(0, 2 * np.pi, (m, 2)), s)
            theta0 = state.theta.copy()
            system.advance(state, 1.0, 0.1)
            disp[a, s] = torus_displacement(theta0, state.theta).mean()
            gap[a, s] = abs(risk(system.output(state.theta), case.data.y, case.data.w) - limit)
    fit = fit_rate(ns, disp)  # measured: -0.516, CI [-0.525, -0.507]
    assert -0.6 < fit["ci"][0] <= fit["ci"][1] < -0.4, fit
    fit = fit_rate(ns, gap)  # measured: -0.80, CI [-0.98, -0.62]; relative gap 0.4% at N = 2048
    assert fit["ci"][1] < -0.35 and gap[-1].mean() < 0.02 * limit, (fit, gap.mean(axis=1) / limit)


def test_ntk_two_ranks_equal_one_rank_and_regimes_round_robin(tmp_path):
    out = mpirun("ntk_ranks.py", tmp_path)
    assert "max |theta diff|" in out.stdout
    from mfpde.runs.regimes import run_regimes

    case = case_from_dict(small_table())
    res = run_regimes(case, [8, 16], 2, out_dir=tmp_path / "serial", comm=MPI.COMM_SELF, progress=False, plots=False)
    par, _ = read_run(tmp_path / "ranks" / res["path"].name)
    ser, _ = read_run(res["path"])
    for sc in ("mean-field", "ntk"):
        for q in ("displacement", "kernel_change", "risk"):
            np.testing.assert_allclose(par["regimes"][sc][q], ser["regimes"][sc][q], rtol=0, atol=1e-12)
    np.testing.assert_allclose(par["regimes"]["mean-field_limit"]["risk"], ser["regimes"]["mean-field_limit"]["risk"],
                               rtol=1e-10)
    assert par["provenance"]["mpi_size"] == 2


def test_ntk_resume_gives_the_same_observables(tmp_path):
    case = case_from_dict(small_table(scaling="ntk"))
    ref, path = run_particles(case, 40, 1, out_dir=tmp_path, progress=False)
    tree, attrs = read_run(path)
    keep = 2  # an interrupted run: the first two saved states in the partial file, no final file
    tree["observables"] = {k: (v[:keep] if k != "moment_freqs" else v) for k, v in tree["observables"].items()}
    tree["particles"]["theta"] = tree["particles"]["theta"][:keep]
    tree["particles"]["step"] = (keep - 1) * 5
    write_run(partial_path(path), tree, {**attrs, "complete": False})
    path.unlink()
    again, _ = run_particles(case, 40, 1, out_dir=tmp_path, resume=True, progress=False)
    for key in ("F", "risk", "moments"):
        np.testing.assert_allclose(again[key], ref[key], rtol=0, atol=1e-12, err_msg=key)
    assert np.abs(again["F"][0]).max() == 0.0


def test_regimes_file_layout_and_report(tmp_path, capsys):
    case_file = write_case(tmp_path, small_table())
    assert main(["regimes", str(case_file), "--n", "8,16", "--seeds", "2", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ntk" in out and "regimes.h5" in out
    T = 3
    with h5py.File(tmp_path / "o" / "qnn-1q-2p.regimes.h5") as f:
        assert f.attrs["kind"] == "regimes" and f.attrs["complete"]
        assert list(f["regimes/N"][()]) == [8, 16]
        for sc in ("mean-field", "ntk"):
            assert f[f"regimes/{sc}/displacement"].shape == (2, 2)
            assert f[f"regimes/{sc}/kernel_change"].shape == (2, 2)
            assert f[f"regimes/{sc}/risk"].shape == (2, 2, T)
            assert f[f"regimes/fit/{sc}/displacement/ci"].shape == (2,)
            assert np.isfinite(f[f"regimes/fit/{sc}/displacement/slope"][()])
        for lim in ("ntk_limit", "mean-field_limit"):
            assert f[f"regimes/{lim}/risk"].shape == (T,)
        y, w = f["data/y"][()], f["data/w"][()]
        # r(0) = -y for the NTK particles and limit, exactly
        np.testing.assert_allclose(f["regimes/ntk/risk"][:, :, 0], 0.5 * np.sum(w * y**2), rtol=1e-14)
        np.testing.assert_allclose(f["regimes/ntk_limit/risk"][0], 0.5 * np.sum(w * y**2), rtol=1e-14)
    for name in ("qnn-1q-2p.regimes.md", "qnn-1q-2p.regimes.vs_n.png", "qnn-1q-2p.regimes.risk.png",
                 "qnn-1q-2p.regimes.snapshot.png", "qnn-1q-2p.pde.h5"):
        assert (tmp_path / "o" / name).is_file(), name
    assert "| ntk | displacement |" in (tmp_path / "o" / "qnn-1q-2p.regimes.md").read_text()
    # mfpde plot knows the kind: the same three figures, elsewhere
    assert main(["plot", str(tmp_path / "o" / "qnn-1q-2p.regimes.h5"), "--out", str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p").glob("*.png")) == [
        "qnn-1q-2p.regimes.risk.png", "qnn-1q-2p.regimes.snapshot.png", "qnn-1q-2p.regimes.vs_n.png"]


@pytest.mark.parametrize("argv, key", [
    (["particles"], "dynamics.scaling"),  # unknown value
    (["pde"], "dynamics.scaling"),        # ntk given to the PDE
    (["particles"], "dynamics.tau"),      # ntk with noise
])
def test_refusals_are_one_line(tmp_path, capsys, argv, key):
    dyn = {"scaling": "lazy"} if key == "dynamics.scaling" and argv == ["particles"] else {"scaling": "ntk"}
    if key == "dynamics.tau":
        dyn["tau"] = 0.1
    case_file = write_case(tmp_path, small_table(**dyn))
    code = main(argv + [str(case_file), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"mfpde: error: {key}: ")
    assert not (tmp_path / "o").exists()
