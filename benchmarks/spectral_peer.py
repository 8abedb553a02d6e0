r"""Fourier pseudo-spectral peer of mfpde's PDE solver (benchmark only, numpy).

.. math::

    \partial_t\rho = \nabla\cdot(\rho\,\mathrm{lr}\,\nabla\Psi) + \tau\Delta\rho
                   = -\nabla\cdot(\rho v) + \tau\Delta\rho,\qquad
    v = -\mathrm{lr}\sum_k w_k r_k \nabla\phi(x_k;\cdot),\qquad
    r_k = F(x_k) - y_k,

on ``[0, 2 pi)^d`` (d = 1, 2, 3) with ``M`` points per direction.

* State: the real FFT ``U = rfftn(rho)`` of the grid values.
* ``phi(x_k; .)`` and ``grad phi(x_k; .)`` at the grid points are evaluated once,
  exactly (the bound expert, ``case.expert.bind(x)``); the expert is fixed in
  time, only the residuals change.
* ``F(x_k) = (2 pi / M)^d sum_j phi(x_k; theta_j) rho_j``: the trapezoid rule,
  exact for the trigonometric polynomial ``phi`` times the band-limited ``rho``
  when ``M`` exceeds the expert's frequency.
* Transport term: the flux ``rho v`` at the grid points, ``rfftn``, ``-i k``
  (the Nyquist mode's derivative set to 0).  No dealiasing by default: ``v`` is
  a trigonometric polynomial of low degree ``B`` (``expert.max_frequency()``,
  1 for the shipped QNN cases), so the product ``rho v`` spills only into the
  ``B`` modes beyond ``M / 2`` and aliases onto the top ``B`` modes, which are
  at the truncation-error level of a resolved solution anyway.
  ``dealias=True`` applies the 2/3 rule instead; measured in ``--validate``
  on the default case it is 5-700x less accurate at equal ``M`` (it keeps
  only 2/3 of the modes), so it is off.
* Time: integrating-factor (Lawson) RK4.  The diffusion ``tau Laplace`` is
  exact in Fourier space (``exp(-tau |k|^2 h)``), the transport explicit with
  ``h = cfl / (M/2 * max_theta sum_a |v_a|)`` from the velocity at the start
  of each step, the last step shortened to land on ``t_end``.  Lawson RK4
  does not keep a stationary state exactly: its O(h^4) error shows near
  equilibrium with large steps (Gibbs check: 1.4e-6 at cfl = 1), so runs
  with ``tau > 0`` need a smaller CFL number (the benchmark sweeps it).
* Mass is the zero mode, which the transport term never changes: conserved to
  round-off.  Positivity is not enforced (``min_rho`` reports the grid minimum).

``python benchmarks/spectral_peer.py --validate`` checks it: spectral
convergence on the default case against an independent characteristics
reference, and the closed-form Gibbs fixed point (d = 1, tau = 0.1) of
issue 7; writes ``benchmarks/results/spectral_peer.json``.
"""

from __future__ import annotations

import math

import numpy as np


def grid_points(d: int, M: int) -> np.ndarray:
    """The ``M^d`` points ``2 pi j / M`` of ``[0, 2 pi)^d`` in C order: (M^d, d)."""
    g = 2.0 * np.pi * np.arange(M) / M
    return np.stack(np.meshgrid(*([g] * d), indexing="ij"), axis=-1).reshape(-1, d)


def wavenumbers(d: int, M: int) -> list[np.ndarray]:
    """Integer wavenumbers of the ``rfftn`` layout, one broadcastable array per axis."""
    ks = []
    for a in range(d):
        k = np.fft.rfftfreq(M, 1.0 / M) if a == d - 1 else np.fft.fftfreq(M, 1.0 / M)
        shape = [1] * d
        shape[a] = k.size
        ks.append(k.reshape(shape))
    return ks


