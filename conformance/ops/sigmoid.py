"""sigmoid and sigmoid_backward, on (N, C, *S) inputs of spatial rank 0 to 3.

CONTRACT.md, "Activations": y = 1 / (1 + exp(-x)) without overflow for any x; dx = dy *
sigmoid(x) * sigmoid(-x). The case type, value kinds ("wide" reaches |x| up to 1e4, far into
saturation), sampler and corners are shared with the other activations
(conformance/ops/elementwise.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import rounding
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord
from .elementwise import CORNERS, KINDS, RANKS, ElementwiseCase, corners, sample_kind, sample_shape

ORDER = 62


@dataclass(frozen=True)
class SigmoidCase(ElementwiseCase):
    family = "sigmoid"


def sample(d: Any, rank: int | None = None, small: bool = False,
           kinds: tuple[str, ...] = KINDS) -> SigmoidCase:
    return SigmoidCase(sample_shape(d, rank, small), sample_kind(d, kinds))


def _s(x: Any) -> np.ndarray:
    """sigmoid in float64, the exp argument never positive (no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def forward_bounds(case: SigmoidCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    # exp within 2 ulps, 1 + e and the division one rounding each: gamma(4) of the result.
    # Below the smallest normal number the result may be flushed to zero: torch's and TF's
    # float32 kernels return 0 for sigmoid(-90) (8.2e-40, a subnormal), both float64 kernels
    # 0 for sigmoid(-718) (1.5e-312; registered as sigmoid-subnormal-flush), so an absolute
    # tiny(dtype) is allowed as well.
    tiny = rounding.tiny(dtype)
    return {"y": gamma(4, dtype) * _s(a["x"]) + tiny}


def backward_bounds(case: SigmoidCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    # Frameworks compute dy * y * (1 - y) from the rounded y = s (1 + d), |d| <= gamma(4):
    # 1 - y then errs by s |d| absolutely, so dx errs by |dy| (s |d| s + s (1 - s) |d|) plus
    # three roundings (the subtraction, two products) of s (1 - s): at most gamma(7) |dy| s.
    # (It is an absolute error near saturation, s -> 1, where the true dx is tiny: that is what
    # the 1 - y form allows.) Plus |dy| tiny for a flushed subnormal y, as in forward_bounds,
    # and tiny for a subnormal dx itself flushed to zero (JAX's and TF's float32 CPU kernels
    # flush subnormal results of the product, registered as sigmoid-subnormal-flush).
    tiny = rounding.tiny(dtype)
    return {"dx": abs64(a["dy"]) * (gamma(7, dtype) * _s(a["x"]) + tiny) + tiny}


def fd_step(case: SigmoidCase, name: str, value: np.ndarray) -> np.ndarray:
    # Smooth everywhere: a relative step of 1e-4 (Richardson estimates the truncation).
    return 1e-4 * np.maximum(np.abs(value), 1.0)


FIXTURES: tuple[tuple[str, SigmoidCase], ...] = (
    ("sigmoid-2d-nonsquare", SigmoidCase((2, 3, 4, 5))),
    ("sigmoid-2d-wide", SigmoidCase((2, 3, 3, 4), kind="wide")),
    ("sigmoid0d-zeros", SigmoidCase((3, 5), kind="zeros")),
    ("sigmoid1d-wide", SigmoidCase((2, 2, 7), kind="wide")),
    ("sigmoid3d-single-sample", SigmoidCase((1, 2, 2, 3, 4))),
)


HAND_CASES: tuple[HandCase, ...] = (
    # sigmoid(0) = 1/2; sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4; sigmoid(-ln 3) = 1/4.
    # sigmoid' = s (1 - s): 1/4 at 0, 3/16 at +-ln 3; with dy = [4, 16, 16]: dx = [1, 3, 3].
    HandCase(
        "sigmoid_at_0_and_ln3", SigmoidCase((1, 3)),
        {"x": [[0.0, math.log(3.0), -math.log(3.0)]], "dy": [[4.0, 16.0, 16.0]]},
        {"y": [[0.5, 0.75, 0.25]]},
        {"dx": [[1.0, 3.0, 3.0]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("sigmoid", "small", SigmoidCase((2, 3, 9, 9))),
    BenchCase("sigmoid", "medium", SigmoidCase((8, 16, 32, 32))),
    BenchCase("sigmoid", "large", SigmoidCase((32, 64, 56, 56))),
)


RECORD = OpRecord(
    name="sigmoid",
    ranks=RANKS,
    case_type=SigmoidCase,
    functions=lambda r: ("sigmoid", "sigmoid_backward"),
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
