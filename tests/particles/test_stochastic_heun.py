"""The particles with noise (tau > 0): the stochastic Heun method's strong error on a shared Brownian path,
and the stationary state against the closed-form Gibbs state of cases/gibbs-1d.toml.

For additive noise sigma = sqrt(2 tau), d theta = b(theta) dt + sigma dW, both Euler-Maruyama and the
stochastic Heun method (predictor theta + h b + sigma dW, corrector theta + h (b + b(pred)) / 2 + sigma dW)
have strong order 1 (mfpde/particles/system.py: "strong order 1 for this additive noise").  They differ in the
constant of the leading local error b' sigma (int_0^h W_s ds - c h dW): Euler-Maruyama has c = 0
(variance h^3 / 3), Heun c = 1/2 (variance h^3 / 12), so Heun's strong error is half of Euler's.  A Heun
predictor without the noise has c = 0 again (error ~0.85 of Euler's, measured): the ratio is the test.
"""

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import i0e, i1e

from mfpde.particles.system import ParticleState, ParticleSystem

X, Y, W = np.array([0.0, -np.pi / 2]), np.array([0.5, 0.0]), np.array([0.5, 0.5])  # cases/gibbs-1d.toml


def gibbs_expert(theta):
    """phi(x_k; theta) = cos(x_k + theta) (the circuit RY(x) RY(theta), observable Z) and its gradient."""
    a = X[:, None] + theta[None, :, 0]
    return np.cos(a), -np.sin(a)[:, :, None]


class BrownianPath:
    """Stands in for the state's random generator: the increments of one fine Brownian path, summed over
    blocks of ``k`` fine steps, returned as the standard normals the step scales by sqrt(h)."""

    def __init__(self, dW: np.ndarray, k: int, h: float):
        self.dW, self.k, self.h, self.i = dW, k, h, 0

    def standard_normal(self, shape):
        block = self.dW[self.i:self.i + self.k].sum(axis=0)
        self.i += self.k
        assert block.shape == tuple(shape)
        return block / np.sqrt(self.h)


def solve_on_path(integrator, steps, dW, T, theta0, lr, tau):
    system = ParticleSystem(gibbs_expert, Y, W, lr, tau, len(theta0), integrator=integrator)
    assert system.integrator == integrator
    h = T / steps
    state = ParticleState(theta=theta0.copy(), t=0.0, step=0, rng=BrownianPath(dW, len(dW) // steps, h))
    for _ in range(steps):
        system.step(state, h)
    return state.theta


def rms_torus(a, b):
    d = np.mod(a - b + np.pi, 2 * np.pi) - np.pi
    return float(np.sqrt(np.mean(d**2)))


def test_strong_order_one_and_heuns_constant_on_a_shared_brownian_path():
    """400 particles, lr = 4, tau = 0.5, T = 1; the reference is Heun with 4096 steps on the same path.
    Measured strong errors h = 1/8 .. 1/128: Heun 1.9e-2 .. 1.2e-3 (slope 0.99), Euler 3.8e-2 .. 2.4e-3
    (slope 1.00), Heun / Euler 0.50 .. 0.51 (0.84 .. 0.89 with the predictor's noise left out)."""
    N, T, lr, tau, fine = 400, 1.0, 4.0, 0.5, 4096
    rng = np.random.default_rng(0)
    theta0 = rng.uniform(0, 2 * np.pi, (N, 1))
    dW = rng.standard_normal((fine, N, 1)) * np.sqrt(T / fine)
    ref = solve_on_path("heun", fine, dW, T, theta0, lr, tau)
    steps = np.array([8, 16, 32, 64, 128])
    err = {k: np.array([rms_torus(solve_on_path(k, n, dW, T, theta0, lr, tau), ref) for n in steps])
           for k in ("heun", "euler")}
    for k, e in err.items():
        slope = np.polyfit(np.log(T / steps), np.log(e), 1)[0]
        assert 0.9 < slope < 1.1, (k, slope, e)  # strong order 1 (additive noise)
    ratio = err["heun"] / err["euler"]
    assert np.all((0.4 < ratio) & (ratio < 0.62)), ratio  # 1/2 in the limit h -> 0


def gibbs_m(beta=5.0):
    """F(x_1) at the Gibbs state rho ~ exp(beta (y_1 - m) cos theta): m = I1(beta (y_1 - m)) / I0(...)."""
    return brentq(lambda m: m - i1e(beta * (0.5 - m)) / i0e(beta * (0.5 - m)), 0.0, 0.5)


def test_particles_reach_the_closed_form_gibbs_state():
    """cases/gibbs-1d.toml with particles: N = 4000, dt = 0.2, von Mises start, F averaged over 80 times
    in t = 10.5 .. 50.  Closed form: F(x_1) -> m = 0.3502911822, F(x_2) -> 0 (docs/pde.md).  Measured
    differences 2.2e-3, 6.1e-4 (dt = 0.05: -6.3e-4, -3.6e-3; the time average has ~10-20 independent
    samples of std 1e-2 each, so 1e-2 is a 3-4 sigma bound).  With beta doubled (noise sqrt(tau) instead
    of sqrt(2 tau)) m = 0.410: caught."""
    m = gibbs_m()
    assert abs(m - 0.3502911822) < 1e-10 and abs(gibbs_m(10.0) - m) > 0.04
    system = ParticleSystem(gibbs_expert, Y, W, 1.0, 0.1, 4000)
    assert system.integrator == "heun"
    state = system.initial_state(lambda n, rng: rng.vonmises(0.3, 0.7, (n, 1)), 0)
    system.advance(state, 10.0, 0.2)
    F = []
    for k in range(1, 81):
        system.advance(state, 10.0 + 0.5 * k, 0.2)
        F.append(system.output(state.theta))
    F = np.mean(F, axis=0)
    assert abs(F[0] - m) < 1e-2 and abs(F[1]) < 1e-2, (F, m)


@pytest.mark.parametrize("integrator", ["heun", "euler"])
def test_the_noise_has_variance_2_tau_dt_per_step(integrator):
    """Without drift (lr = 0) one step moves each particle by sqrt(2 tau h) xi exactly, with xi the state's
    standard normals: the step's noise is the documented sqrt(2 tau) dW."""
    theta0 = np.full((5, 1), 1.0)
    xi = np.array([0.3, -1.2, 0.5, 2.0, -0.1])[:, None]
    h, tau = 0.01, 0.3
    system = ParticleSystem(gibbs_expert, Y, W, 0.0, tau, 5, integrator=integrator)
    state = ParticleState(theta=theta0.copy(), t=0.0, step=0, rng=BrownianPath(xi[None] * np.sqrt(h), 1, h))
    system.step(state, h)
    np.testing.assert_allclose(state.theta, theta0 + np.sqrt(2 * tau * h) * xi, rtol=0, atol=1e-14)
