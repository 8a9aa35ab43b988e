"""The one windowing view that serves convolution and pooling."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def constant_pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]],
                 padded_hw: tuple[int, int] | None = None, fill: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) placed at (top, left) in an array of (N, C, Hp, Wp) filled with ``fill``.

    ``padded_hw`` defaults to (H + t + b, W + l + r); pooling asks for more rows/columns at the
    end for ceil_mode windows. Cheaper than ``np.pad`` at small sizes; returns x itself when no
    padding is needed (callers only read it).
    """
    (top, bottom), (left, right) = pads
    n, c, h, w = x.shape
    hp, wp = padded_hw or (h + top + bottom, w + left + right)
    if (hp, wp) == (h, w):
        return x
    xp = np.full((n, c, hp, wp), fill, dtype=x.dtype) if fill else np.zeros(
        (n, c, hp, wp), dtype=x.dtype)
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


def tap_slices(
    tap: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> tuple[slice, slice]:
    """The (H, W) slices of the padded input that kernel tap ``(p, q)`` reads for all outputs.

    ``xp[..., rows, cols]`` has shape (..., Ho, Wo) and equals ``window_view(...)[:, :, p, q]``;
    used to scatter gradients back, one tap at a time.
    """
    (p, q), (sh, sw), (dh, dw), (ho, wo) = tap, stride, dilation, out_hw
    return (
        slice(p * dh, p * dh + (ho - 1) * sh + 1, sh),
        slice(q * dw, q * dw + (wo - 1) * sw + 1, sw),
    )
