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
from ._windows import (
    WideLayout,
    add_tap,
    from_planes,
    from_wide,
    to_wide,
    valid_part,
    wide_layout,
    wide_planes,
)


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


class _Wide(NamedTuple):
    layout: WideLayout
    planes: np.ndarray

    def tap(self, t: int) -> np.ndarray:
        return self.layout.tap(self.planes, t)


def _wide(x: np.ndarray, geo: _PoolGeometry) -> _Wide:
    """x's windows in the wide layout, -inf outside x (padding and ceil_mode overhang)."""
    layout = wide_layout(x.shape[2:], geo.kernel, geo.stride, geo.dilation,
                         (geo.pads[0][0], geo.pads[1][0]), geo.out_hw)
    return _Wide(layout, wide_planes(x, layout, -np.inf))


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


def _running_max(ww: _Wide) -> np.ndarray:
    """The maximum over the taps, wide: (N, C, Ho * row_len). np.maximum propagates NaN."""
    best = ww.tap(0).copy()
    for t in range(1, len(ww.layout.taps)):
        np.maximum(best, ww.tap(t), out=best)
    return best


def _winning_tap(x: np.ndarray, geo: _PoolGeometry, ww: _Wide
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Max value and the index (p * kw + q) of the winning tap, wide: (N, C, Ho * row_len).

    A running maximum over the taps gives the values; then each tap equal to the maximum scores
    kh * kw - t and the highest score - the first maximum in row-major tap order - wins: the
    tie rule. Every step is a whole-array call over the taps' contiguous runs, with nothing
    larger than the output allocated (a stack of all the taps' windows would be kh * kw times
    that, and large fresh buffers cost page faults on every call). Padding is -inf, which can be
    the maximum only of a window whose input cells are all -inf (or that has none): those
    windows take their first input cell, looked up by position (-1 if none). NaN wins its
    window as in torch's CPU kernel, the *last* NaN; that correction runs only if some window
    has one.
    """
    n_taps = len(ww.layout.taps)
    best = _running_max(ww)
    # Tap t scores kh * kw - t where it equals the maximum, 0 elsewhere; the best score is the
    # first maximum. Three whole-array calls per tap, on the smallest signed integer type that
    # holds -1 ... kh * kw (int8 up to 11x11 taps).
    tap_type = np.min_scalar_type(-n_taps - 1).type
    top_score = np.zeros(best.shape, dtype=tap_type)
    equal = np.empty(best.shape, dtype=bool)
    score = np.empty_like(top_score)
    for t in range(n_taps):
        np.equal(ww.tap(t), best, out=equal)
        np.multiply(equal, tap_type(n_taps - t), out=score)
        np.maximum(top_score, score, out=top_score)
    best_tap = n_taps - top_score  # n_taps where no tap equals the maximum (NaN)
    # The junk columns of the wide layout read other windows' cells: only the valid part
    # decides whether the rare corrections below are needed.
    if np.isnan(valid_part(best, ww.layout)).any():
        for t in range(n_taps):
            np.copyto(best_tap, t, where=np.isnan(ww.tap(t)))
    all_minus_inf = valid_part(best, ww.layout) == -np.inf
    if all_minus_inf.any():
        best_tap = best_tap.astype(np.int64)  # the first inside tap is an int64 index
        inside = valid_part(best_tap, ww.layout)
        inside[...] = np.where(all_minus_inf, _first_inside_tap(x, geo), inside)
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
        # Values only: a running maximum over the taps. -inf outside x never changes a
        # maximum (a window with no input cell stays -inf) and np.maximum propagates NaN, so
        # this equals the indexed path's values.
        ww = _wide(x, geo)
        return from_wide(_running_max(ww), ww.layout)
    ww = _wide(x, geo)
    best, best_tap = (from_wide(a, ww.layout) for a in _winning_tap(x, geo, ww))
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
    ww = _wide(x, geo)
    _, best_tap = _winning_tap(x, geo, ww)
    # Each window's dy goes to its winner: tap t adds the dy of the windows it won onto the
    # cells it read (padding never wins; overlapping windows accumulate). A window without
    # input cells (tap -1) wins no tap, so its gradient is dropped; the junk columns of the wide
    # layout get dy = 0. A product with the won mask is 4x faster than np.where, but inf * 0
    # would turn a lost window's non-finite dy into NaN: that case takes np.where.
    dy_wide = to_wide(dy, ww.layout)
    finite = np.isfinite(dy).all()
    # The planes are no longer read: they become the accumulator (one large buffer less, and
    # no page faults for a fresh one).
    acc = ww.planes
    acc.flags.writeable = True
    acc[...] = 0
    for t in range(len(ww.layout.taps)):
        won = best_tap == t
        add_tap(acc, ww.layout, t, dy_wide * won if finite else np.where(won, dy_wide, 0))
    dx = from_planes(acc, ww.layout, x.shape)
    return dx
