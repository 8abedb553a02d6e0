"""HDF5 result files (DESIGN section 7), readable with plain h5py.

A file is always written whole to ``NAME.tmp`` and renamed (``os.replace`` is
atomic on POSIX), so a crash never leaves a truncated file under a final
name.  While a run is in progress its saved states live in
``NAME.partial.h5`` (a limit run rewrites it atomically at every save; PDE
and particle runs append to it, see :mod:`mfpde.io.pde_writer` and
:mod:`mfpde.io.particle_writer`); ``--resume`` starts from there,
and the finished run replaces it with ``NAME``.

Layout written by :func:`write_run` from a nested dict: every dict is a group,
every array or scalar a dataset, strings become variable-length UTF-8 string datasets;
every dataset gets ``long_name``, ``units`` and its axes as dimension scales (:mod:`mfpde.io.layout`).  Root
attributes: ``kind`` (pde, particles, study), ``complete``, ``case_name``,
``case_hash``, ``mfpde_version``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from mfpde.errors import ResultFileError
from mfpde.io.layout import describe_file, is_axis_only


#: what a write must leave free on its device: HDF5 and ADIOS2 end the process (abort, segfault) on a
#: write that meets a full disk, so a save that would not fit is refused before it starts
SPACE_MARGIN = 1 << 20


def check_space(path: str | Path, nbytes: int) -> None:
    """Raise ``OSError(ENOSPC)`` naming ``path`` unless its folder's device has ``nbytes`` free and the margin."""
    import errno
    import shutil

    from mfpde.errors import no_space_line

    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < int(nbytes) + SPACE_MARGIN:
        raise OSError(errno.ENOSPC, f"{no_space_line(path)} ({free} bytes free, a save needs about {int(nbytes)} "
                                    f"and {SPACE_MARGIN} to spare)", str(path))


def fsync(path: str | Path) -> None:
    """Push a closed file's data to the disk (what a rename after it relies on)."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """Open ``path.tmp`` for writing; on success fsync and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # unique: two runs never share it
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tree(group: h5py.Group, tree: dict) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            write_tree(group.create_group(key), value)
        elif isinstance(value, str):
            group.create_dataset(key, data=value, dtype=h5py.string_dtype())
        elif value is None:
            continue
        else:
            arr = np.asarray(value)
            opts = {"compression": "gzip", "compression_opts": 1} if arr.size > 4096 else {}
            group.create_dataset(key, data=arr, **opts)


def write_run(path: str | Path, tree: dict, attrs: dict, describe: bool = True) -> Path:
    """Write a whole result file atomically; with ``describe`` every dataset gets its names, units and
    axes (:mod:`mfpde.io.layout`; about 0.1 s, left out of the restart points rewritten at every save)."""
    with atomic_h5(path) as f:
        write_tree(f, tree)
        if describe:
            describe_file(f)
        for k, v in attrs.items():
            f.attrs[k] = v
    return Path(path)


def read_tree(group: h5py.Group, skip: frozenset = frozenset()) -> dict:
    """The group as a nested dict; the datasets named in ``skip`` (full names, ``/pde/density``) are left out."""
    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = read_tree(item, skip)
        elif item.name in skip or is_axis_only(group, key):
            continue
        else:
            value = item[()]
            out[key] = value.decode() if isinstance(value, bytes) else value
    return out


def read_run(path: str | Path) -> tuple[dict, dict]:
    """(tree, root attributes) of a result file; a clear error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            return read_tree(f), dict(f.attrs)
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({exc})") from None


def partial_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".partial" + path.suffix)


def _git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def provenance(mpi_size: int, wall_time: float, extra: dict | None = None) -> dict:
    """Package versions, MPI size, git revision, wall time, host: the /provenance group."""
    versions = {}
    for pkg in ("mfpde", "dolfinx-solver-real", "fenics-basix", "pennylane", "numpy", "scipy", "h5py", "pot"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    info = {
        "versions": json.dumps(versions),
        "mpi_size": int(mpi_size),
        "git_revision": _git_revision(),
        "wall_time_s": float(wall_time),
        "python": platform.python_version(),
        "host": platform.node(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    info.update(extra or {})
    return info
