"""Transposed convolution at 1, 2 and 3 spatial dimensions: conv_transpose1d, 2d, 3d."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

from ..cases import Case, spatial, values
from ..invalid_category import Broken, Ctx, InvalidCategory, has
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 25
RANKS = (1, 2, 3)


@dataclass(frozen=True)
class ConvTransposeCase(Case):
    family = "conv_transpose"
    differentiable = ("x", "w", "b")
    backward_outputs = ("dx", "dw", "db")
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x", "w", "b"), "backward": ("dy", "x", "w")}
    grad_defaults: ClassVar[dict[str, Any]] = {
        "b": (0.0, lambda a: (a["w"].shape[1] * int(a["groups"]),))}
    # For the invalid-argument categories: x's C is w's axis 0, and a kernel larger than the
    # input is valid (the output grows with it).
    w_channels_axis: ClassVar[int] = 0
    output_grows_with_kernel: ClassVar[bool] = True
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]  # (C, Co / G, *k)
    bias: bool = True
    stride: Any = 1
    padding: Any = 0
    output_padding: Any = 0
    groups: int = 1
    dilation: Any = 1
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.x_shape) - 2

    @property
    def out_channels(self) -> int:
        return self.w_shape[1] * self.groups

    def params(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding,
                "output_padding": self.output_padding, "groups": self.groups,
                "dilation": self.dilation}

    def geometry(self) -> tuple[tuple[int, ...], ...]:
        """(kernel, stride, padding, output_padding, dilation), one entry per axis."""
        r = self.rank
        return (tuple(self.w_shape[2:]), spatial(self.stride, r), spatial(self.padding, r),
                spatial(self.output_padding, r), spatial(self.dilation, r))

    def output_shape(self) -> tuple[int, ...]:
        # So = (S - 1) * s - 2 * p + d * (k - 1) + output_padding + 1 (CONTRACT.md)
        k, s, p, e, d = self.geometry()
        out = tuple((self.x_shape[2 + i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + e[i] + 1
                    for i in range(self.rank))
        return (self.x_shape[0], self.out_channels, *out)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        a = {"x": values(rng, self.x_shape, self.kind), "w": rng.standard_normal(self.w_shape)}
        if self.bias:
            a["b"] = rng.standard_normal(self.out_channels)
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], "w": a["w"], "b": a.get("b"), **self.params()}
        return {"dy": a["dy"], "x": a["x"], "w": a["w"], **self.params()}


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str = "normal"
           ) -> ConvTransposeCase:
    r = draws.rank_of(d, RANKS, rank)
    n = d.integer(2, 3, "N")
    groups = d.choice([1, 1, 2, 3], "groups")
    c = groups * d.integer(1, 2 if small else 3, "C per group")
    co = groups * d.integer(1, 2 if small else 3, "Co per group")
    size = draws.sizes(d, r, small)
    _, kernel, stride, dilation = draws.windows(d, r)
    # output_padding < max(stride, dilation) per axis (torch's rule)
    if d.boolean("output_padding"):
        extra = tuple(d.integer(0, max(s, dl) - 1, f"output_padding{a}")
                      for a, (s, dl) in enumerate(zip(stride, dilation, strict=True)))
    else:
        extra = (0,) * r
    full = [(n_ - 1) * s + dl * (k - 1) + 1 + e
            for n_, k, s, dl, e in zip(size, kernel, stride, dilation, extra, strict=True)]
    # padding crops both ends: up to 3, keeping at least one output cell
    if d.boolean("padded"):
        pads = tuple(d.integer(0, min(3, (f - 1) // 2), f"pad{a}") for a, f in enumerate(full))
    else:
        pads = (0,) * r
    case = ConvTransposeCase(
        (n, c, *size), (c, co // groups, *kernel), d.boolean("bias"),
        draws.spatial_form(d, stride, "stride"), draws.spatial_form(d, pads, "padding"),
        draws.spatial_form(d, extra, "output_padding"), groups,
        draws.spatial_form(d, dilation, "dilation"), kind)
    if small and max(np.prod(case.x_shape), np.prod(case.output_shape())) > 400:
        d.reject()
    return case


def corners(case: ConvTransposeCase) -> list[str]:
    k, s, p, e, dl = case.geometry()
    n, c, *size = case.x_shape
    out = []
    if any(si == 1 and ki > 1 for ki, si in zip(k, s, strict=True)):
        out.append("stride 1, kernel > 1")
    if any(si > di * (ki - 1) + 1 for ki, si, di in zip(k, s, dl, strict=True)):
        out.append("stride > kernel extent")  # output cells no input reaches (bias only)
    if any(e):
        out.append("output_padding > 0")
    if any(p):
        out.append("padding > 0")
    if any(di > 1 for di in dl):
        out.append("dilation > 1")
    if case.groups > 1:
        out.append("groups > 1")
    if len(set(size)) > 1:
        out.append("non-square input")
    if n > 1 and c > 1:
        out.append("N, C > 1")
    if not case.bias:
        out.append("bias None")
    if 1 in size:
        out.append("an axis of size 1")
    out.append(f"rank {case.rank}")
    return out


CORNERS = ("stride 1, kernel > 1", "stride > kernel extent", "output_padding > 0",
           "padding > 0", "dilation > 1", "groups > 1", "non-square input", "N, C > 1",
           "bias None", "an axis of size 1", "rank 1", "rank 2", "rank 3")


# --------------------------------------------------------------------------------------------
# error model (tolerance.py): a sum of n terms errs by at most gamma(n) * sum |terms|


def taps_per_output(case: ConvTransposeCase) -> int:
    """Most kernel taps that meet one output cell, over all cells.

    Along one axis, output cell j (in the full output) receives x[i] * w[p] where
    j = i * s + p * d. The taps p that can reach j satisfy p * d = j (mod s): they form an
    arithmetic progression of step s / gcd(s, d), so at most ceil(k / (s / gcd(s, d))) of
    them; distinct taps read distinct input cells i, so also at most S. The product over the
    axes bounds the taps per output.
    """
    k, s, _, _, dl = case.geometry()
    size = case.x_shape[2:]
    return math.prod(min(-(-k[i] * math.gcd(s[i], dl[i]) // s[i]), size[i])
                     for i in range(case.rank))


def _channel_shape(case: ConvTransposeCase, per_channel: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C, 1, ..., 1): broadcast over the batch and every spatial axis."""
    return per_channel.reshape(1, -1, *(1,) * case.rank)


