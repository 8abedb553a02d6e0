"""PennyLane QNodes as experts (mfpde/experts/qnode.py) and the Fourier path of max_frequency (python kind)."""

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from mfpde.config.case import case_from_dict, default_case
from mfpde.errors import CaseError
from mfpde.experts import PythonExpert, QNNExpert, QNodeExpert
from mfpde.experts.fourier import TrigPolyBound
from mfpde.experts.qnode import translate
from mfpde.runs.particles import run_particles

DEV1 = qml.device("default.qubit", wires=1)
DEV2 = qml.device("default.qubit", wires=2)


@qml.qnode(DEV1)
def default_circuit(x, theta):
    """The circuit of the default case, written as a user would."""
    qml.RX(x[0], wires=0)
    qml.RY(theta[0], wires=0)
    qml.RX(x[0], wires=0)
    qml.RY(theta[1], wires=0)
    return qml.expval(qml.Z(0))


@qml.qnode(DEV2)
def templated(x, theta):
    """Templates and adjoints that decompose into the gate language."""
    qml.AngleEmbedding(x[:2], wires=[0, 1])
    qml.Rot(theta[0], theta[1], theta[2], wires=1)
    qml.CNOT(wires=[0, 1])
    qml.adjoint(qml.S)(wires=0)
    qml.RY(theta[3], wires=0)
    qml.CZ(wires=[1, 0])
    qml.RX(0.3, wires=1)
    return qml.expval(qml.Z(0) @ qml.X(1))


def _qnode_values_and_grads(qnode, x, theta):
    phi = np.empty((len(x), len(theta)))
    grad = np.empty((len(x), len(theta), theta.shape[1]))
    for k, xk in enumerate(x):
        for j, tj in enumerate(theta):
            t = pnp.array(tj, requires_grad=True)
            phi[k, j] = float(qnode(xk, t))
            grad[k, j] = np.asarray(qml.grad(qnode, argnums=1)(xk, t), dtype=float)
    return phi, grad


@pytest.mark.parametrize("qnode, d, m", [(default_circuit, 2, 1), (templated, 4, 2)])
def test_the_qnode_path_equals_the_qnode_values_and_gradients(qnode, d, m):
    e = QNodeExpert(qnode)
    assert (e.d, e.m) == (d, m)
    rng = np.random.default_rng(3)
    x, theta = rng.uniform(-3, 3, (4, m)), rng.uniform(-np.pi, np.pi, (5, d))
    want_phi, want_grad = _qnode_values_and_grads(qnode, x, theta)
    for method in ("fourier", "statevector"):
        phi, grad = QNodeExpert(qnode, method=method).evaluate(x, theta)
        np.testing.assert_allclose(phi, want_phi, rtol=0, atol=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=0, atol=1e-12)
    assert abs(want_grad).max() > 0.1  # the gradients are not trivially zero


def test_the_gate_rows_are_the_default_case_and_the_decompositions():
    assert translate(default_circuit) == {
        "gates": [["RX", "x[0]", [0]], ["RY", "theta[0]", [0]], ["RX", "x[0]", [0]], ["RY", "theta[1]", [0]]],
        "wires": 1, "observable": [["Z", 0]], "device": "default.qubit"}
    rows = translate(templated)["gates"]
    assert [r[0] for r in rows] == ["RX", "RX", "RZ", "RY", "RZ", "CNOT", "PhaseShift", "RY", "CZ", "RX"]
    assert rows[2:5] == [["RZ", "theta[0]", [1]], ["RY", "theta[1]", [1]], ["RZ", "theta[2]", [1]]]
    assert rows[6] == ["PhaseShift", pytest.approx(-np.pi / 2), [0]] and rows[9] == ["RX", 0.3, [1]]


