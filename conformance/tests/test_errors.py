"""Invalid arguments raise ValueError naming the parameter and the offending value (never
IndexError or a wrong shape), CONTRACT.md "Errors".

Each entry gives the parameters the message must name, as whole words spelled as in the
signature (``x`` is not found in ``max_pool2d`` or ``x0``), and the offending values it must show
as they print in Python (the shape, dtype, pad, string or number), each standing alone: ``3`` is
not found in ``13``, ``(5,)`` not in ``(2, 5,)``.
"""

from __future__ import annotations

import re

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

# (call, parameter names the message must contain, offending values it must show)
INVALID = {
    "pad: negative pad": (lambda m: m.pad(X, -1), ("pad_width",), ("-1",)),
    "pad: reflect pad == size": (
        lambda m: m.pad(X, ((5, 0), (0, 0)), "reflect"), ("pad_width",), ("((5, 0), (0, 0))",)),
    "pad: circular pad > size": (
        lambda m: m.pad(X, (0, 7), "circular"), ("pad_width",), ("(0, 7)",)),
    "pad: unknown mode": (lambda m: m.pad(X, 1, "symmetric"), ("mode",), ("'symmetric'",)),
    "pad: 2-D input": (lambda m: m.pad(X[0, 0], 1), ("x",), ("(5, 6)",)),
    "pad: 6-D input": (lambda m: m.pad(X3[None], 1), ("x",), ("(1, 2, 4, 4, 5, 3)",)),
    "pad: integer input": (lambda m: m.pad(X.astype(np.int64), 1), ("x",), ("int64",)),
    "pad_backward: pads larger than dy": (
        lambda m: m.pad_backward(X, ((3, 3), (0, 0))), ("pad_width",), ("((3, 3), (0, 0))",)),
    "conv: groups do not divide channels": (
        lambda m: m.conv2d(X, R.standard_normal((6, 4, 3, 3)), groups=3), ("groups",), ("3",)),
    "conv: channel mismatch": (
        lambda m: m.conv2d(X, R.standard_normal((6, 3, 3, 3))), ("w",), ("(6, 3, 3, 3)",)),
    "conv: kernel larger than padded input": (
        lambda m: m.conv2d(X, R.standard_normal((2, 4, 6, 2))), ("w",), ("(2, 4, 6, 2)",)),
    "conv: zero stride": (lambda m: m.conv2d(X, W, stride=0, groups=2), ("stride",), ("0",)),
    "conv: negative dilation": (
        lambda m: m.conv2d(X, W, dilation=(1, -1), groups=2), ("dilation",), ("(1, -1)",)),
    "conv: negative padding": (
        lambda m: m.conv2d(X, W, padding=-1, groups=2), ("padding",), ("-1",)),
    "conv: unknown padding string": (
        lambda m: m.conv2d(X, W, padding="full", groups=2), ("padding",), ("'full'",)),
    "conv: mixed dtypes": (
        lambda m: m.conv2d(X.astype(np.float32), W, groups=2), ("x", "w"), ("float32", "float64")),
    "conv: bias shape": (lambda m: m.conv2d(X, W, np.zeros(5), groups=2), ("b",), ("(5,)",)),
    "conv: bool input": (lambda m: m.conv2d(X > 0, W, groups=2), ("x",), ("bool",)),
    "conv_backward: wrong dy shape": (
        lambda m: m.conv2d_backward(np.zeros((2, 6, 3, 4)), X, W, groups=2),
        ("dy",), ("(2, 6, 3, 4)",)),
    "pool: padding above half the kernel": (
        lambda m: m.max_pool2d(X, 2, padding=2), ("padding",), ("2",)),
    "pool: zero kernel": (lambda m: m.max_pool2d(X, 0), ("kernel_size",), ("0",)),
    "pool: kernel larger than input": (
        lambda m: m.max_pool2d(X, (6, 1)), ("x",), ("(2, 4, 5, 6)",)),
    "pool: negative stride": (lambda m: m.max_pool2d(X, 2, stride=-1), ("stride",), ("-1",)),
    "pool_backward: wrong dy shape": (
        lambda m: m.max_pool2d_backward(np.zeros((2, 4, 3, 3)), X, 2), ("dy",), ("(2, 4, 3, 3)",)),
    "bn: eval without running statistics": (
        lambda m: m.batch_norm(X, G, G, training=False),
        ("running_mean", "running_var"), ("None",)),
    "bn: one value per channel in training": (
        lambda m: m.batch_norm(X[:1, :, :1, :1], G, G), ("x",), ("(1, 4, 1, 1)",)),
    "bn: gamma shape": (lambda m: m.batch_norm(X, G[:3], G), ("gamma",), ("(3,)",)),
    "bn: only running_mean": (
        lambda m: m.batch_norm(X, G, G, running_mean=G), ("running_var",), ("None",)),
    "bn: momentum above 1": (
        lambda m: m.batch_norm(X, G, G, momentum=1.5), ("momentum",), ("1.5",)),
    "bn: negative eps": (lambda m: m.batch_norm(X, G, G, eps=-1e-5), ("eps",), ("-1e-05",)),
    "bn_backward: wrong dy shape": (
        lambda m: m.batch_norm_backward(X[:1], X, G), ("dy",), ("(1, 4, 5, 6)",)),
    # ----------------------------------------------------------------- 1-D (N, C, L)
    "pad 1-D: bare (before, after) pair": (
        lambda m: m.pad(X1, (1, 2)), ("pad_width",), ("(1, 2)",)),
    "pad 1-D: negative pad": (lambda m: m.pad(X1, ((0, -1),)), ("pad_width",), ("((0, -1),)",)),
    "pad 1-D: reflect pad == size": (
        lambda m: m.pad(X1, ((7, 0),), "reflect"), ("pad_width",), ("((7, 0),)",)),
    "pad 1-D: circular pad > size": (lambda m: m.pad(X1, 8, "circular"), ("pad_width",), ("8",)),
    "pad_backward 1-D: pads larger than dy": (
        lambda m: m.pad_backward(X1, 4), ("pad_width",), ("4",)),
    "pad_backward 1-D: reflect pad == size": (
        lambda m: m.pad_backward(X1, ((0, 4),), "reflect"), ("pad_width",), ("((0, 4),)",)),
    "conv1d: 4-D x": (lambda m: m.conv1d(X, W1, groups=2), ("x",), ("(2, 4, 5, 6)",)),
    "conv1d: 4-D w": (lambda m: m.conv1d(X1, W, groups=2), ("w",), ("(6, 2, 3, 2)",)),
    "conv1d: groups do not divide channels": (
        lambda m: m.conv1d(X1, W1, groups=3), ("groups",), ("3",)),
    "conv1d: channel mismatch": (lambda m: m.conv1d(X1, W1), ("w",), ("(6, 2, 3)",)),
    "conv1d: kernel larger than padded input": (
        lambda m: m.conv1d(X1, R.standard_normal((2, 4, 8))), ("w",), ("(2, 4, 8)",)),
    "conv1d: dilated kernel larger than input": (
        lambda m: m.conv1d(X1, W1, dilation=4, groups=2), ("w",), ("(6, 2, 3)", "9")),
    "conv1d: zero stride": (lambda m: m.conv1d(X1, W1, stride=0, groups=2), ("stride",), ("0",)),
    "conv1d: two strides": (
        lambda m: m.conv1d(X1, W1, stride=(1, 1), groups=2), ("stride",), ("(1, 1)",)),
    "conv1d: negative dilation": (lambda m: m.conv1d(X1, W1, dilation=(-1,), groups=2),
                                  ("dilation",), ("(-1,)",)),
    "conv1d: bare padding pair": (lambda m: m.conv1d(X1, W1, padding=(1, 0), groups=2),
                                  ("padding",), ("(1, 0)",)),
    "conv1d: negative padding": (lambda m: m.conv1d(X1, W1, padding=((0, -1),), groups=2),
                                 ("padding",), ("((0, -1),)",)),
    "conv1d: unknown padding string": (
        lambda m: m.conv1d(X1, W1, padding="full", groups=2), ("padding",), ("'full'",)),
    "conv1d: mixed dtypes": (
        lambda m: m.conv1d(X1.astype(np.float32), W1, groups=2),
        ("x", "w"), ("float32", "float64")),
    "conv1d: bias shape": (lambda m: m.conv1d(X1, W1, np.zeros(5), groups=2), ("b",), ("(5,)",)),
    "conv1d_backward: wrong dy shape": (
        lambda m: m.conv1d_backward(np.zeros((2, 6, 4)), X1, W1, groups=2),
        ("dy",), ("(2, 6, 4)",)),
    "conv1d_backward: 4-D dy": (
        lambda m: m.conv1d_backward(np.zeros((2, 6, 5, 1)), X1, W1, groups=2),
        ("dy",), ("(2, 6, 5, 1)",)),
    "pool1d: 4-D x": (lambda m: m.max_pool1d(X, 2), ("x",), ("(2, 4, 5, 6)",)),
    "pool1d: padding above half the kernel": (lambda m: m.max_pool1d(X1, 3, padding=2),
                                              ("padding",), ("2",)),
    "pool1d: zero kernel": (lambda m: m.max_pool1d(X1, (0,)), ("kernel_size",), ("(0,)",)),
    "pool1d: two kernel sizes": (lambda m: m.max_pool1d(X1, (2, 2)), ("kernel_size",), ("(2, 2)",)),
    "pool1d: kernel larger than input": (lambda m: m.max_pool1d(X1, 8), ("x",), ("(2, 4, 7)", "8")),
    "pool1d: negative stride": (lambda m: m.max_pool1d(X1, 2, stride=-1), ("stride",), ("-1",)),
    "pool1d: ceil_mode not a bool": (
        lambda m: m.max_pool1d(X1, 2, ceil_mode=1), ("ceil_mode",), ("1",)),
    "pool1d: return_indices not a bool": (
        lambda m: m.max_pool1d(X1, 2, return_indices="yes"), ("return_indices",), ("'yes'",)),
    "pool1d_backward: wrong dy shape": (
        lambda m: m.max_pool1d_backward(np.zeros((2, 4, 4)), X1, 2), ("dy",), ("(2, 4, 4)",)),
    "bn 1-D: x with one axis": (lambda m: m.batch_norm(X[0, 0, 0], G, G), ("x",), ("(6,)",)),
    "bn (N, C): one value per channel in training": (
        lambda m: m.batch_norm(X[:1, :, 0, 0], G, G), ("x",), ("(1, 4)",)),
    "bn (N, C, L): gamma shape": (lambda m: m.batch_norm(X1, G[:3], G), ("gamma",), ("(3,)",)),
    "bn (N, C, L): eval without running statistics": (
        lambda m: m.batch_norm(X1, G, G, training=False),
        ("running_mean", "running_var"), ("None",)),
    "bn_backward (N, C, L): wrong dy shape": (
        lambda m: m.batch_norm_backward(X1[:, :, :3], X1, G), ("dy",), ("(2, 4, 3)",)),
    # ------------------------------------------------------------ 3-D (N, C, D, H, W)
    "pad 3-D: two entries": (lambda m: m.pad(X3, (1, 1)), ("pad_width",), ("(1, 1)",)),
    "pad 3-D: negative pad": (
        lambda m: m.pad(X3, (0, 0, (1, -1))), ("pad_width",), ("(0, 0, (1, -1))",)),
    "pad 3-D: triple entry": (
        lambda m: m.pad(X3, (0, (1, 2, 3), 0)), ("pad_width",), ("(1, 2, 3)",)),
    "pad 3-D: reflect pad == depth": (
        lambda m: m.pad(X3, ((4, 0), 0, 0), "reflect"), ("pad_width",), ("((4, 0), 0, 0)",)),
    "pad 3-D: circular pad > width": (
        lambda m: m.pad(X3, (0, 0, 4), "circular"), ("pad_width",), ("(0, 0, 4)",)),
    "pad 3-D: unknown mode": (lambda m: m.pad(X3, 1, "edge"), ("mode",), ("'edge'",)),
    "pad_backward 3-D: pads larger than dy": (
        lambda m: m.pad_backward(X3, (0, (3, 2), 0)), ("pad_width",), ("(0, (3, 2), 0)",)),
    "conv3d: 4-D x": (lambda m: m.conv3d(X, W3, groups=2), ("x",), ("(2, 4, 5, 6)",)),
    "conv3d: 4-D w": (lambda m: m.conv3d(X3, W, groups=2), ("w",), ("(6, 2, 3, 2)",)),
    "conv3d: groups do not divide channels": (
        lambda m: m.conv3d(X3, W3, groups=3), ("groups",), ("3",)),
    "conv3d: kernel larger than padded input": (
        lambda m: m.conv3d(X3, R.standard_normal((2, 4, 1, 1, 4))), ("w",), ("(2, 4, 1, 1, 4)",)),
    "conv3d: zero stride": (
        lambda m: m.conv3d(X3, W3, stride=(1, 0, 1), groups=2), ("stride",), ("(1, 0, 1)",)),
    "conv3d: two dilations": (lambda m: m.conv3d(X3, W3, dilation=(1, 1), groups=2),
                              ("dilation",), ("(1, 1)",)),
    "conv3d: padding with two entries": (
        lambda m: m.conv3d(X3, W3, padding=((1, 1), (1, 1)), groups=2),
        ("padding",), ("((1, 1), (1, 1))",)),
    "conv3d: float padding": (lambda m: m.conv3d(X3, W3, padding=(0, 1.0, 0), groups=2),
                              ("padding",), ("1.0",)),
    "conv3d: mixed dtypes": (
        lambda m: m.conv3d(X3, W3.astype(np.float32), groups=2),
        ("x", "w"), ("float32", "float64")),
    "conv3d_backward: wrong dy shape": (
        lambda m: m.conv3d_backward(np.zeros((2, 6, 3, 3, 3)), X3, W3, groups=2),
        ("dy",), ("(2, 6, 3, 3, 3)",)),
    "pool3d: 4-D x": (lambda m: m.max_pool3d(X, 2), ("x",), ("(2, 4, 5, 6)",)),
    "pool3d: padding above half the kernel": (
        lambda m: m.max_pool3d(X3, (2, 2, 3), padding=(0, 0, 2)), ("padding",), ("(0, 0, 2)",)),
    "pool3d: zero dilation": (
        lambda m: m.max_pool3d(X3, 2, dilation=(1, 1, 0)), ("dilation",), ("(1, 1, 0)",)),
    "pool3d: two kernel sizes": (lambda m: m.max_pool3d(X3, (2, 2)), ("kernel_size",), ("(2, 2)",)),
    "pool3d: kernel larger than input": (
        lambda m: m.max_pool3d(X3, (1, 1, 4)), ("x",), ("(2, 4, 4, 5, 3)",)),
    "pool3d: padding string": (
        lambda m: m.max_pool3d(X3, 2, padding="same"), ("padding",), ("'same'",)),
    "pool3d_backward: wrong dy shape": (
        lambda m: m.max_pool3d_backward(np.zeros((2, 4, 2, 2, 2)), X3, 2),
        ("dy",), ("(2, 4, 2, 2, 2)",)),
    "pool3d_backward: mixed dtypes": (
        lambda m: m.max_pool3d_backward(np.zeros((2, 4, 2, 2, 1), np.float32), X3, 2),
        ("dy", "x"), ("float32", "float64")),
    "bn 3-D: 6-D x": (lambda m: m.batch_norm(X3[None], G, G), ("x",), ("(1, 2, 4, 4, 5, 3)",)),
    "bn 3-D: running_var shape": (
        lambda m: m.batch_norm(X3, G, G, running_mean=G, running_var=G[:2]),
        ("running_var",), ("(2,)",)),
    "bn_backward 3-D: wrong dy shape": (
        lambda m: m.batch_norm_backward(X3[:1], X3, G), ("dy",), ("(1, 4, 4, 5, 3)",)),
    # ------------------------------------------------ layer, group and instance norm
    "ln: normalized_shape not trailing": (
        lambda m: m.layer_norm(X, (4, 5)), ("normalized_shape", "x"), ("(4, 5)", "(2, 4, 5, 6)")),
    "ln: empty normalized_shape": (
        lambda m: m.layer_norm(X, ()), ("normalized_shape",), ("()",)),
    "ln: normalized_shape a float": (
        lambda m: m.layer_norm(X, 6.0), ("normalized_shape",), ("6.0",)),
    "ln: 0-D x": (lambda m: m.layer_norm(np.array(1.0), 1), ("x",), ("()",)),
    "ln: gamma shape": (lambda m: m.layer_norm(X, (5, 6), G), ("gamma",), ("(4,)",)),
    "ln: negative eps": (lambda m: m.layer_norm(X, 6, eps=-1e-5), ("eps",), ("-1e-05",)),
    "ln_backward: wrong dy shape": (
        lambda m: m.layer_norm_backward(X[:1], X, 6), ("dy",), ("(1, 4, 5, 6)",)),
    "gn: groups do not divide channels": (
        lambda m: m.group_norm(X, 3), ("num_groups",), ("3",)),
    "gn: zero groups": (lambda m: m.group_norm(X, 0), ("num_groups",), ("0",)),
    "gn: groups a float": (lambda m: m.group_norm(X, 2.0), ("num_groups",), ("2.0",)),
    "gn 1-D: x with one axis": (lambda m: m.group_norm(X[0, 0, 0], 1), ("x",), ("(6,)",)),
    "gn: beta shape": (lambda m: m.group_norm(X, 2, G, G[:3]), ("beta",), ("(3,)",)),
    "gn_backward: wrong dy shape": (
        lambda m: m.group_norm_backward(X[:1], X, 2), ("dy",), ("(1, 4, 5, 6)",)),
    "gn_backward 3-D: groups do not divide channels": (
        lambda m: m.group_norm_backward(X3, X3, 3), ("num_groups",), ("3",)),
    "in: one value per instance in training": (
        lambda m: m.instance_norm(X[:, :, :1, :1]), ("training", "x"), ("(2, 4, 1, 1)",)),
    "in (N, C): training": (
        lambda m: m.instance_norm(X[:, :, 0, 0]), ("training", "x"), ("(2, 4)",)),
    "in: eval without running statistics": (
        lambda m: m.instance_norm(X, G, G, training=False),
        ("running_mean", "running_var"), ("None",)),
    "in: only running_var": (
        lambda m: m.instance_norm(X, G, G, running_var=G), ("running_mean", "running_var"),
        ("None",)),
    "in: momentum above 1": (lambda m: m.instance_norm(X, momentum=1.5), ("momentum",), ("1.5",)),
    "in (N, C, L): gamma shape": (lambda m: m.instance_norm(X1, G[:3]), ("gamma",), ("(3,)",)),
    "in 3-D: 6-D x": (lambda m: m.instance_norm(X3[None]), ("x",), ("(1, 2, 4, 4, 5, 3)",)),
    "in_backward: wrong dy shape": (
        lambda m: m.instance_norm_backward(X[:1], X), ("dy",), ("(1, 4, 5, 6)",)),
}


