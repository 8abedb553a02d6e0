"""README.md and docs/ name only modules, files and imports that exist after the move into layers (e555921)."""

import importlib
import importlib.util
import re

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "examples").glob("*.py"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_named_source_file_exists(page):
    missing = [p for p in re.findall(r"`(mfpde/[\w/]+\.py)`", page.read_text()) if not (ROOT / p).is_file()]
    assert not missing, f"{page.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_import_line_imports(page):
    for module, names in re.findall(r"^\s*from (mfpde[\w.]*) import ([\w, ]+)", page.read_text(), re.MULTILINE):
        mod = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",") if n.strip()):
            assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), \
                f"{page.name}: from {module} import {name} fails"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_dotted_function_path_resolves(page):
    for dotted in re.findall(r"`(mfpde(?:\.\w+)+)(?:\(|`)", page.read_text()):
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:]:
                assert hasattr(obj, attr), f"{page.name}: {dotted} does not resolve ({attr})"
                obj = getattr(obj, attr)
            break
