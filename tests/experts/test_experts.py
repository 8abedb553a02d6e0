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
from mfpde.experts import (CosineExpert, Expert, PythonExpert, QNNExpert, build_expert, data_dim_required,
                           hardware_efficient)

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


# --------------------------------------------------------------------------- #
# Both exact paths against PennyLane: random circuits, hand-written circuits
# --------------------------------------------------------------------------- #

FIXED_1Q = ["Hadamard", "PauliX", "PauliY", "PauliZ", "S", "T", "SX"]
ROTATIONS = ["RX", "RY", "RZ", "PhaseShift"]


def random_circuit(rng, n, d, m=2, extra=None):
    """A random gate list over the whole gate set: every theta[i] used once or twice,
    data rotations, constants, and two-qubit gates in both directions."""
    uses = list(range(d)) + list(rng.choice(d, size=d // 3, replace=False))
    rng.shuffle(uses)
    gates = []
    for i in uses:
        q = int(rng.integers(n))
        gates.append([str(rng.choice(ROTATIONS)), f"theta[{i}]", [q]])
        r = rng.random()
        if r < 0.3:
            gates.append([str(rng.choice(ROTATIONS)), f"x[{int(rng.integers(m))}]", [int(rng.integers(n))]])
        elif r < 0.45:
            gates.append([str(rng.choice(ROTATIONS)), float(rng.uniform(-3, 3)), [int(rng.integers(n))]])
        elif r < 0.6:
            gates.append([str(rng.choice(FIXED_1Q)), [int(rng.integers(n))]])
        if n > 1 and rng.random() < 0.5:
            a, b = rng.choice(n, size=2, replace=False)
            gates.append([str(rng.choice(["CNOT", "CZ", "SWAP"])), [int(a), int(b)]])
        if extra is not None and rng.random() < 0.4:
            gates.append(extra(rng))
    gates.append(["RX", "x[0]", [0]])  # every circuit reads x[0] and x[1]
    gates.append(["RY", "x[1]", [n - 1]])
    return gates


def random_observable(rng, n):
    wires = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)
    return [[str(rng.choice(["X", "Y", "Z"])), int(w)] for w in wires]


@pytest.mark.parametrize("n,d,seed", [(1, 3, 0), (2, 5, 1), (2, 8, 2), (3, 6, 3), (3, 12, 4), (4, 9, 5), (4, 20, 6)])
def test_random_circuits_both_paths_match_pennylane(n, d, seed):
    rng = np.random.default_rng(100 + seed)
    gates, obs = random_circuit(rng, n, d), random_observable(rng, n)
    x = rng.uniform(-2, 2, size=(2, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(2, d))
    sv = QNNExpert(gates, n, obs, method="statevector")
    ref_phi, ref_grad = autodiff_reference(sv, x, theta)
    assert np.ptp(ref_phi) > 1e-3 or np.abs(ref_phi).max() > 1e-3  # not a trivial function
    phi, grad = sv.evaluate(x, theta)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)
    if d <= 8:  # the Fourier table is small enough
        fo = QNNExpert(gates, n, obs, method="fourier")
        phi, grad = fo.evaluate(x, theta)
        np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)


def _kron(*ms):
    out = np.eye(1)
    for a in ms:
        out = np.kron(out, a)
    return out


I2, X2, Y2, Z2 = np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
P0, P1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])


def _rot(p, a):
    return np.cos(a / 2) * I2 - 1j * np.sin(a / 2) * p


