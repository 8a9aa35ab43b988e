"""The dense layer: linear and linear_backward (F.linear), x (*lead, in) with 0 to 3 leading
axes.

CONTRACT.md, "Dense layer": y = x @ w.T + b with w (out, in), b (out,) or None; the backward
returns (dx, dw, db), db = dy summed over every leading axis. The record's "rank" is the number
of leading axes of x (0: x is a single vector of length in), so the per-rank tests run with
none, one (N), two and three of them; the label reads linear0d ... linear3d.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..cases import Case
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord

ORDER = 70
RANKS = (0, 1, 2, 3)


@dataclass(frozen=True)
class LinearCase(Case):
    family = "linear"
    differentiable = ("x", "w", "b")
    backward_outputs = ("dx", "dw", "db")
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x", "w", "b"), "backward": ("dy", "x", "w")}
    grad_defaults: ClassVar[dict[str, Any]] = {"b": (0.0, lambda a: (a["w"].shape[0],))}
    # Arrays that take any ndim from this minimum up (conformance.generic_categories reads this):
    # x and dy have any number of leading axes, none included.
    min_ndim: ClassVar[dict[str, int]] = {"x": 1, "dy": 1}
    leading_axes: ClassVar[int] = 1  # x is (*lead, in): the rank counts the leading axes
    lead: tuple[int, ...]
    in_features: int
    out_features: int
    bias: bool = True
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.lead)

    def params(self) -> dict[str, Any]:
        return {}

    def output_shape(self) -> tuple[int, ...]:
        return (*self.lead, self.out_features)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        x = rng.standard_normal((*self.lead, self.in_features))
        if self.kind == "zeros":  # exact zeros (signed) in x: a third of them, the first always
            zero = rng.random(x.shape) < 1 / 3
            zero.reshape(-1)[0] = True
            x = np.where(zero, np.where(rng.random(x.shape) < 0.5, -0.0, 0.0), x)
        a = {"x": x, "w": rng.standard_normal((self.out_features, self.in_features))}
        if self.bias:
            a["b"] = rng.standard_normal(self.out_features)
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], "w": a["w"], "b": a.get("b")}
        return {"dy": a["dy"], "x": a["x"], "w": a["w"]}


def sample(d: Any, rank: int | None = None, small: bool = False,
           kind: str | None = None) -> LinearCase:
    r = rank if rank is not None else d.choice(RANKS, "rank")
    top = 3 if small else 5
    lead = tuple(d.integer(1, top, f"lead{i}") for i in range(r))
    # one case in four with a single feature on a side
    in_features = 1 if d.integer(0, 3, "in = 1") == 0 else d.integer(2, 6 if small else 17, "in")
    out_features = 1 if d.integer(0, 3, "out = 1") == 0 else d.integer(2, 5 if small else 9,
                                                                       "out")
    bias = d.integer(0, 2, "no bias") != 0  # bias None in one case of three
    kind = kind or d.choice(["normal", "normal", "zeros"], "values")
    case = LinearCase(lead, in_features, out_features, bias, kind)
    if small and math.prod(lead) * in_features + out_features * (in_features + 1) > 250:
        d.reject()
    return case


def corners(case: LinearCase) -> list[str]:
    out = [f"rank {case.rank}"]
    if case.rank >= 2:
        out.append("leading dims beyond N")
    if not case.bias:
        out.append("bias None")
    if case.in_features == 1:
        out.append("in_features 1")
    if case.out_features == 1:
        out.append("out_features 1")
    if case.rank >= 1 and case.lead[0] > 1:
        out.append("N > 1")
    if case.kind == "zeros":
        out.append("exact zeros")
    return out


CORNERS = ("rank 0", "rank 1", "rank 2", "rank 3", "leading dims beyond N", "bias None",
           "in_features 1", "out_features 1", "N > 1", "exact zeros")


def forward_bounds(case: LinearCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    # y[..., o] sums in products x[..., i] w[o, i] and the bias: in + 1 terms in any order
    # (BLAS blocking included), gamma(in + 1) * (sum_i |x| |w| + |b|) per output element.
    x, w, b = abs64(a["x"]), abs64(a["w"]), abs64(a.get("b"))
    terms = x @ w.T + (b if case.bias else 0.0)
    return {"y": gamma(case.in_features + 1, dtype) * terms}


def backward_bounds(case: LinearCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    # dx[..., i] sums out products dy w: gamma(out) * |dy| @ |w|. dw[o, i] and db[o] sum over
    # the M = prod(lead) leading positions: gamma(M) * |dy|^T |x| and gamma(M) * sum |dy|.
    x, w, dy = abs64(a["x"]), abs64(a["w"]), abs64(a["dy"])
    m = math.prod(case.lead)
    dy2, x2 = dy.reshape(-1, case.out_features), x.reshape(-1, case.in_features)
    return {"dx": gamma(case.out_features, dtype) * (dy @ w),
            "dw": gamma(m, dtype) * (dy2.T @ x2),
            "db": gamma(m, dtype) * dy2.sum(axis=0)}


def fd_step(case: LinearCase, name: str, value: np.ndarray) -> np.ndarray:
    # Linear in each input: any h gives the exact derivative; h = 1 keeps rounding small.
    return np.ones(value.shape)


FIXTURES: tuple[tuple[str, LinearCase], ...] = (
    ("linear-batch-bias", LinearCase((3,), 5, 4)),
    ("linear-batch-no-bias", LinearCase((3,), 5, 4, bias=False)),
    ("linear0d-vector", LinearCase((), 6, 3)),
    ("linear2d-leading-dims-zeros", LinearCase((2, 3), 4, 5, kind="zeros")),
    ("linear3d-leading-dims-no-bias", LinearCase((2, 1, 3), 3, 2, bias=False)),
    ("linear-in-features-1", LinearCase((4,), 1, 3)),
    ("linear-out-features-1", LinearCase((4,), 7, 1)),
)


HAND_CASES: tuple[HandCase, ...] = (
    # x (2, 3) = [[1, 2, 3], [4, 5, 6]], w (2, 3) = [[1, 0, -1], [2, 1, 0]] (x @ w.T is a
    # 2x3 @ 3x2 product), b = [0.5, -1]:
    #   y[0] = [1 - 3 + 0.5, 2 + 2 - 1] = [-1.5, 3];  y[1] = [4 - 6 + 0.5, 8 + 5 - 1] = [-1.5, 12]
    # Backward with dy = [[1, 0], [0, 2]]:
    #   dx = dy @ w = [[1, 0, -1], [4, 2, 0]];  dw = dy.T @ x = [[1, 2, 3], [8, 10, 12]];
    #   db = [1, 2].
    HandCase(
        "linear_2x3_by_3x2_bias", LinearCase((2,), 3, 2),
        {"x": [[1.0, 2, 3], [4, 5, 6]], "w": [[1.0, 0, -1], [2, 1, 0]], "b": [0.5, -1.0],
         "dy": [[1.0, 0], [0, 2]]},
        {"y": [[-1.5, 3.0], [-1.5, 12.0]]},
        {"dx": [[1.0, 0, -1], [4, 2, 0]], "dw": [[1.0, 2, 3], [8, 10, 12]], "db": [1.0, 2.0]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("linear", "small", LinearCase((8,), 64, 32)),
    BenchCase("linear", "medium", LinearCase((64,), 512, 256)),
    BenchCase("linear", "large", LinearCase((256,), 1024, 1000)),
    BenchCase("linear 3-D input", "medium", LinearCase((16, 49), 256, 128)),
)


def bench_flops(case: LinearCase, direction: str) -> float:
    """2 * prod(lead) * in * out forward (the bias not counted); the backward counts the dx and
    dw GEMMs, 2x forward (db not counted); forward+backward 3x."""
    forward = 2.0 * math.prod(case.lead) * case.in_features * case.out_features
    return forward * {"fwd": 1, "bwd": 2, "fwd+bwd": 3}[direction]


RECORD = OpRecord(
    bench_flops=bench_flops,
    name="linear",
    tf32_inputs=True,
    ranks=RANKS,
    case_type=LinearCase,
    functions=lambda r: ("linear", "linear_backward"),
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
