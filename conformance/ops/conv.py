"""Convolution (cross-correlation) at 1, 2 and 3 spatial dimensions: conv1d, conv2d, conv3d."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..cases import Case, pads_of, same_pads, spatial, values, window_count
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 20
RANKS = (1, 2, 3)


@dataclass(frozen=True)
class ConvCase(Case):
    family = "conv"
    differentiable = ("x", "w", "b")
    backward_outputs = ("dx", "dw", "db")
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x", "w", "b"), "backward": ("dy", "x", "w")}
    grad_defaults: ClassVar[dict[str, Any]] = {"b": (0.0, lambda a: (a["w"].shape[0],))}
    padding_strings: ClassVar[bool] = True
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    bias: bool = True
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.x_shape) - 2

    def params(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def resolved_pads(self) -> tuple[tuple[int, int], ...]:
        if self.padding == "valid":
            return ((0, 0),) * self.rank
        if self.padding == "same":
            s, d = spatial(self.stride, self.rank), spatial(self.dilation, self.rank)
            return tuple(same_pads(self.x_shape[2 + i], self.w_shape[2 + i], s[i], d[i])
                         for i in range(self.rank))
        return pads_of(self.padding, self.rank)

    def output_shape(self) -> tuple[int, ...]:
        p, r = self.resolved_pads(), self.rank
        s, d = spatial(self.stride, r), spatial(self.dilation, r)
        out = tuple(window_count(self.x_shape[2 + i], *p[i], self.w_shape[2 + i], s[i], d[i])
                    for i in range(r))
        return (self.x_shape[0], self.w_shape[0], *out)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        a = {"x": values(rng, self.x_shape, self.kind), "w": rng.standard_normal(self.w_shape)}
        if self.bias:
            a["b"] = rng.standard_normal(self.w_shape[0])
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], "w": a["w"], "b": a.get("b"), **self.params()}
        return {"dy": a["dy"], "x": a["x"], "w": a["w"], **self.params()}


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str = "normal",
           padding_kinds: tuple[str, ...] = ("explicit", "explicit", "explicit", "same",
                                             "valid")) -> ConvCase:
    r = draws.rank_of(d, RANKS, rank)
    n = d.integer(2, 3, "N")
    groups = d.choice([1, 1, 2, 3], "groups")
    c = groups * d.integer(1, 2 if small else 3, "C per group")
    co = groups * d.integer(1, 2 if small else 3, "Co per group")
    size = draws.sizes(d, r, small)
    _, kernel, stride, dilation = draws.windows(d, r)
    form = d.choice(padding_kinds, "padding kind")
    padding: Any = form if form != "explicit" else draws.padding_form(
        d, draws.pads(d, kernel, limit=3))
    case = ConvCase((n, c, *size), (co, c // groups, *kernel), d.boolean("bias"),
                    draws.spatial_form(d, stride, "stride"),
                    padding, draws.spatial_form(d, dilation, "dilation"), groups, kind)
    if min(case.output_shape()[2:]) < 1:
        d.reject()
    if small and np.prod(case.x_shape) > 300:
        d.reject()
    return case


def corners(case: ConvCase) -> list[str]:
    r = case.rank
    out = draws.window_corners(case.x_shape, case.w_shape[2:], spatial(case.stride, r),
                               spatial(case.dilation, r), case.resolved_pads())
    if case.groups > 1:
        out.append("groups > 1")
    if isinstance(case.padding, str):
        out.append(f"padding {case.padding!r}")
    return out


CORNERS = ("stride 1, kernel > 1, dilation 1", "stride > kernel extent",
           "overlapping strided windows", "dilation > 1", "pad = kernel // 2",
           "window starts in padding", "asymmetric padding", "non-square input",
           "an axis of size 1", "N, C > 1", "groups > 1", "padding 'same'", "padding 'valid'",
           "rank 1", "rank 2", "rank 3")


# --------------------------------------------------------------------------------------------
# error model (tolerance.py): a sum of n terms errs by at most gamma(n) * sum |terms|


def _channel_shape(case: ConvCase, per_channel: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C, 1, ..., 1): broadcast over the batch and every spatial axis."""
    return per_channel.reshape(1, -1, *(1,) * case.rank)