def test_two_qubit_gates_against_explicit_matrices():
    """CNOT in both directions, CZ, a two-wire observable: numpy matrices written out
    by hand (wire 0 = left Kronecker factor), gradients by the exact parameter shift."""
    gates = [["RY", "theta[0]", [0]], ["RX", "x", [1]], ["CNOT", [1, 0]], ["RZ", "theta[1]", [0]],
             ["CZ", [0, 1]], ["RY", "theta[2]", [1]], ["CNOT", [0, 1]], ["RX", "theta[3]", [0]]]
    obs = [["X", 0], ["Z", 1]]
    cnot10 = _kron(I2, P0) + _kron(X2, P1)  # control wire 1, target wire 0
    cnot01 = _kron(P0, I2) + _kron(P1, X2)
    cz = np.diag([1, 1, 1, -1])

    def explicit(x, t):
        psi = np.zeros(4, complex)
        psi[0] = 1
        for u in (_kron(_rot(Y2, t[0]), I2), _kron(I2, _rot(X2, x)), cnot10, _kron(_rot(Z2, t[1]), I2), cz,
                  _kron(I2, _rot(Y2, t[2])), cnot01, _kron(_rot(X2, t[3]), I2)):
            psi = u @ psi
        return float(np.real(psi.conj() @ _kron(X2, Z2) @ psi))

    rng = np.random.default_rng(7)
    x = rng.uniform(-2, 2, size=(3, 1))
    theta = rng.uniform(0, 2 * np.pi, size=(4, 4))
    ref = np.array([[explicit(xk[0], t) for t in theta] for xk in x])
    shift = np.eye(4) * np.pi / 2
    ref_grad = np.stack([np.array([[(explicit(xk[0], t + s) - explicit(xk[0], t - s)) / 2 for t in theta] for xk in x])
                         for s in shift], axis=2)
    for method in ("fourier", "statevector"):
        phi, grad = QNNExpert(gates, 2, obs, method=method).evaluate(x, theta)
        np.testing.assert_allclose(phi, ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-12)
    # direction matters: the reversed CNOTs give another function
    swapped = [["CNOT", g[1][::-1]] if g[0] == "CNOT" else g for g in gates]
    other, _ = QNNExpert(swapped, 2, obs).evaluate(x, theta)
    assert np.abs(other - ref).max() > 0.1


