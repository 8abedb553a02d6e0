"""Run under mpirun -n 2: the PDE output path (mfpde.io.distributed_rows, mfpde.io.pde_writer) on 2 ranks.

1. DistributedRows on a random partition, windows of 5 rows: gather and scatter give the global array
   and each rank's rows back exactly; rank 0 never holds more than a window; a writer that fails on
   rank 0 raises on both ranks (no rank left waiting).
2. run_pde writing on 2 ranks, windows of 32 KiB, under tracemalloc: rank 0's traced peak above what
   it held after the set-up exceeds rank 1's by less than a quarter of one global density slice (the old path held
   every saved state on rank 0: many slices).
3. the same run on 1 rank (COMM_SELF on rank 0) writes the same file: density to 1e-12, vertices,
   times and masses exactly.

Prints one line per check (with the numbers) and exits non-zero on failure.
"""

import sys
import tomllib
import tracemalloc
from pathlib import Path

import numpy as np
from mpi4py import MPI

from _checks import Checks

import mfpde.io.pde_writer as pde_output
import mfpde.runs.pde as runs
from mfpde.config.case import case_from_dict, default_case_text
from mfpde.io.distributed_rows import DistributedRows
from mfpde.errors import ResultFileError

comm = MPI.COMM_WORLD
rank = comm.rank
assert comm.size == 2, "run with mpirun -n 2"
out = Path(sys.argv[1])
check = Checks(comm)


# 1. DistributedRows
n = 53
perm = np.random.default_rng(7).permutation(n)
mine = perm[:20] if rank == 0 else perm[20:]
full = np.arange(n * 6, dtype=np.float64).reshape(n, 3, 2)
rows = DistributedRows(comm, mine, (3, 2), window_bytes=5 * 6 * 8)
got = np.full_like(full, np.nan) if rank == 0 else None


def sink(a, block):
    got[a:a + len(block)] = block


rows.gather(full[mine], sink)
if rank == 0:
    check("gather: the global array from windows", np.array_equal(got, full) and rows.largest_block <= 5,
          f"windows of {rows.window_rows} rows, largest block {rows.largest_block}")
back = rows.scatter(lambda a, b: full[a:b])
check("scatter: each rank's rows", bool(comm.allreduce(np.array_equal(back, full[mine]), op=MPI.LAND)))


def failing(a, block):
    if a >= 10:
        raise OSError("disk full")


try:
    rows.gather(full[mine], failing)
    raised = ""
except ResultFileError as exc:
    raised = str(exc)
check("a writer failing on rank 0 raises on both ranks", all(comm.allgather("disk full" in raised)), raised)


# 2. the writing run on 2 ranks: rank 0 holds no more than a window beyond rank 1
def case():
    table = tomllib.loads(default_case_text())
    table["pde"].update(n=48, degree=3, cell="box", save_every=1e-4)
    table["dynamics"]["t_end"] = 8e-4
    return case_from_dict(table)


build = runs.build_pde_solver
setup = {}


def build_then_reset(*a, **kw):
    solver = build(*a, **kw)
    setup["density_bytes"] = 8 * solver.num_dofs
    tracemalloc.reset_peak()
    setup["traced"] = tracemalloc.get_traced_memory()[0]
    return solver


runs.build_pde_solver = build_then_reset
pde_output.WINDOW_BYTES = 1 << 15
tracemalloc.start()
obs2, path2 = runs.run_pde(case(), out_dir=out / "two", comm=comm, progress=False)
peaks = comm.gather(tracemalloc.get_traced_memory()[1] - setup["traced"], root=0)  # the run's growth
tracemalloc.stop()
if rank == 0:
    slice_bytes = setup["density_bytes"]
    extra = peaks[0] - peaks[1]
    # rank 0 alone describes the file (units, long names, dimension scales: mfpde.io.layout): h5py objects
    # for every dataset, a fixed cost of about 94 kB measured, whatever the mesh; the density stays windowed
    describe_bytes = 128e3
    check("rank 0's traced peak growth beyond rank 1's < 1/4 of a global density slice (+ the file's description)",
          extra < slice_bytes / 4 + describe_bytes,
          f"growth {peaks[0] / 2**20:.2f} / {peaks[1] / 2**20:.2f} MiB, extra {extra / 1e3:.0f} kB, "
          f"slice {slice_bytes / 1e3:.0f} kB, {len(obs2['t'])} saved states")

# 3. one rank writes the same file
comm.Barrier()
if rank == 0:
    import h5py

    runs.build_pde_solver = build
    obs1, path1 = runs.run_pde(case(), out_dir=out / "one", comm=MPI.COMM_SELF, progress=False)
    with h5py.File(path1) as a, h5py.File(path2) as b:
        d1, d2 = a["pde/density"][()], b["pde/density"][()]
        dens = float(np.abs(d1 - d2).max()) if d1.shape == d2.shape else np.inf
        check("1 and 2 ranks: the same density", d1.shape == d2.shape == (9, 48 * 48, 16) and dens <= 1e-12,
              f"shape {d2.shape}, max |diff| {dens:.1e}")
        same = all(np.array_equal(a[k][()], b[k][()]) for k in ("pde/mesh/vertices", "observables/t"))
        mass = float(np.abs(a["observables/mass"][()] - b["observables/mass"][()]).max())
        check("1 and 2 ranks: the same vertices and times, masses to 1e-14", same and mass < 1e-14,
              f"max |d mass| {mass:.1e}")
        check("the final file: complete, every state saved", bool(b.attrs["complete"])
              and int(b.attrs["saved"]) == 9 and not (out / "two" / (path2.stem + ".partial.h5")).exists())

check.exit()
