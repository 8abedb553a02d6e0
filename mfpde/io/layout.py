r"""The names, units and axes of every dataset of every result file: one table, used by all writers.

:data:`DATASETS` maps a dataset's path (``*`` stands for one path component)
to its ``long_name``, its ``units`` (CF style: ``1`` dimensionless, ``rad``
an angle on the parameter torus, ``s`` seconds, empty for text) and the names
of its axes.  :func:`describe_file` writes them into an open file as the
attributes ``long_name`` and ``units`` and as HDF5 dimension scales, so that
generic tools (xarray with the ``h5netcdf`` engine, netCDF readers, HDFView)
see named dimensions and the saved times as a coordinate:

* an axis named like a 1-d dataset of the same length in the dataset's group
  or one of its parent groups (``t``, ``N``, ``seeds``, ``accuracy``,
  ``theta_index``), netCDF's scoping, is attached to that dataset, which
  becomes a dimension scale (a coordinate); an axis ``t`` without one is the
  run's saved times ``/observables/t``, hard-linked as ``/t`` (:data:`TIME_LINK`) so that
  every group sees it (netCDF looks for a dimension in the group and its parents);
* any other axis (data point ``k``, frequency ``freq``, ``cell``, ...) is a
  netCDF dimension without a variable: an empty dataset of that name at the
  root, marked as such (:data:`NOT_A_VARIABLE`); :func:`is_dimension_only`
  tells readers to skip it.

Only attributes and these dimension datasets are added: every dataset keeps
its path and values.
"""

from __future__ import annotations

import re

import h5py
import numpy as np

#: the NAME of a dimension scale that is a netCDF dimension but no variable (netCDF-4's convention)
NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."

_FIT = {  # the fields of a fitted rate error ~ C N^slope (mfpde.io.results.Fit)
    "slope": ("fitted exponent of N of log(error) against log(N)", "1", ()),
    "ci": ("confidence interval of the fitted exponent", "1", ("bound",)),
    "intercept": ("intercept of the fit of log(error) against log(N)", "1", ()),
    "r2": ("coefficient of determination of the fit", "1", ()),
    "theory_slope": ("exponent of N the theory predicts", "1", ()),
    "theory": ("the theory's rate", "", ()),
    "predicted": ("exponent of N the theory predicts", "1", ()),
    "predicted_text": ("the theory's rate", "", ()),
}

_METRIC = {
    "observable_error": "max_k |f_N(x_k) - F(x_k)|",
    "risk_error": "|R_N - R(rho)|",
    "moment_error": "max_w |m_w(mu_N) - m_w(rho)|",
    "sobolev": "negative-Sobolev distance between mu_N and rho",
    "wasserstein": "W1(mu_N, rho) on the torus",
}

