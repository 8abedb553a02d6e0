"""Resume identity: a ``--resume`` file must have been written with the same
settings as the run that picks it up, key by key (physics hash plus the run settings)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mfpde.errors import CaseError, ResultFileError


def run_settings(case, kind: str) -> dict:
    """The options besides the physics (:meth:`Case.physics_hash`) that change a
    run's numbers: a resumed run must have the same, key by key."""
    if kind == "pde":
        o = case.pde
        mesh = None
        if o.mesh:
            mesh = hashlib.sha256(Path(o.mesh).read_bytes()).hexdigest()[:16]
        return {"pde.n": None if o.mesh else o.n, "pde.mesh": mesh, "pde.degree": o.degree,
                "pde.cell": None if o.mesh else o.cell, "pde.cfl": o.cfl, "pde.save_every": o.save_every,
                "pde.moment_max": o.moment_max, "pde.petsc_options": o.petsc_options,
                "pde.time_scheme": o.time_scheme, "pde.grading": o.grading,
                "pde.mesh_motion": o.mesh_motion}
    if kind == "particles":
        o = case.particles
        return {"particles.dt": o.dt, "particles.integrator": o.integrator,
                "particles.save_every": o.save_every, "pde.moment_max": case.pde.moment_max}
    if kind == "limit":  # the rule (kind, points) is checked against the file's own datasets
        o = case.limit
        return {"limit.dt": o.dt, "limit.save_every": o.save_every, "pde.moment_max": case.pde.moment_max}
    return {}


def settings_json(case, kind: str) -> str:
    return json.dumps(run_settings(case, kind), sort_keys=True)


_RESUME_KEYS = {
    "pde": ("observables/t", "observables/F", "observables/risk", "observables/moments", "observables/mass",
            "observables/min_rho", "pde/density", "pde/steps"),
    "particles": ("observables/t", "observables/F", "observables/risk", "observables/moments",
                  "particles/theta", "particles/N", "particles/seed", "particles/step", "particles/rng_state"),
}


def _lookup(tree: dict, key: str):
    for part in key.split("/"):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def check_resume_file(tree: dict, attrs: dict, case, kind: str, path: Path) -> None:
    """``path`` can be continued by a ``kind`` run of ``case``: the same physics,
    the same settings (:func:`run_settings`), and every dataset a restart needs."""
    hint = "remove it or run without --resume"
    if attrs.get("kind") != kind:
        raise ResultFileError(f"{path}: is not a {kind} run (kind = {attrs.get('kind')!r}); {hint}")
    if attrs.get("case_hash") != case.physics_hash():
        raise ResultFileError(f"{path}: was written for a different case (expert, data, init or dynamics "
                              f"changed); {hint}")
    for key in _RESUME_KEYS[kind]:
        if _lookup(tree, key) is None:
            raise ResultFileError(f"{path}: damaged, /{key} is missing; {hint}")
    t = _lookup(tree, "observables/t")
    saved = _lookup(tree, "pde/density" if kind == "pde" else "particles/theta")
    if getattr(t, "ndim", 0) != 1 or len(t) == 0 or len(saved) != len(t):
        raise ResultFileError(f"{path}: damaged, /observables/t does not match the saved states; {hint}")
    check_settings(attrs.get("run_settings"), case, kind, path)


def check_settings(stored: str | None, case, kind: str, path: Path) -> None:
    """The settings a file was written with (``run_settings``, JSON) are this run's, key by key:
    else a :class:`CaseError` naming the first key that changed.  None: written before settings
    were recorded (nothing to check)."""
    hint = "remove it or run without --resume"
    if stored is None:
        return
    stored = json.loads(stored)
    now = json.loads(settings_json(case, kind))
    for key in sorted(set(stored) | set(now)):
        if stored.get(key) != now.get(key):
            raise CaseError(key, f"{path.name} was written with {stored.get(key)!r}, this run has "
                                 f"{now.get(key)!r}; a resumed run must keep it ({hint})")


def read_resume_file(path: Path, case, kind: str):
    """(tree, attrs) of the partial file of ``path``, or of ``path`` itself
    when the run is finished, checked by :func:`check_resume_file`; None when
    there is neither (the run starts from t = 0)."""
    from mfpde.io.hdf5 import partial_path, read_run

    for candidate in (partial_path(path), Path(path)):
        if candidate.is_file():
            tree, attrs = read_run(candidate)
            check_resume_file(tree, attrs, case, kind, candidate)
            return tree, attrs
    return None
