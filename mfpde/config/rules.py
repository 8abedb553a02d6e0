r"""The rules of a case, each one table defined once (no DOLFINx here): what the case loader,
the command-line overrides (:meth:`mfpde.config.case.Case.with_overrides`), the run checks and
the solvers all read.

* the ``[pde]`` defaults per dimension d (:data:`DEFAULTS`) and the mesh motions;
* the DG degrees per cell (:data:`MAX_DEGREE`) and the time schemes (:data:`TIME_SCHEMES`);
* what needs ``tau = 0`` and what needs ``tau > 0`` (:data:`NOISELESS_ONLY`, :data:`NOISY_ONLY`)
  and the particle integrator that runs with noise (:data:`NOISY_INTEGRATOR`);
* the lower bounds of counts: cells, experts, seeds (``>= 2`` for a confidence interval),
  the distinct N of a fitted rate, rule points (:data:`MINIMUM`).

The default discretization:

.. math::

    \text{error} \approx C\, h^{p+1} \ (\text{space}) + C'\, \Delta t^{q}\ (\text{time}),
    \qquad h = 2\pi / n .

DG(3) on boxes (GLL nodes) with SSP-RK(10,4) / ARS(4,4,3): chosen so that the
default settings reach <= 1e-6 in F on the shipped cases (measured 2e-9 to
1.1e-7, ``docs/pde.md``) at a cost comparable to the DG(1) simplex defaults
they replace (which reached 8e-7 to 5e-5).

The default ``[pde] moment_max`` (the Fourier moments every run records, particles included)
is 2 while the moment set ``0 < |w|_inf <= 2`` has at most :data:`DEFAULT_MOMENTS_MAX`
frequencies (d <= 8; the results of d <= 8 are as before), else 1: a PDE-side default must not refuse a particle run of a
large-d case (d = 12: 1.2e8 frequencies with 2, 2.7e5 with 1).
"""

from __future__ import annotations

from mfpde.config.moment_set import moment_count
from mfpde.errors import CaseError

# ------------------------------------------------------------------ [pde] defaults per d

MESH_MOTIONS = ("fixed", "lagrangian")

SCALINGS = ("mean-field", "ntk")   # [dynamics] scaling (DESIGN 10.4)

CELLS = ("simplex", "box")

DEFAULTS = {
    1: {"n": 16, "degree": 3, "cell": "box"},
    2: {"n": 16, "degree": 3, "cell": "box"},
    3: {"n": 6, "degree": 3, "cell": "box"},
}

DEFAULT_MOMENTS_MAX = 2 * 10**5   # frequencies of the default moment set (moment_max 2, else 1)


def default_moment_max(d: int | None) -> int:
    """2, or 1 where the default set of 2 (:mod:`mfpde.config.moment_set`: the box for d <= 3,
    ``|w|_1 <= 2`` beyond, d^2 + d frequencies) would exceed :data:`DEFAULT_MOMENTS_MAX` (d > 446)."""
    return 2 if moment_count(d or 1, 2) <= DEFAULT_MOMENTS_MAX else 1


def default_discretization(d: int | None) -> dict:
    """``n``, ``degree``, ``cell`` and ``moment_max`` used when the case file leaves them out."""
    return {**DEFAULTS.get(d, DEFAULTS[2]), "moment_max": default_moment_max(d)}


# ------------------------------------------------------------------ DG degrees per cell

MAX_DEGREE = {"interval": 6, "quadrilateral": 6, "hexahedron": 6, "triangle": 4, "tetrahedron": 4}


def cell_type(cell: str, d: int | None) -> str:
    """The cell type of the ``[pde] cell`` family in dimension d (d > 3: as d = 3)."""
    d = d or 1
    if d == 1:
        return "interval"
    if cell == "simplex":
        return "triangle" if d == 2 else "tetrahedron"
    return "quadrilateral" if d == 2 else "hexahedron"


def check_degree(cell_type: str, degree) -> int:
    """The DG degree, refused (``pde.degree``) outside 1..MAX_DEGREE[cell_type]."""
    import numbers

    top = MAX_DEGREE[cell_type]
    if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or not 1 <= degree <= top:
        raise CaseError("pde.degree", f"the DG degree on {cell_type} cells must be an integer in 1..{top}, "
                                      f"got {degree!r}")
    return int(degree)


# ------------------------------------------------------------------ time schemes and tau