#: dataset path (``*``: one path component) -> (long_name, units, axes); axes may be a list of
#: alternatives, one per number of dimensions (the vertices of a fixed or a moving mesh)
DATASETS: dict[str, tuple] = {
    # every kind
    "case": ("the case file as given, with the command line's overrides (TOML)", "", ()),
    "case_resolved": ("the case as run, every default filled in (TOML)", "", ()),
    "data/x": ("data inputs x_k", "1", ("k", "input")),
    "data/y": ("data targets y_k", "1", ("k",)),
    "data/w": ("data weights w_k", "1", ("k",)),
    "provenance/versions": ("versions of the packages (JSON)", "", ()),
    "provenance/mpi_size": ("number of MPI ranks", "1", ()),
    "provenance/git_revision": ("git revision of mfpde", "", ()),
    "provenance/wall_time_s": ("wall time of the run", "s", ()),
    "provenance/python": ("Python version", "", ()),
    "provenance/host": ("host name", "", ()),
    "provenance/written": ("date and time the file was written", "", ()),
    "provenance/expert": ("the expert as evaluated (JSON)", "", ()),
    "provenance/*": ("provenance entry", "", ()),
    "observables/t": ("saved time", "1", ("t",)),
    "observables/F": ("mean-field output F(x_k, t)", "1", ("t", "k")),
    "observables/risk": ("risk R(t)", "1", ("t",)),
    "observables/moments": ("Fourier moment m_w(t) of the measure", "1", ("t", "freq")),
    "observables/moment_freqs": ("frequency vector w of each moment", "1", ("freq", "component")),
    "observables/mass": ("total mass of the density", "1", ("t",)),
    "observables/min_rho": ("minimum of the density over the nodes", "rad^-d", ("t",)),
    # pde
    "pde/density": ("density rho at node j of cell c", "rad^-d", ("t", "cell", "node")),
    "pde/mesh/vertices": ("cell vertices on the parameter torus (unwrapped)", "rad",
                          [("cell", "vertex", "component"), ("t", "cell", "vertex", "component")]),
    "pde/mesh/period": ("period of the torus", "rad", ()),
    "pde/cell_type": ("cell type of the mesh", "", ()),
    "pde/degree": ("polynomial degree of the discontinuous Lagrange element", "1", ()),
    "pde/reference_points": ("nodes of the element on the reference cell", "1", ("node", "component")),
    "pde/n": ("cells per direction of the structured mesh", "1", ()),
    "pde/mesh_file": ("mesh file the run read", "", ()),
    "pde/steps": ("time steps taken", "1", ()),
    "pde/README": ("how to read the density", "", ()),
    # particles
    "particles/theta": ("expert parameters theta_i on the torus [0, 2 pi)^d", "rad", ("t", "particle", "component")),
    "particles/N": ("number of experts N", "1", ()),
    "particles/seed": ("random seed", "1", ()),
    "particles/rng_state": ("state of the random generator (JSON)", "", ()),
    "particles/step": ("time steps taken", "1", ()),
    "particles/integrator": ("time integrator", "", ()),
    # study
    "study/N": ("number of experts N", "1", ("N",)),
    "study/seeds": ("random seed", "1", ("seeds",)),
    "study/t": ("saved time", "1", ("t",)),
    **{f"study/metrics/{k}": (v, "1", ("N", "seeds", "t")) for k, v in _METRIC.items()},
    "study/particles_risk": ("risk R_N of the particles", "1", ("N", "seeds", "t")),
    "study/particles_F": ("output f_N(x_k, t) of the particles", "1", ("N", "seeds", "t", "k")),
    "study/reference": ("kind of the reference (pde or limit)", "", ()),
    "study/pde_file": ("reference file", "", ()),
    **{f"study/{g}/*/{k}": (f"{v[0]} ({'sup over t' if g == 'fit' else 'at t_end'})", *v[1:])
       for g in ("fit", "fit_t_end") for k, v in _FIT.items() if k not in ("predicted", "predicted_text")},
    "study/example/theta": ("expert parameters of one particle run", "rad", ("t", "particle", "component")),
    "study/example/N": ("number of experts of the example run", "1", ()),
    "study/example/seed": ("random seed of the example run", "1", ()),
    # compare
    "compare/t": ("saved time", "1", ("t",)),
    "compare/N": ("number of experts N of each particle file", "1", ("file",)),
    "compare/seed": ("random seed of each particle file", "1", ("file",)),
    **{f"compare/metrics/{k}": (v, "1", ("file", "t")) for k, v in _METRIC.items()},
    "compare/pde_file": ("reference file", "", ()),
    "compare/particle_files": ("particle files, one a line", "", ()),
    # limit
    "limit/weights": ("quadrature weight a_j of each point", "1", ("point",)),
    "limit/rule": ("quadrature rule", "", ()),
    "limit/theta": ("quadrature points X_t(theta_j) in [0, 2 pi)^d", "rad", ("theta_index", "point", "component")),
    "limit/theta_index": ("index of the saved time of each theta", "1", ("theta_index",)),
    "limit/rule_size": ("size parameter of the rule", "1", ()),
    "limit/points": ("number of quadrature points M", "1", ()),
    "limit/dt": ("time step (RK4)", "1", ()),
    "limit/state": ("points at the last saved time, as integrated (unwrapped)", "rad", ("point", "component")),
    "limit/error_estimate": ("max_k |F_M - F_coarse| against a coarser rule", "1", ("t",)),
    "limit/coarse_rule": ("the coarser rule of the error estimate", "", ()),
    "limit/README": ("how to read the limit group", "", ()),
    "clt/cov": ("predicted covariance of sqrt(N) (f_N(x_k) - F(x_k))", "1", ("t", "k", "l")),
    "clt/rule": ("quadrature rule of the covariance", "", ()),
    "clt/README": ("how to read the CLT group", "", ()),
    "clt/experts_needed/accuracy": ("accuracy of max_k |f_N - F|", "1", ("accuracy",)),
    "clt/experts_needed/N": ("experts needed for the accuracy", "1", ("accuracy",)),
    "clt/experts_needed/quantile": ("level-quantile of max_k |Z_k|, Z ~ N(0, cov[t])", "1", ("t",)),
    "clt/experts_needed/level": ("probability level", "1", ()),
    # regimes
    "regimes/N": ("number of experts N", "1", ("N",)),
    "regimes/seeds": ("random seed", "1", ("seeds",)),
    "regimes/t": ("saved time", "1", ("t",)),
    "regimes/lr": ("learning rate", "1", ()),
    "regimes/*/displacement": ("mean parameter displacement |theta_i(t_end) - theta_i(0)|", "rad", ("N", "seeds")),
    "regimes/*/kernel_change": ("relative change of the neural tangent kernel", "1", ("N", "seeds")),
    "regimes/*/risk": ("risk R_N", "1", ("N", "seeds", "t")),
    "regimes/ntk_limit/risk": ("risk of the NTK (lazy) limit", "1", ("t",)),
    "regimes/ntk_limit/kernel": ("neural tangent kernel at t = 0", "1", ("k", "l")),
    "regimes/mean-field_limit/risk": ("risk of the mean-field limit", "1", ("t",)),
    "regimes/mean-field_limit/source": ("where the mean-field limit comes from", "", ()),
    "regimes/mean-field_limit/file": ("file of the mean-field limit", "", ()),
    **{f"regimes/fit/*/*/{k}": v for k, v in _FIT.items() if k not in ("theory", "theory_slope")},
    "regimes/snapshot/N": ("number of experts of the snapshot", "1", ()),
    "regimes/snapshot/seed": ("random seed of the snapshot", "1", ()),
    "regimes/snapshot/*/theta0": ("expert parameters at t = 0", "rad", ("particle", "component")),
    "regimes/snapshot/*/theta_end": ("expert parameters at t_end", "rad", ("particle", "component")),
    "regimes/snapshot/*/displacement": ("displacement of each expert", "rad", ("particle",)),
}

