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
from ._windows import constant_pad, window_view


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


def _windows_of(x: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Window view (N, C, kh, kw, Ho, Wo) of x padded with -inf (see _winning_tap)."""
    (top, _), (left, _) = geo.pads
    xp = constant_pad(x, ((top, 0), (left, 0)), geo.padded_hw, fill=-np.inf)
    return window_view(xp, geo.kernel, geo.stride, geo.dilation, geo.out_hw)


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


def _winning_tap(x: np.ndarray, geo: _PoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Max value and the index (p * kw + q) of the winning tap, shapes (N, C, Ho, Wo).

    The windows are gathered once into (N, C, Ho, Wo, kh * kw) and ``argmax`` returns the
    first maximum in row-major tap order - the tie rule. Padding is -inf, which can be the
    first maximum only of a window whose input cells are all -inf (or that has none): those
    windows take their first input cell, looked up by position (-1 if none). NaN wins its
    window as in torch's CPU kernel, the *last* NaN; that correction runs only if x has NaN.
    """
    view = _windows_of(x, geo)
    n, c, kh, kw, ho, wo = view.shape
    windows = np.empty((n, c, ho, wo, kh * kw), dtype=x.dtype)
    windows.reshape(n, c, ho, wo, kh, kw)[...] = view.transpose(0, 1, 4, 5, 2, 3)
    best_tap = windows.argmax(axis=-1)
    if np.isnan(x).any():
        is_nan = np.isnan(windows)
        last_nan = kh * kw - 1 - is_nan[..., ::-1].argmax(axis=-1)
        best_tap = np.where(is_nan.any(axis=-1), last_nan, best_tap)
    best = np.take_along_axis(windows, best_tap[..., None], axis=-1)[..., 0]
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
        # Values only: a running maximum over the taps. -inf padding never changes a maximum
        # and np.maximum propagates NaN, so this equals the indexed path's values.
        view = _windows_of(x, geo)
        best = view[:, :, 0, 0].copy()
        for p in range(geo.kernel[0]):
            for q in range(geo.kernel[1]):
                if p or q:
                    np.maximum(best, view[:, :, p, q], out=best)
        return best
    best, best_tap = _winning_tap(x, geo)
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
    # Each window's dy goes to its winner; np.bincount adds the windows that share a winner.
    # Flat offsets are into the padded planes (a window without input cells, tap -1, sends
    # its gradient to an out-of-plane slot that is dropped).
    (top, _), (left, _) = geo.pads
    hp, wp = geo.padded_hw
    p, q = np.divmod(best_tap, geo.kernel[1])
    rows = np.arange(geo.out_hw[0])[:, None] * geo.stride[0] + p * geo.dilation[0]
    cols = np.arange(geo.out_hw[1])[None, :] * geo.stride[1] + q * geo.dilation[1]
    planes = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[0], x.shape[1], 1, 1)
    flat = np.where(best_tap < 0, planes.size * hp * wp, (planes * hp + rows) * wp + cols)
    dxp = np.bincount(flat.ravel(), weights=dy.ravel(), minlength=planes.size * hp * wp + 1)
    dxp = dxp[:-1].reshape(*x.shape[:2], hp, wp)
    return dxp[:, :, top : top + x.shape[2], left : left + x.shape[3]].astype(x.dtype)
