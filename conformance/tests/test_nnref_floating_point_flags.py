"""nnref raises no floating-point exception where its result is the IEEE one: a caller running
under ``np.errstate(all="raise")`` (or with warnings as errors) gets the contract's values, not
a FloatingPointError. The overflow, underflow and invalid operations it meets on purpose (exp of
a large x that is not selected, a gradually underflowing product, ``inf * 0`` = NaN in a
gradient, a negative base in an LP-pool power) are each suppressed where they happen; the
values themselves are the other tests' business.
"""

from __future__ import annotations

import nnref
import numpy as np
import pytest

BIG = np.array([[-1000.0, -100.0, -0.0, 0.0, 100.0, 1000.0]])
DY = np.array([[np.inf, 1e-30, 1.0, -1.0, 1e30, -np.inf]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_raise_nothing_at_extreme_and_infinite_values(dtype):
    x, dy = BIG.astype(dtype), DY.astype(dtype)
    with np.errstate(all="raise"):
        nnref.relu(x), nnref.relu_backward(dy, x)
        nnref.elu(x), nnref.elu(x, 1e-30), nnref.elu_backward(dy, x), nnref.elu_backward(
            dy, x, 1e-30)
        # alpha 0 times the overflowed expm1 / exp of a large x: NaN, not selected
        nnref.elu(x, 0.0), nnref.elu_backward(dy, x, 0.0)
        y = nnref.sigmoid(x)
        dx = nnref.sigmoid_backward(dy, x)
    assert y[0, 0] == 0 and y[0, -1] == 1
    assert np.isnan(dx[0, 0]) or dx[0, 0] == 0  # inf * (tiny or 0)
    with np.errstate(all="raise"):
        assert np.isnan(nnref.relu_backward(dy, x)[0, 0])  # inf * 0
        # alpha * expm1(x) and alpha * exp(x) underflowing to subnormals: the IEEE values
        tiny = dtype(np.finfo(dtype).tiny / 8)
        assert 0 > nnref.elu(x[:, :2] * 0 - 1, tiny)[0, 0] > -np.finfo(dtype).tiny
        assert 0 < nnref.elu_backward(np.ones_like(x[:, :2]), x[:, :2] * 0 - 1, tiny)[0, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lp_pool_raises_nothing_for_negative_bases_and_zero_windows(dtype):
    x = np.array([[[-2.0, 3.0, 0.0, 0.0, 1e30, 1e30]]], dtype)
    dy = np.ones((1, 1, 3), dtype)
    with np.errstate(all="raise"):
        for p in (0.5, 1.5, 2.0, 3.0):
            nnref.lp_pool1d(x, p, 2)
            nnref.lp_pool1d_backward(dy, x, p, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_activations_plain_rules_raise_nothing_either(dtype):
    """The plain statements the fast paths are held to (activations.*_plain) are called by the
    suite under the caller's floating-point settings too."""
    from nnref.activations import (
        elu_plain,
        elu_plain_backward,
        sigmoid_plain,
        sigmoid_plain_backward,
    )

    x, dy = BIG.astype(dtype), DY.astype(dtype)
    tiny = dtype(np.finfo(dtype).tiny / 8)
    with np.errstate(all="raise"):
        sigmoid_plain(x), sigmoid_plain_backward(dy, x)
        for alpha in (1.0, 1e-30, 0.0, tiny):
            elu_plain(x, alpha), elu_plain_backward(dy, x, alpha)
