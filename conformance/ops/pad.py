"""Padding of the spatial axes (1 to 3): pad and pad_backward, four modes."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

from ..cases import Case, pads_of, values
from ..invalid_category import Broken, Ctx, InvalidCategory, has_all, normal
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 10
RANKS = (1, 2, 3)
MODES = ("constant", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class PadCase(Case):
    family = "pad"
    differentiable = ("x",)
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x",), "backward": ("dy",)}
    shape: tuple[int, ...]
    pad_width: Any
    mode: str = "constant"
    value: float = 0.0
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {"pad_width": self.pad_width, "mode": self.mode, "value": self.value}

    def pads(self) -> tuple[tuple[int, int], ...]:
        return pads_of(self.pad_width, self.rank)

    def output_shape(self) -> tuple[int, ...]:
        n, c, *size = self.shape
        return (n, c, *(s + b + a for s, (b, a) in zip(size, self.pads(), strict=True)))

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": values(rng, self.shape, self.kind)}

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], **self.params()}
        return {"dy": a["dy"], "pad_width": self.pad_width, "mode": self.mode}


def sample(d: Any, rank: int | None = None, small: bool = False,
           modes: tuple[str, ...] = MODES) -> PadCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    mode = d.choice(modes, "mode")
    regime = d.choice(["random", "at the limit", "zero on an axis"], "pad regime")
    p = []
    for a, s in enumerate(size):
        # torch's limits: reflect < size, circular <= size; others anything (kept small).
        cap = min({"reflect": s - 1, "circular": s}.get(mode, 4), 4)
        if regime == "at the limit":
            p.append((cap, d.integer(0, cap, f"pad{a} after")))
        elif regime == "zero on an axis" and a == 0:
            p.append((0, 0))
        else:
            p.append((d.integer(0, cap, f"pad{a} before"), d.integer(0, cap, f"pad{a} after")))
    value = d.choice([0.0, 1.5, -2.0], "value") if mode == "constant" else 0.0
    return PadCase((n, c, *size), draws.padding_form(d, tuple(p)), mode, value)


def corners(case: PadCase) -> list[str]:
    p = case.pads()
    out = [f"mode {case.mode}", f"rank {case.rank}"]
    if any(b != a for b, a in p):
        out.append("asymmetric padding")
    if any(b == a == 0 for b, a in p):
        out.append("no padding on an axis")
    limits = [{"reflect": s - 1, "circular": s}.get(case.mode) for s in case.shape[2:]]
    if any(lim is not None and max(pa) == lim for lim, pa in zip(limits, p, strict=True)):
        out.append("pad at the size limit")
    if case.mode == "replicate" and any(max(pa) > s for s, pa in
                                        zip(case.shape[2:], p, strict=True)):
        out.append("replicate pad wider than the input")
    if len(set(case.shape[2:])) > 1:
        out.append("non-square input")
    return out


CORNERS = ("mode constant", "mode reflect", "mode replicate", "mode circular",
           "asymmetric padding", "no padding on an axis", "pad at the size limit",
           "non-square input", "rank 1", "rank 2", "rank 3")


def forward_bounds(case: PadCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    return {"y": 0.0}  # a copy: exact


def backward_bounds(case: PadCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    if case.mode == "constant":
        return {"dx": 0.0}  # a crop: exact
    # A cell receives its own gradient plus the copies of it in the border, axis by axis:
    # reflect and circular copy each cell at most once per side (their pads are <= the size),
    # replicate copies the edge cell once per padded position of that side (and both sides'
    # onto a single cell when the axis has size 1).
    per_axis = []
    for (b, af), size in zip(case.pads(), case.shape[2:], strict=True):
        if case.mode == "replicate":
            per_axis.append(1 + b + af if size == 1 else 1 + max(b, af))
        else:
            per_axis.append(1 + (b > 0) + (af > 0))
    n = math.prod(per_axis)
    return {"dx": gamma(n, dtype) * n * abs64(a["dy"]).max(initial=0.0)}


def fd_step(case: PadCase, name: str, value: np.ndarray) -> np.ndarray:
    return np.ones(value.shape)  # linear: any h is exact


FIXTURES: tuple[tuple[str, PadCase], ...] = (
    ("pad-constant-zero-int", PadCase((2, 2, 3, 4), 1)),
    ("pad-constant-value-asymmetric", PadCase((2, 2, 3, 4), ((1, 2), (0, 3)), "constant", -1.5)),
    ("pad-constant-none", PadCase((2, 2, 3, 4), ((0, 0), (0, 0)), "constant", 2.0)),
    ("pad-reflect-pair", PadCase((2, 2, 3, 4), (1, 2), "reflect")),
    ("pad-reflect-asymmetric-limit", PadCase((1, 2, 3, 4), ((2, 0), (1, 3)), "reflect")),
    ("pad-replicate-asymmetric", PadCase((2, 2, 3, 4), ((0, 3), (2, 1)), "replicate")),
    ("pad-replicate-wider-than-input", PadCase((1, 2, 2, 3), 4, "replicate")),
    ("pad-circular-asymmetric", PadCase((2, 2, 3, 4), ((1, 0), (2, 3)), "circular")),
    ("pad-circular-full-size", PadCase((1, 2, 2, 3), ((2, 2), (3, 3)), "circular")),
    ("pad1d-reflect-asymmetric", PadCase((2, 3, 5), ((3, 1),), "reflect")),
    ("pad1d-circular-limit", PadCase((2, 2, 4), ((4, 2),), "circular")),
    ("pad3d-replicate-mixed", PadCase((1, 2, 2, 3, 4), (1, (0, 2), (3, 0)), "replicate")),
    ("pad3d-constant-value", PadCase((2, 1, 3, 2, 3), ((1, 0), 0, (0, 2)), "constant", 1.5)),
)


X23 = [[[[1.0, 2, 3], [4, 5, 6]]]]  # (1, 1, 2, 3)

HAND_CASES: tuple[HandCase, ...] = (
    # reflect, pad_width ((1, 0), (2, 1)): source rows [1, 0], source cols [2, 1, 0, 1, 2, 1].
    # Backward with dy[i, j] = 10 i + j: dx[0] gets dy row 1 at cols (2 | 1, 3, 5 | 0, 4)
    # = (12, 11 + 13 + 15, 10 + 14); dx[1] gets rows 0 + 2 = [20, 22, ..., 30] the same way.
    HandCase(
        "pad_reflect_asymmetric", PadCase((1, 1, 2, 3), ((1, 0), (2, 1)), "reflect"),
        {"x": X23, "dy": [[[[0.0, 1, 2, 3, 4, 5], [10, 11, 12, 13, 14, 15],
                            [20, 21, 22, 23, 24, 25]]]]},
        {"y": [[[[6.0, 5, 4, 5, 6, 5], [3, 2, 1, 2, 3, 2], [6, 5, 4, 5, 6, 5]]]]},
        {"dx": [[[[12.0, 39, 24], [24, 78, 48]]]]},
    ),
    # circular ((0, 1), (1, 2)): rows [0, 1, 0], cols [2, 0, 1, 2, 0, 1].
    HandCase(
        "pad_circular_asymmetric", PadCase((1, 1, 2, 3), ((0, 1), (1, 2)), "circular"),
        {"x": X23, "dy": [[[[1.0, 0, 0, 0, 2, 0], [0, 0, 0, 3, 0, 0], [0, 4, 0, 0, 0, 5]]]]},
        {"y": [[[[3.0, 1, 2, 3, 1, 2], [6, 4, 5, 6, 4, 5], [3, 1, 2, 3, 1, 2]]]]},
        # dy(0,0)->x(0,2); dy(0,4)->x(0,0); dy(1,3)->x(1,2); dy(2,1)->x(0,0); dy(2,5)->x(0,1)
        {"dx": [[[[2.0 + 4, 5, 1], [0, 0, 3]]]]},
    ),
    # replicate ((1, 1), (0, 2)): rows [0, 0, 1, 1], cols [0, 1, 2, 2, 2]; dy = ones*(row+1)
    # so dx[0] = (1 + 2) * [1, 1, 3], dx[1] = (3 + 4) * [1, 1, 3].
    HandCase(
        "pad_replicate_asymmetric", PadCase((1, 1, 2, 3), ((1, 1), (0, 2)), "replicate"),
        {"x": X23, "dy": [[[[1.0] * 5, [2.0] * 5, [3.0] * 5, [4.0] * 5]]]},
        {"y": [[[[1.0, 2, 3, 3, 3], [1, 2, 3, 3, 3], [4, 5, 6, 6, 6], [4, 5, 6, 6, 6]]]]},
        {"dx": [[[[3.0, 3, 9], [7, 7, 21]]]]},
    ),
    # constant -1 with (1, 2): one row above/below, two columns each side; backward crops.
    HandCase(
        "pad_constant_value", PadCase((1, 1, 2, 3), (1, 2), "constant", -1.0),
        {"x": X23, "dy": [[[[float(10 * i + j) for j in range(7)] for i in range(4)]]]},
        {"y": [[[[-1.0] * 7, [-1, -1, 1, 2, 3, -1, -1], [-1, -1, 4, 5, 6, -1, -1], [-1.0] * 7]]]},
        {"dx": [[[[12.0, 13, 14], [22, 23, 24]]]]},
    ),
    # 1-D reflect ((2, 1),) on [1, 2, 3, 4]: sources [2, 1, 0, 1, 2, 3, 2] -> y = [3 2 | 1 2 3 4
    # | 3]; dy = [1, 10, 100, 1000, 10^4, 10^5, 10^6]: dx[1] = 10^3 + 10, dx[2] = 10^4 + 1 + 10^6.
    HandCase(
        "pad1d_reflect_asymmetric", PadCase((1, 1, 4), ((2, 1),), "reflect"),
        {"x": [[[1.0, 2, 3, 4]]], "dy": [[[1.0, 10, 100, 1e3, 1e4, 1e5, 1e6]]]},
        {"y": [[[3.0, 2, 1, 2, 3, 4, 3]]]},
        {"dx": [[[100.0, 1010, 1010001, 100000]]]},
    ),
)


BENCH: tuple[BenchCase, ...] = ()


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _pad_too_large(mode: str) -> Callable[[Ctx], Broken]:
    """reflect: a pad >= the size of its axis; circular: a pad > the size."""
    def breaker(k: Ctx) -> Broken:
        n, c, *sizes = k.arrays["x"].shape
        axis = k.axis()
        low = sizes[axis] if mode == "reflect" else sizes[axis] + 1
        k.args["pad_width"] = k.pads_with(pads_of(k.args["pad_width"], k.rank), axis,
                                          low + k.draw(st.integers(0, 2), label="beyond"),
                                          grow=False)
        if "dy" in k.args:  # the backward: dy as large as the new padding makes the output
            pads = pads_of(k.args["pad_width"], k.rank)
            shape = (n, c, *(s + b + a for s, (b, a) in zip(sizes, pads, strict=True)))
            k.args["dy"] = normal(k.rng, shape, k.args["dy"].dtype)
        return ("pad_width",), "pad_width"

    return breaker


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("reflect_pad_too_large", "reflect pad >= the size of its axis",
                    has_all("pad_width", "mode"), _pad_too_large("reflect"),
                    "ValueError naming pad_width", {"modes": ("reflect",)}),
    InvalidCategory("circular_pad_too_large", "circular pad > the size of its axis",
                    has_all("pad_width", "mode"), _pad_too_large("circular"),
                    "ValueError naming pad_width", {"modes": ("circular",)}),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="pad",
    ranks=RANKS,
    case_type=PadCase,
    functions=lambda r: ("pad", "pad_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    exact_outputs=("y",),
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
