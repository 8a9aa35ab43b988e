"""Adaptive average pooling at 1, 2 and 3 spatial dimensions: adaptive_avg_pool1d / 2d / 3d.

torch's semantics (CONTRACT.md, "Adaptive pooling"): along an axis of size S with output size O,
bin i covers cells floor(i S / O) .. ceil((i + 1) S / O) - 1; ``None`` keeps the axis. Besides the
record, this module states the bins plainly (:func:`axis_bins`, :func:`bin_cells`), used by the
error model, the adaptive max record and the properties. The sampler's output-size regimes and
corners are shared with adaptive max pooling (``adaptive_max_pool``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cases import Case, values
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 37
RANKS = (1, 2, 3)


@dataclass(frozen=True)
class AdaptiveCase(Case):
    """A case of either adaptive pool (the subclasses fix the family)."""

    family = "adaptive_avg_pool"
    differentiable = ("x",)
    shape: tuple[int, ...]
    output_size: Any
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {"output_size": self.output_size}

    def out_sizes(self) -> tuple[int, ...]:
        """One output size per spatial axis (None -> the input's size)."""
        o = self.output_size
        entries = o if isinstance(o, tuple | list) else (o,) * self.rank
        return tuple(s if e is None else int(e)
                     for e, s in zip(entries, self.shape[2:], strict=True))

    def output_shape(self) -> tuple[int, ...]:
        return (*self.shape[:2], *self.out_sizes())

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": values(rng, self.shape, self.kind)}

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], **self.params()}
        return {"dy": a["dy"], "x": a["x"], **self.params()}


