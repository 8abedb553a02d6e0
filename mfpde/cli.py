"""The ``mfpde`` command line (DESIGN section 8): a thin layer over the Python API.

Every error the user can cause is one line on stderr and exit code 2; every
command that writes prints the path of what it wrote.  Under ``mpirun`` an
error that every rank agreed on (:func:`mfpde.parallel.agree`) is printed once
and all ranks exit 2; an error on some ranks only is printed by the rank that
has it, which then ends with code 2 (the MPI launcher ends the other ranks and
passes the code on), so no rank is left waiting -- unless every rank meets one
within a second (user code failing everywhere): then it is printed once.  A
SIGINT to one rank (or all) ends the job with ``mfpde: interrupted`` and code
130 once the save in progress is written (:func:`mfpde.parallel.end_on_interrupt`).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

# One BLAS thread per process: the kernels are small matrix products, and
# under mpirun every core already runs a rank (threads made setup 5x slower).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from mfpde.errors import MfpdeError, os_error_line  # noqa: E402
from mfpde.io.paths import use_writable_cache  # noqa: E402
from mfpde.parallel import agree, end_on_interrupt  # noqa: E402

#: how long a rank with an error of its own waits for the other ranks to meet one too (then it is printed once)
ALL_FAIL_WAIT_S = 1.0


def _case(args, comm, **overrides):
    """The case as the command runs it: read, every command-line option applied through one copy
    (:meth:`mfpde.config.case.Case.with_overrides`: the rules and messages of the case file), then the
    command's checker (:data:`mfpde.runs.checks.CHECKS`), before any work."""
    from mfpde.config.case import default_case, given, load_case
    from mfpde.runs.checks import CHECKS

    def load():
        case = default_case() if args.case == "default" else load_case(args.case)
        return case.with_overrides(**{name: given(**values) for name, values in overrides.items()})

    case = agree(comm, load)
    agree(comm, CHECKS[args.command], case, root_only=True)
    return case


