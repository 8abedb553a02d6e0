"""The finite-N particle trainer (DESIGN section 4)."""

import os
import subprocess
import sys
import tomllib

import h5py
import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from conftest import killed_after_save, mpirun, saved_states
from mfpde.config.case import case_from_dict, default_case, default_case_text, dumps_toml
from mfpde.particles.system import ParticleSystem
from mfpde.runs.particles import run_particles
from mfpde.io.hdf5 import partial_path


def test_rhs_equals_pennylane_autodiff_of_the_literal_moe_loss():
    case = default_case()
    lr, N = 0.7, 5
    x, y, w = case.data.x[:, 0], case.data.y, case.data.w
    qnode = case.expert.qnode()
    rng = np.random.default_rng(11)
    theta = rng.uniform(0, 2 * np.pi, (N, 2))

    def loss(th):  # L_N = 1/2 sum_k w_k (f_N(x_k) - y_k)^2, f_N = (1/N) sum_i phi(x_k; theta_i)
        total = 0.0
        for k in range(len(x)):
            f = sum(qnode(pnp.array([x[k]], requires_grad=False), th[i]) for i in range(N)) / N
            total = total + 0.5 * w[k] * (f - y[k]) ** 2
        return total

    grad = qml.grad(loss)(pnp.array(theta, requires_grad=True))
    system = ParticleSystem(case.expert.bind(case.data.x), y, w, lr, 0.0, N)
    v, F = system.rhs(theta)
    np.testing.assert_allclose(v, -lr * N * np.asarray(grad), rtol=0, atol=1e-10)
    phi_ref = np.array([[qnode(np.array([xk]), th) for th in theta] for xk in x])
    np.testing.assert_allclose(F, phi_ref.mean(axis=1), atol=1e-12)


def test_rk4_is_fourth_order():
    case = default_case()
    system = ParticleSystem(case.expert.bind(case.data.x), case.data.y, case.data.w, 1.0, 0.0, 16)
    start = system.initial_state(lambda n, rng: rng.uniform(0, 2 * np.pi, (n, 2)), 0)

    def final(dt):
        s = system.initial_state(lambda n, rng: rng.uniform(0, 2 * np.pi, (n, 2)), 0)
        system.advance(s, 1.0, dt)
        return np.unwrap(s.theta - start.theta)

    ref = final(1 / 640)
    errs = [np.max(np.abs(final(dt) - ref)) for dt in (1 / 10, 1 / 20, 1 / 40)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.7), (errs, orders)


def test_euler_is_first_order_and_integrator_euler_is_what_runs():
    """``integrator = "euler"`` in a case runs forward Euler: error ratio 2 per halving of dt."""
    table = tomllib.loads(default_case_text())
    table["dynamics"]["t_end"] = 1.0
    case = case_from_dict(table)
    system = ParticleSystem(case.expert.bind(case.data.x), case.data.y, case.data.w, 1.0, 0.0, 16, integrator="euler")
    assert system.integrator == "euler"

    def final(dt, integrator):
        system.integrator = integrator
        s = system.initial_state(lambda n, rng: rng.uniform(0, 2 * np.pi, (n, 2)), 0)
        system.advance(s, 1.0, dt)
        return s.theta

    ref = final(1 / 640, "rk4")
    errs = np.array([np.max(np.abs(np.unwrap(final(dt, "euler") - ref))) for dt in (1 / 20, 1 / 40, 1 / 80)])
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.abs(orders - 1.0) < 0.15), (errs, orders)


def test_noise_has_the_heat_kernel_decay():
    # pure diffusion on the circle (drift negligible): E exp(i (theta_t - theta_0)) = exp(-tau t)
    case = default_case()
    tau, t, N = 0.3, 1.0, 20000
    system = ParticleSystem(case.expert.bind(case.data.x), case.data.y, case.data.w, 1e-12, tau, N)
    s = system.initial_state(lambda n, rng: rng.uniform(0, 2 * np.pi, (n, 2)), 5)
    theta0 = s.theta.copy()
    system.advance(s, t, 0.05)
    c = np.cos(s.theta - theta0)
    assert abs(c.mean() - np.exp(-tau * t)) < 4 * c.std() / np.sqrt(c.size)


@pytest.mark.mpi
def test_mpi_two_ranks_equal_one_rank():
    out = mpirun("particles_ranks.py")
    assert "max |theta diff|" in out.stdout


def small_case_file(tmp_path, tau=0.05, t_end=2.0, dt=0.002):
    table = tomllib.loads(default_case_text())
    table["dynamics"].update(t_end=t_end, tau=tau)
    table["particles"].update(save_every=0.25, dt=dt)
    path = tmp_path / "small.toml"
    path.write_text(dumps_toml(table))
    return path


def test_file_layout_and_no_temporary_left(tmp_path):
    case_file = small_case_file(tmp_path, tau=0.0, t_end=0.5)
    case = case_from_dict(tomllib.loads(case_file.read_text()))
    obs, path = run_particles(case, 12, 4, out_dir=tmp_path / "o", progress=False)
    assert sorted(os.listdir(tmp_path / "o")) == [path.name]
    with h5py.File(path) as f:
        assert f.attrs["complete"] and f.attrs["kind"] == "particles"
        T = len(f["observables/t"])
        assert f["particles/theta"].shape == (T, 12, 2) and f["observables/F"].shape == (T, 16)
        assert f["particles/N"][()] == 12 and f["particles/seed"][()] == 4
        for key in ("case", "provenance/versions", "provenance/mpi_size", "provenance/git_revision",
                    "data/x", "data/y", "data/w", "observables/risk", "observables/moments",
                    "observables/moment_freqs"):
            assert key in f, key
        np.testing.assert_allclose(f["observables/risk"][()], obs["risk"], rtol=0, atol=0)
        assert tomllib.loads(f["case"][()].decode())["name"] == "qnn-1q-2p"


def test_resume_after_kill_9_gives_the_same_observables(tmp_path):
    """The run kills itself (SIGKILL) after its 3rd save; --resume ends equal to an uninterrupted run
    (noise: the random stream is restored from the file)."""
    case_file = small_case_file(tmp_path)
    exe = [sys.executable, "-m", "mfpde.cli", "particles", str(case_file), "--n", "500", "--seed", "2", "--quiet"]
    ref = subprocess.run(exe + ["--out", str(tmp_path / "ref")], capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    ref_path = ref.stdout.strip().splitlines()[-1].removeprefix("wrote ")

    out = tmp_path / "killed"
    final = out / os.path.basename(ref_path)
    killed_after_save(exe + ["--out", str(out)], 3)
    assert saved_states(partial_path(final)) == 3 and not final.exists()

    again = subprocess.run(exe + ["--out", str(out), "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with h5py.File(ref_path) as a, h5py.File(final) as b:
        assert len(a["observables/t"]) == 9
        for key in ("observables/t", "observables/F", "observables/risk", "observables/moments", "particles/theta"):
            np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-12, err_msg=key)
    assert not partial_path(final).exists()
