"""Max pooling with kernel, stride, padding, dilation, ceil_mode and indices, at spatial rank 1,
2 or 3: max_pool1d / 2d / 3d (and their backwards) are thin wrappers over one rank-generic
implementation.

    x: (N, C, *S)   ->   y: (N, C, *So)  [, indices: int64 (N, C, *So)]
    y[n, c, i] = max over the taps p with input cells of x[n, c, i * s + p * d - before]

The rule (:func:`max_pool_plain` states it directly, as plain code): window i covers the cells
i * s + p * d - before (axis by axis) for every kernel tap p; padded cells are outside the
window, never candidates. Its value is the first maximum in row-major tap order, and exactly
that cell of x (bit for bit: -0.0 before 0.0 gives -0.0); a window holding NaN gives its *last*
NaN (as torch's CPU kernel); a window without any input cell gives -inf and index -1. The index
is the row-major flat offset of the winner inside its spatial plane or volume. Along every axis

    So = floor_or_ceil((S + before + after - d * (k - 1) - 1) / s) + 1,

and with ceil_mode a last window that would start at or beyond S + before is dropped. padding
is p, one entry per axis, or (before, after) pairs, each <= k // 2. The backward: each
window's dy goes to its winner; overlapping windows accumulate.

The fast path (:func:`max_pool2d` and friends) computes the same thing in the wide layout of
``_windows``: a running maximum over the taps, then a score per tap to find the first one equal
to the maximum.
"""

from __future__ import annotations

from math import prod
from typing import Any, NamedTuple

import numpy as np

from ._checks import expect_shape, flag, float_array, layout, same_dtype
from ._windows import (
    WideLayout,
    Windows,
    add_tap,
    from_planes,
    from_wide,
    pool_windows,
    to_wide,
    valid_part,
    wide_planes,
)

_X = {r: layout(r) for r in (1, 2, 3)}
_DY = {r: layout(r, suffix="o") for r in (1, 2, 3)}


def _geometry(op: str, x: np.ndarray, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: Any) -> Windows:
    """The pool's windows over x, its arguments checked; padding takes (before, after) pairs."""
    return pool_windows(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode,
                        symmetric=False)


# ------------------------------------------------------------------------ the rule, plainly


