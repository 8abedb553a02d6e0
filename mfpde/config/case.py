"""A case: one TOML file (DESIGN section 6), parsed and validated before any work.

``load_case(path)`` reads the file, ``case_from_dict(table)`` builds a case
programmatically (no file needed), ``default_case()`` is the built-in default.
Every problem is a :class:`~mfpde.errors.CaseError` whose message starts with
the key, e.g. ``dynamics.t_end: must be > 0, got -1.0``.

Validation goes as far as building the expert and the data set, so a bad gate,
a missing data file or NaN targets stop the run before anything is computed
or written.
"""

from __future__ import annotations
import copy
import dataclasses
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from mfpde.config.keys import _check_keys, _choice, _int_list, _integer, _number, _require
from mfpde.config.rules import (CELLS, DISTINCT_N, INTEGRATORS, MESH_MOTIONS, MINIMUM, SCALINGS,
                                TIME_SCHEME_CHOICES, cell_type, check_degree, check_tau, default_discretization)
from mfpde.errors import CaseError
from pathlib import Path
from typing import Any


PDE_MIN_N = MINIMUM["pde.n"]   # cells per direction: the fewest a periodic mesh can have


NAME_MAX = 100         # characters of a case name (a file stem)


_NAME = re.compile(r"\w[\w.+-]*")


MAX_THETA = 10**5      # parameters of an expert (theta[i], i < MAX_THETA)


class _Section:
    """A case section: its keys, each with the one rule that checks it (``KEYS``: key ->
    ``convert(value, dotted_key, ctx)``), and the rules that tie keys together (:meth:`check`).

    The case file (:meth:`parse`) and the overrides of a command line or of a script
    (:meth:`Case.with_overrides`) go through :meth:`updated`, so a value is refused by the
    same rule with the same message wherever it comes from.
    """

    SECTION = ""
    KEYS: dict = {}

    @classmethod
    def defaults(cls, ctx: dict):
        return cls()

    def updated(self, values: dict, ctx: dict):
        """A copy with ``values`` (keys of this section) set; the input is not changed.
        With ``ctx["reset"]`` a value None puts the key back to its default."""
        _check_keys(values, set(self.KEYS), self.SECTION)
        o = dataclasses.replace(self)
        for key, convert in self.KEYS.items():
            if key not in values:
                continue
            if values[key] is None and ctx.get("reset"):
                setattr(o, key, getattr(self.defaults(ctx), key))
            else:
                setattr(o, key, convert(values[key], f"{self.SECTION}.{key}", ctx))
        o.check(values, ctx)
        return o

    def check(self, values: dict, ctx: dict) -> None:
        """The rules between keys (none by default)."""


def _positive_number(v, key, ctx):
    return _number(v, key, positive=True)


def _at_least(minimum: int):
    return lambda v, key, ctx: _integer(v, key, minimum=minimum)


def _count(key: str):
    """An integer key at least :data:`mfpde.config.rules.MINIMUM` [key]."""
    return _at_least(MINIMUM[key])


def _one_of(choices: tuple):
    return lambda v, key, ctx: _choice(v, key, choices)


@dataclass
class Dynamics(_Section):
    """``[dynamics]``: time horizon, learning rate, noise temperature, scaling.

    ``scaling`` (DESIGN 10.4): ``"mean-field"`` (section 1) or ``"ntk"`` (the
    lazy ``N^{-1/2}`` scaling, noiseless: ``tau > 0`` is refused with it).
    """

    t_end: float = 1.0
    lr: float = 1.0
    tau: float = 0.0
    scaling: str = "mean-field"

    SECTION = "dynamics"
    KEYS = {"t_end": _positive_number, "lr": _positive_number,
            "tau": lambda v, key, ctx: _number(v, key, nonnegative=True), "scaling": _one_of(SCALINGS)}

    @classmethod
    def parse(cls, t: dict) -> "Dynamics":
        _check_keys(t, set(cls.KEYS), "dynamics")
        _require(t, "t_end", "dynamics")
        return cls().updated(t, {})

    def check(self, values: dict, ctx: dict) -> None:
        if self.scaling == "ntk":
            check_tau("scaling ntk", self.tau)


