"""Under mpirun -n 2: `run_limit` (points split over the ranks) equals a one-rank run.

Prints the maximum differences; exits non-zero if they exceed 1e-12.
"""

import sys

import numpy as np
from mpi4py import MPI

from mfpde.config.case import default_case
from mfpde.runs.limit import run_limit

comm = MPI.COMM_WORLD
assert comm.size == 2, "run with mpirun -n 2"
case = default_case()
case.dynamics.t_end = 0.5
case.limit.save_every = 0.25
case.limit.rule = "lattice"
par, _ = run_limit(case, 1001, write=False, comm=comm, progress=False)
worst = 0.0
if comm.rank == 0:
    ser, _ = run_limit(case, 1001, write=False, comm=MPI.COMM_SELF, progress=False)
    diffs = {k: float(np.max(np.abs(par[k] - ser[k]))) for k in ("F", "risk", "moments", "error_estimate", "clt_cov")}
    print("max diff", diffs)
    worst = max(diffs.values())
worst = comm.bcast(worst, root=0)
sys.exit(0 if worst <= 1e-12 else 1)
