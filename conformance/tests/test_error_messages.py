"""Error messages (CONTRACT.md "Errors"): the ValueError names the parameter *as written in the
signature* (whole word, case-sensitive: ``dy``, not ``DY`` or ``XXdyXX``) and the offending value
(the shape, dtype, type, pad or limit that is wrong), for every array argument of every function
and for non-integer integer arguments (1.5, True), which must be rejected, never truncated; a
kernel larger than the padded input names the axis, the dilated extent and the padded size.

Deterministic, no Hypothesis (found by mutation testing, docs/mutation.md).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.arguments

R = np.random.default_rng(20)
X = R.standard_normal((2, 4, 5, 6))          # N, C, H, W
W = R.standard_normal((6, 2, 3, 2))          # groups=2 with X
DY_CONV = R.standard_normal((2, 6, 3, 5))    # conv2d(X, W, groups=2)
DY_POOL = R.standard_normal((2, 4, 2, 3))    # max_pool2d(X, 2)
DY_PAD = R.standard_normal((2, 4, 7, 8))     # pad(X, 1)
G = R.standard_normal(4)
B = R.standard_normal(4)
RM = R.standard_normal(4)
RV = R.random(4) + 0.5
F32 = np.float32
NOT_AN_ARGUMENT_ERROR = (IndexError, TypeError, KeyError, AssertionError, ArithmeticError)


def _word(name: str) -> str:
    """Regex for ``name`` as a whole word (letters, digits and _ do not continue it)."""
    return rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"


def _number(value: int) -> str:
    """Regex for an integer standing alone (not part of 13, 1.5 or -1)."""
    return rf"(?<![\d.\-]){value}(?![\d.])"



def _raises(call: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as info:
        call()
    assert not isinstance(info.value, NOT_AN_ARGUMENT_ERROR), repr(info.value)
    return str(info.value)


# --------------------------------------------------------------------------- error messages

# id -> (call, names the message must contain as whole words, other regexes it must match)
INT = np.int64
ERRORS: dict[str, tuple[Callable[[Any], Any], tuple[str, ...], tuple[str, ...]]] = {
    # pad / pad_backward
    # (N, C, L) is valid since pad takes 1 to 3 spatial axes: 2-D and 6-D inputs are not
    "pad x 2-D": (lambda m: m.pad(X[0, 0], 1), ("x",), (re.escape("(5, 6)"),)),
    "pad x 6-D": (lambda m: m.pad(X[None, None], 1), ("x",), (re.escape("(1, 1, 2, 4, 5, 6)"),)),
    "pad x list": (lambda m: m.pad(X.tolist(), 1), ("x",), (_word("list"),)),
    "pad x int": (lambda m: m.pad(X.astype(INT), 1), ("x",), ("int64",)),
    "pad pad_width -1 top": (lambda m: m.pad(X, ((-1, 0), (0, 0))), ("pad_width",), ("-1",)),
    "pad pad_width float": (lambda m: m.pad(X, 1.5), ("pad_width",), (r"1\.5",)),
    "pad pad_width float pair": (lambda m: m.pad(X, (1.5, 0)), ("pad_width",), (r"1\.5",)),
    "pad pad_width float top": (lambda m: m.pad(X, ((1.5, 0), (0, 0))), ("pad_width",),
                                (r"1\.5",)),
    "pad pad_width float bottom": (lambda m: m.pad(X, ((0, 1.5), (0, 0))), ("pad_width",),
                                   (r"1\.5",)),
    "pad pad_width triple": (lambda m: m.pad(X, ((1, 2, 3), (0, 0))), ("pad_width",),
                             (re.escape("(1, 2, 3)"),)),
    "pad value str": (lambda m: m.pad(X, 1, value="1"), ("value",), (re.escape("'1'"),)),
    "pad reflect height": (lambda m: m.pad(X, ((0, 5), (0, 0)), "reflect"),
                           ("pad_width", "height"), (re.escape("((0, 5), (0, 0))"),)),
    "pad reflect width": (lambda m: m.pad(X, ((0, 0), (0, 6)), "reflect"),
                          ("pad_width", "width"), (re.escape("((0, 0), (0, 6))"),)),
    "pad circular width": (lambda m: m.pad(X, ((0, 0), (7, 0)), "circular"),
                           ("pad_width", "width"), (re.escape("((0, 0), (7, 0))"),)),
    "pad_backward dy 2-D": (lambda m: m.pad_backward(DY_PAD[0, 0], 1), ("dy",),
                            (re.escape("(7, 8)"),)),
    "pad_backward dy int": (lambda m: m.pad_backward(DY_PAD.astype(INT), 1), ("dy",),
                            ("int64",)),
    "pad_backward pad_width -1": (lambda m: m.pad_backward(DY_PAD, -1), ("pad_width",), ("-1",)),
    "pad_backward pad_width float": (lambda m: m.pad_backward(DY_PAD, 1.5), ("pad_width",),
                                     (r"1\.5",)),
    "pad_backward reflect width": (lambda m: m.pad_backward(DY_PAD, ((0, 0), (4, 0)), "reflect"),
                                   ("pad_width", "width"), (re.escape("((0, 0), (4, 0))"),)),
    # conv2d / conv2d_backward
    "conv2d x 3-D": (lambda m: m.conv2d(X[0], W, groups=2), ("x",), (re.escape("(4, 5, 6)"),)),
    # a 3-D w whose channel axis fits (w.shape[1] * groups == C): only the ndim is wrong
    "conv2d w 3-D": (lambda m: m.conv2d(X, W[:, :, 0], groups=2), ("w",),
                     (re.escape("(6, 2, 2)"),)),
    "conv2d w int": (lambda m: m.conv2d(X, W.astype(INT), groups=2), ("w",), ("int64",)),
    "conv2d w float32": (lambda m: m.conv2d(X, W.astype(F32), groups=2), ("w", "x"),
                         ("float32", "float64")),
    "conv2d b 2-D": (lambda m: m.conv2d(X, W, np.zeros((6, 1)), groups=2), ("b",),
                     (re.escape("(6, 1)"),)),
    "conv2d b int": (lambda m: m.conv2d(X, W, np.zeros(6, INT), groups=2), ("b",), ("int64",)),
    "conv2d b length": (lambda m: m.conv2d(X, W, np.zeros(4), groups=2), ("b",),
                        (re.escape("(4,)"),)),
    "conv2d b float32": (lambda m: m.conv2d(X, W, np.zeros(6, F32), groups=2), ("b", "x"),
                         ("float32", "float64")),
    "conv2d stride float": (lambda m: m.conv2d(X, W, stride=1.5, groups=2), ("stride",),
                            (r"1\.5",)),
    "conv2d stride triple": (lambda m: m.conv2d(X, W, stride=(1, 1, 1), groups=2), ("stride",),
                             (re.escape("(1, 1, 1)"),)),
    "conv2d stride float width": (lambda m: m.conv2d(X, W, stride=(1, 1.5), groups=2),
                                  ("stride",), (r"1\.5",)),
    "conv2d stride bool": (lambda m: m.conv2d(X, W, stride=True, groups=2), ("stride",),
                           ("True",)),
    "conv2d dilation 0": (lambda m: m.conv2d(X, W, dilation=0, groups=2), ("dilation",), ("0",)),
    "conv2d dilation float": (lambda m: m.conv2d(X, W, dilation=(1.5, 1), groups=2),
                              ("dilation",), (r"1\.5",)),
    "conv2d padding -1": (lambda m: m.conv2d(X, W, padding=(0, -1), groups=2), ("padding",),
                          ("-1",)),
    "conv2d padding float": (lambda m: m.conv2d(X, W, padding=0.5, groups=2), ("padding",),
                             (r"0\.5",)),
    "conv2d padding full": (lambda m: m.conv2d(X, W, padding="full", groups=2), ("padding",),
                            ("full",)),
    "conv2d groups float": (lambda m: m.conv2d(X, W, groups=2.0), ("groups",), (r"2\.0",)),
    "conv2d groups bool": (lambda m: m.conv2d(X, W[:, :1].repeat(4, 1), groups=True),
                           ("groups",), ("True",)),
    "conv2d groups 0": (lambda m: m.conv2d(X, W, groups=0), ("groups",), (_number(0),)),
    "conv2d groups -2": (lambda m: m.conv2d(X, W, groups=-2), ("groups",), ("-2",)),
    "conv2d groups not dividing Co": (lambda m: m.conv2d(X, W[:3], groups=2), ("groups",),
                                      (_number(3),)),
    "conv2d empty kernel": (lambda m: m.conv2d(X, np.zeros((2, 4, 0, 2))), ("w",),
                            (re.escape("(2, 4, 0, 2)"),)),
    "conv2d_backward dy 3-D": (lambda m: m.conv2d_backward(DY_CONV[0], X, W, groups=2), ("dy",),
                               (re.escape("(6, 3, 5)"),)),
    "conv2d_backward dy int": (lambda m: m.conv2d_backward(DY_CONV.astype(INT), X, W, groups=2),
                               ("dy",), ("int64",)),
    "conv2d_backward dy float32": (
        lambda m: m.conv2d_backward(DY_CONV.astype(F32), X, W, groups=2), ("dy", "x"),
        ("float32", "float64")),
    "conv2d_backward dy shape": (lambda m: m.conv2d_backward(DY_CONV[:, :, :2], X, W, groups=2),
                                 ("dy",), (re.escape("(2, 6, 2, 5)"),)),
    "conv2d_backward x 3-D": (lambda m: m.conv2d_backward(DY_CONV, X[0], W, groups=2), ("x",),
                              (re.escape("(4, 5, 6)"),)),
    "conv2d_backward x int": (lambda m: m.conv2d_backward(DY_CONV, X.astype(INT), W, groups=2),
                              ("x",), ("int64",)),
    "conv2d_backward w 3-D": (lambda m: m.conv2d_backward(DY_CONV, X, W[:, :, 0], groups=2),
                              ("w",), (re.escape("(6, 2, 2)"),)),
    "conv2d_backward w float32": (
        lambda m: m.conv2d_backward(DY_CONV, X, W.astype(F32), groups=2), ("w", "x"),
        ("float32", "float64")),
    # max_pool2d / max_pool2d_backward
    "max_pool2d x 3-D": (lambda m: m.max_pool2d(X[0], 2), ("x",), (re.escape("(4, 5, 6)"),)),
    "max_pool2d x int": (lambda m: m.max_pool2d(X.astype(INT), 2), ("x",), ("int64",)),
    "max_pool2d kernel_size float": (lambda m: m.max_pool2d(X, 1.5), ("kernel_size",),
                                     (r"1\.5",)),
    "max_pool2d kernel_size 0": (lambda m: m.max_pool2d(X, (2, 0)), ("kernel_size",),
                                 (re.escape("(2, 0)"),)),
    "max_pool2d stride float": (lambda m: m.max_pool2d(X, 2, 1.5), ("stride",), (r"1\.5",)),
    "max_pool2d dilation float": (lambda m: m.max_pool2d(X, 2, dilation=1.5), ("dilation",),
                                  (r"1\.5",)),
    "max_pool2d dilation 0": (lambda m: m.max_pool2d(X, 2, dilation=(1, 0)), ("dilation",),
                              (re.escape("(1, 0)"),)),
    "max_pool2d padding same": (lambda m: m.max_pool2d(X, 2, padding="same"), ("padding",),
                                ("same",)),
    "max_pool2d padding float": (lambda m: m.max_pool2d(X, 2, padding=0.5), ("padding",),
                                 (r"0\.5",)),
    # the limit is kernel // 2 = 2 for a kernel of 5 (not 2.5, not 5 // 3 = 1)
    "max_pool2d padding above half": (lambda m: m.max_pool2d(X, 5, padding=3),
                                      ("padding", "kernel_size"), (_number(2), _number(3))),
    "max_pool2d ceil_mode int": (lambda m: m.max_pool2d(X, 2, ceil_mode=1), ("ceil_mode",),
                                 (_number(1),)),
    "max_pool2d return_indices int": (lambda m: m.max_pool2d(X, 2, return_indices=1),
                                      ("return_indices",), (_number(1),)),
    "max_pool2d_backward dy 3-D": (lambda m: m.max_pool2d_backward(DY_POOL[0], X, 2), ("dy",),
                                   (re.escape("(4, 2, 3)"),)),
    "max_pool2d_backward dy int": (lambda m: m.max_pool2d_backward(DY_POOL.astype(INT), X, 2),
                                   ("dy",), ("int64",)),
    "max_pool2d_backward dy float32": (
        lambda m: m.max_pool2d_backward(DY_POOL.astype(F32), X, 2), ("dy", "x"),
        ("float32", "float64")),
    "max_pool2d_backward dy shape": (lambda m: m.max_pool2d_backward(DY_POOL[:, :3], X, 2),
                                     ("dy",), (re.escape("(2, 3, 2, 3)"),)),
    "max_pool2d_backward x 3-D": (lambda m: m.max_pool2d_backward(DY_POOL, X[0], 2), ("x",),
                                  (re.escape("(4, 5, 6)"),)),
    # batch_norm / batch_norm_backward
    # (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W) are valid: 1-D and 6-D x are not
    "batch_norm x 1-D": (lambda m: m.batch_norm(X[0, 0, 0], G, B), ("x",), (re.escape("(6,)"),)),
    "batch_norm x 6-D": (lambda m: m.batch_norm(X[None, None], G, B), ("x",),
                         (re.escape("(1, 1, 2, 4, 5, 6)"),)),
    "batch_norm x list": (lambda m: m.batch_norm(X.tolist(), G, B), ("x",), (_word("list"),)),
    "batch_norm gamma 2-D": (lambda m: m.batch_norm(X, G[:, None], B), ("gamma",),
                             (re.escape("(4, 1)"),)),
    "batch_norm gamma float32": (lambda m: m.batch_norm(X, G.astype(F32), B), ("gamma", "x"),
                                 ("float32", "float64")),
    "batch_norm beta length": (lambda m: m.batch_norm(X, G, B[:3]), ("beta",),
                               (re.escape("(3,)"),)),
    "batch_norm beta int": (lambda m: m.batch_norm(X, G, B.astype(INT)), ("beta",), ("int64",)),
    "batch_norm running_mean length": (lambda m: m.batch_norm(X, G, B, RM[:3], RV),
                                       ("running_mean",), (re.escape("(3,)"),)),
    "batch_norm running_var length": (lambda m: m.batch_norm(X, G, B, RM, RV[:3]),
                                      ("running_var",), (re.escape("(3,)"),)),
    "batch_norm momentum bool": (lambda m: m.batch_norm(X, G, B, momentum=True), ("momentum",),
                                 ("True",)),
    "batch_norm momentum above 1": (lambda m: m.batch_norm(X, G, B, momentum=1.5),
                                    ("momentum",), (r"1\.5",)),
    "batch_norm eps negative": (lambda m: m.batch_norm(X, G, B, eps=-0.5), ("eps",),
                                (r"-0\.5",)),
    "batch_norm training str": (lambda m: m.batch_norm(X, G, B, RM, RV, training="no"),
                                ("training",), ("no",)),
    "batch_norm eval without statistics": (
        lambda m: m.batch_norm(X, G, B, training=False), ("training", "running_mean"),
        (r"\bFalse\b",)),
    # which of the pair is missing: the given one is not reported as None
    "batch_norm only running_mean": (lambda m: m.batch_norm(X, G, B, running_mean=RM),
                                     ("running_mean", "running_var"), (r"running_var=None",)),
    "batch_norm only running_var": (lambda m: m.batch_norm(X, G, B, running_var=RV),
                                    ("running_mean", "running_var"), (r"running_mean=None",)),
    "batch_norm_backward dy 3-D": (lambda m: m.batch_norm_backward(X[0], X, G), ("dy",),
                                   (re.escape("(4, 5, 6)"),)),
    "batch_norm_backward dy int": (lambda m: m.batch_norm_backward(X.astype(INT), X, G),
                                   ("dy",), ("int64",)),
    "batch_norm_backward dy float32": (lambda m: m.batch_norm_backward(X.astype(F32), X, G),
                                       ("dy", "x"), ("float32", "float64")),
    "batch_norm_backward dy shape": (lambda m: m.batch_norm_backward(X[:1], X, G), ("dy",),
                                     (re.escape("(1, 4, 5, 6)"),)),
    "batch_norm_backward x 6-D": (lambda m: m.batch_norm_backward(X, X[None, None], G), ("x",),
                                  (re.escape("(1, 1, 2, 4, 5, 6)"),)),
    "batch_norm_backward gamma length": (lambda m: m.batch_norm_backward(X, X, G[:3]),
                                         ("gamma",), (re.escape("(3,)"),)),
    "batch_norm_backward running_mean length": (
        lambda m: m.batch_norm_backward(X, X, G, running_mean=RM[:3], running_var=RV),
        ("running_mean",), (re.escape("(3,)"),)),
    "batch_norm_backward running_var length": (
        lambda m: m.batch_norm_backward(X, X, G, running_mean=RM, running_var=RV[:3]),
        ("running_var",), (re.escape("(3,)"),)),
    "batch_norm_backward eps negative": (lambda m: m.batch_norm_backward(X, X, G, eps=-0.5),
                                         ("eps",), (r"-0\.5",)),
}


# The same rules at spatial rank 1 (N, C, L) and 3 (N, C, D, H, W): the wrong ndim names x and
# its layout; a spatial argument needs exactly one entry per spatial axis, and at rank 1 a bare
# (before, after) pair is two entries for one axis.
X1 = R.standard_normal((2, 4, 7))
W1 = R.standard_normal((6, 2, 3))
X3 = R.standard_normal((2, 4, 4, 5, 3))
W3 = R.standard_normal((6, 2, 2, 3, 2))
ERRORS.update({
    "conv1d x 4-D": (lambda m: m.conv1d(X, W1, groups=2), ("x",),
                     (re.escape("(N, C, L)"), re.escape("(2, 4, 5, 6)"))),
    "conv1d w 4-D": (lambda m: m.conv1d(X1, W, groups=2), ("w",), (re.escape("(6, 2, 3, 2)"),)),
    "conv1d stride pair": (lambda m: m.conv1d(X1, W1, stride=(1, 2), groups=2), ("stride",),
                           (re.escape("(1, 2)"),)),
    "conv1d stride bool": (lambda m: m.conv1d(X1, W1, stride=(True,), groups=2), ("stride",),
                           ("True",)),
    "conv1d padding bare pair": (lambda m: m.conv1d(X1, W1, padding=(1, 0), groups=2),
                                 ("padding",), (re.escape("(1, 0)"),)),
    "conv1d padding float before": (lambda m: m.conv1d(X1, W1, padding=((0.5, 0),), groups=2),
                                    ("padding",), (r"0\.5",)),
    "conv1d_backward dy 4-D": (
        lambda m: m.conv1d_backward(np.zeros((2, 6, 5, 1)), X1, W1, groups=2), ("dy",),
        (re.escape("(2, 6, 5, 1)"),)),
    "conv1d_backward dy shape": (lambda m: m.conv1d_backward(np.zeros((2, 6, 4)), X1, W1,
                                                             groups=2),
                                 ("dy",), (re.escape("(2, 6, 4)"), re.escape("(2, 6, 5)"))),
    "conv3d x 4-D": (lambda m: m.conv3d(X, W3, groups=2), ("x",),
                     (re.escape("(N, C, D, H, W)"), re.escape("(2, 4, 5, 6)"))),
    "conv3d w 4-D": (lambda m: m.conv3d(X3, W, groups=2), ("w",), (re.escape("(6, 2, 3, 2)"),)),
    "conv3d dilation pair": (lambda m: m.conv3d(X3, W3, dilation=(1, 2), groups=2),
                             ("dilation",), (re.escape("(1, 2)"),)),
    "conv3d padding four entries": (lambda m: m.conv3d(X3, W3, padding=(0, 0, 0, 0), groups=2),
                                    ("padding",), (re.escape("(0, 0, 0, 0)"),)),
    "conv3d padding triple entry": (lambda m: m.conv3d(X3, W3, padding=(0, (1, 1, 1), 0),
                                                       groups=2),
                                    ("padding",), (re.escape("(1, 1, 1)"),)),
    "conv3d padding -1 width": (lambda m: m.conv3d(X3, W3, padding=(0, 0, (0, -1)), groups=2),
                                ("padding",), ("-1",)),
    "conv3d_backward dy shape": (
        lambda m: m.conv3d_backward(np.zeros((2, 6, 3, 3, 3)), X3, W3, groups=2), ("dy",),
        (re.escape("(2, 6, 3, 3, 3)"), re.escape("(2, 6, 3, 3, 2)"))),
    "max_pool1d x 4-D": (lambda m: m.max_pool1d(X, 2), ("x",),
                         (re.escape("(N, C, L)"), re.escape("(2, 4, 5, 6)"))),
    "max_pool1d kernel_size pair": (lambda m: m.max_pool1d(X1, (2, 2)), ("kernel_size",),
                                    (re.escape("(2, 2)"),)),
    "max_pool1d padding above half": (lambda m: m.max_pool1d(X1, 5, padding=((0, 3),)),
                                      ("padding", "kernel_size"), (_number(2), _number(3))),
    "max_pool1d ceil_mode int": (lambda m: m.max_pool1d(X1, 2, ceil_mode=0), ("ceil_mode",),
                                 (_number(0),)),
    "max_pool1d_backward dy shape": (lambda m: m.max_pool1d_backward(np.zeros((2, 4, 4)), X1, 2),
                                     ("dy",), (re.escape("(2, 4, 4)"), re.escape("(2, 4, 3)"))),
    "max_pool3d x 4-D": (lambda m: m.max_pool3d(X, 2), ("x",),
                         (re.escape("(N, C, D, H, W)"), re.escape("(2, 4, 5, 6)"))),
    "max_pool3d stride pair": (lambda m: m.max_pool3d(X3, 2, (1, 1)), ("stride",),
                               (re.escape("(1, 1)"),)),
    "max_pool3d dilation 0 depth": (lambda m: m.max_pool3d(X3, 2, dilation=(0, 1, 1)),
                                    ("dilation",), (re.escape("(0, 1, 1)"),)),
    "max_pool3d_backward x 4-D": (lambda m: m.max_pool3d_backward(np.zeros((2, 4, 2, 2, 1)), X,
                                                                  2),
                                  ("x",), (re.escape("(2, 4, 5, 6)"),)),
    "pad x 1-D bare pair": (lambda m: m.pad(X1, (1, 2)), ("pad_width",), (re.escape("(1, 2)"),)),
    "pad x 3-D two entries": (lambda m: m.pad(X3, (1, 2)), ("pad_width",),
                              (re.escape("(1, 2)"),)),
    "pad reflect depth": (lambda m: m.pad(X3, ((0, 4), 0, 0), "reflect"), ("pad_width", "depth"),
                          (re.escape("((0, 4), 0, 0)"), _number(4))),
    "pad circular length": (lambda m: m.pad(X1, ((8, 0),), "circular"), ("pad_width", "length"),
                            (re.escape("((8, 0),)"), _number(7))),
    "pad_backward reflect length": (lambda m: m.pad_backward(X1, ((0, 4),), "reflect"),
                                    ("pad_width", "length"), (re.escape("((0, 4),)"),)),
    "batch_norm (N, C) one sample": (lambda m: m.batch_norm(X[:1, :, 0, 0], G, B), ("x",),
                                     (re.escape("(1, 4)"),)),
    "batch_norm (N, C, L) gamma length": (lambda m: m.batch_norm(X1, G[:3], B), ("gamma",),
                                          (re.escape("(3,)"),)),
    "batch_norm_backward 3-D dy shape": (lambda m: m.batch_norm_backward(X3[:1], X3, G), ("dy",),
                                         (re.escape("(1, 4, 4, 5, 3)"),)),
    # layer_norm / layer_norm_backward: x of any ndim >= 1, normalized_shape its trailing shape
    "layer_norm normalized_shape not trailing": (
        lambda m: m.layer_norm(X, (4, 5)), ("normalized_shape", "x"),
        (re.escape("(4, 5)"), re.escape("(2, 4, 5, 6)"))),
    "layer_norm normalized_shape longer than x": (
        lambda m: m.layer_norm(X1, (1, 2, 4, 7)), ("normalized_shape",),
        (re.escape("(1, 2, 4, 7)"),)),
    "layer_norm normalized_shape empty": (lambda m: m.layer_norm(X, ()), ("normalized_shape",),
                                          (re.escape("()"),)),
    "layer_norm normalized_shape float": (lambda m: m.layer_norm(X, 6.0), ("normalized_shape",),
                                          (r"6\.0",)),
    "layer_norm normalized_shape bool": (lambda m: m.layer_norm(X, True), ("normalized_shape",),
                                         ("True",)),
    "layer_norm x 0-D": (lambda m: m.layer_norm(np.array(1.0), 1), ("x",), (re.escape("()"),)),
    "layer_norm x list": (lambda m: m.layer_norm(X.tolist(), 6), ("x",), (_word("list"),)),
    "layer_norm gamma ndim": (lambda m: m.layer_norm(X, (5, 6), G), ("gamma",),
                              (re.escape("(4,)"),)),
    "layer_norm beta length": (lambda m: m.layer_norm(X, 6, None, B), ("beta",),
                               (re.escape("(4,)"),)),
    "layer_norm gamma float32": (lambda m: m.layer_norm(X, 6, np.ones(6, F32)), ("gamma", "x"),
                                 ("float32", "float64")),
    "layer_norm eps negative": (lambda m: m.layer_norm(X, 6, eps=-0.5), ("eps",), (r"-0\.5",)),
    "layer_norm_backward dy shape": (lambda m: m.layer_norm_backward(X[:1], X, 6), ("dy",),
                                     (re.escape("(1, 4, 5, 6)"),)),
    "layer_norm_backward x int": (lambda m: m.layer_norm_backward(X, X.astype(INT), 6), ("x",),
                                  ("int64",)),
    "layer_norm_backward normalized_shape not trailing": (
        lambda m: m.layer_norm_backward(X, X, 5), ("normalized_shape",), (_number(5),)),
    "layer_norm_backward gamma length": (lambda m: m.layer_norm_backward(X, X, 6, np.ones(5)),
                                         ("gamma",), (re.escape("(5,)"),)),
    # group_norm / group_norm_backward: num_groups an int >= 1 dividing C = 4
    "group_norm num_groups not dividing C": (lambda m: m.group_norm(X, 3), ("num_groups",),
                                             (_number(3), _number(4))),
    "group_norm num_groups 0": (lambda m: m.group_norm(X, 0), ("num_groups",), (_number(0),)),
    "group_norm num_groups float": (lambda m: m.group_norm(X, 2.0), ("num_groups",),
                                    (r"2\.0",)),
    "group_norm num_groups bool": (lambda m: m.group_norm(X, True), ("num_groups",), ("True",)),
    "group_norm x 1-D": (lambda m: m.group_norm(X[0, 0, 0], 1), ("x",), (re.escape("(6,)"),)),
    "group_norm x 6-D": (lambda m: m.group_norm(X[None, None], 1), ("x",),
                         (re.escape("(1, 1, 2, 4, 5, 6)"),)),
    "group_norm gamma length": (lambda m: m.group_norm(X, 2, G[:3]), ("gamma",),
                                (re.escape("(3,)"),)),
    "group_norm beta float32": (lambda m: m.group_norm(X, 2, G, B.astype(F32)), ("beta", "x"),
                                ("float32", "float64")),
    "group_norm eps negative": (lambda m: m.group_norm(X, 2, eps=-0.5), ("eps",), (r"-0\.5",)),
    "group_norm_backward eps negative": (lambda m: m.group_norm_backward(X, X, 2, eps=-0.5),
                                         ("eps",), (r"-0\.5",)),
    "layer_norm_backward eps negative": (lambda m: m.layer_norm_backward(X, X, 6, eps=-0.5),
                                         ("eps",), (r"-0\.5",)),
    "group_norm_backward dy shape": (lambda m: m.group_norm_backward(X[:1], X, 2), ("dy",),
                                     (re.escape("(1, 4, 5, 6)"),)),
    "group_norm_backward num_groups not dividing C": (
        lambda m: m.group_norm_backward(X, X, 3), ("num_groups",), (_number(3),)),
    "group_norm_backward gamma length": (lambda m: m.group_norm_backward(X, X, 2, G[:3]),
                                         ("gamma",), (re.escape("(3,)"),)),
    # instance_norm / instance_norm_backward: batch norm's rules, per instance
    "instance_norm x 1-D": (lambda m: m.instance_norm(X[0, 0, 0]), ("x",),
                            (re.escape("(6,)"),)),
    "instance_norm gamma length": (lambda m: m.instance_norm(X, G[:3], B), ("gamma",),
                                   (re.escape("(3,)"),)),
    "instance_norm running_mean length": (lambda m: m.instance_norm(X, G, B, RM[:3], RV),
                                          ("running_mean",), (re.escape("(3,)"),)),
    "instance_norm momentum above 1": (lambda m: m.instance_norm(X, momentum=1.5),
                                       ("momentum",), (r"1\.5",)),
    "instance_norm eps negative": (lambda m: m.instance_norm(X, eps=-0.5), ("eps",),
                                   (r"-0\.5",)),
    "instance_norm training str": (lambda m: m.instance_norm(X, G, B, RM, RV, training="no"),
                                   ("training",), ("no",)),
    "instance_norm eval without statistics": (
        lambda m: m.instance_norm(X, G, B, training=False), ("training", "running_mean"),
        (r"\bFalse\b",)),
    "instance_norm only running_mean": (lambda m: m.instance_norm(X, G, B, running_mean=RM),
                                        ("running_mean", "running_var"), (r"running_var=None",)),
    "instance_norm only running_var": (lambda m: m.instance_norm(X, G, B, running_var=RV),
                                       ("running_mean", "running_var"), (r"running_mean=None",)),
    "instance_norm one value per instance": (lambda m: m.instance_norm(X[:, :, :1, :1]),
                                             ("x",), (re.escape("(2, 4, 1, 1)"),)),
    "instance_norm (N, C) in training": (lambda m: m.instance_norm(X[:, :, 0, 0]), ("x",),
                                         (re.escape("(2, 4)"),)),
    "instance_norm_backward dy shape": (lambda m: m.instance_norm_backward(X[:1], X), ("dy",),
                                        (re.escape("(1, 4, 5, 6)"),)),
    "instance_norm_backward running_var length": (
        lambda m: m.instance_norm_backward(X, X, G, running_mean=RM, running_var=RV[:3],
                                           training=False),
        ("running_var",), (re.escape("(3,)"),)),
    "instance_norm_backward eps negative": (lambda m: m.instance_norm_backward(X, X, eps=-0.5),
                                            ("eps",), (r"-0\.5",)),
    "instance_norm_backward one value per instance": (
        lambda m: m.instance_norm_backward(X3[:, :, :1, :1, :1], X3[:, :, :1, :1, :1]), ("x",),
        (re.escape("(2, 4, 1, 1, 1)"),)),
})


@pytest.mark.parametrize("what", sorted(ERRORS))
def test_error_names_the_parameter_exactly_and_the_offending_value(what, impl):
    call, names, values = ERRORS[what]
    message = _raises(lambda: call(impl))
    for name in names:
        assert re.search(_word(name), message), f"{what}: {message!r} does not name {name!r}"
    for value in values:
        assert re.search(value, message), f"{what}: {message!r} does not show /{value}/"
    if "only running_" in what:  # the one that was given must not be reported missing
        given = "running_mean" if "only running_mean" in what else "running_var"
        assert f"{given}=None" not in message, f"{what}: {message!r}"


# A kernel larger than the padded input along one axis: the message names the axis and shows
# the dilated kernel extent d * (k - 1) + 1 and the padded size H + t + b (digits chosen so that
# no other number in the message can stand in for them).
KERNEL_TOO_LARGE = {
    "conv2d height": (lambda m: m.conv2d(np.zeros((1, 1, 4, 8)), np.zeros((1, 1, 3, 1)),
                                         padding=((1, 2), (0, 0)), dilation=(4, 1)),
                      "height", 9, 7),
    "conv2d width": (lambda m: m.conv2d(np.zeros((1, 1, 8, 4)), np.zeros((1, 1, 1, 3)),
                                        padding=((0, 0), (1, 2)), dilation=(1, 4)),
                     "width", 9, 7),
    "max_pool2d height": (lambda m: m.max_pool2d(np.zeros((1, 1, 4, 8)), (3, 1),
                                                 padding=((1, 1), (0, 0)), dilation=(4, 1)),
                          "height", 9, 6),
    "max_pool2d width": (lambda m: m.max_pool2d(np.zeros((1, 1, 8, 4)), (1, 3),
                                                padding=((0, 0), (1, 1)), dilation=(1, 4)),
                         "width", 9, 6),
    "conv1d length": (lambda m: m.conv1d(np.zeros((1, 1, 4)), np.zeros((1, 1, 3)),
                                         padding=((1, 2),), dilation=4),
                      "length", 9, 7),
    "conv3d depth": (lambda m: m.conv3d(np.zeros((1, 1, 4, 8, 8)), np.zeros((1, 1, 3, 1, 1)),
                                        padding=((1, 2), 0, 0), dilation=(4, 1, 1)),
                     "depth", 9, 7),
    "max_pool1d length": (lambda m: m.max_pool1d(np.zeros((1, 1, 4)), 3, padding=1,
                                                 dilation=4),
                          "length", 9, 6),
    "max_pool3d height": (lambda m: m.max_pool3d(np.zeros((1, 1, 8, 4, 8)), (1, 3, 1),
                                                 padding=(0, 1, 0), dilation=(1, 4, 1)),
                          "height", 9, 6),
}


@pytest.mark.parametrize("what", sorted(KERNEL_TOO_LARGE))
def test_kernel_too_large_message_names_the_axis_extent_and_padded_size(what, impl):
    call, axis, extent, padded = KERNEL_TOO_LARGE[what]
    message = _raises(lambda: call(impl))
    others = {"length", "depth", "height", "width"} - {axis}
    assert re.search(_word(axis), message), message
    assert not any(re.search(_word(other), message) for other in others), message
    assert re.search(_number(extent), message), f"extent {extent} missing: {message!r}"
    assert re.search(_number(padded), message), f"padded size {padded} missing: {message!r}"


# nnref's own wording, beyond the contract (which asks for the parameter and the value): an
# output size below 1 also names the function, so a user calling several sees which one. A
# window or a cropped transposed output that does not fit, forward and backward (the backward
# names its forward), at every rank.
def _no_room(record: str, rank: int, direction: str) -> Callable[[Any], Any]:
    one, three = (1, 1, *(1,) * rank), (1, 1, *(3,) * rank)
    calls = {
        "conv": lambda m, f: f(np.zeros(one), np.zeros(three)) if direction == "forward" else
        f(np.zeros(one), np.zeros(one), np.zeros(three)),
        "conv_transpose": lambda m, f: f(np.zeros(one), np.zeros(one), padding=1)
        if direction == "forward" else f(np.zeros(one), np.zeros(one), np.zeros(one), padding=1),
        "max_pool": lambda m, f: f(np.zeros(one), 3) if direction == "forward" else
        f(np.zeros(one), np.zeros(one), 3),
        "avg_pool": lambda m, f: f(np.zeros(one), 3) if direction == "forward" else
        f(np.zeros(one), np.zeros(one), 3),
        "lp_pool": lambda m, f: f(np.zeros(one), 2, 3) if direction == "forward" else
        f(np.zeros(one), np.zeros(one), 2, 3),
    }
    return calls[record]


def _no_room_params() -> list:
    from ..ops import RECORDS

    names = ("conv", "conv_transpose", "max_pool", "avg_pool", "lp_pool")
    return [pytest.param(r, rank, direction, id=f"{r.functions(rank)[0]}-{direction}")
            for r in RECORDS if r.name in names for rank in r.ranks
            for direction in ("forward", "backward")]


@pytest.mark.parametrize(("record", "rank", "direction"), _no_room_params())
def test_nnref_names_the_function_whose_output_would_be_empty(record, rank, direction):
    import nnref

    forward, backward = record.functions(rank)
    function = getattr(nnref, forward if direction == "forward" else backward)
    message = _raises(lambda: _no_room(record.name, rank, direction)(nnref, function))
    assert re.search(_word(forward), message), f"{message!r} does not name {forward}"


def _list_params(least: int = 1, needs: str = "") -> list:
    """(case, direction, array parameter) for one sampled case of every op, rank and direction
    whose call takes at least ``least`` arrays (and the array ``needs``, if given)."""
    from ..ops import RECORDS
    from ..sampler import sample

    out = []
    for record in RECORDS:
        for rank in record.ranks:
            (case, seed), = sample(record, 1, 7, rank=rank)
            for direction in ("forward", "backward"):
                arrays = case.arrays(np.float64, seed)
                names = [k for k, v in case.call_args(direction, arrays).items()
                         if isinstance(v, np.ndarray)]
                if len(names) < least or (needs and needs not in names):
                    continue
                out += [pytest.param(case, direction, name,
                                     id=f"{case.label}-{direction}-{name}") for name in names]
    return out


@pytest.mark.parametrize(("case", "direction", "name"), _list_params())
def test_an_array_given_as_a_list_is_refused_by_its_name(case, direction, name, impl):
    """Every array parameter of every function (in the contract's spelling: x, not X; dy, not
    DY), given a Python list where the other arguments are valid."""
    arrays = case.arrays(np.float64, 3)
    arrays[name] = arrays[name].tolist()
    message = _raises(lambda: case.call(impl, direction, arrays))
    assert re.search(_word(name), message), f"{message!r} does not name {name!r}"
    assert re.search(_word("list"), message), f"{message!r} does not say it got a list"


def test_nnref_linear_quotes_the_layout_it_expects():
    """nnref's wording: a wrong ndim quotes the layout, as the window ops' messages do."""
    import nnref

    x, w, b = np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4)
    assert _raises(lambda: nnref.linear(x, w[0], b)) == (
        "w must have 2 dimensions (out, in), got 1 (shape (3,))")
    assert _raises(lambda: nnref.linear(x, w, b[None])) == (
        "b must have 1 dimension (out,), got 2 (shape (1, 4))")
    assert _raises(lambda: nnref.linear_backward(np.zeros((2, 4)), x, w[0])) == (
        "w must have 2 dimensions (out, in), got 1 (shape (3,))")
    assert _raises(lambda: nnref.linear(x, w, b[:3])) == (
        "b must have shape (4,) (w's out-features), got (3,)")
    assert _raises(lambda: nnref.linear(x[:, :0], w[:, :0], b)) == (
        "x must not be empty, got shape (2, 0)")
    assert _raises(lambda: nnref.linear(np.ones(()), w, b)).startswith(
        "x must have at least 1 dimension (..., in), got a 0-d array")


@pytest.mark.parametrize("function", ["relu", "elu", "sigmoid"])
def test_activations_refuse_an_empty_array_and_take_a_single_value(function, impl):
    """The activations take any shape, a 0-d or one-element array included, but not an empty
    one: its forward and backward name the array (x, then dy)."""
    forward, backward = getattr(impl, function), getattr(impl, f"{function}_backward")
    for shape in ((), (1,), (1, 1, 1)):
        x = np.full(shape, 0.5)
        assert forward(x).shape == shape and backward(np.ones(shape), x).shape == shape
    empty = np.zeros((2, 0))
    for call, name in ((lambda: forward(empty), "x"),
                       (lambda: backward(empty, empty), "x"),
                       (lambda: backward(empty, np.zeros((2, 1))), "dy")):
        message = _raises(call)
        assert re.search(_word(name), message) and "empty" in message, message


def test_adaptive_max_pool_refuses_a_non_bool_return_indices_by_name(impl):
    for rank in (1, 2, 3):
        x = np.zeros((1, 1, *(2,) * rank))
        message = _raises(lambda r=rank, x=x: getattr(impl, f"adaptive_max_pool{r}d")(
            x, 1, return_indices=1))
        assert re.search(_word("return_indices"), message), message


@pytest.mark.parametrize(("case", "direction", "name"), _list_params(least=2))
def test_an_array_in_the_other_float_dtype_is_refused_by_both_names(case, direction, name,
                                                                    impl):
    """Every array parameter in float32 where the others are float64 (or, for the first, every
    other in float32): the message names the parameters involved as spelled in the signature
    (a mixed-dtype check that names ``X`` or forgets one of them fails)."""
    arrays = case.arrays(np.float64, 3)
    names = [k for k, v in case.call_args(direction, arrays).items()
             if isinstance(v, np.ndarray)]
    arrays[name] = arrays[name].astype(np.float32)
    message = _raises(lambda: case.call(impl, direction, arrays))
    assert re.search(_word(name), message), f"{message!r} does not name {name!r}"
    mentioned = [n for n in names if re.search(_word(n), message)]
    assert len(mentioned) >= 2, f"{message!r} names only {mentioned} of {names}"


def _backward_params() -> list:
    """Backwards that take x as well as dy (pad_backward's dy fixes x's shape: any is valid)."""
    return [p for p in _list_params(needs="x")
            if p.values[1] == "backward" and p.values[2] == "dy"]


@pytest.mark.parametrize(("case", "direction", "name"), _backward_params())
def test_a_dy_of_the_wrong_shape_is_refused_by_its_name(case, direction, name, impl):
    """dy one longer along its last axis: a ValueError naming dy (not DY)."""
    arrays = case.arrays(np.float64, 3)
    dy = arrays["dy"]
    arrays["dy"] = np.concatenate([dy, dy[..., :1]], axis=-1)
    message = _raises(lambda: case.call(impl, direction, arrays))
    assert re.search(_word("dy"), message), f"{message!r} does not name dy"


def _layout_params() -> list:
    """The arrays with an (N, C, *S)-like layout (three or more axes) of the functions whose
    name fixes the rank (conv1d, ...; a rank-free function takes the array without its first
    axis as a valid one of a lower rank)."""
    out = []
    for p in _list_params():
        case, direction, name = p.values
        record = case.record
        if len({record.functions(r) for r in record.ranks}) != len(record.ranks) or len(
                record.ranks) < 2:
            continue
        arrays = case.arrays(np.float64, 3)
        if np.ndim(case.call_args(direction, arrays)[name]) >= 3:
            out.append(p)
    return out


@pytest.mark.parametrize(("case", "direction", "name"), _layout_params())
def test_nnref_quotes_the_layout_of_an_array_with_too_few_axes(case, direction, name):
    """nnref's wording: an (N, C, *S) array missing its first axis is refused with the number
    of axes wanted and the layout, e.g. ``dy must have 4 dimensions (N, C, Ho, Wo), got 3``."""
    import nnref

    arrays = case.arrays(np.float64, 3)
    call = case.call_args(direction, arrays)
    arrays[name] = call[name][0]
    message = _raises(lambda: case.call(nnref, direction, arrays))
    assert re.match(rf"{re.escape(name)} must have [0-9, or]+ dimensions \([A-Za-z]", message), (
        message)


@pytest.mark.parametrize("function", ["pad", "pad_backward"])
def test_nnref_pad_quotes_the_layouts_it_takes(function):
    import nnref

    message = _raises(lambda: getattr(nnref, function)(X[0, 0], 1))
    name = "x" if function == "pad" else "dy"
    assert message == (f"{name} must have 3, 4 or 5 dimensions (N, C, L), (N, C, H, W) or "
                       "(N, C, D, H, W), got 2 (shape (5, 6))")


def _integer_valued(value: Any) -> bool:
    """An int (not a bool), or a tuple of them (one per axis), or of (before, after) pairs."""
    if isinstance(value, tuple):
        return bool(value) and all(_integer_valued(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _int_params() -> list:
    """(case, direction, parameter) for every integer-valued keyword argument (stride, padding,
    dilation, groups, output_padding, kernel_size, output_size, num_groups, ...) of one sampled
    case of every op, rank and direction."""
    import inspect

    import nnref

    from ..ops import RECORDS
    from ..sampler import sample

    out = []
    for record in RECORDS:
        for rank in record.ranks:
            (case, seed), = sample(record, 1, 11, rank=rank)
            for direction, function in zip(("forward", "backward"), record.functions(rank),
                                           strict=True):
                params = inspect.signature(getattr(nnref, function)).parameters
                call = case.call_args(direction, case.arrays(np.float64, seed))
                out += [pytest.param(case, direction, name,
                                     id=f"{case.label}-{direction}-{name}")
                        for name, value in call.items()
                        if _integer_valued(value)
                        and "float" not in str(params[name].annotation)]  # not norm_type
    return out


@pytest.mark.parametrize(("case", "direction", "name"), _int_params())
def test_a_non_integer_integer_argument_is_refused_by_its_name(case, direction, name, impl):
    """Every integer argument given 1.5 (never truncated): a ValueError naming it as spelled."""
    call = case.call_args(direction, case.arrays(np.float64, 3))
    call[name] = 1.5
    positional = [call.pop(k) for k in case.positional[direction]]
    fn = getattr(impl, case.op if direction == "forward" else case.backward_op)
    message = _raises(lambda: fn(*positional, **call))
    assert re.search(_word(name), message), f"{message!r} does not name {name!r}"


@pytest.mark.parametrize("function", ["batch_norm", "batch_norm_backward", "group_norm",
                                      "group_norm_backward", "instance_norm",
                                      "instance_norm_backward"])
def test_nnref_norms_quote_the_layouts_they_take(function):
    """nnref's wording: a 1-D x (or dy) is refused with the layouts the norm takes."""
    import nnref

    fn = getattr(nnref, function)
    x = np.ones(4)
    args = {"batch_norm": (x, None, None), "group_norm": (x, 1), "instance_norm": (x,)}
    call = args[function.removesuffix("_backward")]
    if function.endswith("_backward"):
        call = (x, *call)
    message = _raises(lambda: fn(*call))
    assert re.match(r"(x|dy) must have [0-9, or]+ dimensions \(N, C", message), message


