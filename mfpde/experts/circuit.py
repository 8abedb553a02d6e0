r"""A gate list compiled, at fixed data, into fixed segments and diagonal trainable groups.

Every trainable gate is a rotation by exactly :math:`\theta_i`,
:math:`R(\theta) = W\,\mathrm{diag}(e^{i\theta g})\,W^\dagger` with a fixed
basis change :math:`W` (H for RX, S H for RY, I for RZ and PhaseShift) and a
real generator :math:`g` (:math:`-z_q/2` for RX, RY, RZ with
:math:`z_q = \pm 1` the eigenvalue of :math:`Z_q`; the bit :math:`b_q` for
PhaseShift).  Adjacent trainable gates that commute (distinct wires, or one
axis per wire) form a *group*, diagonal in one basis.  At fixed data
:math:`x_k` the circuit is therefore

.. math::

    U(x_k,\theta) = S_G\, D_G(\theta)\, S_{G-1} \cdots S_1\, D_1(\theta)\, S_0,
    \qquad D_j(\theta) = \mathrm{diag}\big(e^{i \sum_{t \in j} \theta_{i_t} g_t}\big),

with fixed matrices :math:`S_j(x_k)` (every non-trainable gate and the basis
changes, multiplied together).  On a mixed-state device the same holds for
the vectorized density matrix :math:`\mathrm{vec}\,\rho` (row major): a gate
acts as :math:`U \otimes \bar U`, a channel as :math:`\sum_j K_j \otimes \bar K_j`,
and a group's generator is :math:`h_{ab} = g_a - g_b`.  Wire 0 is the most
significant qubit, as in PennyLane; the matrices are PennyLane's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfpde.experts.gates import Gate


def embed(op: np.ndarray, wires: tuple[int, ...], n: int) -> np.ndarray:
    """The (..., 2^n, 2^n) matrix of ``op`` (..., 2^w, 2^w) acting on ``wires`` of n qubits."""
    w = len(wires)
    rest = [q for q in range(n) if q not in wires]
    eye = np.eye(1 << (n - w))
    full = (op[..., :, None, :, None] * eye[:, None, :]).reshape(op.shape[:-2] + (1 << n, 1 << n))
    inv = np.argsort(list(wires) + rest)
    lead = full.ndim - 2
    full = full.reshape(op.shape[:-2] + (2,) * (2 * n))
    axes = list(range(lead)) + [lead + i for i in inv] + [lead + n + i for i in inv]
    return full.transpose(axes).reshape(op.shape[:-2] + (1 << n, 1 << n))


def superop(u: np.ndarray) -> np.ndarray:
    """``u`` (..., D, D) acting on row-major vec(rho): ``u (x) conj(u)`` (..., D^2, D^2)."""
    D = u.shape[-1]
    return (u[..., :, None, :, None] * u.conj()[..., None, :, None, :]).reshape(u.shape[:-2] + (D * D, D * D))


_BASIS = {"X": np.array([[1, 1], [1, -1]]) / np.sqrt(2), "Y": np.array([[1, 1], [1j, -1j]]) / np.sqrt(2)}


def _gate_matrix(g: Gate, x: np.ndarray) -> np.ndarray:
    """PennyLane's matrix of a non-trainable gate, (K, 2^w, 2^w) for an input angle, else (2^w, 2^w)."""
    import pennylane as qml

    op = getattr(qml, g.kind.name)
    if g.angle is None:
        return np.asarray(op.compute_matrix(), dtype=complex)
    return np.asarray(op.compute_matrix(np.asarray(g.angle(x, None), dtype=float)), dtype=complex)


def observable_matrix(observable, n: int) -> np.ndarray:
    """The (2^n, 2^n) tensor product of the observable's Paulis (identity elsewhere)."""
    import pennylane as qml

    mats = {"I": qml.Identity, "X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
    out = np.eye(1 << n, dtype=complex)
    for p, w in observable:
        out = embed(np.asarray(mats[p].compute_matrix(), dtype=complex), (w,), n) @ out
    return out


@dataclass
class Group:
    """Adjacent commuting trainable gates: ``theta[index[t]]`` with generator ``gens[t]`` (Dv,)."""

    index: np.ndarray  # (T,) int
    gens: np.ndarray  # (T, Dv) float

    def __post_init__(self):
        self.gens_t = np.ascontiguousarray(self.gens.T.astype(complex))  # (Dv, T), for one complex product


@dataclass
class CompiledCircuit:
    """``U = S_G D_G ... S_1 D_1 S_0`` at K data points (see the module docstring).

    ``segments[j]`` is (1 or K, Dv, Dv), or ``None`` for the identity; ``groups``
    has G entries, ``segments`` G + 1.  ``mixed``: Dv = 4^n (vec rho), else 2^n.
    """

    n: int
    mixed: bool
    K: int
    groups: list[Group]
    segments: list[np.ndarray | None]

    @property
    def dim(self) -> int:
        return 1 << (2 * self.n if self.mixed else self.n)


def _generator(g: Gate, n: int) -> np.ndarray:
    q = g.wires[0]
    bit = (np.arange(1 << n) >> (n - 1 - q)) & 1
    return bit.astype(float) if g.kind.name == "PhaseShift" else bit - 0.5  # -z_q / 2 = b_q - 1/2


def compile_circuit(gates: list[Gate], n: int, x: np.ndarray, mixed: bool) -> CompiledCircuit:
    """Compile the parsed gate list at data ``x`` (K, m) (see the module docstring)."""
    import pennylane as qml

    K = x.shape[0]
    lift = superop if mixed else (lambda u: u)
    groups: list[Group] = []
    segments: list[np.ndarray | None] = [None]
    current: list[Gate] = []  # the open group

    def multiply(mat):  # segments[-1] <- mat @ segments[-1]
        segments[-1] = mat if segments[-1] is None else np.matmul(mat, segments[-1])

    def close_group():
        if not current:
            return
        axes = {g.wires[0]: g.kind.axis for g in current}
        w = np.eye(1 << n, dtype=complex)
        for q, a in axes.items():
            if a in _BASIS:
                w = embed(_BASIS[a].astype(complex), (q,), n) @ w
        wv = lift(w)
        multiply(wv.conj().T)
        gens = np.array([_generator(g, n) for g in current])
        if mixed:
            gens = (gens[:, :, None] - gens[:, None, :]).reshape(len(current), -1)
        groups.append(Group(np.array([g.angle.index for g in current]), gens))
        segments.append(wv)
        current.clear()

    for g in gates:
        if g.trainable:
            if any(c.wires[0] == g.wires[0] and c.kind.axis != g.kind.axis for c in current):
                close_group()
            current.append(g)
            continue
        close_group()
        if g.kind.channel:
            kraus = getattr(qml, g.kind.name).compute_kraus_matrices(g.angle.value)
            multiply(sum(superop(embed(np.asarray(k, dtype=complex), g.wires, n)) for k in kraus))
        else:
            multiply(lift(embed(_gate_matrix(g, x), g.wires, n)))
    close_group()
    dv = 1 << (2 * n if mixed else n)
    segs = []
    for s in segments:
        if s is not None and s.ndim == 2:
            s = s[None]
        if s is not None and s.shape[0] == 1 and np.allclose(s[0], np.eye(dv), rtol=0, atol=1e-15):
            s = None
        segs.append(s)
    return CompiledCircuit(n, mixed, K, groups, segs)
