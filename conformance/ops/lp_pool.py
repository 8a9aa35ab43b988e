"""Power-average (LP) pooling at 1 and 2 spatial dimensions: lp_pool1d, lp_pool2d.

torch's semantics (CONTRACT.md, "LP pooling"): no padding, the ceil_mode rule of max pooling
(dilation 1), y = (K / count * sum x ** p) ** (1 / p) with count the window's input cells (a
ceil_mode window cut short is scaled by K / count), real powers, and a zero-sum window passing
no gradient. Besides the record, this module states the window sums plainly
(:func:`window_terms`), for the error model and the properties.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..cases import Case, spatial, window_count
from ..invalid_category import Broken, Ctx, InvalidCategory, has
from ..rounding import gamma, unit_roundoff
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 36
RANKS = (1, 2)

# Value kinds of LP pooling (its own: the shared kinds put values at or near 0, where x ** p
# is not smooth for a non-integer p and a window sum near 0 makes the root's derivative blow
# up, so finite differences would mean nothing):
#   positive  uniform in [0.5, 2]: every window sum is bounded away from 0
#   ties      integers in {1, 2}: equal terms in a window (exact sums)
#   signed    a random sign times uniform in [0.5, 2]: only for an even integer p, where
#             x ** p = |x| ** p (CONTRACT.md: negative x is NaN for a non-integer p, and an odd
#             p can make a window sum negative)
LP_KINDS = ("positive", "ties", "signed")

# The norm types drawn: p = 1 (a scaled sum), 2, the odd 3, the even 4, and non-integer 1.5 and
# 2.5. No p < 1: there x ** (p - 1) is infinite at a zero cell, and torch's sign of that
# infinity at x = -0.0 is not IEEE pow's (its gradient is -inf, pow(-0.0, -0.5) is +inf), which
# the non-finite tests would report; p < 1 is checked by the registry test
# torch-lppool-zero-window-grad-below-1.
NORM_TYPES = (1, 2, 3, 4, 1.5, 2.5)


def lp_values(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Input values of one LP value kind (LP_KINDS), float64."""
    if kind == "ties":
        return rng.integers(1, 3, size=shape).astype(np.float64)
    v = rng.uniform(0.5, 2.0, size=shape)
    if kind == "signed":
        return np.where(rng.random(shape) < 0.5, -v, v)
    return v


@dataclass(frozen=True)
class LpPoolCase(Case):
    family = "lp_pool"
    differentiable = ("x",)
    shape: tuple[int, ...]
    norm_type: Any
    kernel_size: Any
    stride: Any = None
    ceil_mode: bool = False
    kind: str = "positive"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {"norm_type": self.norm_type, "kernel_size": self.kernel_size,
                "stride": self.stride, "ceil_mode": self.ceil_mode}

    def geometry(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(kernel, stride), one entry per spatial axis."""
        r = self.rank
        k = spatial(self.kernel_size, r)
        s = k if self.stride is None else spatial(self.stride, r)
        return k, s

    def output_shape(self) -> tuple[int, ...]:
        k, s = self.geometry()
        out = tuple(window_count(self.shape[2 + i], 0, 0, k[i], s[i], 1, self.ceil_mode)
                    for i in range(self.rank))
        return (*self.shape[:2], *out)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": lp_values(rng, self.shape, self.kind)}

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], **self.params()}
        return {"dy": a["dy"], "x": a["x"], **self.params()}


def windows(case: LpPoolCase) -> list[tuple[tuple[int, ...], tuple[slice, ...], int]]:
    """Every window: (its output index, the slices of its input cells, its cell count)."""
    k, s = case.geometry()
    size = case.shape[2:]
    out = case.output_shape()[2:]
    found = []
    for idx in itertools.product(*(range(o) for o in out)):
        cells = tuple(slice(i * s[a], min(i * s[a] + k[a], size[a])) for a, i in enumerate(idx))
        found.append((idx, cells, math.prod(c.stop - c.start for c in cells)))
    return found


def window_terms(case: LpPoolCase, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, A), (N, C, *So) in float64: the plain sum of |x| ** p over each window's cells and
    the scaled A = K / count * S (so y = A ** (1 / p) where the contract's y is real)."""
    p = float(case.norm_type)
    k, _ = case.geometry()
    n, c = case.shape[:2]
    out = case.output_shape()[2:]
    ax = np.abs(np.asarray(x, dtype=np.float64)) ** p
    sums, scaled = np.zeros((n, c, *out)), np.zeros((n, c, *out))
    axes = tuple(range(2, 2 + case.rank))
    for idx, cells, count in windows(case):
        at = (slice(None), slice(None), *idx)
        sums[at] = ax[(slice(None), slice(None), *cells)].sum(axis=axes)
        scaled[at] = sums[at] * math.prod(k) / count
    return sums, scaled


def _draw_norm_type(d: Any) -> Any:
    p = d.choice(NORM_TYPES, "norm_type")
    if isinstance(p, int) and d.boolean("norm_type as a float"):
        return float(p)
    return p


def _even(p: Any) -> bool:
    return float(p).is_integer() and int(p) % 2 == 0


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str | None = None
           ) -> LpPoolCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    regime, kernel, stride, _ = draws.windows(d, r)  # no dilation in LP pooling
    default_stride = regime == "tiling" and d.boolean("default stride")
    ceil_mode = d.boolean("ceil_mode")
    p = _draw_norm_type(d)
    kinds = ["positive", "ties", "signed"] if _even(p) else ["positive", "positive", "ties"]
    kind = kind or d.choice(kinds, "values")
    if kind == "signed" and not _even(p):
        d.reject()
    case = LpPoolCase((n, c, *size), p, draws.spatial_form(d, kernel, "kernel_size"),
                      None if default_stride else draws.spatial_form(d, stride, "stride"),
                      ceil_mode, kind)
    if min(case.output_shape()[2:]) < 1:
        d.reject()
    if small and math.prod(case.shape) > 400:
        d.reject()
    return case


