"""PennyLane devices of quantum experts: creation, and which state they simulate.

The ``device`` of a quantum expert is the PennyLane device of its reference
QNode (:meth:`QNNExpert.qnode`).  For the exact simulators in
:data:`EXACT_SIMULATORS` mfpde evaluates the circuit with its own exact
engines (Fourier or statevector, equal to the device to 1e-10, a test); any
other device is sampled through PennyLane on the Fourier grid.  Noise channels
need a mixed-state device (:data:`MIXED_STATE_DEVICES`).
"""

from __future__ import annotations

from mfpde.errors import CaseError

PURE_STATE_SIMULATORS = ("default.qubit", "lightning.qubit", "lightning.kokkos", "lightning.gpu")
MIXED_STATE_DEVICES = ("default.mixed",)
EXACT_SIMULATORS = PURE_STATE_SIMULATORS + MIXED_STATE_DEVICES


def make_device(name, wires: int):
    """``qml.device(name, wires=wires)``, or a CaseError for ``expert.device``."""
    import pennylane as qml

    if not isinstance(name, str) or not name:
        raise CaseError("expert.device", f"must be a PennyLane device name, got {name!r}")
    try:
        return qml.device(name, wires=wires)
    except Exception as exc:  # PennyLane raises DeviceError, ImportError, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaseError("expert.device", f"cannot create PennyLane device {name!r} with {wires} wire(s): {msg}") from None


def check_channels(gates, device_name: str) -> None:
    """Refuse a noise channel on a device that does not simulate mixed states."""
    for i, g in enumerate(gates):
        if g.kind.channel and device_name not in MIXED_STATE_DEVICES:
            raise CaseError(
                f"expert.gates[{i}]",
                f"channel {g.kind.name} needs a mixed-state device "
                f"({', '.join(MIXED_STATE_DEVICES)}), but expert.device = {device_name!r}",
            )
