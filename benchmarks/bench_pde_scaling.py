"""Strong scaling of mfpde's PDE solver: 2 MPI ranks against 1 on one mesh.

Default case (d = 2 QNN), DG1 on a 256 x 256 torus mesh (case's cell kind),
``build_pde_solver`` (setup: mesh, partition, forms, expert evaluation), then a
few warm-up steps, then a fixed number of CFL steps (default 30) timed between
barriers.  Setup and per-step times are reported separately; the speed-up is
that of the time stepping (and, for information, of the setup).  The two runs
must agree in the observables (max |F_1 - F_2| is reported).  The driver starts
each run with ``.venv/bin/mpirun -n RANKS`` and OMP_NUM_THREADS=1, optionally
waits until the 1-minute load average is below --max-load, prints a table and
writes benchmarks/results/pde_scaling.json (--out).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pde_scaling.py [--quick] [--n 256] [--steps 30] [--max-load 0.5]

One measurement by hand (what the driver runs):

    OMP_NUM_THREADS=1 .venv/bin/mpirun -n 2 .venv/bin/python benchmarks/bench_pde_scaling.py --worker --json /tmp/r2.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="a short run (n = 64, 5 steps)")
    ap.add_argument("--n", type=int, default=None, help="cells per direction (default 256; quick 64)")
    ap.add_argument("--degree", type=int, default=1)
    ap.add_argument("--cell", default=None, help="simplex or box (default: the case's)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 30; quick 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps after setup")
    ap.add_argument("--ranks", default="1,2", help="rank counts, comma separated (default 1,2)")
    ap.add_argument("--mpirun", default=None, help="mpirun (default: the one next to this Python, else PATH)")
    ap.add_argument("--max-load", type=float, default=None,
                    help="before each run wait until the 1-minute load average is below this")
    ap.add_argument("--max-wait", type=float, default=900.0, help="longest wait for --max-load, seconds")
    ap.add_argument("--worker", action="store_true", help="one measurement (run under mpirun)")
    ap.add_argument("--json", default=None, help="worker: where rank 0 writes its result")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "pde_scaling.json"))
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = 64 if args.quick else 256
    if args.steps is None:
        args.steps = 5 if args.quick else 30
    return args


# ------------------------------------------------------------------ one measurement


def worker(args) -> None:
    import dataclasses

    import numpy as np
    from mpi4py import MPI

    from mfpde.case import default_case
    from mfpde.runs import build_pde_solver

    comm = MPI.COMM_WORLD
    load = os.getloadavg()
    case = default_case()
    case.pde = dataclasses.replace(case.pde, n=args.n, degree=args.degree, cell=args.cell or case.pde.cell, mesh=None)

    def wall(t0):
        return comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)

    comm.Barrier()
    t0 = time.perf_counter()
    solver = build_pde_solver(case, comm)
    comm.Barrier()
    setup = wall(t0)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        solver.step()
    comm.Barrier()
    warm = wall(t0)

    per_step = []
    comm.Barrier()
    t_all = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        solver.step()
        per_step.append(time.perf_counter() - t0)
    comm.Barrier()
    stepping = wall(t_all)
    per_step = np.max(np.array(comm.allgather(per_step)), axis=0)  # slowest rank per step

    obs = solver.observables()
    cells = comm.gather(solver.n_cells, root=0)
    if comm.rank == 0:
        result = {
            "ranks": comm.size, "n": args.n, "degree": args.degree, "cell": case.pde.cell,
            "cells": solver.n_cells_global, "dofs": solver.num_dofs, "cells_per_rank": cells,
            "setup_s": setup, "warmup_steps": args.warmup, "warmup_s": warm,
            "steps": args.steps, "stepping_s": stepping, "per_step_s": per_step.tolist(),
            "per_step_mean_s": float(per_step.mean()), "per_step_median_s": float(np.median(per_step)),
            "rejected_steps": solver.rejected_steps, "t": solver.t, "F": obs["F"].tolist(),
            "mass": obs["mass"], "min_rho": obs["min_rho"], "load_average_start": list(load),
            "load_average_end": list(os.getloadavg()),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        Path(args.json).write_text(json.dumps(result, indent=1))


# ------------------------------------------------------------------ driver


def wait_for_load(limit: float | None, max_wait: float) -> float:
    t0 = time.time()
    while True:
        load = os.getloadavg()[0]
        if limit is None or load < limit:
            return load
        if time.time() - t0 > max_wait:
            print(f"  load {load:.2f} still above {limit} after {max_wait:.0f} s; measuring anyway", flush=True)
            return load
        time.sleep(10)


def find_mpirun(given: str | None) -> str:
    if given:
        return given
    here = Path(sys.executable).parent / "mpirun"
    return str(here) if here.exists() else (shutil.which("mpirun") or "mpirun")


def driver(args) -> dict:
    import numpy as np

    mpirun = find_mpirun(args.mpirun)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ranks = [int(r) for r in args.ranks.split(",") if r.strip()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="mfpde-scaling-") as tmp:
        for k in ranks:
            load = wait_for_load(args.max_load, args.max_wait)
            out = Path(tmp) / f"r{k}.json"
            cmd = [mpirun, "-n", str(k), sys.executable, str(Path(__file__).resolve()), "--worker", "--json", str(out),
                   "--n", str(args.n), "--degree", str(args.degree), "--steps", str(args.steps),
                   "--warmup", str(args.warmup)] + (["--cell", args.cell] if args.cell else [])
            print(f"ranks={k} (load {load:.2f}): {' '.join(cmd)}", flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True)
            r = json.loads(out.read_text())
            r["wall_s"] = time.perf_counter() - t0
            runs.append(r)
            print(f"  setup {r['setup_s']:.2f} s, {r['steps']} steps {r['stepping_s']:.2f} s "
                  f"({r['per_step_mean_s'] * 1e3:.1f} ms/step, median {r['per_step_median_s'] * 1e3:.1f}), "
                  f"cells per rank {r['cells_per_rank']}", flush=True)

    base = runs[0]
    lines = ["", f"DG{base['degree']} {base['cell']} n={base['n']} ({base['cells']} cells, {base['dofs']} dofs), "
                 f"{base['steps']} timed steps after {base['warmup_steps']} warm-up steps",
             f"{'ranks':>5} {'setup s':>8} {'step s':>8} {'ms/step':>8} {'speed-up step':>13} {'speed-up setup':>14} "
             f"{'eff.':>5} {'max|dF|':>9} {'load':>5}"]
    for r in runs:
        r["speedup_stepping"] = base["stepping_s"] / r["stepping_s"]
        r["speedup_setup"] = base["setup_s"] / r["setup_s"]
        r["efficiency_stepping"] = r["speedup_stepping"] * base["ranks"] / r["ranks"]
        r["max_abs_dF_vs_base"] = float(np.max(np.abs(np.array(r["F"]) - np.array(base["F"]))))
        lines.append(f"{r['ranks']:5d} {r['setup_s']:8.2f} {r['stepping_s']:8.2f} {r['per_step_mean_s'] * 1e3:8.1f} "
                     f"{r['speedup_stepping']:13.2f} {r['speedup_setup']:14.2f} {r['efficiency_stepping']:5.2f} "
                     f"{r['max_abs_dF_vs_base']:9.1e} {r['load_average_start'][0]:5.2f}")
    top = runs[-1]
    target = 1.7 if top["ranks"] == 2 and base["ranks"] == 1 else None
    if target is not None:
        lines.append(f"target: speed-up of the time stepping on 2 ranks >= {target}: {top['speedup_stepping']:.2f} -> "
                     f"{'PASS' if top['speedup_stepping'] >= target else 'FAIL'}")
    print("\n".join(lines))
    result = {"case": "default", "runs": runs, "target_speedup": target,
              "speedup_stepping": top["speedup_stepping"], "speedup_setup": top["speedup_setup"],
              "quick": args.quick, "mpirun": mpirun, "machine": platform.machine(), "cpus": os.cpu_count()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        if not args.json:
            raise SystemExit("--worker needs --json PATH")
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