#: the axes that are no dataset of the file (netCDF dimensions without a variable)
DIMENSIONS = {
    "k": "data point", "l": "data point (second index)", "input": "component of the data input x",
    "freq": "moment frequency", "component": "coordinate on the torus", "cell": "cell of the mesh",
    "vertex": "vertex of a cell", "node": "node of the element", "particle": "expert",
    "point": "quadrature point", "file": "particle file", "bound": "lower and upper bound",
    "t": "saved time", "N": "number of experts", "seeds": "seed", "accuracy": "accuracy",
    "theta_index": "saved time of the stored points",
}

#: the root's hard link to ``/observables/t``: the time axis of the groups without their own ``t``
TIME_LINK = "t"

_PATTERNS = [(re.compile("^" + re.escape(p).replace(r"\*", "[^/]+") + "$"), p) for p in DATASETS]


def entry(path: str) -> tuple[str, str, tuple] | None:
    """(long_name, units, axes) of the dataset at ``path`` (``/pde/density``), None if the table has none.

    An exact path wins over a pattern; the axes are those of the alternative of the dataset's rank
    (:func:`axes_for`)."""
    key = path.strip("/")
    if key in DATASETS:
        return DATASETS[key]
    for rx, p in _PATTERNS:
        if rx.match(key):
            return DATASETS[p]
    return None


