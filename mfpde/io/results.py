r"""Typed results: the one module that knows the layout of the result files.

A run, a study or a comparison ends as a result object; ``to_file(path)``
writes it as one self-describing HDF5 file (DESIGN section 7, readable with
plain h5py) and ``from_file(path)`` (or :func:`read_result`, which dispatches
on the file's ``kind``) reads it back.  :mod:`mfpde.io.hdf5` only turns nested
dicts into HDF5 (atomically); :mod:`mfpde.runs.compare`, :mod:`mfpde.report.figures` and
:mod:`mfpde.report.study` work on these objects and never open a file themselves.

Layout (every kind; ``/`` groups, root attributes in ``attrs``)::

    attrs: kind, complete, case_name, case_hash, d, mfpde_version [, run_settings (JSON, runs)]
    /case          the case as given (TOML text, command-line overrides included)
    /case_resolved the case as run: every default filled in, [output] directory (mfpde.io.case_as_run)
    /data/x, y, w
    /provenance    versions (JSON), mpi_size, git_revision, wall_time_s, ...
    /observables/t, F (T x K), risk, moments, moment_freqs [, mass, min_rho]

Every dataset carries ``long_name`` and ``units`` and its axes as HDF5 dimension
scales (:mod:`mfpde.io.layout`, the one table of names, units and axes).

plus the group of the kind: ``/pde`` (:class:`PDEResult`), ``/particles``
(:class:`ParticleResult`), ``/pde`` and ``/study`` (:class:`StudyResult`),
``/compare`` (:class:`CompareResult`), ``/limit`` and ``/clt``
(:class:`LimitResult`).

A new kind is a subclass of :class:`Result` with a ``KIND``, the dataclass
fields of its group, ``_group_tree()`` (fields -> nested dict) and
``_from_group(tree, info, obs)`` (nested dict -> object), registered with
:func:`register_kind`.  Files from every mfpde up to this version read back;
a file from a newer mfpde is refused in one line naming both versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from mfpde.errors import ResultFileError
from mfpde.io.hdf5 import read_run, write_run
from mfpde.constants import TWO_PI

#: kind -> Result subclass (filled by :func:`register_kind`)
RESULT_KINDS: dict[str, type["Result"]] = {}


def register_kind(cls):
    """Class decorator: make ``read_result`` know the subclass by its ``KIND``; its repr is the
    short summary of :meth:`Result.__repr__` (not the dataclass's, which prints every array)."""
    RESULT_KINDS[cls.KIND] = cls
    cls.__repr__ = Result.__repr__
    return cls


def _shape(a) -> str:
    return "None" if a is None else "x".join(map(str, np.shape(a))) or "scalar"


def _times(t) -> str:
    t = np.asarray(t if t is not None else [], dtype=float).reshape(-1)
    return f"t = {t[0]:.4g}..{t[-1]:.4g} ({len(t)} saved)" if len(t) else "no saved time"


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(text).split(".")[:3])
    except ValueError:
        return (0,)


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    if isinstance(value, np.generic):
        return _text(value.item())
    return str(value)


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


# ------------------------------------------------------------------ shared parts


