"""Exceptions that mfpde turns into one clear line on the command line."""


class MfpdeError(Exception):
    """Base class: anything the CLI reports as a one-line error (exit code 2).

    ``collective`` is True when every MPI rank raised it (see
    :func:`mfpde.parallel.agree`); the CLI then reports it once and all ranks
    exit cleanly.  Otherwise the rank that has it ends the whole job.
    """

    collective = False


class CaseError(MfpdeError, ValueError):
    """A case breaks the contract.  The message starts with the key, e.g.
    ``expert.gates[2]: unknown gate 'RQ' (known: RX, RY, ...)``."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class NonFiniteError(MfpdeError, FloatingPointError):
    """A run produced NaN/inf.  The solver keeps its last finite state."""


class ResultFileError(MfpdeError):
    """An HDF5 result file is missing, unreadable, or does not fit the request."""


class UnstableStepError(NonFiniteError):
    """The particle time step is unstable: the risk of a gradient flow (tau = 0) rose."""


def no_space_line(path) -> str:
    """The one line of a full disk (errno ENOSPC) met while writing ``path``."""
    return f"no space left on the device of {path}; free some space, then continue with --resume"


def os_error_line(exc: OSError) -> str:
    """An operating-system error as one line: a full disk says so (HDF5 reports it in its message only)."""
    import errno

    if exc.errno == errno.ENOSPC and str(exc.strerror).startswith("no space left"):  # said by mfpde already
        return exc.strerror
    if exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
        return no_space_line(exc.filename or "the output folder")
    return str(exc)
