"""Driver of tests/io/test_kill_in_gather.py: ``python tests/_kill_in_gather.py K WINDOW_BYTES mfpde-args...``.

Runs ``mfpde`` with the density written in windows of ``WINDOW_BYTES`` and, when ``K > 0``, kills the
process (SIGKILL) inside its K-th save, after the first window of the density has been written and
flushed to disk: a kill at the worst moment of the windowed gather (the file then holds a part of the
density slice).  Only a save whose commit follows the whole density lets ``--resume`` be exact.
"""

import os
import signal
import sys

import mfpde.io.pde_writer as writer
from mfpde.cli import main


def install(kill_at: int, window_bytes: int) -> None:
    writer.WINDOW_BYTES = window_bytes
    sink = writer.PDEOutput._sink

    def killing_sink(self, name, k):
        write = sink(self, name, k)
        if name != writer.DENSITY or k is None or k + 1 != kill_at:
            return write

        def first_window_then_kill(a, block):
            write(a, block)
            self._file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return first_window_then_kill

    writer.PDEOutput._sink = killing_sink


if __name__ == "__main__":
    install(int(sys.argv[1]), int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
