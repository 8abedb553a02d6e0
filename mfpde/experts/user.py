r"""User-defined experts (``kind = "python"``): a function returning values and theta-gradients.

``function(x (K, m), theta (M, d)) -> (values (K, M), grads (K, M, d))`` with
``grads[k, m, j]`` :math:`=\partial_{\theta_j}\phi(x_k;\theta_m)`.  The module
is imported from the case file's folder (trust boundary: it runs as the user
on every MPI rank).  Anything the user code does wrong -- an exception, a
``sys.exit``, an output of the wrong type or shape, complex or non-finite numbers --
becomes a one-line :class:`~mfpde.errors.CaseError` for ``expert.function``
that names the function.

With ``max_frequency = [n_1, ..., n_d]`` the function is declared a
trigonometric polynomial of degree :math:`n_i` in :math:`\theta_i`; ``bind``
then samples it once on the :math:`\prod_i (2 n_i + 1)` grid of
:mod:`.fourier` (one call) and evaluates the exact Fourier path afterwards,
after checking values and gradients against the function at
:data:`CHECK_POINTS` random parameters (relative :data:`CHECK_RTOL`; a wrong
degree is refused naming ``expert.max_frequency``).  Without it, or when the
coefficient table would exceed :data:`mfpde.experts.cost.FOURIER_TABLE_BYTES`,
the function is called at every evaluation.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Callable

import numpy as np

from mfpde.errors import CaseError
from mfpde.experts import cost
from mfpde.experts.base import BoundExpert, Expert, as_data, as_theta, is_int, positive_int
from mfpde.experts.fourier import TrigPolyBound, fourier_from_samples, fourier_grid

KEY = "expert.function"
CHECK_POINTS = 3
CHECK_RTOL = 1e-9


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_function(ref: str, base_dir) -> Callable:
    """Import ``"module:function"``: from ``base_dir`` first, then ``sys.path``."""
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise CaseError(KEY, f"must be \"module:function\", got {ref!r}")
    mod_name, fn_name = (p.strip() for p in ref.split(":"))
    base_dir = os.path.abspath(os.fspath(base_dir))
    rel = mod_name.replace(".", os.sep)
    candidates = [os.path.join(base_dir, rel + ".py"), os.path.join(base_dir, rel, "__init__.py")]
    path = next((p for p in candidates if os.path.isfile(p)), None)
    try:
        if path is not None:
            uniq = f"_mfpde_user_{abs(hash(path)):x}_{mod_name.replace('.', '_')}"
            spec = importlib.util.spec_from_file_location(uniq, path)
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, base_dir)  # for the module's own sibling imports
            try:
                spec.loader.exec_module(module)
            finally:
                try:
                    sys.path.remove(base_dir)
                except ValueError:
                    pass
        else:
            module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise CaseError(KEY, f"cannot import module {mod_name!r} (looked in {base_dir} and sys.path): {exc}") from None
    except (Exception, SystemExit) as exc:
        raise CaseError(KEY, f"importing module {mod_name!r} failed: {_one_line(exc)}") from None
    if not hasattr(module, fn_name):
        raise CaseError(KEY, f"module {mod_name!r} has no attribute {fn_name!r}")
    fn = getattr(module, fn_name)
    if not callable(fn):
        raise CaseError(KEY, f"{ref!r} is not callable (it is a {type(fn).__name__})")
    return fn


def _checked_call(fn, ref: str, x: np.ndarray, theta: np.ndarray, d: int):
    """``fn(x, theta)`` as float arrays of the right shapes, or a one-line CaseError naming ``ref``."""
    K, M = x.shape[0], theta.shape[0]
    expect = f"must return (values (K, M), grads (K, M, d)) = ({(K, M)}, {(K, M, d)})"
    try:
        out = fn(x, theta)
    except CaseError:
        raise
    except (Exception, SystemExit) as exc:
        raise CaseError(KEY, f"{ref} raised {_one_line(exc)}") from None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CaseError(KEY, f"{ref} {expect}, got {type(out).__name__}")
    for name, part in (("values", out[0]), ("grads", out[1])):
        if np.iscomplexobj(part):  # (a cast to float would drop the imaginary part with a warning)
            raise CaseError(KEY, f"{ref} returned complex {name} (dtype {np.asarray(part).dtype}); "
                                 "an expert is real: return the real part (or the observable) yourself")
    try:
        values = np.asarray(out[0], dtype=float)
        grads = np.asarray(out[1], dtype=float)
    except (TypeError, ValueError) as exc:
        raise CaseError(KEY, f"{ref} {expect}, got output that is not real numbers: {_one_line(exc)}") from None
    if values.shape != (K, M):
        raise CaseError(KEY, f"{ref} returned values of shape {values.shape}, expected (K, M) = {(K, M)}")
    if grads.shape != (K, M, d):
        raise CaseError(KEY, f"{ref} returned grads of shape {grads.shape}, expected (K, M, d) = {(K, M, d)}")
    if not (np.isfinite(values).all() and np.isfinite(grads).all()):
        bad = np.flatnonzero(~(np.isfinite(values).all(axis=0) & np.isfinite(grads).all(axis=(0, 2))))[0]
        raise CaseError(KEY, f"{ref} returned non-finite values or gradients at theta = {theta[bad].tolist()}")
    return values, grads


class PythonExpert(Expert):
    r"""User-defined expert.

    ``function`` is a callable or ``"module:function"``, imported from
    ``base_dir`` (the case file's folder) or else from ``sys.path``; see the
    module docstring for the call convention and the checks on every call.
    """

    kind = "python"

    def __init__(self, function, d: int, m: int | None = None, base_dir=".", max_frequency=None):
        self.d = positive_int("expert.d", d)
        self.m = None if m is None else positive_int("expert.m", m)
        if isinstance(function, str):
            self.ref = function
            self.function = load_function(function, base_dir)
        elif callable(function):
            self.function = function
            self.ref = f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"
        else:
            raise CaseError(KEY, f"must be \"module:function\" or a callable, got {function!r}")
        if max_frequency is not None:
            if (
                not isinstance(max_frequency, (list, tuple))
                or len(max_frequency) != self.d
                or not all(is_int(n) and n >= 0 for n in max_frequency)
            ):
                raise CaseError("expert.max_frequency", f"must be {self.d} non-negative integers, got {max_frequency!r}")
            max_frequency = tuple(int(n) for n in max_frequency)
        self._max_frequency = max_frequency

    def bind(self, x) -> BoundExpert:
        """The function at the data ``x``; its exact Fourier path when ``max_frequency`` is given (and fits)."""
        x = as_data(x, self.m)
        d, fn, ref = self.d, self.function, self.ref

        def direct(theta):
            return _checked_call(fn, ref, x, as_theta(theta, d), d)

        degrees = self._max_frequency
        if degrees is None:
            return direct
        coefficients = int(np.prod([2 * n + 1 for n in degrees]))
        if 16 * coefficients * (d + 1) * x.shape[0] > cost.FOURIER_TABLE_BYTES:
            return direct
        return self._fourier(direct, degrees)

    def _fourier(self, direct, degrees) -> TrigPolyBound:
        """Coefficients from one call on the grid, checked against the function at random theta."""
        values, _ = direct(fourier_grid(degrees))
        bound = TrigPolyBound(degrees, *fourier_from_samples(values, degrees))
        theta = np.random.default_rng(0).uniform(-np.pi, np.pi, (CHECK_POINTS, self.d))
        (v, g), (pv, pg) = direct(theta), bound(theta)
        err = max(np.abs(v - pv).max(), np.abs(g - pg).max())
        scale = 1.0 + max(np.abs(v).max(), np.abs(g).max())
        if not err <= CHECK_RTOL * scale:
            raise CaseError("expert.max_frequency", f"{self.ref} is not a trigonometric polynomial of degree "
                                                    f"{list(degrees)} in theta: its Fourier path differs from it by "
                                                    f"{err:.2e} at random theta (raise the degrees, or leave "
                                                    "max_frequency out)")
        return bound

    def max_frequency(self):
        return self._max_frequency

    def describe(self) -> dict:
        out = {"kind": self.kind, "d": self.d, "m": self.m, "function": self.ref}
        if self._max_frequency is not None:
            out["max_frequency"] = list(self._max_frequency)
        return out