@dataclass
class InitSpec:
    """``[init]``: rho_0, uniform, a product of von Mises densities, a box or a wrapped normal."""

    kind: str = "uniform"
    mean: list[float] | None = None
    kappa: list[float] | None = None
    lower: list[float] | None = None
    upper: list[float] | None = None
    std: list[float] | None = None

    # the keys of each kind, with their defaults (None: required)
    KEYS = {"uniform": {}, "vonmises": {"mean": 0.0, "kappa": 1.0},
            "box": {"lower": None, "upper": None}, "normal": {"mean": 0.0, "std": None}}

    @classmethod
    def parse(cls, t: dict, d: int) -> "InitSpec":
        _check_keys(t, {"kind", "mean", "kappa", "lower", "upper", "std"}, "init")
        kind = _choice(t.get("kind", "uniform"), "init.kind", tuple(cls.KEYS))
        for key in t:
            if key != "kind" and key not in cls.KEYS[kind]:
                users = " or ".join(repr(k) for k, keys in cls.KEYS.items() if key in keys)
                raise CaseError(f"init.{key}", f"only used with kind = {users}, not {kind!r}")

        def vec(key: str, default: float | None, **kw) -> list[float]:
            if key not in t and default is None:
                raise CaseError(f"init.{key}", f"missing (kind = {kind!r} needs it)")
            v = t.get(key, default)
            v = [v] * d if not isinstance(v, list) else v
            if len(v) != d:
                raise CaseError(f"init.{key}", f"needs {d} entries (one per theta coordinate), got {len(v)}")
            return [_number(x, f"init.{key}[{i}]", **kw) for i, x in enumerate(v)]

        if kind == "uniform":
            return cls(kind)
        if kind == "vonmises":
            return cls(kind, _angles(vec("mean", 0.0), "init.mean"), vec("kappa", 1.0, nonnegative=True))
        if kind == "normal":
            return cls(kind, mean=_angles(vec("mean", 0.0), "init.mean"), std=vec("std", None, positive=True))
        lower, upper = vec("lower", None), vec("upper", None)
        for i, (lo, up) in enumerate(zip(lower, upper)):
            if not lo < up:
                raise CaseError(f"init.upper[{i}]", f"must be > lower[{i}] = {lo}, got {up}")
            if up - lo > 2 * math.pi:
                raise CaseError(f"init.upper[{i}]", f"the width upper - lower must be <= 2 pi, got {up - lo}")
        return cls(kind, lower=lower, upper=upper)


MAX_ANGLE = 1e6        # |init.mean|: beyond it an angle's value mod 2 pi is lost to round-off


def _angles(values: list[float], key: str) -> list[float]:
    for i, v in enumerate(values):
        if abs(v) > MAX_ANGLE:
            raise CaseError(f"{key}[{i}]", f"is an angle: |value| <= {MAX_ANGLE:g} (beyond, its value mod 2 pi "
                                           f"is lost to round-off), got {v:g}")
    return values


@dataclass
class PDEOptions(_Section):
    """``[pde]``: mesh, element degree, CFL number, save interval, solver options."""

    n: int = 64
    degree: int = 1
    cell: str = "simplex"
    cfl: float = 0.25
    save_every: float | None = None
    mesh: str | None = None
    moment_max: int = 2
    petsc_options: dict = field(default_factory=dict)
    grading: float = 1.0
    time_scheme: str = "auto"
    mesh_motion: str = "fixed"

    SECTION = "pde"
    KEYS = {
        "grading": lambda v, key, ctx: _mesh_grading(v),
        "n": _count("pde.n"),
        "degree": _count("pde.degree"),
        "cell": _one_of(CELLS),
        "time_scheme": _one_of(TIME_SCHEME_CHOICES),
        "mesh_motion": _one_of(MESH_MOTIONS),
        "cfl": lambda v, key, ctx: _cfl(v),
        "save_every": _positive_number,
        "mesh": lambda v, key, ctx: _mesh_file(v, ctx["base_dir"]),
        "moment_max": _count("pde.moment_max"),
        "petsc_options": lambda v, key, ctx: _petsc_options(v),
    }

    @classmethod
    def defaults(cls, ctx: dict) -> "PDEOptions":
        return cls(**default_discretization(ctx.get("d")))

    @classmethod
    def parse(cls, t: dict, base_dir: Path, d: int | None = None) -> "PDEOptions":
        ctx = {"base_dir": Path(base_dir), "d": d}
        return cls.defaults(ctx).updated(t, ctx)

    def check(self, values: dict, ctx: dict) -> None:
        if self.grading > 1.0 and self.mesh:
            raise CaseError("pde.grading", "grades the built-in structured mesh; remove it or pde.mesh")
        if "degree" in values or "cell" in values:
            check_degree(cell_type(self.cell, ctx.get("d")), self.degree)
        if self.mesh_motion == "lagrangian" and self.grading > 1.0:
            raise CaseError("pde.grading", "a Lagrangian mesh follows the support itself: "
                            "grading needs mesh_motion = \"fixed\"")
        if "n" in values and values["n"] is not None and self.mesh:
            raise CaseError("pde.n", "the mesh comes from pde.mesh; give pde.n or pde.mesh, not both")


