"""Run under mpirun -n 2: torus meshes and the PDE on 2 ranks against 1 rank (COMM_SELF on rank 0).

Prints one line per check and exits non-zero on failure.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for _pde_common

import numpy as np

import dolfinx_solver  # noqa: F401
from mpi4py import MPI

from _checks import Checks

from _pde_common import cos_problem, smooth_rho0
from mfpde.pde import MeanFieldSolver
from mfpde.pde.torus import torus_mesh

comm = MPI.COMM_WORLD
rank = comm.rank
assert comm.size == 2, "run with mpirun -n 2"
check = Checks(comm)


# 1. meshes: no exterior facets, volume (2 pi)^d, both ranks own cells
for d, n in ((1, 8), (2, 6), (3, 4)):
    for cell in ("simplex", "box"):
        m = torus_mesh(comm, d, n, cell)
        ext = m.exterior_facet_count()
        vol = m.volume()
        own = comm.allgather(m.mesh.topology.index_map(d).size_local)
        check(f"mesh d={d} {cell}", ext == 0 and abs(vol / (2 * np.pi) ** d - 1) < 1e-12 and min(own) > 0,
              f"exterior={ext} volume/(2pi)^d-1={vol / (2 * np.pi) ** d - 1:.1e} cells/rank={own}")


def run(c, d, n, cell, steps, tau=0.0, degree=1):
    expert_at, y, w = cos_problem(d)
    s = MeanFieldSolver(torus_mesh(c, d, n, cell), expert_at, y, w, smooth_rho0, lr=2.0, tau=tau, degree=degree)
    mass = []
    for _ in range(steps):
        s.step()
        mass.append(s.observables()["mass"])
    return s, s.observables(), np.array(mass)


# 2. parallel == serial in the observables, d = 1, 2, 3, degrees up to 6, tau > 0 (IMEX)
for d, n, cell, tau, degree in ((1, 32, "simplex", 0.0, 1), (2, 12, "simplex", 0.0, 1), (2, 8, "box", 0.05, 2),
                                (3, 5, "simplex", 0.0, 1), (2, 6, "box", 0.0, 6), (2, 6, "simplex", 0.05, 4),
                                (3, 3, "box", 0.0, 4)):
    par, op, mass = run(comm, d, n, cell, 4, tau, degree)
    cw_par = par.gather_cellwise()
    if rank == 0:
        ser, os_, _ = run(MPI.COMM_SELF, d, n, cell, 4, tau, degree)
        cw_ser = ser.gather_cellwise()
        diff = max(np.abs(op["F"] - os_["F"]).max(), abs(op["risk"] - os_["risk"]),
                   np.abs(op["moments"] - os_["moments"]).max(), abs(op["t"] - os_["t"]))
        fdiff = np.abs(cw_par["values"] - cw_ser["values"]).max()
        vdiff = np.abs(cw_par["vertices"] - cw_ser["vertices"]).max()
    else:
        diff = fdiff = vdiff = None
    diff, fdiff, vdiff = comm.bcast((diff, fdiff, vdiff), root=0)
    tag = f"d={d} n={n} {cell} tau={tau} p={degree}"
    check(f"ranks agree {tag}", diff < 1e-10 and fdiff < 1e-10 and vdiff == 0.0,
          f"observables {diff:.1e} field {fdiff:.1e} vertices {vdiff:.1e}")
    check(f"mass {tag}", np.abs(mass - 1).max() < 1e-12, f"drift {np.abs(mass - 1).max():.1e} min_rho {op['min_rho']:.2e}")

    # 3. restart on 2 ranks from a cellwise state gathered on 1 rank: continues identically
    if rank == 0:
        ser.step()
        ref = ser.observables()
        vals, t = cw_ser["values"], cw_ser["t"]
    else:
        ref, vals, t = None, None, None
    ref = comm.bcast(ref, root=0)
    par.set_cellwise(vals, t)
    par.step()
    o = par.observables()
    rdiff = max(np.abs(o["F"] - ref["F"]).max(), abs(o["t"] - ref["t"]))
    check(f"restart 1 -> 2 ranks {tag}", rdiff < 1e-10, f"{rdiff:.1e}")

check.exit()
