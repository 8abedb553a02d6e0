"""Run under mpirun -n 2: graded torus meshes are exactly periodic on 2 ranks.

Checks per mesh: no exterior facets, volume (2 pi)^d, a periodic DG1 interpolant has no jump on any
interior facet (the seam included), and its integral equals the one-rank value.  Then a PDE run of a
box start on a graded mesh: the same observables on 2 ranks as on 1 (to 1e-10), mass to 1e-12,
min_rho >= 0.  Prints one line per check and exits non-zero on failure.
"""

import tomllib

import numpy as np

from mfpde.pde import fem  # noqa: F401, I001
import dolfinx
import dolfinx.fem
import ufl
from mpi4py import MPI

from _checks import Checks

from mfpde.config.case import case_from_dict, default_case_text
from mfpde.pde.grading import graded_coordinates
from mfpde.runs.pde import run_pde
from mfpde.pde.torus import torus_mesh

comm = MPI.COMM_WORLD
assert comm.size == 2, "run with mpirun -n 2"
check = Checks(comm)


def periodic_integrals(c, d, cell, coords):
    m = torus_mesh(c, d, 0, cell, coords)
    V = dolfinx.fem.functionspace(m.mesh, ("DG", 1))
    u = dolfinx.fem.Function(V)
    u.interpolate(lambda x: np.sin(x[0]) + np.cos(2 * x[1]) * np.sin(x[d - 1] - 0.3))
    total = dolfinx.fem.assemble_scalar(dolfinx.fem.form(u * ufl.dx))
    jump = dolfinx.fem.assemble_scalar(dolfinx.fem.form(ufl.jump(u) ** 2 * ufl.dS))
    return (m, c.allreduce(total, op=MPI.SUM), c.allreduce(jump, op=MPI.SUM))


for d, cell, n in [(2, "box", 12), (2, "simplex", 10), (3, "box", 6)]:
    coords = graded_coordinates(n, [(-0.75, 0.75), (2.0, 3.5), (5.9, 6.6)][:d], 4.0)
    m, total, jump = periodic_integrals(comm, d, cell, coords)
    name = f"{d}d-{cell}"
    check(f"{name} exterior facets", m.exterior_facet_count() == 0)
    vol = m.volume()
    check(f"{name} volume", abs(vol - (2 * np.pi) ** d) < 1e-12 * (2 * np.pi) ** d, f"{vol!r}")
    check(f"{name} no jump of a periodic DG1 field", jump < 1e-24, f"{jump:.1e}")
    ref = periodic_integrals(MPI.COMM_SELF, d, cell, coords)[1] if comm.rank == 0 else None
    ref = comm.bcast(ref, root=0)
    check(f"{name} integral 2 ranks vs 1", abs(total - ref) < 1e-12, f"{abs(total - ref):.1e}")

table = tomllib.loads(default_case_text())
table["init"] = {"kind": "box", "lower": [-0.6, -0.5], "upper": [0.6, 0.7]}
table["dynamics"]["t_end"] = 0.5
table["pde"] = {"n": 12, "grading": 3.0, "cell": "box", "save_every": 0.25}
case = case_from_dict(table)
two, _ = run_pde(case, write=False, progress=False, comm=comm)
one = run_pde(case, write=False, progress=False, comm=MPI.COMM_SELF)[0] if comm.rank == 0 else None
one = comm.bcast(one, root=0)
diff = max(float(np.max(np.abs(np.asarray(two[k]) - np.asarray(one[k])))) for k in ("F", "risk", "mass"))
check("graded PDE run 2 ranks vs 1", diff < 1e-10, f"{diff:.1e}")
check("graded PDE run mass", float(np.max(np.abs(np.asarray(two["mass"]) - 1))) < 1e-12)
check("graded PDE run min_rho >= 0", float(np.min(two["min_rho"])) >= 0.0)

check.exit()
