r"""The finite-N mixture of experts trained by gradient flow (DESIGN sections 1, 4).

.. math::

    \frac{d\theta_i}{dt} = -\mathrm{lr}\, N \nabla_{\theta_i} L_N
      = -\mathrm{lr} \sum_k w_k \big(f_N(x_k) - y_k\big) \nabla_\theta \phi(x_k;\theta_i)
      \;[+ \sqrt{2\tau}\, dW_i],
    \qquad f_N = \frac1N \sum_i \phi(\cdot;\theta_i).

The particles are split in contiguous blocks over the MPI ranks; the only
communication is the sum of the K mixture outputs ``f_N(x_k)`` (one
``Allreduce`` per right-hand side).  Initial positions and noise increments
are drawn from one random stream for all N particles on every rank, and each
rank keeps its block, so trajectories do not depend on the number of ranks.

With ``scaling = "ntk"`` (DESIGN 10.4, the lazy regime) the mixture is
:math:`f_N = N^{-1/2}\sum_i (\phi(\cdot;\theta_i) - \phi(\cdot;\theta_i(0)))` and
:math:`d\theta_i/dt = -\mathrm{lr}\, N^{-1/2} \sum_k w_k (f_N(x_k) - y_k) \nabla_\theta\phi(x_k;\theta_i)`
(:mod:`mfpde.model.ntk`): the same velocity with output weight :math:`N^{-1/2}`,
learning rate :math:`\mathrm{lr} N^{-1/2}` and the targets shifted by the
initial output ``offset`` (set by :meth:`ParticleSystem.set_origin` from
:math:`\theta(0)`, one more ``Allreduce`` of K numbers, once).

Integrators: ``rk4`` (deterministic, default), ``euler``, and ``heun`` (the
stochastic Heun method, strong order 1 for this additive noise; used when
``tau > 0`` with ``rk4`` requested).

A step never passes silently when it goes wrong: non-finite values stop the
run (the expert's own NaN told apart from a diverging step), and for
``tau = 0``, where the risk of a gradient flow never rises, a rise beyond
round-off (:data:`RISK_RISE_TOL` of the first risk) stops it as an unstable
step.  Either way the state is the last good one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from mfpde.config.rules import particle_integrator
from mfpde.errors import NonFiniteError, UnstableStepError
from mfpde.model.velocity import ExpertAt, risk, velocity
from mfpde.parallel import collective
from mfpde.constants import TWO_PI
from mfpde.model.ntk import scaled_weight_and_lr

# a rise beyond this fraction of the first risk is an unstable step; the examples' risk
# falls at every step, down to round-off (cosine-1d to t = 60: R = 4e-26, never rose)
RISK_RISE_TOL = 1e-8


def block_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """Contiguous block [start, stop) of n items owned by ``rank``."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


@dataclass
class ParticleState:
    theta: np.ndarray        # (n_local, d) this rank's particles, in [0, 2 pi)
    t: float
    step: int                # steps taken so far
    rng: np.random.Generator
    watch: tuple | None = None   # tau = 0: (theta, t, step, risk) at the start of the previous step
    risk0: float | None = None   # the first risk watched