def corners(case: LpPoolCase) -> list[str]:
    k, s = case.geometry()
    out = draws.window_corners(case.shape, k, s, (1,) * case.rank, ((0, 0),) * case.rank,
                               case.ceil_mode)
    out = [c.replace(", dilation 1", "").replace(" extent", "") for c in out]
    if any(count < math.prod(k) for _, _, count in windows(case)):
        out.append("ceil_mode partial window (K / count)")
    p = float(case.norm_type)
    if p == 1:
        out.append("p = 1")
    elif p == 2:
        out.append("p = 2")
    if p.is_integer() and int(p) % 2 == 1:
        out.append("odd integer p")
    if not p.is_integer():
        out.append("non-integer p")
    if case.kind == "signed":
        out.append("negative values")
    if case.kind == "ties":
        out.append("ties")
    if case.stride is None:
        out.append("default stride")
    return list(dict.fromkeys(out))


CORNERS = ("stride 1, kernel > 1", "stride > kernel", "overlapping strided windows",
           "ceil_mode extra window", "ceil_mode partial window (K / count)", "p = 1", "p = 2",
           "odd integer p", "non-integer p", "negative values", "ties", "non-square input",
           "N, C > 1", "default stride", "rank 1", "rank 2")
# ("an axis of size 1" is labelled but not required: without padding it needs kernel 1 on that
# axis, about 2 % of the draws.)


def _relative_y(case: LpPoolCase, scaled: np.ndarray, dtype: Any) -> np.ndarray:
    """Relative error bound of y = A ** (1 / p) computed in ``dtype``, per window.

    A's terms |x| ** p are positive wherever the contract's y is real and finite: each power is
    one library pow (or a few multiplications for an integer p: up to 4 roundings), their sum
    over at most K cells errs by gamma(K - 1) relative, and the mean and scale (torch: / count,
    * K; the TF composition: / K, * K, * K / count) add up to 4 more: gamma(K + 8) on A. The
    root divides A's relative error by p and adds its own rounding (4 for a library pow), and
    the exponent 1 / p is itself rounded (relative u): A ** ((1 / p)(1 + u)) errs by u |ln A| / p.
    """
    p = float(case.norm_type)
    k, _ = case.geometry()
    u = unit_roundoff(dtype)
    log_a = np.abs(np.log(np.where(scaled > 0, scaled, 1.0)))
    return gamma(math.prod(k) + 8, dtype) / p + gamma(4, dtype) + u * log_a / p


