"""An ensemble of independent runs (the (N, seed) sweeps of ``study`` and ``regimes``) dealt over MPI ranks.

Each task runs on one rank (its particle run on ``COMM_SELF``); the tasks are dealt round-robin in the
order given (largest N first, so the long runs start first and the ranks finish together), and the
results come back to rank 0 as one ``{task: result}`` dict.
"""

from __future__ import annotations

from typing import Callable, Hashable, TypeVar

from mfpde.progress import Progress

Task = TypeVar("Task", bound=Hashable)


def run_ensemble(tasks: list[Task], work: Callable[[Task], object], comm, *, progress: bool,
                 title: str) -> dict | None:
    """Run ``work(task)`` for this rank's share of ``tasks``; ``{task: result}`` of every task on rank 0,
    None on the other ranks (a collective call: every rank must call it with the same tasks)."""
    bar = Progress(len(tasks), title, enabled=progress and comm.rank == 0, label="runs")
    mine = {}
    for task in tasks[comm.rank::comm.size]:
        mine[task] = work(task)
        bar.update(comm.size)
    bar.close()
    gathered = comm.gather(mine, root=0)
    if comm.rank != 0:
        return None
    results = {}
    for part in gathered:
        results.update(part)
    return results