@dataclass
class RunInfo:
    """What every result file carries: the case as run, the data, provenance, attributes."""

    case_name: str
    case_hash: str
    d: int
    case_text: str = ""
    data: dict = field(default_factory=dict)        # x (K, m), y (K,), w (K,)
    provenance: dict = field(default_factory=dict)
    complete: bool = True
    version: str = ""                                # mfpde version that wrote the file
    settings: str = ""                               # JSON of the numerical settings a resume must keep
    resolved_text: str = ""                          # /case_resolved: the case as run, every default filled in

    @classmethod
    def of_case(cls, case, provenance: dict | None = None, table: dict | None = None,
                settings: str = "", ran: dict | None = None) -> "RunInfo":
        """From a :class:`mfpde.config.case.Case`; ``table`` replaces ``case.table`` (the case as run);
        ``settings`` (:func:`mfpde.io.resume.settings_json`) is what a resumed run is checked against;
        ``ran`` (sections) what the solver chose, for ``/case_resolved`` only (the integrator that ran)."""
        from mfpde import __version__
        from mfpde.config.case import dumps_toml
        from mfpde.io.case_as_run import resolved_table

        return cls(case_name=case.name, case_hash=case.physics_hash(), d=case.d,
                   case_text=dumps_toml(case.table if table is None else table),
                   data={"x": case.data.x, "y": case.data.y, "w": case.data.w},
                   provenance=dict(provenance or {}), version=__version__, settings=settings,
                   resolved_text=dumps_toml(resolved_table(case, table, ran)))

    def case_table(self) -> dict:
        """The case as run, parsed (``{}`` if the text is not TOML)."""
        import tomllib

        try:
            return tomllib.loads(self.case_text)
        except tomllib.TOMLDecodeError:
            return {}

    def resolved_table(self) -> dict:
        """The case as run with every default filled in (``/case_resolved``; ``{}`` in older files)."""
        import tomllib

        try:
            return tomllib.loads(self.resolved_text)
        except tomllib.TOMLDecodeError:
            return {}

    def written_to(self, path) -> None:
        """Record in ``/case_resolved`` the directory ``path`` goes to (``[output] directory``)."""
        from mfpde.config.case import dumps_toml
        from mfpde.io.case_as_run import with_output_directory

        if self.resolved_text:
            self.resolved_text = dumps_toml(with_output_directory(self.resolved_table(), path))

    def attrs(self, kind: str) -> dict:
        from mfpde import __version__

        attrs = {"kind": kind, "complete": bool(self.complete), "case_name": self.case_name,
                 "case_hash": self.case_hash, "d": int(self.d), "mfpde_version": self.version or __version__}
        if self.settings:
            attrs["run_settings"] = self.settings
        return attrs

    def tree(self) -> dict:
        return {"case": self.case_text, "case_resolved": self.resolved_text or None, "data": dict(self.data),
                "provenance": dict(self.provenance) or None}

    @classmethod
    def from_tree(cls, tree: dict, attrs: dict) -> "RunInfo":
        d = attrs.get("d")
        if d is None:  # older synthetic files: the dimension from a state array
            d = np.asarray(tree.get("data", {}).get("x", np.zeros((0, 1)))).shape[-1]
        return cls(case_name=_text(attrs.get("case_name", "")), case_hash=_text(attrs.get("case_hash", "")),
                   d=int(d), case_text=_text(tree.get("case", "")), data=dict(tree.get("data", {})),
                   provenance=dict(tree.get("provenance", {})), complete=bool(attrs.get("complete", True)),
                   version=_text(attrs.get("mfpde_version", "")), settings=_text(attrs.get("run_settings", "")),
                   resolved_text=_text(tree.get("case_resolved", "")))


@dataclass
class Observables:
    """The observables at the saved times (DESIGN section 7, ``/observables``)."""

    t: np.ndarray
    F: np.ndarray                 # (T, K)
    risk: np.ndarray              # (T,)
    moments: np.ndarray           # (T, F) complex
    moment_freqs: np.ndarray      # (F, d) integer
    extra: dict = field(default_factory=dict)   # name -> (T,): mass, min_rho for the PDE

    def tree(self) -> dict:
        return {"t": np.asarray(self.t), "F": np.asarray(self.F), "risk": np.asarray(self.risk),
                "moments": np.asarray(self.moments), "moment_freqs": np.asarray(self.moment_freqs),
                **{k: np.asarray(v) for k, v in self.extra.items()}}

    def as_dict(self) -> dict:
        """The flat dict that ``run_pde`` / ``run_particles`` return."""
        return self.tree()

    @classmethod
    def from_tree(cls, o: dict) -> "Observables":
        core = ("t", "F", "risk", "moments", "moment_freqs")
        return cls(t=np.asarray(o["t"], dtype=float), F=np.asarray(o["F"]), risk=np.asarray(o["risk"], dtype=float),
                   moments=np.asarray(o["moments"]), moment_freqs=np.asarray(o["moment_freqs"]),
                   extra={k: np.asarray(v) for k, v in o.items() if k not in core})

    def index_of(self, t: float) -> int:
        """Index of the saved time ``t`` (to 1e-9 relative); a clear error if there is none."""
        j = int(np.argmin(np.abs(self.t - t)))
        if abs(self.t[j] - t) > 1e-9 * max(1.0, abs(t)):
            raise ResultFileError(f"no saved state at t = {t:g}")
        return j


