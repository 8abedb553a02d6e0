r"""Default ``[pde]`` discretization per dimension d of the parameter torus.

.. math::

    \text{error} \approx C\, h^{p+1} \ (\text{space}) + C'\, \Delta t^{q}\ (\text{time}),
    \qquad h = 2\pi / n .

DG(3) on boxes (GLL nodes) with SSP-RK(10,4) / ARS(4,4,3): chosen so that the
default settings reach <= 1e-6 in F on the shipped cases (measured 9e-10 to
1.1e-7, ``docs/pde.md``) at a cost comparable to the DG(1) simplex defaults
they replace (which reached 8e-7 to 5e-5).
"""

from __future__ import annotations

DEFAULTS = {
    1: {"n": 16, "degree": 3, "cell": "box"},
    2: {"n": 16, "degree": 3, "cell": "box"},
    3: {"n": 6, "degree": 3, "cell": "box"},
}


def default_discretization(d: int | None) -> dict:
    """``n``, ``degree`` and ``cell`` used when the case file leaves them out."""
    return dict(DEFAULTS.get(d, DEFAULTS[2]))
