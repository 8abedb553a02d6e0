"""The case as run, every default filled in: the ``/case_resolved`` dataset of every result file.

``/case`` keeps the case file as given (with the command line's overrides);
``/case_resolved`` is the same case after validation: every section with every
key, defaults included (the PDE's degree, cell, solver options, the particles'
integrator, ...), the values that ran in place of the case's where the command
line or the solver chose them (``n``, ``seed``, the ``--n``/``--seeds`` of a
study), and ``[output] directory``, the directory the file was written to
(``--out`` or the case's).  It reads back with :func:`tomllib.loads`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

SECTIONS = ("dynamics", "init", "pde", "particles", "limit", "study", "regimes")


def _toml_ready(value):
    """None (no TOML value) left out, tuples as lists, paths as text."""
    if isinstance(value, dict):
        return {str(k): _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def resolved_table(case, table: dict | None = None, ran: dict | None = None) -> dict:
    """The case with every option filled in; the sections of ``table`` (the case as run: command-line
    overrides), then of ``ran`` (what the solver chose), win over the case's."""
    out = {"name": case.name, "expert": copy.deepcopy(case.table.get("expert", {}))}
    out["expert"].setdefault("d", int(case.d))
    out["data"] = copy.deepcopy(case.table.get("data", {}))
    for name in SECTIONS:
        section = getattr(case, name, None)
        out[name] = asdict(section) if section is not None else {}
    for given in (table or {}, ran or {}):
        for name, section in given.items():
            if name in SECTIONS and isinstance(section, dict):
                out[name].update(copy.deepcopy(section))
    out["output"] = {"directory": str(case.output_dir)}
    return _toml_ready(out)


def with_output_directory(resolved: dict, path) -> dict:
    """``resolved`` with ``[output] directory`` the directory of ``path`` (where the file went)."""
    if not resolved:
        return resolved
    out = dict(resolved)
    out["output"] = {"directory": str(Path(path).resolve().parent)}
    return out
