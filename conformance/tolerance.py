"""Tolerance policy: error bounds from a rounding-error model, one place for the whole suite.

The model (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3-4): a sum of n terms
computed in any order in floating point with unit roundoff u errs by at most
``gamma(n) * sum(|terms|)`` with ``gamma(n) = n u / (1 - n u)``. Each op's bound below is that
inequality applied to the sums the op computes, with ``sum(|terms|)`` bounded from the inputs'
float64 absolute values. These are *worst-case* bounds for any summation order (BLAS blocking,
pairwise sums, Welford), so an implementation within them is right and one outside is wrong;
typical errors are far smaller (the headroom is reported by the cross-check run).

Every bound is the error of *one* implementation in ``dtype``. Comparing an implementation in
``dtype`` with a float64 reference allows ``bound(dtype) + bound(float64)``; see
:func:`comparison_atol`. Exact operations (max-pool forward, pad forward, indices) get 0: they
select values, they do not compute them.

Bounds are per element where the model gives one (broadcastable arrays), otherwise scalars.
Nothing here calls an implementation under test: magnitudes come from plain NumPy on the inputs
(and the float-attribute term of :func:`attribute_rounding` from the float64 reference, nnref).
Each op's own model (which sums it computes, over how many terms) is in its record,
``conformance/ops/<op>.py``; this module holds the shared parts and the comparison.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# The model's primitives, also this module's API (tol.gamma, tol.SAFETY, ...).
from .rounding import SAFETY as SAFETY
from .rounding import abs64 as abs64
from .rounding import gamma as gamma
from .rounding import unit_roundoff as unit_roundoff


def forward_bounds(case: Any, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    """Error bound of each forward output of one implementation computing in ``dtype``.

    Each op's model is in its record (``conformance/ops/<op>.py``).
    """
    return case.record.forward_bounds(case, a, dtype)


def backward_bounds(case: Any, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    """Error bound of each gradient of one implementation computing in ``dtype``."""
    return case.record.backward_bounds(case, a, dtype)


# The largest change effective_attributes may declare, relative to max(|value|, 1): float32's
# unit roundoff 2^-24 for a value stored as float32, and for a value v stored as fl32(1 - v)
# (ONNX momentum) |1 - v| * 2^-24 <= max(|v|, 1) * 2^-23; anything larger is a different
# parameter, not a rounding, and must not widen a tolerance.
ATTRIBUTE_ROUNDING = 2.0**-23


def attribute_rounding(case: Any, a: dict[str, np.ndarray], direction: str,
                       *modules: Any) -> dict[str, Any]:
    """The error term of parameters stored narrower than the data, per output (empty if none).

    A module that stores some of the record's ``float_attributes`` (eps, momentum, alpha) in a
    narrower type says which values it really uses: ``module.effective_attributes(record name,
    {parameter: value})`` (the ONNX adapters: float32 attributes, onnx-float32-attributes). The
    term is the exact effect of that change, |f(case with those values) - f(case)|, computed by
    the float64 reference (nnref) on the float64 arrays ``a``; the modules' terms add.
    """
    import nnref

    names = case.record.float_attributes
    terms: dict[str, Any] = {}
    exact = None
    for module in modules:
        effective = getattr(module, "effective_attributes", None)
        if not names or effective is None:
            continue
        given = {n: float(getattr(case, n)) for n in names}
        used = effective(case.record.name, dict(given))
        if used == given:
            continue
        for n, value in used.items():  # a rounding, never a different parameter
            if abs(value - given[n]) > ATTRIBUTE_ROUNDING * max(abs(given[n]), 1.0):
                raise ValueError(f"{getattr(module, '__name__', module)}.effective_attributes: "
                                 f"{n}={value!r} for {given[n]!r} is not a float32 rounding")
        moved_case = dataclasses.replace(case, **used)
        with np.errstate(all="ignore"):
            if direction == "forward":
                exact = case.forward(nnref, a) if exact is None else exact
                moved = moved_case.forward(nnref, a)
            else:
                exact = case.backward(nnref, a) if exact is None else exact
                moved = moved_case.backward(nnref, a)
        for name, value in exact.items():
            if value is None or name == "indices" or moved.get(name) is None:
                continue
            term = np.abs(np.asarray(moved[name], np.float64) - np.asarray(value, np.float64))
            terms[name] = terms.get(name, 0.0) + np.where(np.isfinite(term), term, 0.0)
    return terms


def comparison_atol(bound_dtype: Any, bound_f64: Any) -> Any:
    """Allowed |candidate(dtype) - reference(float64)|: both implementations' bounds add."""
    return SAFETY * (np.asarray(bound_dtype) + np.asarray(bound_f64))
