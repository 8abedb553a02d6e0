"""Agreement between MPI ranks on checks and errors.

Under ``mpirun`` a check that only rank 0 can make (it owns the files) must
still stop every rank: :func:`agree` runs a check, shares whether it failed
(one ``allgather``) and raises the same error on all ranks, marked
``collective`` so that the command line reports it once and every rank exits
with code 2.
"""

from __future__ import annotations

from mfpde.errors import MfpdeError, ResultFileError, os_error_line


def agree(comm, check, *args, root_only: bool = False):
    """Run ``check(*args)`` (on every rank, or on rank 0 with ``root_only``)
    and raise on every rank if it raised on any: the first failing rank's
    message, marked :func:`collective`.  Returns the check's result (with
    ``root_only`` broadcast from rank 0)."""
    error, result = None, None
    if comm.rank == 0 or not root_only:
        try:
            result = check(*args)
        except MfpdeError as exc:
            error = exc
        except OSError as exc:
            error = ResultFileError(os_error_line(exc))
    if comm.size > 1:
        messages = comm.allgather(None if error is None else str(error))
        first = next((m for m in messages if m is not None), None)
        if first is not None and error is None:
            error = MfpdeError(first)
        if root_only and first is None:
            result = comm.bcast(result, root=0)
    if error is not None:
        raise collective(error, comm)
    return result


def collective(error: MfpdeError, comm) -> MfpdeError:
    """Mark ``error`` as raised on every rank of ``comm``: for the command line
    that is "on every rank" only when ``comm`` spans all of them (a study's
    one-rank particle runs do not)."""
    from mpi4py import MPI

    error.collective = comm.Get_size() == MPI.COMM_WORLD.Get_size()
    return error


# ------------------------------------------------------------------ an interrupt under mpirun

_writing = 0          # depth of the :func:`uninterrupted` blocks this process is in
_held: tuple | None = None  # (line, code) of an interrupt that came during one


def _end_now(line: str, code: int) -> None:
    import os

    os.write(2, (line + "\n").encode())
    os._exit(code)


def end_on_interrupt(line: str, code: int = 130) -> None:
    """Make SIGINT end this process at once with ``line`` on stderr and exit ``code``.

    Under ``mpirun`` a KeyboardInterrupt on one rank cannot unwind: the cleanup on its way
    (closing a file, the ParaView writer) is collective and waits forever for the ranks that
    were not interrupted.  Ending the rank instead makes the launcher end the others, as a
    SIGTERM does.  An interrupt that comes inside :func:`uninterrupted` (a save being written)
    ends the process when that block is over, so that a save is never torn by it."""
    import signal

    def handler(signum, frame):
        global _held
        if _writing:
            _held = (line, code)
        else:
            _end_now(line, code)

    signal.signal(signal.SIGINT, handler)


class uninterrupted:
    """``with uninterrupted(): ...``: an interrupt (see :func:`end_on_interrupt`) waits for the end of the block."""

    def __enter__(self):
        global _writing
        _writing += 1
        return self

    def __exit__(self, *exc):
        global _writing
        _writing -= 1
        if not _writing and _held is not None:
            _end_now(*_held)
        return False
