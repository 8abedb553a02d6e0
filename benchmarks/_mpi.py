"""A benchmark's worker under ``mpirun``: the launcher next to the interpreter, one thread per rank."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def find_mpirun(given: str | None) -> str:
    """``given``, else the venv's ``mpirun`` (the mpich wheel's), else the one on PATH."""
    if given:
        return given
    here = Path(sys.executable).parent / "mpirun"
    return str(here) if here.exists() else (shutil.which("mpirun") or "mpirun")


def run_worker(mpirun: str, ranks: int, script: str, out: Path, args: list[str], timeout: float = 1800) -> dict:
    """``mpirun -n ranks python script --worker --json out *args`` with one BLAS/OpenMP thread per rank;
    the JSON the worker wrote."""
    cmd = [mpirun, "-n", str(ranks), sys.executable, str(script), "--worker", "--json", str(out), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(cmd, env=env, check=True, timeout=timeout)
    return json.loads(Path(out).read_text())


def worker_or_driver(args, worker, driver):
    """A benchmark's entry: ``worker(args)`` inside mpirun (``--worker --json PATH``), else ``driver(args)``."""
    if args.worker:
        if not args.json:
            raise SystemExit("--worker needs --json PATH")
        return worker(args)
    return driver(args)
