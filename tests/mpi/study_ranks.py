"""Under mpirun -n 2: a small d = 2 study (grid W1, particle runs dealt round-robin over the ranks)
gives the same metrics and fits as the same study on one rank (COMM_SELF).

Prints the differences and the W1 values; exits non-zero if they differ by more than 1e-10
or W1 is not finite and positive.  Argument: the output directory.
"""

import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.case import case_from_dict
from mfpde.io.results import StudyResult
from mfpde.runs.study import run_study

comm = MPI.COMM_WORLD
assert comm.size == 2, "run with mpirun -n 2"
out = Path(sys.argv[1])
table = {
    "name": "study-2d",
    "expert": {"kind": "cosine", "d": 2},
    "data": {"x": [[-1.0, 0.5], [0.0, 0.0], [1.0, -0.5]], "teacher_theta": [[0.5, 1.0], [2.0, 4.0]]},
    "dynamics": {"t_end": 0.5},
    "pde": {"n": 8, "save_every": 0.25},
    "particles": {"dt": 0.05},
}
ns, seeds = [16, 64, 256], 3
par = run_study(case_from_dict(table), ns, seeds, out_dir=out / "two", comm=comm, progress=False, plots=False)
ok = True
if comm.rank == 0:
    ser = run_study(case_from_dict(table), ns, seeds, out_dir=out / "one", comm=MPI.COMM_SELF, progress=False,
                    plots=False)
    a, b = StudyResult.from_file(par["path"]), StudyResult.from_file(ser["path"])
    assert a.info.provenance["mpi_size"] == 2 and b.info.provenance["mpi_size"] == 1
    for name in a.metrics:
        diff = np.nanmax(np.abs(a.metrics[name] - b.metrics[name]))
        fit = abs(a.fit[name].slope - b.fit[name].slope)
        print(f"{name}: max |2 ranks - 1 rank| = {diff:.3e}, slope diff {fit:.3e}, slope {a.fit[name].slope:+.3f}")
        ok &= bool(diff <= 1e-10 and fit <= 1e-10)
    w = a.metrics["wasserstein"][:, :, [0, -1]]
    print(f"wasserstein at t = 0, t_end: min {w.min():.3e} max {w.max():.3e} (theory {a.fit['wasserstein'].theory})")
    ok &= bool(np.all(np.isfinite(w)) and np.all(w > 0))
ok = comm.bcast(ok, root=0)
sys.exit(0 if ok else 1)
