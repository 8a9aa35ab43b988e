"""What the activation records share (one record per activation: its own module): the case
type of an elementwise op on (N, C, *S) arrays, its value kinds, the sampler and the corners.
Nothing here names an op.

The "rank" of an elementwise case is the number of spatial axes of its (N, C, *S) input,
0 to 3, like batch norm's: an activation takes any shape, and the records draw these four so
that every test runs at each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..cases import Case
from . import draws

RANKS = (0, 1, 2, 3)

# Value kinds of an activation's input:
#   normal   standard normal (no exact zero, almost surely)
#   zeros    standard normal with about a third of the elements exactly 0.0 or -0.0 (random
#            signs): the derivative-at-0 rule and the sign of relu(-0.0)
#   wide     random signs, magnitudes log-uniform in [1e-2, 1e4]: sigmoid's saturation (|x| > 20
#            in float32, > 40 in float64), exp's overflow / underflow in elu's and sigmoid's
#            evaluation
KINDS = ("normal", "zeros", "wide")
# |x| above which sigmoid rounds to 0 or 1 in float32 (20) and float64 (40): the "wide" kind
# must reach beyond it
SATURATION = 40.0


def activation_values(rng: np.random.Generator, shape: tuple[int, ...], kind: str
                      ) -> np.ndarray:
    """Input values of one kind (see KINDS), float64."""
    x = rng.standard_normal(shape)
    if kind == "zeros":  # at least one zero (the first element), a third of them on average
        zero = rng.random(shape) < 1 / 3
        zero.reshape(-1)[0] = True
        x = np.where(zero, np.where(rng.random(shape) < 0.5, -0.0, 0.0), x)
    elif kind == "wide":  # at least one |x| beyond SATURATION (the first element)
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        magnitude = 10.0 ** rng.uniform(-2, 4, size=shape)
        magnitude.reshape(-1)[0] = 10.0 ** rng.uniform(np.log10(SATURATION) + 0.01, 4)
        x = sign * magnitude
    return x


@dataclass(frozen=True)
class ElementwiseCase(Case):
    """An activation on an (N, C, *S) input; subclasses set ``family`` (and add parameters)."""

    differentiable = ("x",)
    shape: tuple[int, ...]
    kind: str = "normal"
    # Arrays that take any ndim from this minimum up (conformance.generic_categories reads this):
    # an activation takes any shape, 0-d included.
    min_ndim: ClassVar[dict[str, int]] = {"x": 0, "dy": 0}

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {}

    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.shape)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": activation_values(rng, self.shape, self.kind)}

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], **self.params()}
        return {"dy": a["dy"], "x": a["x"], **self.params()}


def sample_shape(d: Any, rank: int | None, small: bool) -> tuple[int, ...]:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    if d.integer(0, 5, "N = 1") == 0:  # one case in six: a single sample
        n = 1
    return (n, c, *draws.sizes(d, r, small))


def sample_kind(d: Any, kinds: tuple[str, ...]) -> str:
    # "normal" twice: half the draws are ordinary values
    return d.choice(("normal", *kinds) if "normal" in kinds else kinds, "values")


def corners(case: ElementwiseCase) -> list[str]:
    out = [f"rank {case.rank}"]
    if case.kind == "zeros":  # every array of the kind holds +-0.0 (activation_values)
        out.append("exact zeros")
    if case.kind == "wide":  # every array of the kind holds some |x| > SATURATION
        out.append("large |x|")
    n, c = case.shape[:2]
    if n > 1 and c > 1:
        out.append("N, C > 1")
    if n == 1:
        out.append("N = 1")
    if len(set(case.shape[2:])) > 1:
        out.append("non-square input")
    return out


CORNERS = ("exact zeros", "large |x|", "N, C > 1", "N = 1",
           "non-square input", "rank 0", "rank 1", "rank 2", "rank 3")
