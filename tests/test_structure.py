"""The package's layers: folders are layers, imports go one way (down), no cycles, at most 9 levels.

A *unit* is a top-level module (``mfpde/errors.py``) or a folder (``mfpde/pde/``).  LAYERS lists the
units bottom-up; a unit may import only units of lower layers (and itself).  ``mfpde/__init__`` is the
public facade and is not a unit (its names are resolved lazily).
"""

import ast
import collections
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "mfpde"

LAYERS = [
    {"constants", "errors", "progress"},
    {"numerics", "experts", "parallel", "analysis"},
    {"config"},
    {"model"},
    {"pde", "particles", "meshfree"},
    {"io"},
    {"report"},
    {"runs"},
    {"cli"},
]
RANK = {u: i for i, layer in enumerate(LAYERS) for u in layer}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        mods[name] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> mfpde modules it imports (``from pkg import submodule`` counts as the submodule)."""
    mods = _modules()
    edges = collections.defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{name}: relative import (use absolute mfpde.* imports)")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mfpde"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges[name].add(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name.startswith("mfpde"))
    return edges


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _modules()} - {None}
    assert units == set(RANK), (units - set(RANK), set(RANK) - units)


def test_imports_go_down_only():
    upward = []
    for module, targets in import_graph().items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            if a and b and a != b and RANK[b] >= RANK[a]:
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_no_import_cycle_between_modules():
    edges = import_graph()
    # a package's __init__ importing its own submodules is its facade, not a cycle
    edges = {m: {t for t in ts if not (t.startswith(m + ".") or m.startswith(t + ".") and
                                          _modules()[t].name == "__init__.py")} for m, ts in edges.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        for t in edges.get(m, ()):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t] if t in stack else [m, t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in list(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_at_most_nine_import_levels():
    units = collections.defaultdict(set)
    for module, targets in import_graph().items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            if a and b and a != b:
                units[a].add(b)
    level = {}

    def depth(u):
        if u not in level:
            level[u] = 1 + max((depth(v) for v in units[u]), default=0)
        return level[u]

    assert max(depth(u) for u in RANK) <= 9, level
    assert depth("cli") == max(level.values())


def test_tests_mirror_the_package():
    """tests/<unit>/ holds the tests of mfpde/<unit>/ (tests/mpi: the scripts run under mpirun;
    tests/mutations: the mutation audit, not collected); package-wide tests stay at the top."""
    tests = Path(__file__).resolve().parent
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders - {"mpi", "mutations"} <= set(RANK), folders - set(RANK)
    assert len(folders - {"mpi", "mutations"}) >= 8