def _tap_cells(x: np.ndarray, geo: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Every tap's values and flat input offsets, stacked in row-major tap order:
    values (N, C, K, *So), -inf where the tap reads no input cell; offsets (K, *So), -1 there."""
    n_taps = prod(geo.kernel)
    values = np.full((*x.shape[:2], n_taps, *geo.out), -np.inf, dtype=x.dtype)
    offsets = np.full((n_taps, *geo.out), -1, dtype=np.int64)
    plane = np.arange(prod(x.shape[2:])).reshape(x.shape[2:])  # flat offset of every cell
    for tap, in_cells, out_cells in geo.reads():
        t = int(np.ravel_multi_index(tap, geo.kernel))
        values[(slice(None), slice(None), t, *out_cells)] = x[(Ellipsis, *in_cells)]
        offsets[(t, *out_cells)] = plane[in_cells]
    return values, offsets


def _plain_winner(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The winning tap per window (N, C, *So): the first maximum over the taps that read an input
    cell (``inside``, (K, *So)), unless the window holds NaN: then its last NaN."""
    n_taps = values.shape[2]
    top = values.max(axis=2, keepdims=True)  # NaN if the window holds one
    first_top = np.argmax((values == top) & inside, axis=2)
    is_nan = np.isnan(values)
    last_nan = n_taps - 1 - np.argmax(is_nan[:, :, ::-1], axis=2)
    return np.where(is_nan.any(axis=2), last_nan, first_top)


def max_pool_plain(
    x: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The max-pool rule written out plainly, at any rank: (y, indices), both (N, C, *So).

    Stacks every tap's values (-inf where the tap reads no input cell), takes the first maximum
    in row-major tap order among the taps on input cells (the last NaN if the window holds
    NaN), and reads the value back from x at the winner; a window without input cells gives
    -inf and index -1. The same result as max_pool{1,2,3}d(..., return_indices=True), without
    the wide layout's tricks; loops over the taps only.
    """
    x = float_array("x", x, (3, 4, 5), "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
    geo = _geometry("max_pool_plain", x, kernel_size, stride, padding, dilation, ceil_mode)
    values, offsets = _tap_cells(x, geo)
    inside = offsets >= 0
    winner = _plain_winner(values, inside)
    y = np.take_along_axis(values, winner[:, :, None], axis=2)[:, :, 0]
    indices = np.take_along_axis(offsets[None, None], winner[:, :, None], axis=2)[:, :, 0]
    empty = ~inside.any(axis=0)  # windows without input cells
    y[:, :, empty] = -np.inf
    indices[:, :, empty] = -1
    return np.ascontiguousarray(y), np.ascontiguousarray(indices)


def max_pool_plain_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """The max-pool gradient written out plainly, at any rank: dx (N, C, *S).

    Each window's dy is added onto its winner (:func:`max_pool_plain`'s index); a window without
    input cells passes nothing. Loops over the taps only: tap t adds the dy of the windows it
    won onto the cells it read (within one tap, distinct windows read distinct cells).
    """
    x = float_array("x", x, (3, 4, 5), "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
    dy = float_array("dy", dy, x.ndim)
    same_dtype("x", x, dy=dy)
    geo = _geometry("max_pool_plain", x, kernel_size, stride, padding, dilation, ceil_mode)
    expect_shape("dy", dy, (*x.shape[:2], *geo.out))
    values, offsets = _tap_cells(x, geo)
    winner = _plain_winner(values, offsets >= 0)
    dx = np.zeros(x.shape, dtype=x.dtype)
    for tap, in_cells, out_cells in geo.reads():
        t = int(np.ravel_multi_index(tap, geo.kernel))
        won = winner[(Ellipsis, *out_cells)] == t
        dx[(Ellipsis, *in_cells)] += np.where(won, dy[(Ellipsis, *out_cells)], 0)
    return dx


# -------------------------------------------------------------------------- the fast path


class _Wide(NamedTuple):
    layout: WideLayout
    planes: np.ndarray

    def tap(self, t: int) -> np.ndarray:
        return self.layout.tap(self.planes, t)


def _wide(x: np.ndarray, geo: Windows) -> _Wide:
    """x's windows in the wide layout, -inf outside x (padding and ceil_mode overhang)."""
    layout = geo.wide()
    return _Wide(layout, wide_planes(x, layout, -np.inf))


def _first_inside_tap(x: np.ndarray, geo: Windows) -> np.ndarray:
    """Per output position, the first tap (row-major) on an input cell, or -1: (*So).

    Inside-ness is separable (inside along every axis), so the first inside tap is made of the
    first inside tap along each axis.
    """
    rank = len(geo.out)
    first_tap: Any = 0
    none_inside: Any = False
    tap_stride = 1
    for a in reversed(range(rank)):
        cells = (np.arange(geo.out[a])[:, None] * geo.stride[a]
                 + np.arange(geo.kernel[a])[None, :] * geo.dilation[a] - geo.before[a])
        inside = (cells >= 0) & (cells < x.shape[2 + a])
        first = np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
        first = first.reshape([-1 if b == a else 1 for b in range(rank)])
        first_tap = first_tap + first * tap_stride
        none_inside = none_inside | (first < 0)
        tap_stride *= geo.kernel[a]
    return np.where(none_inside, -1, first_tap)


def _running_max(ww: _Wide) -> np.ndarray:
    """The maximum over the taps, wide: (N, C, run_len). np.maximum propagates NaN."""
    best = ww.tap(0).copy()
    for t in range(1, len(ww.layout.taps)):
        np.maximum(best, ww.tap(t), out=best)
    return best


def _nan_wins(ww: _Wide, best: np.ndarray, best_tap: np.ndarray) -> None:
    """In place: every window holding NaN takes its last NaN (bits included) and that tap."""
    for t in range(len(ww.layout.taps)):
        tap = ww.tap(t)
        nan = np.isnan(tap)
        np.copyto(best, tap, where=nan)
        np.copyto(best_tap, t, where=nan)


def _exact_zeros(ww: _Wide, best: np.ndarray) -> None:
    """In place: a window whose maximum is zero takes the sign of its *first* zero.

    np.maximum does not keep the first of two equal zeros (its SIMD path can return +0.0 for
    -0.0 then 0.0), so the running maximum's zeros are redone: plainly, the value of the first
    tap equal to the maximum, written in reverse tap order so that the first one stays.
    """
    zero = best == 0
    for t in reversed(range(len(ww.layout.taps))):
        tap = ww.tap(t)
        np.copyto(best, tap, where=zero & (tap == 0))


def _exact_maximum(ww: _Wide, best: np.ndarray) -> np.ndarray:
    """The running maximum ``best`` with the sign of its zeros made exact (in place), returned
    without the junk, contiguous: (N, C, *So).

    Apart from zeros (see :func:`_exact_zeros`) the running maximum already is the winner's
    value bit for bit, NaN placement included (np.maximum propagates NaN; which NaN's payload
    it keeps is left open here, the indexed path takes the last one's). Exact zeros are rare
    in most inputs, so they are looked for on the contiguous result first (one comparison).
    """
    y = from_wide(best, ww.layout)
    if (y == 0).any():
        _exact_zeros(ww, best)
        y = from_wide(best, ww.layout)
    return y


def _winning_tap(x: np.ndarray, geo: Windows, ww: _Wide
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Running maximum (zeros not yet exact, see :func:`_exact_maximum`; a NaN window holds its
    last NaN, bits included) and the index (row-major flat over the kernel) of the winning tap,
    wide: (N, C, run_len).

    A running maximum over the taps gives the values; then each tap equal to the maximum scores
    K - t (K taps) and the highest score - the first maximum in row-major tap order - wins: the
    tie rule. Every step is a whole-array call over the taps' contiguous runs, with nothing
    larger than the output allocated (a stack of all the taps' windows would be K times that,
    and large fresh buffers cost page faults on every call). Padding is -inf, which can be the
    maximum only of a window whose input cells are all -inf (or that has none): those windows
    take their first input cell, looked up by position (-1 if none). NaN wins its window as in
    torch's CPU kernel, the *last* NaN; that correction runs only if some window has one.
    """
    n_taps = len(ww.layout.taps)
    best = _running_max(ww)
    # Tap t scores K - t where it equals the maximum, 0 elsewhere; the best score is the first
    # maximum. Three whole-array calls per tap, on the smallest signed integer type that holds
    # -1 ... K (int8 up to 11x11 taps).
    tap_type = np.min_scalar_type(-n_taps - 1).type
    top_score = np.zeros(best.shape, dtype=tap_type)
    equal = np.empty(best.shape, dtype=bool)
    score = np.empty_like(top_score)
    for t in range(n_taps):
        np.equal(ww.tap(t), best, out=equal)
        np.multiply(equal, tap_type(n_taps - t), out=score)
        np.maximum(top_score, score, out=top_score)
    best_tap = n_taps - top_score  # K where no tap equals the maximum (NaN)
    # The junk of the wide layout reads other windows' cells: only the valid part decides
    # whether the rare corrections below are needed.
    if np.isnan(valid_part(best, ww.layout)).any():
        _nan_wins(ww, best, best_tap)
    all_minus_inf = valid_part(best, ww.layout) == -np.inf
    if all_minus_inf.any():
        best_tap = best_tap.astype(np.int64)  # the first inside tap is an int64 index
        inside = valid_part(best_tap, ww.layout)
        inside[...] = np.where(all_minus_inf, _first_inside_tap(x, geo), inside)
    return best, best_tap


def _flat_indices(best_tap: np.ndarray, x: np.ndarray, geo: Windows) -> np.ndarray:
    """Winning taps (N, C, *So) -> row-major flat offsets of the winners in x's spatial plane or
    volume (-1 where the tap is -1)."""
    rank = len(geo.out)
    taps_left = best_tap
    cells = []  # per axis, the winner's input coordinate
    for a in reversed(range(rank)):
        if a > 0:
            p, taps_left = taps_left % geo.kernel[a], taps_left // geo.kernel[a]
        else:
            p = taps_left
        starts = np.arange(geo.out[a]).reshape([-1 if b == a else 1 for b in range(rank)])
        # The taps come in a small integer type: an int64 dilation makes the product int64
        # (a Python int would keep int8, which wraps for p * d > 127).
        cells.append(starts * geo.stride[a] + p * np.int64(geo.dilation[a]) - geo.before[a])
    flat = cells.pop()
    for a in range(1, rank):
        flat = flat * x.shape[2 + a] + cells.pop()
    return np.where(best_tap < 0, -1, flat)


def _max_pool(
    op: str, rank: int, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
    ceil_mode: Any, return_indices: Any,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The forward pass at any rank; max_pool1d / 2d / 3d fix ``rank`` (and name ``op``)."""
    x = float_array("x", x, rank + 2, _X[rank])
    geo = _geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = flag("return_indices", return_indices)
    ww = _wide(x, geo)
    if not return_indices:
        # Values only: a running maximum over the taps. -inf outside x never changes a
        # maximum (a window with no input cell stays -inf) and np.maximum propagates NaN;
        # with the zeros made exact this equals the indexed path's values bit for bit (NaN
        # payloads aside: the indexed path returns the last NaN's, this one any of them).
        return _exact_maximum(ww, _running_max(ww))
    best, best_tap = _winning_tap(x, geo, ww)  # NaN: the last one's bits
    y = _exact_maximum(ww, best)
    return y, _flat_indices(from_wide(best_tap, ww.layout), x, geo)


def _max_pool_backward(
    op: str, rank: int, dy: Any, x: Any, kernel_size: Any, stride: Any, padding: Any,
    dilation: Any, ceil_mode: Any,
) -> np.ndarray:
    """The backward pass at any rank."""
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x = float_array("x", x, rank + 2, _X[rank])
    same_dtype("x", x, dy=dy)
    geo = _geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    expect_shape("dy", dy, (*x.shape[:2], *geo.out))
    ww = _wide(x, geo)
    _, best_tap = _winning_tap(x, geo, ww)
    # Each window's dy goes to its winner: tap t adds the dy of the windows it won onto the
    # cells it read (padding never wins; overlapping windows accumulate). A window without
    # input cells (tap -1) wins no tap, so its gradient is dropped; the junk of the wide
    # layout gets dy = 0. A product with the won mask is 4x faster than np.where, but inf * 0
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
    return from_planes(acc, ww.layout, x.shape)


def max_pool1d(
    x: np.ndarray,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: Any = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max over each (dilated) window along one spatial axis.

    x: (N, C, L) -> y: (N, C, Lo) [, indices int64 (N, C, Lo): the winner's position l]
    Lo = floor_or_ceil((L + before + after - d*(k - 1) - 1) / s) + 1, the ceil_mode rule in
    CONTRACT.md.
    """
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


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
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: Any = 0,
    dilation: int | tuple[int, int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max over each (dilated) window of a volume.

    x: (N, C, D, H, W) -> y: (N, C, Do, Ho, Wo) [, indices int64 (N, C, Do, Ho, Wo): flat
    (d * H + h) * W + w] with Do = floor_or_ceil((D + before + after - dd*(kd - 1) - 1) / sd) + 1
    (likewise Ho, Wo), the ceil_mode rule in CONTRACT.md.
    """
    return _max_pool("max_pool3d", 3, x, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool1d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: Any = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of :func:`max_pool1d`: dy (N, C, Lo) -> dx (N, C, L).

    Each window's gradient goes to its winner (first maximum); overlapping windows accumulate.
    """
    return _max_pool_backward("max_pool1d", 1, dy, x, kernel_size, stride, padding, dilation,
                              ceil_mode)


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
    return _max_pool_backward("max_pool2d", 2, dy, x, kernel_size, stride, padding, dilation,
                              ceil_mode)


def max_pool3d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: Any = 0,
    dilation: int | tuple[int, int, int] = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of :func:`max_pool3d`: dy (N, C, Do, Ho, Wo) -> dx (N, C, D, H, W).

    Each window's gradient goes to its winner (first maximum); overlapping windows accumulate.
    """
    return _max_pool_backward("max_pool3d", 3, dy, x, kernel_size, stride, padding, dilation,
                              ceil_mode)
