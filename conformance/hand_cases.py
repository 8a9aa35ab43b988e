"""Readable, hand-computed cases: a small worked example per behaviour, checkable on paper.

Every case is non-square and non-symmetric on purpose (a transposed axis or a mirrored pad gives
different numbers), and the derivation is in the comment above it. The expected values are
exact in binary floating point except where a fraction is written out (compared to 1 ulp-level
float64 error bounds by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class HandCase:
    name: str
    op: str
    params: dict[str, Any]
    inputs: dict[str, Any]
    forward: dict[str, Any]
    backward: dict[str, Any] = field(default_factory=dict)

    def arrays(self, dtype: Any) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=dtype) for k, v in self.inputs.items()}

    def expected(self, direction: str) -> dict[str, np.ndarray]:
        values = self.forward if direction == "forward" else self.backward
        return {
            k: np.asarray(v, dtype=np.int64 if k == "indices" else np.float64)
            for k, v in values.items()
        }


X23 = [[[[1.0, 2, 3], [4, 5, 6]]]]  # (1, 1, 2, 3)

HAND_CASES: list[HandCase] = [
    # reflect, pad_width ((1, 0), (2, 1)): source rows [1, 0], source cols [2, 1, 0, 1, 2, 1].
    # Backward with dy[i, j] = 10 i + j: dx[0] gets dy row 1 at cols (2 | 1, 3, 5 | 0, 4)
    # = (12, 11 + 13 + 15, 10 + 14); dx[1] gets rows 0 + 2 = [20, 22, ..., 30] the same way.
    HandCase(
        "pad_reflect_asymmetric", "pad", {"pad_width": ((1, 0), (2, 1)), "mode": "reflect"},
        {"x": X23, "dy": [[[[0.0, 1, 2, 3, 4, 5], [10, 11, 12, 13, 14, 15],
                            [20, 21, 22, 23, 24, 25]]]]},
        {"y": [[[[6.0, 5, 4, 5, 6, 5], [3, 2, 1, 2, 3, 2], [6, 5, 4, 5, 6, 5]]]]},
        {"dx": [[[[12.0, 39, 24], [24, 78, 48]]]]},
    ),
    # circular ((0, 1), (1, 2)): rows [0, 1, 0], cols [2, 0, 1, 2, 0, 1].
    HandCase(
        "pad_circular_asymmetric", "pad", {"pad_width": ((0, 1), (1, 2)), "mode": "circular"},
        {"x": X23, "dy": [[[[1.0, 0, 0, 0, 2, 0], [0, 0, 0, 3, 0, 0], [0, 4, 0, 0, 0, 5]]]]},
        {"y": [[[[3.0, 1, 2, 3, 1, 2], [6, 4, 5, 6, 4, 5], [3, 1, 2, 3, 1, 2]]]]},
        # dy(0,0)->x(0,2); dy(0,4)->x(0,0); dy(1,3)->x(1,2); dy(2,1)->x(0,0); dy(2,5)->x(0,1)
        {"dx": [[[[2.0 + 4, 5, 1], [0, 0, 3]]]]},
    ),
    # replicate ((1, 1), (0, 2)): rows [0, 0, 1, 1], cols [0, 1, 2, 2, 2]; dy = ones*(row+1)
    # so dx[0] = (1 + 2) * [1, 1, 3], dx[1] = (3 + 4) * [1, 1, 3].
    HandCase(
        "pad_replicate_asymmetric", "pad", {"pad_width": ((1, 1), (0, 2)), "mode": "replicate"},
        {"x": X23, "dy": [[[[1.0] * 5, [2.0] * 5, [3.0] * 5, [4.0] * 5]]]},
        {"y": [[[[1.0, 2, 3, 3, 3], [1, 2, 3, 3, 3], [4, 5, 6, 6, 6], [4, 5, 6, 6, 6]]]]},
        {"dx": [[[[3.0, 3, 9], [7, 7, 21]]]]},
    ),
    # constant -1 with (1, 2): one row above/below, two columns each side; backward crops.
    HandCase(
        "pad_constant_value", "pad", {"pad_width": (1, 2), "mode": "constant", "value": -1.0},
        {"x": X23, "dy": [[[[float(10 * i + j) for j in range(7)] for i in range(4)]]]},
        {"y": [[[[-1.0] * 7, [-1, -1, 1, 2, 3, -1, -1], [-1, -1, 4, 5, 6, -1, -1], [-1.0] * 7]]]},
        {"dx": [[[[12.0, 13, 14], [22, 23, 24]]]]},
    ),
    # Two output channels, stride (1, 2), bias [0.5, -1], x (1, 1, 3, 4):
    #   w0 = [[1, 0], [0, -1]]: y0[i, j] = x[i, 2j] - x[i+1, 2j+1] + 0.5
    #        = [[1 - 1, 0 - 2], [4 - 3, 5 - 4]] + 0.5
    #   w1 = [[0, 1], [2, 0]]:  y1[i, j] = x[i, 2j+1] + 2 x[i+1, 2j] - 1
    #        = [[2 + 8, 3 + 10], [1 + 0, 2 + 2]] - 1
    # Backward, dy0 = e(0, 0), dy1 = 2 e(1, 1): dx = w0 placed at (0, 0) + 2 w1 placed at (1, 2);
    # dw0 = window (0, 0) of x; dw1 = 2 * window (1, 2); db = sums of dy = [1, 2].
    HandCase(
        "conv2d_two_channels_stride_1x2_bias", "conv2d",
        {"stride": (1, 2), "padding": 0, "dilation": 1, "groups": 1},
        {"x": [[[[1.0, 2, 0, 3], [4, 1, 5, 2], [0, 3, 1, 4]]]],
         "w": [[[[1.0, 0], [0, -1]]], [[[0.0, 1], [2, 0]]]], "b": [0.5, -1.0],
         "dy": [[[[1.0, 0], [0, 0]], [[0.0, 0], [0, 2]]]]},
        {"y": [[[[0.5, -1.5], [1.5, 1.5]], [[9.0, 12], [0, 3]]]]},
        {"dx": [[[[1.0, 0, 0, 0], [0, -1, 0, 2], [0, 0, 4, 0]]]],
         "dw": [[[[1.0, 2], [4, 1]]], [[[10.0, 4], [2, 8]]]], "db": [1.0, 2.0]},
    ),
    # "same" with stride 2, k = 2 on a 3x4 input: Ho = ceil(3/2) = 2 needs 1 extra row, which
    # goes at the bottom (TF/JAX placement); Wo = 2 needs none. With w = [[1, 2], [3, 4]]:
    #   y[0, 0] = 1 + 2*2 + 3*4 + 4*1 = 21    y[0, 1] = 0 + 2*3 + 3*5 + 4*2 = 29
    #   y[1, 0] = 0 + 2*3 + 0 + 0    = 6     y[1, 1] = 1 + 2*4 + 0 + 0    = 9
    # Putting the extra row on top instead would give [[4, 15], [...]]: a different answer.
    HandCase(
        "conv2d_same_stride2_odd_pad_at_end", "conv2d",
        {"stride": 2, "padding": "same", "dilation": 1, "groups": 1},
        {"x": [[[[1.0, 2, 0, 3], [4, 1, 5, 2], [0, 3, 1, 4]]]], "w": [[[[1.0, 2], [3, 4]]]],
         "dy": [[[[1.0, -1], [2, 0.5]]]]},
        {"y": [[[[21.0, 29], [6, 9]]]]},
        # dx: each dy value times w placed at its window, the bottom row falls in the padding.
        {"dx": [[[[1.0, 2, -1, -2], [3, 4, -3, -4], [2, 4, 0.5, 1]]]],
         # dw[p, q] = sum_ij dy[i, j] * xpad[2i + p, 2j + q]
         "dw": [[[[1 * 1 - 1 * 0 + 2 * 0 + 0.5 * 1, 1 * 2 - 1 * 3 + 2 * 3 + 0.5 * 4],
                  [1 * 4 - 1 * 5 + 0 + 0, 1 * 1 - 1 * 2 + 0 + 0]]]],
         "db": [2.5]},
    ),
    # kernel 2, stride 2, ceil_mode on 4x5: Wo = ceil(3/2) + 1 = 3, the last window holds only
    # column 4. Ties on purpose: window (0, 1) = [3 0; 1 3] -> first 3 at (0, 2), flat 2;
    # (1, 0) = [4 4; 1 0] -> (2, 0), flat 10; (1, 1) = [0 1; 2 2] -> (3, 2), flat 17.
    HandCase(
        "max_pool2d_ties_ceil_mode", "max_pool2d",
        {"kernel_size": 2, "stride": 2, "padding": 0, "dilation": 1, "ceil_mode": True},
        {"x": [[[[1.0, 3, 3, 0, 2], [2, 0, 1, 3, 1], [4, 4, 0, 1, 2], [1, 0, 2, 2, 0]]]],
         "dy": [[[[1.0, 2, 3], [4, 5, 6]]]]},
        {"y": [[[[3.0, 3, 2], [4, 2, 2]]]], "indices": [[[[1, 2, 4], [10, 17, 14]]]]},
        {"dx": [[[[0.0, 1, 2, 0, 3], [0, 0, 0, 0, 0], [4, 0, 0, 0, 6], [0, 0, 5, 0, 0]]]]},
    ),
    # kernel 3, stride 2, padding 1 on 3x4: windows overlap at column 1 and row 1; padded cells
    # never win. Window (0, 1) = rows 0-1, cols 1-3 = [5 2 0; 1 5 4]: the first 5, flat 1, the
    # same winner as window (0, 0), so dx[0, 1] = dy[0, 0] + dy[0, 1] = 3.
    HandCase(
        "max_pool2d_overlap_padding", "max_pool2d",
        {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1, "ceil_mode": False},
        {"x": [[[[1.0, 5, 2, 0], [3, 1, 5, 4], [0, 2, 1, 3]]]], "dy": [[[[1.0, 2], [3, 4]]]]},
        {"y": [[[[5.0, 5], [3, 5]]]], "indices": [[[[1, 1], [4, 6]]]]},
        {"dx": [[[[0.0, 3, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]]},
    ),
    # Batch norm, x (2, 2, 1, 2), eps = 0 for exact numbers, momentum 0.1, running (0, 1):
    #   channel 0 values [0, 2, 2, 8]: mean 3, var 9, xhat [-1, -1/3, -1/3, 5/3]
    #   channel 1 values [3, 1, 1, 3]: mean 2, var 1, xhat [1, -1, -1, 1]
    #   y = gamma * xhat + beta with gamma (2, 0.5), beta (1, -1)
    #   running_mean = 0.1 * (3, 2); running_var = 0.9 + 0.1 * (9, 1) * 4/3 = (2.1, 1.0333...)
    # Backward, dy channel 0 = [1, 0, 0, -1], channel 1 = [0, 1, 0, 0]:
    #   dbeta = (0, 1); dgamma = (-1 - 5/3, -1)
    #   dx0 = 2/3 * (dy + 2/3 xhat) = [2/9, -4/27, -4/27, 2/27]
    #   dx1 = 1/2 * (dy - 1/4 + xhat/4) = [0, 1/4, -1/4, 0]
    HandCase(
        "batch_norm_training_running_stats", "batch_norm",
        {"training": True, "momentum": 0.1, "eps": 0.0},
        {"x": [[[[0.0, 2]], [[3.0, 1]]], [[[2.0, 8]], [[1.0, 3]]]],
         "gamma": [2.0, 0.5], "beta": [1.0, -1.0],
         "running_mean": [0.0, 0.0], "running_var": [1.0, 1.0],
         "dy": [[[[1.0, 0]], [[0.0, 1]]], [[[0.0, -1]], [[0.0, 0]]]]},
        {"y": [[[[-1.0, 1 / 3]], [[-0.5, -1.5]]], [[[1 / 3, 13 / 3]], [[-1.5, -0.5]]]],
         "running_mean": [0.3, 0.2], "running_var": [2.1, 0.9 + 0.4 / 3]},
        {"dx": [[[[2 / 9, -4 / 27]], [[0.0, 0.25]]], [[[-4 / 27, 2 / 27]], [[-0.25, 0.0]]]],
         "dgamma": [-8 / 3, -1.0], "dbeta": [0.0, 1.0]},
    ),
    # Eval mode uses the running statistics (mean (1, -2), var (4, 0.25), eps 0):
    #   y = gamma * (x - rm) / sqrt(rv) + beta; dx = dy * gamma / sqrt(rv).
    HandCase(
        "batch_norm_eval_running_stats", "batch_norm",
        {"training": False, "momentum": 0.1, "eps": 0.0},
        {"x": [[[[3.0, -1]], [[-2.0, -1.5]]]], "gamma": [1.0, 2.0], "beta": [0.0, 1.0],
         "running_mean": [1.0, -2.0], "running_var": [4.0, 0.25],
         "dy": [[[[1.0, 2]], [[3.0, -1]]]]},
        {"y": [[[[1.0, -1]], [[1.0, 3]]]]},
        {"dx": [[[[0.5, 1]], [[12.0, -4]]]],
         "dgamma": [1 * 1 + 2 * -1, 3 * 0 + -1 * 1], "dbeta": [3.0, 2.0]},
    ),
]


def run_hand_case(case: HandCase, impl: Any, a: dict[str, np.ndarray], direction: str
                  ) -> dict[str, np.ndarray]:
    """Call ``impl`` for a hand case; outputs named as in ``HandCase.forward/backward``."""
    p = dict(case.params)
    if case.op == "pad":
        if direction == "forward":
            return {"y": impl.pad(a["x"], **p)}
        p.pop("value", None)
        return {"dx": impl.pad_backward(a["dy"], **p)}
    if case.op == "conv2d":
        if direction == "forward":
            return {"y": impl.conv2d(a["x"], a["w"], a.get("b"), **p)}
        dx, dw, db = impl.conv2d_backward(a["dy"], a["x"], a["w"], **p)
        return {"dx": dx, "dw": dw, "db": db}
    if case.op == "max_pool2d":
        if direction == "forward":
            y, idx = impl.max_pool2d(a["x"], **p, return_indices=True)
            return {"y": y, "indices": idx}
        return {"dx": impl.max_pool2d_backward(a["dy"], a["x"], **p)}
    if case.op == "batch_norm":
        running = {"running_mean": a.get("running_mean"), "running_var": a.get("running_var")}
        if direction == "forward":
            out = impl.batch_norm(a["x"], a["gamma"], a["beta"], **running, **p)
            if isinstance(out, tuple):
                return {"y": out[0], "running_mean": out[1], "running_var": out[2]}
            return {"y": out}
        extra = running if not p["training"] else {}
        dx, dgamma, dbeta = impl.batch_norm_backward(
            a["dy"], a["x"], a["gamma"], eps=p["eps"], training=p["training"], **extra)
        return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}
    raise ValueError(f"unknown op {case.op!r}")
