"""Under mpirun -n 2: the particle trajectories equal a one-rank run (COMM_SELF) for the same seed.

Prints the maximum differences; exits non-zero if they exceed 1e-12.
"""

import sys

import numpy as np
from mpi4py import MPI

from mfpde.config.case import default_case
from mfpde.runs.particles import run_particles

comm = MPI.COMM_WORLD
assert comm.size == 2, "run with mpirun -n 2"
worst = 0.0
for tau in (0.0, 0.05):
    case = default_case()
    case.dynamics.t_end = 1.0
    case.dynamics.tau = tau
    case.particles.save_every = 0.25
    par, _ = run_particles(case, 37, 3, write=False, comm=comm, progress=False)
    if comm.rank == 0:
        ser, _ = run_particles(case, 37, 3, write=False, comm=MPI.COMM_SELF, progress=False)
        d_theta = np.max(np.abs(np.angle(np.exp(1j * (par["theta"] - ser["theta"])))))
        d_F = np.max(np.abs(par["F"] - ser["F"]))
        d_m = np.max(np.abs(par["moments"] - ser["moments"]))
        print(f"tau={tau}: max |theta diff| = {d_theta:.3e}, max |F diff| = {d_F:.3e}, moments {d_m:.3e}")
        worst = max(worst, d_theta, d_F, d_m)
worst = comm.bcast(worst, root=0)
sys.exit(0 if worst <= 1e-12 else 1)
