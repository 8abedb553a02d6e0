"""Memory of the PDE output path per MPI rank: a real writing run of ``run_pde`` at P ranks.

The default case (d = 2 QNN) on an ``n x n`` mesh of DG``degree``
quadrilaterals (default DG3, n = 256: 1.05e6 dofs, 8.4 MB of density per
save), ``--saves`` saved states one CFL step apart (``save_every`` below the
step, so every save interval is a single step and the run is dominated by
what the saves cost), written as ``mfpde pde`` writes them: the partial
file at every save, the final file and the VTX (ADIOS2) companion.

Per rank: ``save_s``, the time in the saves of the HDF5 file
(``PDEOutput.save``; 0 for an mfpde without it); and (Linux ``VmHWM``, the
peak RSS) the peak of the solver's set-up
(``setup_peak_rss``, read when ``build_pde_solver`` returns, then reset by
``/proc/self/clear_refs``), the peak of the run after it (``run_peak_rss``:
the time loop, the saves, the final file and the companion) and the peak of
the whole process, the larger of the two (``peak_rss``; ``ru_maxrss`` is
reset with ``VmHWM``, so it is not used).
``--modes write,nocompanion,nowrite`` also runs the same case without the
VTX companion (``companion=False``) and with ``write=False`` (observables
only, no file): the differences are what the companion and the output path
cost each rank.  The figures of merit are ``rank0_over_rank1_peak_rss`` and
``rank0_over_rank1_run_peak_rss`` of the writing run: rank 0 writes the
file, so whatever it holds beyond rank 1 is the cost of funnelling the
output through it.

Writes ``benchmarks/results/bench_pde_io.json`` (``--out``) with provenance.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pde_io.py [--n 256] [--degree 3] [--saves 20]
        [--ranks 2] [--modes write,nocompanion,nowrite] [--out benchmarks/results/bench_pde_io.json]

One measurement by hand (what the driver runs):

    OMP_NUM_THREADS=1 .venv/bin/mpirun -n 2 .venv/bin/python benchmarks/bench_pde_io.py --worker --json /tmp/io.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _mpi import find_mpirun, run_worker, worker_or_driver  # noqa: E402  (benchmarks/ on the path above)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--n", type=int, default=256, help="cells per direction (default 256)")
    ap.add_argument("--degree", type=int, default=3, help="DG degree (default 3)")
    ap.add_argument("--saves", type=int, default=20, help="saved states after t = 0 (default 20)")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks (default 2)")
    ap.add_argument("--modes", default="write,nocompanion,nowrite",
                    help="write (the file and the companion), nocompanion (the file only), nowrite (neither)")
    ap.add_argument("--mpirun", default=None, help="mpirun (default: the one next to this Python, else PATH)")
    ap.add_argument("--worker", action="store_true", help="one measurement (run under mpirun)")
    ap.add_argument("--write", action="store_true", help="worker: write the result file")
    ap.add_argument("--companion", action="store_true", help="worker: and the VTX companion")
    ap.add_argument("--dir", default=None, help="worker: output directory")
    ap.add_argument("--json", default=None, help="worker: where rank 0 writes its result")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_pde_io.json"))
    return ap.parse_args(argv)


def bench_case(n: int, degree: int, saves: int):
    """The default case on n x n DG(degree) quadrilaterals, ``saves`` saves one (shortened) step apart."""
    import tomllib

    from mfpde.config.case import case_from_dict, default_case_text

    table = tomllib.loads(default_case_text())
    every = 1e-4  # below the CFL step of these meshes: one step per save interval
    table["pde"].update(n=n, degree=degree, cell="box", save_every=every)
    table["dynamics"]["t_end"] = saves * every
    table["name"] = f"io-n{n}-p{degree}"
    return case_from_dict(table)


# ------------------------------------------------------------------ one measurement (under mpirun)


def _vm(field: str) -> int:
    """A ``Vm*`` line of /proc/self/status in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def worker(args) -> None:
    from mpi4py import MPI

    import mfpde.runs.pde as runs

    comm = MPI.COMM_WORLD
    case = bench_case(args.n, args.degree, args.saves)
    marks = {}
    build = runs.build_pde_solver

    def build_then_reset_peak(*a, **kw):  # the run's peak from here on: VmHWM reset after the set-up
        solver = build(*a, **kw)
        marks["setup_peak_rss"] = _vm("VmHWM")
        marks["rss_after_setup"] = _vm("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        return solver

    runs.build_pde_solver = build_then_reset_peak
    saves = {"save_s": 0.0}
    if hasattr(runs, "PDEOutput"):  # the time this rank spends in the saves of the HDF5 file
        save = runs.PDEOutput.save

        def timed_save(self, *a, **kw):
            t = time.perf_counter()
            save(self, *a, **kw)
            saves["save_s"] += time.perf_counter() - t

        runs.PDEOutput.save = timed_save
    comm.Barrier()
    t0 = time.perf_counter()
    obs, path = runs.run_pde(case, out_dir=args.dir, write=args.write, comm=comm, progress=False,
                             companion=args.companion)
    comm.Barrier()
    wall = time.perf_counter() - t0
    rank = {"rank": comm.rank, "run_peak_rss": _vm("VmHWM"), **marks, **saves}
    rank["peak_rss"] = max(rank["run_peak_rss"], marks["setup_peak_rss"])
    ranks = comm.gather(rank, root=0)
    if comm.rank == 0:
        size = path.stat().st_size if path is not None else 0
        bp = path.with_suffix(".bp") if path is not None else None
        bp_size = sum(f.stat().st_size for f in bp.rglob("*") if f.is_file()) if bp is not None and bp.exists() else 0
        dofs = (args.n ** 2) * (args.degree + 1) ** 2
        result = {"ranks": comm.size, "write": bool(args.write), "companion": bool(args.companion), "wall_s": wall, "saved_states": len(obs["t"]),
                  "dofs": dofs, "density_bytes_per_save": 8 * dofs, "h5_bytes": size, "bp_bytes": bp_size,
                  "per_rank": ranks, "risk_end": float(obs["risk"][-1]), "load_average": list(os.getloadavg()),
                  "mfpde": str(Path(runs.__file__).parent)}
        Path(args.json).write_text(json.dumps(result, indent=1))


# ------------------------------------------------------------------ driver


MODES = {"write": ["--write", "--companion"], "nocompanion": ["--write"], "nowrite": []}


def measure(args, mpirun: str, mode: str, tmp: str) -> dict:
    r = run_worker(mpirun, args.ranks, Path(__file__).resolve(), Path(tmp) / f"{mode}.json",
                   ["--dir", str(Path(tmp) / mode), "--n", str(args.n), "--degree", str(args.degree),
                    "--saves", str(args.saves), *MODES[mode]])
    for key in ("peak_rss", "run_peak_rss"):
        peaks = [x[key] for x in r["per_rank"]]
        r[f"{key}_per_rank_MiB"] = [p / 2**20 for p in peaks]
        r[f"rank0_over_rank1_{key}"] = peaks[0] / peaks[1] if len(peaks) > 1 else None
    return r


def driver(args) -> dict:
    from _provenance import provenance, write_result

    mpirun = find_mpirun(args.mpirun)
    result = {"provenance": provenance(), "case": "default", "cell": "box", "n": args.n, "degree": args.degree,
              "saves": args.saves, "ranks": args.ranks, "mpirun": mpirun, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="mfpde-io-") as tmp:
        for mode in [m for m in args.modes.split(",") if m]:
            r = measure(args, mpirun, mode, tmp)
            result["runs"][mode] = r
            print(f"{mode:8} P={args.ranks} n={args.n} DG{args.degree} {r['dofs']} dofs, {r['saved_states']} states: "
                  f"{r['wall_s']:.1f} s, peak RSS per rank {[round(x) for x in r['peak_rss_per_rank_MiB']]} MiB "
                  f"(rank0/rank1 {r['rank0_over_rank1_peak_rss']:.3f}), after set-up "
                  f"{[round(x) for x in r['run_peak_rss_per_rank_MiB']]} MiB "
                  f"(rank0/rank1 {r['rank0_over_rank1_run_peak_rss']:.3f})", flush=True)
    runs = result["runs"]
    for mode in ("write", "nocompanion"):  # what writing adds to each rank's peak after the set-up
        if mode in runs and "nowrite" in runs:
            result[f"{mode}_cost_MiB_per_rank"] = [w - n for w, n in zip(runs[mode]["run_peak_rss_per_rank_MiB"],
                                                                          runs["nowrite"]["run_peak_rss_per_rank_MiB"])]
    write_result(result, args.out)
    return result


def main(argv=None):
    args = parse_args(argv)
    worker_or_driver(args, worker, driver)


if __name__ == "__main__":
    main()
