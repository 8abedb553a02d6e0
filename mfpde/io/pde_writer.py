r"""The files of a PDE run, written while it runs, without assembling the density on one rank.

The density at saved time ``t_k`` is the array ``density[k, c, j]`` (cell
``c`` in the global input order, node ``j``) of :class:`mfpde.io.results.PDEResult`;
each rank holds the rows of its own cells, and rank 0 writes them to the file
window by window (:class:`mfpde.io.distributed_rows.DistributedRows`), so no rank
ever holds the global density, nor any past state.

``NAME.partial.h5`` has the layout of the final file from its first save on:

* created (fresh run) with the case, data, provenance and the static part of
  ``/pde`` (mesh vertices written window by window; on a moving mesh they are
  time-indexed instead, one slice per save), and the time-indexed
  datasets empty and resizable along time: ``/pde/density`` (T, C, ndofs),
  chunked one window per chunk, and every ``/observables`` dataset but
  ``moment_freqs``; the file is built under a temporary name and renamed;
* a save appends one time slice: the density, then the observables row,
  ``/pde/steps``, and last the root attribute ``saved`` (the number of whole
  saved states: the commit), then the file is closed and synced;
* a resumed run drops whatever lies beyond ``saved`` (a save that a kill
  interrupted), reads the last state back window by window and appends on
  (a partial file of the older whole-file layout, fixed-size datasets, is
  first rewritten into this one, one window at a time);
* the finished run marks the file ``complete``, rewrites ``/provenance``
  and renames it to ``NAME.h5``: no state is written twice.

The VTX (ADIOS2 ``.bp``) companion is written by all ranks together, one
step per save (the mesh once, or at every step on a moving mesh); a resumed run rewrites it from the file one saved state at a
time (a VTX file cannot be appended to).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import h5py
import numpy as np

from mfpde.io.distributed_rows import WINDOW_BYTES, DistributedRows
from mfpde.errors import ResultFileError
from mfpde.parallel import agree, uninterrupted
from mfpde.io.resume import check_resume_file
from mfpde.io.results import PDEResult
from mfpde.io.hdf5 import check_space, fsync, partial_path, read_tree, write_tree
from mfpde.io.layout import describe_file, is_axis_only

#: test hook: with MFPDE_TEST_KILL_IN_SAVE=k rank 0 kills itself (SIGKILL) in the middle of its k-th
#: save, with the density slice on disk and the save not committed, so that resume tests see a torn save
KILL_IN_SAVE = "MFPDE_TEST_KILL_IN_SAVE"

DENSITY = "/pde/density"
VERTICES = "/pde/mesh/vertices"
#: the time a moving mesh stopped moving (written with the first save after it)
FROZEN = "/pde/mesh_frozen_at"
#: the root attribute that counts the whole saved states (the commit of a save)
SAVED = "saved"


def _time_indexed(f: h5py.File) -> list[h5py.Dataset]:
    """The datasets with one row per saved time: ``/pde/density``, ``/observables/*`` but the frequencies,
    and the mesh vertices of a moving mesh."""
    moving = [f[VERTICES]] if f[VERTICES].ndim == 4 else []
    return [f[DENSITY], *moving, *(d for k, d in f["observables"].items() if k != "moment_freqs")]


def _kill_in_save(saves: int) -> None:
    k = os.environ.get(KILL_IN_SAVE)
    if k and saves == int(k):
        os.kill(os.getpid(), signal.SIGKILL)


class PDEOutput:
    """``NAME.partial.h5`` of a run of ``solver`` on ``comm`` (every method is collective)."""

    def __init__(self, path: Path, solver, comm, window_bytes: int | None = None):
        window_bytes = WINDOW_BYTES if window_bytes is None else window_bytes
        self.path = Path(path)
        self.partial = partial_path(path)
        self.solver = solver
        self.comm = comm
        c = solver.cells
        self.density = DistributedRows(comm, c.original_cell_index, solver.U.shape[1:], window_bytes=window_bytes)
        self.vertices = DistributedRows(comm, c.original_cell_index, c.X.shape[1:], window_bytes=window_bytes)
        self.moving = solver.mover is not None  # a Lagrangian mesh: its vertices at every saved time
        self.saved = 0
        self._file: h5py.File | None = None  # rank 0, open during a save

    def _bytes(self, rows: DistributedRows) -> int:
        return rows.n * rows.row_size * rows.dtype.itemsize

    def _slice_bytes(self) -> int:
        """The bytes one save appends at most (uncompressed)."""
        return self._bytes(self.density) + (self._bytes(self.vertices) if self.moving else 0)

    def _root(self, fn, *args):
        """``fn(*args)`` on rank 0, its failure raised on every rank (:func:`mfpde.parallel.agree`)."""
        return agree(self.comm, fn, *args, root_only=True)

    # ------------------------------------------------------------------ a fresh file

    def start(self, header: PDEResult) -> None:
        """Create the partial file: ``header`` (a result without density and vertices; its observables
        give the shapes of the rows) and the mesh vertices, under a temporary name renamed at the end."""
        tmp = self.partial.with_name(f"{self.partial.name}.{os.getpid()}.tmp")
        self._root(check_space, self.partial, self._bytes(self.vertices) + self._slice_bytes())
        try:
            try:
                self._root(self._create, tmp, header)
                if not self.moving:
                    self.vertices.gather(self.solver.cells.X, self._sink(VERTICES, None))
            finally:
                self._root(self._close)
            self._root(os.replace, tmp, self.partial)
        except BaseException:
            if self.comm.rank == 0:
                tmp.unlink(missing_ok=True)
            raise

    def _create(self, tmp: Path, header: PDEResult) -> None:
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self._file = f = h5py.File(tmp, "w")
        header.info.written_to(self.path)
        tree = header.to_tree()
        series = tree["observables"]
        write_tree(f, {**tree, "observables": {"moment_freqs": series.pop("moment_freqs")}})
        for name, values in series.items():  # empty, shaped as the rows recorded so far
            _series(f["observables"], name, np.asarray(values)[:0])
        self._rows_dataset(f, DENSITY, self.density, 0)
        self._rows_dataset(f, VERTICES, self.vertices, 0 if self.moving else None)
        describe_file(f)  # names, units and axes, the time axis resizable with the series
        for k, v in header.info.attrs(PDEResult.KIND).items():
            f.attrs[k] = v
        f.attrs["complete"] = False
        f.attrs[SAVED] = 0

    @staticmethod
    def _rows_dataset(f: h5py.File, name: str, rows: DistributedRows, times: int | None = None) -> h5py.Dataset:
        """The dataset of the global rows (with ``times`` rows along a resizable time axis first, if given),
        one window per chunk, gzip level 1."""
        t = () if times is None else (times,)
        return f.create_dataset(name, shape=(*t, *rows.shape), maxshape=(*(None,) * len(t), *rows.shape),
                                chunks=(*(1,) * len(t), min(rows.window_rows, rows.n), *rows.row_shape),
                                dtype=rows.dtype, compression="gzip", compression_opts=1)

    def _sink(self, name: str, k: int | None):
        """Rank 0's writer of a window of rows into dataset ``name`` (at time ``k``, if given)."""
        dataset = self._file[name] if self._file is not None else None

        def write(a: int, block: np.ndarray) -> None:
            dataset[np.s_[a:a + len(block)] if k is None else np.s_[k, a:a + len(block)]] = block
        return write

    def _close(self) -> None:
        if self._file is not None:
            name = self._file.filename
            self._file.close()
            self._file = None
            fsync(name)

    # ------------------------------------------------------------------ a save

    def save(self, row: dict, steps: int, more_bytes: int = 0) -> None:
        """Append the solver's state and the observables ``row`` (name -> value at this time); refused
        (the file as it was) unless the device has room for it and ``more_bytes`` (the companion's step)."""
        k = self.saved
        self._root(check_space, self.partial, self._slice_bytes() + more_bytes)  # a full disk: refused, the file as it was
        with uninterrupted():  # an interrupt under mpirun ends the process after this save
            try:
                self._root(self._open_slice, k)
                self.density.gather(self.solver.U, self._sink(DENSITY, k))
                if self.moving:
                    self.vertices.gather(self.solver.cells.X, self._sink(VERTICES, k))
                self._root(self._commit, k, row, steps, self.solver.mesh_frozen_at)
            finally:
                self._root(self._close)
        self.saved = k + 1

    def _open_slice(self, k: int) -> None:
        self._file = f = h5py.File(self.partial, "r+")
        f[DENSITY].resize(k + 1, axis=0)
        if self.moving:
            f[VERTICES].resize(k + 1, axis=0)

    def _commit(self, k: int, row: dict, steps: int, frozen_at: float | None = None) -> None:
        f = self._file
        f.flush()
        _kill_in_save(k + 1)
        for name, value in row.items():
            d = f["observables"][name]
            d.resize(k + 1, axis=0)
            d[k] = value
        f["pde/steps"][()] = int(steps)
        if frozen_at is not None and FROZEN not in f:
            f[FROZEN] = float(frozen_at)
        f.attrs[SAVED] = k + 1

    # ------------------------------------------------------------------ the end

    def finish(self, provenance_group: dict) -> Path:
        """Mark the partial file complete with the run's provenance and rename it to the final name."""
        self._root(self._complete, provenance_group)
        return self.path

    def _complete(self, provenance_group: dict) -> None:
        with h5py.File(self.partial, "r+") as f:
            del f["provenance"]
            write_tree(f.create_group("provenance"), provenance_group)
            describe_file(f)
            f.attrs["complete"] = True
        fsync(self.partial)
        os.replace(self.partial, self.path)

    # ------------------------------------------------------------------ resume

    def find(self, case) -> tuple[dict, dict] | None:
        """The partial (or finished) file's tree without density and vertices, its time series cut
        to the whole saved states, and its attributes, checked for ``case``; None if there is none
        (or a partial file without a whole state: the run starts again and replaces it)."""
        return self._root(self._find, case)

    def _find(self, case):
        for candidate in (self.partial, self.path):
            if candidate.is_file():
                tree, attrs, shape = _read_saved(candidate)
                if int(attrs.get(SAVED, 1)) == 0:  # killed inside its first save: nothing to resume
                    continue
                check_resume_file(tree, attrs, case, PDEResult.KIND, candidate)
                if not attrs.get("complete") and shape != self.density.shape:
                    raise ResultFileError(f"{candidate}: holds a density of shape {shape}, this mesh has "
                                          f"{self.density.shape}; run without --resume")
                return tree, attrs
        return None

    def restore(self, times, companion: "Companion | None" = None) -> None:
        """Continue from the partial file: drop an interrupted save, set the solver to the last saved
        state; with a companion, write every saved state into it on the way (oldest first)."""
        self.saved = len(times)
        self._root(self._trim)
        frozen_at = self._root(self._frozen_at)
        if self.moving and frozen_at is not None and frozen_at <= times[-1]:  # not of a save the kill tore
            self.solver.mesh_frozen_at = frozen_at
            self.solver.mover.frozen = True
        try:
            self._root(self._open_read)
            for k in range(self.saved) if companion is not None else [self.saved - 1]:
                local = self.density.scatter(lambda a, b: self._file[DENSITY][k, a:b])
                X = self.vertices.scatter(lambda a, b: self._file[VERTICES][k, a:b]) if self.moving else None
                self.solver.set_owned_cells(local, times[k], X)
                if companion is not None:
                    companion.write(times[k])
        finally:
            self._root(self._close)

    def _frozen_at(self) -> float | None:
        with h5py.File(self.partial, "r") as f:
            return float(f[FROZEN][()]) if FROZEN in f else None

    def _trim(self) -> None:
        with h5py.File(self.partial, "r") as f:
            whole_file_layout = f[DENSITY].maxshape[0] is not None
        if whole_file_layout:
            self._upgrade()
        with h5py.File(self.partial, "r+") as f:
            for d in _time_indexed(f):
                if d.shape[0] > self.saved:
                    d.resize(self.saved, axis=0)
            f.attrs[SAVED] = self.saved

    def _upgrade(self) -> None:
        """Rewrite a partial file of the whole-file layout (an mfpde that rewrote the whole file at every
        save: fixed-size datasets) into this one, the density one window of one state at a time."""
        tmp = self.partial.with_name(f"{self.partial.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(self.partial, "r") as old, h5py.File(tmp, "w") as new:
                # attributes (scales: references into the old file) are written anew by describe_file
                for key in old:
                    if key not in ("observables", "pde") and not is_axis_only(old, key):
                        old.copy(old[key], new, key, without_attrs=True)
                for key, item in old["observables"].items():
                    if key == "moment_freqs":
                        old.copy(item, new.require_group("observables"), key, without_attrs=True)
                    else:
                        _series(new.require_group("observables"), key, item[:self.saved])
                for key in old["pde"]:
                    if "/pde/" + key != DENSITY:
                        old.copy(old["pde"][key], new.require_group("pde"), key, without_attrs=True)
                density = self._rows_dataset(new, DENSITY, self.density, self.saved)
                step = self.density.window_rows
                for k in range(self.saved):
                    for a in range(0, self.density.n, step):
                        density[k, a:a + step] = old[DENSITY][k, a:a + step]
                new.attrs.update(old.attrs)
                describe_file(new)
            fsync(tmp)
            os.replace(tmp, self.partial)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _open_read(self) -> None:
        self._file = h5py.File(self.partial, "r")


def _series(group: h5py.Group, name: str, values: np.ndarray) -> None:
    """A time series (one row per saved time, resizable) holding ``values``."""
    row = values.shape[1:]
    group.create_dataset(name, data=values, maxshape=(None, *row),
                         chunks=(max(1, 4096 // max(1, int(np.prod(row)))), *row))


def _read_saved(path: Path) -> tuple[dict, dict, tuple | None]:
    """(tree, attrs, shape of one density slice) of a PDE file, without reading density and vertices:
    ``pde/density`` is an empty stand-in with one row per whole state (what the resume check counts),
    every time series is cut to the ``saved`` whole states."""
    shape = None
    try:
        with h5py.File(path, "r") as f:
            tree, attrs = read_tree(f, frozenset({DENSITY, VERTICES})), dict(f.attrs)
            n = int(attrs.get(SAVED, len(f["observables/t"]) if "observables/t" in f else 0))
            if DENSITY in f:
                shape = f[DENSITY].shape[1:]
                tree["pde"]["density"] = np.empty((min(n, f[DENSITY].shape[0]), 0))
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    for name, series in tree.get("observables", {}).items():
        if name != "moment_freqs":
            tree["observables"][name] = series[:n]
    return tree, attrs, shape


class Companion:
    """The VTX (ADIOS2 ``.bp``) file of the density for ParaView, one step per save, written by all ranks.

    It never ends the run: ADIOS2 aborts the process (``terminate called``) on a write it cannot do, so
    the folder is made and checked and the free space counted (on rank 0, agreed by all) before the
    writer opens and before every step; a companion that cannot be written is dropped with one line on
    stderr and the run goes on without it (the HDF5 result holds everything)."""

    def __init__(self, path: Path, solver, comm):
        # absolute: ADIOS2 reads a leading "~" itself, and then cannot write where it made its folder
        self.path = Path(os.path.abspath(Path(path).with_suffix(".bp")))
        self.comm = comm
        self._writer = None
        geometry = solver.function.function_space.mesh.geometry.x
        self._step_bytes = 2 * comm.allreduce(solver.function.x.array.nbytes + geometry.nbytes)
        try:
            agree(comm, self._check_folder, root_only=True)
            agree(comm, check_space, self.path / "data.0", self._step_bytes, root_only=True)
            from mfpde.pde import fem  # noqa: F401  (the DOLFINx provider, before dolfinx)
            from dolfinx.io import VTXMeshPolicy, VTXWriter

            # the mesh once, or with every step when it moves with the flow
            policy = VTXMeshPolicy.update if solver.mover is not None else VTXMeshPolicy.reuse
            self._writer = VTXWriter(comm, str(self.path), [solver.function], engine="BP4", mesh_policy=policy)
        except Exception as exc:  # noqa: BLE001  (whatever it is, the run goes on)
            self._drop(exc)

    def _check_folder(self) -> None:
        from mfpde.io.paths import check_writable

        self.path.mkdir(parents=True, exist_ok=True)  # ADIOS2's folder (a file there: FileExistsError)
        check_writable(self.path)

    def _drop(self, reason: BaseException) -> None:
        """Write no more steps; say so once."""
        from mfpde.errors import os_error_line

        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass
        if self.comm.rank == 0:
            text = os_error_line(reason) if isinstance(reason, OSError) else str(reason).strip().splitlines()[0]
            print(f"mfpde: warning: the ParaView file {self.path} is not written on ({text}); "
                  "the run goes on, its HDF5 file holds every saved state", file=sys.stderr, flush=True)

    @property
    def step_bytes(self) -> int:
        """What a step may write (0 once dropped)."""
        return self._step_bytes if self._writer is not None else 0

    def write(self, t: float) -> None:
        if self._writer is None:
            return
        try:
            agree(self.comm, check_space, self.path / "data.0", self._step_bytes, root_only=True)
            self._writer.write(t)
        except Exception as exc:  # noqa: BLE001
            self._drop(exc)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:  # noqa: BLE001
                self._drop(exc)
