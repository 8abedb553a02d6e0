r"""Default ``[pde]`` discretization per dimension d of the parameter torus, and the mesh motions
(read by the case loader and the run checks: no DOLFINx here).

.. math::

    \text{error} \approx C\, h^{p+1} \ (\text{space}) + C'\, \Delta t^{q}\ (\text{time}),
    \qquad h = 2\pi / n .

DG(3) on boxes (GLL nodes) with SSP-RK(10,4) / ARS(4,4,3): chosen so that the
default settings reach <= 1e-6 in F on the shipped cases (measured 9e-10 to
1.1e-7, ``docs/pde.md``) at a cost comparable to the DG(1) simplex defaults
they replace (which reached 8e-7 to 5e-5).
"""

from __future__ import annotations

from mfpde.errors import CaseError

MESH_MOTIONS = ("fixed", "lagrangian")

DEFAULTS = {
    1: {"n": 16, "degree": 3, "cell": "box"},
    2: {"n": 16, "degree": 3, "cell": "box"},
    3: {"n": 6, "degree": 3, "cell": "box"},
}


def default_discretization(d: int | None) -> dict:
    """``n``, ``degree`` and ``cell`` used when the case file leaves them out."""
    return dict(DEFAULTS.get(d, DEFAULTS[2]))


def check_mesh_motion(mesh_motion: str, tau: float) -> bool:
    """Whether the mesh moves (``lagrangian``); an unknown motion, or a moving mesh with noise, is refused."""
    if mesh_motion not in MESH_MOTIONS:
        raise CaseError("pde.mesh_motion", f"unknown mesh motion {mesh_motion!r} ({', '.join(MESH_MOTIONS)})")
    if mesh_motion == "lagrangian" and tau > 0:
        raise CaseError("pde.mesh_motion", "a Lagrangian mesh follows the transport only: it needs tau = 0 "
                        "(use mesh_motion = \"fixed\" with noise)")
    return mesh_motion == "lagrangian"
