"""Non-finite inputs: NaN, +-inf and -0.0 in inputs and parameters propagate as in torch.

Hypothesis draws a valid case, then overwrites a few drawn positions of the inputs and
parameters with NaN, +inf, -inf or -0.0. The implementation under test and torch (float64, the
same values) must agree exactly on where NaN and each infinity appear and on the sign of every
zero, and within the error model on the finite rest (bounds computed with the non-finite values
set to zero: an output those values do not reach is an ordinary finite computation).
Max-pool: NaN wins its window (torch's CPU rule, the last NaN in window order).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..backends import Unsupported, load_backend
from ..frameworks import require
from ..harness import context
from ..profiles import examples
from ..strategies import CASE_STRATEGIES, seeds

pytestmark = pytest.mark.torch

SPECIALS = [np.nan, np.inf, -np.inf, -0.0]


@pytest.fixture(scope="module")
def torch_backend():
    require("torch")
    return load_backend("torch")


@st.composite
def poisoned(draw, op):
    case = draw(CASE_STRATEGIES[op]())
    seed = draw(seeds)
    a = case.arrays(np.float64, seed)
    names = [n for n in case.differentiable if n in a] + ["dy"]
    hits = draw(st.lists(st.tuples(st.sampled_from(names), st.integers(0, 10**6),
                                   st.sampled_from(SPECIALS)), min_size=1, max_size=4),
                label="poisoned positions")
    for name, position, value in hits:
        flat = a[name].reshape(-1)
        flat[position % flat.size] = value
    return case, seed, a, hits


def _finite_bounds(bounds_fn, case, a):
    clean = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in a.items()}
    return bounds_fn(case, clean, np.float64)


def _same_signed_zeros(name, got, want, where):
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype.kind != "f":
        return
    zeros = (got == 0) & (want == 0)
    bad = zeros & (np.signbit(got) != np.signbit(want))
    assert not bad.any(), (
        f"{name}: sign of zero differs at {np.argwhere(bad)[0].tolist()} "
        f"(got {got[bad][0]!r}, torch {want[bad][0]!r}) [{where}]")


def _make(op, direction):
    @pytest.mark.checks(op if direction == "forward" else f"{op}_backward")
    @settings(max_examples=examples(60))
    @given(data=poisoned(op))
    def test(data, torch_backend, impl, impl_name_opt):
        case, seed, a, hits = data
        run = case.forward if direction == "forward" else case.backward
        bounds_fn = tol.forward_bounds if direction == "forward" else tol.backward_bounds
        try:
            want = run(torch_backend, {k: v.copy() for k, v in a.items()})
        except Unsupported:
            return  # registered and tested in test_crosscheck / test_divergences
        got = run(impl, {k: v.copy() for k, v in a.items()})
        bounds = _finite_bounds(bounds_fn, case, a)
        where = f"poisoned {hits}\n" + context(case, np.float64, seed, impl_name_opt)
        for name, value in want.items():
            atol = tol.comparison_atol(bounds[name], bounds[name])
            tol.compare(name, got[name], value, atol, where)
            _same_signed_zeros(name, got[name], value, where)

    test.__name__ = f"test_{op}_{direction}_propagates_non_finite_values_like_torch"
    return test


for _op in CASE_STRATEGIES:
    for _direction in ("forward", "backward"):
        _t = _make(_op, _direction)
        globals()[_t.__name__] = _t
