"""Under mpirun -n 2: ntk particles equal a one-rank run (COMM_SELF); regimes runs round-robin.

Argument: an output directory; the regimes file is written to DIR/ranks.
Exits non-zero if the particle trajectories differ by more than 1e-12.
"""

import sys
import tomllib
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.case import case_from_dict, default_case_text
from mfpde.runs.regimes import run_regimes
from mfpde.runs.particles import run_particles

comm = MPI.COMM_WORLD
assert comm.size == 2, "run with mpirun -n 2"
table = tomllib.loads(default_case_text())
table["dynamics"].update(t_end=0.5, scaling="ntk")
table["pde"].update(n=8, save_every=0.25)
table["particles"].update(dt=0.05, save_every=0.25)
case = case_from_dict(table)
par, _ = run_particles(case, 37, 3, write=False, comm=comm, progress=False)
worst = 0.0
if comm.rank == 0:
    ser, _ = run_particles(case, 37, 3, write=False, comm=MPI.COMM_SELF, progress=False)
    d_theta = np.max(np.abs(np.angle(np.exp(1j * (par["theta"] - ser["theta"])))))
    d_F = np.max(np.abs(par["F"] - ser["F"]))
    print(f"ntk: max |theta diff| = {d_theta:.3e}, max |F diff| = {d_F:.3e}")
    worst = max(d_theta, d_F)
worst = comm.bcast(worst, root=0)

table["dynamics"].pop("scaling")
run_regimes(case_from_dict(table), [8, 16], 2, out_dir=Path(sys.argv[1]) / "ranks", comm=comm, progress=False,
            plots=False)
sys.exit(0 if worst <= 1e-12 else 1)
