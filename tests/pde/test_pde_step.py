"""The PDE time step of docs/pde.md, asserted directly, and the default-accuracy table's 1-d row.

A step that is too large by a constant factor need not be rejected (ssprk104 with 6x the forward-Euler
step stays positive), and it loses accuracy only at high order; so the formula itself is a test:

    dt = C_ssp cfl 3 h_min / ((2p + 1) max|v|),   C_ssp = 1 (ssprk3, ars443), 6 (ssprk104),
    capped by 2 cfl / (lr sum_k w_k max|grad phi_k|^2),   h_min = min_K d |K| / |dK|,

with h_min and max|v| computed here from the mesh spacing and the prescribed velocity, not read from
the solver.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import dolfinx_solver  # noqa: F401
from mfpde.pde import MeanFieldSolver
from mfpde.pde.torus import torus_mesh

COMM = MPI.COMM_WORLD
ROOT = Path(__file__).resolve().parents[2]


def _constant(a):
    a = np.asarray(a, float)
    return lambda th: np.tile(a, (len(th), 1))


@pytest.mark.parametrize("d,cell,degree,scheme", [(1, "box", 3, "ssprk104"), (2, "box", 2, "ssprk3"),
                                                  (2, "box", 3, "ssprk104"), (2, "simplex", 2, "ssprk104")])
def test_transport_step_is_the_documented_formula(d, cell, degree, scheme):
    """Prescribed constant v (|v| exact at every node), n = 8, h = 2 pi / n: h_min = d |K| / |dK| is
    h / 2 on intervals (|dK| = 2 points) and squares (2 h^2 / 4 h), h (2 - sqrt 2) / 2 on right triangles
    (2 (h^2 / 2) / ((2 + sqrt 2) h))."""
    n, cfl = 8, 0.3
    a = np.array([1.0, 0.5][:d])
    s = MeanFieldSolver(torus_mesh(COMM, d, n, cell), None, [0.0], [1.0], lambda th: 1.0 + 0 * th[:, 0], lr=1.0,
                        degree=degree, cfl=cfl, velocity=_constant(a), normalize=False, time_scheme=scheme)
    h = 2 * math.pi / n
    h_min = {("box", 1): h / 2, ("box", 2): h / 2, ("simplex", 2): h * (2 - math.sqrt(2)) / 2}[cell, d]
    c_ssp = {"ssprk3": 1.0, "ssprk104": 6.0}[scheme]
    expected = c_ssp * cfl * 3 * h_min / ((2 * degree + 1) * np.linalg.norm(a))
    assert s.stable_dt() == pytest.approx(expected, rel=1e-12)
    assert s.step() == pytest.approx(expected, rel=1e-12) and s.rejected_steps == 0


def _gibbs_expert(theta):
    """phi(x_k; theta) = cos(x_k + theta), x = (0, -pi/2): max |grad phi_k|^2 = 1 for each k."""
    x = np.array([0.0, -np.pi / 2])
    arg = x[:, None] + theta[None, :, 0]
    return np.cos(arg), -np.sin(arg)[..., None]


def test_relaxation_cap_binds_when_the_velocity_is_small():
    """Residuals near zero make max|v| tiny, so the transport step is huge and the cap
    2 cfl / (lr sum_k w_k max|grad phi_k|^2) = 2 cfl / lr (sum w = 1, max|grad phi_k|^2 = 1 up to the
    sampling of sin^2 at the velocity nodes) is the step."""
    cfl, lr = 0.25, 3.0
    rho0 = lambda th: np.exp(np.cos(th[:, 0]))  # noqa: E731
    s = MeanFieldSolver(torus_mesh(COMM, 1, 16, "box"), _gibbs_expert, [0.0, 0.0], [0.5, 0.5], rho0, lr=lr,
                        degree=3, cfl=cfl)
    # y = F(0) to round-off: the residuals and the velocity vanish
    s_y = s.observables()["F"]
    s = MeanFieldSolver(torus_mesh(COMM, 1, 16, "box"), _gibbs_expert, s_y + 1e-9, [0.5, 0.5], rho0, lr=lr,
                        degree=3, cfl=cfl)
    cap = 2 * cfl / lr
    assert s.stable_dt() == pytest.approx(cap, rel=1e-3)  # sampled max sin^2 of 5 nodes per cell, 16 cells
    assert s.stable_dt() <= cap * (1 + 1e-12)


def test_default_accuracy_table_row_cosine_1d():
    """docs/pde.md, default discretization and accuracy: cases/cosine-1d.toml (d = 1, t = 6) at the
    defaults (DG3, 16 intervals, cfl 0.25, ssprk104) against DG6, 16 intervals, cfl 0.025 (which agrees
    with DG6, 32 intervals, cfl 0.05 to 5.1e-12).  Measured max_k |F - F_ref| = 3.1e-9 (docs/pde.md quotes
    9.1e-10); with the step doubled 5.3e-8 (the error falls as cfl^4), so the bound 6e-9 tests the step too."""
    from mfpde.config.case import load_case
    from mfpde.runs.pde import build_pde_solver

    def F_at(**pde):
        case = load_case(ROOT / "cases" / "cosine-1d.toml")
        for k, v in pde.items():
            setattr(case.pde, k, v)
        s = build_pde_solver(case, COMM)
        s.advance(case.dynamics.t_end)
        assert s.rejected_steps == 0
        return s.observables()["F"], s

    F, s = F_at()
    assert (s.degree, s.num_dofs, s.time_scheme) == (3, 64, "ssprk104")
    ref, _ = F_at(degree=6, cfl=0.025)
    err = np.abs(F - ref).max()
    assert 1e-10 < err < 6e-9, err


def test_initial_density_is_scaled_to_mass_one():
    """docs/pde.md: the projected rho_0 is limited, then scaled to mass 1 (normalize=True, the default):
    an unnormalized rho_0 (mass 2 pi I_0(1) on T^1) and 7 times it give the same state, of mass 1."""
    mesh = torus_mesh(COMM, 1, 8, "box")
    states = []
    for scale in (1.0, 7.0):
        rho0 = lambda th, c=scale: c * np.exp(np.cos(th[:, 0]))  # noqa: E731
        s = MeanFieldSolver(mesh, _gibbs_expert, [0.3, 0.1], [0.5, 0.5], rho0, lr=1.0, degree=2)
        assert abs(s.observables()["mass"] - 1) < 1e-13
        states.append(s.U.copy())
    np.testing.assert_allclose(states[1], states[0], rtol=1e-13, atol=1e-15)
