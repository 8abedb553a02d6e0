r"""Quantum expert :math:`\phi(x;\theta)=\mathrm{Tr}\big(O\,\mathcal{U}_{x,\theta}(|0\rangle\langle 0|)\big)`.

A PennyLane circuit given as a gate list (:mod:`.gates`), unitary or with
noise channels, and a Pauli-product observable :math:`O`.  Two exact paths
evaluate it (chosen per expert by :mod:`.cost`, or forced by
``[expert] method``):

``fourier``  (:mod:`.fourier`)
    :math:`\phi(x;\cdot)` is a trigonometric polynomial of degree :math:`n_i`
    in :math:`\theta_i` (:math:`n_i` = number of gates using
    :math:`\theta_i`); its coefficients at the data come from the circuit on
    the :math:`\prod_i(2n_i+1)` grid and an FFT.
``statevector``  (:mod:`.statevector`)
    batched state (or density-matrix) simulation with adjoint gradients,
    cost ~ gates x :math:`2^n` per pair.

Both are exact (no finite differences) and equal to the PennyLane device to
1e-10 (tests).  :meth:`QNNExpert.qnode` is the literal PennyLane QNode, the
reference.
"""

from __future__ import annotations

import numpy as np

from mfpde.errors import CaseError
from mfpde.experts import cost
from mfpde.experts.base import BoundExpert, Expert, as_data, positive_int
from mfpde.experts.circuit import compile_circuit
from mfpde.experts.devices import EXACT_SIMULATORS, MIXED_STATE_DEVICES, check_channels, make_device
from mfpde.experts.fourier import TrigPolyBound, fourier_from_samples, fourier_grid
from mfpde.experts.gates import parse_gates, parse_observable
from mfpde.experts.statevector import StatevectorBound


def _check_dense(wires: int, mixed: bool) -> None:
    """Refuse, before building anything, a circuit whose dense matrices cannot fit
    (:data:`mfpde.experts.cost.DENSE_MATRIX_BYTES`)."""
    need = cost.dense_matrix_bytes(wires, mixed)
    if need > cost.DENSE_MATRIX_BYTES:
        dim = f"{4 if mixed else 2}^{wires}"
        raise CaseError("expert.wires", f"{wires} qubits make dense {dim} x {dim} complex matrices of "
                        f"{need / 1e9:.3g} GB each (at most {cost.DENSE_MATRIX_BYTES / 1e9:.3g} GB); use fewer wires")


