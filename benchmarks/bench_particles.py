"""Particle trainer against the naive way: a loop of qnode calls with PennyLane autodiff.

On the default case (N = 128 experts, K = 16 data points, RK4, 5 steps of dt = 0.01)
both integrate d theta_i/dt = -lr N grad_{theta_i} L_N; the naive right-hand side is
qml.grad of the literal MoE loss L_N = 1/2 sum_k w_k ((1/N) sum_i qnode(x_k, theta_i) - y_k)^2.
Prints the timings and their ratio, checks the trajectories agree to 1e-10, and writes
benchmarks/results/particles.json.

    .venv/bin/python benchmarks/bench_particles.py [--steps 5] [--n 128]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

from mfpde.case import default_case
from mfpde.particles import ParticleSystem


def rk4(rhs, theta, dt, steps):
    for _ in range(steps):
        k1 = rhs(theta)
        k2 = rhs(theta + 0.5 * dt * k1)
        k3 = rhs(theta + 0.5 * dt * k2)
        k4 = rhs(theta + dt * k3)
        theta = np.mod(theta + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), 2 * np.pi)
    return theta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "particles.json"))
    args = ap.parse_args()

    case = default_case()
    x, y, w, lr, N = case.data.x, case.data.y, case.data.w, case.dynamics.lr, args.n
    theta0 = np.random.default_rng(0).uniform(0, 2 * np.pi, (N, case.d))

    # naive: literal loss, a Python loop of qnode calls, PennyLane autodiff
    qnode = case.expert.qnode()
    xs = [pnp.array(xk, requires_grad=False) for xk in x]

    def loss(th):
        total = 0.0
        for k, xk in enumerate(xs):
            f = sum(qnode(xk, th[i]) for i in range(N)) / N
            total = total + 0.5 * w[k] * (f - y[k]) ** 2
        return total

    grad = qml.grad(loss)

    def naive_rhs(theta):
        return -lr * N * np.asarray(grad(pnp.array(theta, requires_grad=True)))

    t = time.perf_counter()
    naive = rk4(naive_rhs, theta0, args.dt, args.steps)
    t_naive = time.perf_counter() - t

    # mfpde: the vectorized trainer (setup = the Fourier representation, done once per run)
    t = time.perf_counter()
    system = ParticleSystem(case.expert.bind(x), y, w, lr, 0.0, N)
    t_setup = time.perf_counter() - t
    fast_rhs = lambda th: system.rhs(th)[0]  # noqa: E731
    repeats, t_fast = 0, []
    while sum(t_fast) < 1.0 or repeats < 5:
        t = time.perf_counter()
        fast = rk4(fast_rhs, theta0, args.dt, args.steps)
        t_fast.append(time.perf_counter() - t)
        repeats += 1
    t_fast_min = min(t_fast)

    diff = float(np.max(np.abs(np.angle(np.exp(1j * (fast - naive))))))
    result = {
        "case": case.name, "N": N, "K": case.data.K, "steps": args.steps, "dt": args.dt, "integrator": "rk4",
        "naive_s": t_naive, "mfpde_s": t_fast_min, "mfpde_setup_s": t_setup,
        "ratio": t_naive / t_fast_min, "ratio_including_setup": t_naive / (t_fast_min + t_setup),
        "max_trajectory_difference": diff, "repeats": repeats,
    }
    print(f"naive (qnode loop + qml.grad): {t_naive:.2f} s")
    print(f"mfpde particles:               {t_fast_min * 1e3:.3f} ms (+ {t_setup * 1e3:.1f} ms setup, once per run)")
    print(f"speed-up: {result['ratio']:.0f}x ({result['ratio_including_setup']:.0f}x including setup)")
    print(f"max trajectory difference: {diff:.2e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    if diff > 1e-10:
        raise SystemExit("trajectories differ by more than 1e-10")


if __name__ == "__main__":
    main()
