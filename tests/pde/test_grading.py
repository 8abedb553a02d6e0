"""[pde] grading: the key, the swept-interval prediction, and a PDE run on a graded mesh."""

import tomllib

import numpy as np
import pytest

from mfpde.config.case import case_from_dict, default_case_text
from mfpde.errors import CaseError
from mfpde.pde.grading import MARGIN, case_coordinates, swept_intervals
from mfpde.model.initial import initial_density


def box_case(pde=None, t_end=1.0):
    t = tomllib.loads(default_case_text())
    t["init"] = {"kind": "box", "lower": [-0.6, -0.5], "upper": [0.6, 0.7]}
    t["dynamics"]["t_end"] = t_end
    t["pde"] = pde or {}
    return case_from_dict(t)


@pytest.mark.parametrize("pde, problem", [
    ({"grading": 0.5}, "must be >= 1"),
    ({"grading": "x"}, "must be a number"),
    ({"grading": 2.0, "mesh": "m.npz"}, "pde.mesh"),
])
def test_bad_grading_is_refused(pde, problem):
    with pytest.raises(CaseError) as e:
        box_case(pde)
    assert e.value.key in ("pde.grading", "pde.mesh") and problem in str(e.value)


def test_uniform_is_the_default():
    assert box_case().pde.grading == 1.0 and case_coordinates(box_case()) is None


def test_swept_interval_starts_at_the_box_and_contains_the_particles():
    """At t_end -> 0 the interval is the box plus the margin; at t_end = 4 it contains every point of
    an independent particle run (RK4 of the finite-N flow from the box, N = 400)."""
    c = box_case(t_end=4.0)
    expert_at = c.expert.bind(c.data.x)
    rho0 = initial_density(c)
    iv = swept_intervals(expert_at, c.data.y, c.data.w, rho0, 1.0, 1e-9)
    assert np.allclose(iv, [(-0.6 - MARGIN, 0.6 + MARGIN), (-0.5 - MARGIN, 0.7 + MARGIN)], atol=1e-8)
    iv = np.array(swept_intervals(expert_at, c.data.y, c.data.w, rho0, 1.0, 4.0))
    theta = rho0.sample(400, np.random.default_rng(0))
    theta = np.where(theta > np.pi, theta - 2 * np.pi, theta)  # unwrapped like the box
    lo, hi = theta.copy(), theta.copy()
    h = 0.02
    for _ in range(200):
        def v(th):
            phi, grad = expert_at(th)
            r = phi.mean(axis=1) - c.data.y
            return -np.einsum("k,kmd->md", c.data.w * r, grad)
        k1 = v(theta)
        k2 = v(theta + 0.5 * h * k1)
        k3 = v(theta + 0.5 * h * k2)
        k4 = v(theta + h * k3)
        theta = theta + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        lo, hi = np.minimum(lo, theta), np.maximum(hi, theta)
    assert np.all(lo.min(axis=0) > iv[:, 0]) and np.all(hi.max(axis=0) < iv[:, 1])
    assert np.all(iv[:, 1] - iv[:, 0] < 2 * np.pi - 1.0)  # and it is not the whole circle


def test_pde_on_a_graded_mesh_conserves_mass_and_stays_nonnegative():
    from mfpde.runs.pde import run_pde

    c = box_case({"n": 12, "grading": 3.0, "cell": "box", "save_every": 0.25}, t_end=0.5)
    obs, _ = run_pde(c, write=False, progress=False)
    assert np.max(np.abs(np.asarray(obs["mass"]) - 1.0)) < 1e-12
    assert np.min(obs["min_rho"]) >= 0.0