def axes_for(axes, ndim: int) -> tuple | None:
    """The alternative of ``axes`` with ``ndim`` names (None if there is none)."""
    options = axes if isinstance(axes, list) else [axes]
    return next((tuple(a) for a in options if len(a) == ndim), None)


def is_axis_only(group: h5py.Group, key: str) -> bool:
    """Whether ``group[key]`` is there for the axes only, no part of the result: an axis without values,
    or the root's link ``t`` to ``/observables/t``."""
    return (group.name == "/" and key == TIME_LINK) or is_dimension_only(group[key])


def is_dimension_only(item) -> bool:
    """Whether ``item`` is an axis without values (a netCDF dimension that is no variable)."""
    name = item.attrs.get("NAME", b"")
    name = name.decode("ascii", "replace") if isinstance(name, (bytes, np.bytes_)) else str(name)
    return name.startswith(NOT_A_VARIABLE)


def _coordinate(group: h5py.Group, name: str, size: int) -> h5py.Dataset | None:
    """The 1-d dataset ``name`` of ``size`` in ``group`` or its parents (netCDF scoping); for ``t``
    the run's saved times ``/observables/t`` last."""
    file = group.file
    parts = group.name.strip("/").split("/") if group.name != "/" else []
    places = ["/".join(parts[:i] + [name]) for i in range(len(parts), 0, -1)]
    if name == "t" and "t" not in file and isinstance(file.get("observables/t"), h5py.Dataset):
        file["t"] = file["observables/t"]  # a hard link: the saved times, seen by every group
    places.append(name)  # the root
    for place in places:
        item = file.get(place)
        if isinstance(item, h5py.Dataset) and item.ndim == 1 and (item.shape[0] == size or item.maxshape[0] is None):
            return item
    return None


def _dimension_only(file: h5py.File, name: str, size: int) -> h5py.Dataset:
    """The root's axis ``name`` of ``size`` (``name_size`` when ``name`` has another size)."""
    for key in (name, f"{name}_{size}"):
        item = file.get(key)
        if item is None:
            item = file.create_dataset(key, shape=(size,), dtype="f4")  # no values stored (never written)
            item.make_scale(f"{NOT_A_VARIABLE}{size:10d}")
            item.attrs["long_name"] = DIMENSIONS.get(name, name)
            item.attrs["units"] = "1"
            return item
        if isinstance(item, h5py.Dataset) and is_dimension_only(item) and item.shape == (size,):
            return item
    raise ValueError(f"no room for the axis {name!r} of size {size} at the root")


def describe_dataset(item: h5py.Dataset) -> bool:
    """Write ``long_name``, ``units`` and the axes of one dataset; False if the table has no entry."""
    spec = entry(item.name)
    if spec is None:
        return False
    long_name, units, axes = spec
    item.attrs["long_name"] = long_name
    item.attrs["units"] = units
    names = axes_for(axes, item.ndim) if item.ndim else ()
    if not names:
        return True
    parent = item.parent
    for axis, name in enumerate(names):
        dim = item.dims[axis]
        if item.name.rsplit("/", 1)[-1] == name and item.ndim == 1:  # the coordinate itself
            if not item.is_scale:
                item.make_scale(name)
            continue
        scale = _coordinate(parent, name, item.shape[axis])
        if scale is None:
            scale = _dimension_only(item.file, name, item.shape[axis])
        elif not scale.is_scale:
            scale.make_scale(name)
        if not any(s == scale for s in dim.values()):
            dim.attach_scale(scale)
        dim.label = name
    return True


def describe_file(file: h5py.File) -> list[str]:
    """Describe every dataset of an open file (idempotent); the paths of those the table lacks."""
    datasets: list[h5py.Dataset] = []

    def visit(group: h5py.Group) -> None:
        for key, item in group.items():
            if isinstance(item, h5py.Group):
                visit(item)
            elif not is_axis_only(group, key):
                datasets.append(item)
    visit(file)
    return [d.name for d in datasets if not describe_dataset(d)]
