"""The mutation audit (tests/mutations/run.py, run outside CI) stays applicable: every mutation's old
text is in its file exactly once, and the tests that should catch it exist.  A refactoring that moves
the code fails here instead of leaving a STALE mutation that nobody runs."""

import importlib.util
import sys

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("mutation_audit", ROOT / "tests" / "mutations" / "run.py")
audit = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = audit  # (its dataclasses look their module up)
spec.loader.exec_module(audit)


@pytest.mark.parametrize("mutation", audit.MUTATIONS, ids=lambda m: m.name)
def test_every_mutation_still_applies(mutation):
    text = (ROOT / mutation.file).read_text()
    for old, new in mutation.edits:
        assert text.count(old) == 1, f"{mutation.name}: old text found {text.count(old)} times in {mutation.file}"
        assert old != new
    for test in mutation.tests:
        assert (ROOT / test.split("::")[0]).is_file(), test


def test_the_audit_covers_the_issue_survivors():
    names = {m.name for m in audit.MUTATIONS}
    assert len(names) == len(audit.MUTATIONS) >= 29
