"""Compare every HDF5 result file of two output trees, dataset by dataset, to the bit.

    python scripts/compare_outputs.py BEFORE_DIR AFTER_DIR [--ignore-attrs a,b]

Used to check that a refactoring leaves results identical: every ``*.h5`` under BEFORE_DIR must exist
under AFTER_DIR with the same datasets (same dtype, shape and bytes) and the same attributes, except the
provenance that changes from run to run (wall time, creation time, git revision, host, ...).  Datasets
or attributes present only in AFTER are listed (a newer version may add them) but are not failures.
Prints one line per file and a summary; exit status 1 if any file differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

PROVENANCE = {"wall_time", "created", "git_revision", "hostname", "host", "date", "started", "finished",
              "mfpde_version", "python", "platform", "timestamp", "time", "user", "out_dir", "command"}


def _items(f: h5py.File) -> dict:
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    out[""] = f
    return out


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return a.tobytes() == b.tobytes()
    return bool(np.all(a == b))


def compare_file(p: Path, q: Path, ignore: set[str]) -> tuple[list[str], list[str]]:
    diffs, added = [], []
    with h5py.File(p, "r") as f, h5py.File(q, "r") as g:
        A, B = _items(f), _items(g)
        for name, obj in A.items():
            if name not in B:
                diffs.append(f"{name}: missing")
                continue
            other = B[name]
            if name == "provenance" or name.startswith("provenance/"):
                continue  # host, git revision, wall time, versions: of the run, not of the result
            if isinstance(obj, h5py.Dataset):
                if not isinstance(other, h5py.Dataset) or not _same(obj[()], other[()]):
                    diffs.append(f"{name}: values differ")
            for key, value in obj.attrs.items():
                if key in ignore:
                    continue
                if key not in other.attrs:
                    diffs.append(f"{name}@{key}: missing")
                elif not _same(value, other.attrs[key]):
                    diffs.append(f"{name}@{key}: {value!r:.60} != {other.attrs[key]!r:.60}")
        added = sorted(set(B) - set(A))
    return diffs, added


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--ignore-attrs", default="", help="more attribute names to ignore, comma separated")
    args = ap.parse_args(argv)
    ignore = PROVENANCE | {a for a in args.ignore_attrs.split(",") if a}
    files = sorted(args.before.rglob("*.h5"))
    bad = 0
    for p in files:
        rel = p.relative_to(args.before)
        q = args.after / rel
        if not q.exists():
            print(f"MISSING {rel}")
            bad += 1
            continue
        diffs, added = compare_file(p, q, ignore)
        if diffs:
            bad += 1
            print(f"DIFFERS {rel}: " + "; ".join(diffs[:6]) + (f" (+{len(diffs) - 6})" if len(diffs) > 6 else ""))
        else:
            print(f"same    {rel}" + (f" (added: {', '.join(added[:5])}{' ...' if len(added) > 5 else ''})"
                                      if added else ""))
    print(f"{len(files) - bad} of {len(files)} files identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
