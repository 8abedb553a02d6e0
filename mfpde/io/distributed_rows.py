r"""Rows of a global array spread over MPI ranks, moved to and from rank 0 one bounded window at a time.

Rank ``r`` owns the rows ``local_r[i] = global[index_r[i]]``, where the
``index_r`` of all ranks partition ``0 .. n - 1`` (for the PDE density:
the cell's global input index, so the global order does not depend on the
number of ranks).  The global array is never assembled: it is cut into
windows ``[a, a + w)`` with ``w * row_bytes <= window_bytes``, and for each
window the ranks send rank 0 the rows they own in it (``Gatherv``), or rank
0 sends each rank its rows of it (``Scatterv``).  Rank 0 thus holds at most
one window and the rows in flight, about ``2 * window_bytes``, whatever the
size of the mesh.

A failure of rank 0's reader or writer (a full disk, a damaged file) does
not leave the other ranks waiting in a collective: rank 0 stops reading or
writing, takes part in the remaining windows, and at the end every rank
raises :class:`mfpde.errors.ResultFileError` with rank 0's message.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from mpi4py import MPI

from mfpde.errors import ResultFileError
from mfpde.parallel import collective

#: default bound of one window of rows on rank 0
WINDOW_BYTES = 1 << 20


class DistributedRows:
    """The rows ``index`` (this rank's, global numbering) of a global array of ``n`` rows.

    ``row_shape`` and ``dtype`` describe one row; every rank must build it
    with the same ones (collective).
    """

    def __init__(self, comm: MPI.Comm, index: np.ndarray, row_shape: tuple, dtype=np.float64,
                 window_bytes: int = WINDOW_BYTES):
        self.comm = comm
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        self.order = np.argsort(index, kind="stable")
        self.sorted_index = index[self.order]
        self.n_local = index.size
        self.n = comm.allreduce(self.n_local, op=MPI.SUM)
        low = comm.allreduce(int(self.sorted_index[0]) if index.size else self.n, op=MPI.MIN)
        high = comm.allreduce(int(self.sorted_index[-1]) if index.size else -1, op=MPI.MAX)
        if (low, high) != (0, self.n - 1) or np.any(np.diff(self.sorted_index) == 0):
            raise ValueError(f"the row indices of the ranks are not a partition of 0..{self.n - 1}")
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.row_size = int(np.prod(self.row_shape, dtype=np.int64))
        self.window_rows = max(1, int(window_bytes) // max(1, self.row_size * self.dtype.itemsize))
        self.largest_block = 0  # rows of the largest block rank 0 held (a test checks the bound)

    @property
    def shape(self) -> tuple:
        return (self.n, *self.row_shape)

    def windows(self):
        """``(a, b, lo, hi)``: global rows ``[a, b)``, of which this rank owns ``sorted_index[lo:hi]``."""
        for a in range(0, self.n, self.window_rows):
            b = min(a + self.window_rows, self.n)
            lo, hi = np.searchsorted(self.sorted_index, (a, b))
            yield a, b, int(lo), int(hi)

    def _gatherv(self, send: np.ndarray, counts, dtype) -> np.ndarray | None:
        """``send`` of every rank concatenated on rank 0 (``counts`` elements per rank, rank 0 only)."""
        recv = None
        if self.comm.rank == 0:
            recv = np.empty(int(sum(counts)), dtype=dtype)
            self.comm.Gatherv(send, [recv, counts], root=0)
        else:
            self.comm.Gatherv(send, None, root=0)
        return recv

    def gather(self, local: np.ndarray, sink: Callable[[int, np.ndarray], None]) -> None:
        """Call ``sink(a, block)`` on rank 0 for every window, ``block = global[a:b]``; collective."""
        local = np.asarray(local, dtype=self.dtype).reshape(self.n_local, self.row_size)
        error = None
        for a, b, lo, hi in self.windows():
            index = np.ascontiguousarray(self.sorted_index[lo:hi])
            rows = np.ascontiguousarray(local[self.order[lo:hi]]).reshape(-1)
            counts = self.comm.gather(hi - lo, root=0)
            where = self._gatherv(index, counts, np.int64)
            values = self._gatherv(rows, None if counts is None else [c * self.row_size for c in counts], self.dtype)
            if self.comm.rank == 0 and error is None:
                block = np.empty((b - a, self.row_size), dtype=self.dtype)
                block[where - a] = values.reshape(-1, self.row_size)
                self.largest_block = max(self.largest_block, b - a, len(where))
                try:
                    sink(a, block.reshape(b - a, *self.row_shape))
                except Exception as exc:  # noqa: BLE001  (re-raised below, after the collectives)
                    error = exc
        self._raise_if_failed(error)

    def scatter(self, source: Callable[[int, int], np.ndarray]) -> np.ndarray:
        """This rank's rows of the global array that ``source(a, b)`` (``global[a:b]``, called on rank
        0 only) reads window by window; collective."""
        local = np.empty((self.n_local, self.row_size), dtype=self.dtype)
        error = None
        for a, b, lo, hi in self.windows():
            index = np.ascontiguousarray(self.sorted_index[lo:hi])
            counts = self.comm.gather(hi - lo, root=0)
            where = self._gatherv(index, counts, np.int64)
            send = None
            if self.comm.rank == 0:
                block = None
                if error is None:
                    try:
                        block = np.asarray(source(a, b), dtype=self.dtype).reshape(b - a, self.row_size)
                    except Exception as exc:  # noqa: BLE001  (re-raised below, after the collectives)
                        error = exc
                send = block[where - a].reshape(-1) if block is not None else np.zeros(where.size * self.row_size,
                                                                                        dtype=self.dtype)
                self.largest_block = max(self.largest_block, b - a)
            recv = np.empty((hi - lo) * self.row_size, dtype=self.dtype)
            sizes = None if counts is None else [c * self.row_size for c in counts]
            self.comm.Scatterv(None if send is None else [send, sizes], recv, root=0)
            local[self.order[lo:hi]] = recv.reshape(-1, self.row_size)
        self._raise_if_failed(error)
        return local.reshape(self.n_local, *self.row_shape)

    def _raise_if_failed(self, error: Exception | None) -> None:
        """Raise rank 0's reader or writer error on every rank (one broadcast)."""
        message = self.comm.bcast(None if error is None else f"{type(error).__name__}: {error}", root=0)
        if message is not None:
            raise collective(ResultFileError(message), self.comm) from error
