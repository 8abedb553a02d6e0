"""The default Fourier moment set per dimension d (a rule of the case: which frequencies
``[pde] moment_max`` means), and its size; :func:`mfpde.model.moments.moment_freqs` builds it.

``|w|_inf <= moment_max`` for d <= 3 (:data:`BOX_MOMENTS_MAX_D`: the sets of every earlier
version, 12 frequencies at d = 2 and 62 at d = 3 for moment_max = 2), ``|w|_1 <= moment_max``
beyond (d^2 + d for moment_max = 2: 156 at d = 12, 420 at d = 20, where the box would hold
1.2e8 and 4.8e13).
"""

from __future__ import annotations

import math

#: the largest d whose default moment set is the full box ``|w|_inf <= wmax`` ((2 wmax + 1)^d / 2 rows);
#: beyond it the default is the cross-polytope ``|w|_1 <= wmax`` (O(d^wmax) rows), see :func:`mfpde.model.moments.moment_freqs`
BOX_MOMENTS_MAX_D = 3

MOMENT_NORMS = ("auto", "inf", "1")


def moment_norm(d: int, norm: str = "auto") -> str:
    """The norm of the moment set in dimension ``d``: ``"inf"`` for d <= 3, ``"1"`` beyond (``"auto"``)."""
    if norm not in MOMENT_NORMS:
        raise ValueError(f"moment_freqs: norm must be one of {MOMENT_NORMS}, got {norm!r}")
    if norm != "auto":
        return norm
    return "inf" if int(d) <= BOX_MOMENTS_MAX_D else "1"


def moment_count(d: int, wmax: int = 2, norm: str = "auto") -> int:
    """Rows of :func:`mfpde.model.moments.moment_freqs` (exact, without building them).

    ``|w|_inf <= m``: ``((2m + 1)^d - 1) / 2``; ``|w|_1 <= m``: ``(sum_k 2^k C(d, k) C(m, k) - 1) / 2``
    (``k`` nonzero components, each sign, ``C(m, k)`` ways to give them absolute values summing to at most m).
    """
    d, wmax = int(d), int(wmax)
    if moment_norm(d, norm) == "inf":
        return ((2 * wmax + 1) ** d - 1) // 2
    return (sum(2**k * math.comb(d, k) * math.comb(wmax, k) for k in range(min(d, wmax) + 1)) - 1) // 2
