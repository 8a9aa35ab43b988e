"""nnref's low-precision contract (CONTRACT.md, "Low precision"), for every op, rank and direction.

float16 and bfloat16 inputs are computed with float32 accumulation: nnref's result on inputs
stored in F is, bit for bit, its own float32 result on the same values widened exactly to
float32, each float output rounded once (to nearest, ties to even) to F; indices stay int64.
Mixing storage formats is a ValueError naming the parameter; inputs are never modified.

This is nnref's own contract (how a reference computes low precision), so these tests call nnref
itself, not the implementation under test: another implementation may sum in another order and
still be right within the error model.
"""

from __future__ import annotations

import nnref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..profiles import examples
from ..sampler import seeds, strategy
from .params import record_ranks

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 comes from ml_dtypes")
LOW = [pytest.param(np.dtype(np.float16), id="float16"),
       pytest.param(np.dtype(ml_dtypes.bfloat16), id="bfloat16")]


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bits (so that -0.0 != 0.0 and NaN payloads count)."""
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind in "fV" else a


def _test(direction: str):
    @settings(max_examples=examples(10))
    @given(data=st.data(), seed=seeds)
    def test(record, rank, storage, data, seed):
        case = data.draw(strategy(record, rank), label="case")
        a32 = case.arrays(np.float32, seed)
        low = {k: v.astype(storage) for k, v in a32.items()}  # the values F can store
        widened = {k: v.astype(np.float32) for k, v in low.items()}
        before = {k: _bits(v).copy() for k, v in low.items()}
        got = case.call(nnref, direction, low)
        want = case.call(nnref, direction, widened)
        for name, value in want.items():
            if value.dtype == np.float32:
                value = value.astype(storage)
            assert got[name].dtype == value.dtype, (name, got[name].dtype, value.dtype)
            assert np.array_equal(_bits(got[name]), _bits(value)), (
                f"{name}: the {storage.name} call is not the float32 call rounded once; "
                f"case {case.describe()} seed={seed}")
        for k, v in low.items():
            assert np.array_equal(_bits(v), before[k]), f"{k} was modified"

    return test


test_low_precision_forward_is_the_float32_forward_rounded_once = pytest.mark.parametrize(
    "storage", LOW)(pytest.mark.parametrize(("record", "rank"), record_ranks())(
        _test("forward")))
test_low_precision_backward_is_the_float32_backward_rounded_once = pytest.mark.parametrize(
    "storage", LOW)(pytest.mark.parametrize(("record", "rank"), record_ranks())(
        _test("backward")))


@pytest.mark.parametrize("storage", LOW)
def test_mixed_storage_formats_name_the_parameter(storage):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5)).astype(storage)
    w = rng.standard_normal((4, 3, 3, 2))
    for other in (np.float32, np.float64, np.float16 if storage.name == "bfloat16"
                  else ml_dtypes.bfloat16):
        with pytest.raises(ValueError, match=rf"^w has dtype {np.dtype(other).name} but x has "
                                             rf"dtype {storage.name}; they must match$"):
            nnref.conv2d(x, w.astype(other))
        with pytest.raises(ValueError, match=rf"^x has dtype {storage.name} but dy has dtype "):
            nnref.relu_backward(x.astype(other), x)
    y = nnref.conv2d(x, w.astype(storage))
    assert y.dtype == storage


def test_float32_and_float64_calls_are_not_wrapped_differently():
    """The low-precision wrapper passes float32 / float64 calls straight through: the same
    objects' results as the module functions, bit for bit."""
    from nnref import conv as conv_module

    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 7)).astype(dtype)
        w = rng.standard_normal((2, 3, 3)).astype(dtype)
        assert np.array_equal(nnref.conv1d(x, w, None, 2), conv_module.conv1d(x, w, None, 2))
    assert nnref.conv1d.__wrapped__ is conv_module.conv1d


def test_the_wrapper_applied_afresh_keeps_the_rule():
    """nnref wraps its functions once, at import; the wrapper itself, applied here to a probe,
    widens F inputs exactly, passes float32 / float64 and non-array arguments through, rounds
    each float32 output once to F, leaves integer outputs alone and names a mixed-format
    argument."""
    from nnref._low_precision import accepts_low_precision

    seen = []

    def probe(x, w=None, scale=1.0):
        seen.append((x.dtype, None if w is None else w.dtype, scale))
        y = x * np.float32(scale) if x.dtype == np.float32 else x * scale
        return y, np.arange(3)

    wrapped = accepts_low_precision(probe)
    assert wrapped.__name__ == "probe"
    x64 = np.array([1.0, 1 / 3])
    y, idx = wrapped(x64, scale=3.0)
    assert y.dtype == np.float64 and seen[-1] == (np.float64, None, 3.0)
    for fmt in (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)):
        x = np.array([1.0, 1 / 3, 2049.0]).astype(fmt)
        y, idx = wrapped(x, w=x.copy(), scale=3.0)
        assert seen[-1] == (np.float32, np.float32, 3.0)
        assert y.dtype == fmt and idx.dtype == np.arange(3).dtype
        want = (x.astype(np.float32) * np.float32(3.0)).astype(fmt)
        assert np.array_equal(y.view(np.uint16), want.view(np.uint16))
        with pytest.raises(ValueError, match=r"^w has dtype float32 but x has dtype "):
            wrapped(x, w=np.zeros(3, np.float32))
