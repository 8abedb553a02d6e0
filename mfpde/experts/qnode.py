r"""A PennyLane QNode as an expert: its tape translated into gate rows, checked against the QNode.

A QNode ``f(x, theta) -> qml.expval(P)``, with ``x`` the input (m,) and
``theta`` the trainable parameters (d,) indexed inside the circuit (``x[0]``,
``theta[1]``), is the same expert as the gate list of :mod:`.gates`, so it
gets the exact Fourier and statevector paths of :class:`.QNNExpert` instead of
one PennyLane call per (expert, data) pair (a ``kind = "python"`` wrapper of
a one-qubit QNode took 451 s for N = 16 where the gate rows take well under a
second).

Translation (:func:`translate`):

* the tape is recorded (``qml.workflow.construct_tape``, level ``"user"``)
  three times, with ``x`` and ``theta`` filled with three independent draws
  of generic numbers;
* an operation parameter is ``x[j]`` or ``theta[i]`` when it equals that entry
  in every recording, a constant when it is the same number in every
  recording; anything else (``2 * theta[0]``, ``x[0] * theta[1]``, an angle
  that depends on the data through a function) is refused with one line that
  names the expression and says how to write it (a repeated gate for an
  integer multiple, its own ``theta[i]`` for a free angle);
* operations outside the gate table are replaced by their PennyLane
  decomposition until every one is in it (``Rot`` -> RZ RY RZ,
  ``AngleEmbedding`` -> RX, ``adjoint(S)`` -> PhaseShift(-pi/2), ...);
* the measurement must be one ``qml.expval`` of a Pauli word with
  coefficient 1 (``qml.Z(0) @ qml.Z(1)``); wires are the device's wires, in
  their order.

:class:`QNodeExpert` then checks the gate rows against the QNode itself at
random ``(x, theta)``: values and ``qml.grad`` gradients must agree to
:data:`CHECK_TOL` (1e-12), or construction is refused.  :func:`qnode_of`
recognizes a QNode or a function of no arguments that builds one; the expert
registry uses it so that ``case_from_dict(..., expert=qnode)`` and a
``kind = "python"`` function that is (or builds) a QNode take this path.
"""

from __future__ import annotations

import inspect
import math
import sys

import numpy as np

from mfpde.errors import CaseError
from mfpde.experts.gates import CHANNEL_TABLE, GATE_TABLE
from mfpde.experts.qnn import QNNExpert

CHECK_TOL = 1e-12
PROBE_X, PROBE_THETA = 16, 64  # entries of x and theta offered to the circuit when m, d are not given
_RECORDINGS = 3
_HOW = ("an angle must be x[j], theta[i] or a constant: write k * theta[i] (integer k) as k gates by theta[i], "
        "give any other expression its own theta[i], or use kind = \"python\"")


def _is_qnode(obj) -> bool:
    qml = sys.modules.get("pennylane")  # a QNode exists only if PennyLane was imported
    return qml is not None and isinstance(obj, qml.QNode)