_NNREF_WORDING = {
    # the one-axis hint and the plural follow the rank
    "conv1d pairs": (lambda m: m.conv1d(np.zeros((1, 1, 5)), np.zeros((1, 1, 2)),
                                        padding=((1, 2), (0, 0))),
                     "padding must be an int or exactly 1 entry (one per spatial axis, each p or "
                     "(before, after)), got ((1, 2), (0, 0)) (one axis padded by (b, a) is "
                     "((b, a),))"),
    "conv2d three": (lambda m: m.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)),
                                        padding=(1, 2, 3)),
                     "padding must be an int or exactly 2 entries (one per spatial axis, each p "
                     "or (before, after)), got (1, 2, 3)"),
    "adaptive2d three": (lambda m: m.adaptive_avg_pool2d(np.zeros((1, 1, 5, 5)), (1, 2, 3)),
                         "output_size must be an int or exactly 2 entries (one per spatial axis, "
                         "an int or None), got (1, 2, 3)"),
    "adaptive1d two": (lambda m: m.adaptive_avg_pool1d(np.zeros((1, 1, 5)), (1, 2)),
                       "output_size must be an int or exactly 1 entry (one per spatial axis, an "
                       "int or None), got (1, 2)"),
    "adaptive None": (lambda m: m.adaptive_avg_pool2d(np.zeros((1, 1, 5, 5)), None),
                      "output_size must be an int or one entry per spatial axis, got None"),
    # why a pair or a string is refused, per op
    "avg_pool2d pair": (lambda m: m.avg_pool2d(np.zeros((1, 1, 5, 5)), 3,
                                               padding=((1, 0), (0, 0))),
                        "padding must be an int or one int per spatial axis (avg_pool pads both "
                        "sides of an axis alike), got ((1, 0), (0, 0))"),
    "avg_pool2d same": (lambda m: m.avg_pool2d(np.zeros((1, 1, 5, 5)), 3, padding="same"),
                        "padding must be an int or one int per spatial axis, got 'same'"),
    "conv_transpose2d pair": (lambda m: m.conv_transpose2d(
        np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), padding=((1, 0), (0, 0))),
        "padding must be an int or one int per spatial axis (both sides alike), got "
        "((1, 0), (0, 0))"),
    "conv_transpose2d same": (lambda m: m.conv_transpose2d(
        np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), padding="same"),
        "padding must be an int or one int per spatial axis (both sides alike), got 'same'"),
}


@pytest.mark.parametrize("what", sorted(_NNREF_WORDING))
def test_nnref_explains_a_refused_padding_or_output_size(what):
    """nnref's wording, pinned: the number of entries a rank takes (singular at rank 1, with
    the one-axis pair hint), and why an op refuses a (before, after) pair or a string."""
    import nnref

    call, message = _NNREF_WORDING[what]
    assert _raises(lambda: call(nnref)) == message
