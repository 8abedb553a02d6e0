r"""The lazy (NTK) scaling and its limit (DESIGN 10.4).

With ``[dynamics] scaling = "ntk"`` the N-expert model and its gradient flow are

.. math::

    f_N(x) = N^{-1/2} \sum_i \big(\phi(x;\theta_i) - \phi(x;\theta_i(0))\big), \qquad
    \frac{d\theta_i}{dt} = -\mathrm{lr}\, N^{-1/2} \sum_k w_k \big(f_N(x_k) - y_k\big)
        \nabla_\theta \phi(x_k;\theta_i)
      = -\mathrm{lr}\, \nabla_{\theta_i} L_N ,

i.e. the mean-field velocity of :mod:`mfpde.model.velocity` with output weight
:math:`N^{-1/2}` instead of :math:`1/N`, learning rate
:math:`\mathrm{lr}\,N^{-1/2}` and targets shifted by the initial output
(:func:`scaled_weight_and_lr`; :class:`mfpde.particles.system.ParticleSystem` does the rest).
Each expert moves by :math:`O(N^{-1/2})`, and as :math:`N \to \infty` the
residual :math:`r = f - y` solves the linear equation

.. math::

    \frac{dr}{dt} = -\mathrm{lr}\, \Theta W r, \quad r(0) = -y, \qquad
    \Theta_{kl} = E_{\rho_0}\big[\nabla\phi(x_k;\cdot)\cdot\nabla\phi(x_l;\cdot)\big],
    \quad W = \mathrm{diag}(w).

The kernel is computed exactly from the Fourier coefficients
:math:`\phi(x_k;\theta) = \sum_s c_{k,s} e^{i s\cdot\theta}` of a trigonometric-polynomial
expert (:func:`expert_fourier`): with :math:`g^{(j)}_{k,s} = i s_j c_{k,s}`,

.. math::

    \Theta_{kl} = \mathrm{Re} \sum_j \sum_{s,s'} g^{(j)}_{k,s}\, \overline{g^{(j)}_{l,s'}}\,
        \hat\rho_0(s - s'), \qquad \hat\rho_0(m) = E_{\rho_0}[e^{i m\cdot\theta}],

which for the uniform :math:`\rho_0` is Parseval,
:math:`\Theta_{kl} = \mathrm{Re}\sum_s |s|^2 c_{k,s}\overline{c_{l,s}}`, and for the
von Mises product :math:`\hat\rho_0(m) = \prod_j e^{i m_j\mu_j} I_{m_j}(\kappa_j)/I_0(\kappa_j)`
(exact, no quadrature).  The limit risk is closed form: with
:math:`A = W^{1/2}\Theta W^{1/2} = Q\Lambda Q^T` and :math:`u = Q^T W^{1/2} r(0)`,
:math:`R(t) = \tfrac12 \sum_j e^{-2\,\mathrm{lr}\,\lambda_j t} u_j^2`
(:func:`limit_risk`; :func:`limit_residual` gives :math:`r(t) = e^{-\mathrm{lr}\Theta W t} r(0)`).
"""

from __future__ import annotations

import numpy as np

from mfpde.config.case import SCALINGS
from mfpde.errors import CaseError
from mfpde.model.initial import characteristic_function
from mfpde.experts import fourier_from_samples, fourier_grid


def scaled_weight_and_lr(scaling: str, n: int, lr: float) -> tuple[float, float]:
    """(output weight of one expert, learning rate of the velocity):
    mean-field ``(1/N, lr)``, ntk ``(N^{-1/2}, lr N^{-1/2})``."""
    if scaling == "mean-field":
        return 1.0 / n, lr
    if scaling == "ntk":
        return n ** -0.5, lr * n ** -0.5
    raise ValueError(f"unknown scaling {scaling!r} (known: {', '.join(SCALINGS)})")


# ------------------------------------------------------------------ the kernel


def expert_fourier(expert, x) -> tuple[np.ndarray, np.ndarray]:
    """``freqs`` (S, d) int and ``coeffs`` (K, S) of :math:`\\phi(x_k;\\cdot)`, exact.

    The bound expert is sampled on the tensor grid of ``2 n_i + 1`` angles
    (:func:`mfpde.experts.fourier_grid`), which determines a trigonometric
    polynomial of degree ``n_i`` exactly.  An expert without a known
    ``max_frequency`` is refused.
    """
    degrees = expert.max_frequency()
    if degrees is None:
        raise CaseError("expert", "the NTK limit needs a trigonometric-polynomial expert with a known max_frequency")
    phi, _ = expert.bind(x)(fourier_grid(degrees))
    return fourier_from_samples(phi, degrees)


def ntk_kernel(expert, x, init) -> np.ndarray:
    """:math:`\\Theta_{kl} = E_{\\rho_0}[\\nabla\\phi(x_k;\\cdot)\\cdot\\nabla\\phi(x_l;\\cdot)]`: (K, K), exact."""
    freqs, coeffs = expert_fourier(expert, x)
    if init.kind == "uniform":  # Parseval: only s = s' survives
        return np.real((coeffs * np.sum(freqs ** 2, axis=1)) @ coeffs.conj().T)
    M = characteristic_function(init, freqs[:, None, :] - freqs[None, :, :])  # (S, S)
    theta = np.zeros((coeffs.shape[0],) * 2)
    for j in range(freqs.shape[1]):
        g = coeffs * (1j * freqs[:, j])  # (K, S): Fourier coefficients of d phi / d theta_j
        theta += np.real(g @ M @ g.conj().T)
    return theta


def empirical_kernel(grad: np.ndarray) -> np.ndarray:
    """:math:`(1/N)\\sum_i \\nabla\\phi(x_k;\\theta_i)\\cdot\\nabla\\phi(x_l;\\theta_i)` from ``grad`` (K, N, d): (K, K)."""
    K, N, d = grad.shape
    flat = grad.reshape(K, N * d)
    return flat @ flat.T / N


# ------------------------------------------------------------------ the limit


def _modes(theta: np.ndarray, w: np.ndarray, r0: np.ndarray):
    """Eigen-decomposition of :math:`A = W^{1/2}\\Theta W^{1/2}` and :math:`u = Q^T W^{1/2} r_0`."""
    sw = np.sqrt(np.asarray(w, float))
    lam, Q = np.linalg.eigh(sw[:, None] * theta * sw[None, :])
    return np.clip(lam, 0.0, None), Q, Q.T @ (sw * r0), sw


def limit_residual(theta: np.ndarray, w, y, lr: float, t) -> np.ndarray:
    """:math:`r(t) = e^{-\\mathrm{lr}\\Theta W t} r(0)`, :math:`r(0) = -y`, at times ``t`` (T,): (T, K)."""
    lam, Q, u, sw = _modes(theta, w, -np.asarray(y, float))
    decay = np.exp(-lr * np.outer(np.asarray(t, float), lam))  # (T, K)
    return (decay * u) @ Q.T / sw


def limit_risk(theta: np.ndarray, w, y, lr: float, t) -> np.ndarray:
    """:math:`R(t) = \\tfrac12 \\sum_k w_k r_k(t)^2 = \\tfrac12\\sum_j e^{-2\\mathrm{lr}\\lambda_j t} u_j^2`: (T,)."""
    lam, _, u, _ = _modes(theta, w, -np.asarray(y, float))
    return 0.5 * np.exp(-2 * lr * np.outer(np.asarray(t, float), lam)) @ u ** 2