def _mesh_grading(value) -> float:
    """``[pde] grading``: cells this many times smaller where the support sweeps (1: uniform mesh)."""
    g = _number(value, "pde.grading")
    if g < 1.0:
        raise CaseError("pde.grading", f"must be >= 1 (1 is the uniform mesh), got {g}")
    return g


def _cfl(value) -> float:
    cfl = _number(value, "pde.cfl", positive=True)
    if cfl > 1:
        raise CaseError("pde.cfl", f"must be <= 1, got {cfl}")
    return cfl


def _mesh_file(value, base_dir: Path) -> str:
    path = (Path(base_dir) / str(value)).resolve()
    if not path.is_file():
        raise CaseError("pde.mesh", f"mesh file not found: {path}")
    return str(path)


def _petsc_options(value) -> dict:
    if not isinstance(value, dict):
        raise CaseError("pde.petsc_options", "must be a table of PETSc options")
    for k, v in value.items():
        if isinstance(v, (list, dict)) or not re.fullmatch(r"[A-Za-z0-9_.+-]*", str(v)):
            raise CaseError(f"pde.petsc_options.{k}", f"must be a word or a number, got {v!r}")
    return {str(k): v for k, v in value.items()}


@dataclass
class ParticleOptions(_Section):
    """``[particles]``: number of experts, seed, step, integrator, save interval.

    ``seeds`` (DESIGN section 6) is the number of seeds a study uses when
    ``[study] seeds`` is not given.
    """

    n: int = 256
    seed: int = 0
    seeds: int | None = None
    dt: float = 0.01
    integrator: str = "rk4"
    save_every: float | None = None

    SECTION = "particles"
    KEYS = {"n": _count("particles.n"), "seed": _count("particles.seed"), "seeds": _count("particles.seeds"),
            "dt": _positive_number, "integrator": _one_of(INTEGRATORS), "save_every": _positive_number}

    @classmethod
    def parse(cls, t: dict) -> "ParticleOptions":
        return cls().updated(t, {})


@dataclass
class LimitOptions(_Section):
    """``[limit]``: the quadrature rule of ``mfpde limit`` (docs/limit.md)."""

    points: int = 16384
    rule: str = "auto"
    dt: float = 0.01
    save_every: float | None = None
    clt_points: int = 4096

    SECTION = "limit"
    KEYS = {"points": _count("limit.points"), "rule": lambda v, key, ctx: _choice(v, key, _rules()),
            "dt": _positive_number, "save_every": _positive_number, "clt_points": _count("limit.clt_points")}

    @classmethod
    def parse(cls, t: dict) -> "LimitOptions":
        return cls().updated(t, {})


def _rules() -> tuple:
    from mfpde.numerics.quadrature import RULES

    return RULES


def _n_list(value, key: str, ctx) -> list[int]:
    """At least :data:`mfpde.config.rules.DISTINCT_N` distinct particle numbers, sorted."""
    ns = sorted(set(_int_list(value, key, minimum=MINIMUM[key])))
    if len(ns) < DISTINCT_N:
        raise CaseError(key, f"needs at least two distinct values to fit a rate, got {ns}")
    return ns


@dataclass
class StudyOptions(_Section):
    """``[study]``: the N values and the number of seeds of a propagation-of-chaos study."""

    n: list[int] = field(default_factory=lambda: [2**k for k in range(6, 15)])
    seeds: int = 8
    reference: str = "auto"   # "pde", "limit", or "auto" (the limit when d > 3)

    SECTION = "study"
    KEYS = {"n": _n_list, "seeds": _count("study.seeds"), "reference": _one_of(("auto", "pde", "limit"))}

    @classmethod
    def parse(cls, t: dict, default_seeds: int | None = None) -> "StudyOptions":
        o = cls() if default_seeds is None else cls(seeds=default_seeds)
        return o.updated(t, {})


