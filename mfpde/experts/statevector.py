r"""Exact batched simulation with adjoint gradients, cost ~ gates x 2^qubits per (expert, data) pair.

For the compiled circuit :math:`U = S_G D_G \cdots S_1 D_1 S_0` of
:mod:`.circuit` and all K x M pairs :math:`(x_k, \theta_m)` at once:

- forward: :math:`v \leftarrow S_0 e_0`, then per group
  :math:`v \leftarrow S_j (e^{i\theta\cdot h_j} \odot v)` (one batched matrix
  product per fixed segment, one elementwise phase per group);
- value: :math:`\phi = \langle v|O'|v\rangle` with :math:`O' = S_G^\dagger O S_G`
  (pure state), or :math:`\phi = \langle\lambda_0, v\rangle` with
  :math:`\lambda_0 = S_G^\dagger\,\mathrm{vec}(O)` (mixed state, linear in vec rho);
- adjoint: :math:`\lambda = O'v` (pure) or :math:`\lambda_0` (mixed) swept
  backwards, :math:`\lambda \leftarrow S_{j-1}^\dagger (e^{-i\theta\cdot h_j} \odot \lambda)`,
  and for every trainable gate t of group j

  .. math::

      \partial_{\theta_{i_t}}\phi \mathrel{+}= -c \sum_a h_{t,a}\,
      \mathrm{Im}\big(\bar\lambda_a v_a\big), \qquad c = 2 \text{ (pure)}, 1 \text{ (mixed)},

  with :math:`v` the state right after group j (kept from the forward sweep).

One forward and one backward sweep per pair, no finite differences; numpy
only, vectorized over pairs, in blocks of experts that bound the memory.
"""

from __future__ import annotations

import numpy as np

from mfpde.experts.base import as_theta
from mfpde.experts.circuit import CompiledCircuit, observable_matrix


class StatevectorBound:
    """The bound evaluator ``theta (M, d) -> (phi (K, M), grad (K, M, d))`` of one compiled circuit."""

    _block_bytes = 1 << 26  # stored states per block of experts (64 MiB)

    def __init__(self, circuit: CompiledCircuit, observable, d: int):
        self.c = circuit
        self.d = d
        self.K = circuit.K
        dv = circuit.dim
        first = circuit.segments[0]
        self.init = np.broadcast_to(np.eye(dv, dtype=complex)[0] if first is None else first[:, :, 0], (self.K, dv))
        # forward: v @ S^T; backward, on conj(lambda): conj(lambda) @ S
        self.fwd = [None if s is None else np.ascontiguousarray(s.transpose(0, 2, 1)) for s in circuit.segments[1:-1]]
        self.bwd = circuit.segments[1:-1]
        obs = observable_matrix(observable, circuit.n)
        last = circuit.segments[-1]
        if circuit.mixed:
            lam = obs.reshape(-1)[None] if last is None else np.einsum("kba,b->ka", last.conj(), obs.reshape(-1))
            self.lam0 = np.broadcast_to(lam, (self.K, dv))
            self.obs = None
        else:
            self.obs = obs[None] if last is None else np.einsum("kba,bc,kcd->kad", last.conj(), obs, last)
        self.factor = 1.0 if circuit.mixed else 2.0

    def _block_size(self) -> int:
        per_expert = self.K * self.c.dim * 16 * (len(self.c.groups) + 4)
        return max(1, self._block_bytes // per_expert)

    @staticmethod
    def _apply(v: np.ndarray, mat: np.ndarray | None) -> np.ndarray:
        """Row vectors ``v`` (K, B, Dv) times ``mat`` (1 or K, Dv, Dv)."""
        if mat is None:
            return v
        if mat.shape[0] == 1:
            return (v.reshape(-1, v.shape[-1]) @ mat[0]).reshape(v.shape)
        return np.matmul(v, mat)

    def _forward(self, theta):
        """States right after each group (list of (K, B, Dv)), the group phases (B, Dv),
        the conjugate costate after the last group, and phi (K, B)."""
        v = np.repeat(self.init[:, None, :], theta.shape[0], axis=1)
        states, phases = [], []
        for j, grp in enumerate(self.c.groups):
            a = theta[:, grp.index] @ grp.gens
            ph = np.cos(a) + 1j * np.sin(a)
            v = np.multiply(v, ph, out=v if j == 0 or self.fwd[j - 1] is not None else None)
            states.append(v)
            phases.append(ph)
            if j < len(self.fwd):
                v = self._apply(v, self.fwd[j])
        if self.c.mixed:
            kappa = np.repeat(self.lam0.conj()[:, None, :], theta.shape[0], axis=1)
        else:
            kappa = self._apply(v.conj(), self.obs)  # conj(O' v) = conj(v) O'  (O' Hermitian)
        phi = np.einsum("kba,kba->kb", kappa, v).real
        return states, phases, kappa, phi

    def values(self, theta) -> np.ndarray:
        """phi (K, M) only (one forward sweep)."""
        theta = as_theta(theta, self.d)
        step = self._block_size()
        return np.concatenate(
            [self._forward(theta[a : a + step])[3] for a in range(0, max(1, theta.shape[0]), step)], axis=1
        )

    def _block(self, theta):
        states, phases, kappa, phi = self._forward(theta)
        grad = np.zeros((self.d, self.K, theta.shape[0]))  # one contiguous slab per coordinate
        for j in range(len(self.c.groups) - 1, -1, -1):
            grp = self.c.groups[j]
            g = np.matmul(kappa * states[j], grp.gens_t).imag  # (K, B, T)
            for t, i in enumerate(grp.index):
                grad[i] -= self.factor * g[:, :, t]
            if j > 0:  # conj(lambda) <- conj(lambda) conj(D_j)^* S_{j-1}: the conjugate of the adjoint sweep
                kappa = self._apply(np.multiply(kappa, phases[j], out=kappa), self.bwd[j - 1])
        return phi, grad.transpose(1, 2, 0)

    def __call__(self, theta) -> tuple[np.ndarray, np.ndarray]:
        theta = as_theta(theta, self.d)
        M, step = theta.shape[0], self._block_size()
        if M <= step:
            phi, grad = self._block(theta)
            return phi, np.ascontiguousarray(grad)
        phi = np.empty((self.K, M))
        grad = np.empty((self.K, M, self.d))
        for a in range(0, M, step):
            phi[:, a : a + step], grad[:, a : a + step] = self._block(theta[a : a + step])
        return phi, grad
