"""Average pooling at 1, 2 and 3 spatial dimensions: avg_pool1d, avg_pool2d, avg_pool3d.

torch's semantics (CONTRACT.md, "Average pooling"): symmetric zero padding of at most
kernel // 2, the ceil_mode rule of max pooling (dilation 1), and a divisor per window that
counts padding cells (count_include_pad) but never the cells of a ceil_mode window beyond the
right padding, or input cells only, or is ``divisor_override``. Besides the record, this module
states the divisor plainly (:func:`window_divisors`), for the error model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..cases import Case, spatial, values, window_count
from ..invalid_category import Broken, Ctx, InvalidCategory, has
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 35
RANKS = (1, 2, 3)


@dataclass(frozen=True)
class AvgPoolCase(Case):
    family = "avg_pool"
    differentiable = ("x",)
    shape: tuple[int, ...]
    kernel_size: Any
    stride: Any = None
    padding: Any = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad,
                "divisor_override": self.divisor_override}

    def geometry(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(kernel, stride, pad), one entry per spatial axis (the pad is on both sides)."""
        r = self.rank
        k = spatial(self.kernel_size, r)
        s = k if self.stride is None else spatial(self.stride, r)
        return k, s, spatial(self.padding, r)

    def output_shape(self) -> tuple[int, ...]:
        k, s, p = self.geometry()
        out = tuple(window_count(self.shape[2 + i], p[i], p[i], k[i], s[i], 1, self.ceil_mode)
                    for i in range(self.rank))
        return (*self.shape[:2], *out)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": values(rng, self.shape, self.kind)}

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], **self.params()}
        return {"dy": a["dy"], "x": a["x"], **self.params()}


