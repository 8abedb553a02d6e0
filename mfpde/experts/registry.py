"""Expert kinds by name (like PennyLane devices): ``[expert] kind`` -> a builder.

:func:`build_expert` turns the ``[expert]`` table into an expert; every kind
declares its required and optional keys, and an unknown or missing key is a
:class:`~mfpde.errors.CaseError` naming it.  :func:`register_kind` adds a kind
(for example from a plug-in or a user script).  :func:`as_expert` turns the
``expert=`` object of ``case_from_dict`` into an expert: an :class:`Expert`
as it is, a PennyLane QNode (or a function of no arguments building one)
through :class:`~mfpde.experts.qnode.QNodeExpert`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mfpde.errors import CaseError
from mfpde.experts.base import Expert
from mfpde.experts.classical import CosineExpert
from mfpde.experts.qnn import QNNExpert
from mfpde.experts.qnode import QNodeExpert, qnode_of
from mfpde.experts.user import PythonExpert


@dataclass(frozen=True)
class ExpertKind:
    name: str
    build: Callable[[dict, str], Expert]  # (spec, base_dir) -> expert
    required: tuple[str, ...]
    optional: tuple[str, ...]


EXPERT_KINDS: dict[str, ExpertKind] = {}


def register_kind(name: str, build, required=(), optional=()) -> None:
    """Make ``[expert] kind = name`` build ``build(spec, base_dir)``."""
    EXPERT_KINDS[name] = ExpertKind(name, build, tuple(required), tuple(optional))


def known_kinds() -> tuple[str, ...]:
    return tuple(sorted(EXPERT_KINDS))


def _check_keys(spec: dict, kind: ExpertKind) -> None:
    for k in kind.required:
        if k not in spec:
            raise CaseError(f"expert.{k}", f"missing (required for kind = {kind.name!r})")
    allowed = set(kind.required) | set(kind.optional) | {"kind"}
    for k in spec:
        if k not in allowed:
            raise CaseError(
                f"expert.{k}", f"unknown key for kind = {kind.name!r} (known: {', '.join(sorted(allowed))})"
            )


def build_expert(spec: dict, base_dir=".") -> Expert:
    """Build an expert from the ``[expert]`` table of a case.

    ``base_dir`` is the case file's folder (where ``kind = "python"`` modules
    are looked up first).  Unknown keys, missing keys and every contract
    violation raise :class:`CaseError` naming the key.
    """
    if not isinstance(spec, dict):
        raise CaseError("expert", f"must be a table, got {type(spec).__name__}")
    if "kind" not in spec:
        raise CaseError("expert.kind", f"missing (known: {', '.join(known_kinds())})")
    kind = EXPERT_KINDS.get(spec["kind"]) if isinstance(spec["kind"], str) else None
    if kind is None:
        raise CaseError("expert.kind", f"unknown kind {spec['kind']!r} (known: {', '.join(known_kinds())})")
    _check_keys(spec, kind)
    return kind.build(spec, base_dir)


register_kind(
    "qnn",
    lambda s, _: QNNExpert(
        s["gates"], s["wires"], s["observable"], device=s.get("device", "default.qubit"), method=s.get("method", "auto")
    ),
    required=("wires", "observable", "gates"),
    optional=("device", "method"),
)
register_kind("cosine", lambda s, _: CosineExpert(s["d"], s.get("m")), required=("d",), optional=("m",))
def as_expert(obj) -> Expert:
    """The ``expert=`` argument of ``case_from_dict`` as an expert.

    An object with ``bind`` (an :class:`Expert` or one written to its
    interface) is returned as it is; a PennyLane QNode, or a function of no
    arguments that builds one, becomes a :class:`QNodeExpert` (its gate rows,
    checked against it); anything else is a :class:`CaseError`.
    """
    if hasattr(obj, "bind") and hasattr(obj, "d"):
        return obj
    qnode = qnode_of(obj)
    if qnode is not None:
        return QNodeExpert(qnode)
    raise CaseError("expert", f"must be an mfpde expert (d, m, bind(x), describe()) or a PennyLane QNode "
                              f"f(x, theta), got {type(obj).__name__}")


def _python_kind(s: dict, base_dir) -> Expert:
    """``kind = "python"``: a function (x, theta) -> (values, grads), or a QNode (or its builder) as gate rows."""
    expert = PythonExpert(s["function"], s["d"], s.get("m"), base_dir=base_dir, max_frequency=s.get("max_frequency"))
    qnode = qnode_of(expert.function)
    return expert if qnode is None else QNodeExpert(qnode, d=expert.d, m=expert.m)


register_kind(
    "python",
    _python_kind,
    required=("function", "d"),
    optional=("m", "max_frequency"),
)
