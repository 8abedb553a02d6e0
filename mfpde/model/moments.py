"""Fourier moments of a measure on the torus ``T^d``.

``m_w(mu) = int exp(i w.theta) d mu(theta)`` for integer vectors ``w``; ``m_0 = 1`` and
``m_{-w} = conj(m_w)``, so only one of each ``+-w`` pair is stored (:func:`moment_freqs`).
For the empirical measure ``mu_N = (1/N) sum_i delta_{theta_i}`` they are exact finite sums.
"""

from __future__ import annotations

import itertools

import numpy as np

from mfpde.config.moment_set import BOX_MOMENTS_MAX_D, moment_count, moment_norm  # noqa: F401

# chunk size (number of complex/real entries of a temporary N_chunk x F or
# N_chunk x M array) used to bound memory in the vectorized kernels
_CHUNK_ENTRIES = 1 << 22


def _l1_ball(d: int, budget: int):
    """Every ``w in Z^d`` with ``|w|_1 <= budget``, lexicographic with each component from -budget up."""
    if d == 0:
        yield ()
        return
    for c in range(-budget, budget + 1):
        for rest in _l1_ball(d - 1, budget - abs(c)):
            yield (c,) + rest


def moment_freqs(d: int, wmax: int = 2, norm: str = "auto") -> np.ndarray:
    """Integer frequencies ``w in Z^d``, ``0 < |w| <= wmax``, one of each ``+-w`` pair.

    The norm (``norm = "auto"``, the default everywhere: :func:`moment_norm`) is ``|w|_inf`` for
    ``d <= 3`` (:data:`BOX_MOMENTS_MAX_D`): every frequency of the box, ``((2 wmax + 1)^d - 1) / 2``
    rows (12 at d = 2, 62 at d = 3 for wmax = 2); and ``|w|_1`` beyond: the frequencies that involve
    at most ``wmax`` coordinates, :func:`moment_count` rows, O(d^wmax) (d^2 + d for wmax = 2: 156 at
    d = 12, 420 at d = 20, instead of 1.2e8 and 4.8e13 for the box).  The box would grow as 5^d and
    make the default (wmax = 2) unusable beyond d = 10; the cross-polytope keeps every one- and
    two-coordinate marginal's lowest moments, which is what the moment errors and the negative
    Sobolev distance weigh most.  ``norm = "inf"`` or ``"1"`` forces one.

    The representative kept is the one whose first nonzero component is
    positive (an open half-space plus its boundary, lexicographically), so
    the full set ``{w : 0 < |w| <= wmax}`` is the disjoint union of the
    returned rows and their negatives.  The order is deterministic: lexicographic in ``(w_1, ..., w_d)``
    with each component running from ``-wmax`` to ``wmax``.

    Returns an ``(F, d)`` integer array.
    """
    d = int(d)
    wmax = int(wmax)
    if d < 1:
        raise ValueError(f"moment_freqs: d must be >= 1, got {d}")
    if wmax < 1:
        raise ValueError(f"moment_freqs: wmax must be >= 1, got {wmax}")
    if moment_norm(d, norm) == "inf":
        candidates = itertools.product(range(-wmax, wmax + 1), repeat=d)
    else:
        candidates = _l1_ball(d, wmax)
    rows = []
    for w in candidates:
        nz = [c for c in w if c != 0]
        if nz and nz[0] > 0:
            rows.append(w)
    return np.asarray(rows, dtype=np.int64).reshape(-1, d)


def empirical_moments(theta, freqs, weights=None) -> np.ndarray:
    """Fourier moments ``m_w = sum_i a_i exp(i w . theta_i)`` of a weighted point set.

    ``theta`` is ``(N, d)`` (or ``(N,)`` for d = 1), ``freqs`` is ``(F, d)``
    integer (from :func:`moment_freqs`), ``weights`` ``a_i`` default to
    ``1/N`` (the empirical measure).  The same function gives the moments of
    a quadrature-discretized density: pass the quadrature points as ``theta``
    and ``rho(x_q) * w_q`` as ``weights``.

    Vectorized, and chunked over the points so that the temporary ``N x F``
    phase array never exceeds about 4 M entries.  Returns ``(F,)`` complex.
    """
    theta = np.asarray(theta, dtype=float)
    freqs = np.asarray(freqs)
    if theta.ndim == 1:
        theta = theta[:, None]
    if freqs.ndim == 1:
        freqs = freqs[:, None]
    n, d = theta.shape
    if freqs.shape[1] != d:
        raise ValueError(f"empirical_moments: theta has d = {d} but freqs has d = {freqs.shape[1]}")
    if weights is None:
        a = np.full(n, 1.0 / max(n, 1))
    else:
        a = np.asarray(weights, dtype=float).reshape(-1)
        if a.shape[0] != n:
            raise ValueError(f"empirical_moments: {a.shape[0]} weights for {n} points")
    wf = freqs.astype(float)
    out = np.zeros(freqs.shape[0], dtype=complex)
    chunk = max(1, _CHUNK_ENTRIES // max(1, freqs.shape[0]))
    for s in range(0, n, chunk):
        phase = theta[s:s + chunk] @ wf.T                     # (n_c, F)
        out += a[s:s + chunk] @ np.cos(phase) + 1j * (a[s:s + chunk] @ np.sin(phase))
    return out