def test_a_run_with_the_qnode_gives_the_risk_of_the_gate_row_case():
    base = default_case()
    table = dict(base.table, dynamics={"t_end": 1.0, "lr": 1.0, "tau": 0.0})
    rows = case_from_dict(table)
    qcase = case_from_dict({k: v for k, v in table.items() if k != "expert"}, expert=default_circuit)
    assert isinstance(rows.expert, QNNExpert) and isinstance(qcase.expert, QNodeExpert)
    a, _ = run_particles(rows, 16, 0, write=False, progress=False)
    b, _ = run_particles(qcase, 16, 0, write=False, progress=False)
    assert a["risk"][-1] < 0.7 * a["risk"][0]  # it trained
    np.testing.assert_allclose(b["risk"], a["risk"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(b["theta"], a["theta"], rtol=0, atol=1e-12)
    again = case_from_dict(qcase.table)  # the case as run records the rows: it loads without the QNode
    assert qcase.table["expert"]["kind"] == "qnn" and type(again.expert) is QNNExpert
    assert again.expert.describe()["gates"] == qcase.expert.describe()["gates"] == rows.expert.describe()["gates"]


def test_a_builder_function_and_the_python_kind_take_the_qnode_path(tmp_path):
    (tmp_path / "my_circuit.py").write_text(
        "import pennylane as qml\n"
        "dev = qml.device('default.qubit', wires=1)\n"
        "@qml.qnode(dev)\n"
        "def circuit(x, theta):\n"
        "    qml.RX(x[0], wires=0); qml.RY(theta[0], wires=0); qml.RX(x[0], wires=0); qml.RY(theta[1], wires=0)\n"
        "    return qml.expval(qml.Z(0))\n"
        "def build():\n"
        "    return circuit\n")
    table = {k: v for k, v in default_case().table.items() if k != "expert"}
    for fn in ("my_circuit:circuit", "my_circuit:build"):
        case = case_from_dict(dict(table, expert={"kind": "python", "function": fn, "d": 2}), tmp_path)
        assert isinstance(case.expert, QNodeExpert) and case.expert.method == "fourier"
        assert case.expert.describe()["gates"][1] == ["RY", "theta[0]", [0]]
    with pytest.raises(CaseError, match=r"expert\.d: is 3, but the QNode uses theta\[0\.\.1\]"):
        case_from_dict(dict(table, expert={"kind": "python", "function": "my_circuit:circuit", "d": 3}), tmp_path)
    case = case_from_dict(table, expert=lambda: default_circuit)
    assert isinstance(case.expert, QNodeExpert)


@qml.qnode(DEV2)
def doubled(x, theta):
    qml.RX(x[0], wires=0)
    qml.RY(2 * theta[0], wires=0)
    return qml.expval(qml.Z(0))


@qml.qnode(DEV2)
def controlled(x, theta):
    qml.Hadamard(wires=0)
    qml.CRX(theta[0], wires=[0, 1])
    return qml.expval(qml.Z(1))


@qml.qnode(DEV2)
def scaled_observable(x, theta):
    qml.RY(theta[0], wires=0)
    return qml.expval(0.5 * qml.Z(0))


@pytest.mark.parametrize("qnode, message", [
    (doubled, (r"gate 1: RY on wires \[0\]\): RY has the angle 2 \* theta\[0\], which the gate language "
               r"cannot express: .*write k \* theta\[i\] \(integer k\) as k gates by theta\[i\]")),
    (controlled, r"from CRX\): RY has the angle 0\.5 \* theta\[0\]"),
    (scaled_observable, r"one Pauli word with coefficient 1 .*got 0\.5 \* Z\(0\)"),
])
def test_what_the_gate_language_cannot_express_is_one_line(qnode, message):
    with pytest.raises(CaseError, match=message) as err:
        QNodeExpert(qnode)
    assert "\n" not in str(err.value)


def test_an_object_that_is_no_expert_is_refused():
    with pytest.raises(CaseError, match=r"expert: must be an mfpde expert .* or a PennyLane QNode f\(x, theta\), "
                                        r"got int"):
        case_from_dict({k: v for k, v in default_case().table.items() if k != "expert"}, expert=3)


# --------------------------------------------------------------------------- #
# kind = "python" with max_frequency: the exact Fourier path (docs/case-file.md)
# --------------------------------------------------------------------------- #


def _cos_expert(x, theta):  # sum_i cos(x - theta_i) * cos(theta_0): degree (2, 1, 1)
    a = x[:, None, :1] - theta[None, :, :]
    c0 = np.cos(theta[None, :, 0])
    values = np.cos(a).sum(axis=2) * c0
    grads = np.sin(a) * c0[..., None]
    grads[..., 0] -= np.cos(a).sum(axis=2) * np.sin(theta[None, :, 0])
    return values, grads


def test_max_frequency_gives_the_fourier_path_equal_to_the_function():
    x = np.array([[0.5], [1.5], [-2.0]])
    theta = np.random.default_rng(6).uniform(-np.pi, np.pi, (7, 3))
    calls = []

    def counted(x, theta):
        calls.append(theta.shape[0])
        return _cos_expert(x, theta)

    bound = PythonExpert(counted, d=3, max_frequency=[2, 1, 1]).bind(x)
    assert isinstance(bound, TrigPolyBound) and calls == [5 * 3 * 3, 3]  # the grid once, the check once
    phi, grad = bound(theta)
    want_phi, want_grad = _cos_expert(x, theta)
    np.testing.assert_allclose(phi, want_phi, rtol=0, atol=1e-13)
    np.testing.assert_allclose(grad, want_grad, rtol=0, atol=1e-13)
    assert len(calls) == 2  # evaluating costs no call of the function
    assert not isinstance(PythonExpert(_cos_expert, d=3).bind(x), TrigPolyBound)


def test_a_wrong_max_frequency_is_refused():
    with pytest.raises(CaseError, match=r"expert\.max_frequency: .* is not a trigonometric polynomial of degree "
                                        r"\[1, 1, 1\] in theta: its Fourier path differs from it by \d"):
        PythonExpert(_cos_expert, d=3, max_frequency=[1, 1, 1]).bind(np.array([[0.5]]))
