"""Files that generic tools understand: every result kind opens in xarray (h5netcdf) with named
dimensions and the saved times as a coordinate; every dataset has units and a long_name from the one
table of mfpde.io.layout; /case_resolved holds the case as run with every default."""

import warnings

import h5py
import numpy as np
import pytest

from conftest import TINY_CASE

from mfpde.cli import main
from mfpde.config.case import dumps_toml
from mfpde.io.layout import entry, is_axis_only
from mfpde.io.results import read_result

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

CASE = TINY_CASE


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One small file of each kind (about 15 s in all)."""
    out = tmp_path_factory.mktemp("files")
    case = out / "tiny.toml"
    case.write_text(dumps_toml(CASE))
    q = ["--out", str(out), "--quiet"]
    for args in (["pde", str(case)], ["particles", str(case)], ["limit", str(case)],
                 ["study", str(case), "--no-plots"], ["regimes", str(case), "--no-plots"]):
        assert main([*args, *q]) == 0
    assert main(["compare", str(out / "tiny.pde.h5"), str(out / "tiny.particles.N8.seed0.h5")]) == 0
    names = {"pde": "tiny.pde.h5", "particles": "tiny.particles.N8.seed0.h5", "limit": "tiny.limit.h5",
             "study": "tiny.study.h5", "regimes": "tiny.regimes.h5", "compare": "tiny.compare.h5"}
    return {kind: out / name for kind, name in names.items()}


# the group with the saved times as its own coordinate, and its dimensions, per kind
GROUPS = {
    "pde": ("observables", {"t": 3, "k": 3, "freq": 2, "component": 1}),
    "particles": ("observables", {"t": 3, "k": 3, "freq": 2, "component": 1}),
    "limit": ("observables", {"t": 3, "k": 3, "freq": 2, "component": 1}),
    "study": ("study", {"N": 2, "seeds": 2, "t": 3, "k": 3}),
    "regimes": ("regimes", {"N": 2, "seeds": 2, "t": 3}),
    "compare": ("compare", {"file": 1, "t": 3}),
}

# further groups with named dimensions (their time axis is /observables/t, linked as /t)
MORE = {
    "pde": {"pde": {"t": 3, "cell": 6, "node": 2, "component": 1}, "pde/mesh": {"cell": 6, "vertex": 2,
                                                                                 "component": 1}},
    "particles": {"particles": {"t": 3, "particle": 8, "component": 1}},
    "limit": {"limit": {"t": 3, "theta_index": 3, "point": 8, "component": 1}, "clt": {"t": 3, "k": 3, "l": 3}},
    "study": {"observables": {"t": 3, "k": 3, "freq": 2, "component": 1}, "study/metrics": {"N": 2, "seeds": 2,
                                                                                            "t": 3}},
    "regimes": {"regimes/mean-field": {"N": 2, "seeds": 2, "t": 3}},
    "compare": {"compare/metrics": {"file": 1, "t": 3}},
}


def _open(path, group):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # h5netcdf's note on phony_dims (none are made here)
        return xr.open_dataset(path, group=group, engine="h5netcdf")


@pytest.mark.parametrize("kind", list(GROUPS))
def test_xarray_sees_named_dimensions_and_the_saved_times(files, kind):
    group, sizes = GROUPS[kind]
    with _open(files[kind], group) as ds:
        assert dict(ds.sizes) == sizes
        assert not [d for d in ds.dims if str(d).startswith("phony_dim")]
        assert "t" in ds.coords
        np.testing.assert_allclose(ds["t"].values, [0.0, 0.1, 0.2])
        assert ds["t"].attrs["long_name"] == "saved time" and ds["t"].attrs["units"] == "1"
        for name, var in ds.data_vars.items():
            assert var.attrs.get("long_name") and "units" in var.attrs, name
    for sub, sub_sizes in MORE[kind].items():
        with _open(files[kind], sub) as ds:
            assert dict(ds.sizes) == sub_sizes, sub


def test_observables_as_a_table_of_time(files):
    """What a notebook does with a run: F as a (t, k) array, selected by time."""
    with _open(files["pde"], "observables") as ds:
        F = ds["F"].sel(t=0.1, method="nearest").values
        assert ds["F"].dims == ("t", "k") and ds["moments"].dims == ("t", "freq")
        np.testing.assert_array_equal(F, read_result(files["pde"]).observables.F[1])
    with _open(files["pde"], "pde") as ds:
        assert ds["density"].dims == ("t", "cell", "node")
        assert isinstance(ds["cell_type"].values.item(), str)  # text comes back as str, not bytes


@pytest.mark.parametrize("kind", list(GROUPS))
def test_every_dataset_is_in_the_table_with_units_and_long_name(files, kind):
    found = []

    def visit(group):
        for key, item in group.items():
            if isinstance(item, h5py.Group):
                visit(item)
            elif not is_axis_only(group, key):
                found.append(item)
                assert entry(item.name) is not None, f"{kind}: {item.name} is not in mfpde.io.layout.DATASETS"
                assert item.attrs["long_name"] and "units" in item.attrs, item.name
                if item.dtype.kind in "fiuc":
                    assert item.attrs["units"], item.name  # numbers have units ("1": dimensionless)
                if h5py.check_string_dtype(item.dtype) is not None:
                    assert h5py.check_string_dtype(item.dtype).encoding == "utf-8", item.name
                    assert h5py.check_string_dtype(item.dtype).length is None, item.name  # variable length

    with h5py.File(files[kind], "r") as f:
        visit(f)
        assert "case_resolved" in f
    assert len(found) > 10


def test_the_files_read_back_as_before(files):
    """The axes are extra: read_result sees no new dataset (no /t, no axis in the observables)."""
    pde = read_result(files["pde"])
    assert set(pde.observables.extra) == {"mass", "min_rho"}
    assert pde.density.shape == (3, 6, 2)
    run = read_result(files["particles"])
    assert run.theta.shape == (3, 8, 1)
    with h5py.File(files["pde"], "r") as f:
        assert f["t"] == f["observables/t"]  # one dataset, two names
        assert f["pde/density"].dims[0][0] == f["observables/t"]


def test_the_case_as_run_has_every_default_and_the_output_directory(files):
    pde = read_result(files["pde"])
    resolved = pde.info.resolved_table()
    assert resolved["pde"]["n"] == 6 and resolved["pde"]["degree"] == 1
    assert resolved["pde"]["cell"] == "box" and resolved["pde"]["cfl"] == 0.25
    assert resolved["pde"]["petsc_options"] == {} and resolved["pde"]["time_scheme"] == "auto"
    assert resolved["dynamics"] == {"t_end": 0.2, "lr": 1.0, "tau": 0.0, "scaling": "mean-field"}
    assert resolved["output"]["directory"] == str(files["pde"].parent.resolve())
    assert pde.info.case_table()["pde"] == {"n": 6, "degree": 1, "save_every": 0.1}  # /case as given
    run = read_result(files["particles"])
    assert run.info.resolved_table()["particles"]["integrator"] == run.integrator == "rk4"
    assert read_result(files["compare"]).info.resolved_table()["pde"]["degree"] == 1


@pytest.mark.parametrize("kind", list(GROUPS))
def test_a_result_prints_as_one_short_line(files, kind):
    result = read_result(files[kind])
    text = repr(result)
    assert len(text) < 500 and "\n" not in text and "array(" not in text
    assert text.startswith(f"<{type(result).__name__} {kind}: case 'tiny'") and str(files[kind]) in text
    assert result.path == files[kind]
    if kind == "pde":
        assert "density 3x6x2" in text and "t = 0..0.2 (3 saved)" in text
    if kind == "particles":
        assert "N = 8" in text and "theta 3x8x1" in text
