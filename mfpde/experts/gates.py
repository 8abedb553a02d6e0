"""The gate language of quantum experts: gates, noise channels and observables.

A circuit is a list applied to :math:`|0\\ldots0\\rangle` in order; each row is

- ``[name, angle, wires]`` for a rotation (RX, RY, RZ, PhaseShift) by an
  angle ``"x"`` (= ``"x[0]"``), ``"x[j]"`` (input column j), ``"theta[i]"``
  (trainable coordinate i) or a number;
- ``[name, wires]`` for a fixed gate (Hadamard/H, PauliX/X, PauliY/Y,
  PauliZ/Z, S, T, SX, CNOT, CZ, SWAP; CNOT and CZ take ``[control, target]``);
- ``[name, p, wires]`` for a noise channel (DepolarizingChannel,
  AmplitudeDamping, PhaseDamping, BitFlip, PhaseFlip) with a number
  ``0 <= p <= 1``; channels need a mixed-state device.

The observable is a tensor product of Paulis ``[[pauli, wire], ...]``.  Names,
angles and wires follow PennyLane (``qml.<name>``, wire 0 the most
significant qubit).  Parsing refuses a bad row with a
:class:`~mfpde.errors.CaseError` whose key is ``expert.gates[i]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mfpde.errors import CaseError
from mfpde.experts.base import is_int, is_number


@dataclass(frozen=True)
class GateKind:
    """One row of the gate table."""

    name: str  # PennyLane operation name (qml.<name>)
    n_wires: int
    rotation: bool  # takes one angle
    channel: bool = False  # a noise channel (Kraus operators), takes a probability p
    axis: str = ""  # rotations: the Pauli the generator is diagonal with (X, Y or Z)


GATE_TABLE: dict[str, GateKind] = {
    g.name: g
    for g in (
        GateKind("RX", 1, True, axis="X"),
        GateKind("RY", 1, True, axis="Y"),
        GateKind("RZ", 1, True, axis="Z"),
        GateKind("PhaseShift", 1, True, axis="Z"),
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
CHANNEL_TABLE: dict[str, GateKind] = {
    name: GateKind(name, 1, False, channel=True)
    for name in ("DepolarizingChannel", "AmplitudeDamping", "PhaseDamping", "BitFlip", "PhaseFlip")
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
    """A parsed row: table entry, wires, and the angle (rotations) or the
    probability (channels, a constant ``Angle``)."""

    kind: GateKind
    wires: tuple[int, ...]
    angle: Angle | None = None

    @property
    def trainable(self) -> bool:
        return self.angle is not None and self.angle.source == "theta"

    def as_list(self) -> list:
        if self.angle is None:
            return [self.kind.name, list(self.wires)]
        return [self.kind.name, self.angle.text(), list(self.wires)]


def _parse_angle(key: str, a) -> Angle:
    if is_number(a):
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


def _parse_probability(key: str, name: str, p) -> Angle:
    if not is_number(p) or not 0.0 <= float(p) <= 1.0:
        raise CaseError(key, f"{name} takes a probability, a number in [0, 1], got {p!r}")
    return Angle("const", value=float(p))


def _parse_wires(key: str, w, n_wires: int, need: int, gate_name: str) -> tuple[int, ...]:
    if is_int(w):
        w = [w]
    if not isinstance(w, (list, tuple)):
        raise CaseError(key, f"wires of {gate_name} must be a list of {need} integer(s), got {w!r}")
    if len(w) != need:
        raise CaseError(key, f"{gate_name} acts on {need} wire(s), got {len(w)}: {list(w)!r}")
    out = []
    for v in w:
        if not is_int(v):
            raise CaseError(key, f"wire {v!r} of {gate_name} is not an integer")
        if not 0 <= v < n_wires:
            raise CaseError(key, f"wire {v} of {gate_name} is out of range 0..{n_wires - 1} (expert.wires = {n_wires})")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise CaseError(key, f"{gate_name} repeats wire {out[0]}: {out!r} (control and target must differ)")
    return tuple(out)


def _parse_row(key: str, g, n_wires: int) -> Gate:
    if not isinstance(g, (list, tuple)) or len(g) == 0 or not isinstance(g[0], str):
        raise CaseError(key, f"a gate is [name, angle, wires] or [name, wires], got {g!r}")
    name = GATE_ALIASES.get(g[0], g[0])
    gk = GATE_TABLE.get(name) or CHANNEL_TABLE.get(name)
    if gk is None:
        known = ", ".join(list(GATE_TABLE) + [f"{a} (= {n})" for a, n in GATE_ALIASES.items()])
        raise CaseError(key, f"unknown gate or channel {g[0]!r} (gates: {known}; channels: {', '.join(CHANNEL_TABLE)})")
    if gk.rotation or gk.channel:
        what = "a rotation: expected [name, angle, wires]" if gk.rotation else "a channel: expected [name, p, wires]"
        if len(g) != 3:
            raise CaseError(key, f"{name} is {what}, got {list(g)!r}")
        angle = _parse_angle(key, g[1]) if gk.rotation else _parse_probability(key, name, g[1])
        return Gate(gk, _parse_wires(key, g[2], n_wires, gk.n_wires, name), angle)
    if len(g) != 2:
        raise CaseError(key, f"{name} takes no angle: expected [name, wires], got {list(g)!r}")
    return Gate(gk, _parse_wires(key, g[1], n_wires, gk.n_wires, name))


def parse_gates(gates, n_wires: int) -> list[Gate]:
    """Parse and validate the gate list (DESIGN section 6, channels: issue 9.4).

    Raises :class:`CaseError` with key ``expert.gates[i]`` (or ``expert.gates``
    for list-level problems such as a gap in the theta indices).
    """
    if not isinstance(gates, (list, tuple)) or len(gates) == 0:
        raise CaseError("expert.gates", f"must be a non-empty list of gates, got {gates!r}")
    out = [_parse_row(f"expert.gates[{i}]", g, n_wires) for i, g in enumerate(gates)]
    used = sorted({g.angle.index for g in out if g.trainable})
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
        if not is_int(wire) or not 0 <= wire < n_wires:
            raise CaseError(key, f"wire {wire!r} is out of range 0..{n_wires - 1} (expert.wires = {n_wires})")
        if any(w == wire for _, w in out):
            raise CaseError(key, f"wire {wire} appears twice in the observable")
        out.append((pauli, int(wire)))
    return out


def hardware_efficient(qubits: int, d: int) -> list:
    """A gate list of the hardware-efficient family with data re-uploading and ``d`` parameters.

    Layers until ``d`` parameters are placed: ``RX(x)`` on every wire, an ``RY``
    then an ``RZ`` rotation by the next parameters on the first wires, a CNOT
    chain ``(q, q + 1)``.  The circuits of the example cases and the benchmarks.
    """
    gates, i = [], 0
    while i < d:
        gates += [["RX", "x", [q]] for q in range(qubits)]
        for axis in ("RY", "RZ"):
            placed = min(qubits, d - i)
            gates += [[axis, f"theta[{i + q}]", [q]] for q in range(placed)]
            i += placed
        gates += [["CNOT", [q, q + 1]] for q in range(qubits - 1)]
    return gates
