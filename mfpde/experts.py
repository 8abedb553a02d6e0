r"""Experts :math:`\phi(x;\theta)` on the parameter torus :math:`T^d`.

An expert maps an input :math:`x \in \mathbb{R}^m` and parameters
:math:`\theta \in T^d = \mathbb{R}^d / (2\pi\mathbb{Z})^d` to a bounded real
number.  Every solver needs, at fixed data :math:`x_1..x_K` and many parameter
points :math:`\theta_1..\theta_M`, the values and the theta-gradients

.. math::

    \Phi_{km} = \phi(x_k;\theta_m), \qquad
    G_{kmj} = \partial_{\theta_j}\phi(x_k;\theta_m).

The interface is therefore ``expert.bind(x)``: it does once all the work that
depends only on the data and returns a fast callable
``theta (M, d) -> (Phi (K, M), G (K, M, d))`` that the solvers call every step.

Kinds (the ``[expert]`` table of a case, DESIGN section 6):

``qnn``  (:class:`QNNExpert`)
    :math:`\phi(x;\theta) = \langle 0| U(x,\theta)^\dagger O\, U(x,\theta) |0\rangle`
    for a PennyLane circuit given as a gate list.  Every trainable angle is a
    Pauli rotation (or phase shift) by exactly :math:`\theta_i`, so
    :math:`\phi(x;\cdot)` is a trigonometric polynomial

    .. math::

        \phi(x;\theta) = \sum_{s \in \prod_i \{-n_i..n_i\}} c_s(x)\, e^{i s\cdot\theta},
        \qquad c_{-s} = \overline{c_s},

    with :math:`n_i` the number of gates that use :math:`\theta_i`.  ``bind``
    samples the circuit on the tensor grid of :math:`2n_i+1` equispaced angles
    per coordinate and recovers the :math:`c_s(x_k)` exactly with an FFT; the
    bound callable then evaluates value and gradient
    :math:`\nabla\phi = \sum_s i s\, c_s e^{i s\cdot\theta}` with two matrix
    products.  No circuit is run per particle or per time step, and no finite
    differences are used anywhere.
``cosine``  (:class:`CosineExpert`)
    :math:`\phi(x;\theta) = \prod_{i<d} \cos(x_{i \bmod m} - \theta_i)`, closed form.
``python``  (:class:`PythonExpert`)
    a user function ``"module:function"`` (or any callable) returning values and
    gradients.

:func:`build_expert` turns the ``[expert]`` table into one of these and refuses
a table that breaks the contract with a :class:`~mfpde.errors.CaseError` whose
message starts with the offending key (``expert.gates[2]: ...``).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import CaseError

BoundExpert = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

KNOWN_KINDS = ("cosine", "python", "qnn")


# --------------------------------------------------------------------------- #
# Base class
# --------------------------------------------------------------------------- #


def _as_data(x: Any, m: int | None, what: str = "x") -> np.ndarray:
    """``x`` as a float array (K, m'); a 1-D array is read as K points in R^1."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{what} must have shape (K, m), got {x.shape}")
    if m is not None and x.shape[1] < m:
        raise ValueError(f"{what} has {x.shape[1]} column(s) but the expert reads {m}")
    return x


def _as_theta(theta: Any, d: int) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 2 or theta.shape[1] != d:
        raise ValueError(f"theta must have shape (M, {d}), got {theta.shape}")
    return theta


class Expert:
    """Base class of all experts.

    Attributes
    ----------
    kind : str
        Case-file kind (``"qnn"``, ``"cosine"``, ``"python"``).
    d : int
        Dimension of the parameter torus :math:`T^d`.
    m : int or None
        Number of input columns the expert reads (it reads ``x[:, :m]``); data
        with fewer columns are refused.  ``None``: any number of columns.
    """

    kind: str = "expert"
    d: int
    m: int | None = None
    _cache_size = 4

    # -- to implement in subclasses ------------------------------------------
    def bind(self, x) -> BoundExpert:
        """Precompute what depends on the data ``x`` (K, m) only.

        Returns ``f(theta (M, d)) -> (phi (K, M), grad (K, M, d))``, vectorized
        over K and M.  Called once per run; ``f`` is called every step.
        """
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON-able summary for provenance."""
        return {"kind": self.kind, "d": self.d, "m": self.m}

    def max_frequency(self) -> tuple[int, ...] | None:
        r"""Per-coordinate trigonometric degree :math:`n_i` when known, else None.

        :math:`\phi(x;\cdot)` then has Fourier modes only for
        :math:`|s_i| \le n_i`.
        """
        return None

    # -- shared ----------------------------------------------------------------
    def evaluate(self, x, theta) -> tuple[np.ndarray, np.ndarray]:
        """``(phi (K, M), grad (K, M, d))`` at data ``x`` (K, m) and ``theta`` (M, d).

        Same as ``self.bind(x)(theta)``; the binding is cached by the bytes of
        ``x``, so repeated calls with the same data cost one bound call.
        """
        xa = _as_data(x, self.m)
        key = (xa.shape, xa.tobytes())
        cache = self.__dict__.setdefault("_bind_cache", OrderedDict())
        f = cache.get(key)
        if f is None:
            f = self.bind(xa)
            cache[key] = f
            while len(cache) > self._cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return f(theta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def data_dim_required(expert: Expert) -> int | None:
    """Number of input columns the expert reads (None: any)."""
    return expert.m


# --------------------------------------------------------------------------- #
# Small validation helpers
# --------------------------------------------------------------------------- #


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _positive_int(key: str, v) -> int:
    if not _is_int(v) or v <= 0:
        raise CaseError(key, f"must be a positive integer, got {v!r}")
    return int(v)


def _check_keys(spec: dict, required: tuple[str, ...], optional: tuple[str, ...], kind: str) -> None:
    for k in required:
        if k not in spec:
            raise CaseError(f"expert.{k}", f"missing (required for kind = {kind!r})")
    allowed = set(required) | set(optional) | {"kind"}
    for k in spec:
        if k not in allowed:
            raise CaseError(
                f"expert.{k}", f"unknown key for kind = {kind!r} (known: {', '.join(sorted(allowed))})"
            )


# --------------------------------------------------------------------------- #
# QNN: gate table, parser, circuit
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class GateKind:
    """One row of the gate table."""

    name: str  # PennyLane operation name (qml.<name>)
    n_wires: int
    rotation: bool  # takes one angle


GATE_TABLE: dict[str, GateKind] = {
    g.name: g
    for g in (
        GateKind("RX", 1, True),
        GateKind("RY", 1, True),
        GateKind("RZ", 1, True),
        GateKind("PhaseShift", 1, True),
        GateKind("Hadamard", 1, False),
        GateKind("PauliX", 1, False),
        GateKind("PauliY", 1, False),
        GateKind("PauliZ", 1, False),
        GateKind("S", 1, False),
        GateKind("T", 1, False),
        GateKind("SX", 1, False),
        GateKind("CNOT", 2, False),
        GateKind("CZ", 2, False),
        GateKind("SWAP", 2, False),
    )
}
GATE_ALIASES = {"H": "Hadamard", "X": "PauliX", "Y": "PauliY", "Z": "PauliZ"}
PAULIS = ("I", "X", "Y", "Z")

_RE_X = re.compile(r"^\s*x\s*(?:\[\s*(\d+)\s*\])?\s*$")
_RE_THETA = re.compile(r"^\s*theta\s*\[\s*(\d+)\s*\]\s*$")


@dataclass(frozen=True)
class Angle:
    """A gate angle: ``source`` is ``"x"`` (input column ``index``),
    ``"theta"`` (trainable coordinate ``index``) or ``"const"`` (``value``)."""

    source: str
    index: int = 0
    value: float = 0.0

    def text(self):
        if self.source == "const":
            return self.value
        return f"{self.source}[{self.index}]"

    def __call__(self, x, theta):
        """The angle for input ``x`` (..., m) and ``theta`` (..., d); broadcasts."""
        if self.source == "x":
            return x[..., self.index]
        if self.source == "theta":
            return theta[..., self.index]
        return self.value


@dataclass(frozen=True)
class Gate:
    """A parsed gate: table entry, angle (rotations only) and wires."""

    kind: GateKind
    wires: tuple[int, ...]
    angle: Angle | None = None

    def as_list(self) -> list:
        if self.angle is None:
            return [self.kind.name, list(self.wires)]
        return [self.kind.name, self.angle.text(), list(self.wires)]


def _parse_angle(key: str, a) -> Angle:
    if _is_number(a):
        if not math.isfinite(float(a)):
            raise CaseError(key, f"angle must be finite, got {a!r}")
        return Angle("const", value=float(a))
    if isinstance(a, str):
        mt = _RE_THETA.match(a)
        if mt:
            return Angle("theta", int(mt.group(1)))
        mx = _RE_X.match(a)
        if mx:
            return Angle("x", int(mx.group(1) or 0))
        try:
            v = float(a)
        except ValueError:
            v = None
        if v is not None and math.isfinite(v):
            return Angle("const", value=v)
    raise CaseError(key, f"cannot parse angle {a!r} (expected \"x\", \"x[j]\", \"theta[i]\" or a number)")


def _parse_wires(key: str, w, n_wires: int, need: int, gate_name: str) -> tuple[int, ...]:
    if _is_int(w):
        w = [w]
    if not isinstance(w, (list, tuple)):
        raise CaseError(key, f"wires of {gate_name} must be a list of {need} integer(s), got {w!r}")
    if len(w) != need:
        raise CaseError(key, f"{gate_name} acts on {need} wire(s), got {len(w)}: {list(w)!r}")
    out = []
    for v in w:
        if not _is_int(v):
            raise CaseError(key, f"wire {v!r} of {gate_name} is not an integer")
        if not 0 <= v < n_wires:
            raise CaseError(key, f"wire {v} of {gate_name} is out of range 0..{n_wires - 1} (expert.wires = {n_wires})")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise CaseError(key, f"{gate_name} repeats wire {out[0]}: {out!r} (control and target must differ)")
    return tuple(out)


def parse_gates(gates, n_wires: int) -> list[Gate]:
    """Parse and validate the gate list (DESIGN section 6).

    Each gate is ``[name, angle, wires]`` (rotations RX, RY, RZ, PhaseShift) or
    ``[name, wires]`` (fixed gates).  Raises :class:`CaseError` with key
    ``expert.gates[i]`` (or ``expert.gates`` for list-level problems such as a
    gap in the theta indices).
    """
    if not isinstance(gates, (list, tuple)) or len(gates) == 0:
        raise CaseError("expert.gates", f"must be a non-empty list of gates, got {gates!r}")
    known = ", ".join(list(GATE_TABLE) + [f"{a} (= {n})" for a, n in GATE_ALIASES.items()])
    out: list[Gate] = []
    for i, g in enumerate(gates):
        key = f"expert.gates[{i}]"
        if not isinstance(g, (list, tuple)) or len(g) == 0 or not isinstance(g[0], str):
            raise CaseError(key, f"a gate is [name, angle, wires] or [name, wires], got {g!r}")
        name = GATE_ALIASES.get(g[0], g[0])
        if name not in GATE_TABLE:
            raise CaseError(key, f"unknown gate {g[0]!r} (known: {known})")
        gk = GATE_TABLE[name]
        if gk.rotation:
            if len(g) != 3:
                raise CaseError(key, f"{name} is a rotation: expected [name, angle, wires], got {list(g)!r}")
            angle = _parse_angle(key, g[1])
            wires = _parse_wires(key, g[2], n_wires, gk.n_wires, name)
        else:
            if len(g) != 2:
                raise CaseError(key, f"{name} takes no angle: expected [name, wires], got {list(g)!r}")
            angle = None
            wires = _parse_wires(key, g[1], n_wires, gk.n_wires, name)
        out.append(Gate(gk, wires, angle))
    used = sorted({g.angle.index for g in out if g.angle is not None and g.angle.source == "theta"})
    if not used:
        raise CaseError("expert.gates", "no gate uses a trainable angle \"theta[i]\" (d would be 0)")
    missing = sorted(set(range(used[-1] + 1)) - set(used))
    if missing:
        raise CaseError(
            "expert.gates",
            f"theta index gap: theta[{missing[0]}] is not used by any gate, but theta[{used[-1]}] is "
            f"(indices must be 0..d-1 without gaps)",
        )
    return out


def parse_observable(obs, n_wires: int) -> list[tuple[str, int]]:
    """Parse ``[[pauli, wire], ...]`` (pauli in I, X, Y, Z; distinct wires)."""
    if isinstance(obs, (list, tuple)) and len(obs) == 2 and isinstance(obs[0], str):
        obs = [obs]  # a single pair
    if not isinstance(obs, (list, tuple)) or len(obs) == 0:
        raise CaseError("expert.observable", f"must be a non-empty list of [pauli, wire] pairs, got {obs!r}")
    out = []
    for i, p in enumerate(obs):
        key = f"expert.observable[{i}]"
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise CaseError(key, f"expected [pauli, wire], got {p!r}")
        pauli, wire = p
        if pauli not in PAULIS:
            raise CaseError(key, f"unknown pauli {pauli!r} (known: {', '.join(PAULIS)})")
        if not _is_int(wire) or not 0 <= wire < n_wires:
            raise CaseError(key, f"wire {wire!r} is out of range 0..{n_wires - 1} (expert.wires = {n_wires})")
        if any(w == wire for _, w in out):
            raise CaseError(key, f"wire {wire} appears twice in the observable")
        out.append((pauli, int(wire)))
    return out


def _make_device(name, wires: int):
    import pennylane as qml

    if not isinstance(name, str) or not name:
        raise CaseError("expert.device", f"must be a PennyLane device name, got {name!r}")
    try:
        return qml.device(name, wires=wires)
    except Exception as exc:  # PennyLane raises DeviceError, ImportError, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaseError("expert.device", f"cannot create PennyLane device {name!r} with {wires} wire(s): {msg}") from None


# --------------------------------------------------------------------------- #
# Trigonometric-polynomial evaluation shared by the QNN fast path
# --------------------------------------------------------------------------- #


class _TrigPolyBound:
    r"""Evaluate :math:`\phi_k(\theta) = \sum_s c_{k,s} e^{i s\cdot\theta}` (real)
    and its gradient :math:`\nabla\phi_k = \sum_s i s\, c_{k,s} e^{i s\cdot\theta}`
    for all k and many theta at once.

    Per coordinate, :math:`e^{i s_j \theta_j}` for :math:`s_j=-n_j..n_j` is built
    from :math:`z_j = e^{i\theta_j}` by repeated multiplication (M, 2 n_j + 1);
    their tensor product is ``E`` (M, S).  Writing ``E`` as real numbers
    ``[Re E_s, Im E_s]`` interleaved (M, 2S) and the coefficients as
    ``B[k] = [Re a_{k,s}, -Im a_{k,s}]`` (2S, .) with ``a = c`` for the value and
    ``a = i s_j c`` for the gradient, ``Re(sum_s a_s E_s)`` is a real matrix product: for few
    frequencies one batched product per output, written straight into
    C-contiguous ``phi`` (K, M) and ``grad`` (K, M, d); for many (S > 16) a
    single GEMM followed by a transpose.  Large ``M * S`` is processed in
    blocks of rows to bound memory.
    """

    _block_elems = 1 << 21  # complex entries of E per block (32 MiB)
    _gemm_min_S = 16

    def __init__(self, degrees: tuple[int, ...], freqs: np.ndarray, coeffs: np.ndarray):
        self.degrees = tuple(int(n) for n in degrees)
        self.d = len(degrees)
        self.K, self.S = coeffs.shape
        s = freqs.astype(float)  # (S, d)
        a = np.stack([coeffs] + [1j * s[:, j] * coeffs for j in range(self.d)], axis=2)  # (K, S, d+1)
        B = np.empty((self.K, self.S, 2, self.d + 1))
        B[:, :, 0, :] = a.real
        B[:, :, 1, :] = -a.imag
        B = B.reshape(self.K, 2 * self.S, self.d + 1)
        self.B_phi = np.ascontiguousarray(B[:, :, :1])  # (K, 2S, 1)
        self.B_grad = np.ascontiguousarray(B[:, :, 1:])  # (K, 2S, d)
        # many frequencies: one plain GEMM (M, 2S) @ (2S, K (d+1)) and a transpose is faster
        self.B_all = np.ascontiguousarray(B.transpose(1, 0, 2).reshape(2 * self.S, -1)) if self.S > self._gemm_min_S else None

    def exp_table(self, theta: np.ndarray) -> np.ndarray:
        """``E[m, s] = exp(i s . theta_m)`` (M, S), s in C order over the coordinates."""
        M = theta.shape[0]
        z = np.cos(theta) + 1j * np.sin(theta)  # (M, d)
        E = None
        for j, n in enumerate(self.degrees):
            ej = np.empty((M, 2 * n + 1), dtype=complex)
            ej[:, n] = 1.0
            for p in range(1, n + 1):
                np.multiply(ej[:, n + p - 1], z[:, j], out=ej[:, n + p])
                np.conjugate(ej[:, n + p], out=ej[:, n - p])
            E = ej if E is None else (E[:, :, None] * ej[:, None, :]).reshape(M, E.shape[1] * ej.shape[1])
        return E

    def _block(self, theta):
        Ev = self.exp_table(theta).view(float)  # (M, 2S)
        if self.B_all is None:
            return np.matmul(Ev[None], self.B_phi)[..., 0], np.matmul(Ev[None], self.B_grad)
        out = (Ev @ self.B_all).reshape(theta.shape[0], self.K, self.d + 1)
        return np.ascontiguousarray(out[:, :, 0].T), np.ascontiguousarray(out[:, :, 1:].transpose(1, 0, 2))

    def __call__(self, theta) -> tuple[np.ndarray, np.ndarray]:
        theta = _as_theta(theta, self.d)
        M = theta.shape[0]
        step = max(1, self._block_elems // self.S)
        if M <= step:
            return self._block(theta)
        phi = np.empty((self.K, M))
        grad = np.empty((self.K, M, self.d))
        for a in range(0, M, step):
            phi[:, a : a + step], grad[:, a : a + step] = self._block(theta[a : a + step])
        return phi, grad


def fourier_grid(degrees: tuple[int, ...]) -> np.ndarray:
    """Tensor grid of ``2 n_i + 1`` equispaced angles ``2 pi j / (2 n_i + 1)``, shape (G, d), C order."""
    axes = [2 * np.pi * np.arange(2 * n + 1) / (2 * n + 1) for n in degrees]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1)


def fourier_from_samples(values: np.ndarray, degrees: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact Fourier coefficients of trigonometric polynomials from grid samples.

    ``values`` (K, G) are samples on :func:`fourier_grid`.  A trigonometric
    polynomial with :math:`|s_i| \le n_i` is determined by its samples on that
    grid, and :math:`c_s = \mathrm{FFT}(f)[s \bmod (2n+1)] / G`.  Returns
    ``freqs`` (S, d) int (C order, each coordinate from -n_i to n_i) and
    ``coeffs`` (K, S) complex.
    """
    K = values.shape[0]
    shape = tuple(2 * n + 1 for n in degrees)
    F = np.fft.fftn(values.reshape((K,) + shape), axes=tuple(range(1, len(shape) + 1)))
    F = np.fft.fftshift(F, axes=tuple(range(1, len(shape) + 1))) / np.prod(shape)
    mesh = np.meshgrid(*[np.arange(-n, n + 1) for n in degrees], indexing="ij")
    freqs = np.stack([g.ravel() for g in mesh], axis=1).astype(int)
    return freqs, F.reshape(K, -1)


# --------------------------------------------------------------------------- #
# QNN expert
# --------------------------------------------------------------------------- #


class QNNExpert(Expert):
    r"""Quantum expert :math:`\phi(x;\theta)=\langle 0|U^\dagger(x,\theta)\,O\,U(x,\theta)|0\rangle`.

    Parameters
    ----------
    gates : list
        ``[name, angle, wires]`` for rotations (RX, RY, RZ, PhaseShift) and
        ``[name, wires]`` for fixed gates (Hadamard/H, PauliX/X, PauliY/Y,
        PauliZ/Z, S, T, SX, CNOT, CZ, SWAP; CNOT and CZ take
        ``[control, target]``), applied to :math:`|0\ldots0\rangle` in order.
        An angle is ``"x"`` (= ``x[0]``), ``"x[j]"``, ``"theta[i]"`` or a number.
    wires : int
        Number of qubits.
    observable : list
        ``[[pauli, wire], ...]``, the tensor product :math:`O` of the Paulis.
    device : str
        PennyLane device name used by :meth:`qnode` and by ``bind``.

    ``d`` is the largest theta index plus one (no gaps allowed); ``m`` is the
    largest input column used plus one (``None`` if the circuit ignores x).

    Since each :math:`\theta_i` enters only through :math:`n_i` rotations by
    exactly :math:`\theta_i` (generators with eigenvalue differences in
    {-1, 0, 1}), :math:`\phi(x;\cdot)` is a trigonometric polynomial of degree
    :math:`n_i` in :math:`\theta_i` (:meth:`max_frequency`).
    """

    kind = "qnn"
    _max_batch_amplitudes = 1 << 22  # statevector entries per PennyLane call

    def __init__(self, gates, wires, observable, device="default.qubit"):
        self.wires = _positive_int("expert.wires", wires)
        self.gates = parse_gates(gates, self.wires)
        self.observable = parse_observable(observable, self.wires)
        self.device_name = device
        self.device = _make_device(device, self.wires)
        theta_idx = [g.angle.index for g in self.gates if g.angle is not None and g.angle.source == "theta"]
        x_idx = [g.angle.index for g in self.gates if g.angle is not None and g.angle.source == "x"]
        self.d = max(theta_idx) + 1
        self.m = max(x_idx) + 1 if x_idx else None
        self.degrees = tuple(theta_idx.count(i) for i in range(self.d))
        self._qnode = None

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
        ``x`` (B, m) and ``theta`` (B, d) (parameter broadcasting).
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

    # -- fast path ---------------------------------------------------------------
    def _run_batch(self, xb: np.ndarray, tb: np.ndarray) -> np.ndarray:
        """The circuit on B (x, theta) pairs with parameter broadcasting, in a few calls."""
        f = self.qnode()
        B = xb.shape[0]
        step = max(2, self._max_batch_amplitudes >> self.wires)
        out = np.empty(B)
        for a in range(0, B, step):
            b = min(B, a + step)
            if b - a == 1:  # a broadcast of size 1 is fine, but keep the shapes uniform
                out[a] = float(f(xb[a], tb[a]))
            else:
                out[a:b] = np.asarray(f(xb[a:b], tb[a:b]), dtype=float).reshape(-1)
        return out

    def fourier_coefficients(self, x) -> tuple[np.ndarray, np.ndarray]:
        r"""Exact Fourier representation of :math:`\phi(x_k;\cdot)`.

        Returns ``freqs`` (S, d) int, :math:`s \in \prod_i\{-n_i..n_i\}` in C
        order, and ``coeffs`` (K, S) complex with
        :math:`\phi(x_k;\theta) = \sum_s c_{k,s} e^{i s\cdot\theta}` (real:
        :math:`c_{k,-s} = \overline{c_{k,s}}`).  Costs one batched circuit
        evaluation on K x prod(2 n_i + 1) points and an FFT.
        """
        x = _as_data(x, self.m)
        K = x.shape[0]
        grid = fourier_grid(self.degrees)  # (G, d)
        G = grid.shape[0]
        xb = np.repeat(x, G, axis=0)  # (K*G, m): data point k, then grid point
        tb = np.tile(grid, (K, 1))
        values = self._run_batch(xb, tb).reshape(K, G)
        return fourier_from_samples(values, self.degrees)

    def bind(self, x) -> BoundExpert:
        """Fourier coefficients at the data once; returns the fast evaluator."""
        freqs, coeffs = self.fourier_coefficients(x)
        return _TrigPolyBound(self.degrees, freqs, coeffs)

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
        }


