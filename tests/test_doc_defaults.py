"""Every default that docs/case-file.md states is the loader's default.

The page's `| section | key | default | meaning |` tables are parsed row by row
and each default cell is checked against a case built without that key
(mfpde/config/case.py, the per-dimension ``[pde]`` rules of
mfpde/config/rules.py, the diffusion solver's PETSc options):

* a TOML literal in backticks (`16`, `"box"`, `{ksp_type = ...}`) must equal the
  loaded value; `V` (d = 1, 2) lists are checked in each dimension named;
* ``required ...`` / ``or `other` ``: the loader must refuse the case without it,
  naming the key;
* ``none``: the loaded value is None (or the feature is off);
* a few computed defaults (``t_end / 8``, ``1/K`` each, ``"runs/NAME"``, the
  N list with ``...``) have their own check in :data:`COMPUTED`.

A row that none of these rules covers fails the test, so a new key must come
with a default that can be checked.
"""

import ast
import copy
import re
import tomllib

import numpy as np
import pytest
from conftest import ROOT

from mfpde.config.case import case_from_dict
from mfpde.errors import CaseError

PAGE = ROOT / "docs" / "case-file.md"


def doc_rows() -> list[tuple[str, str, str]]:
    """(section, key, default) of every row of the page's key tables."""
    rows, in_table = [], False
    for line in PAGE.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not line.strip().startswith("|") or len(cells) != 4:
            in_table = False
            continue
        if [c.lower() for c in cells] == ["section", "key", "default", "meaning"]:
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            section = cells[0].strip("[]` ")
            rows.append(("" if section in ("(top)", "top") else section, cells[1].strip("` "), cells[2]))
    return rows


QNN = {"kind": "qnn", "wires": 1, "observable": [["Z", 0]],
       "gates": [["RX", "x", [0]], ["RY", "theta[0]", [0]], ["RX", "x", [0]], ["RY", "theta[1]", [0]]]}
COSINE = {"kind": "cosine", "d": 2}
PYTHON = {"kind": "python", "function": "numpy:cos", "d": 2}


