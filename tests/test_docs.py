"""The documentation: every key the case loader accepts is documented, every worked example runs."""

import ast
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

DOCS = ROOT / "docs"


def documented_keys() -> set[tuple[str, str]]:
    """(section, key) of every row of every `| section | key | default | meaning |` table in docs/*.md."""
    keys = set()
    for page in DOCS.glob("*.md"):
        in_table = False
        for line in page.read_text().splitlines():
            line = line.strip()
            cells = [c.strip("` ") for c in re.split(r"(?<!\\)\|", line)[1:-1]]  # a literal | is written \|
            if not line.startswith("|") or len(cells) != 4:
                in_table = False
                continue
            if [c.lower() for c in cells] == ["section", "key", "default", "meaning"]:
                in_table = True
            elif in_table and not set(cells[0]) <= set("-: "):
                keys.add((_section(cells[0]), cells[1]))
    return keys


def _section(text: str) -> str:
    text = text.strip("[]` ")
    return "" if text in ("", "(top)", "top") else text


def _strings(node) -> list[str] | None:
    """The strings of a set/tuple/list literal of string constants, else None."""
    if isinstance(node, (ast.Set, ast.Tuple, ast.List)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]
    return None


def loader_keys() -> set[tuple[str, str]]:
    """(section, key) of every `_check_keys(table, {keys}, "section")` call in mfpde (and the module-level
    key sets they name), the `KEYS` of every case section class (its `SECTION`), and the `[expert]` keys of every registered expert kind (its registry)."""
    from mfpde.experts.registry import EXPERT_KINDS

    keys = {("expert", k) for kind in EXPERT_KINDS.values() for k in ("kind", *kind.required, *kind.optional)}
    for path in (ROOT / "mfpde").rglob("*.py"):
        if path.relative_to(ROOT / "mfpde").parts[0] == "experts":
            continue  # the registry above
        tree = ast.parse(path.read_text())
        names = {t.id: node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", ""))
                    .endswith("check_keys")):
                continue
            args = node.args[1:]
            sets = [_strings(names.get(a.id) if isinstance(a, ast.Name) else a) for a in args]
            where = args[-1] if args else None
            if isinstance(where, ast.Constant) and isinstance(where.value, str):
                section = where.value
            else:
                continue  # a generic helper, not a call site with literal keys
            for found in sets:
                keys.update((section, k) for k in found or [])
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):  # a case section: SECTION, KEYS
            body = {t.id: node.value for node in cls.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
            section, table = body.get("SECTION"), body.get("KEYS")
            if isinstance(section, ast.Constant) and isinstance(table, ast.Dict):
                keys.update((section.value, k.value) for k in table.keys if isinstance(k, ast.Constant))
    return keys


def test_every_key_the_loader_accepts_is_documented_and_no_other():
    loader, docs = loader_keys(), documented_keys()
    assert ("pde", "petsc_options") in loader and ("", "name") in loader and ("expert", "gates") in loader
    assert not loader - docs, f"keys the loader accepts but docs/*.md does not tabulate: {sorted(loader - docs)}"
    assert not docs - loader, f"keys docs/*.md tabulates but the loader refuses: {sorted(docs - loader)}"


def test_the_docs_do_not_point_outside_the_repository():
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = page.read_text()
        assert "../shared" not in text and "/work/shared" not in text, page
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


EXAMPLES = sorted((DOCS / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_worked_example_runs(tmp_path, example):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", MFPDE_EXAMPLE_OUT=str(tmp_path))
    proc = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_there_are_worked_examples():
    assert {p.name for p in EXAMPLES} >= {"transport_1d.py", "propagation_of_chaos.py", "custom_expert.py"}