def _integer(text: str) -> int:
    """argparse type: an integer (its range is the case key's rule, checked with the case)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


# `mfpde study --quick`: three N a factor 4 apart and 4 seeds (the default is N = 64..16384, 8 seeds)
QUICK_STUDY_N = (64, 256, 1024)
QUICK_STUDY_SEEDS = 4


def _say(comm, *lines: str) -> None:
    if comm.rank == 0:
        for line in lines:
            print(line, flush=True)


# ------------------------------------------------------------------ commands


def cmd_pde(args, comm) -> None:
    from mfpde.runs.pde import run_pde

    case = _case(args, comm, pde={"n": args.n})
    obs, path = run_pde(case, out_dir=args.out, resume=args.resume, comm=comm, progress=not args.quiet)
    _say(comm, f"t = {obs['t'][-1]:g}: risk = {obs['risk'][-1]:.6e}, mass = {obs['mass'][-1]:.15f}, "
               f"min_rho = {obs['min_rho'].min():.3e}", f"wrote {path}")


def cmd_particles(args, comm) -> None:
    from mfpde.runs.particles import run_particles

    case = _case(args, comm, particles={"n": args.n, "seed": args.seed})
    obs, path = run_particles(case, out_dir=args.out, resume=args.resume, comm=comm,
                              progress=not args.quiet)
    _say(comm, f"t = {obs['t'][-1]:g}: risk = {obs['risk'][-1]:.6e}", f"wrote {path}")


def cmd_compare(args, comm) -> None:
    from mfpde.runs.compare import compare_files
    from mfpde.io.compare_inputs import check_compare_files

    check_compare_files(args.pde, args.particles)  # mfpde.runs.checks.CHECKS["compare"]
    out = compare_files(args.pde, args.particles, out_dir=args.out)
    _say(comm, *out["lines"], f"wrote {out['path']}")


def cmd_study(args, comm) -> None:
    from mfpde.runs.study import run_study

    if args.quick:  # explicit --n / --seeds still win
        args.n = args.n or list(QUICK_STUDY_N)
        args.seeds = args.seeds or QUICK_STUDY_SEEDS
    case = _case(args, comm, study={"n": args.n, "seeds": args.seeds})
    out = run_study(case, out_dir=args.out, comm=comm,
                    progress=not args.quiet, plots=not args.no_plots, resume=args.resume)
    _say(comm, *out["lines"], f"wrote {out['path']}", f"report: {out['report']}")


def cmd_regimes(args, comm) -> None:
    from mfpde.runs.regimes import run_regimes

    case = _case(args, comm, regimes={"n": args.n, "seeds": args.seeds})
    out = run_regimes(case, out_dir=args.out, comm=comm,
                      progress=not args.quiet, plots=not args.no_plots)
    _say(comm, *out["lines"], f"wrote {out['path']}", *([f"report: {out['report']}"] if out["report"] else []))


def cmd_limit(args, comm) -> None:
    from mfpde.runs.limit import run_limit

    case = _case(args, comm, limit={"points": args.points})
    obs, path = run_limit(case, out_dir=args.out, resume=args.resume, comm=comm,
                          progress=not args.quiet)
    need = obs["experts_needed"]
    _say(comm, f"rule: {obs['rule']}",
         f"t = {obs['t'][-1]:g}: risk = {obs['risk'][-1]:.6e}, "
         f"error estimate max_k |F_M - F_coarse| = {obs['error_estimate'].max():.2e} (over the saved times)",
         "experts needed (95%, max_k |f_N - F| at each saved time): "
         + ", ".join(f"{e:g}: N = {_experts(n)}" for e, n in zip(need["accuracy"], need["N"])),
         f"wrote {path}")


def _experts(n: int) -> str:
    from mfpde.meshfree.clt import N_BEYOND

    return str(n) if n < N_BEYOND else "beyond 9.2e18 (the CLT covariance is unbounded)"


def cmd_plot(args, comm) -> None:
    from mfpde.report.figures import plot_file

    if comm.rank == 0:
        for p in plot_file(args.file, out_dir=args.out):
            print(f"wrote {p}")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``mfpde pde: error: ...``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mfpde", description=(
        "Mean-field limit of mixtures of experts: the PDE on the parameter torus (DOLFINx), "
        "finite-N particles, and how fast the particles approach the PDE."))
    p.add_argument("--version", action="version", version=f"mfpde {__import__('mfpde').__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def run_command(name: str, help: str, func, resume: bool = False):
        """A subcommand that reads a case and writes under --out."""
        sp = sub.add_parser(name, help=help)
        sp.add_argument("case", metavar="CASE.toml", help="case file, or 'default' for the built-in case")
        sp.add_argument("--out", metavar="DIR", help="output directory (overrides [output] directory)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        if resume:
            sp.add_argument("--resume", action="store_true", help="continue from the last saved state")
        sp.set_defaults(func=func)
        return sp

    sp = run_command("pde", "solve the mean-field PDE (works under mpirun -n P)", cmd_pde, resume=True)
    sp.add_argument("--n", type=_integer, help="cells per direction (overrides [pde] n)")

    sp = run_command("particles", "train the N-expert mixture (works under mpirun -n P)", cmd_particles, resume=True)
    sp.add_argument("--n", type=_integer, help="number of experts N (overrides [particles] n)")
    sp.add_argument("--seed", type=_integer, help="random seed (overrides [particles] seed)")

    sp = run_command("limit", "the tau = 0 limit by quadrature of the characteristics, any d, with its CLT "
                     "covariance (works under mpirun -n P)", cmd_limit, resume=True)
    sp.add_argument("--points", type=_integer, metavar="M", help="rule size (overrides [limit] points)")

    sp = sub.add_parser("compare", help="errors between a PDE run and particle runs, per saved time")
    sp.add_argument("pde", metavar="PDE.h5")
    sp.add_argument("particles", metavar="PARTICLES.h5", nargs="+")
    sp.add_argument("--out", metavar="DIR", help="where to write the comparison file (default: beside PDE.h5)")
    sp.set_defaults(func=cmd_compare)

    sp = run_command("study", "PDE once, particles over N and seeds, fitted rates, report", cmd_study,
                     resume=True)
    sp.add_argument("--n", type=_int_list, metavar="N1,N2,...", help="particle numbers (overrides [study] n)")
    sp.add_argument("--seeds", type=_integer, help="seeds per N, >= 2 (overrides [study] seeds)")
    sp.add_argument("--quick", action="store_true",
                    help=f"a small study: N = {','.join(map(str, QUICK_STUDY_N))} and {QUICK_STUDY_SEEDS} seeds "
                         "(unless --n / --seeds are given); same output names, so use another --out to keep a full study")
    sp.add_argument("--no-plots", action="store_true", help="skip the figures of the report")

    sp = run_command("regimes", "lazy (NTK) against mean-field training over N and seeds, both limits, report",
                     cmd_regimes)
    sp.add_argument("--n", type=_int_list, metavar="N1,N2,...", help="particle numbers (overrides [regimes] n)")
    sp.add_argument("--seeds", type=_integer, help="seeds per N, >= 2 (overrides [regimes] seeds)")
    sp.add_argument("--no-plots", action="store_true", help="skip the figures and the report")

    sp = sub.add_parser("plot", help="figures of a result file (pde, particles, study, compare, limit, regimes)")
    sp.add_argument("file", metavar="RUN.h5")
    sp.add_argument("--out", metavar="DIR", help="where to write the PNG files (default: beside RUN.h5)")
    sp.set_defaults(func=cmd_plot)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:  # mpi4py >= 4 finds no MPI library: RuntimeError
        print(f"mfpde: error: {no_mpi_line(exc)}", file=sys.stderr, flush=True)
        return 2

    use_writable_cache()
    comm = MPI.COMM_WORLD
    hint = " (the last saved state can be resumed with --resume)" if hasattr(args, "resume") else ""
    errors = comm.Dup() if comm.size > 1 else comm  # for the error report alone: never mixed with the run's messages
    if comm.size > 1:
        end_on_interrupt(f"mfpde: interrupted{hint}")  # a KeyboardInterrupt would wait in collective clean-up
    try:
        with np.errstate(all="ignore"):  # the runs check finiteness themselves and say so in one line
            args.func(args, comm)
    except MfpdeError as exc:
        return _fail(errors, f"mfpde: error: {exc}", exc.collective)
    except OSError as exc:
        return _fail(errors, f"mfpde: error: {os_error_line(exc)}", False)
    except KeyboardInterrupt:  # Ctrl-C of a one-process run, or raised by user code (a python expert)
        _close_progress_bars()
        return _fail(errors, f"mfpde: interrupted{hint}", False, code=130)
    except Exception:
        if comm.size == 1:
            raise
        traceback.print_exc()  # a bug, not a user error: keep the traceback, but end every rank
        return _end_job(comm, 1)
    return 0


def no_mpi_line(exc: BaseException) -> str:
    """The one line for an mpi4py that cannot load an MPI library (a plain ``pip install .``)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (f"mpi4py finds no MPI library ({first}): pip install \".[wheel]\" (DOLFINx 0.11 with MPICH: every "
            "command), or pip install mpich (every command but pde and study), or load your site's MPI and "
            "DOLFINx (docs/clusters.md)")


