"""One checker per command, run before any work on the case as the command will run it (every
command-line override applied by :meth:`mfpde.config.case.Case.with_overrides`).

The case file's own rules (ranges, choices, the rules between keys of a section) were checked
when the case was read and when it was overridden; these are the rules of a command: what the
PDE needs of the case (d <= 3, mean-field scaling, the tau rules of the time scheme and of the
mesh motion, the mesh file), what the limit needs (tau = 0), what a study or the regimes need
of their reference, and the budgets (:mod:`mfpde.config.budgets`).  ``CHECKS[command]`` takes
the case (``compare``: the PDE file and the particle files).
"""

from __future__ import annotations

from mfpde.config.budgets import check_particle_budget, check_pde_budget
from mfpde.config.case import Case
from mfpde.io.compare_inputs import check_compare_files

# the commands' own modules are imported by their checker only (a particle run does not load scipy.stats)


def check_pde(case: Case) -> None:
    """``mfpde pde``: the PDE's rules, then its budget."""
    from mfpde.runs.pde import check_pde_case

    check_pde_case(case)
    check_pde_budget(case)


def check_particles(case: Case) -> None:
    """``mfpde particles``: the budget of ``[particles] n`` experts (the PDE's rules do not apply)."""
    check_particle_budget(case, case.particles.n)


def check_limit(case: Case) -> None:
    """``mfpde limit``: tau = 0 (the push-forward of rho_0)."""
    from mfpde.runs.limit import check_limit_case

    check_limit_case(case)


def check_study(case: Case) -> None:
    """``mfpde study``: the reference's checker (the PDE, or the limit), and the budget of the largest N
    saving at the reference's times."""
    from mfpde.runs.study import study_case, study_reference

    case = study_case(case)
    (check_limit if study_reference(case) == "limit" else check_pde)(case)
    check_particle_budget(case, max(case.study.n))


def check_regimes(case: Case) -> None:
    """``mfpde regimes``: tau = 0, and the PDE's rules for its mean-field limit (d <= 3)."""
    from mfpde.runs.regimes import check_regimes_case

    check_regimes_case(case)


CHECKS = {"pde": check_pde, "particles": check_particles, "limit": check_limit, "study": check_study,
          "regimes": check_regimes, "compare": check_compare_files}
