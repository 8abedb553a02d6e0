"""Speed and accuracy of `mfpde limit` (issue 9 targets: d = 4 to 1e-6 in F within 120 s on one core;
d = 8 within 10 min with its error estimate).

    python benchmarks/bench_limit.py CASE.toml --points M1,M2,... [--ref-points MR] [--dt DT] [--ref-dt DTR]
                                     [--no-clt] [--json OUT]

For each M, times the whole `run_limit` (main rule, the coarse rule of the
error estimate, and the CLT covariance unless --no-clt; one process, one
BLAS thread) and reports max over saved times and data points of
|F_M - F_ref| against a reference run with MR points and step DTR (no
estimate, no CLT), beside the run's own error estimate.
"""

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

from mfpde.config.case import load_case  # noqa: E402
from mfpde.runs.limit import run_limit  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("case")
p.add_argument("--points", required=True, help="comma-separated rule sizes")
p.add_argument("--ref-points", type=int)
p.add_argument("--dt", type=float)
p.add_argument("--ref-dt", type=float)
p.add_argument("--clt-points", type=int)
p.add_argument("--no-clt", action="store_true")
p.add_argument("--json")
args = p.parse_args()

case = load_case(args.case)
if args.dt:
    case.limit.dt = args.dt
if args.clt_points:
    case.limit.clt_points = args.clt_points
comm = MPI.COMM_SELF
load = os.getloadavg()
ref = None
if args.ref_points:
    dt = case.limit.dt
    case.limit.dt = args.ref_dt or dt
    t0 = time.perf_counter()
    ref, _ = run_limit(case, args.ref_points, write=False, comm=comm, progress=False, estimate=False, clt=False)
    print(f"reference: {ref['rule']}, dt = {case.limit.dt:g} ({time.perf_counter() - t0:.1f} s)", flush=True)
    case.limit.dt = dt
rows = []
for M in [int(v) for v in args.points.split(",")]:
    t0 = time.perf_counter()
    obs, _ = run_limit(case, M, write=False, comm=comm, progress=False, clt=not args.no_clt)
    wall = time.perf_counter() - t0
    row = {"points": M, "rule": obs["rule"], "dt": case.limit.dt, "wall_s": wall,
           "error_estimate": float(obs["error_estimate"].max()), "clt": not args.no_clt}
    if ref is not None:
        row["error_vs_reference"] = float(np.abs(obs["F"] - ref["F"]).max())
    rows.append(row)
    print(json.dumps(row), flush=True)
out = {"case": case.name, "d": case.d, "K": len(case.data.y), "t_end": case.dynamics.t_end, "rows": rows,
       "reference": None if ref is None else {"rule": ref["rule"], "dt": args.ref_dt or case.limit.dt},
       "loadavg_before": load, "loadavg_after": os.getloadavg(), "host_note": "shared 2-core machine, contended"}
if args.json:
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)
