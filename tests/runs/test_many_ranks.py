"""More ranks than cores (issue: clusters): PDE (also on a Lagrangian mesh), particles and study on 3 and 4
ranks equal one rank."""

import pytest

from conftest import mpirun


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [3, 4])
def test_three_and_four_ranks_equal_one(ranks):
    proc = mpirun("many_ranks.py", ranks=ranks)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("ok", "FAIL"))]
    assert len(lines) == 8 and all(ln.startswith("ok") for ln in lines), proc.stdout
