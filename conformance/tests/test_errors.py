"""Invalid arguments raise ValueError naming the parameter (never IndexError or a wrong shape)."""

from __future__ import annotations

import numpy as np
import pytest

R = np.random.default_rng(0)
X = R.standard_normal((2, 4, 5, 6))
W = R.standard_normal((6, 2, 3, 2))
G = R.standard_normal(4)

# (call, the word the message must contain)
INVALID = {
    "pad: negative pad": (lambda m: m.pad(X, -1), "pad_width"),
    "pad: reflect pad == size": (lambda m: m.pad(X, ((5, 0), (0, 0)), "reflect"), "pad_width"),
    "pad: circular pad > size": (lambda m: m.pad(X, (0, 7), "circular"), "pad_width"),
    "pad: unknown mode": (lambda m: m.pad(X, 1, "symmetric"), "mode"),
    "pad: 3-D input": (lambda m: m.pad(X[0], 1), "x"),
    "pad: integer input": (lambda m: m.pad(X.astype(np.int64), 1), "x"),
    "pad_backward: pads larger than dy": (
        lambda m: m.pad_backward(X, ((3, 3), (0, 0))), "pad_width"),
    "conv: groups do not divide channels": (
        lambda m: m.conv2d(X, R.standard_normal((6, 4, 3, 3)), groups=3), "groups"),
    "conv: channel mismatch": (lambda m: m.conv2d(X, R.standard_normal((6, 3, 3, 3))), "w"),
    "conv: kernel larger than padded input": (
        lambda m: m.conv2d(X, R.standard_normal((2, 4, 6, 2))), "kernel"),
    "conv: zero stride": (lambda m: m.conv2d(X, W, stride=0, groups=2), "stride"),
    "conv: negative dilation": (lambda m: m.conv2d(X, W, dilation=(1, -1), groups=2), "dilation"),
    "conv: negative padding": (lambda m: m.conv2d(X, W, padding=-1, groups=2), "padding"),
    "conv: unknown padding string": (lambda m: m.conv2d(X, W, padding="full", groups=2), "padding"),
    "conv: mixed dtypes": (lambda m: m.conv2d(X.astype(np.float32), W, groups=2), "dtype"),
    "conv: bias shape": (lambda m: m.conv2d(X, W, np.zeros(5), groups=2), "b"),
    "conv: bool input": (lambda m: m.conv2d(X > 0, W, groups=2), "x"),
    "conv_backward: wrong dy shape": (
        lambda m: m.conv2d_backward(np.zeros((2, 6, 3, 4)), X, W, groups=2), "dy"),
    "pool: padding above half the kernel": (lambda m: m.max_pool2d(X, 2, padding=2), "padding"),
    "pool: zero kernel": (lambda m: m.max_pool2d(X, 0), "kernel_size"),
    "pool: kernel larger than input": (lambda m: m.max_pool2d(X, (6, 1)), "kernel"),
    "pool: negative stride": (lambda m: m.max_pool2d(X, 2, stride=-1), "stride"),
    "pool_backward: wrong dy shape": (
        lambda m: m.max_pool2d_backward(np.zeros((2, 4, 3, 3)), X, 2), "dy"),
    "bn: eval without running statistics": (
        lambda m: m.batch_norm(X, G, G, training=False), "running_mean"),
    "bn: one value per channel in training": (
        lambda m: m.batch_norm(X[:1, :, :1, :1], G, G), "one value per channel"),
    "bn: gamma shape": (lambda m: m.batch_norm(X, G[:3], G), "gamma"),
    "bn: only running_mean": (lambda m: m.batch_norm(X, G, G, running_mean=G), "running_var"),
    "bn: momentum above 1": (lambda m: m.batch_norm(X, G, G, momentum=1.5), "momentum"),
    "bn: negative eps": (lambda m: m.batch_norm(X, G, G, eps=-1e-5), "eps"),
    "bn_backward: wrong dy shape": (lambda m: m.batch_norm_backward(X[:1], X, G), "dy"),
}


@pytest.mark.parametrize("what", sorted(INVALID))
def test_invalid_argument_raises_value_error_naming_it(what, impl):
    call, word = INVALID[what]
    with pytest.raises(ValueError) as info:
        call(impl)
    assert word in str(info.value), f"{what}: message {str(info.value)!r} does not name {word!r}"