def test_three_qubit_hand_written_pennylane_circuit():
    """A literal PennyLane circuit (not the expert's own QNode), three-wire observable."""
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def circuit(x, t):
        for q in range(3):
            qml.RX(x[q % 2], wires=q)
            qml.RY(t[q], wires=q)
        qml.CNOT(wires=[2, 0])
        qml.CZ(wires=[0, 1])
        qml.CNOT(wires=[1, 2])
        qml.RZ(t[3], wires=0)
        qml.PhaseShift(t[4], wires=2)
        qml.RX(x[0], wires=1)
        qml.RY(t[5], wires=1)
        return qml.expval(qml.PauliY(0) @ qml.PauliX(1) @ qml.PauliZ(2))

    gates = []
    for q in range(3):
        gates += [["RX", f"x[{q % 2}]", [q]], ["RY", f"theta[{q}]", [q]]]
    gates += [["CNOT", [2, 0]], ["CZ", [0, 1]], ["CNOT", [1, 2]], ["RZ", "theta[3]", [0]],
              ["PhaseShift", "theta[4]", [2]], ["RX", "x[0]", [1]], ["RY", "theta[5]", [1]]]
    obs = [["Y", 0], ["X", 1], ["Z", 2]]
    rng = np.random.default_rng(8)
    x = rng.uniform(-2, 2, size=(3, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(3, 6))
    jac = qml.jacobian(circuit, argnums=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        ref = np.array([[float(circuit(pnp.array(xk, requires_grad=False), pnp.array(t, requires_grad=True)))
                         for t in theta] for xk in x])
        ref_grad = np.array([[np.asarray(jac(pnp.array(xk, requires_grad=False), pnp.array(t, requires_grad=True)))
                              for t in theta] for xk in x])
    assert np.ptp(ref) > 0.1
    for method in ("fourier", "statevector"):
        phi, grad = QNNExpert(gates, 3, obs, method=method).evaluate(x, theta)
        np.testing.assert_allclose(phi, ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)


def test_fourier_values_are_the_call_s_phi():
    """``values`` (phi only, used by the PDE's observables) equals the first output of the call, also
    across blocks."""
    e = QNNExpert(random_circuit(np.random.default_rng(12), 2, 3), 2, [["Z", 0]], method="fourier")
    f = e.bind(np.random.default_rng(13).uniform(-2, 2, (6, 2)))
    theta = np.random.default_rng(14).uniform(0, 2 * np.pi, (500, 3))
    np.testing.assert_allclose(f.values(theta), f(theta)[0], rtol=0, atol=1e-15)  # (another order of sums)
    f._block_elems = 64  # several blocks
    np.testing.assert_allclose(f.values(theta), f(theta)[0], rtol=0, atol=1e-15)


def test_statevector_blocks_and_empty_batch():
    e = QNNExpert(random_circuit(np.random.default_rng(9), 3, 7), 3, [["Z", 0], ["X", 2]], method="statevector")
    x = np.random.default_rng(10).uniform(-2, 2, (5, 2))
    f = e.bind(x)
    theta = np.random.default_rng(11).uniform(0, 2 * np.pi, (300, 7))
    phi, grad = f(theta)
    f._block_bytes = 1  # one expert per block
    phi_b, grad_b = f(theta)
    np.testing.assert_allclose(phi_b, phi, atol=1e-14)
    np.testing.assert_allclose(grad_b, grad, atol=1e-14)
    np.testing.assert_allclose(f.values(theta), phi, atol=1e-14)
    p0, g0 = f(np.zeros((0, 7)))
    assert p0.shape == (5, 0) and g0.shape == (5, 0, 7)


# --------------------------------------------------------------------------- #
# Noise channels on a mixed-state device
# --------------------------------------------------------------------------- #

NOISY_GATES = [["RY", "theta[0]", [0]], ["RX", "x", [1]], ["DepolarizingChannel", 0.1, [0]], ["CNOT", [0, 1]],
               ["AmplitudeDamping", 0.2, [1]], ["RZ", "theta[1]", [1]], ["H", [1]], ["PhaseDamping", 0.3, [0]],
               ["RX", "theta[0]", [0]], ["BitFlip", 0.05, [1]], ["CZ", [1, 0]], ["PhaseFlip", 0.07, [0]],
               ["PhaseShift", "theta[2]", [1]], ["RY", "x", [0]], ["RX", "theta[3]", [0]]]


def test_noise_channels_both_paths_match_default_mixed():
    e = QNNExpert(NOISY_GATES, 2, [["X", 0], ["Y", 1]], device="default.mixed")
    assert e.method == "fourier" and e.max_frequency() == (2, 1, 1, 1)
    rng = np.random.default_rng(12)
    x = rng.uniform(-2, 2, size=(3, 1))
    theta = rng.uniform(0, 2 * np.pi, size=(3, 4))
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    assert np.ptp(ref_phi) > 0.05
    for method in ("fourier", "statevector"):
        phi, grad = QNNExpert(NOISY_GATES, 2, [["X", 0], ["Y", 1]], device="default.mixed", method=method).evaluate(
            x, theta)
        np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)
    # the noise is felt: the same circuit without channels differs
    clean = QNNExpert([g for g in NOISY_GATES if "Channel" not in g[0] and g[0] not in
                       ("AmplitudeDamping", "PhaseDamping", "BitFlip", "PhaseFlip")], 2, [["X", 0], ["Y", 1]])
    assert np.abs(clean.evaluate(x, theta)[0] - ref_phi).max() > 1e-2


def test_noisy_three_qubit_random_circuit_matches_default_mixed():
    chans = ["DepolarizingChannel", "AmplitudeDamping", "PhaseDamping", "BitFlip", "PhaseFlip"]
    rng = np.random.default_rng(13)
    gates = random_circuit(rng, 3, 6, extra=lambda r: [str(r.choice(chans)), float(r.uniform(0, 0.3)),
                                                      [int(r.integers(3))]])
    assert any(g[0] in chans for g in gates)
    e = QNNExpert(gates, 3, [["Z", 0], ["X", 2]], device="default.mixed", method="statevector")
    x = rng.uniform(-2, 2, size=(2, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(2, 6))
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    phi, grad = e.evaluate(x, theta)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- #
# Method choice and refusals
# --------------------------------------------------------------------------- #




def test_cost_model_choice():
    small = build_expert(DEFAULT)
    assert small.method == "fourier" and small.describe()["method"] == "fourier"
    large = QNNExpert(hardware_efficient(4, 20), 4, [["Z", 0], ["Z", 3]])
    desc = large.describe()
    assert desc["method"] == "statevector" and desc["method_requested"] == "auto"
    assert desc["cost"]["fourier_coefficients"] == 3**20
    assert desc["cost"]["statevector_flops_per_pair"] < desc["cost"]["fourier_flops_per_pair"]
    # forcing the other path is recorded and gives the same numbers
    forced = build_expert(spec_with(DEFAULT, method="statevector"))
    assert forced.method == "statevector" and forced.describe()["method_requested"] == "statevector"
    x, th = np.array([[0.3], [-1.0]]), np.array([[0.2, 1.4], [3.0, -2.0]])
    for a, b in zip(forced.evaluate(x, th), small.evaluate(x, th)):
        np.testing.assert_allclose(a, b, atol=1e-13)
    # d = 8 on one qubit with every theta used once: 3^8 coefficients, cheaper as a statevector
    one_q = QNNExpert([["RY" if i % 2 else "RX", f"theta[{i}]", [0]] for i in range(8)], 1, [["Z", 0]])
    assert one_q.method == "statevector"


def test_oversize_fourier_table_refused_before_sampling():
    with pytest.raises(CaseError) as info:
        QNNExpert(hardware_efficient(4, 20), 4, [["Z", 0]], method="fourier")
    msg = str(info.value)
    assert info.value.key == "expert.method" and "GiB" in msg and "3.49e+09" in msg and "\n" not in msg
    # a table that fits one data point but not the data set is refused at bind, before any circuit runs
    e = QNNExpert(hardware_efficient(2, 12), 2, [["Z", 0]], method="fourier")
    e._statevector = None  # sampling would fail loudly
    with pytest.raises(CaseError) as info:
        e.bind(np.zeros((200, 1)))
    assert info.value.key == "expert.method" and "200 data point" in str(info.value)


def test_auto_turns_to_statevector_when_the_table_outgrows_the_data(monkeypatch):
    from mfpde.experts import cost

    e = build_expert(DEFAULT)
    assert e.method == "fourier"
    x, th = np.linspace(-3, 3, 40)[:, None], np.array([[0.3, 1.9]])
    ref = e.evaluate(x, th)
    monkeypatch.setattr(cost, "FOURIER_TABLE_BYTES", 16 * 9 * 3 * 39)  # fits 39 data points, not 40
    again = build_expert(DEFAULT)
    assert again.method == "fourier"
    for a, b in zip(again.bind(x)(th), ref):
        np.testing.assert_allclose(a, b, atol=1e-13)
    assert again.describe()["method"] == "statevector"


NOISE_ERRORS = [
    ("unknown channel", spec_with(TWO_QUBIT, device="default.mixed", gates=[["RY", "theta[0]", [0]],
                                                                            ["DepolarisingChannel", 0.1, [0]]]),
     "expert.gates[1]", "unknown gate or channel"),
    ("channel on a pure-state device", spec_with(TWO_QUBIT, gates=[["RY", "theta[0]", [0]],
                                                                   ["AmplitudeDamping", 0.1, [1]]]),
     "expert.gates[1]", "mixed-state device"),
    ("probability above 1", spec_with(TWO_QUBIT, device="default.mixed",
                                      gates=[["RY", "theta[0]", [0]], ["BitFlip", 1.5, [1]]]),
     "expert.gates[1]", "[0, 1]"),
    ("channel with a theta", spec_with(TWO_QUBIT, device="default.mixed",
                                       gates=[["RY", "theta[0]", [0]], ["BitFlip", "theta[1]", [1]]]),
     "expert.gates[1]", "probability"),
    ("channel without p", spec_with(TWO_QUBIT, device="default.mixed", gates=[["RY", "theta[0]", [0]],
                                                                              ["PhaseFlip", [1]]]),
     "expert.gates[1]", "[name, p, wires]"),
    ("unknown method", spec_with(DEFAULT, method="tensor"), "expert.method", "statevector"),
]


@pytest.mark.parametrize("spec,key,words", [c[1:] for c in NOISE_ERRORS], ids=[c[0] for c in NOISE_ERRORS])
def test_channel_and_method_refusals(spec, key, words):
    with pytest.raises(CaseError) as info:
        build_expert(spec)
    assert info.value.key == key and words in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- #
# Python experts: whatever the user code does, one line naming it
# --------------------------------------------------------------------------- #

ROGUE_MODULE = '''
import sys
import numpy as np

def raises(x, theta):
    raise RuntimeError("boom\\nsecond line")

def divides(x, theta):
    return 1 / 0

def returns_none(x, theta):
    return None

def returns_text(x, theta):
    return "values", "grads"

def exits(x, theta):
    sys.exit(3)

def nan(x, theta):
    v = np.zeros((x.shape[0], theta.shape[0]))
    v[0, -1] = np.nan
    return v, np.zeros(v.shape + (theta.shape[1],))
'''


@pytest.mark.parametrize("name,words", [
    ("raises", "raised RuntimeError: boom"), ("divides", "raised ZeroDivisionError"),
    ("returns_none", "must return"), ("returns_text", "not real numbers"), ("exits", "sys.exit(3)"),
    ("nan", "non-finite"),
])
def test_python_expert_failures_are_one_line(tmp_path, name, words):
    _write_module(tmp_path, "mfpde_test_rogue", ROGUE_MODULE)
    e = build_expert({"kind": "python", "function": f"mfpde_test_rogue:{name}", "d": 2}, base_dir=tmp_path)
    with pytest.raises(CaseError) as info:
        e.evaluate(np.zeros((3, 1)), np.zeros((4, 2)))
    msg = str(info.value)
    assert info.value.key == "expert.function" and f"mfpde_test_rogue:{name}" in msg and words in msg
    assert "\n" not in msg


@pytest.mark.parametrize("body,words", [("import sys\nsys.exit(0)\n", "sys.exit(0)"),
                                        ("raise KeyError('k')\n", "KeyError")])
def test_python_module_failing_on_import_is_one_line(tmp_path, body, words):
    _write_module(tmp_path, "mfpde_test_exits", body)
    with pytest.raises(CaseError) as info:
        build_expert({"kind": "python", "function": "mfpde_test_exits:phi", "d": 1}, base_dir=tmp_path)
    assert info.value.key == "expert.function" and words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name,d,method", [("qnn-2q-6p-hea", 6, "statevector"), ("qnn-3q-12p-hea", 12, "statevector"),
                                           ("qnn-2q-4p-noisy-device", 4, "fourier")])