@dataclass
class Fit:
    """A fitted rate ``error ~ C N^slope`` with its interval, beside the theory."""

    slope: float
    ci: np.ndarray                # (2,)
    intercept: float = float("nan")
    r2: float = float("nan")
    theory_slope: float = float("nan")
    theory: str = ""

    def tree(self) -> dict:
        return {"slope": float(self.slope), "ci": np.asarray(self.ci, dtype=float), "intercept": float(self.intercept),
                "r2": float(self.r2), "theory_slope": float(self.theory_slope), "theory": self.theory}

    @classmethod
    def from_tree(cls, g: dict) -> "Fit":
        def num(key):
            return float(np.asarray(g[key]).reshape(-1)[0]) if key in g else float("nan")

        ci = np.asarray(g["ci"], dtype=float).reshape(-1) if "ci" in g else np.array([np.nan, np.nan])
        return cls(slope=num("slope"), ci=ci, intercept=num("intercept"), r2=num("r2"),
                   theory_slope=num("theory_slope"), theory=_text(g.get("theory", "")))

    @property
    def theory_in_ci(self) -> bool:
        return bool(self.ci[0] <= self.theory_slope <= self.ci[-1])


# ------------------------------------------------------------------ the base


@dataclass
class Result:
    """Base of every result kind: ``info`` (case, data, provenance) and the kind's own group."""

    KIND: ClassVar[str] = ""
    info: RunInfo

    def _group_tree(self) -> dict:
        raise NotImplementedError

    @classmethod
    def _from_group(cls, tree: dict, info: RunInfo) -> "Result":
        raise NotImplementedError

    def _summary(self) -> list[str]:
        """The kind's part of the repr: the shapes of its main arrays (no values)."""
        return []

    @property
    def path(self) -> Path | None:
        """The file this result was read from or last written to (None if neither)."""
        return self.__dict__.get("_path")

    def __repr__(self) -> str:
        """One short line: kind, case, saved times, main arrays, file (no array values)."""
        parts = [f"case {self.info.case_name!r}", *self._summary()]
        if not self.info.complete:
            parts.append("incomplete")
        if self.path is not None:
            parts.append(f"file {self.path}")
        return f"<{type(self).__name__} {self.KIND}: " + ", ".join(parts) + ">"

    def to_tree(self) -> dict:
        return {**self.info.tree(), **self._group_tree()}

    def to_file(self, path, complete: bool | None = None) -> Path:
        """Write the whole file atomically (``complete`` overrides ``info.complete``); a complete file
        is described for generic tools (:mod:`mfpde.io.layout`), a restart point is not."""
        if complete is not None:
            self.info.complete = bool(complete)
        self.info.written_to(path)
        self.__dict__["_path"] = Path(path)
        return write_run(path, self.to_tree(), self.info.attrs(self.KIND), describe=self.info.complete)

    @classmethod
    def from_tree(cls, tree: dict, attrs: dict, origin="result") -> "Result":
        try:
            result = cls._from_group(tree, RunInfo.from_tree(tree, attrs))
            if isinstance(origin, (str, Path)) and origin != "result":
                result.__dict__["_path"] = Path(origin)
            return result
        except KeyError as exc:
            raise ResultFileError(f"{origin}: not a complete {cls.KIND} result (missing {exc})") from None

    @classmethod
    def from_file(cls, path) -> "Result":
        """Read a file of this kind (a study file also reads as its PDE part: ``PDEResult.from_file``)."""
        tree, attrs = _read_checked(path)
        kind = _text(attrs.get("kind", ""))
        if kind != cls.KIND and not (cls is PDEResult and kind == StudyResult.KIND):
            raise ResultFileError(f"{path}: not a {cls.KIND} result (kind = {kind!r})")
        return cls.from_tree(tree, attrs, path)


