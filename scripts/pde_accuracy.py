"""Accuracy and cost of the PDE solver on a case, for several discretizations (docs/pde.md tables).

    python scripts/pde_accuracy.py CASE.toml CELL:DEGREE:N:CFL [CELL:DEGREE:N:CFL ...]

The first spec is the reference; one JSON line per spec: F at t_end, its max
difference to the reference, set-up and solve seconds, steps, dofs, peak RSS.
"""

import json
import resource
import sys
import time

import numpy as np

from mfpde.config.case import load_case
from mfpde.runs.pde import build_pde_solver


def run(path: str, spec: str) -> dict:
    cell, degree, n, cfl = spec.split(":")
    case = load_case(path)
    case.pde.cell, case.pde.degree, case.pde.n, case.pde.cfl = cell, int(degree), int(n), float(cfl)
    t0 = time.perf_counter()
    s = build_pde_solver(case)
    t1 = time.perf_counter()
    s.advance(case.dynamics.t_end)
    t2 = time.perf_counter()
    o = s.observables()
    return {"spec": spec, "F": o["F"].tolist(), "setup_s": round(t1 - t0, 2), "solve_s": round(t2 - t1, 2),
            "steps": s.steps, "rejected": s.rejected_steps, "dofs": s.num_dofs, "min_rho": o["min_rho"],
            "mass_defect": o["mass"] - 1.0, "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv):
    path, specs = argv[0], argv[1:]
    ref = None
    for spec in specs:
        row = run(path, spec)
        ref = np.array(row["F"]) if ref is None else ref
        row["error_vs_first"] = float(np.abs(np.array(row["F"]) - ref).max())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