TIME_SCHEMES = ("ssprk3", "ssprk104", "ars443")
EXPLICIT_SCHEMES = ("ssprk3", "ssprk104")       # tau = 0 only
IMEX_SCHEMES = ("ars443",)                      # tau > 0 only (its implicit part is the diffusion)
TIME_SCHEME_CHOICES = ("auto",) + TIME_SCHEMES

INTEGRATORS = ("rk4", "heun", "euler")
NOISY_INTEGRATOR = {"rk4": "heun"}  # rk4 is deterministic: with tau > 0 the stochastic Heun method runs

#: what needs tau = 0: (the key refused, the message; ``{tau}`` and ``{d}`` filled in)
NOISELESS_ONLY = {
    "scaling ntk": ("dynamics.tau", "must be 0 with scaling = 'ntk' (the lazy regime is noiseless), got {tau}"),
    "mesh_motion lagrangian": ("pde.mesh_motion", "a Lagrangian mesh follows the transport only: it needs tau = 0 "
                                                  "(use mesh_motion = \"fixed\" with noise)"),
    **{f"time_scheme {s}": ("pde.time_scheme", f"{s} is explicit and cannot take tau > 0: use ars443 (or auto)")
       for s in EXPLICIT_SCHEMES},
    "limit": ("dynamics.tau", "tau = {tau:g} > 0: `mfpde limit` is the tau = 0 method; "
                              "for noisy training in d = {d} use `mfpde pde`"),
    "limit d > 3": ("dynamics.tau", "tau = {tau:g} > 0 with d = {d}: no solver covers the noisy limit beyond d = 3 "
                                    "(`mfpde limit` is the tau = 0 push-forward; use `mfpde particles`)"),
    "regimes": ("dynamics.tau", "regimes compares noiseless limits: needs tau = 0, got {tau}"),
}

#: what needs tau > 0
NOISY_ONLY = {
    **{f"time_scheme {s}": ("pde.time_scheme", f"{s} is the IMEX scheme of tau > 0 (its implicit part is the "
                                               "diffusion); with tau = 0 use ssprk104, ssprk3 or auto")
       for s in IMEX_SCHEMES},
}


def check_tau(what: str, tau: float, d: int | None = None) -> None:
    """Refuse ``what`` (a key of :data:`NOISELESS_ONLY` or :data:`NOISY_ONLY`) at this tau."""
    rule = NOISELESS_ONLY.get(what) if tau > 0 else NOISY_ONLY.get(what)
    if rule is not None:
        key, message = rule
        raise CaseError(key, message.format(tau=tau, d=d))


def resolve_time_scheme(time_scheme: str, tau: float) -> str:
    """``auto`` -> ssprk104 (tau = 0) or ars443 (tau > 0); an explicit scheme with tau > 0, or
    ars443 with tau = 0, is refused."""
    if time_scheme == "auto":
        return "ars443" if tau > 0 else "ssprk104"
    if time_scheme not in TIME_SCHEMES:
        raise CaseError("pde.time_scheme", f"unknown scheme {time_scheme!r} (auto, {', '.join(TIME_SCHEMES)})")
    check_tau(f"time_scheme {time_scheme}", tau)
    return time_scheme


def check_mesh_motion(mesh_motion: str, tau: float) -> bool:
    """Whether the mesh moves (``lagrangian``); an unknown motion, or a moving mesh with noise, is refused."""
    if mesh_motion not in MESH_MOTIONS:
        raise CaseError("pde.mesh_motion", f"unknown mesh motion {mesh_motion!r} ({', '.join(MESH_MOTIONS)})")
    check_tau(f"mesh_motion {mesh_motion}", tau)
    return mesh_motion == "lagrangian"


def particle_integrator(integrator: str, tau: float) -> str:
    """The integrator that runs: the requested one, or its noisy counterpart when tau > 0."""
    return NOISY_INTEGRATOR.get(integrator, integrator) if tau > 0 else integrator


# ------------------------------------------------------------------ counts

#: the least value of each count (the case key, and the command-line option that sets it)
MINIMUM = {
    "pde.n": 3,              # cells per direction: the fewest a periodic mesh can have
    "pde.degree": 1,
    "pde.moment_max": 1,
    "particles.n": 1,
    "particles.seed": 0,     # a seed is a machine integer in 0 .. 2^63 - 1 (the case's integer range)
    "particles.seeds": 2,    # seeds of a study: >= 2 for a confidence interval
    "study.seeds": 2,
    "regimes.seeds": 2,
    "study.n": 1,            # each N of a list
    "regimes.n": 1,
    "limit.points": 2,
    "limit.clt_points": 2,
}

DISTINCT_N = 2   # distinct N of a fitted rate (study.n, regimes.n)
