"""Max pooling at 1, 2 and 3 spatial dimensions: max_pool1d, max_pool2d, max_pool3d.

Besides the record, this module states the tie rule plainly (:func:`first_max_indices`: explicit
index lists, no windowing helper), the brute-force reference the suite checks indices against.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cases import Case, pads_of, spatial, values, window_count, window_taps
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 30
RANKS = (1, 2, 3)


@dataclass(frozen=True)
class PoolCase(Case):
    family = "max_pool"
    differentiable = ("x",)
    shape: tuple[int, ...]
    kernel_size: Any
    stride: Any = None
    padding: Any = 0
    dilation: Any = 1
    ceil_mode: bool = False
    kind: str = "normal"
    return_indices: bool = True

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "ceil_mode": self.ceil_mode}

    def geometry(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...],
                                tuple[tuple[int, int], ...]]:
        """(kernel, stride, dilation, pads), one entry per spatial axis."""
        r = self.rank
        k = spatial(self.kernel_size, r)
        s = k if self.stride is None else spatial(self.stride, r)
        return k, s, spatial(self.dilation, r), pads_of(self.padding, r)

    def output_shape(self) -> tuple[int, ...]:
        k, s, d, p = self.geometry()
        out = tuple(window_count(self.shape[2 + i], *p[i], k[i], s[i], d[i], self.ceil_mode)
                    for i in range(self.rank))
        return (*self.shape[:2], *out)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": values(rng, self.shape, self.kind)}

    def outputs(self, direction: str) -> tuple[str, ...]:
        if direction == "forward":
            return ("y", "indices") if self.return_indices else ("y",)
        return ("dx",)

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            extra = {"return_indices": True} if self.return_indices else {}
            return {"x": a["x"], **self.params(), **extra}
        return {"dy": a["dy"], "x": a["x"], **self.params()}

    def values_only(self) -> PoolCase | None:
        return dataclasses.replace(self, return_indices=False) if self.return_indices else None

    def every_window_sees_input(self) -> bool:
        """False when some dilated window covers only padding (contract: -inf and index -1).

        The sampler avoids that corner: frameworks report garbage indices there (registry
        entry torch-maxpool-empty-window), so it is checked by dedicated tests and fixtures.
        """
        k, s, d, p = self.geometry()
        out = self.output_shape()[2:]
        for axis in range(self.rank):
            taps = window_taps(out[axis], s[axis], k[axis], d[axis], p[axis][0])
            inside = (taps >= 0) & (taps < self.shape[2 + axis])
            if not inside.any(axis=1).all():
                return False
        return True


def sample(d: Any, rank: int | None = None, small: bool = False, kind: str | None = None,
           return_indices: bool | None = None) -> PoolCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    regime, kernel, stride, dilation = draws.windows(d, r)
    p = draws.pads(d, kernel)  # each pad <= kernel // 2 (the contract's limit)
    default_stride = regime == "tiling" and d.boolean("default stride")
    if default_stride:  # stride = kernel_size; windows tile the input
        dilation = (1,) * r
    ceil_mode = d.boolean("ceil_mode")
    kind = kind or d.choice(["ties", "normal", "unique", "signed_zeros"], "values")
    if return_indices is None:  # the values alone are one code path, values and indices another
        return_indices = d.boolean("return_indices")
    case = PoolCase((n, c, *size), draws.spatial_form(d, kernel, "kernel_size"),
                    None if default_stride else draws.spatial_form(d, stride, "stride"),
                    draws.padding_form(d, p), draws.spatial_form(d, dilation, "dilation"),
                    ceil_mode, kind, return_indices)
    if min(case.output_shape()[2:]) < 1 or not case.every_window_sees_input():
        d.reject()
    if small and math.prod(case.shape) > 400:
        d.reject()
    return case


def corners(case: PoolCase) -> list[str]:
    k, s, d, p = case.geometry()
    out = draws.window_corners(case.shape, k, s, d, p, case.ceil_mode)
    if case.stride is None:
        out.append("default stride")
    if case.kind in ("ties", "signed_zeros"):
        out.append("ties")
    return out


CORNERS = ("stride 1, kernel > 1, dilation 1", "stride > kernel extent",
           "overlapping strided windows", "dilation > 1", "pad = kernel // 2",
           "window starts in padding", "asymmetric padding", "ceil_mode extra window",
           "non-square input", "an axis of size 1", "N, C > 1", "default stride", "ties",
           "rank 1", "rank 2", "rank 3")


def forward_bounds(case: PoolCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    # A selection: exact. (Indices are integers: exact.)
    return {"y": 0.0, "indices": 0.0}


def backward_bounds(case: PoolCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    # A cell can win in at most ceil(extent / stride) windows per axis; their dy add up.
    k, s, d, _ = case.geometry()
    n = math.prod(-(-(d[i] * (k[i] - 1) + 1) // s[i]) for i in range(case.rank))
    return {"dx": gamma(n, dtype) * n * abs64(a["dy"]).max(initial=0.0)}


def fd_step(case: PoolCase, name: str, value: np.ndarray) -> np.ndarray:
    # "unique" inputs have gaps of 1 between values: h = 1/4 cannot change a winner.
    return np.full(value.shape, 0.25)


def first_max_indices(case: PoolCase, x: np.ndarray) -> np.ndarray:
    """The tie rule by brute force over explicit index lists (no windowing helper): per
    window, the first maximum among its input cells in row-major window order, as a flat
    offset in the spatial plane / volume; -1 for a window without input cells. (NaN-free x.)
    """
    k, s, d, p = case.geometry()
    n, c, *size = case.shape
    out_size = case.output_shape()[2:]
    flat_x = x.reshape(n, c, -1)
    out = np.empty((n, c, *out_size), dtype=np.int64)
    for window in itertools.product(*(range(o) for o in out_size)):
        cells = [
            np.ravel_multi_index(cell, size)
            for cell in itertools.product(*(
                [w * s[a] + t * d[a] - p[a][0] for t in range(k[a])] for a, w in
                enumerate(window)))
            if all(0 <= cell[a] < size[a] for a in range(len(size)))
        ]
        if not cells:
            out[(slice(None), slice(None), *window)] = -1
            continue
        flat = np.array(cells)
        out[(slice(None), slice(None), *window)] = flat[np.argmax(flat_x[:, :, flat], axis=2)]
    return out


FIXTURES: tuple[tuple[str, PoolCase], ...] = (
    ("max_pool2d-k2-default-stride", PoolCase((2, 2, 6, 7), 2)),
    ("max_pool2d-k3-s2-pad1-overlap", PoolCase((2, 2, 6, 7), 3, stride=2, padding=1)),
    ("max_pool2d-ties-k3-s1", PoolCase((2, 2, 5, 6), 3, stride=1, kind="ties")),
    ("max_pool2d-ties-k2-s1-pad1", PoolCase((2, 2, 4, 5), 2, stride=1, padding=1, kind="ties")),
    ("max_pool2d-ceil-mode-partial", PoolCase((2, 2, 5, 7), 2, stride=2, ceil_mode=True)),
    ("max_pool2d-ceil-mode-drop-last",
     PoolCase((1, 2, 5, 5), 2, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d-ceil-mode-ties-k3-s2",
     PoolCase((2, 2, 6, 8), 3, stride=2, ceil_mode=True, kind="ties")),
    ("max_pool2d-dilation2", PoolCase((2, 2, 6, 7), 2, stride=1, dilation=2)),
    ("max_pool2d-dilation2-pad1-s2", PoolCase((2, 2, 7, 8), 3, stride=2, padding=1, dilation=2)),
    ("max_pool2d-asymmetric-padding",
     PoolCase((2, 2, 5, 6), 3, stride=2, padding=((1, 0), (0, 1)))),
    ("max_pool2d-asymmetric-padding-ties",
     PoolCase((2, 2, 5, 6), 2, stride=1, padding=((0, 1), (1, 0)), kind="ties")),
    ("max_pool2d-nonsquare-kernel", PoolCase((2, 2, 5, 7), (2, 3), stride=(1, 2), padding=1)),
    ("max_pool2d-unique-values", PoolCase((2, 2, 6, 6), 3, stride=2, kind="unique")),
    ("max_pool2d-empty-windows",
     PoolCase((1, 2, 3, 2), 2, stride=1, padding=1, dilation=(1, 3))),
    # 1-D and 3-D: stride 1 with ties (the index bug the random checks once missed), ceil_mode,
    # padding before only, a non-cubic volume
    ("max_pool1d-ties-k3-s1-pad1", PoolCase((2, 3, 9), 3, stride=1, padding=1, kind="ties")),
    ("max_pool1d-ceil-mode-stride3", PoolCase((2, 2, 10), 2, stride=3, ceil_mode=True)),
    ("max_pool3d-ties-k2-s1", PoolCase((2, 2, 3, 4, 5), 2, stride=1, kind="ties")),
    ("max_pool3d-k3-s2-pad-mixed-ceil",
     PoolCase((1, 2, 4, 5, 6), (3, 2, 3), stride=2, padding=(1, (1, 0), 0), ceil_mode=True)),
)


HAND_CASES: tuple[HandCase, ...] = (
    # kernel 2, stride 2, ceil_mode on 4x5: Wo = ceil(3/2) + 1 = 3, the last window holds only
    # column 4. Ties on purpose: window (0, 1) = [3 0; 1 3] -> first 3 at (0, 2), flat 2;
    # (1, 0) = [4 4; 1 0] -> (2, 0), flat 10; (1, 1) = [0 1; 2 2] -> (3, 2), flat 17.
    HandCase(
        "max_pool2d_ties_ceil_mode",
        PoolCase((1, 1, 4, 5), 2, stride=2, ceil_mode=True),
        {"x": [[[[1.0, 3, 3, 0, 2], [2, 0, 1, 3, 1], [4, 4, 0, 1, 2], [1, 0, 2, 2, 0]]]],
         "dy": [[[[1.0, 2, 3], [4, 5, 6]]]]},
        {"y": [[[[3.0, 3, 2], [4, 2, 2]]]], "indices": [[[[1, 2, 4], [10, 17, 14]]]]},
        {"dx": [[[[0.0, 1, 2, 0, 3], [0, 0, 0, 0, 0], [4, 0, 0, 0, 6], [0, 0, 5, 0, 0]]]]},
    ),
    # kernel 3, stride 2, padding 1 on 3x4: windows overlap at column 1 and row 1; padded cells
    # never win. Window (0, 1) = rows 0-1, cols 1-3 = [5 2 0; 1 5 4]: the first 5, flat 1, the
    # same winner as window (0, 0), so dx[0, 1] = dy[0, 0] + dy[0, 1] = 3.
    HandCase(
        "max_pool2d_overlap_padding",
        PoolCase((1, 1, 3, 4), 3, stride=2, padding=1),
        {"x": [[[[1.0, 5, 2, 0], [3, 1, 5, 4], [0, 2, 1, 3]]]], "dy": [[[[1.0, 2], [3, 4]]]]},
        {"y": [[[[5.0, 5], [3, 5]]]], "indices": [[[[1, 1], [4, 6]]]]},
        {"dx": [[[[0.0, 3, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]]},
    ),
    # 1-D, kernel 3, stride 1, padding 1 on [2, 0, 2, 1, 2]: every cell is in three windows and
    # ties decide: window 0 = [pad, 2, 0] -> index 0; window 1 = [2, 0, 2] -> the first 2,
    # index 0; window 2 = [0, 2, 1] -> 2; window 3 = [2, 1, 2] -> 2; window 4 = [1, 2, pad] -> 4.
    # dx with dy = [1, 2, 3, 4, 5]: cell 0 gets 1 + 2, cell 2 gets 3 + 4, cell 4 gets 5.
    HandCase(
        "max_pool1d_ties_stride1_padding",
        PoolCase((1, 1, 5), 3, stride=1, padding=1),
        {"x": [[[2.0, 0, 2, 1, 2]]], "dy": [[[1.0, 2, 3, 4, 5]]]},
        {"y": [[[2.0, 2, 2, 2, 2]]], "indices": [[[0, 0, 2, 2, 4]]]},
        {"dx": [[[3.0, 0, 7, 0, 5]]]},
    ),
    # A window covering no input cell: W = 1 padded by 1 on both sides is [pad, x, pad]; a
    # kernel of 2 dilated by 2 reads columns 0 and 2, both padding, and
    # Wo = (1 + 2 - 2 * (2 - 1) - 1) // 1 + 1 = 1. y is -inf and the index -1 (CONTRACT.md);
    # the window's dy goes nowhere, so dx is 0 in both channels.
    HandCase(
        "max_pool2d_window_of_padding_only",
        PoolCase((1, 2, 1, 1), (1, 2), stride=1, padding=(0, 1), dilation=(1, 2)),
        {"x": [[[[3.0]], [[5.0]]]], "dy": [[[[10.0]], [[20.0]]]]},
        {"y": [[[[-np.inf]], [[-np.inf]]]], "indices": [[[[-1]], [[-1]]]]},
        {"dx": [[[[0.0]], [[0.0]]]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    # values only, as torch's F.max_pool*d times them by default
    *(BenchCase(label, size, PoolCase(shape, k, stride=s, padding=p, return_indices=False))
      for size, shape in (("small", (2, 3, 9, 9)), ("medium", (8, 16, 32, 32)),
                          ("large", (32, 64, 56, 56)))
      for label, k, s, p in (("maxpool k3s2p1", 3, 2, 1), ("maxpool k2s2", 2, 2, 0))),
    BenchCase("maxpool1d k3s2p1", "medium", PoolCase((8, 32, 1024), 3, stride=2, padding=1,
                                                     return_indices=False)),
    BenchCase("maxpool3d k3s2p1", "medium", PoolCase((4, 8, 16, 32, 32), 3, stride=2,
                                                     padding=1, return_indices=False)),
)


RECORD = OpRecord(
    name="max_pool",
    ranks=RANKS,
    case_type=PoolCase,
    functions=lambda r: (f"max_pool{r}d", f"max_pool{r}d_backward"),
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
