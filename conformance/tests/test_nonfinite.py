"""Non-finite inputs: NaN, +-inf and -0.0 in inputs and parameters propagate as in torch.

Hypothesis draws a valid case of every op and rank, then overwrites a few drawn positions of the
inputs and parameters with NaN, +inf, -inf or -0.0. The implementation under test and torch
(float64, the same values) must agree exactly on where NaN and each infinity appear, and within
the error model on the finite rest (bounds computed with the non-finite values set to zero: an
output those values do not reach is an ordinary finite computation).

Signed zeros (CONTRACT.md): the outputs a record declares exact selections or copies
(``exact_outputs``: pad's y, max-pool's y) must match torch bit for bit, -0.0 included. A zero
that is a *sum* (a gradient, a convolution, a normalisation) may carry either sign: IEEE
arithmetic makes it depend on the order of the terms, which the contract leaves free.
Max-pool: NaN wins its window (torch's CPU rule, the last NaN in window order).
Failures print a reproducer that plants the same values before the call.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..backends import Unsupported, load_backend
from ..comparison import compare, same_bits
from ..frameworks import require
from ..harness import context
from ..profiles import examples
from ..sampler import seeds, strategy
from .params import record_ranks

SPECIALS = [np.nan, np.inf, -np.inf, -0.0]


@pytest.fixture(scope="module")
def torch_backend():
    require("torch")
    return load_backend("torch")


def poisoned(record, rank):
    @st.composite
    def draw_poisoned(draw):
        case = draw(strategy(record, rank), label="case")
        seed = draw(seeds, label="seed")
        a = case.arrays(np.float64, seed)
        names = [n for n in case.differentiable if n in a] + ["dy"]
        hits = draw(st.lists(st.tuples(st.sampled_from(names), st.integers(0, 10**6),
                                       st.sampled_from(SPECIALS)), min_size=1, max_size=4),
                    label="poisoned positions")
        for name, position, value in hits:
            flat = a[name].reshape(-1)
            flat[position % flat.size] = value
        return case, seed, a, hits

    return draw_poisoned()


def _planting_code(hits) -> str:
    """The code that puts the same values into the reproducer's arrays ``a``."""
    lines = [f"a[{name!r}].reshape(-1)[{position} % a[{name!r}].size] = float({value!r})"
             for name, position, value in hits]
    return "\n".join(lines).replace("float(nan)", "np.nan").replace(
        "float(inf)", "np.inf").replace("float(-inf)", "-np.inf")


def _finite_bounds(bounds_fn, case, a):
    clean = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in a.items()}
    return bounds_fn(case, clean, np.float64)


def _test(direction):
    @pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN in, NaN out: NumPy says so
    @settings(max_examples=examples(25))
    @given(data=st.data())
    def test(record, rank, data, torch_backend, impl, impl_name_opt):
        case, seed, a, hits = data.draw(poisoned(record, rank))
        bounds_fn = tol.forward_bounds if direction == "forward" else tol.backward_bounds
        try:
            want = case.call(torch_backend, direction, {k: v.copy() for k, v in a.items()})
        except Unsupported:
            return  # registered and tested in test_crosscheck / test_divergences
        got = case.call(impl, direction, {k: v.copy() for k, v in a.items()})
        bounds = _finite_bounds(bounds_fn, case, a)
        where = f"poisoned {hits}\n" + context(case, np.float64, seed, impl_name_opt,
                                               direction, _planting_code(hits))
        exact = record.exact_outputs if direction == "forward" else ()
        for name, value in want.items():
            atol = tol.comparison_atol(bounds[name], bounds[name])
            compare(name, got[name], value, atol, where)
            if name in exact:
                same_bits(name, got[name], value, where)

    return test


test_forward_propagates_non_finite_values_like_torch = pytest.mark.torch(
    pytest.mark.parametrize(("record", "rank"), record_ranks("forward"))(_test("forward")))
test_backward_propagates_non_finite_values_like_torch = pytest.mark.torch(
    pytest.mark.parametrize(("record", "rank"), record_ranks("backward"))(_test("backward")))


def test_the_reproducer_plants_the_poisoned_values():
    """The snippet a failure prints rebuilds the very arrays the test compared."""
    from ..ops.max_pool import PoolCase

    case = PoolCase((2, 2, 5), 2, kind="ties")
    hits = [("x", 3, -0.0), ("x", 7, np.nan), ("dy", 1, -np.inf)]
    a = case.arrays(np.float64, 5)
    for name, position, value in hits:
        a[name].reshape(-1)[position % a[name].size] = value
    text = context(case, np.float64, 5, "nnref", "forward", _planting_code(hits))
    code = text.split("reproducer:\n", 1)[1].replace("print(case.forward(impl, a))", "")
    scope: dict = {}
    exec(compile(code, "<reproducer>", "exec"), scope)
    for k, v in a.items():
        same_bits(k, scope["a"][k], v)
