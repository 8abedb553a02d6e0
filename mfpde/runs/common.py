"""What every run shares: the in-memory record of saved observables, the run's
provenance, the output directory, and the resume and crash helpers."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mfpde.config.case import Case
from mfpde.errors import NonFiniteError, ResultFileError
from mfpde.io.hdf5 import partial_path, provenance
from mfpde.io.results import Observables, Result, read_result
from mfpde.parallel import collective

class _RunPair(NamedTuple):
    observables: dict
    path: Path | None


class Run(_RunPair):
    """What ``run_pde``, ``run_particles`` and ``run_limit`` return: the pair ``(observables, path)``
    (it unpacks as ``obs, path = run_pde(case)``, as before) that is also the typed result.

    ``run.result`` is the :class:`mfpde.io.results.PDEResult` (with the density at every saved
    time), :class:`~mfpde.io.results.ParticleResult` or :class:`~mfpde.io.results.LimitResult`,
    read from ``path`` on first use (the density is never assembled in memory while the run
    goes); any other attribute is the result's (``run.density``, ``run.theta``, ``run.t``).
    A run with ``write=False`` has no file and no ``result`` beyond its observables.
    """

    @property
    def result(self) -> Result:
        cached = self.__dict__.get("_result")
        if cached is None:
            if self.path is None:
                raise ResultFileError("the run was not written (write=False): it has its observables "
                                      "(run.observables, run[0]) and no result file to read")
            cached = self.__dict__["_result"] = read_result(self.path)
        return cached

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.result, name)

    def __repr__(self) -> str:
        t = self.observables.get("t", [])
        what = f"{len(t)} saved times" if len(t) else "no saved time"
        return f"<Run {what}, file {self.path}: unpacks as (observables, path); .result reads the file>"


@dataclass
class Record:
    """Observables at the saved times (filled on every rank, identical)."""

    t: list = field(default_factory=list)
    F: list = field(default_factory=list)
    risk: list = field(default_factory=list)
    moments: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)   # name -> list (mass, min_rho, ...)
    fields: list = field(default_factory=list)  # rank 0: per saved time the particles' theta

    def add(self, t, F, R, moments, state=None, **extra):
        self.t.append(float(t))
        self.F.append(np.asarray(F))
        self.risk.append(float(R))
        self.moments.append(np.asarray(moments))
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)
        if state is not None:
            self.fields.append(state)

    def observables(self, freqs) -> Observables:
        return Observables(t=np.array(self.t), F=np.array(self.F), risk=np.array(self.risk),
                           moments=np.array(self.moments), moment_freqs=np.asarray(freqs),
                           extra={k: np.array(v) for k, v in self.extra.items()})


def table_as_run(case: Case, section: str, **values) -> dict:
    """The case table with ``[section]`` keys set to the values that ran (command-line overrides)."""
    table = copy.deepcopy(case.table)
    table.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return table


def run_provenance(case: Case, mpi_size: int, t0: float) -> dict:
    """``/provenance`` of a run: versions, MPI size, wall time since ``t0``, and the expert as evaluated."""
    return provenance(mpi_size, time.perf_counter() - t0, {"expert": json.dumps(case.expert.describe())})


def _saved_last_good(exc: NonFiniteError, unsaved: bool, save, path, comm) -> NonFiniteError:
    """Save the last good state (unless saved already) and say where it is.
    Every rank gets here (the failure was agreed on), so the error is collective."""
    if unsaved:
        save()
    where = f"; last good state saved in {partial_path(path)}" if path is not None else ""
    return collective(type(exc)(f"{exc}{where}"), comm)


def _restore_record(record: Record, obs: dict, fields, extra_keys=()) -> None:
    for i, t in enumerate(obs["t"]):
        record.add(t, obs["F"][i], obs["risk"][i], obs["moments"][i],
                   None if fields is None else fields[i], **{k: obs[k][i] for k in extra_keys})