@dataclass
class RegimesOptions(_Section):
    """``[regimes]``: the N values and seeds of ``mfpde regimes`` (DESIGN 10.4)."""

    n: list[int] = field(default_factory=lambda: [64, 256, 1024, 4096])
    seeds: int = 4

    SECTION = "regimes"
    KEYS = {"n": _n_list, "seeds": _count("regimes.seeds")}

    @classmethod
    def parse(cls, t: dict) -> "RegimesOptions":
        return cls().updated(t, {})


_TOP_KEYS = {"name", "expert", "data", "init", "dynamics", "pde", "particles", "study", "regimes", "limit",
             "output"}


@dataclass
class Case:
    """A validated case: the expert and the data set are built, options filled in."""

    name: str
    table: dict               # the case as a TOML-like table (for /case and hashing)
    base_dir: Path
    expert: Any               # mfpde.experts.Expert
    data: Any                 # mfpde.config.data.Dataset
    init: InitSpec
    dynamics: Dynamics
    pde: PDEOptions
    particles: ParticleOptions
    study: StudyOptions
    output_dir: str
    regimes: RegimesOptions = field(default_factory=RegimesOptions)
    limit: LimitOptions = field(default_factory=LimitOptions)

    @property
    def d(self) -> int:
        return self.expert.d

    def save_times(self, every: float | None) -> list[float]:
        """Saved times 0, every, 2 every, ..., t_end (t_end always included)."""
        t_end = self.dynamics.t_end
        every = every or t_end / 8
        count = int(math.floor(t_end / every + 1e-9))
        times = [i * every for i in range(count + 1)]
        if t_end - times[-1] > 1e-9 * t_end:
            times.append(t_end)
        else:
            times[-1] = t_end
        return times

    def to_toml(self) -> str:
        return dumps_toml(self.table)

    def with_overrides(self, **sections: dict) -> "Case":
        """A new case with keys of its sections set, e.g. ``case.with_overrides(pde={"n": 32})``
        (the command line's ``--n 32``); the input case is not changed.

        Each value goes through the rule of its key in the case file (:meth:`_Section.updated`):
        the same checks and the same messages.  A value None puts the key back to its default
        (:func:`given` drops the options that were not given).  The table (``/case`` of the
        result files) records the values set.
        """
        unknown = sorted(set(sections) - set(_OVERRIDABLE))
        if unknown:
            raise CaseError(unknown[0], f"not a section that can be overridden ({', '.join(_OVERRIDABLE)})")
        table = copy.deepcopy(self.table)
        ctx = {"base_dir": self.base_dir, "d": self.d, "reset": True}
        changed = {}
        for name, values in sections.items():
            if not values:
                continue
            changed[name] = getattr(self, name).updated(dict(values), ctx)
            section = table.setdefault(name, {})
            for key, value in values.items():
                if value is None:
                    section.pop(key, None)
                else:
                    section[key] = value
        return dataclasses.replace(self, table=table, **changed)

    def physics_hash(self) -> str:
        """Hash of what determines the dynamics (expert, data, init, dynamics):
        runs with the same hash can be compared."""
        data = self.data
        payload = {
            "expert": self.table.get("expert", {}),
            "init": self.table.get("init", {}),
            "dynamics": {"t_end": self.dynamics.t_end, "lr": self.dynamics.lr, "tau": self.dynamics.tau},
            "data": hashlib.sha256(data.x.tobytes() + data.y.tobytes() + data.w.tobytes()).hexdigest(),
        }
        if self.dynamics.scaling != "mean-field":  # mean-field hashes as before the key existed
            payload["dynamics"]["scaling"] = self.dynamics.scaling
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_OVERRIDABLE = ("dynamics", "pde", "particles", "limit", "study", "regimes")


def given(**values) -> dict:
    """The options that were given (not None): what :meth:`Case.with_overrides` sets."""
    return {k: v for k, v in values.items() if v is not None}


