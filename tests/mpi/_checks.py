"""The checks of an MPI test script: one line per check on rank 0, and the exit status of all ranks."""

import sys

from mpi4py import MPI


class Checks:
    def __init__(self, comm=MPI.COMM_WORLD):
        self.comm = comm
        self.failures = []

    def __call__(self, name, ok, info=""):
        if self.comm.rank == 0:
            print(f"{'ok  ' if ok else 'FAIL'} {name} {info}", flush=True)
        if not ok:
            self.failures.append(name)

    def exit(self):
        """Exit non-zero on every rank if a check failed on any."""
        sys.exit(1 if self.comm.allreduce(len(self.failures), op=MPI.MAX) else 0)
