"""Invalid arguments raise ValueError naming the parameter (never IndexError or a wrong shape)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.arguments

R = np.random.default_rng(0)
X = R.standard_normal((2, 4, 5, 6))
W = R.standard_normal((6, 2, 3, 2))
G = R.standard_normal(4)
X1 = R.standard_normal((2, 4, 7))            # (N, C, L)
W1 = R.standard_normal((6, 2, 3))            # groups=2 with X1
X3 = R.standard_normal((2, 4, 4, 5, 3))      # (N, C, D, H, W)
W3 = R.standard_normal((6, 2, 2, 3, 2))      # groups=2 with X3

# (call, the word the message must contain)
INVALID = {
    "pad: negative pad": (lambda m: m.pad(X, -1), "pad_width"),
    "pad: reflect pad == size": (lambda m: m.pad(X, ((5, 0), (0, 0)), "reflect"), "pad_width"),
    "pad: circular pad > size": (lambda m: m.pad(X, (0, 7), "circular"), "pad_width"),
    "pad: unknown mode": (lambda m: m.pad(X, 1, "symmetric"), "mode"),
    "pad: 2-D input": (lambda m: m.pad(X[0, 0], 1), "x"),
    "pad: 6-D input": (lambda m: m.pad(X3[None], 1), "x"),
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
    # ----------------------------------------------------------------- 1-D (N, C, L)
    "pad 1-D: bare (before, after) pair": (lambda m: m.pad(X1, (1, 2)), "pad_width"),
    "pad 1-D: negative pad": (lambda m: m.pad(X1, ((0, -1),)), "pad_width"),
    "pad 1-D: reflect pad == size": (lambda m: m.pad(X1, ((7, 0),), "reflect"), "pad_width"),
    "pad 1-D: circular pad > size": (lambda m: m.pad(X1, 8, "circular"), "pad_width"),
    "pad_backward 1-D: pads larger than dy": (lambda m: m.pad_backward(X1, 4), "pad_width"),
    "pad_backward 1-D: reflect pad == size": (
        lambda m: m.pad_backward(X1, ((0, 4),), "reflect"), "pad_width"),
    "conv1d: 4-D x": (lambda m: m.conv1d(X, W1, groups=2), "x"),
    "conv1d: 4-D w": (lambda m: m.conv1d(X1, W, groups=2), "w"),
    "conv1d: groups do not divide channels": (lambda m: m.conv1d(X1, W1, groups=3), "groups"),
    "conv1d: channel mismatch": (lambda m: m.conv1d(X1, W1), "w"),
    "conv1d: kernel larger than padded input": (
        lambda m: m.conv1d(X1, R.standard_normal((2, 4, 8))), "kernel"),
    "conv1d: dilated kernel larger than input": (
        lambda m: m.conv1d(X1, W1, dilation=4, groups=2), "kernel"),
    "conv1d: zero stride": (lambda m: m.conv1d(X1, W1, stride=0, groups=2), "stride"),
    "conv1d: two strides": (lambda m: m.conv1d(X1, W1, stride=(1, 1), groups=2), "stride"),
    "conv1d: negative dilation": (lambda m: m.conv1d(X1, W1, dilation=(-1,), groups=2),
                                  "dilation"),
    "conv1d: bare padding pair": (lambda m: m.conv1d(X1, W1, padding=(1, 0), groups=2),
                                  "padding"),
    "conv1d: negative padding": (lambda m: m.conv1d(X1, W1, padding=((0, -1),), groups=2),
                                 "padding"),
    "conv1d: unknown padding string": (
        lambda m: m.conv1d(X1, W1, padding="full", groups=2), "padding"),
    "conv1d: mixed dtypes": (lambda m: m.conv1d(X1.astype(np.float32), W1, groups=2), "dtype"),
    "conv1d: bias shape": (lambda m: m.conv1d(X1, W1, np.zeros(5), groups=2), "b"),
    "conv1d_backward: wrong dy shape": (
        lambda m: m.conv1d_backward(np.zeros((2, 6, 4)), X1, W1, groups=2), "dy"),
    "conv1d_backward: 4-D dy": (
        lambda m: m.conv1d_backward(np.zeros((2, 6, 5, 1)), X1, W1, groups=2), "dy"),
    "pool1d: 4-D x": (lambda m: m.max_pool1d(X, 2), "x"),
    "pool1d: padding above half the kernel": (lambda m: m.max_pool1d(X1, 3, padding=2),
                                              "padding"),
    "pool1d: zero kernel": (lambda m: m.max_pool1d(X1, (0,)), "kernel_size"),
    "pool1d: two kernel sizes": (lambda m: m.max_pool1d(X1, (2, 2)), "kernel_size"),
    "pool1d: kernel larger than input": (lambda m: m.max_pool1d(X1, 8), "kernel"),
    "pool1d: negative stride": (lambda m: m.max_pool1d(X1, 2, stride=-1), "stride"),
    "pool1d: ceil_mode not a bool": (lambda m: m.max_pool1d(X1, 2, ceil_mode=1), "ceil_mode"),
    "pool1d: return_indices not a bool": (
        lambda m: m.max_pool1d(X1, 2, return_indices="yes"), "return_indices"),
    "pool1d_backward: wrong dy shape": (
        lambda m: m.max_pool1d_backward(np.zeros((2, 4, 4)), X1, 2), "dy"),
    "bn 1-D: x with one axis": (lambda m: m.batch_norm(X[0, 0, 0], G, G), "x"),
    "bn (N, C): one value per channel in training": (
        lambda m: m.batch_norm(X[:1, :, 0, 0], G, G), "one value per channel"),
    "bn (N, C, L): gamma shape": (lambda m: m.batch_norm(X1, G[:3], G), "gamma"),
    "bn (N, C, L): eval without running statistics": (
        lambda m: m.batch_norm(X1, G, G, training=False), "running_mean"),
    "bn_backward (N, C, L): wrong dy shape": (
        lambda m: m.batch_norm_backward(X1[:, :, :3], X1, G), "dy"),
    # ------------------------------------------------------------ 3-D (N, C, D, H, W)
    "pad 3-D: two entries": (lambda m: m.pad(X3, (1, 1)), "pad_width"),
    "pad 3-D: negative pad": (lambda m: m.pad(X3, (0, 0, (1, -1))), "pad_width"),
    "pad 3-D: triple entry": (lambda m: m.pad(X3, (0, (1, 2, 3), 0)), "pad_width"),
    "pad 3-D: reflect pad == depth": (lambda m: m.pad(X3, ((4, 0), 0, 0), "reflect"),
                                      "pad_width"),
    "pad 3-D: circular pad > width": (lambda m: m.pad(X3, (0, 0, 4), "circular"), "pad_width"),
    "pad 3-D: unknown mode": (lambda m: m.pad(X3, 1, "edge"), "mode"),
    "pad_backward 3-D: pads larger than dy": (
        lambda m: m.pad_backward(X3, (0, (3, 2), 0)), "pad_width"),
    "conv3d: 4-D x": (lambda m: m.conv3d(X, W3, groups=2), "x"),
    "conv3d: 4-D w": (lambda m: m.conv3d(X3, W, groups=2), "w"),
    "conv3d: groups do not divide channels": (lambda m: m.conv3d(X3, W3, groups=3), "groups"),
    "conv3d: kernel larger than padded input": (
        lambda m: m.conv3d(X3, R.standard_normal((2, 4, 1, 1, 4))), "kernel"),
    "conv3d: zero stride": (lambda m: m.conv3d(X3, W3, stride=(1, 0, 1), groups=2), "stride"),
    "conv3d: two dilations": (lambda m: m.conv3d(X3, W3, dilation=(1, 1), groups=2),
                              "dilation"),
    "conv3d: padding with two entries": (
        lambda m: m.conv3d(X3, W3, padding=((1, 1), (1, 1)), groups=2), "padding"),
    "conv3d: float padding": (lambda m: m.conv3d(X3, W3, padding=(0, 1.0, 0), groups=2),
                              "padding"),
    "conv3d: mixed dtypes": (lambda m: m.conv3d(X3, W3.astype(np.float32), groups=2), "dtype"),
    "conv3d_backward: wrong dy shape": (
        lambda m: m.conv3d_backward(np.zeros((2, 6, 3, 3, 3)), X3, W3, groups=2), "dy"),
    "pool3d: 4-D x": (lambda m: m.max_pool3d(X, 2), "x"),
    "pool3d: padding above half the kernel": (
        lambda m: m.max_pool3d(X3, (2, 2, 3), padding=(0, 0, 2)), "padding"),
    "pool3d: zero dilation": (lambda m: m.max_pool3d(X3, 2, dilation=(1, 1, 0)), "dilation"),
    "pool3d: two kernel sizes": (lambda m: m.max_pool3d(X3, (2, 2)), "kernel_size"),
    "pool3d: kernel larger than input": (lambda m: m.max_pool3d(X3, (1, 1, 4)), "kernel"),
    "pool3d: padding string": (lambda m: m.max_pool3d(X3, 2, padding="same"), "padding"),
    "pool3d_backward: wrong dy shape": (
        lambda m: m.max_pool3d_backward(np.zeros((2, 4, 2, 2, 2)), X3, 2), "dy"),
    "pool3d_backward: mixed dtypes": (
        lambda m: m.max_pool3d_backward(np.zeros((2, 4, 2, 2, 1), np.float32), X3, 2), "dtype"),
    "bn 3-D: 6-D x": (lambda m: m.batch_norm(X3[None], G, G), "x"),
    "bn 3-D: running_var shape": (
        lambda m: m.batch_norm(X3, G, G, running_mean=G, running_var=G[:2]), "running_var"),
    "bn_backward 3-D: wrong dy shape": (lambda m: m.batch_norm_backward(X3[:1], X3, G), "dy"),
    # ------------------------------------------------ layer, group and instance norm
    "ln: normalized_shape not trailing": (lambda m: m.layer_norm(X, (4, 5)), "normalized_shape"),
    "ln: empty normalized_shape": (lambda m: m.layer_norm(X, ()), "normalized_shape"),
    "ln: normalized_shape a float": (lambda m: m.layer_norm(X, 6.0), "normalized_shape"),
    "ln: 0-D x": (lambda m: m.layer_norm(np.array(1.0), 1), "x"),
    "ln: gamma shape": (lambda m: m.layer_norm(X, (5, 6), G), "gamma"),
    "ln: negative eps": (lambda m: m.layer_norm(X, 6, eps=-1e-5), "eps"),
    "ln_backward: wrong dy shape": (lambda m: m.layer_norm_backward(X[:1], X, 6), "dy"),
    "gn: groups do not divide channels": (lambda m: m.group_norm(X, 3), "num_groups"),
    "gn: zero groups": (lambda m: m.group_norm(X, 0), "num_groups"),
    "gn: groups a float": (lambda m: m.group_norm(X, 2.0), "num_groups"),
    "gn 1-D: x with one axis": (lambda m: m.group_norm(X[0, 0, 0], 1), "x"),
    "gn: beta shape": (lambda m: m.group_norm(X, 2, G, G[:3]), "beta"),
    "gn_backward: wrong dy shape": (lambda m: m.group_norm_backward(X[:1], X, 2), "dy"),
    "gn_backward 3-D: groups do not divide channels": (
        lambda m: m.group_norm_backward(X3, X3, 3), "num_groups"),
    "in: one value per instance in training": (
        lambda m: m.instance_norm(X[:, :, :1, :1]), "one value per instance"),
    "in (N, C): training": (lambda m: m.instance_norm(X[:, :, 0, 0]), "one value per instance"),
    "in: eval without running statistics": (
        lambda m: m.instance_norm(X, G, G, training=False), "running_mean"),
    "in: only running_var": (lambda m: m.instance_norm(X, G, G, running_var=G), "running_mean"),
    "in: momentum above 1": (lambda m: m.instance_norm(X, momentum=1.5), "momentum"),
    "in (N, C, L): gamma shape": (lambda m: m.instance_norm(X1, G[:3]), "gamma"),
    "in 3-D: 6-D x": (lambda m: m.instance_norm(X3[None]), "x"),
    "in_backward: wrong dy shape": (lambda m: m.instance_norm_backward(X[:1], X), "dy"),
}


@pytest.mark.parametrize("what", sorted(INVALID))
def test_invalid_argument_raises_value_error_naming_it(what, impl):
    call, word = INVALID[what]
    with pytest.raises(ValueError) as info:
        call(impl)
    assert word in str(info.value), f"{what}: message {str(info.value)!r} does not name {word!r}"
