"""Windowing shared by convolution and pooling.

``window_view`` reads every window of a padded input at once (conv's im2col); ``tap_reads`` says
where one kernel tap reads the unpadded input, which pooling uses to gather windows and both ops
use to scatter gradients back.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def constant_pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """x (N, C, H, W) zero-padded to (N, C, H + t + b, W + l + r).

    Cheaper than ``np.pad`` at small sizes; returns x itself when no padding is needed (callers
    only read it).
    """
    (top, bottom), (left, right) = pads
    n, c, h, w = x.shape
    if top == bottom == left == right == 0:
        return x
    xp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    xp[:, :, top : top + h, left : left + w] = x
    return xp


def window_view(
    xp: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """Read-only strided view of the windows of an already padded input.

    xp: (N, C, Hp, Wp) -> view (N, C, kh, kw, Ho, Wo) with
    ``view[n, c, p, q, i, j] == xp[n, c, i*sh + p*dh, j*sw + q*dw]``.

    The caller guarantees ``(Ho - 1) * sh + (kh - 1) * dh < Hp`` (likewise for W); the output-size
    helper in ``_checks`` does so. No data is copied.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    if (ho - 1) * sh + (kh - 1) * dh >= xp.shape[2] or (wo - 1) * sw + (kw - 1) * dw >= xp.shape[3]:
        raise AssertionError("window_view: windows reach past the padded input")
    s_n, s_c, s_h, s_w = xp.strides
    shape = (xp.shape[0], xp.shape[1], kh, kw, ho, wo)
    strides = (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw)
    if not xp.flags.c_contiguous:
        return as_strided(xp, shape=shape, strides=strides, writeable=False)
    # Same view as as_strided, built directly: a few microseconds instead of tens, which
    # matters at small shapes.
    view = np.ndarray(shape, dtype=xp.dtype, buffer=xp, strides=strides)
    view.flags.writeable = False
    return view


TapSlices = tuple[tuple[slice, slice], tuple[slice, slice]]


def _axis_reads(
    tap: int, stride: int, dilation: int, before: int, size: int, n_out: int
) -> tuple[slice, slice] | None:
    """Along one axis: (input slice, output slice) of the cells tap ``tap`` reads inside the input.

    Output i reads input i*s + tap*d - before; the valid outputs are
    ceil((before - tap*d) / s) <= i <= floor((size - 1 + before - tap*d) / s), clipped to
    [0, n_out). None if there are none.
    """
    offset = tap * dilation - before  # input index read by output 0
    first = max(0, -(offset // stride))
    last = min(n_out - 1, (size - 1 - offset) // stride)
    if last < first:
        return None
    in_cells = slice(first * stride + offset, last * stride + offset + 1, stride)
    return in_cells, slice(first, last + 1)


def tap_reads(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    pads_before: tuple[int, int], in_hw: tuple[int, int], out_hw: tuple[int, int],
) -> list[tuple[int, int, TapSlices]]:
    """Every kernel tap (p, q) that reads at least one cell of the *unpadded* input, with where.

    Output (i, j) reads input (i*sh + p*dh - top, j*sw + q*dw - left). Each entry is
    ``(p, q, ((in_rows, in_cols), (out_rows, out_cols)))`` such that ``x[..., in_rows, in_cols]``
    and ``y[..., out_rows, out_cols]`` are the same-shaped (input cell, output) pairs of that tap;
    taps that read only padding are left out. Used to gather windows and to scatter gradients
    back, one tap at a time; each axis is worked out once, so the cost is kh + kw, not kh * kw.
    """
    rows = [_axis_reads(p, stride[0], dilation[0], pads_before[0], in_hw[0], out_hw[0])
            for p in range(kernel[0])]
    cols = [_axis_reads(q, stride[1], dilation[1], pads_before[1], in_hw[1], out_hw[1])
            for q in range(kernel[1])]
    return [
        (p, q, ((row[0], col[0]), (row[1], col[1])))
        for p, row in enumerate(rows) if row is not None
        for q, col in enumerate(cols) if col is not None
    ]
