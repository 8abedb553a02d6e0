"""Where output goes: writable directories and caches."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mfpde.errors import ResultFileError


def output_dir(case, out_dir=None) -> Path:
    """The folder a run writes to: ``out_dir`` (``--out``) or ``[output] directory``, with a leading
    ``~`` expanded (a quoted ``--out '~/x'`` reaches the program unexpanded: without this the HDF5
    file went to ``./~/x`` and ADIOS2, which expands it, wrote the ParaView file to ``$HOME/x``)."""
    return Path(out_dir if out_dir is not None else case.output_dir).expanduser()


def check_writable(directory: str | Path) -> Path:
    """Create ``directory`` if needed and make sure a file can be written in it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".mfpde-probe-"):
            pass
    except OSError as exc:
        raise ResultFileError(f"{directory}: cannot write the output there ({exc.strerror or exc}); "
                              "choose another --out") from None
    return directory


def _can_write(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def use_writable_cache() -> Path:
    """Point the FFCx/DOLFINx JIT cache and matplotlib at a writable folder.

    Both honour ``XDG_CACHE_HOME`` (default ``~/.cache``); when it cannot be
    written (a read-only HOME), ``XDG_CACHE_HOME`` is set to a folder of the
    temporary directory, and matplotlib's ``MPLCONFIGDIR`` likewise.  Call it
    before DOLFINx or matplotlib is imported.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    if not _can_write(cache):
        cache = Path(tempfile.gettempdir()) / f"mfpde-cache-{os.getuid()}"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["XDG_CACHE_HOME"] = str(cache)
    if "MPLCONFIGDIR" not in os.environ:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
        if not _can_write(config):
            os.environ["MPLCONFIGDIR"] = str(cache / "matplotlib")
    return cache


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def result_path(case, kind: str, out_dir=None, *, n: int | None = None, seed: int | None = None) -> Path:
    """The result file of a run of ``kind`` (docs/design.md section 7): ``NAME.pde.h5``, ``NAME.limit.h5``,
    ``NAME.study.h5``, ``NAME.regimes.h5``, ``NAME.particles.N<n>.seed<seed>.h5``, in :func:`output_dir`."""
    if kind == "particles":
        name = f"{case.name}.particles.N{n}.seed{seed}.h5"
    elif kind in ("pde", "limit", "study", "regimes"):
        name = f"{case.name}.{kind}.h5"
    else:
        raise ValueError(f"no result file of kind {kind!r}")
    return output_dir(case, out_dir) / name
