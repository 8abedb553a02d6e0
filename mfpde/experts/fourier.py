r"""Exact Fourier path: a trigonometric polynomial in theta, its coefficients from grid samples.

When every :math:`\theta_i` enters through :math:`n_i` rotations by exactly
:math:`\theta_i` (channels and fixed gates do not change this),

.. math::

    \phi(x;\theta) = \sum_{s \in \prod_i \{-n_i..n_i\}} c_s(x)\, e^{i s\cdot\theta},
    \qquad c_{-s} = \overline{c_s},

and the :math:`c_s(x_k)` follow exactly from samples on the tensor grid of
:math:`2n_i+1` equispaced angles per coordinate by an FFT.  Evaluation is then
two matrix products per call, :math:`\prod_i(2n_i+1)` coefficients per data
point and output.
"""

from __future__ import annotations

import numpy as np

from mfpde.experts.base import as_theta


class TrigPolyBound:
    r"""Evaluate :math:`\phi_k(\theta) = \sum_s c_{k,s} e^{i s\cdot\theta}` (real)
    and its gradient :math:`\nabla\phi_k = \sum_s i s\, c_{k,s} e^{i s\cdot\theta}`
    for all k and many theta at once.

    Per coordinate, :math:`e^{i s_j \theta_j}` for :math:`s_j=-n_j..n_j` is built
    from :math:`z_j = e^{i\theta_j}` by repeated multiplication (M, 2 n_j + 1);
    their tensor product is ``E`` (M, S).  Writing ``E`` as real numbers
    ``[Re E_s, Im E_s]`` interleaved (M, 2S) and the coefficients as
    ``B[k] = [Re a_{k,s}, -Im a_{k,s}]`` (2S, .) with ``a = c`` for the value and
    ``a = i s_j c`` for the gradient, ``Re(sum_s a_s E_s)`` is a real matrix product: for few
    frequencies one batched product per output, written straight into
    C-contiguous ``phi`` (K, M) and ``grad`` (K, M, d); for many (S > 16) a
    single GEMM followed by a transpose.  Large ``M * S`` is processed in
    blocks of rows to bound memory.
    """

    _block_elems = 1 << 21  # complex entries of E per block (32 MiB)
    _gemm_min_S = 16

    def __init__(self, degrees: tuple[int, ...], freqs: np.ndarray, coeffs: np.ndarray):
        self.degrees = tuple(int(n) for n in degrees)
        self.d = len(degrees)
        self.K, self.S = coeffs.shape
        s = freqs.astype(float)  # (S, d)
        a = np.stack([coeffs] + [1j * s[:, j] * coeffs for j in range(self.d)], axis=2)  # (K, S, d+1)
        B = np.empty((self.K, self.S, 2, self.d + 1))
        B[:, :, 0, :] = a.real
        B[:, :, 1, :] = -a.imag
        B = B.reshape(self.K, 2 * self.S, self.d + 1)
        self.B_phi = np.ascontiguousarray(B[:, :, :1])  # (K, 2S, 1)
        self.B_grad = np.ascontiguousarray(B[:, :, 1:])  # (K, 2S, d)
        # many frequencies: one plain GEMM (M, 2S) @ (2S, K (d+1)) and a transpose is faster
        self.B_all = np.ascontiguousarray(B.transpose(1, 0, 2).reshape(2 * self.S, -1)) if self.S > self._gemm_min_S else None

    def exp_table(self, theta: np.ndarray) -> np.ndarray:
        """``E[m, s] = exp(i s . theta_m)`` (M, S), s in C order over the coordinates."""
        M = theta.shape[0]
        z = np.cos(theta) + 1j * np.sin(theta)  # (M, d)
        E = None
        for j, n in enumerate(self.degrees):
            ej = np.empty((M, 2 * n + 1), dtype=complex)
            ej[:, n] = 1.0
            for p in range(1, n + 1):
                np.multiply(ej[:, n + p - 1], z[:, j], out=ej[:, n + p])
                np.conjugate(ej[:, n + p], out=ej[:, n - p])
            E = ej if E is None else (E[:, :, None] * ej[:, None, :]).reshape(M, E.shape[1] * ej.shape[1])
        return E

    def _block(self, theta):
        Ev = self.exp_table(theta).view(float)  # (M, 2S)
        if self.B_all is None:
            return np.matmul(Ev[None], self.B_phi)[..., 0], np.matmul(Ev[None], self.B_grad)
        out = (Ev @ self.B_all).reshape(theta.shape[0], self.K, self.d + 1)
        return np.ascontiguousarray(out[:, :, 0].T), np.ascontiguousarray(out[:, :, 1:].transpose(1, 0, 2))

    def values(self, theta) -> np.ndarray:
        """phi (K, M) only: a third of the products of :meth:`__call__` in d = 2."""
        theta = as_theta(theta, self.d)
        step = max(1, self._block_elems // self.S)
        phi = np.empty((self.K, theta.shape[0]))
        for a in range(0, theta.shape[0], step):
            Ev = self.exp_table(theta[a : a + step]).view(float)
            phi[:, a : a + step] = np.matmul(Ev[None], self.B_phi)[..., 0]
        return phi

    def __call__(self, theta) -> tuple[np.ndarray, np.ndarray]:
        theta = as_theta(theta, self.d)
        M = theta.shape[0]
        step = max(1, self._block_elems // self.S)
        if M <= step:
            return self._block(theta)
        phi = np.empty((self.K, M))
        grad = np.empty((self.K, M, self.d))
        for a in range(0, M, step):
            phi[:, a : a + step], grad[:, a : a + step] = self._block(theta[a : a + step])
        return phi, grad


def fourier_grid(degrees: tuple[int, ...]) -> np.ndarray:
    """Tensor grid of ``2 n_i + 1`` equispaced angles ``2 pi j / (2 n_i + 1)``, shape (G, d), C order."""
    axes = [2 * np.pi * np.arange(2 * n + 1) / (2 * n + 1) for n in degrees]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1)


def fourier_from_samples(values: np.ndarray, degrees: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact Fourier coefficients of trigonometric polynomials from grid samples.

    ``values`` (K, G) are samples on :func:`fourier_grid`.  A trigonometric
    polynomial with :math:`|s_i| \le n_i` is determined by its samples on that
    grid, and :math:`c_s = \mathrm{FFT}(f)[s \bmod (2n+1)] / G`.  Returns
    ``freqs`` (S, d) int (C order, each coordinate from -n_i to n_i) and
    ``coeffs`` (K, S) complex.
    """
    K = values.shape[0]
    shape = tuple(2 * n + 1 for n in degrees)
    F = np.fft.fftn(values.reshape((K,) + shape), axes=tuple(range(1, len(shape) + 1)))
    F = np.fft.fftshift(F, axes=tuple(range(1, len(shape) + 1))) / np.prod(shape)
    mesh = np.meshgrid(*[np.arange(-n, n + 1) for n in degrees], indexing="ij")
    freqs = np.stack([g.ravel() for g in mesh], axis=1).astype(int)
    return freqs, F.reshape(K, -1)
