"""Under mpirun -n P (P = 3 or 4, oversubscribed is fine): PDE, particles and a study equal one rank.

The 1-rank reference runs on COMM_SELF of rank 0 in the same job.  The PDE mesh
is split by the partitioner wherever it likes: with P ranks and a periodic
mesh, several ranks own cells on a seam, so ghost layers there are exercised.
Prints one line per check; exits non-zero on a failure.
"""

import sys
import tempfile

import numpy as np
from mpi4py import MPI

from mfpde.config.case import InitSpec, default_case
from mfpde.runs.particles import run_particles
from mfpde.runs.pde import run_pde
from mfpde.runs.study import run_study

comm = MPI.COMM_WORLD
rank, size = comm.rank, comm.size
failures = []


def check(name, diff, tol=1e-10):
    ok = bool(diff <= tol)
    if rank == 0:
        print(f"{'ok  ' if ok else 'FAIL'} {name} on {size} ranks: max difference {diff:.2e} (tol {tol:.0e})", flush=True)
    if not ok:
        failures.append(name)


def small_case(tau=0.0, cell="simplex"):
    case = default_case()
    case.dynamics.t_end = 0.5
    case.dynamics.tau = tau
    case.pde.n = 12
    case.pde.cell = cell
    case.pde.save_every = 0.25
    case.particles.save_every = 0.25
    return case


def observable_diff(a, b):
    return max(np.abs(a[k] - b[k]).max() for k in ("t", "F", "risk", "moments"))


# 1. PDE: observables of P ranks against 1 rank, d = 2, transport and noise, both cell types, and a box
# start on the Lagrangian mesh (ghost vertices moved by every rank that holds them)
for tau, cell, motion in ((0.0, "simplex", "fixed"), (0.05, "box", "fixed"), (0.0, "box", "lagrangian")):
    case = small_case(tau, cell)
    if motion == "lagrangian":
        case.pde.mesh_motion = motion
        case.init = InitSpec("box", lower=[-0.6, -0.6], upper=[0.6, 0.6])
    par, _ = run_pde(case, write=False, comm=comm, progress=False)
    ser = run_pde(case, write=False, comm=MPI.COMM_SELF, progress=False)[0] if rank == 0 else None
    diff = comm.bcast(observable_diff(par, ser) if rank == 0 else None, root=0)
    check(f"pde tau={tau} {cell} {motion}", diff)
    mass = comm.bcast(float(np.abs(np.asarray(par["mass"]) - 1).max()), root=0)
    check(f"pde mass tau={tau} {cell} {motion}", mass, 1e-12)

# 2. particles: trajectories of P ranks against 1 rank (N not divisible by P)
case = small_case()
par, _ = run_particles(case, 37, 5, write=False, comm=comm, progress=False)
if rank == 0:
    ser, _ = run_particles(case, 37, 5, write=False, comm=MPI.COMM_SELF, progress=False)
    diff = max(observable_diff(par, ser), float(np.abs(np.angle(np.exp(1j * (par["theta"] - ser["theta"])))).max()))
else:
    diff = None
check("particles N=37", comm.bcast(diff, root=0), 1e-12)

# 3. a tiny study: the per-run metrics do not depend on how runs are spread over ranks
case = small_case()
with tempfile.TemporaryDirectory() as tmp:
    tmp = comm.bcast(tmp, root=0)
    res = run_study(case, [16, 32, 64], 2, out_dir=f"{tmp}/par", comm=comm, progress=False, plots=False)
    if rank == 0:
        import h5py
        ref = run_study(case, [16, 32, 64], 2, out_dir=f"{tmp}/ser", comm=MPI.COMM_SELF, progress=False, plots=False)
        with h5py.File(res["path"]) as fp, h5py.File(ref["path"]) as fs:
            names = list(fs["study/metrics"])
            diff = max(float(np.nanmax(np.abs(fp[f"study/metrics/{k}"][()] - fs[f"study/metrics/{k}"][()])))
                       for k in names)
    else:
        diff = None
    check("study metrics", comm.bcast(diff, root=0), 1e-10)

sys.exit(1 if failures else 0)
