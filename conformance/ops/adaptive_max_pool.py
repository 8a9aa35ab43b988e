"""Adaptive max pooling at 1, 2 and 3 spatial dimensions: adaptive_max_pool1d / 2d / 3d.

The bins of adaptive average pooling (``adaptive_avg_pool``: the same case fields, sampler
geometry and corners), the rules of max pooling: the first maximum in row-major bin order, the
last NaN, flat indices in the plane / volume. Besides the record, :func:`first_max_indices`
states the tie rule by brute force over each bin's cell list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord
from .adaptive_avg_pool import (
    GEOMETRY_CORNERS,
    AdaptiveCase,
    bin_cells,
    geometry_corners,
    max_bins_per_cell,
    sample_geometry,
)

ORDER = 38
RANKS = (1, 2, 3)


@dataclass(frozen=True)
class AdaptiveMaxCase(AdaptiveCase):
    family = "adaptive_max_pool"
    return_indices: bool = True

    def outputs(self, direction: str) -> tuple[str, ...]:
        if direction == "forward":
            return ("y", "indices") if self.return_indices else ("y",)
        return ("dx",)

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        args = super().call_args(direction, a)
        if direction == "forward" and self.return_indices:
            args["return_indices"] = True
        return args

    def values_only(self) -> AdaptiveMaxCase | None:
        return dataclasses.replace(self, return_indices=False) if self.return_indices else None


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str | None = None,
           return_indices: bool | None = None) -> AdaptiveMaxCase:
    shape, output_size = sample_geometry(d, rank, small)
    kind = kind or d.choice(["ties", "normal", "unique", "signed_zeros"], "values")
    if return_indices is None:
        return_indices = d.boolean("return_indices")
    return AdaptiveMaxCase(shape, output_size, kind, return_indices)


def corners(case: AdaptiveMaxCase) -> list[str]:
    out = geometry_corners(case)
    if case.kind in ("ties", "signed_zeros"):
        out.append("ties")
    if case.return_indices:
        out.append("return_indices")
    return out


CORNERS = (*GEOMETRY_CORNERS, "ties", "return_indices")


def forward_bounds(case: AdaptiveMaxCase, a: Mapping[str, np.ndarray], dtype: Any
                   ) -> dict[str, Any]:
    # A selection: exact. (Indices are integers: exact.)
    return {"y": 0.0, "indices": 0.0}


def backward_bounds(case: AdaptiveMaxCase, a: Mapping[str, np.ndarray], dtype: Any
                    ) -> dict[str, Any]:
    # A cell can win every bin holding it (at most m): their dy add up, m - 1 roundings.
    m = max_bins_per_cell(case)
    return {"dx": gamma(m, dtype) * m * abs64(a["dy"]).max(initial=0.0)}


def fd_step(case: AdaptiveMaxCase, name: str, value: np.ndarray) -> np.ndarray:
    # "unique" inputs have gaps of 1 between values: h = 1/4 cannot change a winner.
    return np.full(value.shape, 0.25)


def first_max_indices(case: AdaptiveMaxCase, x: np.ndarray) -> np.ndarray:
    """The tie rule by brute force: per bin, the first maximum of its cells in row-major order,
    as a flat offset in the plane / volume (NaN-free x)."""
    n, c, *size = case.shape
    flat_x = x.reshape(n, c, -1)
    out = np.empty(case.output_shape(), dtype=np.int64)
    for idx, cells in bin_cells(case).items():
        flat = np.array([np.ravel_multi_index(cell, size) for cell in cells])
        out[(slice(None), slice(None), *idx)] = flat[np.argmax(flat_x[:, :, flat], axis=2)]
    return out


FIXTURES: tuple[tuple[str, AdaptiveMaxCase], ...] = (
    ("adaptive_max_pool2d-7to3-overlap", AdaptiveMaxCase((2, 2, 7, 7), 3)),
    ("adaptive_max_pool2d-ties-nonsquare", AdaptiveMaxCase((2, 3, 6, 5), (4, 3), kind="ties")),
    ("adaptive_max_pool2d-larger-than-input-ties",
     AdaptiveMaxCase((2, 2, 3, 2), (5, 3), kind="ties")),
    ("adaptive_max_pool2d-none-keeps-axis", AdaptiveMaxCase((2, 2, 5, 6), (None, 4))),
    ("adaptive_max_pool2d-global-ties", AdaptiveMaxCase((2, 3, 5, 4), 1, kind="ties")),
    ("adaptive_max_pool2d-values-only", AdaptiveMaxCase((2, 2, 6, 7), (4, 5),
                                                        return_indices=False)),
    ("adaptive_max_pool1d-10to4-ties", AdaptiveMaxCase((2, 3, 10), 4, kind="ties")),
    ("adaptive_max_pool1d-3to7-larger", AdaptiveMaxCase((2, 2, 3), (7,))),
    ("adaptive_max_pool3d-mixed-ties",
     AdaptiveMaxCase((1, 2, 3, 5, 4), (2, None, 6), kind="ties")),
)


HAND_CASES: tuple[HandCase, ...] = (
    # 4x4 -> 3x3: bins {0, 1}, {1, 2}, {2, 3} along each axis (start = floor(4i / 3), end =
    # ceil(4(i + 1) / 3)). x (ties on purpose):
    #   3 1 3 0
    #   0 3 2 3
    #   1 2 0 1
    #   2 0 2 2
    # bin (0, 0) = [3 1; 0 3]: the first 3, (0, 0), flat 0; (0, 1) = [1 3; 3 2]: (0, 2), flat 2;
    # (0, 2) = [3 0; 2 3]: (0, 2), flat 2; (1, 0) = [0 3; 1 2]: (1, 1), 5; (1, 1) = [3 2; 2 0]:
    # (1, 1), 5; (1, 2) = [2 3; 0 1]: (1, 3), 7; (2, 0) = [1 2; 2 0]: the first 2, (2, 1), 9;
    # (2, 1) = [2 0; 0 2]: (2, 1), 9; (2, 2) = [0 1; 2 2]: (3, 2), 14.
    # dy = 1 .. 9 row by row: cell 0 gets 1, cell 2 gets 2 + 3, cell 5 gets 4 + 5, cell 7 gets
    # 6, cell 9 gets 7 + 8, cell 14 gets 9.
    HandCase(
        "adaptive_max_pool2d_4x4_to_3x3_ties",
        AdaptiveMaxCase((1, 1, 4, 4), 3),
        {"x": [[[[3.0, 1, 3, 0], [0, 3, 2, 3], [1, 2, 0, 1], [2, 0, 2, 2]]]],
         "dy": [[[[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]]]},
        {"y": [[[[3.0, 3, 3], [3, 3, 3], [2, 2, 2]]]],
         "indices": [[[[0, 2, 2], [5, 5, 7], [9, 9, 14]]]]},
        {"dx": [[[[1.0, 0, 5, 0], [0, 9, 0, 6], [0, 15, 0, 0], [0, 0, 9, 0]]]]},
    ),
    # 1-D, 2 -> 3: bins {0}, {0, 1}, {1}. x = [5, 5] (a tie): the middle bin takes the first 5,
    # index 0; indices [0, 0, 1]; dy = [1, 2, 3]: dx = [1 + 2, 3].
    HandCase(
        "adaptive_max_pool1d_2_to_3_tie",
        AdaptiveMaxCase((1, 1, 2), 3),
        {"x": [[[5.0, 5]]], "dy": [[[1.0, 2, 3]]]},
        {"y": [[[5.0, 5, 5]]], "indices": [[[0, 0, 1]]]},
        {"dx": [[[3.0, 3]]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    # values only, as torch's F.adaptive_max_pool*d times them by default
    BenchCase("adaptive maxpool global", "large",
              AdaptiveMaxCase((32, 512, 7, 7), 1, return_indices=False)),
    BenchCase("adaptive maxpool 56->7", "large",
              AdaptiveMaxCase((32, 64, 56, 56), 7, return_indices=False)),
    BenchCase("adaptive maxpool 32->5", "medium",
              AdaptiveMaxCase((8, 16, 32, 32), 5, return_indices=False)),
    BenchCase("adaptive maxpool1d 1024->10", "medium",
              AdaptiveMaxCase((8, 32, 1024), 10, return_indices=False)),
    BenchCase("adaptive maxpool3d 16->3", "medium",
              AdaptiveMaxCase((4, 8, 16, 16, 16), 3, return_indices=False)),
)


RECORD = OpRecord(
    name="adaptive_max_pool",
    ranks=RANKS,
    case_type=AdaptiveMaxCase,
    functions=lambda r: (f"adaptive_max_pool{r}d", f"adaptive_max_pool{r}d_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fd_options={"kind": "unique"},
    exact_outputs=("y", "indices"),
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
