"""Set-up time, time per step and peak memory per dof of the PDE solver (docs/pde.md, Memory).

    python scripts/pde_profile.py CASE.toml CELL DEGREE N [STEPS] [--profile]

Prints one JSON line; ``added_per_dof_B`` is (peak RSS - RSS with DOLFINx and
the expert loaded) / dofs.  ``--profile`` prints the cProfile top of the steps.
"""

import cProfile
import io
import json
import pstats
import resource
import sys
import time

import numpy as np
from mpi4py import MPI

from mfpde.config.case import load_case
from mfpde.model.initial import initial_density
from mfpde.model.moments import moment_freqs


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv):
    profile = "--profile" in argv
    argv = [a for a in argv if a != "--profile"]
    path, cell, degree, n = argv[0], argv[1], int(argv[2]), int(argv[3])
    steps = int(argv[4]) if len(argv) > 4 else 3
    case = load_case(path)
    from mfpde.pde import MeanFieldSolver
    from mfpde.pde.torus import torus_mesh

    expert_at = case.expert.bind(case.data.x)
    expert_at(np.zeros((3, case.d)))
    base = peak_mb()
    t0 = time.perf_counter()
    s = MeanFieldSolver(torus_mesh(MPI.COMM_WORLD, case.d, n, cell), expert_at, case.data.y, case.data.w,
                        initial_density(case), case.dynamics.lr, case.dynamics.tau, degree=degree,
                        cfl=case.pde.cfl, freqs=moment_freqs(case.d, case.pde.moment_max))
    t1 = time.perf_counter()
    s.observables()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t2 = time.perf_counter()
    for _ in range(steps):
        s.step()
    t3 = time.perf_counter()
    if prof:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        print(out.getvalue())
    s.observables()
    peak = peak_mb()
    print(json.dumps({"case": path, "cell": cell, "degree": degree, "n": n, "dofs": s.num_dofs,
                      "setup_s": round(t1 - t0, 2), "step_s": round((t3 - t2) / steps, 4),
                      "time_per_unit_t_s": round((t3 - t2) / max(s.t, 1e-300), 3),
                      "peak_rss_MB": round(peak), "baseline_MB": round(base),
                      "added_per_dof_B": round((peak - base) * 2**20 / s.num_dofs)}))


if __name__ == "__main__":
    main(sys.argv[1:])
