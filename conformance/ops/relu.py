"""relu and relu_backward, on (N, C, *S) inputs of spatial rank 0 to 3 (any shape is valid).

CONTRACT.md, "Activations": y = x where x >= 0 (a copy, -0.0 included), +0.0 where x < 0;
dx = dy * (x > 0): the derivative at exactly 0 (either sign) is 0, as in torch and TF.
The case type, value kinds, sampler and corners are shared with the other activations
(conformance/ops/elementwise.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import BenchCase, HandCase, OpRecord
from .elementwise import CORNERS, KINDS, RANKS, ElementwiseCase, corners, sample_kind, sample_shape

ORDER = 60


@dataclass(frozen=True)
class ReluCase(ElementwiseCase):
    family = "relu"


def sample(d: Any, rank: int | None = None, small: bool = False,
           kinds: tuple[str, ...] = KINDS) -> ReluCase:
    return ReluCase(sample_shape(d, rank, small), sample_kind(d, kinds))


def forward_bounds(case: ReluCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    return {"y": 0.0}  # a selection of x or 0: exact


def backward_bounds(case: ReluCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    return {"dx": 0.0}  # dy times 1 or 0: exact


def fd_step(case: ReluCase, name: str, value: np.ndarray) -> np.ndarray:
    # Piecewise linear with its kink at 0: a step of |x| / 2 never crosses it, so the quotient
    # is exact. The finite-difference draws hold no zero (fd_options), where relu has no
    # derivative; the contract's value there (0) is held against torch and TF by the
    # cross-checks on the "zeros" kind.
    return np.abs(value) / 2


FIXTURES: tuple[tuple[str, ReluCase], ...] = (
    ("relu-2d-nonsquare", ReluCase((2, 3, 4, 5))),
    ("relu-2d-exact-zeros", ReluCase((2, 3, 3, 4), kind="zeros")),
    ("relu0d-wide", ReluCase((3, 5), kind="wide")),
    ("relu1d-zeros", ReluCase((2, 2, 7), kind="zeros")),
    ("relu3d-single-sample", ReluCase((1, 2, 2, 3, 4))),
)


HAND_CASES: tuple[HandCase, ...] = (
    # relu on [-2, -0.0, 0, 3]: [0, -0.0, 0, 3] (-0.0 is not < 0: it is copied). With
    # dy = [1, 2, 3, 4] the gradient passes where x > 0 only: at 0 and -0.0 the derivative is
    # 0, so dx = [0, 0, 0, 4].
    HandCase(
        "relu_zeros_and_signs", ReluCase((1, 4)),
        {"x": [[-2.0, -0.0, 0.0, 3.0]], "dy": [[1.0, 2.0, 3.0, 4.0]]},
        {"y": [[0.0, -0.0, 0.0, 3.0]]},
        {"dx": [[0.0, 0.0, 0.0, 4.0]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("relu", "small", ReluCase((2, 3, 9, 9))),
    BenchCase("relu", "medium", ReluCase((8, 16, 32, 32))),
    BenchCase("relu", "large", ReluCase((32, 64, 56, 56))),
)


RECORD = OpRecord(
    name="relu",
    ranks=RANKS,
    case_type=ReluCase,
    functions=lambda r: ("relu", "relu_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fd_options={"kinds": ("normal", "wide")},
    exact_outputs=("y",),
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