def box_fourier(lower, upper, M: int) -> np.ndarray:
    """``rfftn`` layout of the exact Fourier series of the normalised box indicator,
    truncated to ``|k_a| < M/2`` (Nyquist modes 0): the spectral method's best start for a box."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    d = lower.size
    U = np.ones((1,) * d, dtype=complex)
    for a, k in enumerate(wavenumbers(d, M)):
        a0, b0 = lower[a], upper[a]
        kk = k.astype(float)
        safe = np.where(kk == 0, 1.0, kk)
        c = np.where(kk == 0, 1.0, (np.exp(-1j * safe * a0) - np.exp(-1j * safe * b0)) / (1j * safe * (b0 - a0)))
        c = np.where(np.abs(kk) >= M / 2, 0.0, c)  # (2 pi)^d rho_hat_k, per axis
        U = U * c
    return U * (M**d / (2.0 * np.pi) ** d)


class SpectralMeanField:
    """The mean-field PDE on an ``M^d`` Fourier grid; ``run(t_end)`` integrates it.

    ``expert_at(theta (P, d)) -> (phi (K, P), grad (K, P, d))`` (a bound expert);
    ``rho0`` either a callable of points (P, d) (sampled, then normalised to
    mass 1) or an ``rfftn`` array (e.g. :func:`box_fourier`).
    """

    def __init__(self, expert_at, y, w, lr: float, tau: float, d: int, M: int, rho0, dealias: bool = False):
        self.d, self.M = d, M
        self.shape = (M,) * d
        self.lr, self.tau = float(lr), float(tau)
        self.y = np.asarray(y, float).reshape(-1)
        self.w = np.asarray(w, float).reshape(-1)
        phi, grad = expert_at(grid_points(d, M))
        self.K = phi.shape[0]
        self.cell = (2.0 * np.pi / M) ** d
        self.phi = np.ascontiguousarray(phi) * self.cell  # (K, P): F = phi @ rho
        self.G = np.ascontiguousarray(np.moveaxis(grad, 2, 1).reshape(self.K, -1))  # (K, d*P)
        ks = wavenumbers(d, M)
        self.ik = [1j * np.where(np.abs(k) >= M / 2, 0.0, k) for k in ks]  # odd derivative: Nyquist -> 0
        self.k2 = sum(k.astype(float) ** 2 for k in ks)
        self.mask = None
        if dealias:
            self.mask = np.ones(self.k2.shape, bool)
            for k in ks:
                self.mask = self.mask & (np.abs(k) <= M / 3)
        if callable(rho0):
            vals = np.asarray(rho0(grid_points(d, M)), float).reshape(self.shape)
            vals = vals / (vals.sum() * self.cell)
            self.U = np.fft.rfftn(vals)
        else:
            self.U = np.array(rho0, dtype=complex).reshape(self.k2.shape)
        if self.mask is not None:
            self.U = self.U * self.mask
        self.t = 0.0
        self.steps = 0

    # ------------------------------------------------------------------ pieces
    def density(self, U=None) -> np.ndarray:
        return np.fft.irfftn(self.U if U is None else U, s=self.shape, axes=tuple(range(self.d)))

    def outputs(self, rho: np.ndarray) -> np.ndarray:
        return self.phi @ rho.reshape(-1)

    def transport(self, U):
        """``-div(rho v)`` in Fourier space and ``max sum_a |v_a|``."""
        rho = self.density(U)
        c = -self.lr * self.w * (self.outputs(rho) - self.y)
        v = (c @ self.G).reshape((self.d,) + self.shape)
        out = np.zeros_like(U)
        for a in range(self.d):
            out -= self.ik[a] * np.fft.rfftn(rho * v[a])
        if self.mask is not None:
            out *= self.mask
        return out, float(np.abs(v).sum(axis=0).max())

    # ------------------------------------------------------------------ stepping
    def run(self, t_end: float, cfl: float = 1.0) -> dict:
        """Lawson RK4 to ``t_end``; returns F, risk, mass, min_rho, steps."""
        L = -self.tau * self.k2
        U = self.U
        kmax = self.M / 2
        while self.t < t_end - 1e-14 * max(1.0, t_end):
            N1, vmax = self.transport(U)
            h = cfl / (kmax * max(vmax, 1e-12))
            left = t_end - self.t
            if h >= left:
                h = left
            else:  # spread the remaining time evenly if one more step would be tiny
                h = left / math.ceil(left / h)
            E, E2 = np.exp(0.5 * h * L), np.exp(h * L)
            k1 = h * N1
            k2 = h * self.transport(E * (U + 0.5 * k1))[0]
            k3 = h * self.transport(E * U + 0.5 * k2)[0]
            k4 = h * self.transport(E2 * U + E * k3)[0]
            U = E2 * U + (E2 * k1 + 2.0 * E * (k2 + k3) + k4) / 6.0
            self.t += h
            self.steps += 1
        self.U = U
        rho = self.density()
        F = self.outputs(rho)
        return {"F": F, "risk": 0.5 * float(np.sum(self.w * (F - self.y) ** 2)),
                "mass": float(rho.sum() * self.cell), "min_rho": float(rho.min()), "steps": self.steps}


# ---------------------------------------------------------------------- validation


GIBBS_CASE = {
    "name": "gibbs-1d",
    "expert": {"kind": "qnn", "wires": 1, "observable": [["Z", 0]],
               "gates": [["RY", "x", [0]], ["RY", "theta[0]", [0]]]},
    "data": {"x": [0.0, -math.pi / 2], "y": [0.5, 0.0], "w": [0.5, 0.5]},
    "dynamics": {"t_end": 60.0, "lr": 1.0, "tau": 0.1},
}


def gibbs_fixed_point(lr: float = 1.0, w: float = 0.5, tau: float = 0.1, y1: float = 0.5) -> float:
    """``m = I1(beta (y1 - m)) / I0(beta (y1 - m))``, ``beta = lr w / tau`` (issue 7)."""
    from scipy.optimize import brentq
    from scipy.special import i0e, i1e

    beta = lr * w / tau
    return brentq(lambda m: m - i1e(beta * (y1 - m)) / i0e(beta * (y1 - m)), 0.0, y1, xtol=1e-15, rtol=1e-15)


def validate(out: str | None = None, quick: bool = False) -> dict:
    import json
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _references import characteristics, trapezoid_rule

    from _provenance import provenance

    from mfpde.config.case import case_from_dict, default_case
    from mfpde.model.initial import initial_density

    result = {"provenance": provenance()}
    # 1. spectral convergence on the default case (d = 2, t = 4) against characteristics
    case = default_case()
    ex = case.expert.bind(case.data.x)
    y, w, lr, t_end = case.data.y, case.data.w, case.dynamics.lr, case.dynamics.t_end
    rho0 = initial_density(case)
    refs = {}
    for n, dt in ((48, 0.01), (64, 0.005)):
        refs[(n, dt)] = characteristics(ex, y, w, lr, *trapezoid_rule(rho0, 2, n), t_end, dt)
    F_ref = refs[(64, 0.005)]
    ref_acc = float(np.abs(refs[(48, 0.01)] - F_ref).max())
    print(f"default case reference: characteristics n=64 dt=0.005, |change from n=48 dt=0.01| = {ref_acc:.1e}")
    conv = []
    for M in (8, 12, 16) if quick else (8, 12, 16, 20, 24, 32):
        for cfl, dealias in ((1.0, False), (0.25, False), (0.25, True)):
            t0 = time.perf_counter()
            s = SpectralMeanField(ex, y, w, lr, 0.0, 2, M, rho0, dealias=dealias)
            r = s.run(t_end, cfl)
            row = {"M": M, "cfl": cfl, "dealias": dealias, "err": float(np.abs(r["F"] - F_ref).max()),
                   "time_s": time.perf_counter() - t0, "steps": r["steps"], "mass_defect": abs(r["mass"] - 1)}
            conv.append(row)
            print(f"  M={M:3d} cfl={cfl:4} dealias={dealias!s:5}: err {row['err']:.2e} "
                  f"({row['steps']} steps, {row['time_s']:.3f} s, mass defect {row['mass_defect']:.1e})")
    result["default_case"] = {"reference": "characteristics, trapezoid n=64, RK4 dt=0.005",
                              "reference_change": ref_acc, "runs": conv}
    # 2. Gibbs fixed point, d = 1, tau = 0.1
    m = gibbs_fixed_point()
    g = case_from_dict(GIBBS_CASE)
    gx = g.expert.bind(g.data.x)
    rows = []
    for M, t_end, cfl in ((16, 60.0, 1.0), (16, 60.0, 0.25), (16, 60.0, 0.1), (32, 60.0, 1.0),
                          (32, 60.0, 0.1), (32, 120.0, 0.1)):
        s = SpectralMeanField(gx, g.data.y, g.data.w, 1.0, 0.1, 1, M, lambda th: np.ones(len(th)))
        r = s.run(t_end, cfl)
        rows.append({"M": M, "t_end": t_end, "cfl": cfl, "F": r["F"].tolist(), "err_m": abs(r["F"][0] - m),
                     "abs_F2": abs(r["F"][1]), "steps": r["steps"]})
        print(f"  Gibbs M={M} t={t_end} cfl={cfl}: F(x1) = {r['F'][0]:.12f} (m = {m:.12f}, "
              f"err {rows[-1]['err_m']:.1e}), |F(x2)| = {abs(r['F'][1]):.1e}")
    result["gibbs"] = {"m": m, "runs": rows}
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1))
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validate", action="store_true", help="convergence and Gibbs checks")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "spectral_peer.json"))
    a = ap.parse_args()
    if a.validate:
        validate(a.out, a.quick)
    else:
        ap.print_help()
