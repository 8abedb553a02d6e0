r"""Default ``[pde]`` discretization per dimension d of the parameter torus.

.. math::

    \text{error} \approx C\, h^{p+1} \ (\text{space}) + C'\, \Delta t^{q}\ (\text{time}),
    \qquad h = 2\pi / n .

Chosen so that the default settings reach the documented accuracy on the
shipped cases at a cost comparable to the DG(1) defaults they replace (see
``docs/pde.md``).
"""

from __future__ import annotations

DEFAULTS = {
    1: {"n": 64, "degree": 1, "cell": "simplex"},
    2: {"n": 64, "degree": 1, "cell": "simplex"},
    3: {"n": 64, "degree": 1, "cell": "simplex"},
}


def default_discretization(d: int | None) -> dict:
    """``n``, ``degree`` and ``cell`` used when the case file leaves them out."""
    return dict(DEFAULTS.get(d, DEFAULTS[2]))