def _word(name: str) -> str:
    """Regex for a parameter name as a whole word: letters, digits and _ do not continue it."""
    return rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"


def _shown(value: str) -> str:
    """Regex for a printed value standing alone: no word character, digit, point or minus sign
    continues it on the left, no word character or point on the right."""
    return rf"(?<![\w.\-]){re.escape(value)}(?![\w.])"


@pytest.mark.parametrize("what", sorted(INVALID))
def test_invalid_argument_raises_value_error_naming_it(what, impl):
    call, names, values = INVALID[what]
    with pytest.raises(ValueError) as info:
        call(impl)
    message = str(info.value)
    for name in names:
        assert re.search(_word(name), message), f"{what}: {message!r} does not name {name!r}"
    for value in values:
        assert re.search(_shown(value), message), f"{what}: {message!r} does not show {value}"


@pytest.mark.parametrize(("pattern", "message", "found"), [
    (_word("x"), "max_pool2d got 4 dimensions", False),
    (_word("x"), "x0 must be >= 1", False),
    (_word("x"), "the input x must have 4 dimensions", True),
    (_word("b"), "b must have shape (6,)", True),
    (_word("b"), "bias must have shape (6,)", False),
    (_shown("3"), "groups=13", False),
    (_shown("3"), "groups=3 must divide 4", True),
    (_shown("-1"), "got -1e-05", False),
    (_shown("(5,)"), "got (2, 5,)", False),
    (_shown("1.0"), "got 11.0", False),
])
def test_the_name_and_value_patterns_match_only_standing_alone(pattern, message, found):
    assert bool(re.search(pattern, message)) == found