def forward_bounds(case: LpPoolCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    # |y| times the relative bound of _relative_y (y is a power of a sum of positive terms, so
    # the error is relative to y itself).
    _, scaled = window_terms(case, a["x"])
    y = scaled ** (1.0 / float(case.norm_type))
    return {"y": y * _relative_y(case, scaled, dtype)}


def backward_bounds(case: LpPoolCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    # dx_j = sum over the m windows covering j of t_w = dy_w * y_w / S_w * x_j ** (p - 1). Each
    # factor's relative error: y_w from _relative_y; S_w gamma(K + 3) (pow + sum); y / S as a
    # framework's chain rule computes it (torch: (1 / p) A ** (1 / p - 1) * K / count * p, a pow
    # whose exponent is rounded: u |ln A| (1 + 1 / p)) at most twice rel(y) plus that; x ** (p - 1)
    # one pow (4 roundings) with its rounded exponent (u |p - 1| |ln x|); the products and
    # divisions 8 more: per term rel_w = 2 rel(y_w) + gamma(K + 15) + u (2 |ln A_w| + |p - 1|
    # |ln x_j|). The sum of m terms adds gamma(m) * sum |t_w|.
    p = float(case.norm_type)
    k, s = case.geometry()
    u = unit_roundoff(dtype)
    x = np.asarray(a["x"], dtype=np.float64)
    dy = np.abs(np.asarray(a["dy"], dtype=np.float64))
    sums, scaled = window_terms(case, x)
    rel_y = _relative_y(case, scaled, dtype)
    log_a = np.abs(np.log(np.where(scaled > 0, scaled, 1.0)))
    ax = np.abs(x)
    xp1 = np.where(ax > 0, ax, 1.0) ** (p - 1)
    log_x = np.abs(np.log(np.where(ax > 0, ax, 1.0)))
    m = math.prod(-(-k[i] // s[i]) for i in range(case.rank))
    bound = np.zeros(x.shape)
    axes_all = (slice(None), slice(None))
    for idx, cells, _count in windows(case):
        at = (*axes_all, *idx)
        ratio = np.where(sums[at] > 0, scaled[at] ** (1.0 / p) / np.where(
            sums[at] > 0, sums[at], 1.0), 0.0)
        g = (dy[at] * ratio)[(..., *((None,) * case.rank))]
        rel = (2 * rel_y[at] + gamma(math.prod(k) + 15, dtype) + 2 * u * log_a[at]
               + gamma(m, dtype))[(..., *((None,) * case.rank))]
        inside = (*axes_all, *cells)
        bound[inside] += g * xp1[inside] * (rel + u * abs(p - 1) * log_x[inside])
    return {"dx": bound}


def fd_step(case: LpPoolCase, name: str, value: np.ndarray) -> np.ndarray:
    # Smooth where every |x| >= 0.5 (the value kinds) and every window sum is positive: h =
    # 1e-3 |x| keeps x's sign and its distance from 0, makes the h^2 truncation (estimated by
    # Richardson, fd_smooth) ~1e-6 relative, and the rounding u |L| / h ~1e-13 in float64.
    return 1e-3 * np.maximum(np.abs(value), 0.5)


FIXTURES: tuple[tuple[str, LpPoolCase], ...] = (
    ("lp_pool2d-p2-k2-default-stride", LpPoolCase((2, 2, 6, 7), 2, 2)),
    ("lp_pool2d-p1-k3-s2-ceil-mode", LpPoolCase((2, 2, 7, 8), 1, 3, stride=2, ceil_mode=True)),
    ("lp_pool2d-p3-nonsquare-k2x3-s1x2", LpPoolCase((2, 3, 5, 7), 3, (2, 3), stride=(1, 2))),
    ("lp_pool2d-p1.5-ceil-mode-partial", LpPoolCase((1, 2, 5, 5), 1.5, 2, stride=2,
                                                    ceil_mode=True)),
    ("lp_pool2d-p2-gap-signed", LpPoolCase((2, 2, 7, 8), 2.0, 2, stride=3, kind="signed")),
    ("lp_pool1d-p2-k3-s1", LpPoolCase((2, 3, 9), 2, 3, stride=1)),
    ("lp_pool1d-p2.5-ceil-mode-stride3", LpPoolCase((2, 2, 10), 2.5, 2, stride=3,
                                                    ceil_mode=True)),
    ("lp_pool1d-p4-ties", LpPoolCase((2, 2, 8), 4, 3, stride=2, kind="ties")),
)


HAND_CASES: tuple[HandCase, ...] = (
    # p = 2, kernel 2, default stride 2 on 4x4: four full 2x2 windows, y = sqrt(sum of squares).
    #   x = [1 2 | 1 1]   windows: (0, 0) 1 + 4 + 4 + 16 = 25 -> 5   (0, 1) 1+1+1+1 = 4 -> 2
    #       [2 4 | 1 1]            (1, 0) 4 + 16 + 16 + 64 = 100 -> 10
    #       [2 4 | 3 0]            (1, 1) 9 + 0 + 0 + 16 = 25 -> 5
    #       [4 8 | 0 4]
    # Backward: dx_j = x_j * dy / y (p = 2: x ** (p - 1) * y / S = x / y for a full window).
    # dy = [10 2; 5 15] gives dy / y = 2, 1, 0.5, 3: each block is x times its factor.
    HandCase(
        "lp_pool2d_p2_k2",
        LpPoolCase((1, 1, 4, 4), 2, 2),
        {"x": [[[[1.0, 2, 1, 1], [2, 4, 1, 1], [2, 4, 3, 0], [4, 8, 0, 4]]]],
         "dy": [[[[10.0, 2], [5, 15]]]]},
        {"y": [[[[5.0, 2], [10, 5]]]]},
        {"dx": [[[[2.0, 4, 1, 1], [4, 8, 1, 1], [1, 2, 9, 0], [2, 4, 0, 12]]]]},
    ),
    # p = 2, kernel 2, stride 2, ceil_mode on L = 5: windows {0, 1}, {2, 3} and the partial
    # {4} (it starts at 4 < 5). x = [3 4 6 8 2]: y = sqrt(9 + 16) = 5, sqrt(36 + 64) = 10, and
    # the partial window scaled by K / count = 2: sqrt(2 * 4) = 2 sqrt(2).
    # Backward with dy = [5 20 1]: dx_j = x_j * dy * (K / count) / y: 3, 4; 12, 16; and
    # 2 * 1 * 2 / (2 sqrt(2)) = sqrt(2).
    HandCase(
        "lp_pool1d_p2_ceil_mode_partial_window",
        LpPoolCase((1, 1, 5), 2, 2, stride=2, ceil_mode=True),
        {"x": [[[3.0, 4, 6, 8, 2]]], "dy": [[[5.0, 20, 1]]]},
        {"y": [[[5.0, 10, 8 ** 0.5]]]},
        {"dx": [[[3.0, 4, 12, 16, 2 ** 0.5]]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    *(BenchCase(label, size, LpPoolCase(shape, 2, k, stride=s))
      for size, shape in (("small", (2, 3, 9, 9)), ("medium", (8, 16, 32, 32)),
                          ("large", (32, 64, 56, 56)))
      for label, k, s in (("lppool p2 k3s2", 3, 2), ("lppool p2 k2s2", 2, 2))),
    BenchCase("lppool1d p3 k3s2", "medium", LpPoolCase((8, 32, 1024), 3, 3, stride=2)),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _bad_norm_type(k: Ctx) -> Broken:
    k.args["norm_type"] = k.draw(st.sampled_from([0, 0.0, -1, -2.5, math.inf, math.nan, True,
                                                  "2"]), label="bad norm_type")
    return ("norm_type",), "norm_type"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("bad_norm_type", "an LP-pool norm_type that is not a finite real number > 0 "
                    "(0, negative, inf, NaN, a bool, a string)", has("norm_type"), _bad_norm_type,
                    "ValueError naming norm_type"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="lp_pool",
    ranks=RANKS,
    case_type=LpPoolCase,
    functions=lambda r: (f"lp_pool{r}d", f"lp_pool{r}d_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fd_smooth=True,
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