class ParticleSystem:
    """N experts, this rank's block of them, and their right-hand side."""

    def __init__(self, expert_at: ExpertAt, y, w, lr: float, tau: float, n: int,
                 comm: MPI.Comm = MPI.COMM_WORLD, integrator: str = "rk4", scaling: str = "mean-field"):
        self.expert_at, self.y, self.w = expert_at, np.asarray(y, float), np.asarray(w, float)
        self.lr, self.tau, self.n, self.comm = float(lr), float(tau), int(n), comm
        self.start, self.stop = block_range(self.n, comm.rank, comm.size)
        self.scaling = scaling
        self.weight, self.lr_eff = scaled_weight_and_lr(scaling, self.n, self.lr)
        self.offset = np.zeros_like(self.y)  # ntk: N^{-1/2} sum_i phi(x_k; theta_i(0))
        self.integrator = particle_integrator(integrator, tau)  # rk4 runs as heun with noise

    # -- the mean-field velocity, F summed over ranks
    def _allreduce(self, local: np.ndarray) -> np.ndarray:
        if self.comm.size == 1:
            return local
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.SUM)
        return out

    def rhs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(velocity of this rank's particles (n_local, d), f_N(x_k) (K,))."""
        v, F = velocity(theta, self.weight, self.expert_at, self.y + self.offset, self.w, self.lr_eff,
                        self._allreduce)
        return v, F - self.offset

    def output(self, theta: np.ndarray) -> np.ndarray:
        """f_N(x_k) for all k (K,), identical on all ranks."""
        phi, _ = self.expert_at(theta)
        return self._allreduce(self.weight * phi.sum(axis=1)) - self.offset

    def set_origin(self, theta0: np.ndarray) -> None:
        """ntk: centre the output at this rank's initial positions ``theta0`` (f_N(0) = 0)."""
        if self.scaling == "ntk":
            phi, _ = self.expert_at(theta0)
            self.offset = self._allreduce(self.weight * phi.sum(axis=1))

    # -- initial state
    def initial_state(self, sample, seed: int) -> ParticleState:
        """Draw all N initial points from one stream (seeded), keep this rank's block."""
        rng = np.random.default_rng(seed)
        theta = np.mod(np.asarray(sample(self.n, rng), float)[self.start:self.stop], TWO_PI)
        self.set_origin(theta)
        return ParticleState(theta=theta, t=0.0, step=0, rng=rng)

    # -- one step
    def step(self, state: ParticleState, dt: float) -> None:
        th = state.theta
        if self.integrator == "rk4":
            k1, F = self.rhs(th)
            self._watch_risk(state, F)
            k2, _ = self.rhs(th + 0.5 * dt * k1)
            k3, _ = self.rhs(th + 0.5 * dt * k2)
            k4, _ = self.rhs(th + dt * k3)
            new = th + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        else:
            noise = 0.0
            if self.tau > 0:
                # the same N x d increments on every rank, each keeps its block
                xi = state.rng.standard_normal((self.n, th.shape[1]))[self.start:self.stop]
                noise = np.sqrt(2 * self.tau * dt) * xi
            k1, F = self.rhs(th)
            self._watch_risk(state, F)
            if self.integrator == "euler":
                new = th + dt * k1 + noise
            else:  # stochastic Heun: predictor-corrector with the same increment
                k2, _ = self.rhs(th + dt * k1 + noise)
                new = th + 0.5 * dt * (k1 + k2) + noise
        if self.comm.allreduce(int(not np.all(np.isfinite(new))), op=MPI.SUM):
            raise self._non_finite(state)
        state.theta = np.mod(new, TWO_PI)
        state.t += dt
        state.step += 1

    def _non_finite(self, state: ParticleState) -> NonFiniteError:
        """The error for a non-finite step: the expert's own NaN/inf, or a diverging step."""
        phi, dphi = self.expert_at(state.theta)
        own = self.comm.allreduce(int(not (np.all(np.isfinite(phi)) and np.all(np.isfinite(dphi)))), op=MPI.SUM)
        where = f"at t = {state.t:.6g} (step {state.step})"
        if own:
            error = NonFiniteError(f"the expert returned a non-finite value (NaN or inf) at finite parameters {where}; "
                                   "check the expert (its values and theta-gradients must be finite)")
        else:
            error = NonFiniteError(f"non-finite particle positions {where}; reduce particles.dt")
        return collective(error, self.comm)  # decided by an allreduce: every rank raises it

    def _watch_risk(self, state: ParticleState, F: np.ndarray) -> None:
        """tau = 0: stop at a rise of the risk beyond round-off, back at the state
        before the step that raised it.  F (identical on every rank) is f_N at
        ``state.theta``, so every rank decides the same."""
        if self.tau > 0:
            return
        R = float(risk(F, self.y, self.w))
        if not np.isfinite(R):
            raise self._non_finite(state)
        if state.risk0 is None:
            state.risk0 = R
        if state.watch is not None and R > state.watch[3] + RISK_RISE_TOL * state.risk0:
            before = state.watch[3]
            state.theta, state.t, state.step, _ = state.watch
            error = UnstableStepError(
                f"the risk rose from {before:.6e} to {R:.6e} after the step at t = {state.t:.6g} (step {state.step}); "
                f"with tau = 0 it can only fall: the step is unstable for lr = {self.lr:g}, reduce particles.dt")
            raise collective(error, self.comm)
        state.watch = (state.theta.copy(), state.t, state.step, R)

    def advance(self, state: ParticleState, t_target: float, dt: float, on_step=None) -> None:
        """Equal steps of at most ``dt`` from ``state.t`` to exactly ``t_target``."""
        span = t_target - state.t
        if span <= 1e-14 * max(1.0, t_target):
            return
        n_steps = int(np.ceil(span / dt - 1e-9))
        h = span / n_steps
        for _ in range(n_steps):
            self.step(state, h)
            if on_step is not None:
                on_step(h)
        state.t = t_target  # no drift from summing h
        self._watch_risk(state, self.output(state.theta))  # before the state is saved

    def gather(self, theta: np.ndarray) -> np.ndarray | None:
        """All N particles on rank 0 (in global order), None elsewhere."""
        if self.comm.size == 1:
            return theta.copy()
        parts = self.comm.gather(theta, root=0)
        return np.concatenate(parts) if self.comm.rank == 0 else None

    def scatter(self, theta_all: np.ndarray | None) -> np.ndarray:
        """This rank's block of a global (N, d) array known on rank 0."""
        theta_all = self.comm.bcast(theta_all, root=0)
        return np.array(theta_all[self.start:self.stop], dtype=float)
