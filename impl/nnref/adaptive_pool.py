"""Adaptive average and max pooling at spatial rank 1, 2 or 3: the output size is given, the bins
follow from it. torch's semantics (F.adaptive_avg_pool{1,2,3}d, F.adaptive_max_pool{1,2,3}d).

    x: (N, C, *S)   ->   y: (N, C, *O)  [, indices: int64 (N, C, *O)],   O = output_size

Along every spatial axis of size S with output size O, bin i covers the cells

    start_i = floor(i * S / O),  end_i = ceil((i + 1) * S / O)   (cells start_i .. end_i - 1),

so every bin holds at least one cell, neighbouring bins may overlap by one cell when O does not
divide S, and O > S repeats cells (S = 2, O = 3: bins {0}, {0, 1}, {1}). ``output_size`` is an int
(every axis) or one entry per axis, each an int >= 1 or None (that axis keeps its size). A bin of
the output is the product of its axes' intervals.

Bins are not strided windows (their starts and lengths vary), so they are not a
``_windows.Windows``; the max rule is max pooling's.

- adaptive average: the mean of the bin's cells; the gradient gives every cell of a bin
  ``dy / (cells in the bin)``; overlapping bins accumulate.
- adaptive max: the first maximum in row-major bin order (the bin's cells in the row-major order
  of the input), exactly that cell of x; a bin holding NaN gives its *last* NaN; the index is the
  row-major flat offset of the winner in its spatial plane or volume; the gradient goes to the
  winner; overlapping bins accumulate. The same rules as max pooling (max_pool.py).

``_bins`` lists, for every bin along one axis, its cells padded to the longest bin by repeating
the bin's last cell (``valid`` marks the real ones); a bin holds at most ceil(S / O) + 1 cells.

- average: axis by axis (the mean of a product of intervals is the mean, axis by axis, of the
  interval means), each a running sum over the bins' taps.
- max: axis by axis too, last axis first, as a running reduction over the taps of the axis's
  bins (a loop over taps; each step reads one cell per bin, so no window-sized copy of the input
  is made): per bin the running maximum, then the first tap equal to it (scores), and for each
  axis reduced so far the cell it came from; where x holds a NaN, masked copies that let the
  last NaN win. Reducing rows before planes keeps the rule: the first maximum in row-major order
  lies in the first row holding the bin's maximum, at that row's first maximum; the last NaN in
  the last row holding a NaN, at that row's last NaN. Values only (no indices): the running
  maxima leading axis first (whole contiguous rows per tap), unless the result holds a zero or a
  NaN, whose bits the rule fixes. :func:`adaptive_max_plain` states the rule directly (one
  gather of every bin's whole window, then its first maximum / last NaN); the suite checks that
  they agree bit for bit.

No loop runs over batch, channels or pixels.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from math import prod
from typing import Any, NamedTuple

import numpy as np

from ._checks import expect_shape, flag, float_array, layout, same_dtype

_X = {r: layout(r) for r in (1, 2, 3)}
_DY = {r: layout(r, suffix="o") for r in (1, 2, 3)}


class _Bins(NamedTuple):
    """One axis: ``cells`` (O, K) the cells of each bin padded with its last cell, ``valid``
    (O, K) which entries are real, ``count`` (O,) cells per bin."""

    cells: np.ndarray
    valid: np.ndarray
    count: np.ndarray


def _output_sizes(output_size: Any, x: np.ndarray, rank: int) -> tuple[int, ...]:
    """``output_size`` as one int per axis (None -> that axis's input size)."""

    def entry(v: Any, size: int) -> int:
        if v is None:
            return size
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
            raise ValueError(f"output_size must be an int >= 1 or one int >= 1 or None per "
                             f"spatial axis, got {output_size!r}")
        if v < 1:
            raise ValueError(f"output_size must be >= 1, got {output_size!r}")
        return int(v)

    if isinstance(output_size, tuple | list):
        if len(output_size) != rank:
            raise ValueError(
                f"output_size must be an int or exactly {rank} entr{'ies' if rank > 1 else 'y'} "
                f"(one per spatial axis, an int or None), got {output_size!r}")
        return tuple(entry(v, s) for v, s in zip(output_size, x.shape[2:], strict=True))
    if output_size is None:
        raise ValueError("output_size must be an int or one entry per spatial axis, got None")
    return tuple(entry(output_size, s) for s in x.shape[2:])


def _bins(size: int, out: int) -> _Bins:
    """The bins of one axis (module docstring): start = floor(i S / O), end = ceil((i+1) S / O)."""
    i = np.arange(out)
    start = i * size // out
    end = -(-(i + 1) * size // out)
    count = end - start
    taps = np.arange(count.max())
    cells = np.minimum(start[:, None] + taps, end[:, None] - 1)
    return _Bins(cells, taps < count[:, None], count)


def _gather(x: np.ndarray, bins: tuple[_Bins, ...]) -> np.ndarray:
    """x (N, C, *S) -> (N, C, O_1, .., O_r, K_1, .., K_r): every bin's cells (padded)."""
    rank = len(bins)
    index = []
    for a, b in enumerate(bins):  # axis a's (O_a, K_a) cells placed at positions (2a, 2a + 1)
        shape = [1] * (2 * rank)
        shape[2 * a], shape[2 * a + 1] = b.cells.shape
        index.append(b.cells.reshape(shape))
    g = x[(slice(None), slice(None), *index)]  # (N, C, O_1, K_1, ..., O_r, K_r)
    order = [0, 1, *(2 + 2 * a for a in range(rank)), *(3 + 2 * a for a in range(rank))]
    return g.transpose(order)


def _setup(rank: int, x: Any, output_size: Any) -> tuple[np.ndarray, tuple[_Bins, ...]]:
    x = float_array("x", x, rank + 2, _X[rank])
    out = _output_sizes(output_size, x, rank)
    return x, tuple(_bins(s, o) for s, o in zip(x.shape[2:], out, strict=True))


def _out_shape(x: np.ndarray, bins: tuple[_Bins, ...]) -> tuple[int, ...]:
    return (*x.shape[:2], *(len(b.count) for b in bins))


def _tap(v: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """v's cells ``index`` along ``axis``: a strided view when they are evenly spaced (every
    tap of evenly dividing bins), else a gather."""
    step = index[1] - index[0] if len(index) > 1 else 1
    if step > 0 and np.array_equal(index, index[0] + step * np.arange(len(index))):
        where = [slice(None)] * v.ndim
        where[axis] = slice(int(index[0]), int(index[-1]) + 1, int(step))
        return v[tuple(where)]
    return np.take(v, index, axis=axis)


def _taps(v: np.ndarray, b: _Bins, axis: int) -> Iterator[np.ndarray]:
    """v's tap k of every bin along ``axis`` (cells ``b.cells[:, k]``), for k = 0, 1, ...: one
    at a time, each a strided view where the bins' k-th cells are evenly spaced, else a gather
    (:func:`_tap`'s choice, made for all taps at once)."""
    out, n_taps = b.cells.shape
    step = b.cells[1] - b.cells[0] if out > 1 else np.ones(n_taps, np.int64)
    even = (step > 0) & (np.diff(b.cells, axis=0) == step).all(axis=0)
    where = [slice(None)] * v.ndim
    for k in range(n_taps):
        if even[k]:
            where[axis] = slice(int(b.cells[0, k]), int(b.cells[-1, k]) + 1, int(step[k]))
            yield v[tuple(where)]
        else:
            yield v.take(b.cells[:, k], axis=axis)


# ------------------------------------------------------------------------------------- average


def _axis_mean(v: np.ndarray, b: _Bins, axis: int) -> np.ndarray:
    """Along one axis of v: (..., S, ...) -> (..., O, ...), each bin's mean of its cells: a
    running sum over the bins' taps (the padded taps of shorter bins add nothing), divided by
    the bins' cell counts."""
    shape = [-1 if a == axis else 1 for a in range(v.ndim)]
    taps = _taps(v, b, axis)
    total = np.array(next(taps))  # every bin has a first cell
    for k, cand in enumerate(taps, start=1):
        if b.valid[:, k].all():
            total += cand
        else:
            total += np.where(b.valid[:, k].reshape(shape), cand, 0)
    return total / b.count.astype(v.dtype).reshape(shape)


def _adaptive_avg(rank: int, x: Any, output_size: Any) -> np.ndarray:
    """The forward pass at any rank: the mean of a product of intervals is the mean, axis by
    axis, of the interval means (one gather per axis)."""
    x, bins = _setup(rank, x, output_size)
    y = x
    for a, b in enumerate(bins):
        y = _axis_mean(y, b, 2 + a)
    return np.ascontiguousarray(y)


def _axis_mean_adjoint(g: np.ndarray, b: _Bins, size: int, axis: int) -> np.ndarray:
    """The adjoint of :func:`_axis_mean`: (..., O, ...) -> (..., S, ...), each cell the sum of
    g / count over the bins that hold it. Cell j's bins form a contiguous range first[j] ..
    first[j] + per_cell[j] - 1: a running sum over that range's taps (a cell in fewer bins
    than the most adds nothing for the taps it lacks), one gather along the axis per tap."""
    member = np.zeros((len(b.count), size), dtype=bool)
    np.put_along_axis(member, b.cells, True, axis=1)  # padding repeats a real cell: harmless
    per_cell = member.sum(axis=0)
    first = np.argmax(member, axis=0)
    shape = [-1 if a == axis else 1 for a in range(g.ndim)]
    g = g / b.count.astype(g.dtype).reshape(shape)
    d = np.array(_tap(g, first, axis))  # every cell is in a bin
    for t in range(1, int(per_cell.max())):
        cand = _tap(g, np.minimum(first + t, first + per_cell - 1), axis)
        holds = t < per_cell
        if holds.all():
            d += cand
        else:
            d += np.where(holds.reshape(shape), cand, 0)
    return d


def _adaptive_avg_backward(rank: int, dy: Any, x: Any, output_size: Any) -> np.ndarray:
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x, bins = _setup(rank, x, output_size)
    same_dtype("x", x, dy=dy)
    expect_shape("dy", dy, _out_shape(x, bins))
    dx = dy
    for a in reversed(range(rank)):
        dx = _axis_mean_adjoint(dx, bins[a], x.shape[2 + a], 2 + a)
    return np.ascontiguousarray(dx)


# ----------------------------------------------------------------------------------------- max


def _axis_max(v: np.ndarray, b: _Bins, axis: int) -> np.ndarray:
    """Along one axis of v (..., S, ...) -> (..., O, ...): each bin's maximum, a running
    np.maximum over the bins' taps (padded taps repeat a real cell: no effect). NaN propagates;
    of two equal zeros either may be kept (the callers make zeros exact)."""
    taps = _taps(v, b, axis)
    best = np.array(next(taps))  # a copy: updated in place below
    for tap in taps:
        np.maximum(best, tap, out=best)
    return best


def _axis_winners(v: np.ndarray, cells: tuple[np.ndarray, ...], b: _Bins, axis: int,
                  nan: bool) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Along one axis of v (..., S, ...) -> (..., O, ...): each bin's best value (the first
    maximum over its taps; once a NaN is seen, the last NaN) and the cell of this axis it came
    from, with the winner's entries of ``cells`` (the cells of the axes reduced before, shaped
    like v). ``nan``: whether v may hold a NaN (then :func:`_axis_winners_nan`).

    The maximum is a running np.maximum; then tap k scores K - k where it equals the maximum
    and the highest score is the first maximum (padded taps repeat the bin's last cell, later,
    so they never score highest). Whole-array calls without a branch per element (a masked
    copy per tap takes one, mispredicted on random data: 65 of 82 ms in 56 -> 7 at (32, 64,
    56, 56) float32). Zeros take the first zero's bits from v."""
    if nan:
        return _axis_winners_nan(v, cells, b, axis)
    shape = [-1 if a == axis else 1 for a in range(v.ndim)]
    best = _axis_max(v, b, axis)
    n_taps = b.cells.shape[1]
    tap_type = np.min_scalar_type(-n_taps - 1).type  # int8 up to 127 taps
    top_score = np.zeros(best.shape, dtype=tap_type)
    equal = np.empty(best.shape, dtype=bool)
    score = np.empty_like(top_score)
    for k, tap in enumerate(_taps(v, b, axis)):
        np.equal(tap, best, out=equal)
        np.multiply(equal, tap_type(n_taps - k), out=score)
        np.maximum(top_score, score, out=top_score)
    first = n_taps - top_score.astype(np.intp)  # every bin holds its maximum: 0 .. K - 1
    here = b.cells[np.arange(len(b.count)).reshape(shape), first]  # the cell along this axis
    if (best == 0).any():  # np.maximum may have kept the other zero
        best = np.take_along_axis(v, here, axis)
    return best, (here, *(np.take_along_axis(c, here, axis) for c in cells))


def _axis_winners_nan(v: np.ndarray, cells: tuple[np.ndarray, ...], b: _Bins, axis: int
                      ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """:func:`_axis_winners` where v may hold a NaN: a running reduction over the bins' taps
    with masked copies (a number is replaced by a larger one or by a NaN, a NaN only by a later
    NaN); padded taps repeat the bin's last cell, which a strict comparison never takes unless
    it is a NaN (then it is the same last cell)."""
    shape = [-1 if a == axis else 1 for a in range(v.ndim)]
    taps = zip(_taps(v, b, axis), *(_taps(c, b, axis) for c in cells), strict=True)
    first, *first_cells = next(taps)
    best = np.array(first)  # copies: updated in place below
    here = np.broadcast_to(b.cells[:, 0].reshape(shape), best.shape).copy()
    carried = [np.array(c) for c in first_cells]
    for k, (cand, *cand_cells) in enumerate(taps, start=1):
        # nothing compares greater than NaN
        take = (cand > best) | np.isnan(cand)
        np.copyto(best, cand, where=take)
        np.copyto(here, b.cells[:, k].reshape(shape), where=take)
        for c, kept in zip(cand_cells, carried, strict=True):
            np.copyto(kept, c, where=take)
    return best, (here, *carried)


def _winners(x: np.ndarray, bins: tuple[_Bins, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(y, indices) (N, C, *O): per bin the first maximum over its cells in row-major order, the
    last NaN if it holds one; the index is the flat offset in the plane / volume. Axis by axis,
    last axis first (module docstring); :func:`_winners_plain` is the rule written directly."""
    rank = len(bins)
    v, cells, nan = x, (), bool(np.isnan(x).any())
    for a in reversed(range(rank)):
        v, cells = _axis_winners(v, cells, bins[a], 2 + a, nan)
    # cells[j]: the winner's cell along axis j (0 .. rank - 1); row-major flat offset
    index = np.zeros(v.shape, dtype=np.int64)
    for a, c in enumerate(cells):
        index = index * x.shape[2 + a] + c
    return np.ascontiguousarray(v), index


def _winners_plain(x: np.ndarray, bins: tuple[_Bins, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(y, indices) (N, C, *O): per bin the first maximum over its cells in row-major order, the
    last NaN if it holds one; the index is the flat offset in the plane / volume.

    The padded entries repeat the bin's last cell along their axis, so the map from a position
    in the (K_1, .., K_r) window to its cell is non-decreasing in row-major order: the first
    position holding the maximum is the first maximal cell and the last NaN position the last
    NaN cell (repeats can neither come first nor last)."""
    rank = len(bins)
    g = _gather(x, bins)
    out = g.shape[2:2 + rank]
    g = g.reshape(*g.shape[:2 + rank], -1)  # (N, C, *O, K) in row-major window order
    top = g.max(axis=-1, keepdims=True)  # NaN if the bin holds one
    winner = np.argmax(g == top, axis=-1)
    is_nan = np.isnan(g)
    if is_nan.any():
        last_nan = g.shape[-1] - 1 - np.argmax(is_nan[..., ::-1], axis=-1)
        winner = np.where(is_nan.any(axis=-1), last_nan, winner)
    y = np.take_along_axis(g, winner[..., None], axis=-1)[..., 0]
    # flat offset of every window position: (*O, K)
    flat = _gather(np.arange(prod(x.shape[2:])).reshape(1, 1, *x.shape[2:]), bins)[0, 0]
    flat = flat.reshape(*out, -1)
    indices = np.take_along_axis(np.broadcast_to(flat, g.shape), winner[..., None], axis=-1)
    return np.ascontiguousarray(y), np.ascontiguousarray(indices[..., 0])


def adaptive_max_plain(x: np.ndarray, output_size: Any) -> tuple[np.ndarray, np.ndarray]:
    """The adaptive max pool rule written out plainly, at the rank of x (N, C, *S): every bin's
    whole window gathered at once ((N, C, *O, K) in row-major order), then its first maximum
    (or last NaN) and that cell's flat offset. -> (y, indices). The pools compute the same by a
    running reduction (module docstring)."""
    if np.ndim(x) not in (3, 4, 5):
        raise ValueError(f"x must be {_X[1]}, {_X[2]} or {_X[3]}, got shape {np.shape(x)}")
    x, bins = _setup(np.ndim(x) - 2, x, output_size)
    return _winners_plain(x, bins)


def _adaptive_max(rank: int, x: Any, output_size: Any, return_indices: Any
                  ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    x, bins = _setup(rank, x, output_size)
    return_indices = flag("return_indices", return_indices)
    if not return_indices:
        # Values only: the maxima axis by axis, leading axis first (its taps are whole
        # contiguous rows or planes: 56 -> 7 at (32, 64, 56, 56) float32 in 5 ms, against 10
        # last axis first). Any order gives the maximum; only which of two equal zeros, and
        # which NaN, is left open: a result holding either takes the rule's path.
        y = x
        for a, b in enumerate(bins):
            y = _axis_max(y, b, 2 + a)
        if not (np.isnan(y).any() or (y == 0).any()):
            return np.ascontiguousarray(y)
    y, indices = _winners(x, bins)
    return (y, indices) if return_indices else y


def _adaptive_max_backward(rank: int, dy: Any, x: Any, output_size: Any) -> np.ndarray:
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x, bins = _setup(rank, x, output_size)
    same_dtype("x", x, dy=dy)
    expect_shape("dy", dy, _out_shape(x, bins))
    _, indices = _winners(x, bins)
    # Each bin's dy onto its winner; bins sharing a winner add up (np.bincount sums the weights
    # of equal positions, in float64: one rounding to x's dtype at the end).
    plane = prod(x.shape[2:])
    nc = x.shape[0] * x.shape[1]
    target = (indices.reshape(nc, -1) + plane * np.arange(nc)[:, None]).ravel()
    if all(int(b.count.sum()) == s for b, s in zip(bins, x.shape[2:], strict=True)):
        # No two bins share a cell along any axis, so no two share a winner: each dy lands
        # alone (the same values as the sum below, without its x-sized float64 buffer; + 0
        # as that sum starts from 0, so a dy of -0.0 gives +0.0).
        dx = np.zeros(nc * plane, dtype=x.dtype)
        dx[target] = dy.reshape(-1) + x.dtype.type(0)
        return dx.reshape(x.shape)
    dx = np.bincount(target, weights=dy.reshape(-1).astype(np.float64), minlength=nc * plane)
    return dx.astype(x.dtype).reshape(x.shape)


# ------------------------------------------------------------------------------------ public


def adaptive_avg_pool1d(x: np.ndarray, output_size: int | tuple[int | None]) -> np.ndarray:
    """Mean over each adaptive bin: x (N, C, L) -> y (N, C, Lo), Lo = output_size (None: L)."""
    return _adaptive_avg(1, x, output_size)


def adaptive_avg_pool2d(x: np.ndarray, output_size: int | tuple[int | None, int | None]
                        ) -> np.ndarray:
    """Mean over each adaptive bin: x (N, C, H, W) -> y (N, C, Ho, Wo)."""
    return _adaptive_avg(2, x, output_size)


def adaptive_avg_pool3d(x: np.ndarray,
                        output_size: int | tuple[int | None, int | None, int | None]
                        ) -> np.ndarray:
    """Mean over each adaptive bin: x (N, C, D, H, W) -> y (N, C, Do, Ho, Wo)."""
    return _adaptive_avg(3, x, output_size)


def adaptive_avg_pool1d_backward(dy: np.ndarray, x: np.ndarray,
                                 output_size: int | tuple[int | None]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool1d`: dy (N, C, Lo) -> dx (N, C, L)."""
    return _adaptive_avg_backward(1, dy, x, output_size)


def adaptive_avg_pool2d_backward(dy: np.ndarray, x: np.ndarray,
                                 output_size: int | tuple[int | None, int | None]
                                 ) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d`: dy (N, C, Ho, Wo) -> dx (N, C, H, W)."""
    return _adaptive_avg_backward(2, dy, x, output_size)


def adaptive_avg_pool3d_backward(dy: np.ndarray, x: np.ndarray,
                                 output_size: int | tuple[int | None, int | None, int | None]
                                 ) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool3d`: dy (N, C, Do, Ho, Wo) -> dx (N, C, D, H, W)."""
    return _adaptive_avg_backward(3, dy, x, output_size)


def adaptive_max_pool1d(x: np.ndarray, output_size: int | tuple[int | None],
                        return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """First maximum of each adaptive bin: x (N, C, L) -> y (N, C, Lo) (and indices l)."""
    return _adaptive_max(1, x, output_size, return_indices)


def adaptive_max_pool2d(x: np.ndarray, output_size: int | tuple[int | None, int | None],
                        return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """First maximum of each adaptive bin: x (N, C, H, W) -> y (N, C, Ho, Wo) (and indices
    h * W + w)."""
    return _adaptive_max(2, x, output_size, return_indices)


def adaptive_max_pool3d(x: np.ndarray,
                        output_size: int | tuple[int | None, int | None, int | None],
                        return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """First maximum of each adaptive bin: x (N, C, D, H, W) -> y (N, C, Do, Ho, Wo) (and
    indices (d * H + h) * W + w)."""
    return _adaptive_max(3, x, output_size, return_indices)


def adaptive_max_pool1d_backward(dy: np.ndarray, x: np.ndarray,
                                 output_size: int | tuple[int | None]) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool1d`: dy (N, C, Lo) -> dx (N, C, L)."""
    return _adaptive_max_backward(1, dy, x, output_size)


def adaptive_max_pool2d_backward(dy: np.ndarray, x: np.ndarray,
                                 output_size: int | tuple[int | None, int | None]
                                 ) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool2d`: dy (N, C, Ho, Wo) -> dx (N, C, H, W)."""
    return _adaptive_max_backward(2, dy, x, output_size)


def adaptive_max_pool3d_backward(dy: np.ndarray, x: np.ndarray,
                                 output_size: int | tuple[int | None, int | None, int | None]
                                 ) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool3d`: dy (N, C, Do, Ho, Wo) -> dx (N, C, D, H, W)."""
    return _adaptive_max_backward(3, dy, x, output_size)