def qnode_of(obj):
    """``obj`` if it is a QNode, the QNode a function of no arguments builds, else None."""
    if _is_qnode(obj):
        return obj
    if callable(obj) and not isinstance(obj, type) and not hasattr(obj, "bind"):
        try:
            required = [p for p in inspect.signature(obj).parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            return None
        if not required:
            try:
                built = obj()
            except Exception:  # not a builder (say, a function whose arguments all have defaults)
                return None
            return built if _is_qnode(built) else None
    return None


def _describe(value: float, draws: list[dict]) -> str:
    """The parameter as ``a * s + b`` in one symbol s, if three recordings show it, else 'a function of x, theta'."""
    for name in draws[0]:
        s = [dr[name] for dr in draws]
        if s[0] == s[1]:
            continue
        a = (value[1] - value[0]) / (s[1] - s[0])
        b = value[0] - a * s[0]
        if abs(a * s[2] + b - value[2]) <= 1e-12 * (1 + abs(value[2])):
            return f"{a:g} * {name}" + (f" + {b:g}" if abs(b) > 1e-14 else "")
    return "a function of x and theta"


def _parameter(key: str, op_name: str, values: list, symbols: list[dict]) -> object:
    """The gate-language angle of one parameter recorded in every recording."""
    arr = [np.asarray(v) for v in values]
    if any(a.shape != () for a in arr):
        raise CaseError(key, f"{op_name} got an angle of shape {arr[0].shape}: index x and theta inside the "
                             f"circuit (x[j], theta[i]); {_HOW}")
    v = [float(a) for a in arr]
    for name in symbols[0]:
        if all(v[r] == symbols[r][name] for r in range(len(v))):
            return name
    if all(val == v[0] for val in v):
        return v[0]
    raise CaseError(key, f"{op_name} has the angle {_describe(v, symbols)}, which the gate language cannot "
                         f"express: {_HOW}")


def _flatten(ops_per_recording: list[list], key: str, origin: str | None = None) -> list[list]:
    """Decompose, in step over all recordings, until every operation is in the gate or channel table.

    Returns, per recording, ``(operation, origin)`` pairs; ``origin`` names the
    operation of the tape a decomposed gate came from (None: the tape's own)."""
    out = [[] for _ in ops_per_recording]
    for ops in zip(*ops_per_recording):
        names = {op.name for op in ops}
        if len(names) != 1 or len({tuple(op.wires) for op in ops}) != 1:
            raise CaseError(key, f"the circuit's operations depend on the values of x or theta ({sorted(names)}): "
                                 "no control flow on the inputs in the QNode")
        op = ops[0]
        if op.name in GATE_TABLE or op.name in CHANNEL_TABLE:
            for r, o in enumerate(ops):
                out[r].append((o, origin))
        elif op.has_decomposition:
            for r, sub in enumerate(_flatten([o.decomposition() for o in ops], key, origin or op.name)):
                out[r].extend(sub)
        else:
            raise CaseError(key, f"operation {op.name} has no counterpart in the gate language "
                                 f"(gates: {', '.join(GATE_TABLE)}; channels: {', '.join(CHANNEL_TABLE)}) and no "
                                 "decomposition into it: write the circuit with those gates")
    return out


def _record(qnode, x, theta):
    import pennylane as qml

    construct = getattr(getattr(qml, "workflow", None), "construct_tape", None)
    if construct is not None:
        return construct(qnode, level="user")(x, theta)
    return qml.tape.make_qscript(qnode.func)(x, theta)  # pragma: no cover (PennyLane < 0.40)


def translate(qnode, d: int | None = None, m: int | None = None) -> dict:
    """The QNode's circuit as ``{"gates", "wires", "observable", "device"}`` for :class:`QNNExpert`.

    Raises :class:`CaseError` (key ``expert``) for what the gate language cannot express.
    """
    import pennylane as qml

    key = "expert"
    rng = np.random.default_rng(20250114)
    nx, nt = m or PROBE_X, d or PROBE_THETA
    symbols, tapes = [], []
    for _ in range(_RECORDINGS):
        x, theta = rng.uniform(0.1, 3.0, nx), rng.uniform(0.1, 3.0, nt)
        symbols.append({**{f"x[{j}]": float(v) for j, v in enumerate(x)},
                        **{f"theta[{i}]": float(v) for i, v in enumerate(theta)}})
        try:
            tapes.append(_record(qnode, x, theta))
        except Exception as exc:  # the user's circuit function
            first = (str(exc).strip().splitlines() or [""])[0]
            raise CaseError(key, f"recording the QNode with x ({nx},) and theta ({nt},) failed: "
                                 f"{type(exc).__name__}: {first}") from None

    meas = tapes[0].measurements
    if len(meas) != 1 or not isinstance(meas[0], qml.measurements.ExpectationMP) or meas[0].obs is None:
        raise CaseError(key, f"the QNode must return one qml.expval of a Pauli word, got {meas}")
    rep = meas[0].obs.pauli_rep
    if rep is None or len(rep) != 1 or abs(next(iter(rep.values())) - 1.0) > 1e-15:
        raise CaseError(key, f"the observable must be one Pauli word with coefficient 1 (as qml.Z(0) @ qml.Z(1)), "
                             f"got {meas[0].obs}")
    word = next(iter(rep))

    dev_wires = getattr(qnode.device, "wires", None)
    flat = _flatten([t.operations for t in tapes], key)
    ops = [[op for op, _ in rec] for rec in flat]
    used = [w for op in ops[0] for w in op.wires] + list(word.keys())
    if dev_wires is not None and len(dev_wires):
        labels = list(dev_wires)
    else:
        if not all(isinstance(w, (int, np.integer)) and w >= 0 for w in used):
            raise CaseError(key, f"wires must be 0, 1, ... or the device must name them, got {sorted(set(used))}")
        labels = list(range(max(used) + 1))
    index = {w: i for i, w in enumerate(labels)}

    rows = []
    for i, op in enumerate(ops[0]):
        wires = [index[w] for w in op.wires]
        origin = flat[0][i][1]
        at = f"{key} (gate {i}: {op.name} on wires {list(op.wires)}" + (f", from {origin})" if origin else ")")
        if op.name in CHANNEL_TABLE:
            p = _parameter(at, op.name, [o.parameters[0] for o in (r[i] for r in ops)], symbols)
            if isinstance(p, str):
                raise CaseError(at, f"a channel's probability must be a constant, got {p}")
            rows.append([op.name, p, wires])
        elif GATE_TABLE[op.name].rotation:
            rows.append([op.name, _parameter(at, op.name, [r[i].parameters[0] for r in ops], symbols), wires])
        else:
            rows.append([op.name, wires])
    thetas = sorted({int(r[1][6:-1]) for r in rows if len(r) == 3 and isinstance(r[1], str) and r[1][0] == "t"})
    if d is not None and (not thetas or thetas[-1] + 1 != d):
        raise CaseError("expert.d", f"is {d}, but the QNode uses theta[0..{thetas[-1] if thetas else -1}]")
    observable = [[p, index[w]] for w, p in word.items()] or [["I", 0]]
    return {"gates": rows, "wires": len(labels), "observable": observable, "device": qnode.device.name}


class QNodeExpert(QNNExpert):
    """A QNode translated into gate rows (:func:`translate`) and checked against it.

    Parameters
    ----------
    qnode : pennylane.QNode
        ``f(x (m,), theta (d,)) -> qml.expval(Pauli word)``.
    d, m : int, optional
        Lengths of ``theta`` and ``x``; from the indices the circuit uses if not given.
    method : str
        As :class:`QNNExpert`: ``"auto"``, ``"fourier"`` or ``"statevector"``.
    """

    def __init__(self, qnode, d: int | None = None, m: int | None = None, method: str = "auto"):
        spec = translate(qnode, d, m)
        super().__init__(spec["gates"], spec["wires"], spec["observable"], device=spec["device"], method=method)
        if m is not None and (self.m or 0) > m:
            raise CaseError("expert.m", f"is {m}, but the QNode reads x[{self.m - 1}]")
        self.source = qnode
        self.check_against(qnode)

    def check_against(self, qnode, points: int = 3, seed: int = 7) -> float:
        """Largest |value or gradient difference| to the QNode at random points; refuse above :data:`CHECK_TOL`."""
        import pennylane as qml
        from pennylane import numpy as pnp

        rng = np.random.default_rng(seed)
        x = rng.uniform(-math.pi, math.pi, (points, max(self.m or 1, 1)))
        theta = rng.uniform(-math.pi, math.pi, (points, self.d))
        phi, grad = self.evaluate(x, theta)
        worst = 0.0
        for k in range(points):
            for j in range(points):
                t = pnp.array(theta[j], requires_grad=True)
                value = float(qnode(x[k], t))
                g = np.asarray(qml.grad(qnode, argnums=1)(x[k], t), dtype=float).reshape(-1)
                worst = max(worst, abs(value - phi[k, j]), float(np.abs(g - grad[k, j]).max()))
        if not worst <= CHECK_TOL:
            raise CaseError("expert", f"the gate rows translated from the QNode differ from it by {worst:.2e} "
                                      f"(> {CHECK_TOL:g}) at random (x, theta): the circuit is not what the tape "
                                      "showed (a stochastic device or shots?); use kind = \"python\"")
        return worst

    def case_table(self) -> dict:
        """The ``[expert]`` table of the translated rows (``kind = "qnn"``): the case as run, loadable again."""
        out = {"kind": "qnn", "wires": self.wires, "device": self.device_name,
               "observable": [[p, w] for p, w in self.observable], "gates": [g.as_list() for g in self.gates]}
        if self.method_requested != "auto":
            out["method"] = self.method_requested
        return out

    def describe(self) -> dict:
        out = super().describe()
        out["source"] = f"PennyLane QNode {getattr(getattr(self.source, 'func', None), '__qualname__', '?')}"
        return out
