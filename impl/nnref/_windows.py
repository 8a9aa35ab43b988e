"""Windowing shared by convolution and pooling.

``window_view`` reads every window of a padded input at once (conv's im2col); ``tap_slices`` says
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


def tap_slices(
    tap: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    pads_before: tuple[int, int], in_hw: tuple[int, int], out_hw: tuple[int, int],
) -> TapSlices | None:
    """Where kernel tap ``(p, q)`` reads the *unpadded* input, for scattering gradients back.

    Output (i, j) reads input (i*sh + p*dh - top, j*sw + q*dw - left). Returns
    ``((in_rows, in_cols), (out_rows, out_cols))`` such that ``x[..., in_rows, in_cols]`` and
    ``y[..., out_rows, out_cols]`` are the same-shaped (input cell, output) pairs of that tap that
    fall inside the input, or None if the tap reads only padding. Per axis the valid outputs are
    ceil((before - p*d) / s) <= i <= floor((size - 1 + before - p*d) / s), clipped to [0, out).
    """
    in_slices, out_slices = [], []
    for k, s, d, before, size, n_out in zip(
        tap, stride, dilation, pads_before, in_hw, out_hw, strict=True
    ):
        offset = k * d - before  # input index read by output 0
        first = max(0, -(offset // s))
        last = min(n_out - 1, (size - 1 - offset) // s)
        if last < first:
            return None
        in_slices.append(slice(first * s + offset, last * s + offset + 1, s))
        out_slices.append(slice(first, last + 1))
    return (in_slices[0], in_slices[1]), (out_slices[0], out_slices[1])