def forward_bounds(case: ConvTransposeCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    x, w, b = abs64(a["x"]), abs64(a["w"]), abs64(a.get("b"))
    g, c, co_g = case.groups, case.x_shape[1], case.w_shape[1]
    # y[o] sums x[c, i] * w[c, o, p] over the C/G channels of o's group and the taps that meet
    # it, plus the bias: C/G * taps_per_output + 1 terms. sum |terms| <= max|x| * the l1 norm
    # of w[:, o] over o's group (every (c, p) pair appears at most once).
    n_terms = c // g * taps_per_output(case) + 1
    w_l1 = w.reshape(g, c // g, co_g, -1).sum(axis=(1, 3)).reshape(-1)  # (Co,)
    per_out_channel = x.max(initial=0.0) * w_l1
    if case.bias:
        per_out_channel = per_out_channel + b
    return {"y": _channel_shape(case, gamma(n_terms, dtype) * per_out_channel)}


def backward_bounds(case: ConvTransposeCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    x, w, dy = abs64(a["x"]), abs64(a["w"]), abs64(a["dy"])
    c = case.x_shape[1]
    taps = int(np.prod(case.w_shape[2:]))
    # dx[c, i] sums w[c, o, p] * dyfull[o, i*s + p*d] over the Co/G channels of c's group and
    # every tap (a convolution of dy): Co/G * prod(k) terms, |terms| <= max|dy| * l1(w[c]).
    w_l1 = w.reshape(c, -1).sum(axis=1)
    dx = gamma(case.w_shape[1] * taps, dtype) * dy.max(initial=0.0) * w_l1
    # dw[c, o, p] sums x[n, c, i] * dyfull[n, o, ...] over N * prod(S) input positions:
    # |terms| <= max|dy| * sum |x[:, c]|.
    positions = x.size // x.shape[1]
    x_sum = x.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
    dw = gamma(positions, dtype) * dy.max(initial=0.0) * x_sum
    # db[o] sums dy[:, o] over N * prod(So) positions.
    dy_positions = dy.size // dy.shape[1]
    db = gamma(dy_positions, dtype) * dy.sum(axis=tuple(i for i in range(dy.ndim) if i != 1))
    return {"dx": _channel_shape(case, dx),
            "dw": dw.reshape(-1, *(1,) * (w.ndim - 1)), "db": db}


def fd_step(case: ConvTransposeCase, name: str, value: np.ndarray) -> np.ndarray:
    # Linear in each input: any h gives the exact derivative; h = 1 keeps rounding small.
    return np.ones(value.shape)


# --------------------------------------------------------------------------------------------
# stored cases

CT = ConvTransposeCase

FIXTURES: tuple[tuple[str, ConvTransposeCase], ...] = (
    ("conv_transpose2d-s2-k4-p1-upsample", CT((2, 3, 4, 5), (3, 2, 4, 4), stride=2, padding=1)),
    ("conv_transpose2d-s1-k3-dense", CT((2, 2, 4, 5), (2, 3, 3, 3), bias=False)),
    ("conv_transpose2d-stride-above-kernel", CT((2, 2, 3, 4), (2, 2, 2, 2), stride=(3, 4))),
    ("conv_transpose2d-output-padding",
     CT((2, 2, 3, 5), (2, 3, 3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    ("conv_transpose2d-dilation2-output-padding",
     CT((2, 2, 4, 3), (2, 2, 3, 2), stride=1, dilation=(2, 3), output_padding=(1, 2))),
    ("conv_transpose2d-groups2", CT((2, 4, 3, 4), (4, 3, 3, 3), stride=2, groups=2)),
    ("conv_transpose2d-depthwise", CT((2, 3, 4, 4), (3, 1, 3, 3), padding=1, groups=3)),
    ("conv_transpose2d-axis-of-size-1", CT((2, 2, 1, 5), (2, 2, 2, 3), stride=2)),
    ("conv_transpose1d-s2-pad1-op1",
     CT((2, 3, 7), (3, 2, 3), stride=2, padding=1, output_padding=1)),
    ("conv_transpose1d-groups3-dilation2",
     CT((2, 3, 6), (3, 2, 3), dilation=2, groups=3, bias=False)),
    ("conv_transpose3d-s2-mixed",
     CT((2, 2, 2, 3, 4), (2, 2, 2, 3, 2), stride=(2, 1, 3), padding=(0, 1, 1),
        output_padding=(1, 0, 2))),
    ("conv_transpose3d-groups2-dilation",
     CT((1, 4, 3, 2, 3), (4, 1, 2, 2, 2), groups=2, dilation=(1, 2, 1))),
)


HAND_CASES: tuple[HandCase, ...] = (
    # Stride 2 = kernel 2 on a 2x2 input: the windows do not overlap, so every input cell places
    # a copy of w scaled by itself in its own 2x2 block: y = kron(x, w), 4x4.
    #   x = [[1, 2], [3, -1]], w = [[1, 2], [0, -1]]
    #   y = [[1, 2, 2, 4], [0, -1, 0, -2], [3, 6, -1, -2], [0, -3, 0, 1]]
    # Backward: dx[i, j] = <block (i, j) of dy, w>; dw = sum_ij x[i, j] * block (i, j) of dy;
    # db = sum dy. With dy = [[1, 0, 0, 1], [0, 0, 2, 0], [0, 1, 0, 0], [-1, 0, 0, 0]]:
    #   blocks [[1, 0], [0, 0]], [[0, 1], [2, 0]], [[0, 1], [-1, 0]], [[0, 0], [0, 0]]
    #   dx = [[1 * 1, 2 * 1 + 0 * 2], [2 * 1 + 0 * (-1), 0]] = [[1, 2], [2, 0]]
    #   dw = 1 * [[1, 0], [0, 0]] + 2 * [[0, 1], [2, 0]] + 3 * [[0, 1], [-1, 0]] = [[1, 5], [1, 0]]
    #   db = 1 + 1 + 2 + 1 - 1 = 4
    HandCase(
        "conv_transpose2d_stride2_block_placement",
        CT((1, 1, 2, 2), (1, 1, 2, 2), bias=False, stride=2),
        {"x": [[[[1.0, 2], [3, -1]]]], "w": [[[[1.0, 2], [0, -1]]]],
         "dy": [[[[1.0, 0, 0, 1], [0, 0, 2, 0], [0, 1, 0, 0], [-1, 0, 0, 0]]]]},
        {"y": [[[[1.0, 2, 2, 4], [0, -1, 0, -2], [3, 6, -1, -2], [0, -3, 0, 1]]]]},
        {"dx": [[[[1.0, 2], [2, 0]]]], "dw": [[[[1.0, 5], [1, 0]]]], "db": [4.0]},
    ),
    # Padding removes a border: x = [1, 2, 3], w = [1, -1, 2], stride 1, padding 1, b = 0.5.
    #   full: yfull[j] = sum_i x[i] w[j - i] = [1, -1 + 2, 2 - 2 + 3, 4 - 3, 6] = [1, 1, 3, 1, 6]
    #   Lo = (3 - 1) * 1 - 2 * 1 + 1 * (3 - 1) + 0 + 1 = 3: crop one cell at each end, add b
    #   y = [1, 3, 1] + 0.5 = [1.5, 3.5, 1.5]
    # Backward, dy = [1, -1, 2]: dyfull = [0, 1, -1, 2, 0] (the cropped cells get no gradient)
    #   dx[i] = sum_p w[p] dyfull[i + p] = [0 - 1 - 2, 1 + 1 + 4, -1 - 2 + 0] = [-3, 6, -3]
    #   dw[p] = sum_i x[i] dyfull[i + p] = [0 + 2 - 3, 1 - 2 + 6, -1 + 4 + 0] = [-1, 5, 3]
    #   db = 1 - 1 + 2 = 2
    HandCase(
        "conv_transpose1d_padding_crops_border",
        CT((1, 1, 3), (1, 1, 3), bias=True, padding=1),
        {"x": [[[1.0, 2, 3]]], "w": [[[1.0, -1, 2]]], "b": [0.5], "dy": [[[1.0, -1, 2]]]},
        {"y": [[[1.5, 3.5, 1.5]]]},
        {"dx": [[[-3.0, 6, -3]]], "dw": [[[-1.0, 5, 3]]], "db": [2.0]},
    ),
    # output_padding adds a cell no input reaches: x = [1, 2], w = [1, 1], stride 2,
    # output_padding 1, b = -1. Lo = (2 - 1) * 2 + 1 + 1 + 1 = 5, yfull = [1, 1, 2, 2, 0]:
    #   y = [0, 0, 1, 1, -1] (the last cell is the bias alone)
    # Backward, dy = [1, 2, 3, 4, 5]: dx[i] = dy[2i] + dy[2i + 1] = [3, 7];
    #   dw[p] = sum_i x[i] dy[2i + p] = [1 + 2 * 3, 2 + 2 * 4] = [7, 10]; db = 15
    HandCase(
        "conv_transpose1d_output_padding_holds_bias",
        CT((1, 1, 2), (1, 1, 2), bias=True, stride=2, output_padding=1),
        {"x": [[[1.0, 2]]], "w": [[[1.0, 1]]], "b": [-1.0], "dy": [[[1.0, 2, 3, 4, 5]]]},
        {"y": [[[0.0, 0, 1, 1, -1]]]},
        {"dx": [[[3.0, 7]]], "dw": [[[7.0, 10]]], "db": [15.0]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("conv_transpose", "small", CT((2, 4, 8, 8), (4, 3, 3, 3), stride=2, padding=1,
                                            output_padding=1)),
    # a 2x upsampling decoder layer: k4 s2 p1 doubles 32x32 to 64x64
    BenchCase("conv_transpose k4s2p1", "medium", CT((8, 64, 32, 32), (64, 32, 4, 4), stride=2,
                                                    padding=1)),
    BenchCase("conv_transpose1d k4s2p1", "medium", CT((8, 32, 256), (32, 16, 4), stride=2,
                                                      padding=1)),
    BenchCase("conv_transpose3d k4s2p1", "medium", CT((2, 16, 8, 8, 8), (16, 8, 4, 4, 4),
                                                      stride=2, padding=1)),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _output_padding_too_large(k: Ctx) -> Broken:
    """output_padding >= max(stride, dilation) along one axis (transposed convolution)."""
    stride, dilation = spatial(k.args["stride"], k.rank), spatial(k.args["dilation"], k.rank)
    axis = k.axis()
    bad = max(stride[axis], dilation[axis]) + k.draw(st.integers(0, 1), label="beyond")
    current = list(spatial(k.args["output_padding"], k.rank))
    current[axis] = bad
    k.args["output_padding"] = k.container(current)
    return ("output_padding",), "output_padding"


def _transposed_output_too_small(k: Ctx) -> Broken:
    """padding cropping an axis of a transposed convolution's output to <= 0 cells."""
    a = k.args
    kernel = a["w"].shape[2:]
    s, d = spatial(a["stride"], k.rank), spatial(a["dilation"], k.rank)
    e, p = spatial(a["output_padding"], k.rank), list(spatial(a["padding"], k.rank))
    axis = k.axis()
    full = (a["x"].shape[2 + axis] - 1) * s[axis] + d[axis] * (kernel[axis] - 1) + 1 + e[axis]
    p[axis] = -(-full // 2) + k.draw(st.integers(0, 1), label="beyond")
    a["padding"] = k.container(p)
    return ("padding",), "padding"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("output_padding_too_large", "a transposed convolution's output_padding >= "
                    "max(stride, dilation) along an axis", has("output_padding"),
                    _output_padding_too_large, "ValueError naming output_padding"),
    InvalidCategory("transposed_output_too_small", "padding cropping a transposed convolution's "
                    "output to < 1 cell along an axis", has("output_padding"),
                    _transposed_output_too_small, "ValueError naming padding"),
)


def bench_flops(case: ConvTransposeCase, direction: str) -> float:
    """2 * prod(x.shape) * Co/G * prod(k) forward (every input cell meets Co/G * prod(k) weights;
    the bias not counted); the backward counts the dx and dw GEMMs, 2x forward (db not counted);
    forward+backward 3x."""
    forward = 2.0 * math.prod(case.x_shape) * math.prod(case.w_shape[1:])
    return forward * {"fwd": 1, "bwd": 2, "fwd+bwd": 3}[direction]


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    bench_flops=bench_flops,
    name="conv_transpose",
    tf32_inputs=True,
    ranks=RANKS,
    case_type=ConvTransposeCase,
    functions=lambda r: (f"conv_transpose{r}d", f"conv_transpose{r}d_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