def _read_checked(path) -> tuple[dict, dict]:
    from mfpde import __version__

    tree, attrs = read_run(path)
    if "kind" not in attrs:
        raise ResultFileError(f"{path}: has no root attribute 'kind'; mfpde reads the kinds "
                              f"{', '.join(RESULT_KINDS)}")
    version = _text(attrs.get("mfpde_version", ""))
    if version and _version_tuple(version) > _version_tuple(__version__):
        raise ResultFileError(f"{path}: written by mfpde {version}, newer than this mfpde {__version__}; "
                              "upgrade mfpde to read it")
    return tree, attrs


def read_result(path) -> Result:
    """Any result file as its typed result (dispatch on the root attribute ``kind``).

    Parameters
    ----------
    path : str or Path
        A file written by mfpde (any kind, any version up to this one).

    Returns
    -------
    Result
        A :class:`PDEResult`, :class:`ParticleResult`, :class:`StudyResult`, :class:`CompareResult`,
        :class:`LimitResult` or :class:`RegimesResult`; ``result.path`` is ``path``.  A file that
        is none of them raises :class:`mfpde.errors.ResultFileError` in one line.
    """
    tree, attrs = _read_checked(path)
    kind = _text(attrs["kind"])
    if kind not in RESULT_KINDS:
        raise ResultFileError(f"{path}: has kind {kind!r}; mfpde reads the kinds {', '.join(RESULT_KINDS)}")
    return RESULT_KINDS[kind].from_tree(tree, attrs, path)


# ------------------------------------------------------------------ PDE


def lagrange_nodes(cell_type: str, degree: int) -> np.ndarray | None:
    """The nodes of DOLFINx's discontinuous Lagrange element (Basix, GLL-warped), if Basix is there.

    For files that did not store ``/pde/reference_points``.
    """
    try:
        import basix
    except ImportError:
        return None
    try:
        el = basix.create_element(basix.ElementFamily.P, getattr(basix.CellType, cell_type), int(degree),
                                  basix.LagrangeVariant.gll_warped, discontinuous=True)
    except Exception:  # an unknown cell name or a Basix API change: no nodes
        return None
    return np.asarray(el.points, dtype=np.float64)


PDE_README = ("density[t, c, j] is the value at node j of cell c at time observables/t[t]; "
              "the cell's vertices are mesh/vertices[c] (unwrapped, may leave [0, 2pi)), or mesh/vertices[t, c] "
              "when the mesh moves with the flow (4 dimensions; pde.mesh_motion = lagrangian); "
              "the field is the discontinuous Lagrange interpolant of the given degree on that cell through its "
              "nodes, in the order of reference_points (on the reference interval [0,1], unit simplex or unit box). "
              "mfpde.numerics.fields.evaluate_cellwise evaluates it with numpy only.")

#: quadrature order of the atoms of the PDE density used for W1 (a few points per cell)
ATOMS_QUADRATURE_ORDER = 2


