r"""Particles against the PDE, per saved time (DESIGN section 5).

For the empirical measure :math:`\mu_N` of a particle run and the PDE density
:math:`\rho_t` at the same saved time:

* ``observable_error`` :math:`\max_k |f_N(x_k) - F_\rho(x_k)|`;
* ``risk_error`` :math:`|R_N - R(\rho)|`;
* ``moment_error`` :math:`\max_w |m_w(\mu_N) - m_w(\rho)|` over the saved frequencies;
* ``sobolev`` the negative-Sobolev distance built from those moments
  (:func:`mfpde.metrics.negative_sobolev`);
* ``wasserstein`` :math:`W_1(\mu_N, \rho_t)` with the periodic ground cost, the
  density discretized by a cell quadrature (:func:`mfpde.fields.cellwise_quadrature`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ResultFileError
from .metrics import negative_sobolev, wasserstein_torus
from .storage import read_run, write_run

METRICS = ("observable_error", "risk_error", "moment_error", "sobolev", "wasserstein")
QUADRATURE_ORDER = 2  # atoms of the PDE density for W1: a few points per cell


@dataclass
class PDESolution:
    """The saved states of a PDE run: observables and the cellwise density."""

    t: np.ndarray
    F: np.ndarray
    risk: np.ndarray
    moments: np.ndarray
    freqs: np.ndarray
    cell_type: str
    degree: int
    vertices: np.ndarray
    density: np.ndarray  # (T, C, ndofs)
    reference_points: np.ndarray = None  # (ndofs, d) nodes on the reference cell
    case_hash: str = ""
    extra: dict = field(default_factory=dict)
    _atoms: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_tree(cls, tree: dict, attrs: dict) -> "PDESolution":
        o, p = tree["observables"], tree["pde"]
        return cls(t=o["t"], F=o["F"], risk=o["risk"], moments=o["moments"], freqs=o["moment_freqs"],
                   cell_type=str(p["cell_type"]), degree=int(p["degree"]), vertices=p["mesh"]["vertices"],
                   density=p["density"], reference_points=p["reference_points"], case_hash=str(attrs.get("case_hash", "")),
                   extra={k: o[k] for k in ("mass", "min_rho") if k in o})

    @classmethod
    def from_file(cls, path) -> "PDESolution":
        tree, attrs = read_run(path)
        if attrs.get("kind") not in ("pde", "study") or "pde" not in tree:
            raise ResultFileError(f"{path}: not a PDE result (kind = {attrs.get('kind')!r})")
        return cls.from_tree(tree, attrs)

    def cellwise(self, i: int) -> dict:
        return {"cell_type": self.cell_type, "degree": self.degree, "vertices": self.vertices,
                "values": self.density[i], "reference_points": self.reference_points}

    def atoms(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Weighted points (quadrature of the density at saved time i), cached."""
        if i not in self._atoms:
            from .fields import cellwise_quadrature

            pts, mass = cellwise_quadrature(self.cellwise(i), QUADRATURE_ORDER)
            self._atoms[i] = (np.mod(pts, 2 * np.pi), np.clip(mass, 0.0, None))
        return self._atoms[i]

    def index_of(self, t: float) -> int:
        j = int(np.argmin(np.abs(self.t - t)))
        if abs(self.t[j] - t) > 1e-9 * max(1.0, abs(t)):
            raise ResultFileError(f"the PDE run has no saved state at t = {t:g}")
        return j


def reference_from_tree(tree: dict, attrs: dict):
    """The reference of a comparison: a PDE run, or a limit run (:class:`mfpde.limit.LimitSolution`,
    DESIGN 10.2) with the same interface (t, F, risk, moments, freqs, atoms, index_of)."""
    if attrs.get("kind") == "limit":
        from .limit import LimitSolution

        return LimitSolution.from_tree(tree, attrs)
    return PDESolution.from_tree(tree, attrs)


def load_reference(path):
    tree, attrs = read_run(path)
    if attrs.get("kind") not in ("pde", "limit"):
        raise ResultFileError(f"{path}: not a PDE or limit result (kind = {attrs.get('kind')!r})")
    return reference_from_tree(tree, attrs)


