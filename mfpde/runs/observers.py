"""Output as an observer of a run (the pattern of py-pde's trackers and Dedalus' file handlers).

A run loop (pde, particles, limit) does not write: at every save time it calls its :class:`Saver`,
which does the three things every run's save does, in this order:

1. ``observe()``: record the observables of the state (every rank; the record is the run's);
2. ``write()``: put the last saved state into the partial file -- collectively (the PDE writer,
   window by window) or on rank 0 alone (``root_writes``), a failure there (a full disk) then raised
   on every rank (:func:`mfpde.parallel.agree`) -- and, with the file written, the test hook
   ``MFPDE_TEST_KILL_AFTER_SAVE`` (:func:`kill_after_save`);
3. ``after``: what follows a save (the PDE's ParaView companion).

The numbers are those of the run: a saver only decides when and in what order they are written.
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Sequence

from mfpde.parallel import agree

#: test hook: with MFPDE_TEST_KILL_AFTER_SAVE=k a run kills itself (SIGKILL, as ``kill -9``) right
#: after rank 0 has written its k-th saved state, so that resume tests do not race a poll
KILL_AFTER_SAVE = "MFPDE_TEST_KILL_AFTER_SAVE"


def kill_after_save(saves: int) -> None:
    k = os.environ.get(KILL_AFTER_SAVE)
    if k and saves == int(k):
        os.kill(os.getpid(), signal.SIGKILL)


class Saver:
    """``saver()`` at each save time: observe, write (and the kill hook), then ``after``."""

    def __init__(self, comm, observe: Callable[[], None] | None = None, write: Callable[[], None] | None = None,
                 *, root_writes: bool = False, count: Callable[[], int] | None = None,
                 after: Sequence[Callable[[], None]] = ()):
        self.comm, self.observe, self.write = comm, observe, write
        self.root_writes, self.count, self.after = root_writes, count, tuple(after)

    def __call__(self) -> None:
        if self.observe is not None:
            self.observe()
        if self.write is not None:
            if self.root_writes:
                agree(self.comm, self.write, root_only=True)
            else:
                self.write()
            if self.comm.rank == 0 and self.count is not None:
                kill_after_save(self.count())
        for hook in self.after:
            hook()