def axis_windows(size: int, k: int, s: int, p: int, n_out: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis: each window's start (input coordinates), its end clipped to the right
    padding (torch's ``min(start + k, S + p)``) and its number of input cells."""
    start = np.arange(n_out) * s - p
    end = np.minimum(start + k, size + p)
    inside = np.minimum(end, size) - np.maximum(start, 0)
    return start, end, inside


def window_divisors(case: AvgPoolCase) -> np.ndarray:
    """The contract's divisor of every window, (*So), as float64, written out plainly."""
    k, s, p = case.geometry()
    out = case.output_shape()[2:]
    if case.divisor_override is not None:
        return np.full(out, float(case.divisor_override))
    per_axis = []
    for a in range(case.rank):
        start, end, inside = axis_windows(case.shape[2 + a], k[a], s[a], p[a], out[a])
        per_axis.append(end - start if case.count_include_pad else inside)
    div = np.ones(out)
    for idx in itertools.product(*(range(o) for o in out)):
        div[idx] = math.prod(int(per_axis[a][i]) for a, i in enumerate(idx))
    return div


def _window_abs_sums(case: AvgPoolCase, x: np.ndarray) -> np.ndarray:
    """sum |x| over each window's input cells, (N, C, *So), by explicit index lists."""
    k, s, p = case.geometry()
    n, c, *size = case.shape
    out = case.output_shape()[2:]
    ax = np.abs(x)
    result = np.zeros((n, c, *out))
    for idx in itertools.product(*(range(o) for o in out)):
        cells = tuple(slice(max(i * s[a] - p[a], 0), min(i * s[a] - p[a] + k[a], size[a]))
                      for a, i in enumerate(idx))
        result[(slice(None), slice(None), *idx)] = ax[(slice(None), slice(None), *cells)].sum(
            axis=tuple(range(2, 2 + case.rank)))
    return result


# The pad regimes of average pooling: symmetric only (torch pads both sides alike).
PAD_REGIMES = ("none", "half", "uniform", "per axis")


def _pads(d: Any, kernel: tuple[int, ...]) -> tuple[int, ...]:
    regime = d.choice(PAD_REGIMES, "padding regime")
    if regime == "none":
        return (0,) * len(kernel)
    if regime == "half":
        return tuple(k // 2 for k in kernel)
    if regime == "uniform":
        p = d.integer(0, max(kernel) // 2, "pad size")
        return tuple(min(p, k // 2) for k in kernel)
    return tuple(d.integer(0, k // 2, f"pad{a}") for a, k in enumerate(kernel))


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str | None = None
           ) -> AvgPoolCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    regime, kernel, stride, _ = draws.windows(d, r)  # no dilation in average pooling
    p = _pads(d, kernel)
    default_stride = regime == "tiling" and d.boolean("default stride")
    ceil_mode = d.boolean("ceil_mode")
    count_include_pad = d.boolean("count_include_pad")
    divisor_override = None
    if d.integer(0, 3, "divisor_override set") == 0:  # one case in four
        divisor_override = d.choice([1, 2, 3, 7, -2], "divisor_override")
    kind = kind or d.choice(["normal", "normal", "ties", "signed_zeros"], "values")
    padding = p[0] if len(set(p)) == 1 and d.boolean("padding as an int") else tuple(p)
    case = AvgPoolCase((n, c, *size), draws.spatial_form(d, kernel, "kernel_size"),
                       None if default_stride else draws.spatial_form(d, stride, "stride"),
                       padding, ceil_mode, count_include_pad, divisor_override, kind)
    if min(case.output_shape()[2:]) < 1:
        d.reject()
    if small and math.prod(case.shape) > 400:
        d.reject()
    return case


def corners(case: AvgPoolCase) -> list[str]:
    k, s, p = case.geometry()
    pairs = tuple((q, q) for q in p)
    out = draws.window_corners(case.shape, k, s, (1,) * case.rank, pairs, case.ceil_mode)
    out = [c.replace(", dilation 1", "").replace(" extent", "") for c in out]
    out_size = case.output_shape()[2:]
    if case.ceil_mode:
        for a in range(case.rank):
            size = case.shape[2 + a]
            start, _, _ = axis_windows(size, k[a], s[a], p[a], out_size[a])
            if start[-1] + k[a] > size + p[a]:
                out.append("ceil_mode window beyond the padding")
            span = size + 2 * p[a] - k[a]
            if (-(-span // s[a])) * s[a] >= size + p[a]:
                out.append("ceil_mode drops a window starting in padding")
    if case.divisor_override is not None:
        out.append("divisor_override set")
    else:
        out.append("count_include_pad" if case.count_include_pad else "input cells only")
    if case.stride is None:
        out.append("default stride")
    return list(dict.fromkeys(out))


CORNERS = ("stride 1, kernel > 1", "stride > kernel", "overlapping strided windows",
           "pad = kernel // 2", "window starts in padding", "ceil_mode extra window",
           "ceil_mode window beyond the padding", "ceil_mode drops a window starting in padding",
           "count_include_pad", "input cells only", "divisor_override set", "non-square input",
           "an axis of size 1", "N, C > 1", "default stride", "rank 1", "rank 2", "rank 3")


def forward_bounds(case: AvgPoolCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    # y = (sum of the window's k = prod(kernel) terms, padding zeros included) / divisor. The
    # sum of k terms in any order errs by gamma(k - 1) * sum|x| (Higham's bound for recursive
    # summation, whatever the order or blocking), and the division by the divisor (a small
    # integer, exact in either dtype) adds one rounding: gamma(k) * sum|x| / |divisor|. Two
    # more roundings are allowed: a framework may multiply by a rounded 1 / divisor, and a
    # composition (TF: the mean of the k cells, rescaled by k / divisor) rounds once more.
    k, _, _ = case.geometry()
    n_terms = math.prod(k) + 2
    sums = _window_abs_sums(case, abs64(a["x"]))
    return {"y": gamma(n_terms, dtype) * sums / np.abs(window_divisors(case))}


def backward_bounds(case: AvgPoolCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    # dx sums dy / divisor over the windows covering a cell: at most ceil(k / s) per axis. Each
    # term is one rounded division, the sum of m terms errs by gamma(m - 1): gamma(m + 1) * m *
    # max|dy / divisor| bounds it.
    k, s, _ = case.geometry()
    m = math.prod(-(-k[i] // s[i]) for i in range(case.rank))
    g = abs64(a["dy"]) / np.abs(window_divisors(case))
    return {"dx": gamma(m + 1, dtype) * m * g.max(initial=0.0)}


def fd_step(case: AvgPoolCase, name: str, value: np.ndarray) -> np.ndarray:
    # Linear in x: any h gives the exact derivative; h = 1 keeps rounding small.
    return np.ones(value.shape)


FIXTURES: tuple[tuple[str, AvgPoolCase], ...] = (
    ("avg_pool2d-k2-default-stride", AvgPoolCase((2, 2, 6, 7), 2)),
    ("avg_pool2d-k3-s2-pad1-include", AvgPoolCase((2, 2, 6, 7), 3, stride=2, padding=1)),
    ("avg_pool2d-k3-s2-pad1-exclude",
     AvgPoolCase((2, 2, 6, 7), 3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d-ceil-mode-beyond-padding",
     AvgPoolCase((2, 2, 5, 7), 3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d-ceil-mode-drop-last",
     AvgPoolCase((1, 2, 5, 5), 2, stride=2, padding=1, ceil_mode=True,
                 count_include_pad=False)),
    ("avg_pool2d-k3-s1-dense", AvgPoolCase((2, 3, 5, 6), 3, stride=1, padding=1)),
    ("avg_pool2d-nonsquare-divisor-override",
     AvgPoolCase((2, 2, 5, 7), (2, 3), stride=(1, 2), padding=(1, 1), divisor_override=3)),
    ("avg_pool2d-gap", AvgPoolCase((2, 2, 7, 8), 2, stride=3)),
    ("avg_pool1d-k3-s1-pad1-exclude",
     AvgPoolCase((2, 3, 9), 3, stride=1, padding=1, count_include_pad=False)),
    ("avg_pool1d-ceil-mode-stride3", AvgPoolCase((2, 2, 10), 2, stride=3, ceil_mode=True)),
    ("avg_pool1d-divisor-override", AvgPoolCase((2, 2, 8), 4, stride=2, padding=2,
                                                divisor_override=-2)),
    ("avg_pool3d-k2-s1", AvgPoolCase((2, 2, 3, 4, 5), 2, stride=1)),
    ("avg_pool3d-k3-s2-pad-mixed-ceil",
     AvgPoolCase((1, 2, 4, 5, 6), (3, 2, 3), stride=2, padding=(1, 1, 0), ceil_mode=True,
                 count_include_pad=False)),
)


_X44 = [[[[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]]]

HAND_CASES: tuple[HandCase, ...] = (
    # kernel 3, stride 2, padding 1, ceil_mode on 4x4: Ho = ceil((4 + 2 - 3) / 2) + 1 = 3, and
    # the last window starts at 2 * 2 - 1 = 3 < 4 + 1, so it stays. Along each axis the windows
    # cover rows {-1, 0, 1}, {1, 2, 3}, {3, 4, 5}: input rows {0, 1}, {1, 2, 3}, {3}.
    # Input cells only: divisors 2, 3, 1 per axis. Window (0, 0) = [1 2; 5 6] / 4 = 3.5;
    # (0, 1) = [2 3 4; 6 7 8] / 6 = 5; (0, 2) = [4; 8] / 2 = 6; (1, 0) = [5 6; 9 10; 13 14] / 6
    # = 9.5; (1, 1) = 99 / 9 = 11; (1, 2) = [8; 12; 16] / 3 = 12; (2, *) = [13 14] / 2 = 13.5,
    # [14 15 16] / 3 = 15, 16 / 1 = 16. With dy = the divisors, every window passes 1 to each
    # of its cells: dx counts the windows covering a cell, 1 2 1 2 per axis.
    HandCase(
        "avg_pool2d_ceil_mode_input_cells_only",
        AvgPoolCase((1, 1, 4, 4), 3, stride=2, padding=1, ceil_mode=True,
                    count_include_pad=False),
        {"x": _X44, "dy": [[[[4.0, 6, 2], [6, 9, 3], [2, 3, 1]]]]},
        {"y": [[[[3.5, 5, 6], [9.5, 11, 12], [13.5, 15, 16]]]]},
        {"dx": [[[[1.0, 2, 1, 2], [2, 4, 2, 4], [1, 2, 1, 2], [2, 4, 2, 4]]]]},
    ),
    # The same windows with count_include_pad: padding counts, the cell beyond the right padding
    # (row / column 5) does not: divisors 3, 3, min(3 + 3, 4 + 1) - 3 = 2 per axis, products
    # [9 9 6; 9 9 6; 6 6 4]. y = the same sums: 14 / 9, 30 / 9, 12 / 6; 57 / 9, 99 / 9, 36 / 6;
    # 27 / 6, 45 / 6, 16 / 4. With dy = those divisors dx is again the cover count.
    HandCase(
        "avg_pool2d_ceil_mode_count_include_pad",
        AvgPoolCase((1, 1, 4, 4), 3, stride=2, padding=1, ceil_mode=True),
        {"x": _X44, "dy": [[[[9.0, 9, 6], [9, 9, 6], [6, 6, 4]]]]},
        {"y": [[[[14 / 9, 30 / 9, 2], [57 / 9, 11, 6], [4.5, 7.5, 4]]]]},
        {"dx": [[[[1.0, 2, 1, 2], [2, 4, 2, 4], [1, 2, 1, 2], [2, 4, 2, 4]]]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    *(BenchCase(label, size, AvgPoolCase(shape, k, stride=s, padding=p))
      for size, shape in (("small", (2, 3, 9, 9)), ("medium", (8, 16, 32, 32)),
                          ("large", (32, 64, 56, 56)))
      for label, k, s, p in (("avgpool k3s2p1", 3, 2, 1), ("avgpool k2s2", 2, 2, 0))),
    BenchCase("avgpool1d k3s2p1", "medium", AvgPoolCase((8, 32, 1024), 3, stride=2, padding=1)),
    BenchCase("avgpool3d k3s2p1", "medium", AvgPoolCase((4, 8, 16, 32, 32), 3, stride=2,
                                                        padding=1)),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _bad_divisor_override(k: Ctx) -> Broken:
    k.args["divisor_override"] = k.draw(st.sampled_from([0, 1.5, True, "2"]),
                                        label="bad divisor_override")
    return ("divisor_override",), "divisor_override"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("bad_divisor_override", "a divisor_override that is not None or a non-zero "
                    "int (0, 1.5, True, '2')", has("divisor_override"), _bad_divisor_override,
                    "ValueError naming divisor_override"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="avg_pool",
    ranks=RANKS,
    case_type=AvgPoolCase,
    functions=lambda r: (f"avg_pool{r}d", f"avg_pool{r}d_backward"),
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
