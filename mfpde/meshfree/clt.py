r"""Fluctuations of the finite mixture around its limit (DESIGN 10.3): the CLT covariance.

For N i.i.d. initial experts, :math:`f_N(x, t) = F(x, t; \mu_N^0)` is the
mean-field output started from the empirical measure, so to first order

.. math::

    \sqrt N\,(f_N(x_k, t) - F(x_k, t)) \approx \int g_t(\theta)\, d\nu_N(\theta),
    \qquad \nu_N = \sqrt N(\mu_N^0 - \rho_0) \to \text{Gaussian},

    \mathrm{Cov}_t = \mathrm{Cov}_{\rho_0}\big(g_t(\theta)\big) \quad (K \times K),

where :math:`g_t(\theta) = \delta F(\cdot, t) / \delta\rho_0(\theta)` is the
influence function of the initial measure on the output (the linearization
of the dynamics around the limit).  Adding mass :math:`\epsilon` at
:math:`\theta` changes the output directly by :math:`\phi(x; X_t(\theta))`
and, through the residual, moves every characteristic; the adjoint of the
tangent-linear characteristics gives both at once.  With the points
:math:`X_j(t)`, weights :math:`a_j`, residual :math:`r(t)`,
:math:`H_j = -\mathrm{lr}\sum_k w_k r_k \nabla^2\phi_k(X_j)` and, for each
output ``q`` and end time ``T``, the adjoint :math:`\mu_j(t)\in R^d`:

.. math::

    \dot\mu_j = -H_j \mu_j - \sum_k c_k \nabla\phi_k(X_j), \quad
    \mu_j(T) = \nabla\phi_q(X_j(T)), \quad
    c_k = -\mathrm{lr}\, w_k \sum_i a_i \nabla\phi_k(X_i)\cdot\mu_i,

    g_T(\theta_j)_q = \phi_q(X_j(T)) + \int_0^T \sum_k c_k(t)\, \phi_k(X_j(t))\, dt .

At :math:`T = 0`, :math:`g_0 = \phi(\theta)` and the covariance is
:math:`\mathrm{Cov}_{\rho_0}(\phi(x_k;\cdot), \phi(x_l;\cdot))`, computed by the
rule (exact for a trigonometric-polynomial expert on a fine enough tensor
rule).  The adjoint runs backward with RK4 on the stored forward trajectory
(the midpoints by cubic Hermite interpolation from the stored velocities,
O(h^4) like the forward scheme); all saved times share one backward sweep.
The Hessian of :math:`\Psi` enters as central differences of the exact
gradient (step :data:`HESSIAN_STEP`, relative error ~1e-10, far below the
sampling error the covariance predicts).
"""

from __future__ import annotations

import numpy as np

from mfpde.meshfree.characteristics import Characteristics, step_count

HESSIAN_STEP = 1e-5


def _node(flow: Characteristics, X: np.ndarray) -> dict:
    """phi (K, M), grad (K, M, d) and H (M, d, d) at the points X of this rank."""
    phi, grad = flow.expert_at(X)
    F = flow.allreduce(phi @ flow.weights)
    c = -flow.lr * flow.w * (F - flow.y)  # (K,)
    M, d = X.shape
    H = np.empty((M, d, d))
    for a in range(d):
        e = np.zeros(d)
        e[a] = HESSIAN_STEP
        _, gp = flow.expert_at(X + e)
        _, gm = flow.expert_at(X - e)
        H[:, :, a] = np.einsum("k,kmd->md", c, gp - gm) / (2 * HESSIAN_STEP)
    H = 0.5 * (H + H.transpose(0, 2, 1))
    return {"phi": phi, "grad": grad, "H": H}


