"""One run at a time per output name: an exclusive ``flock`` on ``NAME.lock``.

Two identical runs on one ``--out`` would overwrite each other's partial
file.  The first to take the lock runs; the second is refused in one line
(before any work).  The lock is held by rank 0 and released (the file
removed) when the run ends, also when it fails; the kernel releases it if the
process is killed, so a stale ``NAME.lock`` never blocks a later run.  The run that takes the lock removes
the temporary files (``NAME.PID.tmp``) a killed run left.
"""

from __future__ import annotations

import fcntl
import glob
import os
from contextlib import contextmanager
from pathlib import Path

from mfpde.errors import ResultFileError
from mfpde.parallel import agree
from mfpde.io.paths import check_writable


def lock_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".lock")


def _acquire(path: Path) -> int:
    check_writable(path.parent)
    lock = lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ResultFileError(f"{path}: another mfpde run is writing it (it holds {lock.name}); "
                                  "wait for it to end or use another --out") from None
        # the holder before us may have removed the file between our open and flock
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                _remove_stale_tmp(path)
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_stale_tmp(path: Path) -> None:
    """Remove the ``NAME.PID.tmp`` files of ``path`` and of its partial file: with the lock held no run
    is writing them, so they are left by a run that was killed (or met a full disk) while writing."""
    from mfpde.io.hdf5 import partial_path

    for name in (path.name, partial_path(path).name):
        for tmp in path.parent.glob(f"{glob.escape(name)}.*.tmp"):
            if tmp.name[len(name) + 1:-len(".tmp")].isdigit():
                tmp.unlink(missing_ok=True)


def _release(fd: int, path: Path) -> None:
    lock_path(path).unlink(missing_ok=True)  # while still holding it: a waiter sees a new file
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextmanager
def output_lock(path: str | Path | None, comm):
    """Hold the lock of output ``path`` (None: nothing to lock) on rank 0; every
    rank raises the same one-line error if another run holds it."""
    if path is None:
        yield
        return
    path = Path(path)
    fd = agree(comm, _acquire, path, root_only=True)
    try:
        yield
    finally:
        if comm.rank == 0:
            _release(fd, path)
