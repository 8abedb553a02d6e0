"""The training data: K points ``(x_k, y_k)`` with weights ``w_k > 0``.

``[data]`` gives ``x`` with either ``y`` (explicit targets) or
``teacher_theta`` (``y_k`` = mean of the expert over the teacher parameters,
a realizable target), or ``file`` (CSV with columns ``x`` or ``x0, x1, ...``,
``y``, optional ``w``; or ``.h5``/``.npz`` with arrays ``x``, ``y``, ``w``).
Weights default to ``1/K``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfpde.config.keys import _check_keys
from mfpde.errors import CaseError


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # (K, m)
    y: np.ndarray  # (K,)
    w: np.ndarray  # (K,)

    @property
    def K(self) -> int:
        return self.y.shape[0]

    @property
    def m(self) -> int:
        return self.x.shape[1]


def _has_bool(value) -> bool:
    return isinstance(value, bool) or (isinstance(value, list) and any(map(_has_bool, value)))


def _array(value, key: str, ndim: tuple[int, ...]) -> np.ndarray:
    if _has_bool(value):
        raise CaseError(key, "must be numbers, not true/false")
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise CaseError(key, "must be numbers (a list, or a list of lists of equal length)") from None
    if a.ndim not in ndim or a.size == 0:
        raise CaseError(key, f"must be a non-empty array with {' or '.join(map(str, ndim))} dimension(s), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a.ravel()))[0])
        raise CaseError(key, f"contains a non-finite value (NaN or inf) at flat index {bad}")
    return a


def _read_file(path: Path, key: str) -> dict:
    """Columns x (or x0, x1, ...), y, optional w, from CSV, HDF5 or NPZ."""
    if not path.is_file():
        raise CaseError(key, f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows:
                raise CaseError(key, f"{path.name}: no data rows")
            cols = {name.strip(): [r[name] for r in rows] for name in rows[0]}
            xcols = ["x"] if "x" in cols else sorted((c for c in cols if c[:1] == "x" and c[1:].isdigit()), key=lambda c: int(c[1:]))
            if not xcols or "y" not in cols:
                raise CaseError(key, f"{path.name}: needs columns 'x' (or x0, x1, ...) and 'y', found {sorted(cols)}")
            try:
                out = {"x": np.array([[float(v) for v in cols[c]] for c in xcols]).T,
                       "y": np.array([float(v) for v in cols["y"]])}
                if "w" in cols:
                    out["w"] = np.array([float(v) for v in cols["w"]])
            except ValueError as exc:
                raise CaseError(key, f"{path.name}: not a number: {exc}") from None
            return out
        if suffix == ".npz":
            with np.load(path) as z:
                return {k: z[k] for k in ("x", "y", "w") if k in z}
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                return {k: f[k][()] for k in ("x", "y", "w") if k in f}
    except CaseError:
        raise
    except Exception as exc:  # unreadable file of a known type
        raise CaseError(key, f"cannot read {path.name}: {exc}") from None
    raise CaseError(key, f"unsupported data file type {suffix!r} (use .csv, .h5 or .npz)")


def load_data(table: dict, expert, base_dir: str | Path = ".") -> Dataset:
    """Validate ``[data]`` and build the data set (targets from a teacher if asked)."""
    _check_keys(table, {"x", "y", "w", "teacher_theta", "file"}, "data")
    src = dict(table)
    if "file" in src:
        if "x" in src or "y" in src:
            raise CaseError("data.file", "give either a file or inline x/y, not both")
        src.update(_read_file(Path(base_dir) / str(src.pop("file")), "data.file"))
    if "x" not in src:
        raise CaseError("data.x", "missing (give x with y or teacher_theta, or a file)")
    x = _array(src["x"], "data.x", (1, 2))
    x = x[:, None] if x.ndim == 1 else x
    K = x.shape[0]
    if expert.m is not None and x.shape[1] < expert.m:
        raise CaseError("data.x", f"the expert reads x[{expert.m - 1}], but the data have {x.shape[1]} input column(s)")

    if ("y" in src) == ("teacher_theta" in src):
        raise CaseError("data.y", "give exactly one of y and teacher_theta")
    if "y" in src:
        y = _array(src["y"], "data.y", (1,))
    else:
        teacher = _array(src["teacher_theta"], "data.teacher_theta", (1, 2))
        teacher = teacher[None, :] if teacher.ndim == 1 else teacher
        if teacher.shape[1] != expert.d:
            raise CaseError("data.teacher_theta", f"each teacher needs d = {expert.d} angles, got {teacher.shape[1]}")
        phi, _ = expert.evaluate(x, teacher)
        y = phi.mean(axis=1)
    if y.shape[0] != K:
        raise CaseError("data.y", f"has {y.shape[0]} values but data.x has {K} points")

    if "w" in src:
        w = _array(src["w"], "data.w", (1,))
        if w.shape[0] != K:
            raise CaseError("data.w", f"has {w.shape[0]} values but data.x has {K} points")
        if np.any(w <= 0):
            raise CaseError("data.w", f"weights must be > 0, got {w[w <= 0][0]} at index {int(np.flatnonzero(w <= 0)[0])}")
    else:
        w = np.full(K, 1.0 / K)
    return Dataset(x=x, y=y, w=w)
