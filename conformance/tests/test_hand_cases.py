"""The hand-computed cases of every op record, forward and backward, both dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from .. import tolerance as tol
from ..comparison import compare
from ..ops import hand_cases

# The expected numbers are exact (or one rounding away, e.g. 1/3): a correct implementation
# is within a few roundings of each value's magnitude. 8 u |value| + 8 u covers the longest
# chain here (batch norm: mean, variance, sqrt, divide, scale, shift) in either dtype.
ROUNDINGS = 8
HAND_CASES = hand_cases()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("case", HAND_CASES, ids=[c.name for c in HAND_CASES])
def test_hand_case(case, direction, dtype, impl):
    a = case.arrays(dtype)
    got = case.case.call(impl, direction, a)
    u = tol.unit_roundoff(dtype)
    for name, want in case.expected(direction).items():
        atol = ROUNDINGS * u * (np.abs(want) + 1) if name != "indices" else 0
        compare(name, got[name], want, atol, f"hand case {case.name} ({direction})")
        if name != "indices":
            assert got[name].dtype == dtype, f"{name} dtype {got[name].dtype} != {dtype}"


def test_hand_cases_have_unique_names_and_matching_shapes():
    names = [c.name for c in HAND_CASES]
    assert len(names) == len(set(names))
    for c in HAND_CASES:
        a = c.arrays(np.float64)
        assert a["dy"].shape == c.case.output_shape(), c.name
        generated = c.case.arrays(np.float64, 0)
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in generated.items()}, (
            f"{c.name}: the hand inputs do not have the shapes its case describes")