def test_example_cases_build_and_match_pennylane(name, d, method):
    from pathlib import Path

    from mfpde.config.case import load_case

    case = load_case(Path(__file__).resolve().parents[2] / "cases" / f"{name}.toml")
    e = case.expert
    assert e.d == d and e.method == method and 2 <= e.wires <= 3
    x = case.data.x[[0, -1]]
    theta = np.random.default_rng(14).uniform(0, 2 * np.pi, (2, d))
    ref_phi, ref_grad = autodiff_reference(e, x, theta)
    phi, grad = e.evaluate(x, theta)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)


def test_run_file_records_the_chosen_method(tmp_path):
    """A particle run on a d = 6 case writes the expert's description, with its method, into /provenance."""
    import h5py

    from mfpde.config.case import load_case
    from mfpde.runs.particles import run_particles

    from pathlib import Path

    case = load_case(Path(__file__).resolve().parents[2] / "cases" / "qnn-2q-6p-hea.toml")
    case.dynamics.t_end = 0.02
    _, path = run_particles(case, n=8, seed=0, out_dir=tmp_path, progress=False)
    with h5py.File(path, "r") as f:
        recorded = json.loads(f["provenance"]["expert"][()])
    assert recorded["method"] == "statevector" and recorded["d"] == 6
    assert recorded["cost"]["fourier_coefficients"] == 3**6