@register_kind
@dataclass
class PDEResult(Result):
    """A PDE run: observables and the cellwise density at every saved time.

    ``n`` is the number of cells per direction of a structured mesh, None for a
    mesh read from a file (``mesh_file``); ``degree`` and ``cell_type`` are the
    solver's; ``steps`` the number of time steps taken; ``mesh_frozen_at`` the time a moving
    mesh stopped moving (its cells too distorted), None if it never did.
    """

    KIND: ClassVar[str] = "pde"
    observables: Observables = None
    cell_type: str = ""
    degree: int = 1
    vertices: np.ndarray = None          # (C, nv, d) unwrapped; (T, C, nv, d) for a moving mesh
    density: np.ndarray = None           # (T, C, ndofs)
    reference_points: np.ndarray = None  # (ndofs, d) nodes on the reference cell
    n: int | None = None
    mesh_file: str = ""
    steps: int = 0
    period: float = TWO_PI
    mesh_frozen_at: float | None = None
    _atoms: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def t(self) -> np.ndarray:
        return self.observables.t

    @property
    def num_cells(self) -> int:
        return int(np.shape(self.vertices)[-3])

    @property
    def moving_mesh(self) -> bool:
        """Whether the mesh moved with the flow (vertices at every saved time)."""
        return np.ndim(self.vertices) == 4

    def cellwise(self, i: int) -> dict:
        """The density at saved time ``i`` as the dict of :mod:`mfpde.numerics.fields`."""
        vertices = self.vertices[i] if self.moving_mesh else self.vertices
        cw = {"cell_type": self.cell_type, "degree": self.degree, "vertices": vertices,
              "values": np.asarray(self.density[i], dtype=np.float64), "period": self.period}
        if self.reference_points is not None:
            cw["reference_points"] = self.reference_points
        return cw

    def atoms(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Weighted points (a quadrature of the density at saved time ``i``), cached."""
        if i not in self._atoms:
            from mfpde.numerics.fields import cellwise_quadrature

            pts, mass = cellwise_quadrature(self.cellwise(i), ATOMS_QUADRATURE_ORDER)
            self._atoms[i] = (np.mod(pts, TWO_PI), np.clip(mass, 0.0, None))
        return self._atoms[i]

    def index_of(self, t: float) -> int:
        return self.observables.index_of(t)

    def _summary(self) -> list[str]:
        mesh = f"n = {self.n}" if self.n is not None else f"mesh {Path(self.mesh_file).name}"
        moving = ", moving mesh" if self.moving_mesh else ""
        return [_times(self.t), f"{mesh}, {self.cell_type} degree {self.degree}{moving}",
                f"density {_shape(self.density)}"]

    def _group_tree(self) -> dict:
        return {"observables": self.observables.tree(), "pde": {
            "mesh": {"vertices": self.vertices, "period": float(self.period)},
            "density": self.density, "cell_type": self.cell_type, "degree": int(self.degree),
            "reference_points": self.reference_points, "n": _optional_int(self.n),
            "mesh_file": self.mesh_file or None, "steps": int(self.steps), "README": PDE_README,
            "mesh_frozen_at": None if self.mesh_frozen_at is None else float(self.mesh_frozen_at)}}

    @classmethod
    def _from_group(cls, tree, info):
        p = tree["pde"]
        cell_type, degree = _text(p["cell_type"]), int(p["degree"])
        ref = p.get("reference_points")
        if ref is None:
            ref = lagrange_nodes(cell_type, degree)
            if ref is not None and len(ref) != np.shape(p["density"])[-1]:
                ref = None
        return cls(info=info, observables=Observables.from_tree(tree["observables"]), cell_type=cell_type,
                   degree=degree, vertices=np.asarray(p["mesh"]["vertices"], dtype=np.float64),
                   density=np.asarray(p["density"]), reference_points=None if ref is None else np.asarray(ref),
                   n=_optional_int(p.get("n")), mesh_file=_text(p.get("mesh_file", "")),
                   steps=int(p.get("steps", 0)), period=float(p["mesh"].get("period", TWO_PI)),
                   mesh_frozen_at=None if p.get("mesh_frozen_at") is None else float(p["mesh_frozen_at"]))


# ------------------------------------------------------------------ particles


@register_kind
@dataclass
class ParticleResult(Result):
    """A particle run: observables and the positions ``theta`` (T, N, d) at every saved time.

    ``integrator`` is the method that ran (``heun``, the stochastic Heun
    method, whenever tau > 0); ``rng_state`` (JSON) and ``step`` restart it.
    """

    KIND: ClassVar[str] = "particles"
    observables: Observables = None
    theta: np.ndarray = None
    N: int = 0
    seed: int = 0
    integrator: str = ""
    rng_state: str = ""
    step: int = 0

    def _summary(self) -> list[str]:
        return [_times(self.observables.t), f"N = {self.N}, seed {self.seed}, {self.integrator}",
                f"theta {_shape(self.theta)}"]

    def _group_tree(self) -> dict:
        return {"observables": self.observables.tree(), "particles": {
            "theta": self.theta, "N": int(self.N), "seed": int(self.seed), "rng_state": self.rng_state or None,
            "step": int(self.step), "integrator": self.integrator or None}}

    @classmethod
    def from_tree(cls, tree: dict, attrs: dict, origin="result") -> "ParticleResult":
        """A partial file (root attribute ``saved``, see :mod:`mfpde.io.particle_writer`) reads as its whole saves."""
        if "saved" in attrs:
            tree = whole_saves(tree, int(attrs["saved"]))
        return super().from_tree(tree, attrs, origin)

    @classmethod
    def _from_group(cls, tree, info):
        p = tree["particles"]
        return cls(info=info, observables=Observables.from_tree(tree["observables"]), theta=np.asarray(p["theta"]),
                   N=int(p.get("N", np.shape(p["theta"])[1])), seed=int(p.get("seed", -1)),
                   integrator=_text(p.get("integrator", "")), rng_state=_text(p.get("rng_state", "")),
                   step=int(p.get("step", 0)))


def whole_saves(tree: dict, n: int) -> dict:
    """A particle partial file's tree (appended per save: ``step`` and ``rng_state`` one per saved time)
    in the final layout: every time series cut to the ``n`` whole saved states, ``step`` and
    ``rng_state`` those of the last one."""
    for name, values in tree.get("observables", {}).items():
        if name != "moment_freqs":
            tree["observables"][name] = values[:n]
    p = tree.get("particles", {})
    if "theta" in p:
        p["theta"] = p["theta"][:n]
    for name in ("step", "rng_state"):
        if np.ndim(p.get(name)) == 1 and n:
            last = p[name][n - 1]
            p[name] = last.decode() if isinstance(last, bytes) else last
    return tree


# ------------------------------------------------------------------ study


@register_kind
@dataclass
class StudyResult(Result):
    """A study: the PDE result copied in, the metrics over N and seeds, and the fitted rates.

    ``metrics[name]`` is (len(N), seeds, T); ``fit[name]`` the rate of
    ``sup_t`` of the error, ``fit_t_end[name]`` the rate at ``t_end``;
    ``example_theta`` one particle run (T, <= 4096, d) for the density figure.
    """

    KIND: ClassVar[str] = "study"
    pde: "PDEResult | LimitResult" = None   # the reference the particles were compared with
    N: np.ndarray = None
    seeds: np.ndarray = None
    t: np.ndarray = None
    metrics: dict = field(default_factory=dict)
    particles_risk: np.ndarray = None        # (len(N), seeds, T)
    particles_F: np.ndarray = None           # (len(N), seeds, T, K): the CLT panel
    fit: dict = field(default_factory=dict)        # name -> Fit
    fit_t_end: dict = field(default_factory=dict)  # name -> Fit
    example_theta: np.ndarray = None
    example_N: int = 0
    example_seed: int = 0
    pde_file: str = ""

    @property
    def observables(self) -> Observables:
        return self.pde.observables

    def _summary(self) -> list[str]:
        N = np.asarray(self.N).reshape(-1)
        return [_times(self.t), f"N = {N.min()}..{N.max()} ({len(N)} values), {len(np.asarray(self.seeds))} seeds",
                f"metrics {', '.join(self.metrics)} {_shape(next(iter(self.metrics.values()), None))}",
                f"reference {self.pde.KIND}"]

    def _group_tree(self) -> dict:
        tree = self.pde._group_tree()
        example = None if self.example_theta is None else {
            "theta": self.example_theta, "N": int(self.example_N), "seed": int(self.example_seed)}
        tree["study"] = {
            "N": np.asarray(self.N), "seeds": np.asarray(self.seeds), "t": np.asarray(self.t),
            "metrics": {k: np.asarray(v) for k, v in self.metrics.items()},
            "particles_risk": self.particles_risk, "particles_F": self.particles_F,
            "reference": self.pde.KIND,
            "fit": {k: f.tree() for k, f in self.fit.items()},
            "fit_t_end": {k: f.tree() for k, f in self.fit_t_end.items()} or None,
            "example": example, "pde_file": self.pde_file or None}
        return tree

    @classmethod
    def _from_group(cls, tree, info):
        s = tree["study"]
        ex = s.get("example", {})
        reference = LimitResult if _text(s.get("reference", "pde")) == "limit" else PDEResult
        return cls(info=info, pde=reference._from_group(tree, info), N=np.asarray(s["N"]),
                   seeds=np.asarray(s["seeds"]), t=np.asarray(s.get("t", tree["observables"]["t"]), dtype=float),
                   metrics={k: np.asarray(v, dtype=float) for k, v in s["metrics"].items()},
                   particles_risk=None if "particles_risk" not in s else np.asarray(s["particles_risk"], float),
                   particles_F=None if "particles_F" not in s else np.asarray(s["particles_F"], float),
                   fit={k: Fit.from_tree(g) for k, g in s.get("fit", {}).items()},
                   fit_t_end={k: Fit.from_tree(g) for k, g in s.get("fit_t_end", {}).items()},
                   example_theta=None if "theta" not in ex else np.asarray(ex["theta"]),
                   example_N=int(ex.get("N", np.shape(ex.get("theta", np.zeros((0, 0))))[1])),
                   example_seed=int(ex.get("seed", -1)), pde_file=_text(s.get("pde_file", "")))


# ------------------------------------------------------------------ compare


@register_kind
@dataclass
class CompareResult(Result):
    """``mfpde compare``: ``metrics[name]`` (files, T) at the common saved times ``t``."""

    KIND: ClassVar[str] = "compare"
    t: np.ndarray = None
    N: np.ndarray = None
    seed: np.ndarray = None
    metrics: dict = field(default_factory=dict)
    pde_file: str = ""
    particle_files: list = field(default_factory=list)

    def _summary(self) -> list[str]:
        return [_times(self.t), f"{len(self.particle_files)} particle files",
                f"metrics {', '.join(self.metrics)} {_shape(next(iter(self.metrics.values()), None))}"]

    def _group_tree(self) -> dict:
        return {"compare": {"t": np.asarray(self.t), "N": np.asarray(self.N), "seed": np.asarray(self.seed),
                            "pde_file": self.pde_file, "particle_files": "\n".join(map(str, self.particle_files)),
                            "metrics": {k: np.asarray(v) for k, v in self.metrics.items()}}}

    @classmethod
    def _from_group(cls, tree, info):
        c = tree["compare"]
        metrics = {k: np.asarray(v, dtype=float) for k, v in c["metrics"].items()}
        P = len(next(iter(metrics.values()))) if metrics else 0
        files = _text(c.get("particle_files", ""))
        return cls(info=info, t=np.asarray(c["t"], dtype=float), N=np.asarray(c.get("N", np.full(P, -1))),
                   seed=np.asarray(c.get("seed", np.full(P, -1))), metrics=metrics,
                   pde_file=_text(c.get("pde_file", "")), particle_files=files.splitlines() if files else [])


# ------------------------------------------------------------------ limit (DESIGN 10.2)


@register_kind
@dataclass
class LimitResult(Result):
    """``mfpde limit``: the limit measure as moved quadrature points (``NAME.limit.h5``).

    ``weights`` (M,) fixed, ``rule`` the name of the quadrature rule for
    rho_0, ``theta`` (T', M, d) the points at the saved times ``theta_index``
    (every saved time, or a documented subset when large), ``clt`` the
    ``/clt`` group: ``cov`` (T, K, K), the predicted covariance of
    ``sqrt(N) (f_N - F)`` (DESIGN 10.3), and ``experts_needed``.  Observables
    as for the PDE, without mass and min_rho.  As the reference of
    ``compare`` and ``study`` it offers what :class:`PDEResult` does: ``t``,
    ``observables``, ``index_of`` and ``atoms`` (the weighted points themselves).
    """

    KIND: ClassVar[str] = "limit"
    observables: Observables = None
    weights: np.ndarray = None
    rule: str = ""
    theta: np.ndarray = None
    theta_index: np.ndarray = None              # saved-time index of each theta[i] (default: all of them)
    clt: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)   # more datasets of /limit: points, dt, error_estimate, state, ...

    @property
    def t(self) -> np.ndarray:
        return self.observables.t

    @property
    def clt_cov(self) -> np.ndarray | None:
        return None if "cov" not in self.clt else np.asarray(self.clt["cov"])

    @property
    def description(self) -> str:
        return f"{self.rule}, M = {len(self.weights)}"

    def _summary(self) -> list[str]:
        clt = f"clt cov {_shape(self.clt_cov)}" if self.clt_cov is not None else "no clt"
        return [_times(self.t), self.description, f"theta {_shape(self.theta)}", clt]

    def index_of(self, t: float) -> int:
        return self.observables.index_of(t)

    def atoms(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The weighted points at saved time ``i`` (the limit measure itself)."""
        index = np.arange(len(self.theta)) if self.theta_index is None else np.asarray(self.theta_index)
        where = np.flatnonzero(index == i)
        if where.size == 0:
            raise ResultFileError(f"the limit file stores the points only at the saved times "
                                  f"{[float(self.t[j]) for j in self.theta_index]}, not at t = {self.t[i]:g}")
        return np.asarray(self.theta[where[0]]), np.asarray(self.weights)

    def _group_tree(self) -> dict:
        return {"observables": self.observables.tree(),
                "limit": {"weights": self.weights, "rule": self.rule, "theta": self.theta,
                          "theta_index": np.arange(len(self.theta)) if self.theta_index is None
                          else np.asarray(self.theta_index), **self.extra},
                "clt": self.clt or None}

    @classmethod
    def _from_group(cls, tree, info):
        g = tree["limit"]
        theta = np.asarray(g["theta"])
        index = np.asarray(g["theta_index"]) if "theta_index" in g else np.arange(len(theta))
        return cls(info=info, observables=Observables.from_tree(tree["observables"]),
                   weights=np.asarray(g["weights"]), rule=_text(g["rule"]), theta=theta, theta_index=index,
                   clt=dict(tree.get("clt", {})),
                   extra={k: v for k, v in g.items() if k not in ("weights", "rule", "theta", "theta_index")})


# ------------------------------------------------------------------ regimes (DESIGN 10.4)


@register_kind
@dataclass
class RegimesResult(Result):
    """``mfpde regimes``: lazy (NTK) against mean-field training (``NAME.regimes.h5``).

    ``regimes`` is the ``/regimes`` group as a nested dict: ``N``, ``seeds``,
    ``t``, ``lr``, per scaling ``displacement`` (len N x seeds),
    ``kernel_change``, ``risk`` (len N x seeds x T), ``ntk_limit/risk``,
    ``mean-field_limit/risk``, ``fit/<scaling>/<quantity>/{slope, ci, ...}``
    and a ``snapshot`` (see :mod:`mfpde.runs.regimes`).
    """

    KIND: ClassVar[str] = "regimes"
    regimes: dict = field(default_factory=dict)

    def _summary(self) -> list[str]:
        N = np.asarray(self.regimes.get("N", [])).reshape(-1)
        ns = f"N = {N.min()}..{N.max()} ({len(N)} values)" if len(N) else "no N"
        return [_times(self.regimes.get("t")), ns, f"{len(np.asarray(self.regimes.get('seeds', [])))} seeds",
                "scalings " + ", ".join(k for k in ("mean-field", "ntk") if k in self.regimes)]

    def _group_tree(self) -> dict:
        return {"regimes": self.regimes}

    @classmethod
    def _from_group(cls, tree, info):
        return cls(info=info, regimes=tree["regimes"])
