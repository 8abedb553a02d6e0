"""Strong and weak scaling of mfpde's PDE solver over MPI ranks, with a per-rank profile.

Default case (d = 2 QNN), ``build_pde_solver`` (set-up: mesh, partition,
forms, expert evaluation), a few warm-up steps, then ``--steps`` CFL steps
timed between barriers (the slowest rank's time counts).

* strong scaling: the same ``n x n`` mesh on every rank count;
* weak scaling: ``n_P = round(n * P^(1/d))``, so the dofs per rank stay about
  those of the 1-rank run.

Every (mode, ranks) pair is run ``--repeat`` times, interleaved
(1, 2, 1, 2, ...), so slow phases of a shared machine hit both; the tables give
the median and the spread (min, max) of the time per step.  Per run and rank:
throughput ``dofs_per_rank * stages / s`` (stages = right-hand-side evaluations,
counted), peak RSS (``ru_maxrss``); efficiency ``T_1 / (P T_P)`` (strong) or
``T_1 / T_P`` (weak) from the medians.

``--profile``: one extra run per rank count under cProfile on every rank:
inclusive time of the solver's pieces (``step``, the transport ``residual``, DOLFINx
``assemble_vector`` and its coefficient packing ``_pack``, ghost
``scatter_forward``/``scatter_reverse``, the limiter's ``cell_minima``,
``_set_velocity``, ``outputs``, ``sum``/``vmax`` (they hold
the MPI allreduce calls, which cProfile cannot see, and so the wait for the
other rank), I/O ``gather_cellwise``: what a save does, once after the steps)
and the top functions by self time.
``--cache-sizes n1,n2,...``: 1-rank time per dof and stage at several mesh
sizes, which shows whether a smaller per-rank problem runs faster per dof
(cache effects: the cause of a superlinear speed-up).

Writes ``benchmarks/results/bench_pde_scaling.json`` (``--out``) with provenance.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pde_scaling.py [--quick] [--n 256] [--ranks 1,2]
        [--repeat 3] [--steps 20] [--modes strong,weak] [--profile] [--cache-sizes 32,64,128,256]

One measurement by hand (what the driver runs):

    OMP_NUM_THREADS=1 .venv/bin/mpirun -n 2 .venv/bin/python benchmarks/bench_pde_scaling.py --worker --json /tmp/r2.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _mpi import find_mpirun, run_worker, worker_or_driver  # noqa: E402  (benchmarks/ on the path above)

# the profile reports the inclusive (cumulative) time of the functions of these names (they may nest:
# residual contains the assembly) and the top functions by self time.  mpi4py's calls are Cython methods,
# invisible to cProfile: an allreduce (and the wait for the other rank) counts in its caller, the
# solver's sum (outputs, mass) and vmax
# function names of mfpde.pde (transport residual = assembly + scatters; limiter; velocity G c; outputs
# F = B^T U; the MPI reductions; the save path)
PROFILED = ("step", "residual", "assemble_vector", "_pack", "scatter_forward", "scatter_reverse", "cell_minima",
            "_set_velocity", "outputs", "sum", "vmax", "gather_cellwise")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small run (n = 64, 5 steps, 2 repeats, strong only)")
    ap.add_argument("--n", type=int, default=None, help="cells per direction on 1 rank (default 256; quick 64)")
    ap.add_argument("--degree", type=int, default=1)
    ap.add_argument("--cell", default=None, help="simplex or box (default: the case's)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 20; quick 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps after set-up")
    ap.add_argument("--ranks", default="1,2", help="rank counts, comma separated (default 1,2)")
    ap.add_argument("--modes", default=None, help="strong,weak (default both; quick strong)")
    ap.add_argument("--repeat", type=int, default=None, help="interleaved repeats (default 3; quick 2)")
    ap.add_argument("--profile", action="store_true", help="one cProfile run per rank count")
    ap.add_argument("--cache-sizes", default=None, help="1-rank per-dof time at these n (e.g. 32,64,128,256)")
    ap.add_argument("--mpirun", default=None, help="mpirun (default: the one next to this Python, else PATH)")
    ap.add_argument("--worker", action="store_true", help="one measurement (run under mpirun)")
    ap.add_argument("--json", default=None, help="worker: where rank 0 writes its result")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_pde_scaling.json"))
    args = ap.parse_args(argv)
    q = args.quick
    args.n = args.n or (64 if q else 256)
    args.steps = args.steps or (5 if q else 20)
    args.repeat = args.repeat or (2 if q else 3)
    args.modes = [m for m in (args.modes if args.modes is not None else ("strong" if q else "strong,weak")).split(",") if m]
    return args


# ------------------------------------------------------------------ one measurement (under mpirun)


def _profile(stats) -> dict:
    """Inclusive time per fragment of PROFILED and the 12 functions with the most self time."""
    inclusive = {k: 0.0 for k in PROFILED}
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        for k in PROFILED:
            if name == k or (k == "assemble_vector" and k in name):
                inclusive[k] += cumtime
        rows.append((tottime, f"{Path(filename).name}:{line}({name})", ncalls))
    rows.sort(reverse=True)
    return {"inclusive_s": inclusive, "total_s": sum(r[0] for r in rows),
            "top_self_s": [{"function": f, "self_s": t, "calls": c} for t, f, c in rows[:12]]}


def worker(args) -> None:
    import cProfile
    import dataclasses
    import pstats
    import resource

    import numpy as np
    from mpi4py import MPI

    from mfpde.config.case import default_case
    from mfpde.runs.pde import build_pde_solver

    comm = MPI.COMM_WORLD
    case = default_case()
    case.pde = dataclasses.replace(case.pde, n=args.n, degree=args.degree, cell=args.cell or case.pde.cell, mesh=None)

    def slowest(t0):
        return comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)

    comm.Barrier()
    t0 = time.perf_counter()
    solver = build_pde_solver(case, comm)
    comm.Barrier()
    setup = slowest(t0)

    # count transport residual evaluations (stages): every Runge-Kutta stage assembles one
    stages = {"count": 0}
    rhs = solver.transport.residual

    def counted(*a, **kw):
        stages["count"] += 1
        return rhs(*a, **kw)

    solver.transport.residual = counted

    for _ in range(args.warmup):
        solver.step()
    stages["count"] = 0
    prof = cProfile.Profile() if args.profile_run else None
    comm.Barrier()
    t_all = time.perf_counter()
    if prof:
        prof.enable()
    per_step = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        solver.step()
        per_step.append(time.perf_counter() - t0)
    comm.Barrier()
    stepping = slowest(t_all)
    t0 = time.perf_counter()
    solver.gather_cellwise()  # what a save does (I/O path), once
    io_s = time.perf_counter() - t0
    if prof:
        prof.disable()
    stage_count = stages["count"]
    obs = solver.observables()
    rank = {
        "rank": comm.rank, "cells": int(solver.cells.n_cells), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "stepping_s": float(sum(per_step)), "io_gather_s": io_s, "stages": int(stage_count),
        "profile": _profile(pstats.Stats(prof)) if prof else None,
    }
    ranks = comm.gather(rank, root=0)
    per_step = np.max(np.array(comm.allgather(per_step)), axis=0)
    if comm.rank == 0:
        dofs = int(solver.num_dofs)
        stage_count = ranks[0]["stages"]
        result = {
            "ranks": comm.size, "n": args.n, "degree": args.degree, "cell": case.pde.cell,
            "cells": int(solver.cells.n_cells_global), "dofs": dofs, "setup_s": setup, "steps": args.steps,
            "stages": stage_count, "stages_counted": True, "stepping_s": stepping,
            "per_step_median_s": float(np.median(per_step)), "per_step_s": per_step.tolist(),
            "throughput_per_rank": dofs / comm.size * stage_count / stepping,  # dofs x stages per second per rank
            "time_per_dof_stage_s": stepping * comm.size / (dofs * stage_count),
            "per_rank": ranks, "F": obs["F"].tolist(), "mass": obs["mass"], "min_rho": obs["min_rho"],
            "profiled": bool(prof), "load_average": list(os.getloadavg()),
        }
        Path(args.json).write_text(json.dumps(result, indent=1))


# ------------------------------------------------------------------ driver


def measure(args, mpirun, ranks: int, n: int, tmp: str, profile: bool = False) -> dict:
    worker_args = ["--n", str(n), "--degree", str(args.degree), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    worker_args += (["--cell", args.cell] if args.cell else []) + (["--profile-run"] if profile else [])
    t0 = time.perf_counter()
    r = run_worker(mpirun, ranks, Path(__file__).resolve(), Path(tmp) / f"r{ranks}-n{n}-{time.monotonic_ns()}.json",
                   worker_args)
    r["wall_s"] = time.perf_counter() - t0
    return r


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def driver(args) -> dict:
    import numpy as np
    from _provenance import provenance, write_result

    mpirun = find_mpirun(args.mpirun)
    ranks = [int(r) for r in args.ranks.split(",") if r.strip()]
    d = 2
    sizes = {("strong", P): args.n for P in ranks}
    sizes.update({("weak", P): int(round(args.n * P ** (1.0 / d))) for P in ranks})
    result = {"provenance": provenance(), "case": "default", "degree": args.degree, "cell": args.cell,
              "n": args.n, "steps": args.steps, "repeat": args.repeat, "quick": args.quick, "mpirun": mpirun,
              "throughput": "dofs per rank x stages per second (stages = right-hand-side evaluations)",
              "efficiency": "strong: T_1 / (P T_P); weak: T_1 / T_P (median time per step)", "modes": {}}
    with tempfile.TemporaryDirectory(prefix="mfpde-scaling-") as tmp:
        runs = {(m, P): [] for m in args.modes for P in ranks}
        for rep in range(args.repeat):  # interleaved: every (mode, P) once per round
            for m in args.modes:
                for P in ranks:
                    r = measure(args, mpirun, P, sizes[(m, P)], tmp)
                    runs[(m, P)].append(r)
                    print(f"round {rep + 1} {m:6} P={P} n={r['n']}: {r['per_step_median_s'] * 1e3:8.1f} ms/step, "
                          f"{r['throughput_per_rank'] / 1e6:6.2f} M dof-stages/s/rank, peak RSS per rank "
                          f"{[round(x['peak_rss'] / 2**20) for x in r['per_rank']]} MiB, load {r['load_average'][0]:.1f}",
                          flush=True)
        for m in args.modes:
            base = statistics.median(r["per_step_median_s"] for r in runs[(m, ranks[0])])
            table = []
            for P in ranks:
                rs = runs[(m, P)]
                t = summary([r["per_step_median_s"] for r in rs])
                eff = base / t["median"] * (ranks[0] / P if m == "strong" else 1.0)
                F0 = np.array(runs[(m, ranks[0])][0]["F"]) if m == "strong" else None
                table.append({
                    "ranks": P, "n": sizes[(m, P)], "dofs": rs[0]["dofs"], "per_step_s": t,
                    "speedup": base / t["median"] if m == "strong" else None, "efficiency": eff,
                    "throughput_per_rank": summary([r["throughput_per_rank"] for r in rs]),
                    "setup_s": summary([r["setup_s"] for r in rs]),
                    "peak_rss_per_rank": [statistics.median(r["per_rank"][k]["peak_rss"] for r in rs) for k in range(P)],
                    "rank0_over_rank1_peak_rss": (statistics.median(r["per_rank"][0]["peak_rss"] / r["per_rank"][1]["peak_rss"]
                                                                    for r in rs) if P > 1 else None),
                    "io_gather_s_per_rank": [statistics.median(r["per_rank"][k]["io_gather_s"] for r in rs) for k in range(P)],
                    "max_abs_dF_vs_1_rank": (float(max(np.abs(np.array(r["F"]) - F0).max() for r in rs))
                                             if F0 is not None else None),
                    "stages_per_step": rs[0]["stages"] / rs[0]["steps"], "stages_counted": rs[0]["stages_counted"],
                    "load_average": [r["load_average"][0] for r in rs],
                })
            result["modes"][m] = table
        if args.profile:
            result["profile"] = {}
            for P in ranks:
                r = measure(args, mpirun, P, args.n, tmp, profile=True)
                result["profile"][str(P)] = [x["profile"] for x in r["per_rank"]]
        if args.cache_sizes:
            rows = []
            for n in [int(v) for v in args.cache_sizes.split(",") if v.strip()]:
                rs = [measure(args, mpirun, 1, n, tmp) for _ in range(args.repeat)]
                t = [r["time_per_dof_stage_s"] for r in rs]
                rows.append({"n": n, "dofs": rs[0]["dofs"], "time_per_dof_stage_s": summary(t),
                             "peak_rss": rs[0]["per_rank"][0]["peak_rss"]})
                print(f"cache: n={n}: {statistics.median(t) * 1e9:.1f} ns per dof and stage", flush=True)
            result["cache"] = rows

    lines = [""]
    for m, table in result["modes"].items():
        lines += [f"{m} scaling, DG{args.degree} (median of {args.repeat} interleaved runs; spread min-max):",
                  f"{'P':>3} {'n':>5} {'dofs':>9} {'ms/step':>9} {'spread':>17} {'eff.':>6} {'Mdof-st/s/rank':>15} "
                  f"{'peak MiB/rank':>20}"]
        for row in table:
            t = row["per_step_s"]
            lines.append(f"{row['ranks']:3d} {row['n']:5d} {row['dofs']:9d} {t['median'] * 1e3:9.1f} "
                         f"{t['min'] * 1e3:8.1f}-{t['max'] * 1e3:<8.1f} {row['efficiency']:6.2f} "
                         f"{row['throughput_per_rank']['median'] / 1e6:15.2f} "
                         f"{str([round(x / 2**20) for x in row['peak_rss_per_rank']]):>20}")
    for P, profs in result.get("profile", {}).items():
        for k, p in enumerate(profs):
            inc = p["inclusive_s"]
            lines.append(f"profile P={P} rank {k} (inclusive s of {p['total_s']:.2f} s): "
                         + ", ".join(f"{c} {v:.2f}" for c, v in inc.items() if v > 0))
    print("\n".join(lines))
    write_result(result, args.out)
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    profile_run = "--profile-run" in argv
    args = parse_args([a for a in argv if a != "--profile-run"])
    args.profile_run = profile_run
    worker_or_driver(args, worker, driver)


if __name__ == "__main__":
    main()
