r"""Finite-element solver of the mean-field equation on the torus (DESIGN section 2).

.. math::

    \partial_t \rho + \nabla\cdot(\rho v) = \tau \Delta\rho, \qquad
    v = -\mathrm{lr} \sum_k w_k r_k \nabla_\theta \phi(x_k;\cdot), \qquad
    r_k = \int \phi(x_k;\theta)\rho(\theta)\,d\theta - y_k .

One module per piece:

* :mod:`.cells`: the DG space, per-cell geometry, quadrature and mass matrices;
* :mod:`.transport`: the upwind DG transport operator and the velocity fields;
* :mod:`.limiter`: the Zhang-Shu positivity limiter;
* :mod:`.diffusion`: the SIPG diffusion operator and its implicit solves;
* :mod:`.stepping`: the Runge-Kutta schemes;
* :mod:`.observables`: F, risk, moments, dissipation, mass, min_rho;
* :mod:`.solver`: :class:`MeanFieldSolver`, which puts them together;
* :mod:`.defaults`: the default ``[pde]`` discretization per dimension.
"""

__all__ = ["MeanFieldSolver", "TorusMesh", "torus_mesh", "load_torus_mesh"]


def __getattr__(name):
    """Lazy: ``mfpde.config.rules`` (read by the case loader) must not import DOLFINx."""
    if name == "MeanFieldSolver":
        from mfpde.pde.solver import MeanFieldSolver

        return MeanFieldSolver
    if name in ("TorusMesh", "torus_mesh", "load_torus_mesh"):
        from mfpde.pde import torus

        return getattr(torus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