def forward_bounds(case: ConvCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    x, w, b = abs64(a["x"]), abs64(a["w"]), abs64(a.get("b"))
    n_terms = w[0].size + 1  # C/G * prod(k) products, plus the bias
    # Each output sums products x * w[o] over one window: sum |terms| <= max|x| * ||w[o]||_1.
    per_out_channel = x.max(initial=0.0) * w.reshape(w.shape[0], -1).sum(axis=1)
    if case.bias:
        per_out_channel = per_out_channel + b
    return {"y": _channel_shape(case, gamma(n_terms, dtype) * per_out_channel)}


def backward_bounds(case: ConvCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    x, w, dy = abs64(a["x"]), abs64(a["w"]), abs64(a["dy"])
    n_out, c_group = w.shape[:2]
    taps = int(np.prod(w.shape[2:]))
    groups = case.groups
    # dx[c] sums dy[o] * w[o, c] over the Co/G output channels of its group and the taps (each
    # (o, tap) pair meets a given input cell in at most one window).
    w_in = w.reshape(groups, n_out // groups, c_group, taps).sum(axis=(1, 3)).reshape(-1)
    dx = gamma(n_out // groups * taps, dtype) * dy.max(initial=0.0) * w_in
    # dw[o] and db[o] sum over N * prod(So) output positions.
    positions = dy.size // dy.shape[1]
    dy_sum = dy.sum(axis=tuple(i for i in range(dy.ndim) if i != 1))
    dw = gamma(positions, dtype) * x.max(initial=0.0) * dy_sum
    db = gamma(positions, dtype) * dy_sum
    return {"dx": _channel_shape(case, dx),
            "dw": dw.reshape(-1, *(1,) * (w.ndim - 1)), "db": db}


def fd_step(case: ConvCase, name: str, value: np.ndarray) -> np.ndarray:
    # Linear in each input: any h gives the exact derivative; h = 1 keeps rounding small.
    return np.ones(value.shape)


# --------------------------------------------------------------------------------------------
# stored cases


FIXTURES: tuple[tuple[str, ConvCase], ...] = (
    ("conv2d-basic-bias", ConvCase((2, 3, 5, 6), (4, 3, 3, 3))),
    ("conv2d-no-bias-pad1", ConvCase((2, 3, 5, 6), (4, 3, 3, 3), bias=False, padding=1)),
    ("conv2d-stride2-pad1", ConvCase((2, 2, 6, 7), (3, 2, 3, 3), stride=2, padding=1)),
    ("conv2d-stride-pair-pad-pair",
     ConvCase((2, 2, 5, 7), (3, 2, 2, 3), stride=(1, 2), padding=(1, 0))),
    ("conv2d-asymmetric-padding",
     ConvCase((2, 2, 5, 6), (3, 2, 3, 2), padding=((1, 0), (2, 1)))),
    ("conv2d-same-stride1", ConvCase((2, 2, 5, 6), (3, 2, 3, 3), padding="same")),
    ("conv2d-same-even-kernel", ConvCase((2, 2, 5, 6), (2, 2, 2, 4), padding="same")),
    ("conv2d-same-stride2", ConvCase((1, 2, 5, 6), (3, 2, 3, 3), stride=2, padding="same")),
    ("conv2d-same-dilation2",
     ConvCase((2, 2, 6, 5), (2, 2, 3, 2), padding="same", dilation=2)),
    ("conv2d-valid", ConvCase((2, 3, 5, 4), (2, 3, 2, 3), padding="valid")),
    ("conv2d-dilation2-pad2", ConvCase((2, 2, 7, 6), (3, 2, 3, 3), padding=2, dilation=2)),
    ("conv2d-dilation-pair-stride2",
     ConvCase((2, 2, 7, 8), (2, 2, 3, 3), stride=2, padding=1, dilation=(2, 1))),
    ("conv2d-groups2", ConvCase((2, 4, 5, 5), (6, 2, 3, 3), groups=2)),
    ("conv2d-depthwise", ConvCase((2, 3, 5, 6), (3, 1, 3, 3), padding=1, groups=3)),
    ("conv2d-groups2-dilation2-stride2-same",
     ConvCase((1, 4, 7, 6), (4, 2, 2, 3), stride=2, padding="same", dilation=2, groups=2)),
    ("conv2d-1x1-stride2", ConvCase((2, 3, 5, 6), (2, 3, 1, 1), stride=2)),
    ("conv2d-kernel-equals-input", ConvCase((2, 2, 3, 4), (2, 2, 3, 4))),
    # 1-D and 3-D: the same rules along every axis (asymmetric pads, stride > kernel, groups)
    ("conv1d-stride2-asymmetric-padding",
     ConvCase((2, 3, 9), (4, 3, 3), stride=2, padding=((2, 1),))),
    ("conv1d-groups3-dilation2-same", ConvCase((2, 3, 8), (3, 1, 2), padding="same",
                                               dilation=2, groups=3)),
    ("conv1d-stride-above-kernel", ConvCase((2, 2, 11), (3, 2, 2), stride=3, padding=1)),
    ("conv3d-stride-1x2x1-pad-mixed",
     ConvCase((2, 2, 3, 4, 5), (3, 2, 2, 3, 2), stride=(1, 2, 1), padding=(1, (0, 1), 0))),
    ("conv3d-groups2-dilation-same",
     ConvCase((1, 4, 4, 3, 5), (2, 2, 2, 2, 3), padding="same", dilation=(1, 2, 1), groups=2)),
)


X34 = [[[[1.0, 2, 0, 3], [4, 1, 5, 2], [0, 3, 1, 4]]]]  # (1, 1, 3, 4)

HAND_CASES: tuple[HandCase, ...] = (
    # Two output channels, stride (1, 2), bias [0.5, -1], x (1, 1, 3, 4):
    #   w0 = [[1, 0], [0, -1]]: y0[i, j] = x[i, 2j] - x[i+1, 2j+1] + 0.5
    #        = [[1 - 1, 0 - 2], [4 - 3, 5 - 4]] + 0.5
    #   w1 = [[0, 1], [2, 0]]:  y1[i, j] = x[i, 2j+1] + 2 x[i+1, 2j] - 1
    #        = [[2 + 8, 3 + 10], [1 + 0, 2 + 2]] - 1
    # Backward, dy0 = e(0, 0), dy1 = 2 e(1, 1): dx = w0 placed at (0, 0) + 2 w1 placed at (1, 2);
    # dw0 = window (0, 0) of x; dw1 = 2 * window (1, 2); db = sums of dy = [1, 2].
    HandCase(
        "conv2d_two_channels_stride_1x2_bias",
        ConvCase((1, 1, 3, 4), (2, 1, 2, 2), bias=True, stride=(1, 2)),
        {"x": X34, "w": [[[[1.0, 0], [0, -1]]], [[[0.0, 1], [2, 0]]]], "b": [0.5, -1.0],
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
        "conv2d_same_stride2_odd_pad_at_end",
        ConvCase((1, 1, 3, 4), (1, 1, 2, 2), bias=False, stride=2, padding="same"),
        {"x": X34, "w": [[[[1.0, 2], [3, 4]]]], "dy": [[[[1.0, -1], [2, 0.5]]]]},
        {"y": [[[[21.0, 29], [6, 9]]]]},
        # dx: each dy value times w placed at its window, the bottom row falls in the padding.
        {"dx": [[[[1.0, 2, -1, -2], [3, 4, -3, -4], [2, 4, 0.5, 1]]]],
         # dw[p, q] = sum_ij dy[i, j] * xpad[2i + p, 2j + q]
         "dw": [[[[1 * 1 - 1 * 0 + 2 * 0 + 0.5 * 1, 1 * 2 - 1 * 3 + 2 * 3 + 0.5 * 4],
                  [1 * 4 - 1 * 5 + 0 + 0, 1 * 1 - 1 * 2 + 0 + 0]]]],
         "db": [2.5]},
    ),
    # 1-D, stride 2, padding (1, 0), w = [1, -2, 3], x = [1, 2, 0, 3, 1] (length 5):
    #   xpad = [0, 1, 2, 0, 3, 1]; Lo = floor((5 + 1 - 3) / 2) + 1 = 2
    #   y[0] = 0 - 2 + 6 = 4;  y[1] = 2 - 0 + 9 = 11
    # Backward, dy = [1, -1]: dx = w at padded 0..2 minus w at padded 2..4, padding dropped:
    #   padded [1, -2, 3 - 1, 2, -3] -> dx = [-2, 2, 2, -3, 0]
    #   dw[p] = xpad[p] - xpad[2 + p] = [0 - 2, 1 - 0, 2 - 3] = [-2, 1, -1]
    HandCase(
        "conv1d_stride2_pad_before_only",
        ConvCase((1, 1, 5), (1, 1, 3), bias=False, stride=2, padding=((1, 0),)),
        {"x": [[[1.0, 2, 0, 3, 1]]], "w": [[[1.0, -2, 3]]], "dy": [[[1.0, -1]]]},
        {"y": [[[4.0, 11]]]},
        {"dx": [[[-2.0, 2, 2, -3, 0]]], "dw": [[[-2.0, 1, -1]]], "db": [0.0]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("conv", "small", ConvCase((2, 3, 9, 9), (4, 3, 3, 3), padding=0)),
    BenchCase("conv", "medium", ConvCase((8, 16, 32, 32), (32, 16, 3, 3), padding=1)),
    BenchCase("conv", "large", ConvCase((32, 64, 56, 56), (64, 64, 3, 3), padding=1)),
    BenchCase("conv1d", "medium", ConvCase((8, 32, 256), (64, 32, 5), padding=2)),
    BenchCase("conv3d", "medium", ConvCase((4, 8, 16, 16, 16), (16, 8, 3, 3, 3), padding=1)),
)


def bench_flops(case: ConvCase, direction: str) -> float:
    """2 * prod(y.shape) * C/G * prod(k) forward (the bias not counted); the backward counts the
    dx and dw GEMMs, 2x forward (db not counted); forward+backward 3x."""
    forward = 2.0 * math.prod(case.output_shape()) * math.prod(case.w_shape[1:])
    return forward * {"fwd": 1, "bwd": 2, "fwd+bwd": 3}[direction]


def bench_peak_memory(case: ConvCase) -> float:
    """The peak-memory target of one call: one column buffer, prod(k) + 2 times x's bytes."""
    return float(math.prod(case.w_shape[2:]) + 2)


RECORD = OpRecord(
    name="conv",
    tf32_inputs=True,
    ranks=RANKS,
    case_type=ConvCase,
    functions=lambda r: (f"conv{r}d", f"conv{r}d_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
    bench_flops=bench_flops,
    bench_peak_memory=bench_peak_memory,
)
