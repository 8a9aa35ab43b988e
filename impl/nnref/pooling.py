"""2-D max pooling with kernel, stride, padding, dilation, ceil_mode and indices.

Tie rule: the first maximum in row-major window order wins (and receives the whole gradient);
NaN wins its window (the last NaN in window order, as torch's CPU kernel); padded cells are outside
the window, never candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import (
    Pads,
    expect_shape,
    flag,
    float_array,
    int_pair,
    output_size,
    padding_pairs,
    same_dtype,
)
from ._windows import tap_slices, window_view


@dataclass(frozen=True)
class _PoolGeometry:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: Pads
    out_hw: tuple[int, int]
    padded_hw: tuple[int, int]


def _geometry(
    x: np.ndarray, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any
) -> _PoolGeometry:
    kernel = int_pair("kernel_size", kernel_size)
    stride_hw = kernel if stride is None else int_pair("stride", stride)
    dilation_hw = int_pair("dilation", dilation)
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int or pairs of ints, got {padding!r}")
    pads = padding_pairs("padding", padding)
    for (before, after), k in zip(pads, kernel, strict=True):
        if max(before, after) > k // 2:
            raise ValueError(
                f"padding {padding!r} must be <= half the kernel_size {kernel_size!r} "
                f"(at most {k // 2}), got {max(before, after)}"
            )
    ceil_mode = flag("ceil_mode", ceil_mode)
    out_hw = tuple(
        output_size(f"max_pool2d {axis} (x {x.shape})", size, *p, k, s, d, ceil_mode)
        for axis, size, p, k, s, d in zip(
            ("height", "width"), x.shape[2:], pads, kernel, stride_hw, dilation_hw, strict=True
        )
    )
    # ceil_mode may let the last window run past the padding: pad (never-winning) cells for it.
    padded_hw = tuple(
        max(size + sum(p), (o - 1) * s + d * (k - 1) + 1)
        for size, p, o, s, d, k in zip(
            x.shape[2:], pads, out_hw, stride_hw, dilation_hw, kernel, strict=True
        )
    )
    return _PoolGeometry(kernel, stride_hw, dilation_hw, pads, out_hw, padded_hw)  # type: ignore[arg-type]


def _winning_tap(x: np.ndarray, geo: _PoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Max value and the index (p * kw + q) of the winning tap, shapes (N, C, Ho, Wo).

    A window with no input cell keeps -inf and tap -1.
    """
    (top, _), (left, _) = geo.pads
    height, width = x.shape[2:]
    extra = ((0, 0), (0, 0), (top, geo.padded_hw[0] - height - top),
             (left, geo.padded_hw[1] - width - left))
    view = window_view(np.pad(x, extra), geo.kernel, geo.stride, geo.dilation, geo.out_hw)
    (ho, wo), (sh, sw), (dh, dw) = geo.out_hw, geo.stride, geo.dilation
    best = np.full((*x.shape[:2], ho, wo), -np.inf, dtype=x.dtype)
    best_tap = np.full(best.shape, -1, dtype=np.int64)
    for p in range(geo.kernel[0]):
        rows = np.arange(ho) * sh + p * dh - top
        row_inside = (rows >= 0) & (rows < height)
        for q in range(geo.kernel[1]):
            cols = np.arange(wo) * sw + q * dw - left
            inside = row_inside[:, None] & ((cols >= 0) & (cols < width))[None, :]
            value = view[:, :, p, q]
            take = inside & ((best_tap < 0) | (value > best) | np.isnan(value))
            best = np.where(take, value, best)
            best_tap = np.where(take, p * geo.kernel[1] + q, best_tap)
    return best, best_tap


def max_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: Any = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max over each (dilated) window.

    x: (N, C, H, W) -> y: (N, C, Ho, Wo) [, indices int64 (N, C, Ho, Wo): flat row * W + col]
    Ho = floor_or_ceil((H + t + b - dh*(kh - 1) - 1) / sh) + 1, the ceil_mode rule in CONTRACT.md.
    """
    x = float_array("x", x, ndim=4)
    geo = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = flag("return_indices", return_indices)
    best, best_tap = _winning_tap(x, geo)
    if not return_indices:
        return best
    kw = geo.kernel[1]
    p, q = best_tap // kw, best_tap % kw
    rows = np.arange(geo.out_hw[0])[:, None] * geo.stride[0] + p * geo.dilation[0] - geo.pads[0][0]
    cols = np.arange(geo.out_hw[1])[None, :] * geo.stride[1] + q * geo.dilation[1] - geo.pads[1][0]
    indices = np.where(best_tap < 0, -1, rows * x.shape[3] + cols)
    return best, indices


def max_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: Any = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: dy (N, C, Ho, Wo) -> dx (N, C, H, W).

    Each window's gradient goes to its winner (first maximum); overlapping windows accumulate.
    """
    dy = float_array("dy", dy, ndim=4)
    x = float_array("x", x, ndim=4)
    same_dtype("x", x, dy=dy)
    geo = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    expect_shape("dy", dy, (*x.shape[:2], *geo.out_hw))
    _, best_tap = _winning_tap(x, geo)
    dxp = np.zeros((*x.shape[:2], *geo.padded_hw), dtype=x.dtype)
    zero = np.zeros((), dtype=x.dtype)
    for p in range(geo.kernel[0]):
        for q in range(geo.kernel[1]):
            rows, cols = tap_slices((p, q), geo.stride, geo.dilation, geo.out_hw)
            dxp[:, :, rows, cols] += np.where(best_tap == p * geo.kernel[1] + q, dy, zero)
    (top, _), (left, _) = geo.pads
    return np.ascontiguousarray(dxp[:, :, top : top + x.shape[2], left : left + x.shape[3]])