def case_from_dict(table: dict, base_dir: str | Path = ".", *, expert=None) -> Case:
    """Validate a case table (the parsed TOML) and build its expert and data.

    Parameters
    ----------
    table : dict
        The case as a table: the keys of a case file (docs/case-file.md).
    base_dir : str or Path
        Where relative paths of the table (data files, meshes) start.
    expert : mfpde.experts.Expert, optional
        Any expert object (for example a user's classical expert built in a script)
        or a PennyLane QNode ``f(x, theta)`` (translated into gate rows,
        :mod:`mfpde.experts.qnode`); it replaces ``[expert]``.

    Returns
    -------
    Case
        The validated case, every default filled in; a bad key raises
        :class:`mfpde.errors.CaseError` naming it.
    """
    from mfpde.config.data import load_data
    from mfpde.experts import as_expert, build_expert

    if not isinstance(table, dict):
        raise CaseError("case", "must be a table")
    table = copy.deepcopy(table)
    base_dir = Path(base_dir)
    _check_keys(table, _TOP_KEYS, "")
    name = check_name(table.get("name", "case"))

    def section(key: str) -> dict:
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise CaseError(key, "must be a table")
        return value

    if expert is None:
        _check_theta_indices(section("expert"))
        expert = build_expert(section("expert") or _missing("expert"), base_dir)
    else:
        expert = as_expert(expert)  # a PennyLane QNode becomes its gate rows (mfpde.experts.qnode)
        as_table = getattr(expert, "case_table", None)  # a QNode's rows: a [expert] table that loads again
        table["expert"] = as_table() if as_table else {"kind": "object", "describe": str(expert.describe())}
    data = load_data(section("data") or _missing("data"), expert, base_dir)
    output = section("output")
    _check_keys(output, {"directory"}, "output")
    out_dir = output.get("directory", f"runs/{name}")
    if not isinstance(out_dir, str) or not out_dir or "\0" in out_dir:
        raise CaseError("output.directory", f"must be a non-empty path string, got {out_dir!r}")
    return Case(
        name=name,
        table=table,
        base_dir=base_dir,
        expert=expert,
        data=data,
        init=InitSpec.parse(section("init"), expert.d),
        dynamics=Dynamics.parse(section("dynamics") or _missing("dynamics")),
        pde=PDEOptions.parse(section("pde"), base_dir, expert.d),
        particles=(particles := ParticleOptions.parse(section("particles"))),
        study=StudyOptions.parse(section("study"), particles.seeds),
        output_dir=out_dir,
        regimes=RegimesOptions.parse(section("regimes")),
        limit=LimitOptions.parse(section("limit")),
    )


def check_name(name: Any) -> str:
    """A case name is the stem of every output file: letters, digits, ``_ . + -``,
    not starting with ``.``, ``+`` or ``-``, at most :data:`NAME_MAX` characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME_MAX:
        problem = f"longer than {NAME_MAX} characters ({len(name)})" if isinstance(name, str) and \
            len(name) > NAME_MAX else f"got {name!r}"
        raise CaseError("name", "must be a file stem: letters, digits and _ . + - (not first), "
                                f"at most {NAME_MAX} characters; {problem}")
    return name


def _check_theta_indices(expert: dict) -> None:
    """theta[i] with a huge i would make a huge expert: refuse it before building."""
    for i, gate in enumerate(expert.get("gates", []) if isinstance(expert.get("gates"), list) else []):
        for angle in gate if isinstance(gate, list) else []:
            m = re.fullmatch(r"\s*theta\s*\[\s*(\d+)\s*\]\s*", angle) if isinstance(angle, str) else None
            if m and int(m.group(1)) >= MAX_THETA:
                raise CaseError(f"expert.gates[{i}]", f"theta index {m.group(1)} is too large "
                                                      f"(at most {MAX_THETA - 1})")


def _missing(key: str):
    raise CaseError(key, "missing section")


def parse_toml(text: str, origin: str = "case") -> dict:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:  # ValueError: an integer of > 4300 digits
        raise CaseError(origin, f"not valid TOML: {exc}") from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise CaseError(origin, "not valid TOML for a case: nested too deep (arrays or tables inside one "
                                "another thousands of times)") from None


def load_case(path: str | Path) -> Case:
    """Read and validate a case file.

    Parameters
    ----------
    path : str or Path
        A TOML case file (docs/case-file.md); relative paths in it start at its directory.

    Returns
    -------
    Case
        The validated case; an unreadable file or a bad key raises :class:`mfpde.errors.CaseError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CaseError(str(path), "case file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(str(path), f"cannot read: {exc}") from None
    return case_from_dict(parse_toml(text, str(path)), path.parent)


def default_case_text() -> str:
    return resources.files("mfpde").joinpath("cases/default.toml").read_text()


def default_case() -> Case:
    """The built-in default case (DESIGN section 9)."""
    return case_from_dict(parse_toml(default_case_text(), "default case"), Path("."))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(table: dict) -> str:
    """Write a case table back to TOML (scalars first, then one [section] per table)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"
