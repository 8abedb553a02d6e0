"""Experts: the Fourier fast path against PennyLane's own circuit and autodiff,
closed-form classical experts against finite differences, and the case-file
validation of the [expert] table."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from mfpde.errors import CaseError
from mfpde.experts import (
    CosineExpert,
    Expert,
    PythonExpert,
    QNNExpert,
    build_expert,
    data_dim_required,
)

DEFAULT = {
    "kind": "qnn",
    "wires": 1,
    "device": "default.qubit",
    "observable": [["Z", 0]],
    "gates": [["RX", "x", [0]], ["RY", "theta[0]", [0]], ["RX", "x", [0]], ["RY", "theta[1]", [0]]],
}

# two qubits, inputs x[0] and x[1] re-uploaded, theta[0] used twice (degree 2),
# a fixed numeric angle, every fixed gate, CNOT and CZ, a two-wire observable
TWO_QUBIT_GATES = [
    ["H", [0]],
    ["RX", "x[0]", [0]],
    ["RY", "x[1]", [1]],
    ["RY", "theta[0]", [0]],
    ["CNOT", [0, 1]],
    ["RZ", "theta[1]", [1]],
    ["SX", [1]],
    ["RX", 0.37, [1]],
    ["CZ", [1, 0]],
    ["RX", "x[1]", [0]],
    ["RY", "x[0]", [1]],
    ["RX", "theta[0]", [1]],
    ["S", [0]],
    ["PhaseShift", "theta[2]", [0]],
    ["T", [1]],
    ["Hadamard", [0]],
    ["SWAP", [0, 1]],
    ["PauliY", [0]],
    ["X", [1]],
    ["Z", [0]],
    ["RY", -0.8, [1]],
    ["CNOT", [1, 0]],
]
TWO_QUBIT = {
    "kind": "qnn",
    "wires": 2,
    "device": "default.qubit",
    "observable": [["Z", 0], ["X", 1]],
    "gates": TWO_QUBIT_GATES,
}


def spec_with(base, **changes):
    spec = json.loads(json.dumps(base))
    for k, v in changes.items():
        if v is None:
            spec.pop(k, None)
        else:
            spec[k] = v
    return spec


def autodiff_reference(expert: QNNExpert, x, theta):
    """phi (K, M) and grad (K, M, d) point by point from the literal QNode and qml.grad."""
    f = expert.qnode()
    df = qml.grad(f, argnums=1)
    K, M = x.shape[0], theta.shape[0]
    phi = np.empty((K, M))
    grad = np.empty((K, M, expert.d))
    with warnings.catch_warnings():
        # autograd's backward pass through PhaseShift casts a complex zero to real
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        for k in range(K):
            xk = pnp.array(x[k], requires_grad=False)
            for j in range(M):
                t = pnp.array(theta[j], requires_grad=True)
                phi[k, j] = float(f(xk, t))
                grad[k, j] = np.asarray(df(xk, t))
    return phi, grad


def central_differences(fun, theta, h=1e-5):
    """grad (K, M, d) of fun(theta) -> phi (K, M) by central differences (tests only)."""
    cols = []
    for j in range(theta.shape[1]):
        e = np.zeros_like(theta)
        e[:, j] = h
        cols.append((fun(theta + e) - fun(theta - e)) / (2 * h))
    return np.stack(cols, axis=2)


# --------------------------------------------------------------------------- #
# QNN: fast path == PennyLane
# --------------------------------------------------------------------------- #


def test_default_case_matches_qnode_and_autodiff():
    e = build_expert(DEFAULT)
    assert isinstance(e, QNNExpert)
    assert (e.d, e.m, e.max_frequency()) == (2, 1, (1, 1))
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(5, 1))
    theta = rng.uniform(-7, 7, size=(4, 2))  # also outside [0, 2 pi): periodic
    phi, grad = e.evaluate(x, theta)
    assert phi.shape == (5, 4) and grad.shape == (5, 4, 2)
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)
    # the function is not trivial: values spread over the range of <Z>
    assert np.ptp(phi) > 0.5 and np.abs(grad).max() > 0.3


def test_default_case_closed_form():
    # RX(x) RY(t0) RX(x) RY(t1) |0>, <Z>: check one value against a hand formula
    # obtained from explicit 2x2 matrices
    e = build_expert(DEFAULT)
    x, t0, t1 = 0.7, 1.1, -0.4

    def rx(a):
        return np.array([[np.cos(a / 2), -1j * np.sin(a / 2)], [-1j * np.sin(a / 2), np.cos(a / 2)]])

    def ry(a):
        return np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])

    psi = ry(t1) @ rx(x) @ ry(t0) @ rx(x) @ np.array([1, 0])
    expected = abs(psi[0]) ** 2 - abs(psi[1]) ** 2
    phi, _ = e.evaluate(np.array([[x]]), np.array([[t0, t1]]))
    assert abs(phi[0, 0] - expected) < 1e-12


@pytest.mark.parametrize("device", ["default.qubit", "lightning.qubit"])
def test_two_qubit_circuit_matches_qnode_and_autodiff(device):
    e = build_expert(spec_with(TWO_QUBIT, device=device))
    assert (e.d, e.m, e.wires) == (3, 2, 2)
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(4, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(3, 3))
    phi, grad = e.evaluate(x, theta)
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)
    assert np.ptp(phi) > 0.1 and np.all(np.abs(grad).max(axis=(0, 1)) > 1e-3)


def test_degree_detection_theta_used_twice():
    e = build_expert(TWO_QUBIT)
    assert e.max_frequency() == (2, 1, 1)  # theta[0] in two gates
    assert e.describe()["max_frequency"] == [2, 1, 1]
    x = np.array([[0.3, -1.2], [1.5, 0.4]])
    freqs, coeffs = e.fourier_coefficients(x)
    assert freqs.shape == (5 * 3 * 3, 3) and coeffs.shape == (2, 45)
    assert freqs[:, 0].min() == -2 and freqs[:, 0].max() == 2
    # the degree is attained: some |s_0| = 2 coefficient is non-zero
    assert np.abs(coeffs[:, np.abs(freqs[:, 0]) == 2]).max() > 1e-3
    # real function: c_{-s} = conj(c_s)
    order = [np.flatnonzero((freqs == -s).all(axis=1))[0] for s in freqs]
    np.testing.assert_allclose(coeffs[:, order], coeffs.conj(), atol=1e-13)
    # the sum reproduces the circuit at a random point
    theta = np.array([0.9, 2.3, -1.7])
    series = (coeffs @ np.exp(1j * freqs @ theta)).real
    f = e.qnode()
    direct = [float(f(xk, theta)) for xk in x]
    np.testing.assert_allclose(series, direct, atol=1e-12)
    # the single-use coordinates have degree 1
    assert set(freqs[:, 1]) == set(freqs[:, 2]) == {-1, 0, 1}


def test_degree_counts_every_use():
    gates = [["RY", "theta[0]", [0]], ["RX", "x", [0]], ["RZ", "theta[1]", [0]],
             ["RY", "theta[0]", [0]], ["PhaseShift", "theta[1]", [0]], ["RX", "theta[0]", [0]]]
    e = QNNExpert(gates, 1, [["Z", 0]])
    assert e.max_frequency() == (3, 2)
    x = np.array([[0.4], [-1.0]])
    freqs, coeffs = e.fourier_coefficients(x)
    assert np.abs(coeffs[:, np.abs(freqs[:, 0]) == 3]).max() > 1e-4
    theta = np.random.default_rng(5).uniform(0, 2 * np.pi, (3, 2))
    phi, grad = e.evaluate(x, theta)
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    np.testing.assert_allclose(phi, ref_phi, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-10)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
def test_dimensions_one_to_six(d):
    gates = []
    for i in range(d):
        w = i % 2
        gates += [["RX", f"x[{i % 2}]", [w]], ["RY", f"theta[{i}]", [w]], ["CNOT", [w, 1 - w]]]
    e = QNNExpert(gates, 2, [["Z", 0], ["Y", 1]])
    assert e.d == d and e.max_frequency() == (1,) * d
    rng = np.random.default_rng(10 + d)
    x = rng.uniform(-2, 2, size=(2, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(2, d))
    phi, grad = e.evaluate(x, theta)
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    np.testing.assert_allclose(phi, ref_phi, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-10)


def test_bind_large_batch_blocks_and_speed():
    e = build_expert(DEFAULT)
    x = np.linspace(-3, 3, 16)[:, None]
    f = e.bind(x)
    theta = np.random.default_rng(2).uniform(0, 2 * np.pi, size=(16384, 2))
    phi, grad = f(theta)
    assert phi.shape == (16, 16384) and grad.shape == (16, 16384, 2)
    assert phi.flags.c_contiguous and grad.flags.c_contiguous
    assert np.abs(phi).max() <= 1 + 1e-12
    # same numbers when the particles are processed in many small blocks
    f._block_elems = 9 * 1000
    phi_b, grad_b = f(theta)
    np.testing.assert_allclose(phi_b, phi, atol=1e-13)
    np.testing.assert_allclose(grad_b, grad, atol=1e-13)
    del f._block_elems
    # spot check against the circuit
    j = [0, 4097, 16383]
    ref_phi, ref_grad = autodiff_reference(e, x[[0, 15]], theta[j])
    np.testing.assert_allclose(phi[[0, 15]][:, j], ref_phi, atol=1e-10)
    np.testing.assert_allclose(grad[[0, 15]][:, j], ref_grad, atol=1e-10)
    # speed is measured by benchmarks/bench_particles.py, not here


def test_evaluate_caches_binding_and_checks_shapes():
    e = build_expert(DEFAULT)
    calls = []
    original = e.bind
    e.bind = lambda x: calls.append(1) or original(x)
    x = np.array([[0.1], [0.2]])
    theta = np.zeros((3, 2))
    e.evaluate(x, theta)
    e.evaluate(x.copy(), theta + 1)
    assert len(calls) == 1
    e.evaluate(x + 1, theta)
    assert len(calls) == 2
    with pytest.raises(ValueError):
        e.evaluate(x, np.zeros((3, 3)))
    with pytest.raises(ValueError):
        build_expert(TWO_QUBIT).evaluate(np.zeros((2, 1)), np.zeros((1, 3)))  # reads 2 columns
    assert data_dim_required(build_expert(TWO_QUBIT)) == 2
    # no particles on this rank: empty, correctly shaped output
    for expert in (e, build_expert(TWO_QUBIT), CosineExpert(2)):
        phi, grad = expert.evaluate(np.zeros((3, 2)), np.zeros((0, expert.d)))
        assert phi.shape == (3, 0) and grad.shape == (3, 0, expert.d)


def test_describe_is_json():
    e = build_expert(TWO_QUBIT)
    desc = json.loads(json.dumps(e.describe()))
    assert desc["kind"] == "qnn" and desc["d"] == 3 and desc["wires"] == 2
    assert desc["gates"][0] == ["Hadamard", [0]] and desc["gates"][1] == ["RX", "x[0]", [0]]
    assert desc["observable"] == [["Z", 0], ["X", 1]]
    # the description rebuilds the same expert
    again = build_expert({k: desc[k] for k in ("kind", "wires", "device", "observable", "gates")})
    x, th = np.array([[0.2, 0.5]]), np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(again.evaluate(x, th)[0], e.evaluate(x, th)[0], atol=1e-14)
    for other in (CosineExpert(3, 2), PythonExpert(lambda x, t: None, 2)):
        json.dumps(other.describe())


# --------------------------------------------------------------------------- #
# Classical experts
# --------------------------------------------------------------------------- #


def test_cosine_expert_values_and_gradients():
    e = build_expert({"kind": "cosine", "d": 3, "m": 2})
    assert isinstance(e, CosineExpert) and e.max_frequency() == (1, 1, 1)
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, size=(4, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(5, 3))
    phi, grad = e.evaluate(x, theta)
    expected = (np.cos(x[:, None, 0] - theta[None, :, 0]) * np.cos(x[:, None, 1] - theta[None, :, 1])
                * np.cos(x[:, None, 0] - theta[None, :, 2]))  # x_{i mod m}
    np.testing.assert_allclose(phi, expected, atol=1e-14)
    fd = central_differences(lambda t: e.evaluate(x, t)[0], theta)
    np.testing.assert_allclose(grad, fd, atol=1e-7)
    # exact where a cosine factor vanishes (no division)
    t0 = np.array([[x[0, 0] - np.pi / 2, 0.3, 0.5]])
    _, g0 = e.evaluate(x[:1], t0)
    fd0 = central_differences(lambda t: e.evaluate(x[:1], t)[0], t0)
    np.testing.assert_allclose(g0, fd0, atol=1e-7)
    assert abs(g0[0, 0, 0]) > 0.1


def _write_module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body)


PHI_MODULE = '''
import numpy as np

def phi(x, theta):
    a = x[:, None, 0] + np.sin(theta[None, :, 0]) * np.cos(2 * theta[None, :, 1])
    v = np.tanh(a)
    s = 1 - v ** 2
    g = np.stack([s * np.cos(theta[None, :, 0]) * np.cos(2 * theta[None, :, 1]),
                  -2 * s * np.sin(theta[None, :, 0]) * np.sin(2 * theta[None, :, 1])], axis=2)
    return v, g

def bad_values(x, theta):
    return np.zeros((x.shape[0] + 1, theta.shape[0])), np.zeros((x.shape[0], theta.shape[0], 2))

def bad_grads(x, theta):
    return np.zeros((x.shape[0], theta.shape[0])), np.zeros((x.shape[0], theta.shape[0]))

def not_a_pair(x, theta):
    return np.zeros((x.shape[0], theta.shape[0]))

NOT_CALLABLE = 3
'''


def test_python_expert_from_case_folder(tmp_path):
    _write_module(tmp_path, "mfpde_test_user_phi", PHI_MODULE)
    e = build_expert({"kind": "python", "function": "mfpde_test_user_phi:phi", "d": 2, "m": 1}, base_dir=tmp_path)
    assert isinstance(e, PythonExpert) and e.d == 2 and e.m == 1 and e.max_frequency() is None
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(3, 1))
    theta = rng.uniform(0, 2 * np.pi, size=(6, 2))
    phi, grad = e.evaluate(x, theta)
    assert phi.shape == (3, 6) and grad.shape == (3, 6, 2)
    fd = central_differences(lambda t: e.evaluate(x, t)[0], theta)
    np.testing.assert_allclose(grad, fd, atol=1e-7)
    assert e.describe()["function"] == "mfpde_test_user_phi:phi"


def test_python_expert_callable():
    def fn(x, theta):
        a = x[:, None, :1] - theta[None, :, :]
        return np.cos(a).sum(axis=2), np.sin(a)

    e = PythonExpert(fn, d=3, max_frequency=[1, 1, 1])
    x = np.array([[0.5], [1.5]])
    theta = np.random.default_rng(6).uniform(0, 6, (4, 3))
    phi, grad = e.evaluate(x, theta)
    np.testing.assert_allclose(grad, central_differences(lambda t: e.evaluate(x, t)[0], theta), atol=1e-7)
    assert e.max_frequency() == (1, 1, 1)


# --------------------------------------------------------------------------- #
# Validation: every error names its key
# --------------------------------------------------------------------------- #


def _gates(*replace):
    g = [list(x) for x in DEFAULT["gates"]]
    for i, gate in replace:
        g[i] = gate
    return g


QNN_ERRORS = [
    # (id, spec, key, words in the message)
    ("unknown gate", spec_with(DEFAULT, gates=_gates((2, ["RQ", "x", [0]]))), "expert.gates[2]", "unknown gate"),
    ("rotation without angle", spec_with(DEFAULT, gates=_gates((1, ["RY", [0]]))), "expert.gates[1]", "rotation"),
    ("fixed gate with angle", spec_with(DEFAULT, gates=_gates((0, ["H", 0.5, [0]]))), "expert.gates[0]", "no angle"),
    ("gate not a list", spec_with(DEFAULT, gates=_gates((3, "RX"))), "expert.gates[3]", "gate is"),
    ("CNOT with one wire", spec_with(TWO_QUBIT, gates=[["RY", "theta[0]", [0]], ["CNOT", [0]]]),
     "expert.gates[1]", "2 wire"),
    ("bad angle string", spec_with(DEFAULT, gates=_gates((0, ["RX", "y[0]", [0]]))), "expert.gates[0]", "cannot parse angle"),
    ("bad theta string", spec_with(DEFAULT, gates=_gates((1, ["RY", "theta[-1]", [0]]))), "expert.gates[1]", "cannot parse angle"),
    ("theta index gap", spec_with(DEFAULT, gates=_gates((3, ["RY", "theta[2]", [0]]))), "expert.gates", "theta[1]"),
    ("no theta", spec_with(DEFAULT, gates=[["RX", "x", [0]]]), "expert.gates", "theta"),
    ("wire out of range", spec_with(DEFAULT, gates=_gates((2, ["RX", "x", [1]]))), "expert.gates[2]", "out of range"),
    ("repeated wire", spec_with(TWO_QUBIT, gates=[["RY", "theta[0]", [0]], ["CZ", [1, 1]]]), "expert.gates[1]", "repeats wire"),
    ("unknown pauli", spec_with(DEFAULT, observable=[["W", 0]]), "expert.observable[0]", "unknown pauli"),
    ("observable wire", spec_with(TWO_QUBIT, observable=[["Z", 0], ["X", 2]]), "expert.observable[1]", "out of range"),
    ("observable shape", spec_with(DEFAULT, observable=[["Z", 0, 1]]), "expert.observable[0]", "[pauli, wire]"),
    ("unknown device", spec_with(DEFAULT, device="no.such.device"), "expert.device", "no.such.device"),
    ("device not a string", spec_with(DEFAULT, device=3), "expert.device", "device"),
    ("wires zero", spec_with(DEFAULT, wires=0), "expert.wires", "positive integer"),
    ("wires float", spec_with(DEFAULT, wires=1.5), "expert.wires", "positive integer"),
    ("wires bool", spec_with(DEFAULT, wires=True), "expert.wires", "positive integer"),
    ("missing gates", spec_with(DEFAULT, gates=None), "expert.gates", "missing"),
    ("missing observable", spec_with(DEFAULT, observable=None), "expert.observable", "missing"),
    ("missing wires", spec_with(DEFAULT, wires=None), "expert.wires", "missing"),
    ("missing kind", spec_with(DEFAULT, kind=None), "expert.kind", "missing"),
    ("unknown kind", spec_with(DEFAULT, kind="transformer"), "expert.kind", "qnn"),
    ("unknown key", spec_with(DEFAULT, observables=[["Z", 0]]), "expert.observables", "unknown key"),
    ("cosine bad d", {"kind": "cosine", "d": 0}, "expert.d", "positive integer"),
    ("cosine missing d", {"kind": "cosine"}, "expert.d", "missing"),
]


@pytest.mark.parametrize("spec,key,words", [c[1:] for c in QNN_ERRORS], ids=[c[0] for c in QNN_ERRORS])
def test_validation_errors_name_the_key(spec, key, words):
    with pytest.raises(CaseError) as info:
        build_expert(spec)
    assert info.value.key == key
    msg = str(info.value)
    assert msg.startswith(key + ": ")
    assert words in msg


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(CaseError) as info:
        build_expert({"kind": "mlp"})
    assert all(k in str(info.value) for k in ("qnn", "cosine", "python"))


@pytest.mark.parametrize(
    "function,words",
    [
        ("mfpde_no_such_module_xyz:phi", "cannot import module"),
        ("mfpde_test_user_bad:missing", "has no attribute"),
        ("mfpde_test_user_bad:NOT_CALLABLE", "not callable"),
        ("no_colon_here", "module:function"),
    ],
)
def test_python_expert_load_errors(tmp_path, function, words):
    _write_module(tmp_path, "mfpde_test_user_bad", PHI_MODULE)
    with pytest.raises(CaseError) as info:
        build_expert({"kind": "python", "function": function, "d": 2}, base_dir=tmp_path)
    assert info.value.key == "expert.function" and words in str(info.value)


@pytest.mark.parametrize(
    "name,words", [("bad_values", "values of shape"), ("bad_grads", "grads of shape"), ("not_a_pair", "must return")]
)
def test_python_expert_output_shape_checked(tmp_path, name, words):
    _write_module(tmp_path, "mfpde_test_user_shapes", PHI_MODULE)
    e = build_expert({"kind": "python", "function": f"mfpde_test_user_shapes:{name}", "d": 2}, base_dir=tmp_path)
    with pytest.raises(CaseError) as info:
        e.evaluate(np.zeros((3, 1)), np.zeros((4, 2)))
    assert info.value.key == "expert.function" and words in str(info.value)


@pytest.mark.parametrize("spec,key", [
    ({"kind": "python", "function": "m:f"}, "expert.d"),
    ({"kind": "python", "d": 2}, "expert.function"),
    ({"kind": "python", "function": "numpy:cos", "d": -1}, "expert.d"),
    ({"kind": "python", "function": "numpy:cos", "d": 1, "max_frequency": [1, 2]}, "expert.max_frequency"),
])
def test_python_expert_spec_errors(spec, key):
    with pytest.raises(CaseError) as info:
        build_expert(spec)
    assert info.value.key == key


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        Expert().bind(np.zeros((1, 1)))
