"""elu and elu_backward (with alpha), on (N, C, *S) inputs of spatial rank 0 to 3.

CONTRACT.md, "Activations": y = x for x > 0, alpha * expm1(x) for x <= 0; dx = dy * (1 for
x > 0, alpha * exp(x) for x <= 0), so elu'(0) = alpha (torch's left derivative). The case
type, value kinds, sampler and corners are shared with the other activations
(conformance/ops/elementwise.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..invalid_category import Broken, Ctx, InvalidCategory, has
from ..rounding import abs64, gamma, unit_roundoff
from . import BenchCase, HandCase, OpRecord
from .elementwise import CORNERS, KINDS, RANKS, ElementwiseCase, sample_kind, sample_shape
from .elementwise import corners as elementwise_corners

ORDER = 61
SELU_ALPHA = 1.6732632423543772


@dataclass(frozen=True)
class EluCase(ElementwiseCase):
    family = "elu"
    alpha: float = 1.0

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


def sample(d: Any, rank: int | None = None, small: bool = False,
           kinds: tuple[str, ...] = KINDS) -> EluCase:
    shape = sample_shape(d, rank, small)
    kind = sample_kind(d, kinds)
    alpha = d.choice([1.0, 1.0, 0.5, 2.0, SELU_ALPHA, 0.1], "alpha")
    return EluCase(shape, kind, alpha)


def corners(case: EluCase) -> list[str]:
    out = elementwise_corners(case)
    if case.alpha != 1.0:
        out.append("alpha != 1")
    return out


def forward_bounds(case: EluCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    # x > 0: y = x, exact. x <= 0: alpha * expm1(x): expm1 (or exp) within 2 ulps (libm and the
    # frameworks' vectorised kernels), one rounding for the product with alpha: gamma(4) of
    # the result. A framework that evaluates exp(x) - 1 (TF's kernel) rounds exp(x) first and
    # loses the relative accuracy near 0: that error is u * exp(x) before the subtraction, an
    # absolute term the relative one does not cover.
    x = np.asarray(a["x"], dtype=np.float64)
    alpha = abs(case.alpha)
    with np.errstate(over="ignore"):
        neg = alpha * (gamma(4, dtype) * np.abs(np.expm1(x)) + unit_roundoff(dtype) * np.exp(x))
    return {"y": np.where(x > 0, 0.0, neg)}


def backward_bounds(case: EluCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    # x > 0: dx = dy, exact. x <= 0: dy * alpha * exp(x), or (TF, torch's result-based form)
    # dy * (y + alpha) from the rounded y: y's absolute error is bounded as in forward_bounds
    # by alpha * gamma(4) * (|expm1(x)| + exp(x)) = alpha * gamma(4) (the two add to 1 for
    # x <= 0), plus a rounding each for the sum and the two products: gamma(6) * alpha * |dy|.
    x = np.asarray(a["x"], dtype=np.float64)
    return {"dx": np.where(x > 0, 0.0, gamma(6, dtype) * abs(case.alpha) * abs64(a["dy"]))}


def fd_step(case: EluCase, name: str, value: np.ndarray) -> np.ndarray:
    # Smooth on either side of 0 (its derivative jumps there unless alpha = 1): a relative step
    # of 1e-4, at most |x| / 4 so that neither h nor Richardson's 2h crosses 0. The draws hold
    # no zero (fd_options).
    return np.minimum(1e-4 * np.maximum(np.abs(value), 1.0), np.abs(value) / 4)


FIXTURES: tuple[tuple[str, EluCase], ...] = (
    ("elu-2d-nonsquare", EluCase((2, 3, 4, 5))),
    ("elu-2d-alpha2-zeros", EluCase((2, 3, 3, 4), kind="zeros", alpha=2.0)),
    ("elu0d-wide-alpha-half", EluCase((3, 5), kind="wide", alpha=0.5)),
    ("elu1d-selu-alpha", EluCase((2, 2, 7), alpha=SELU_ALPHA)),
    ("elu3d-zeros", EluCase((1, 2, 2, 3, 4), kind="zeros")),
)


HAND_CASES: tuple[HandCase, ...] = (
    # alpha = 2 on [-ln 2, 0, 1.5, -0.0]: elu(-ln 2) = 2 * (1/2 - 1) = -1 (= -0.5 alpha);
    # elu(0) = 0, elu(1.5) = 1.5, elu(-0.0) = 2 * expm1(-0.0) = -0.0.
    # Backward, dy = [1, 1, 2, 1]: alpha * exp(-ln 2) = 1; at 0 and -0.0 the derivative is
    # alpha * exp(0) = 2 (the left one); at 1.5 it is 1, so dx = [1, 2, 2, 2].
    HandCase(
        "elu_alpha2_at_minus_ln2_and_zero", EluCase((1, 4), alpha=2.0),
        {"x": [[-math.log(2.0), 0.0, 1.5, -0.0]], "dy": [[1.0, 1.0, 2.0, 1.0]]},
        {"y": [[-1.0, 0.0, 1.5, -0.0]]},
        {"dx": [[1.0, 2.0, 2.0, 2.0]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("elu", "small", EluCase((2, 3, 9, 9))),
    BenchCase("elu", "medium", EluCase((8, 16, 32, 32))),
    BenchCase("elu", "large", EluCase((32, 64, 56, 56))),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _bad_alpha(k: Ctx) -> Broken:
    k.args["alpha"] = k.draw(st.sampled_from([np.nan, np.inf, -np.inf, True, "1.0", None]),
                             label="bad alpha")
    return ("alpha",), "alpha"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("bad_alpha", "an elu alpha that is not a finite real number (nan, inf, a "
                    "bool, a string, None)", has("alpha"), _bad_alpha, "ValueError naming alpha"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="elu",
    ranks=RANKS,
    case_type=EluCase,
    float_attributes=("alpha",),
    functions=lambda r: ("elu", "elu_backward"),
    sample=sample,
    corners=corners,
    corner_labels=(*CORNERS, "alpha != 1"),
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fd_smooth=True,
    fd_options={"kinds": ("normal", "wide")},
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
