"""The regimes experiment's stored quantities recomputed from its stored snapshots, and the documented
slopes of the kernel change (mfpde.runs.regimes.PREDICTED: mean-field 0, NTK -1/2 or steeper)."""

import tomllib

import numpy as np
from mpi4py import MPI

from mfpde.analysis.rates import fit_rate
from mfpde.config.case import case_from_dict, default_case, default_case_text
from mfpde.io.hdf5 import read_run
from mfpde.particles.system import ParticleSystem
from mfpde.runs.regimes import PREDICTED, kernel_change, run_regimes


def frobenius_change(bound, theta0, theta1):
    """|K1 - K0|_F / |K0|_F with K = (1/N) sum_i grad phi(x_k; theta_i) . grad phi(x_l; theta_i), written out."""
    def K(theta):
        _, g = bound(theta)  # (K, N, d)
        return np.einsum("kid,lid->kl", g, g) / theta.shape[0]
    k0, k1 = K(theta0), K(theta1)
    return np.sqrt(np.sum((k1 - k0) ** 2)) / np.sqrt(np.sum(k0**2))


def test_stored_kernel_change_and_displacement_recomputed_from_the_snapshot(tmp_path):
    """The snapshot (largest N, seed 0) holds theta(0) and theta(t_end) per scaling: from them the stored
    kernel_change[-1, 0] and displacement[-1, 0] are recomputed here to 1e-12."""
    table = tomllib.loads(default_case_text())
    table["dynamics"].update(t_end=0.5)
    table["pde"].update(n=8, save_every=0.25)
    table["particles"].update(dt=0.05, save_every=0.25)
    case = case_from_dict(table)
    res = run_regimes(case, [8, 16], 2, out_dir=tmp_path, comm=MPI.COMM_SELF, progress=False, plots=False)
    tree, _ = read_run(res["path"])
    reg = tree["regimes"]
    bound = case.expert.bind(case.data.x)
    for sc in ("mean-field", "ntk"):
        snap = reg["snapshot"][sc]
        th0, th1 = snap["theta0"], snap["theta_end"]
        assert th0.shape == (16, 2)
        change = frobenius_change(bound, th0, th1)
        assert change > 1e-4, change  # the experts moved
        np.testing.assert_allclose(reg[sc]["kernel_change"][-1, 0], change, rtol=1e-12)
        d = np.mod(th1 - th0 + np.pi, 2 * np.pi) - np.pi
        np.testing.assert_allclose(reg[sc]["displacement"][-1, 0], np.sqrt((d**2).sum(axis=1)).mean(), rtol=1e-12)
        np.testing.assert_allclose(snap["displacement"], np.sqrt((d**2).sum(axis=1)), rtol=1e-12)


def test_kernel_change_slopes_against_n():
    """Default case, t = 1, N = 32 .. 2048, 4 seeds: the mean-field kernel change does not decay (slope 0),
    the NTK one decays like N^-1/2 or faster (PREDICTED; here -1: the default circuit has the symmetry that
    cancels the N^-1/2 term)."""
    case = default_case()
    bound = case.expert.bind(case.data.x)
    ns, seeds = [32, 128, 512, 2048], range(4)
    change = {sc: np.empty((len(ns), len(seeds))) for sc in ("mean-field", "ntk")}
    for sc in change:
        for a, n in enumerate(ns):
            system = ParticleSystem(bound, case.data.y, case.data.w, 1.0, 0.0, n, scaling=sc)
            for s in seeds:
                state = system.initial_state(lambda m, rng: rng.uniform(0, 2 * np.pi, (m, 2)), s)
                theta0 = state.theta.copy()
                system.advance(state, 1.0, 0.1)
                change[sc][a, s] = kernel_change(bound, theta0, state.theta)
                if a == 0 and s == 0:
                    assert abs(change[sc][a, s] - frobenius_change(bound, theta0, state.theta)) < 1e-12
    mf, ntk = fit_rate(ns[-2:], change["mean-field"][-2:]), fit_rate(ns, change["ntk"])
    assert PREDICTED["mean-field", "kernel_change"][0] == 0.0 and PREDICTED["ntk", "kernel_change"][0] == -0.5
    # mean-field: K_N(t) - K_N(0) -> K(t) - K(0) != 0, plus fluctuations O(N^-1/2) that dominate at small N
    # (measured means 0.074, 0.051, 0.034, 0.033): slope 0 on the last two N (measured -0.008)
    assert abs(mf["slope"]) < 0.1 and change["mean-field"].min() > 0.02, mf
    # NTK: measured means 1.3e-2 .. 1.7e-4, slope -1.05, CI [-1.18, -0.91]
    assert ntk["ci"][1] < -0.5 and ntk["ci"][0] < -1 < ntk["ci"][1], ntk


def test_displacement_is_the_torus_distance_across_the_seam():
    """Moves across the seam count as short moves: 0.05 -> 2 pi - 0.03 is 0.08, 6.2 -> 0.1 is 0.1832."""
    from mfpde.runs.regimes import torus_displacement

    th0 = np.array([[0.05, 6.2], [1.0, 1.0]])
    th1 = np.array([[2 * np.pi - 0.03, 0.1], [1.3, 0.6]])
    np.testing.assert_allclose(torus_displacement(th0, th1), [np.hypot(0.08, 0.1 + 2 * np.pi - 6.2), 0.5], rtol=1e-12)
