"""Particle trainer against the strongest fair PennyLane formulations.

The workload is the right-hand side of the literal MoE gradient flow
(DESIGN section 1), d theta_i/dt = -lr N grad_{theta_i} L_N with
L_N = 1/2 sum_k w_k ((1/N) sum_i phi(x_k; theta_i) - y_k)^2, integrated with
`--steps` RK4 steps for N experts and K data points, on hardware-efficient
experts (data re-uploading RX(x) on every qubit, a layer of RY(theta) and one
of RZ(theta), a CNOT chain; repeated until d angles are used; observable
Z_0 Z_{n-1}) for every qubit count and d of the sweep.

- mfpde: `expert.bind(x)` (set-up: the exact path the cost model picks,
  Fourier or statevector) and `ParticleSystem.rhs`, timed together.
- peer `backprop`: one PennyLane call on default.qubit broadcast over all
  K x N (data, expert) pairs, gradient of the literal loss by backprop
  (autograd).
- peer `adjoint`: the same broadcast QNode on lightning.qubit with
  diff_method="adjoint".

The peers are timed on one right-hand side with fewer experts
(`--n-backprop`, `--n-adjoint`) and extrapolated linearly to N experts and
4 x steps right-hand sides (their cost is linear in both).  Every time is the
best of `--repeats`, for mfpde (set-up + stepping) and the peers alike.  At
every point the mfpde right-hand side equals each peer's to 1e-10 (max abs
difference recorded).  Ratios are to the best peer: set-up included (headline)
and stepping only.  `--target` also times d = 20, 4 qubits, N experts, 100 RK4
steps, set-up included.  Timings on a shared machine are contended; the JSON
records the load average.

    .venv/bin/python benchmarks/bench_particles.py [--quick] [--target]

writes benchmarks/results/bench_particles.json (date, machine, git revision).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

from mfpde.experts import QNNExpert
from mfpde.particles import ParticleSystem


def hardware_efficient(n: int, d: int) -> list:
    gates, i = [], 0
    while i < d:
        gates += [["RX", "x", [q]] for q in range(n)]
        for axis in ("RY", "RZ"):
            gates += [[axis, f"theta[{i + q}]", [q]] for q in range(min(n, d - i))]
            i += min(n, d - i)
        gates += [["CNOT", [q, q + 1]] for q in range(n - 1)]
    return gates


def observable(n: int) -> list:
    return [["Z", 0]] + ([["Z", n - 1]] if n > 1 else [])


def rk4(rhs, theta, dt, steps):
    for _ in range(steps):
        k1 = rhs(theta)
        k2 = rhs(theta + 0.5 * dt * k1)
        k3 = rhs(theta + 0.5 * dt * k2)
        k4 = rhs(theta + dt * k3)
        theta = np.mod(theta + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), 2 * np.pi)
    return theta


def peer_rhs(n, d, device, x, y, w, lr, N):
    """-lr N grad L_N from one broadcast QNode call over all K x N pairs (PennyLane autodiff)."""
    qnode = QNNExpert(hardware_efficient(n, d), n, observable(n), device=device, method="fourier"
                      if d <= 2 else "statevector").qnode()
    K = x.shape[0]
    xb = pnp.array(np.repeat(x, N, axis=0), requires_grad=False)  # pair (k, i) at k * N + i
    pick = np.tile(np.arange(N), K)

    def loss(th):
        phi = qnode(xb, th[pick]).reshape(K, N)
        return 0.5 * pnp.sum(w * (pnp.mean(phi, axis=1) - y) ** 2)

    grad = qml.grad(loss)
    return lambda theta: -lr * N * np.asarray(grad(pnp.array(theta, requires_grad=True)))


def best_of(k, fn):
    times, out = [], None
    for _ in range(k):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def mfpde_run(expert, x, y, w, lr, N, theta0, dt, steps):
    """(set-up s, stepping s, final theta) of one run."""
    t = time.perf_counter()
    system = ParticleSystem(expert.bind(x), y, w, lr, 0.0, N)
    setup = time.perf_counter() - t
    t = time.perf_counter()
    theta = rk4(lambda th: system.rhs(th)[0], theta0, dt, steps)
    return setup, time.perf_counter() - t, theta


def point(n, d, args, x, y, w):
    lr, N = 1.0, args.n
    expert = QNNExpert(hardware_efficient(n, d), n, observable(n))
    theta0 = np.random.default_rng(d).uniform(0, 2 * np.pi, (N, d))
    runs = [mfpde_run(expert, x, y, w, lr, N, theta0, args.dt, args.steps) for _ in range(args.repeats)]
    setup, stepping = min(r[0] for r in runs), min(r[1] for r in runs)
    total = min(r[0] + r[1] for r in runs)
    out = {"qubits": n, "d": d, "method": expert.method, "mfpde_setup_s": setup, "mfpde_stepping_s": stepping,
           "mfpde_total_s": total, "peers": {}}
    for name, device, n_peer in (("backprop", "default.qubit", args.n_backprop),
                                 ("adjoint", "lightning.qubit", args.n_adjoint)):
        th = theta0[:n_peer]
        rhs = peer_rhs(n, d, device, x, y, w, lr, n_peer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_rhs, ref = best_of(args.repeats, lambda: rhs(th))
        ours = ParticleSystem(expert.bind(x), y, w, lr, 0.0, n_peer).rhs(th)[0]
        out["peers"][name] = {
            "device": device, "n_measured": n_peer, "rhs_s": t_rhs,
            "extrapolated_s": t_rhs * (N / n_peer) * 4 * args.steps,
            "max_rhs_difference": float(np.abs(ours - ref).max()),
        }
    best = min(out["peers"], key=lambda k: out["peers"][k]["extrapolated_s"])
    t_best = out["peers"][best]["extrapolated_s"]
    out.update(best_peer=best, ratio_setup_included=t_best / total, ratio_stepping_only=t_best / stepping,
               max_rhs_difference=max(p["max_rhs_difference"] for p in out["peers"].values()))
    print(f"{n} qubit(s) d = {d:2d} [{expert.method:11s}] mfpde {total:8.3f} s (set-up {setup:.3f} s) | "
          + " | ".join(f"{k} {p['extrapolated_s']:9.2f} s" for k, p in out["peers"].items())
          + f" | x{out['ratio_setup_included']:8.1f} (stepping x{out['ratio_stepping_only']:.1f})"
          + f" | diff {out['max_rhs_difference']:.1e}", flush=True)
    return out


def target(args, x, y, w):
    """d = 20, 4 qubits, N experts, 100 RK4 steps, set-up included (one run)."""
    expert = QNNExpert(hardware_efficient(4, 20), 4, observable(4))
    theta0 = np.random.default_rng(20).uniform(0, 2 * np.pi, (args.n, 20))
    setup, stepping, _ = mfpde_run(expert, x, y, w, 1.0, args.n, theta0, args.dt, 100)
    print(f"target: d = 20, 4 qubits, N = {args.n}, 100 RK4 steps: {setup + stepping:.1f} s "
          f"(set-up {setup:.3f} s, {expert.method})", flush=True)
    return {"qubits": 4, "d": 20, "N": args.n, "steps": 100, "method": expert.method,
            "setup_s": setup, "total_s": setup + stepping, "goal_s": 60.0}


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "threads": os.environ.get("OMP_NUM_THREADS", "unset"), "load_average": list(os.getloadavg())}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sweep: 1-2 qubits, d = 2, 8, N = 512")
    ap.add_argument("--target", action="store_true", help="also time d = 20, 4 qubits, 100 RK4 steps")
    ap.add_argument("--n", type=int, default=4096, help="experts N for mfpde (and the extrapolation)")
    ap.add_argument("--k", type=int, default=16, help="data points K")
    ap.add_argument("--steps", type=int, default=5, help="RK4 steps per timed run")
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many, for mfpde and the peers")
    ap.add_argument("--n-backprop", type=int, default=256, help="experts the backprop peer is measured on")
    ap.add_argument("--n-adjoint", type=int, default=4, help="experts the adjoint peer is measured on")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_particles.json"))
    args = ap.parse_args()
    qubits, dims = ((1, 2), (2, 8)) if args.quick else ((1, 2, 3, 4), (2, 4, 8, 12, 16, 20))
    if args.quick:
        args.n, args.n_backprop = min(args.n, 512), min(args.n_backprop, 64)

    x = np.linspace(-3, 3, args.k)[:, None]
    y = 0.5 * np.sin(x[:, 0])
    w = np.full(args.k, 1.0 / args.k)
    started = time.perf_counter()
    points = [point(n, d, args, x, y, w) for n in qubits for d in dims]
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "git_rev": git_rev(),
        "note": ("shared machine: other jobs ran at the same time, so every time is contended; "
                 "peers measured on fewer experts and one right-hand side, extrapolated linearly"),
        "settings": {"N": args.n, "K": args.k, "steps": args.steps, "dt": args.dt, "integrator": "rk4",
                     "repeats": args.repeats, "n_backprop": args.n_backprop, "n_adjoint": args.n_adjoint,
                     "quick": args.quick},
        "points": points,
        "min_ratio_setup_included": min(p["ratio_setup_included"] for p in points),
        "max_rhs_difference": max(p["max_rhs_difference"] for p in points),
    }
    if args.target:
        result["target"] = target(args, x, y, w)
    result["wall_s"] = time.perf_counter() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"min ratio (set-up included) {result['min_ratio_setup_included']:.1f}, "
          f"max rhs difference {result['max_rhs_difference']:.1e}; wrote {args.out}")
    if result["max_rhs_difference"] > 1e-10:
        raise SystemExit("mfpde and PennyLane right-hand sides differ by more than 1e-10")


if __name__ == "__main__":
    main()
