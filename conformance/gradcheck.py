"""Central finite-difference gradient checks with a random upstream gradient.

For a case with upstream gradient g the scalar is ``L(inputs) = <g, forward(inputs)["y"]>``;
its derivative with respect to every element of every differentiable input is estimated by
``(L(v + h) - L(v - h)) / 2h`` and compared elementwise with the implementation's backward.

Error model of the estimate (float64):
- rounding: each L carries the forward's error bound (tolerance.forward_bounds, summed against
  |g|) plus the rounding of the dot product itself, gamma(M) * sum|g * y|; the difference
  quotient divides their sum by 2h (one for each of L(v + h), L(v - h)).
- truncation: zero for piecewise-linear ops (pad, conv, max-pool away from ties, with h below
  the half-gap between values) - the quotient is then exact up to rounding. For a smooth op
  (its record's ``fd_smooth``: batch norm) it is estimated per element by Richardson:
  |D(h) - D(2h)| (the h^2 term) times 4/3 ~ 2.

The step per element is the record's ``fd_step``; the case's ``backward_outputs`` name the
gradients (``d`` + the input's name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import tolerance as tol
from .cases import Case
from .comparison import compare


def finite_differences(
    case: Case, impl: Any, a: dict[str, np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each differentiable input present in ``a``: (estimate, allowed error), float64."""
    if any(v.dtype != np.float64 for v in a.values()):
        raise ValueError("finite differences are run in float64 only")
    g = a["dy"]
    u = tol.unit_roundoff(np.float64)
    values_case = case.values_only() or case  # the loss needs the values only (no indices)

    def loss_and_error(arrays: dict[str, np.ndarray]) -> tuple[float, float]:
        y = values_case.forward(impl, arrays)["y"]
        y_bound = tol.forward_bounds(case, arrays, np.float64)["y"]
        err = float(np.sum(np.abs(g) * np.broadcast_to(y_bound, y.shape)))
        err += tol.gamma(y.size, np.float64) * float(np.sum(np.abs(g * y)))
        return float(np.sum(g * y)), err

    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in case.differentiable:
        if name not in a:
            continue
        base = a[name]
        steps = case.record.fd_step(case, name, base)
        estimate = np.empty(base.shape)
        allowed = np.empty(base.shape)
        for flat in range(base.size):
            idx = np.unravel_index(flat, base.shape)
            h = float(steps[idx])

            def quotient(step: float, idx: Any = idx, name: str = name,
                         base: np.ndarray = base) -> tuple[float, float]:
                plus, minus = dict(a), dict(a)
                plus[name] = base.copy()
                minus[name] = base.copy()
                plus[name][idx] += step
                minus[name][idx] -= step
                (lp, ep), (lm, em) = loss_and_error(plus), loss_and_error(minus)
                # The perturbed value itself is rounded: relative u on the step.
                return (lp - lm) / (2 * step), (ep + em) / (2 * step) + u * abs(lp - lm) / step

            d_h, e_h = quotient(h)
            truncation = 0.0
            if case.record.fd_smooth:
                d_2h, e_2h = quotient(2 * h)
                truncation = 2.0 * max(abs(d_h - d_2h) - e_h - e_2h, 0.0)
            estimate[idx] = d_h
            allowed[idx] = e_h + truncation
        results[name] = (estimate, allowed)
    return results


def check_gradients(
    case: Case, impl: Any, a: dict[str, np.ndarray], context: Callable[[], str] = lambda: ""
) -> dict[str, float]:
    """Compare impl's backward with finite differences; returns the headroom per gradient."""
    grads = case.backward(impl, a)
    analytic_bounds = tol.backward_bounds(case, a, np.float64)
    headroom: dict[str, float] = {}
    for grad_name, (estimate, allowed) in _by_grad_name(finite_differences(case, impl, a)):
        atol = tol.SAFETY * (allowed + np.broadcast_to(analytic_bounds[grad_name], allowed.shape))
        headroom[grad_name] = compare(
            grad_name, grads[grad_name], estimate, atol, context=context()
        )
    return headroom


def _by_grad_name(
    fd: dict[str, tuple[np.ndarray, np.ndarray]],
) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    return [("d" + name, value) for name, value in fd.items()]
