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
best of `--repeats`, for mfpde (set-up + stepping) and the peers alike, taken
twice: CPU time of the process (single-threaded: the one-core time, the
headline, since other jobs on a shared machine do not inflate it) and wall
time.  At
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

from mfpde.experts import QNNExpert, hardware_efficient
from mfpde.particles.system import ParticleSystem




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


class Clock:
    """Wall and CPU seconds of this process (one thread: the CPU time is the one-core time,
    which other jobs on a shared machine do not inflate)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def best_of(k, fn):
    """(best wall s, best CPU s, last output) over k calls."""
    walls, cpus, out = [], [], None
    for _ in range(k):
        with Clock() as c:
            out = fn()
        walls.append(c.wall)
        cpus.append(c.cpu)
    return min(walls), min(cpus), out


def mfpde_run(expert, x, y, w, lr, N, theta0, dt, steps):
    """(set-up Clock, stepping Clock, final theta) of one run."""
    with Clock() as setup:
        system = ParticleSystem(expert.bind(x), y, w, lr, 0.0, N)
    with Clock() as stepping:
        theta = rk4(lambda th: system.rhs(th)[0], theta0, dt, steps)
    return setup, stepping, theta


def point(n, d, args, x, y, w):
    lr, N = 1.0, args.n
    expert = QNNExpert(hardware_efficient(n, d), n, observable(n))
    theta0 = np.random.default_rng(d).uniform(0, 2 * np.pi, (N, d))
    runs = [mfpde_run(expert, x, y, w, lr, N, theta0, args.dt, args.steps) for _ in range(args.repeats)]
    out = {"qubits": n, "d": d, "method": expert.method, "peers": {}}
    for clock in ("wall", "cpu"):
        out[f"mfpde_setup_{clock}_s"] = min(getattr(r[0], clock) for r in runs)
        out[f"mfpde_stepping_{clock}_s"] = min(getattr(r[1], clock) for r in runs)
        out[f"mfpde_total_{clock}_s"] = min(getattr(r[0], clock) + getattr(r[1], clock) for r in runs)
    for name, device, n_peer in (("backprop", "default.qubit", args.n_backprop),
                                 ("adjoint", "lightning.qubit", args.n_adjoint)):
        th = theta0[:n_peer]
        rhs = peer_rhs(n, d, device, x, y, w, lr, n_peer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wall, cpu, ref = best_of(args.repeats, lambda: rhs(th))
        ours = ParticleSystem(expert.bind(x), y, w, lr, 0.0, n_peer).rhs(th)[0]
        scale = (N / n_peer) * 4 * args.steps
        out["peers"][name] = {
            "device": device, "n_measured": n_peer, "rhs_wall_s": wall, "rhs_cpu_s": cpu,
            "extrapolated_wall_s": wall * scale, "extrapolated_cpu_s": cpu * scale,
            "max_rhs_difference": float(np.abs(ours - ref).max()),
        }
    for clock in ("wall", "cpu"):
        best = min(out["peers"], key=lambda k: out["peers"][k][f"extrapolated_{clock}_s"])
        t_best = out["peers"][best][f"extrapolated_{clock}_s"]
        out[f"best_peer_{clock}"] = best
        out[f"ratio_setup_included_{clock}"] = t_best / out[f"mfpde_total_{clock}_s"]
        out[f"ratio_stepping_only_{clock}"] = t_best / out[f"mfpde_stepping_{clock}_s"]
    out["max_rhs_difference"] = max(p["max_rhs_difference"] for p in out["peers"].values())
    print(f"{n} qubit(s) d = {d:2d} [{expert.method:11s}] mfpde {out['mfpde_total_cpu_s']:8.3f} s "
          f"(set-up {out['mfpde_setup_cpu_s']:.3f} s) | "
          + " | ".join(f"{k} {p['extrapolated_cpu_s']:9.2f} s" for k, p in out["peers"].items())
          + f" | x{out['ratio_setup_included_cpu']:7.1f} (stepping x{out['ratio_stepping_only_cpu']:.1f};"
          + f" wall x{out['ratio_setup_included_wall']:.1f}) | diff {out['max_rhs_difference']:.1e}", flush=True)
    return out


def target(args, x, y, w):
    """d = 20, 4 qubits, N experts, 100 RK4 steps, set-up included (one run)."""
    expert = QNNExpert(hardware_efficient(4, 20), 4, observable(4))
    theta0 = np.random.default_rng(20).uniform(0, 2 * np.pi, (args.n, 20))
    setup, stepping, _ = mfpde_run(expert, x, y, w, 1.0, args.n, theta0, args.dt, 100)
    out = {"qubits": 4, "d": 20, "N": args.n, "steps": 100, "method": expert.method, "goal_s": 60.0,
           "total_cpu_s": setup.cpu + stepping.cpu, "total_wall_s": setup.wall + stepping.wall,
           "setup_cpu_s": setup.cpu}
    print(f"target: d = 20, 4 qubits, N = {args.n}, 100 RK4 steps: {out['total_cpu_s']:.1f} s CPU "
          f"({out['total_wall_s']:.1f} s wall; set-up {setup.cpu:.3f} s, {expert.method})", flush=True)
    return out


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
    ap.add_argument("--n-backprop", type=int, default=1024, help="experts the backprop peer is measured on")
    ap.add_argument("--n-adjoint", type=int, default=4, help="experts the adjoint peer is measured on")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_particles.json"))
    args = ap.parse_args()
    qubits, dims = ((1, 2), (2, 8)) if args.quick else ((1, 2, 3, 4), (2, 4, 8, 12, 16, 20))
    if args.quick:
        args.n = min(args.n, 512)
    args.n_backprop = min(args.n_backprop, args.n)

    x = np.linspace(-3, 3, args.k)[:, None]
    y = 0.5 * np.sin(x[:, 0])
    w = np.full(args.k, 1.0 / args.k)
    started, rev = time.perf_counter(), git_rev()
    points = [point(n, d, args, x, y, w) for n in qubits for d in dims]
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "git_rev": rev,
        "note": ("shared machine: other jobs ran at the same time, so every time is contended; "
                 "peers measured on fewer experts and one right-hand side, extrapolated linearly"),
        "settings": {"N": args.n, "K": args.k, "steps": args.steps, "dt": args.dt, "integrator": "rk4",
                     "repeats": args.repeats, "n_backprop": args.n_backprop, "n_adjoint": args.n_adjoint,
                     "quick": args.quick},
        "points": points,
        "min_ratio_setup_included_cpu": min(p["ratio_setup_included_cpu"] for p in points),
        "min_ratio_setup_included_wall": min(p["ratio_setup_included_wall"] for p in points),
        "max_rhs_difference": max(p["max_rhs_difference"] for p in points),
    }
    if args.target:
        result["target"] = target(args, x, y, w)
    result["wall_s"] = time.perf_counter() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"min ratio (set-up included) {result['min_ratio_setup_included_cpu']:.1f} CPU, "
          f"{result['min_ratio_setup_included_wall']:.1f} wall, "
          f"max rhs difference {result['max_rhs_difference']:.1e}; wrote {args.out}")
    if result["max_rhs_difference"] > 1e-10:
        raise SystemExit("mfpde and PennyLane right-hand sides differ by more than 1e-10")


if __name__ == "__main__":
    main()