def axis_bins(size: int, out: int) -> list[range]:
    """The contract's bins along one axis: range(floor(i S / O), ceil((i + 1) S / O))."""
    return [range(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def bin_cells(case: AdaptiveCase) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
    """Every output bin (a spatial index) -> its input cells in row-major order."""
    per_axis = [axis_bins(s, o) for s, o in zip(case.shape[2:], case.out_sizes(), strict=True)]
    return {idx: list(itertools.product(*(per_axis[a][i] for a, i in enumerate(idx))))
            for idx in itertools.product(*(range(o) for o in case.out_sizes()))}


def plain_bin_reduce(case: AdaptiveCase, x: np.ndarray, reduce: Any) -> np.ndarray:
    """``reduce`` (over the last axis of (N, C, cells)) of every bin, (N, C, *O), bin by bin."""
    out = np.empty(case.output_shape(), dtype=np.result_type(x, np.float64))
    for idx, cells in bin_cells(case).items():
        where = tuple(np.array(c) for c in zip(*cells, strict=True))
        out[(slice(None), slice(None), *idx)] = reduce(x[(slice(None), slice(None), *where)])
    return out


def bin_counts(case: AdaptiveCase) -> np.ndarray:
    """Cells per bin, (*O), float64."""
    counts = [np.array([len(b) for b in axis_bins(s, o)], dtype=float)
              for s, o in zip(case.shape[2:], case.out_sizes(), strict=True)]
    return math.prod(np.ix_(*counts)) if counts else np.ones(())


def max_bins_per_cell(case: AdaptiveCase) -> int:
    """The most bins one input cell belongs to (product over the axes)."""
    n = 1
    for s, o in zip(case.shape[2:], case.out_sizes(), strict=True):
        per_cell = np.zeros(s, dtype=int)
        for b in axis_bins(s, o):
            per_cell[list(b)] += 1
        n *= int(per_cell.max())
    return n


# -- the sampler (shared with adaptive_max_pool) -----------------------------------------------

# How the output size of an axis relates to its input size S:
#   divides  O < S divides S (bins tile the axis)
#   overlap  O < S does not divide S (neighbouring bins share a cell)
#   larger   O > S (cells repeat)
#   equal    O = S (the identity along that axis)
#   one      O = 1 (the whole axis)
OUTPUT_REGIMES = ("divides", "overlap", "larger", "equal", "one")


def _axis_output(d: Any, size: int, regime: str, a: int) -> int:
    if regime == "divides":
        options = [o for o in range(2, size) if size % o == 0] or [1]  # O = 1 if S is prime
        return d.choice(options, f"O{a}") if size > 1 else size
    if regime == "overlap":
        options = [o for o in range(2, size) if size % o]
        return d.choice(options, f"O{a}") if options else size + 1
    if regime == "larger":
        return d.integer(size + 1, 2 * size + 2, f"O{a}")
    if regime == "one":
        return 1
    return size


def sample_geometry(d: Any, rank: int | None, small: bool) -> tuple[tuple[int, ...], Any]:
    """(shape, output_size) with every regime of OUTPUT_REGIMES, None entries and int forms."""
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    mode = d.choice(("global", "per axis", "one regime", "one regime"), "output regime mode")
    if mode == "global":
        out = [1] * r
    elif mode == "one regime":
        regime = d.choice(OUTPUT_REGIMES, "output regime")
        out = [_axis_output(d, s, regime, a) for a, s in enumerate(size)]
    else:
        out = [_axis_output(d, s, d.choice(OUTPUT_REGIMES, f"output regime {a}"), a)
               for a, s in enumerate(size)]
    output_size: Any = tuple(None if o == s and d.boolean(f"None for axis {a}") else o
                             for a, (o, s) in enumerate(zip(out, size, strict=True)))
    if None not in output_size and len(set(out)) == 1 and d.boolean("output_size as an int"):
        output_size = out[0]
    shape = (n, c, *size)
    if small and math.prod(shape) > 400:
        d.reject()
    if math.prod(out) * n * c > 4000:  # large outputs of the "larger" regime: keep cases fast
        d.reject()
    return shape, output_size


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str | None = None
           ) -> AdaptiveCase:
    shape, output_size = sample_geometry(d, rank, small)
    kind = kind or d.choice(["normal", "normal", "ties", "signed_zeros"], "values")
    return AdaptiveCase(shape, output_size, kind)


def geometry_corners(case: AdaptiveCase) -> list[str]:
    n, c, *size = case.shape
    out_sizes = case.out_sizes()
    pairs = list(zip(size, out_sizes, strict=True))
    labels = []
    if any(o < s and s % o == 0 for s, o in pairs):
        labels.append("output divides input")
    if any(o < s and s % o for s, o in pairs):
        labels.append("output does not divide input")
    if any(o > s for s, o in pairs):
        labels.append("output larger than input")
    if any(o == s for s, o in pairs):
        labels.append("output = input")
    if all(o == 1 for o in out_sizes):
        labels.append("output 1 (global)")
    if isinstance(case.output_size, tuple | list) and None in case.output_size:
        labels.append("None in output_size")
    if len(set(size)) > 1:
        labels.append("non-square input")
    if 1 in size:
        labels.append("an axis of size 1")
    if n > 1 and c > 1:
        labels.append("N, C > 1")
    labels.append(f"rank {case.rank}")
    return labels


GEOMETRY_CORNERS = ("output divides input", "output does not divide input",
                    "output larger than input", "output = input", "output 1 (global)",
                    "None in output_size", "non-square input", "an axis of size 1", "N, C > 1",
                    "rank 1", "rank 2", "rank 3")


def forward_bounds(case: AdaptiveCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    # y = (sum of the bin's m = prod(K) cells) / m. Summing m terms in any order errs by
    # gamma(m - 1) * sum|x| (Higham), the division by m (exact in either dtype) adds one rounding.
    # An implementation may instead take means axis by axis (nnref does): stage a sums K_a terms
    # of the previous stage and divides once, K_a roundings on terms bounded by the means of
    # |x|, sum(K) in all. A framework may multiply by a rounded 1 / m (one more), a composition
    # round once more again: n = prod(K) + sum(K) + 2 covers either way.
    longest = tuple(max(len(b) for b in axis_bins(s, o))
                    for s, o in zip(case.shape[2:], case.out_sizes(), strict=True))
    n_terms = math.prod(longest) + sum(longest) + 2
    mean_abs = plain_bin_reduce(case, abs64(a["x"]), lambda v: v.mean(axis=-1))
    return {"y": gamma(n_terms, dtype) * mean_abs}


def backward_bounds(case: AdaptiveCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    # dx sums dy / count over the (at most m) bins holding a cell: m - 1 roundings of the sum,
    # and up to one division per axis (per-axis counts) and one more rounding of a product of
    # counts: gamma(m + r + 1) * m * max|dy / count| bounds it.
    m = max_bins_per_cell(case)
    g = abs64(a["dy"]) / bin_counts(case)
    return {"dx": gamma(m + case.rank + 1, dtype) * m * g.max(initial=0.0)}


def fd_step(case: AdaptiveCase, name: str, value: np.ndarray) -> np.ndarray:
    # Linear in x: any h gives the exact derivative; h = 1 keeps rounding small.
    return np.ones(value.shape)


FIXTURES: tuple[tuple[str, AdaptiveCase], ...] = (
    ("adaptive_avg_pool2d-7to3-overlap", AdaptiveCase((2, 2, 7, 7), 3)),
    ("adaptive_avg_pool2d-nonsquare-divides-overlap", AdaptiveCase((2, 3, 6, 5), (3, 2))),
    ("adaptive_avg_pool2d-larger-than-input", AdaptiveCase((2, 2, 3, 2), (5, 3))),
    ("adaptive_avg_pool2d-none-keeps-axis", AdaptiveCase((2, 2, 5, 6), (None, 4))),
    ("adaptive_avg_pool2d-global", AdaptiveCase((2, 3, 5, 4), 1)),
    ("adaptive_avg_pool1d-10to4", AdaptiveCase((2, 3, 10), 4)),
    ("adaptive_avg_pool1d-3to7-larger", AdaptiveCase((2, 2, 3), (7,))),
    ("adaptive_avg_pool3d-mixed", AdaptiveCase((1, 2, 3, 5, 4), (2, None, 6))),
)


_X44 = [[[[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]]]

HAND_CASES: tuple[HandCase, ...] = (
    # 4x4 -> 3x3: along each axis start = floor(4i / 3) = 0, 1, 2, end = ceil(4(i + 1) / 3) =
    # 2, 3, 4: bins {0, 1}, {1, 2}, {2, 3}, two cells each, four cells per output bin.
    # y[0, 0] = (1 + 2 + 5 + 6) / 4 = 3.5, y[0, 1] = (2 + 3 + 6 + 7) / 4 = 4.5, y[0, 2] = 5.5;
    # each row of bins is 4 more: 7.5, 8.5, 9.5; 11.5, 12.5, 13.5.
    # With dy = 4 everywhere, every bin passes 1 to each of its cells: dx counts the bins
    # holding a cell, 1 2 2 1 per axis (cells 1 and 2 are in two bins).
    HandCase(
        "adaptive_avg_pool2d_4x4_to_3x3",
        AdaptiveCase((1, 1, 4, 4), 3),
        {"x": _X44, "dy": [[[[4.0, 4, 4], [4, 4, 4], [4, 4, 4]]]]},
        {"y": [[[[3.5, 4.5, 5.5], [7.5, 8.5, 9.5], [11.5, 12.5, 13.5]]]]},
        {"dx": [[[[1.0, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]]]},
    ),
    # 1-D, 2 -> 3 (output larger than input): bins {0}, {0, 1}, {1}. x = [2, 6]: y = [2, 4, 6].
    # dy = [1, 2, 3]: cell 0 gets 1 + 2 / 2 = 2, cell 1 gets 2 / 2 + 3 = 4.
    HandCase(
        "adaptive_avg_pool1d_2_to_3",
        AdaptiveCase((1, 1, 2), 3),
        {"x": [[[2.0, 6]]], "dy": [[[1.0, 2, 3]]]},
        {"y": [[[2.0, 4, 6]]]},
        {"dx": [[[2.0, 4]]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("adaptive avgpool global", "large", AdaptiveCase((32, 512, 7, 7), 1)),
    BenchCase("adaptive avgpool 56->7", "large", AdaptiveCase((32, 64, 56, 56), 7)),
    BenchCase("adaptive avgpool 32->5", "medium", AdaptiveCase((8, 16, 32, 32), 5)),
    BenchCase("adaptive avgpool1d 1024->10", "medium", AdaptiveCase((8, 32, 1024), 10)),
    BenchCase("adaptive avgpool3d 16->3", "medium", AdaptiveCase((4, 8, 16, 16, 16), 3)),
)


RECORD = OpRecord(
    name="adaptive_avg_pool",
    ranks=RANKS,
    case_type=AdaptiveCase,
    functions=lambda r: (f"adaptive_avg_pool{r}d", f"adaptive_avg_pool{r}d_backward"),
    sample=sample,
    corners=geometry_corners,
    corner_labels=GEOMETRY_CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
