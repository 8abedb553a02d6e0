"""Check the CLT covariance of `mfpde limit` against an ensemble of particle runs.

    python scripts/clt_ensemble.py CASE.toml [--n 1024] [--seeds 64] [--t-end T] [--json OUT]

Trains the N-expert mixture from `--seeds` independent i.i.d. initial draws,
and sets N times the sample variance over seeds of f_N(x_k, t) against the
predicted variance /clt/cov[t, k, k] at every saved time and data point,
and the trace (sum over k) per saved time.  With S seeds and Gaussian
fluctuations the ratio of one (t, k) lies in the 95% chi-square band
[chi2(0.025, S-1), chi2(0.975, S-1)] / (S-1) (printed).  Uses the Python API.
"""

import argparse
import json
import time

import numpy as np
from mpi4py import MPI

from mfpde.config.case import default_case, load_case
from mfpde.report.clt import chi2_band, variance_ratio
from mfpde.runs.limit import run_limit
from mfpde.runs.particles import run_particles

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("case")
p.add_argument("--n", type=int, default=1024)
p.add_argument("--seeds", type=int, default=64)
p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
p.add_argument("--t-end", type=float)
p.add_argument("--points", type=int, help="limit rule size (default [limit] points)")
p.add_argument("--json", help="write the figures to this JSON file")
args = p.parse_args()

case = default_case() if args.case == "default" else load_case(args.case)
if args.t_end:
    case.dynamics.t_end = args.t_end
t0 = time.perf_counter()
ref, _ = run_limit(case, args.points, write=False, comm=MPI.COMM_SELF, progress=False)
t_limit = time.perf_counter() - t0
case.particles.save_every = case.limit.save_every
t0 = time.perf_counter()
F = np.array([run_particles(case, args.n, s, write=False, comm=MPI.COMM_SELF, progress=False)[0]["F"]
              for s in range(args.first_seed, args.first_seed + args.seeds)])
t_part = time.perf_counter() - t0
cov = ref["clt_cov"]
ratio = variance_ratio(F[None], [args.n], cov)[0]  # (T, K)
var = np.var(F, axis=0, ddof=1) * args.n
trace = var.sum(axis=1) / np.einsum("tkk->t", cov)
lo, hi = chi2_band(args.seeds)
print(f"{case.name}: d = {case.d}, K = {len(case.data.y)}, N = {args.n}, {args.seeds} seeds from {args.first_seed}, "
      f"limit {ref['rule']} ({t_limit:.1f} s), particles {t_part:.1f} s")
print(f"95% chi-square band of one ratio: [{lo:.3f}, {hi:.3f}]")
print(" t       trace ratio  median_k   min_k    max_k")
for i, t in enumerate(ref["t"]):
    print(f"{t:6.3f}  {trace[i]:10.3f}  {np.median(ratio[i]):8.3f}  {ratio[i].min():7.3f}  {ratio[i].max():7.3f}")
inside = float(np.mean((ratio >= lo) & (ratio <= hi)))
print(f"fraction of (t, k) ratios inside the band: {inside:.3f}; trace ratio range "
      f"[{trace.min():.3f}, {trace.max():.3f}]")
if args.json:
    with open(args.json, "w") as fh:
        json.dump({"case": case.name, "d": case.d, "N": args.n, "seeds": args.seeds, "first_seed": args.first_seed, "t": ref["t"].tolist(),
                   "trace_ratio": trace.tolist(), "ratio_min": ratio.min(axis=1).tolist(),
                   "ratio_max": ratio.max(axis=1).tolist(), "ratio_median": np.median(ratio, axis=1).tolist(),
                   "band95": [lo, hi], "fraction_inside": inside, "limit_rule": ref["rule"],
                   "time_limit_s": t_limit, "time_particles_s": t_part}, fh, indent=1)