def _adjoint_rhs(flow: Characteristics, nd: dict, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reversed-time derivatives of (mu (A, K, M, d), G (A, K, M))."""
    local = np.einsum("kmd,aqmd->aqk", nd["grad"] * flow.weights[None, :, None], mu)
    c = -flow.lr * flow.w * flow.allreduce(local)  # (A, K, K)
    dmu = np.einsum("mde,aqme->aqmd", nd["H"], mu) + np.einsum("aqk,kmd->aqmd", c, nd["grad"])
    return dmu, np.einsum("aqk,km->aqm", c, nd["phi"])


def influence(flow: Characteristics, theta0: np.ndarray, t_save, dt: float, on_step=None) -> np.ndarray:
    """``g_t(theta_j)`` for every saved time: (T, K, M_local) on this rank's points."""
    # forward: the points, their velocity and the time at every step node
    X, V, times, node_of_save = [theta0], [], [0.0], []
    for ts in t_save:
        t = times[-1]
        n = step_count(ts - t, dt)
        for i in range(n):
            h = (ts - t) / n
            new, v = flow.step(X[-1], h)
            X.append(new)
            V.append(v)
            times.append(ts if i == n - 1 else t + (i + 1) * h)
            if on_step is not None:
                on_step(h)
        node_of_save.append(len(X) - 1)
    V.append(flow.rhs(X[-1])[0])

    # backward: one sweep, each saved time's adjoint joins at its node
    K = len(flow.y)
    M, d = theta0.shape
    g = np.empty((len(node_of_save), K, M))
    active: list[int] = []
    mu, G = np.zeros((0, K, M, d)), np.zeros((0, K, M))
    phi_end = {}
    node = _node(flow, X[-1])
    for n in range(len(X) - 1, -1, -1):
        starts = [s for s, ns in enumerate(node_of_save) if ns == n]
        for s in starts:
            phi_end[s] = node["phi"]
        mu = np.concatenate([mu, np.repeat(node["grad"][None], len(starts), axis=0)])
        G = np.concatenate([G, np.zeros((len(starts), K, M))])
        active += starts
        if n == 0:
            break
        h = times[n] - times[n - 1]
        nd_mid = _node(flow, 0.5 * (X[n] + X[n - 1]) + (h / 8.0) * (V[n - 1] - V[n]))
        nd_low = _node(flow, X[n - 1])
        k1 = _adjoint_rhs(flow, node, mu)
        k2 = _adjoint_rhs(flow, nd_mid, mu + 0.5 * h * k1[0])
        k3 = _adjoint_rhs(flow, nd_mid, mu + 0.5 * h * k2[0])
        k4 = _adjoint_rhs(flow, nd_low, mu + h * k3[0])
        mu = mu + (h / 6.0) * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        G = G + (h / 6.0) * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        node = nd_low
        if on_step is not None:
            on_step(h)
    for a, s in enumerate(active):
        g[s] = phi_end[s] + G[a]
    return g


def covariance(flow: Characteristics, g: np.ndarray) -> np.ndarray:
    """``Cov_rho0(g)`` by the rule: (T, K, K), summed over the ranks."""
    a = flow.weights
    second = flow.allreduce(np.einsum("m,tkm,tlm->tkl", a, g, g))
    mean = flow.allreduce(np.einsum("m,tkm->tk", a, g))
    cov = second - mean[:, :, None] * mean[:, None, :]
    return 0.5 * (cov + cov.transpose(0, 2, 1))


def clt_covariance(flow: Characteristics, theta0: np.ndarray, t_save, dt: float, on_step=None) -> np.ndarray:
    """Predicted covariance of ``sqrt(N)(f_N(x_k, t) - F(x_k, t))`` at the saved times: (T, K, K)."""
    return covariance(flow, influence(flow, theta0, t_save, dt, on_step))


def max_quantile(cov: np.ndarray, level: float = 0.95, draws: int = 20000, seed: int = 0) -> np.ndarray:
    """Per saved time, the ``level`` quantile of ``max_k |Z_k|`` for ``Z ~ N(0, cov[t])``: (T,).

    Monte Carlo with a fixed seed (``draws`` samples: the quantile to ~1%).  A covariance that is
    not finite (a linearized flow that overflowed) has quantile ``inf``.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, cov.shape[1]))
    out = np.empty(len(cov))
    for i, c in enumerate(cov):
        if not np.all(np.isfinite(c)):
            out[i] = np.inf
            continue
        vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        out[i] = np.quantile(np.abs(z @ root.T).max(axis=1), level)
    return out


N_BEYOND = int(np.iinfo(np.int64).max)


def _experts(worst: float, eps: float) -> int:
    with np.errstate(all="ignore"):
        n = (worst / eps) ** 2
    return int(np.ceil(n)) if np.isfinite(n) and n < N_BEYOND else N_BEYOND


def experts_needed(cov: np.ndarray, accuracies=(1e-1, 1e-2, 1e-3), level: float = 0.95) -> dict:
    """Smallest N with ``max_k |f_N - F| <= eps`` with probability ``level`` at each saved time
    (per time, to leading order in 1/sqrt(N)): ``N = (q / eps)^2`` with ``q`` the largest
    :func:`max_quantile` over the saved times.  ``N`` is int64: :data:`N_BEYOND` (2^63 - 1)
    stands for "more than that, or none": a covariance that grew without bound (an unstable
    linearized flow) or is not finite."""
    q = max_quantile(cov, level)
    worst = float(np.max(q))
    return {"accuracy": np.asarray(accuracies, float),
            "N": np.array([_experts(worst, e) for e in accuracies], dtype=np.int64),
            "quantile": q, "level": float(level)}