# --------------------------------------------------------------------------- #
# Classical experts
# --------------------------------------------------------------------------- #


class CosineExpert(Expert):
    r"""Classical expert :math:`\phi(x;\theta)=\prod_{i<d}\cos(x_{i \bmod m}-\theta_i)`.

    Gradient in closed form:
    :math:`\partial_{\theta_j}\phi = \sin(x_{j \bmod m}-\theta_j)\prod_{i\ne j}\cos(x_{i \bmod m}-\theta_i)`
    (computed with prefix/suffix products, no division).  Degree 1 in each
    coordinate.  ``m`` fixes the number of input columns; ``None`` uses all
    columns of the data.
    """

    kind = "cosine"

    def __init__(self, d: int, m: int | None = None):
        self.d = _positive_int("expert.d", d)
        self.m = None if m is None else _positive_int("expert.m", m)

    def bind(self, x) -> BoundExpert:
        x = _as_data(x, self.m)
        m = self.m or x.shape[1]
        xs = x[:, [i % m for i in range(self.d)]]  # (K, d)
        d = self.d

        def f(theta):
            theta = _as_theta(theta, d)
            a = xs[:, None, :] - theta[None, :, :]  # (K, M, d)
            c, s = np.cos(a), np.sin(a)
            ones = np.ones(c.shape[:2] + (1,))
            before = np.cumprod(np.concatenate([ones, c[..., :-1]], axis=2), axis=2)
            after = np.cumprod(np.concatenate([ones, c[..., :0:-1]], axis=2), axis=2)[..., ::-1]
            others = before * after  # prod_{i != j} cos(a_i)
            return others[..., 0] * c[..., 0], s * others

        return f

    def max_frequency(self) -> tuple[int, ...]:
        return (1,) * self.d

    def describe(self) -> dict:
        return {"kind": self.kind, "d": self.d, "m": self.m, "max_frequency": [1] * self.d}