class QNNExpert(Expert):
    r"""Quantum expert from a gate list.

    Parameters
    ----------
    gates : list
        Rows of :mod:`.gates` (rotations, fixed gates, noise channels), applied
        to :math:`|0\ldots0\rangle` in order.
    wires : int
        Number of qubits.
    observable : list
        ``[[pauli, wire], ...]``, the tensor product :math:`O` of the Paulis.
    device : str
        PennyLane device of the reference QNode; ``default.mixed`` for channels.
    method : str
        ``"auto"`` (cost model), ``"fourier"`` or ``"statevector"``.

    ``d`` is the largest theta index plus one (no gaps allowed); ``m`` is the
    largest input column used plus one (``None`` if the circuit ignores x).
    """

    kind = "qnn"
    _max_batch_amplitudes = 1 << 22  # statevector entries per PennyLane call (devices sampled through PennyLane)
    _generic_x = 0.6180339887  # a data value at which no input rotation is the identity (structure only)

    def __init__(self, gates, wires, observable, device="default.qubit", method="auto"):
        self.wires = positive_int("expert.wires", wires)
        self.gates = parse_gates(gates, self.wires)
        self.observable = parse_observable(observable, self.wires)
        if not isinstance(device, str) or not device:
            raise CaseError("expert.device", f"must be a PennyLane device name, got {device!r}")
        check_channels(self.gates, device)
        if method not in cost.METHODS:
            raise CaseError("expert.method", f"must be one of {', '.join(map(repr, cost.METHODS))}, got {method!r}")
        self.device_name = device
        self.mixed = device in MIXED_STATE_DEVICES
        _check_dense(self.wires, self.mixed)
        self.device = make_device(device, self.wires)
        theta_idx = [g.angle.index for g in self.gates if g.trainable]
        x_idx = [g.angle.index for g in self.gates if g.angle is not None and g.angle.source == "x"]
        self.d = max(theta_idx) + 1
        self.m = max(x_idx) + 1 if x_idx else None
        self.degrees = tuple(theta_idx.count(i) for i in range(self.d))
        self._qnode = None
        self.method_requested = method
        self.method, self.cost = self._choose_method(method)

    # -- method ------------------------------------------------------------------
    def _choose_method(self, method: str):
        structure = compile_circuit(self.gates, self.wires, np.full((1, self.m or 1), self._generic_x), self.mixed)
        est = cost.estimate(
            self.degrees,
            structure.dim,
            sum(s is not None for s in structure.segments[1:-1]),
            len(structure.groups),
            sum(len(g.index) for g in structure.groups),
            self.mixed,
        )
        if self.device_name not in EXACT_SIMULATORS:
            if method == "statevector":
                raise CaseError(
                    "expert.method",
                    f"statevector needs an exact simulator device ({', '.join(EXACT_SIMULATORS)}), "
                    f"got {self.device_name!r}",
                )
            method = "fourier"
        chosen = cost.choose(est, self.d) if method == "auto" else method
        if chosen == "fourier":
            self._check_table(est, 1)
        return chosen, est

    def _check_table(self, est: cost.CostEstimate, K: int) -> None:
        need = est.fourier_table_bytes(self.d, K)
        if need > cost.FOURIER_TABLE_BYTES:
            raise CaseError(
                "expert.method",
                f"the Fourier table needs {est.coefficients:.3g} coefficients x (d + 1) = {self.d + 1} outputs x "
                f"{K} data point(s) = {need / 2**30:.3g} GiB (limit {cost.FOURIER_TABLE_BYTES / 2**30:.3g} GiB); "
                f"use method = \"statevector\" or \"auto\"",
            )

    # -- reference path --------------------------------------------------------
    def _observable_op(self):
        import pennylane as qml

        ops = {"I": qml.Identity, "X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
        terms = [ops[p](w) for p, w in self.observable]
        return terms[0] if len(terms) == 1 else qml.prod(*terms)

    def qnode(self):
        """The PennyLane QNode ``f(x (m,), theta (d,)) -> float``, built literally
        from the gate list on the named device.

        Differentiable in ``theta`` with PennyLane's autodiff (``qml.grad`` with a
        ``pennylane.numpy`` array, ``requires_grad=True``).  Also accepts batched
        ``x`` (B, m) and ``theta`` (B, d) (parameter broadcasting) on devices
        that support it.
        """
        if self._qnode is None:
            import pennylane as qml

            gates = self.gates
            obs = self._observable_op()

            def circuit(x, theta):
                for g in gates:
                    op = getattr(qml, g.kind.name)
                    if g.angle is None:
                        op(wires=list(g.wires))
                    else:
                        op(g.angle(x, theta), wires=list(g.wires))
                return qml.expval(obs)

            self._qnode = qml.QNode(circuit, self.device)
        return self._qnode

    # -- exact paths -------------------------------------------------------------
    def _statevector(self, x) -> StatevectorBound:
        return StatevectorBound(compile_circuit(self.gates, self.wires, x, self.mixed), self.observable, self.d)

    def _run_batch(self, xb: np.ndarray, tb: np.ndarray) -> np.ndarray:
        """The circuit on B (x, theta) pairs through PennyLane (devices mfpde does not simulate)."""
        f = self.qnode()
        B = xb.shape[0]
        step = max(2, self._max_batch_amplitudes >> self.wires)
        out = np.empty(B)
        for a in range(0, B, step):
            b = min(B, a + step)
            if b - a == 1:
                out[a] = float(f(xb[a], tb[a]))
            else:
                out[a:b] = np.asarray(f(xb[a:b], tb[a:b]), dtype=float).reshape(-1)
        return out

    def fourier_coefficients(self, x) -> tuple[np.ndarray, np.ndarray]:
        r"""Exact Fourier representation of :math:`\phi(x_k;\cdot)`.

        Returns ``freqs`` (S, d) int, :math:`s \in \prod_i\{-n_i..n_i\}` in C
        order, and ``coeffs`` (K, S) complex with
        :math:`\phi(x_k;\theta) = \sum_s c_{k,s} e^{i s\cdot\theta}` (real:
        :math:`c_{k,-s} = \overline{c_{k,s}}`).  Costs the circuit on
        K x prod(2 n_i + 1) points (one forward sweep each) and an FFT.
        """
        x = as_data(x, self.m)
        K = x.shape[0]
        self._check_table(self.cost, K)
        grid = fourier_grid(self.degrees)  # (G, d)
        if self.device_name in EXACT_SIMULATORS:
            values = self._statevector(x).values(grid)  # (K, G)
        else:
            G = grid.shape[0]
            values = self._run_batch(np.repeat(x, G, axis=0), np.tile(grid, (K, 1))).reshape(K, G)
        return fourier_from_samples(values, self.degrees)

    def bind(self, x) -> BoundExpert:
        """The chosen exact path at the data ``x`` (K, m): Fourier coefficients or a compiled circuit.

        ``auto`` turns to the statevector path when the Fourier table would not
        fit for this many data points (``describe()`` then says so)."""
        x = as_data(x, self.m)
        too_large = self.cost.fourier_table_bytes(self.d, x.shape[0]) > cost.FOURIER_TABLE_BYTES
        if self.method_requested == "auto" and too_large:
            self.method = "statevector"  # the table does not fit these many data points
        if self.method == "statevector":
            return self._statevector(x)
        freqs, coeffs = self.fourier_coefficients(x)
        return TrigPolyBound(self.degrees, freqs, coeffs)

    def max_frequency(self) -> tuple[int, ...]:
        return self.degrees

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "d": self.d,
            "m": self.m,
            "wires": self.wires,
            "device": self.device_name,
            "observable": [[p, w] for p, w in self.observable],
            "gates": [g.as_list() for g in self.gates],
            "max_frequency": list(self.degrees),
            "method": self.method,
            "method_requested": self.method_requested,
            "cost": self.cost.as_dict(),
        }
