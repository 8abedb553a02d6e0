"""Commands as functions: a case through a solver to a result file, with
progress, restart and output checks (``mfpde pde``, ``particles``, ``limit``,
``study``, ``regimes``)."""

__all__ = ["run_pde", "run_particles", "run_limit", "run_study", "run_regimes"]

_HOMES = {"run_pde": "pde", "run_particles": "particles", "run_limit": "limit", "run_study": "study",
          "run_regimes": "regimes"}


def __getattr__(name):
    """Lazy, so that importing one command does not import the others."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"mfpde.runs.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