def common_times(t_a: np.ndarray, t_b: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs of the saved times the two runs share (to 1e-9)."""
    pairs = []
    for i, t in enumerate(t_a):
        j = int(np.argmin(np.abs(t_b - t)))
        if abs(t_b[j] - t) <= 1e-9 * max(1.0, abs(t)):
            pairs.append((i, j))
    return pairs


def particle_metrics(pde: PDESolution, t, F, risk, moments, theta, *,
                     wasserstein_times=None, wasserstein_grid: int | None = None) -> dict[str, np.ndarray]:
    """Every metric at the saved times ``t`` of a particle run (arrays of len(t)).

    ``theta`` (T, N, d); the times must be saved times of the PDE run.
    ``wasserstein_times`` restricts the (costlier) W1 to those indices (NaN elsewhere);
    ``wasserstein_grid`` fixes the grid of the reduction used for large problems in
    d >= 2 (:func:`mfpde.metrics.wasserstein_torus`; the same grid at every N keeps
    the bias of the reduction the same kind across a study).
    """
    T = len(t)
    out = {name: np.full(T, np.nan) for name in METRICS}
    for i in range(T):
        j = pde.index_of(t[i])
        out["observable_error"][i] = np.max(np.abs(F[i] - pde.F[j]))
        out["risk_error"][i] = abs(risk[i] - pde.risk[j])
        out["moment_error"][i] = np.max(np.abs(moments[i] - pde.moments[j]))
        out["sobolev"][i] = negative_sobolev(moments[i], pde.moments[j], pde.freqs)
        if wasserstein_times is None or i in wasserstein_times:
            pts, mass = pde.atoms(j)
            out["wasserstein"][i] = wasserstein_torus(theta[i], pts, mass, p=1, n_grid=wasserstein_grid)
    return out


def compare_files(pde_path, particle_paths, out_dir=None) -> dict:
    """``mfpde compare``: metrics per saved time for each particle file (the reference a PDE
    or a limit file); writes NAME.compare.h5."""
    pde_tree, pde_attrs = read_run(pde_path)
    if pde_attrs.get("kind") not in ("pde", "limit"):
        raise ResultFileError(f"{pde_path}: not a PDE or limit result (kind = {pde_attrs.get('kind')!r})")
    pde = reference_from_tree(pde_tree, pde_attrs)
    rows, lines, Ns, seeds = [], [], [], []
    t_ref = None
    for path in particle_paths:
        tree, attrs = read_run(path)
        if attrs.get("kind") != "particles":
            raise ResultFileError(f"{path}: not a particles result (kind = {attrs.get('kind')!r})")
        if attrs.get("case_hash") != pde.case_hash:
            raise ResultFileError(
                f"{path} and {pde_path} come from different cases "
                f"({attrs.get('case_name')!r} vs {pde_attrs.get('case_name')!r}: expert, data, init or dynamics differ)")
        o = tree["observables"]
        idx = [i for i, _ in common_times(o["t"], pde.t)]
        if not idx:
            raise ResultFileError(f"{path}: no saved time in common with {pde_path}")
        t = o["t"][idx]
        if t_ref is None:
            t_ref = t
        elif len(t) != len(t_ref) or np.any(np.abs(t - t_ref) > 1e-9):
            raise ResultFileError(f"{path}: saved times differ from the other particle files")
        stored = getattr(pde, "theta_index", None)  # a limit file may keep the points at some times only
        w_times = None if stored is None else {i for i, ti in enumerate(t) if pde.index_of(ti) in set(stored)}
        m = particle_metrics(pde, t, o["F"][idx], o["risk"][idx], o["moments"][idx], tree["particles"]["theta"][idx],
                             wasserstein_times=w_times)
        rows.append(m)
        N, seed = int(tree["particles"]["N"]), int(tree["particles"]["seed"])
        Ns.append(N)
        seeds.append(seed)
        lines.append(f"{Path(path).name} (N={N}, seed={seed}) at t={t[-1]:g}: "
                     + ", ".join(f"{k}={m[k][-1]:.3e}" for k in METRICS))
    out_dir = Path(out_dir) if out_dir else Path(pde_path).parent
    out_path = out_dir / (Path(pde_path).name.removesuffix(".h5").removesuffix(".pde") + ".compare.h5")
    tree = {"case": pde_tree["case"], "data": pde_tree["data"],
            "compare": {"t": t_ref, "N": np.array(Ns), "seed": np.array(seeds),
                        "pde_file": str(pde_path), "particle_files": "\n".join(map(str, particle_paths)),
                        "metrics": {k: np.array([r[k] for r in rows]) for k in METRICS}}}
    attrs = {"kind": "compare", "complete": True, "case_name": pde_attrs.get("case_name", ""),
             "case_hash": pde.case_hash,
             "d": int(pde_attrs["d"]) if "d" in pde_attrs else pde.vertices.shape[-1]}
    write_run(out_path, tree, attrs)
    return {"path": out_path, "lines": lines, "metrics": rows}
