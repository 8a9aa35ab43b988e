"""2-D max pooling with kernel, stride, padding, dilation, ceil_mode and indices.

Tie rule: the first maximum in row-major window order wins (and receives the whole gradient);
NaN wins its window (the last NaN in window order, as torch's CPU kernel); padded cells are outside
the window, never candidates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

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
from ._windows import TapSlices, tap_reads


class _PoolGeometry(NamedTuple):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: Pads
    out_hw: tuple[int, int]


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
        output_size(lambda axis=axis: f"max_pool2d {axis} (x {x.shape})",
                    size, *p, k, s, d, ceil_mode)
        for axis, size, p, k, s, d in zip(
            ("height", "width"), x.shape[2:], pads, kernel, stride_hw, dilation_hw, strict=True
        )
    )
    return _PoolGeometry(kernel, stride_hw, dilation_hw, pads, out_hw)  # type: ignore[arg-type]


def _reads(x: np.ndarray, geo: _PoolGeometry) -> list[tuple[int, TapSlices]]:
    """(t = p * kw + q, where tap t reads inside x) for every tap that reads an input cell."""
    return [
        (p * geo.kernel[1] + q, where)
        for p, q, where in tap_reads(geo.kernel, geo.stride, geo.dilation,
                                     (geo.pads[0][0], geo.pads[1][0]), x.shape[2:], geo.out_hw)
    ]


def _tap_planes(x: np.ndarray, geo: _PoolGeometry, reads: list[tuple[int, TapSlices]]
                ) -> np.ndarray:
    """The windows gathered tap-major: (kh * kw, N, C, Ho, Wo), -inf where a tap reads padding.

    Copied tap by tap from the unpadded input (no padded copy of x), so every later step runs
    over contiguous planes.
    """
    planes = np.empty((geo.kernel[0] * geo.kernel[1], *x.shape[:2], *geo.out_hw), dtype=x.dtype)
    filled = set()
    for tap, ((in_rows, in_cols), (out_rows, out_cols)) in reads:
        inside = planes[tap][:, :, out_rows, out_cols]
        if inside.shape != planes.shape[1:]:
            planes[tap] = -np.inf
        inside[...] = x[:, :, in_rows, in_cols]
        filled.add(tap)
    for tap in set(range(len(planes))) - filled:  # taps that read only padding
        planes[tap] = -np.inf
    return planes


def _first_inside_tap(x: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Per output position, the first tap (row-major) on an input cell, or -1: (Ho, Wo).

    Inside-ness is separable (row inside and column inside), so the first inside tap is
    (first inside row p, first inside column q).
    """
    firsts = []
    for axis in (0, 1):
        taps = (np.arange(geo.out_hw[axis])[:, None] * geo.stride[axis]
                + np.arange(geo.kernel[axis])[None, :] * geo.dilation[axis] - geo.pads[axis][0])
        inside = (taps >= 0) & (taps < x.shape[2 + axis])
        firsts.append(np.where(inside.any(axis=1), inside.argmax(axis=1), -1))
    p, q = firsts[0][:, None], firsts[1][None, :]
    return np.where((p < 0) | (q < 0), -1, p * geo.kernel[1] + q)


def _winning_tap(x: np.ndarray, geo: _PoolGeometry, reads: list[tuple[int, TapSlices]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Max value and the index (p * kw + q) of the winning tap, shapes (N, C, Ho, Wo).

    The windows are gathered once, tap-major, into (kh * kw, N, C, Ho, Wo), so the maximum and
    the winner are reductions over the first axis (whole-array calls, no loop over taps). The
    winner is the first tap equal to the maximum - the tie rule: each equal tap t scores
    kh * kw - t and the highest score wins. Padding is -inf, which can be the maximum only of a
    window whose input cells are all -inf (or that has none): those windows take their first
    input cell, looked up by position (-1 if none). NaN wins its window as in torch's CPU
    kernel, the *last* NaN; that correction runs only if some window has one.
    """
    windows = _tap_planes(x, geo, reads)
    n_taps = windows.shape[0]
    best = windows.max(axis=0)  # NaN propagates
    # The smallest signed integer type that holds -1 ... kh * kw (int8 up to 11x11 taps).
    tap_type = np.min_scalar_type(-n_taps - 1)
    score = np.arange(n_taps, 0, -1, dtype=tap_type).reshape(-1, 1, 1, 1, 1)  # kh*kw - t
    best_tap = n_taps - ((windows == best) * score).max(axis=0)  # n_taps if none is equal
    if np.isnan(best).any():
        # t + 1 for each NaN tap, 0 otherwise: the maximum is the last NaN (+ 1).
        last_nan = (np.isnan(windows) * score[::-1]).max(axis=0) - 1
        best_tap = np.where(last_nan >= 0, last_nan, best_tap)
    all_minus_inf = best == -np.inf
    if all_minus_inf.any():
        first = np.broadcast_to(_first_inside_tap(x, geo), best_tap.shape)
        best_tap = np.where(all_minus_inf, first, best_tap)
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
    if not return_indices:
        # Values only: a running maximum over the taps, each clipped to the cells inside x, so
        # padding never enters (a window with no input cell stays -inf). np.maximum propagates
        # NaN, so this equals the indexed path's values.
        best = np.full((*x.shape[:2], *geo.out_hw), -np.inf, dtype=x.dtype)
        for _, ((in_rows, in_cols), (out_rows, out_cols)) in _reads(x, geo):
            inside = best[:, :, out_rows, out_cols]
            np.maximum(inside, x[:, :, in_rows, in_cols], out=inside)
        return best
    best, best_tap = _winning_tap(x, geo, _reads(x, geo))
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
    reads = _reads(x, geo)
    _, best_tap = _winning_tap(x, geo, reads)
    # Each window's dy goes to its winner: grads[t] holds the dy of the windows tap t won, and
    # is added back tap by tap onto the cells it read (clipped to the unpadded input; padding
    # never wins). Overlapping windows accumulate. A window without input cells (tap -1) wins
    # no tap, so its gradient is dropped. A product with the won mask is 4x faster than
    # np.where, but inf * 0 would turn a lost window's non-finite dy into NaN: that takes np.where.
    dx = np.zeros(x.shape, dtype=x.dtype)
    taps = np.arange(geo.kernel[0] * geo.kernel[1], dtype=best_tap.dtype).reshape(-1, 1, 1, 1, 1)
    won = best_tap == taps  # (kh * kw, N, C, Ho, Wo)
    grads = dy * won if np.isfinite(dy).all() else np.where(won, dy, 0)
    for tap, ((in_rows, in_cols), (out_rows, out_cols)) in reads:
        dx[:, :, in_rows, in_cols] += grads[tap][:, :, out_rows, out_cols]
    return dx
