r"""Experts :math:`\phi(x;\theta)` on the parameter torus :math:`T^d`.

An expert maps an input :math:`x \in \mathbb{R}^m` and parameters
:math:`\theta \in T^d` to a bounded real number; ``expert.bind(x)`` returns
``theta (M, d) -> (phi (K, M), grad (K, M, d))`` (:mod:`.base`).

Modules:

- :mod:`.base` -- the interface and shared validation;
- :mod:`.gates` -- the gate language (gates, noise channels, observables);
- :mod:`.devices` -- PennyLane devices, pure or mixed state;
- :mod:`.circuit` -- a gate list compiled at fixed data into fixed segments
  and diagonal trainable groups;
- :mod:`.fourier` -- the exact Fourier path (coefficients from grid samples);
- :mod:`.statevector` -- the exact batched state/density-matrix path with
  adjoint gradients;
- :mod:`.cost` -- the cost model that picks the path per expert;
- :mod:`.qnn`, :mod:`.classical`, :mod:`.user` -- the kinds ``qnn``,
  ``cosine``, ``python``;
- :mod:`.qnode` -- a PennyLane QNode translated into gate rows (a ``qnn``
  expert), checked against the QNode;
- :mod:`.registry` -- kinds by name, :func:`build_expert` and :func:`as_expert`.
"""

from mfpde.experts.base import BoundExpert, Expert, data_dim_required
from mfpde.experts.classical import CosineExpert
from mfpde.experts.fourier import TrigPolyBound, fourier_from_samples, fourier_grid
from mfpde.experts.gates import (
                                 CHANNEL_TABLE,
                                 GATE_ALIASES,
                                 GATE_TABLE,
                                 PAULIS,
                                 hardware_efficient,
                                 parse_gates,
                                 parse_observable,
)
from mfpde.experts.qnn import QNNExpert
from mfpde.experts.qnode import QNodeExpert
from mfpde.experts.registry import EXPERT_KINDS, as_expert, build_expert, known_kinds, register_kind
from mfpde.experts.statevector import StatevectorBound
from mfpde.experts.user import PythonExpert

KNOWN_KINDS = known_kinds()

__all__ = [
    "BoundExpert", "CHANNEL_TABLE", "CosineExpert", "EXPERT_KINDS", "Expert", "GATE_ALIASES", "GATE_TABLE",
    "KNOWN_KINDS", "PAULIS", "PythonExpert", "QNNExpert", "QNodeExpert", "as_expert", "StatevectorBound", "TrigPolyBound", "build_expert",
    "data_dim_required", "fourier_from_samples", "fourier_grid", "hardware_efficient", "known_kinds", "parse_gates",
    "parse_observable", "register_kind",
]
