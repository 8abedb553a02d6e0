"""``NAME.partial.h5`` of a particle run, appended to at every save (rank 0 alone writes it).

The layout is that of the final file (:class:`mfpde.io.results.ParticleResult`) with every time
series resizable along time: ``/observables/*`` but the frequencies, ``/particles/theta``
(T, N, d), and -- unlike the final file, where they are scalars of the last state --
``/particles/step`` and ``/particles/rng_state`` (one per saved time, so that a torn save never
pairs a state with the random stream of the next one).  As in :mod:`mfpde.io.pde_writer`:

* the first save creates the file under a temporary name and renames it;
* a save appends one row to every series and commits it last with the root attribute
  ``saved`` (the number of whole saved states), then closes and syncs the file;
* a reader (:func:`read_partial`) cuts every series to ``saved`` and gives the final layout, so
  that a save a kill interrupted is dropped; a resumed run rewrites the file from what it read
  (:meth:`ParticleOutput.restore`, also for a partial file of the older whole-file layout);
* a save that the device has no room for is refused before anything is written.

The finished run's file is written whole, as before, from the run's record: its content does not
depend on how the partial file was kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from mfpde.errors import ResultFileError
from mfpde.io.pde_writer import _kill_in_save  # the test hook MFPDE_TEST_KILL_IN_SAVE: a torn save
from mfpde.io.hdf5 import check_space, fsync, partial_path, read_tree, write_tree
from mfpde.io.results import ParticleResult, whole_saves
from mfpde.io.resume import check_resume_file
from mfpde.parallel import uninterrupted

#: the root attribute that counts the whole saved states (the commit of a save)
SAVED = "saved"
PER_SAVE = ("step", "rng_state")  # scalars in the final file, one per saved time here (read: results.whole_saves)


def _series(group: h5py.Group, name: str, values: np.ndarray, dtype=None) -> None:
    values = np.asarray(values)
    row = values.shape[1:]
    group.create_dataset(name, data=values, maxshape=(None, *row), dtype=dtype,
                         chunks=(max(1, 4096 // max(1, int(np.prod(row)))), *row))


def _append(d: h5py.Dataset, k: int, value) -> None:
    d.resize(k + 1, axis=0)
    d[k] = value


class ParticleOutput:
    """The partial file of a particle run whose final file is ``path`` (every method on rank 0)."""

    def __init__(self, path: Path):
        self.partial = partial_path(path)
        self.saved = 0

    def save(self, result: ParticleResult) -> None:
        """Append the last saved state of ``result`` (the run so far); the first save creates the file."""
        row_bytes = (result.theta[-1].nbytes + result.observables.F[-1].nbytes
                     + result.observables.moments[-1].nbytes + len(result.rng_state) + 64)
        with uninterrupted():  # an interrupt under mpirun ends the process after this save
            if self.saved == 0:
                self.restore(result)
                return
            check_space(self.partial, row_bytes)
            k = self.saved
            with h5py.File(self.partial, "r+") as f:
                for name, values in result.observables.tree().items():
                    if name != "moment_freqs":
                        _append(f["observables"][name], k, values[-1])
                p = f["particles"]
                _append(p["theta"], k, result.theta[-1])
                _append(p["step"], k, int(result.step))
                _append(p["rng_state"], k, result.rng_state)
                f.flush()
                _kill_in_save(k + 1)
                f.attrs[SAVED] = k + 1
            fsync(self.partial)
            self.saved = k + 1

    def restore(self, result: ParticleResult) -> None:
        """(Re)write the partial file whole from ``result`` (all its saved states), in this layout."""
        T = len(result.observables.t)
        check_space(self.partial, result.theta.nbytes + result.observables.F.nbytes
                    + result.observables.moments.nbytes + 64 * T + (1 << 16))
        tmp = self.partial.with_name(f"{self.partial.name}.{os.getpid()}.tmp")
        result.info.complete = False
        tree = result.to_tree()
        series = tree.pop("observables")
        particles = tree.pop("particles")
        try:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(tmp, "w") as f:
                write_tree(f, {**tree, "observables": {"moment_freqs": series.pop("moment_freqs")},
                               "particles": {k: v for k, v in particles.items()
                                             if k not in ("theta", *PER_SAVE)}})
                for name, values in series.items():
                    _series(f["observables"], name, values)
                p = f["particles"]
                _series(p, "theta", result.theta)
                _series(p, "step", np.full(T, int(result.step)))
                _series(p, "rng_state", np.array([result.rng_state] * T, dtype=object), h5py.string_dtype())
                for key, value in result.info.attrs(result.KIND).items():
                    f.attrs[key] = value
                f.attrs[SAVED] = T
            fsync(tmp)
            os.replace(tmp, self.partial)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.saved = T


def read_partial(path: Path) -> tuple[dict, dict]:
    """(tree, attrs) of a particle partial file in the final layout: the series cut to the whole saved
    states, ``step`` and ``rng_state`` of the last one (a whole-file partial is read as it is)."""
    try:
        with h5py.File(path, "r") as f:
            tree, attrs = read_tree(f), dict(f.attrs)
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    return (whole_saves(tree, int(attrs[SAVED])) if SAVED in attrs else tree), attrs


def read_resume(path: Path, case) -> tuple[dict, dict] | None:
    """(tree, attrs) of the run of final file ``path`` to resume: its partial file, or the final file
    itself when the run is finished, checked (:func:`mfpde.io.resume.check_resume_file`); None if neither
    is there (or the partial holds no whole state)."""
    from mfpde.io.hdf5 import read_run

    for candidate, read in ((partial_path(path), read_partial), (Path(path), read_run)):
        if candidate.is_file():
            tree, attrs = read(candidate)
            if int(attrs.get(SAVED, 1)) == 0:
                continue
            check_resume_file(tree, attrs, case, ParticleResult.KIND, candidate)
            return tree, attrs
    return None