def _load_function(ref: str, base_dir) -> Callable:
    """Import ``"module:function"``: from ``base_dir`` first, then ``sys.path``."""
    key = "expert.function"
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise CaseError(key, f"must be \"module:function\", got {ref!r}")
    mod_name, fn_name = (p.strip() for p in ref.split(":"))
    base_dir = os.path.abspath(os.fspath(base_dir))
    rel = mod_name.replace(".", os.sep)
    candidates = [os.path.join(base_dir, rel + ".py"), os.path.join(base_dir, rel, "__init__.py")]
    path = next((p for p in candidates if os.path.isfile(p)), None)
    try:
        if path is not None:
            uniq = f"_mfpde_user_{abs(hash(path)):x}_{mod_name.replace('.', '_')}"
            spec = importlib.util.spec_from_file_location(uniq, path)
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, base_dir)  # for the module's own sibling imports
            try:
                spec.loader.exec_module(module)
            finally:
                try:
                    sys.path.remove(base_dir)
                except ValueError:
                    pass
        else:
            module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise CaseError(key, f"cannot import module {mod_name!r} (looked in {base_dir} and sys.path): {exc}") from None
    except Exception as exc:
        raise CaseError(key, f"importing module {mod_name!r} failed: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, fn_name):
        raise CaseError(key, f"module {mod_name!r} has no attribute {fn_name!r}")
    fn = getattr(module, fn_name)
    if not callable(fn):
        raise CaseError(key, f"{ref!r} is not callable (it is a {type(fn).__name__})")
    return fn


class PythonExpert(Expert):
    r"""User-defined expert.

    ``function(x (K, m), theta (M, d)) -> (values (K, M), grads (K, M, d))``
    with ``grads[k, m, j]`` :math:`=\partial_{\theta_j}\phi(x_k;\theta_m)`.
    ``function`` is a callable or ``"module:function"``, imported from
    ``base_dir`` (the case file's folder) or else from ``sys.path``.  The
    output shapes (and finiteness) are checked on the first call of each
    binding; a wrong output is a :class:`CaseError` for ``expert.function``.
    """

    kind = "python"

    def __init__(self, function, d: int, m: int | None = None, base_dir=".", max_frequency=None):
        self.d = _positive_int("expert.d", d)
        self.m = None if m is None else _positive_int("expert.m", m)
        if isinstance(function, str):
            self.ref = function
            self.function = _load_function(function, base_dir)
        elif callable(function):
            self.function = function
            self.ref = f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"
        else:
            raise CaseError("expert.function", f"must be \"module:function\" or a callable, got {function!r}")
        if max_frequency is not None:
            if (
                not isinstance(max_frequency, (list, tuple))
                or len(max_frequency) != self.d
                or not all(_is_int(n) and n >= 0 for n in max_frequency)
            ):
                raise CaseError("expert.max_frequency", f"must be {self.d} non-negative integers, got {max_frequency!r}")
            max_frequency = tuple(int(n) for n in max_frequency)
        self._max_frequency = max_frequency

    def bind(self, x) -> BoundExpert:
        x = _as_data(x, self.m)
        K, d, fn, ref = x.shape[0], self.d, self.function, self.ref
        checked = [False]

        def f(theta):
            theta = _as_theta(theta, d)
            try:
                out = fn(x, theta)
                values, grads = out
            except CaseError:
                raise
            except (TypeError, ValueError) as exc:
                if not checked[0]:
                    raise CaseError(
                        "expert.function",
                        f"{ref} must return (values (K, M), grads (K, M, d)): {type(exc).__name__}: {exc}",
                    ) from None
                raise
            values = np.asarray(values, dtype=float)
            grads = np.asarray(grads, dtype=float)
            if not checked[0]:
                M = theta.shape[0]
                if values.shape != (K, M):
                    raise CaseError("expert.function", f"{ref} returned values of shape {values.shape}, expected (K, M) = {(K, M)}")
                if grads.shape != (K, M, d):
                    raise CaseError(
                        "expert.function", f"{ref} returned grads of shape {grads.shape}, expected (K, M, d) = {(K, M, d)}"
                    )
                if not (np.isfinite(values).all() and np.isfinite(grads).all()):
                    raise CaseError("expert.function", f"{ref} returned non-finite values or gradients")
                checked[0] = True
            return values, grads

        return f

    def max_frequency(self):
        return self._max_frequency

    def describe(self) -> dict:
        out = {"kind": self.kind, "d": self.d, "m": self.m, "function": self.ref}
        if self._max_frequency is not None:
            out["max_frequency"] = list(self._max_frequency)
        return out


# --------------------------------------------------------------------------- #
# Factory
# --------------------------------------------------------------------------- #


def build_expert(spec: dict, base_dir=".") -> Expert:
    """Build an expert from the ``[expert]`` table of a case.

    ``base_dir`` is the case file's folder (where ``kind = "python"`` modules
    are looked up first).  Unknown keys, missing keys and every contract
    violation raise :class:`CaseError` naming the key.
    """
    if not isinstance(spec, dict):
        raise CaseError("expert", f"must be a table, got {type(spec).__name__}")
    if "kind" not in spec:
        raise CaseError("expert.kind", f"missing (known: {', '.join(KNOWN_KINDS)})")
    kind = spec["kind"]
    if kind == "qnn":
        _check_keys(spec, ("wires", "observable", "gates"), ("device",), kind)
        return QNNExpert(
            spec["gates"], spec["wires"], spec["observable"], device=spec.get("device", "default.qubit")
        )
    if kind == "cosine":
        _check_keys(spec, ("d",), ("m",), kind)
        return CosineExpert(spec["d"], spec.get("m"))
    if kind == "python":
        _check_keys(spec, ("function", "d"), ("m", "max_frequency"), kind)
        return PythonExpert(
            spec["function"], spec["d"], spec.get("m"), base_dir=base_dir, max_frequency=spec.get("max_frequency")
        )
    raise CaseError("expert.kind", f"unknown kind {kind!r} (known: {', '.join(KNOWN_KINDS)})")