def _fail(comm, line: str, collective: bool, code: int = 2) -> int:
    """Report an error: once if every rank has it, else from this rank, ending the job.

    An error not known to be collective may still come on every rank (user code that fails
    everywhere): such a rank waits up to ``ALL_FAIL_WAIT_S`` in a non-blocking barrier on
    ``comm`` (a communicator of the error report alone); if every rank enters it, rank 0
    prints the distinct lines once and all ranks exit; if not, this rank prints its line
    and ends the job."""
    if not collective and comm.size > 1:
        lines = _all_failed(comm, line)
        if lines is None:
            _print_line(line)
            return _end_job(comm, code)
        if comm.rank == 0:
            for distinct in dict.fromkeys(lines):
                _print_line(distinct)
        return code
    if comm.rank == 0:
        _print_line(line)
    return code


def _all_failed(comm, line: str) -> list[str] | None:
    """Every rank's line if every rank reports an error within ``ALL_FAIL_WAIT_S``, else None."""
    import time

    request = comm.Ibarrier()
    deadline = time.monotonic() + ALL_FAIL_WAIT_S
    while not request.Test():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)
    return comm.allgather(line)


def _print_line(line: str) -> None:
    """One line on stderr in one write: lines of two ranks never share a line."""
    sys.stderr.write(line + "\n")  # one write of the whole line (stderr is line-buffered)
    sys.stderr.flush()


def _end_job(comm, code: int) -> int:
    """Under mpirun, end this process now: the launcher then ends the ranks that
    would wait for it forever and exits with ``code`` (measured with MPICH's
    hydra: ``os._exit(2)`` on one rank gives exit code 2 and no other output)."""
    if comm.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _close_progress_bars() -> None:
    """Clear an open progress bar so that the next message starts its own line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    sys.stderr.write("\r")


if __name__ == "__main__":
    sys.exit(main())