def minimal(d: int = 2, expert: dict | None = None) -> dict:
    """A case table with only the required keys (a cosine expert of dimension d)."""
    return {"expert": copy.deepcopy(expert or dict(COSINE, d=d)),
            "data": {"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.2, 0.3]},
            "dynamics": {"t_end": 2.0}}


def loaded(case, section: str, key: str):
    """The value the loader filled in for ``[section] key``."""
    if section == "":
        return getattr(case, key)
    if section == "expert":
        return getattr(case.expert, {"device": "device_name", "method": "method_requested"}.get(key, key))
    return getattr(getattr(case, section), key)


def _section_tabulated(section: str, page: str) -> bool:
    text = (ROOT / "docs" / page).read_text()
    return re.search(rf"^\|\s*`?\[{section}\]`?\s*\|", text, re.MULTILINE) is not None


def _diffusion_default_options() -> dict:
    """``DEFAULT_OPTIONS`` of mfpde/pde/diffusion.py, read without importing DOLFINx."""
    tree = ast.parse((ROOT / "mfpde" / "pde" / "diffusion.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DEFAULT_OPTIONS":
            return ast.literal_eval(node.value)
    raise AssertionError("DEFAULT_OPTIONS not found in mfpde/pde/diffusion.py")


def _check_save_every(section: str):
    case = case_from_dict(minimal())
    assert loaded(case, section, "save_every") is None
    np.testing.assert_allclose(np.diff(case.save_times(None)), case.dynamics.t_end / 8)


def _check_weights():
    case = case_from_dict(minimal())
    np.testing.assert_array_equal(case.data.w, np.full(3, 1 / 3))


def _check_study_n():
    n = case_from_dict(minimal()).study.n
    assert n[:2] == [64, 128] and n[-1] == 16384 and all(b == 2 * a for a, b in zip(n, n[1:]))


def _check_m():
    case = case_from_dict(minimal())  # the cosine expert reads every column of [data] x
    assert case.expert.m is None and case.data.x.shape[1] == 1


def _check_top_init():
    assert case_from_dict(minimal()).init.kind == "uniform"


def _check_petsc():
    """The loader passes no options ({}); the diffusion solve then uses its own, the documented ones."""
    assert case_from_dict(minimal()).pde.petsc_options == {}


# (section, key): (the documented text, its check)
COMPUTED = {
    ("output", "directory"): ('`"runs/NAME"`', lambda: case_from_dict(dict(minimal(), name="abc")).output_dir
                              == "runs/abc" or pytest.fail("output directory")),
    ("pde", "save_every"): ("`t_end / 8`", lambda: _check_save_every("pde")),
    ("particles", "save_every"): ("`t_end / 8`", lambda: _check_save_every("particles")),
    ("data", "w"): ("`1/K` each", _check_weights),
    ("study", "n"): ("`[64, 128, ..., 16384]`", _check_study_n),
    ("expert", "m"): ("from the data", _check_m),
    ("", "init"): ('`kind = "uniform"`', _check_top_init),
}


def _required(section: str, key: str, text: str) -> None:
    """The loader refuses a case without ``[section] key``, naming it."""
    base = minimal(expert=QNN if "`qnn`" in text else PYTHON if text.endswith("`python`") and "cosine" not in text
                   else COSINE)
    table = copy.deepcopy(base)
    if section == "":
        del table[key]
    else:
        table[section].pop(key, None)
        for other in re.findall(r"or `(\w+)`", text):  # y "or teacher_theta": without both
            table[section].pop(other, None)
        if not table[section]:  # an empty table reads as a missing section: keep another key
            table[section] = {"dynamics": {"lr": 1.0}}[section]
    with pytest.raises(CaseError) as err:
        case_from_dict(table)
    assert key in str(err.value), (section, key, str(err.value))


def _literal(text: str):
    return tomllib.loads(f"v = {text}")["v"]


@pytest.mark.parametrize("section, key, default", doc_rows(), ids=lambda v: str(v)[:40])
def test_the_documented_default_is_the_loaders(section, key, default):
    text = default.strip()
    if (section, key) in COMPUTED:
        want, check = COMPUTED[(section, key)]
        assert text == want, f"docs say {text!r}; the check below is for {want!r}"
        check()
        return
    if text.startswith("required") or text.startswith("or `"):
        _required(section, key, text)
        return
    if text == "defaults below":
        assert _section_tabulated(key, "case-file.md"), key
        return
    m = re.fullmatch(r"defaults in \[(\w+\.md)\]\(\1\)", text)
    if m:
        assert _section_tabulated(key, m.group(1)), (key, m.group(1))
        return
    if text == "none":
        if section == "data" and key == "file":
            assert "file" not in case_from_dict(minimal()).table["data"]
            return
        expert = {"max_frequency": PYTHON}.get(key)
        value = loaded(case_from_dict(minimal(expert=expert)), section, key)
        assert (value() if callable(value) else value) is None, (section, key, value)
        return
    per_d = re.findall(r"`([^`]+)` \(d = ([\d, ]+)\)", text)
    if per_d:
        for literal, dims in per_d:
            for d in map(int, dims.split(",")):
                assert loaded(case_from_dict(minimal(d)), section, key) == _literal(literal), (section, key, d)
        return
    m = re.fullmatch(r"`([^`]+)`", text)
    assert m, f"[{section}] {key}: no rule checks the documented default {text!r}; add one to this test"
    want = _literal(m.group(1))
    if (section, key) == ("pde", "petsc_options"):
        _check_petsc()
        assert want == _diffusion_default_options()
        return
    table = minimal(expert=QNN if key in ("device", "method") else None)
    if section == "init" and key != "kind":
        table["init"] = {"kind": "vonmises"}  # the kind that reads mean and kappa; one number for every coordinate
        assert loaded(case_from_dict(table), section, key) == [want] * 2, (section, key)
        return
    assert loaded(case_from_dict(table), section, key) == want, (section, key)


def test_the_page_has_the_tables():
    rows = doc_rows()
    assert len(rows) >= 45 and ("pde", "degree", "`3`") in rows and ("pde", "cell", '`"box"`') in rows


def test_the_documented_init_kinds_are_the_loaders():
    from mfpde.config.case import InitSpec

    line = next(li for li in PAGE.read_text().splitlines() if re.match(r"\|\s*\[init\]\s*\|\s*kind\s*\|", li))
    meaning = re.split(r"(?<!\\)\|", line)[4]
    assert set(re.findall(r'`"(\w+)"`', meaning)) == set(InitSpec.KEYS) == {"uniform", "vonmises", "box", "normal"}
