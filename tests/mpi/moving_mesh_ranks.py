"""Run under mpirun -n 2: a Lagrangian mesh's vertices come back from the owned cells' vertices alone.

After 1 time unit of the box case, every rank rebuilds all its vertex positions (ghost vertices
included) from the vertices of the cells it owns, as a resumed run does, and must find the
positions it holds (to 1e-13).  Prints one line and exits non-zero on failure.
"""

import sys
import tomllib

import numpy as np
from mpi4py import MPI

from mfpde.config.case import case_from_dict, default_case_text
from mfpde.runs.pde import build_pde_solver

comm = MPI.COMM_WORLD
assert comm.size == 2, "run with mpirun -n 2"
table = tomllib.loads(default_case_text())
table["init"] = {"kind": "box", "lower": [-0.6, -0.6], "upper": [0.6, 0.6]}
table["pde"] = {"n": 10, "degree": 1, "cell": "box", "mesh_motion": "lagrangian"}
solver = build_pde_solver(case_from_dict(table), comm)
solver.advance(1.0)
mover = solver.mover
ghost_only = np.setdiff1d(np.arange(len(mover.P)), mover.c2v[: solver.cells.n_cells])
moved = comm.allreduce(float(np.abs(mover.P - mover.P0)[ghost_only].max(initial=0.0)), op=MPI.MAX)
rebuilt = mover.positions_from_owned(solver.cells.X)
diff = comm.allreduce(float(np.abs(rebuilt - mover.P).max()), op=MPI.MAX)
ok = diff < 1e-13 and moved > 0.05
if comm.rank == 0:
    print(f"{'ok  ' if ok else 'FAIL'} positions from the owned cells: max difference {diff:.1e} "
          f"(ghost-only vertices moved by up to {moved:.2f})", flush=True)
sys.exit(0 if ok else 1)
