"""Case.gradient_call, the forward call an autodiff helper differentiates for a backward call:
the record's grad_defaults fill what the backward call does not pass, and a default whose shape
the (invalid) arguments do not give is left to the forward's own checks."""

from __future__ import annotations

import numpy as np

from ..ops.batch_norm import BatchNormCase
from ..ops.conv import ConvCase
from ..ops.conv_transpose import ConvTransposeCase


def test_a_missing_bias_is_zeros_of_the_output_channels_in_x_dtype():
    x, w = np.ones((2, 3, 5), np.float32), np.ones((4, 3, 2), np.float32)
    call = ConvCase.gradient_call({"dy": np.ones((2, 4, 4), np.float32), "x": x, "w": w,
                                   "stride": 1})
    assert set(call) == {"x", "w", "stride", "b"}
    assert call["b"].dtype == np.float32 and call["b"].shape == (4,) and not call["b"].any()
    assert call["x"] is x and call["w"] is w


def test_a_none_gamma_is_ones_and_a_given_one_is_kept():
    x = np.ones((4, 3))
    call = BatchNormCase.gradient_call({"dy": x, "x": x, "gamma": None})
    np.testing.assert_array_equal(call["gamma"], np.ones(3))
    np.testing.assert_array_equal(call["beta"], np.zeros(3))
    gamma = np.full(3, 2.0)
    assert BatchNormCase.gradient_call({"dy": x, "x": x, "gamma": gamma})["gamma"] is gamma


def test_a_default_of_no_valid_shape_is_left_out():
    x, w = np.ones((1, 2, 3)), np.ones((2, 1, 2))
    for groups in (-1, None):  # a negative size, a size that is no number
        call = ConvTransposeCase.gradient_call({"dy": x, "x": x, "w": w, "groups": groups})
        assert "b" not in call
    assert "b" not in ConvCase.gradient_call({"dy": x, "x": x, "w": np.float64(1.0)})
