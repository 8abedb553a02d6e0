r"""Which exact path evaluates a quantum expert: the cost model.

Per (expert, data) pair and evaluation (value and gradient), in floating-point
operations, with :math:`S = \prod_i (2n_i+1)` Fourier coefficients,
:math:`D_v` the state dimension (:math:`2^n`, or :math:`4^n` for a density
matrix), :math:`F` the fixed segments between trainable groups, :math:`G`
the groups and :math:`T` the trainable gates of :mod:`.circuit`:

.. math::

    C_\mathrm{fourier} = 4 S (d+1), \qquad
    C_\mathrm{sv} = w\,\big(8 D_v^2 (2F + [\text{pure}]) + 16 D_v G + 4 D_v T\big) + c\,G.

The statevector operations (batched small matrix products, elementwise
passes) run slower per flop than the Fourier path's one large product: the
weight :math:`w` = :data:`SV_FLOP_WEIGHT` and the per-group overhead
:math:`c` = :data:`SV_GROUP_OVERHEAD` (flop-equivalents per pair) were fitted
to CPU times of both paths on hardware-efficient circuits with 1-4 qubits and
d = 2-8 (K = 16, M = 4096; docs/experts.md).

The Fourier set-up simulates the circuit on :math:`S` grid points per data
point (:math:`S\, C_\mathrm{fwd}`, :math:`C_\mathrm{fwd} = 8 D_v^2 (F+1)`).
``auto`` picks the smaller total over a nominal workload of
:data:`NOMINAL_EVALUATIONS` evaluations per data point (4096 experts, 10 RK4
steps); the Fourier table (:math:`16 S (d+1)` bytes per data point, value
and gradient coefficients) must also fit in :data:`FOURIER_TABLE_BYTES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

METHODS = ("auto", "fourier", "statevector")
NOMINAL_EVALUATIONS = 4096 * 40
FOURIER_TABLE_BYTES = 1 << 30
#: one dense circuit matrix (2^n x 2^n complex, 4^n x 4^n for a density matrix) that compiling a
#: circuit builds (:mod:`.circuit`): 1 GiB, 13 qubits of a pure state, 6 of a mixed one
DENSE_MATRIX_BYTES = 1 << 30
SV_FLOP_WEIGHT = 2.0
SV_GROUP_OVERHEAD = 600.0


@dataclass(frozen=True)
class CostEstimate:
    coefficients: int  # S
    fourier_flops: float  # per pair and evaluation
    statevector_flops: float
    fourier_setup_flops: float  # per data point

    def fourier_table_bytes(self, d: int, K: int = 1) -> int:
        return 16 * self.coefficients * (d + 1) * K

    def as_dict(self) -> dict:
        return {
            "fourier_coefficients": self.coefficients,
            "fourier_flops_per_pair": self.fourier_flops,
            "statevector_flops_per_pair": self.statevector_flops,
            "fourier_setup_flops_per_data_point": self.fourier_setup_flops,
        }


def estimate(degrees, dim: int, n_fixed: int, n_groups: int, n_trainable: int, mixed: bool) -> CostEstimate:
    d = len(degrees)
    S = math.prod(2 * n + 1 for n in degrees)
    flops = 8.0 * dim**2 * (2 * n_fixed + (0 if mixed else 1)) + 16.0 * dim * n_groups + 4.0 * dim * n_trainable
    sv = SV_FLOP_WEIGHT * flops + SV_GROUP_OVERHEAD * n_groups
    return CostEstimate(S, 4.0 * S * (d + 1), sv, S * 8.0 * dim**2 * (n_fixed + 1))


def choose(cost: CostEstimate, d: int) -> str:
    """``"fourier"`` or ``"statevector"``: the cheaper over the nominal workload, if the table fits."""
    if cost.fourier_table_bytes(d) > FOURIER_TABLE_BYTES:
        return "statevector"
    fourier = NOMINAL_EVALUATIONS * cost.fourier_flops + cost.fourier_setup_flops
    return "fourier" if fourier <= NOMINAL_EVALUATIONS * cost.statevector_flops else "statevector"


def dense_matrix_bytes(wires: int, mixed: bool) -> int:
    """Bytes of one dense matrix of an n-qubit circuit: ``16 D^2``, ``D = 2^n`` (``4^n`` mixed)."""
    dim = 4**wires if mixed else 2**wires
    return 16 * dim * dim
