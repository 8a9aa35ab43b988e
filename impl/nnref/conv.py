"""2-D convolution (cross-correlation) with stride, padding, dilation, groups and bias."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._checks import (
    Pads,
    expect_shape,
    float_array,
    int_pair,
    output_size,
    padding_pairs,
    same_dtype,
)
from ._windows import constant_pad, tap_reads, window_view


class _ConvGeometry(NamedTuple):
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: Pads
    groups: int
    out_hw: tuple[int, int]


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """"same" padding along one axis: output ceil(size / stride), odd extra pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _geometry(
    x: np.ndarray, w: np.ndarray, stride: Any, padding: Any, dilation: Any, groups: Any
) -> _ConvGeometry:
    stride_hw = int_pair("stride", stride)
    dilation_hw = int_pair("dilation", dilation)
    if isinstance(groups, bool | np.bool_) or not isinstance(groups, int | np.integer):
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    n_in, n_out = x.shape[1], w.shape[0]
    if groups < 1 or n_in % groups or n_out % groups:
        raise ValueError(
            f"groups={groups} must be >= 1 and divide both the input channels {n_in} "
            f"and the output channels {n_out}"
        )
    if w.shape[1] * groups != n_in:
        raise ValueError(
            f"w has shape {w.shape}: expected w.shape[1] == C / groups = {n_in} / {groups}"
            f" (x has shape {x.shape})"
        )
    kernel = w.shape[2:]  # >= 1x1: float_array rejects empty arrays
    if isinstance(padding, str):
        if padding == "valid":
            pads: Pads = ((0, 0), (0, 0))
        elif padding == "same":
            pads = tuple(  # type: ignore[assignment]
                same_pads(size, k, s, d)
                for size, k, s, d in zip(x.shape[2:], kernel, stride_hw, dilation_hw, strict=True)
            )
        else:
            raise ValueError(f"padding must be an int, pairs, 'valid' or 'same', got {padding!r}")
    else:
        pads = padding_pairs("padding", padding)
    out_hw = tuple(
        output_size(lambda axis=axis: f"conv2d {axis} (x {x.shape}, w {w.shape})",
                    size, *p, k, s, d)
        for axis, size, p, k, s, d in zip(
            ("height", "width"), x.shape[2:], pads, kernel, stride_hw, dilation_hw, strict=True
        )
    )
    return _ConvGeometry(stride_hw, dilation_hw, pads, groups, out_hw)  # type: ignore[arg-type]


def _columns(x: np.ndarray, kernel: tuple[int, int], geo: _ConvGeometry) -> np.ndarray:
    """im2col: (N, C, H, W) -> (N, G, C/G * kh * kw, Ho * Wo), one contiguous copy.

    Per sample and group the columns are one GEMM operand, so ``w @ cols`` is a single batched
    matmul whose result is already NCHW (no transpose of the output), and the padded copy is
    released as soon as the columns exist.
    """
    view = window_view(constant_pad(x, geo.pads), kernel, geo.stride, geo.dilation, geo.out_hw)
    n, c, kh, kw, ho, wo = view.shape
    # Always a fresh buffer (a reshape could alias x for 1x1 kernels), which the backward
    # reuses for the column gradient.
    cols = np.empty((n, geo.groups, c // geo.groups * kh * kw, ho * wo), dtype=x.dtype)
    cols.reshape(view.shape)[...] = view
    return cols


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlate x with w.

    x: (N, C, H, W), w: (Co, C/G, kh, kw), b: (Co,) or None -> y: (N, Co, Ho, Wo) with
    Ho = floor((H + t + b - dh*(kh - 1) - 1) / sh) + 1 (likewise Wo); see CONTRACT.md.
    """
    x = float_array("x", x, ndim=4)
    w = float_array("w", w, ndim=4)
    if b is not None:
        b = float_array("b", b, ndim=1)
        expect_shape("b", b, (w.shape[0],))
    same_dtype("x", x, w=w, b=b)
    geo = _geometry(x, w, stride, padding, dilation, groups)
    cols = _columns(x, w.shape[2:], geo)  # (N, G, K, P), K = C/G * kh * kw, P = Ho * Wo
    n_out = w.shape[0]
    w_rows = w.reshape(geo.groups, n_out // geo.groups, -1)  # (G, Co/G, K)
    y = np.matmul(w_rows, cols)  # (N, G, Co/G, P): NCHW once reshaped
    del cols
    if b is not None:
        y += b.reshape(geo.groups, -1, 1)
    return y.reshape(x.shape[0], n_out, *geo.out_hw)


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` given the upstream gradient dy: (N, Co, Ho, Wo).

    Returns (dx, dw, db) with the shapes of x (N, C, H, W), w (Co, C/G, kh, kw) and b (Co,).
    """
    dy = float_array("dy", dy, ndim=4)
    x = float_array("x", x, ndim=4)
    w = float_array("w", w, ndim=4)
    same_dtype("x", x, w=w, dy=dy)
    geo = _geometry(x, w, stride, padding, dilation, groups)
    n, c, h, width = x.shape
    n_out, _, kh, kw = w.shape
    expect_shape("dy", dy, (n, n_out, *geo.out_hw))
    db = dy.sum(axis=(0, 2, 3))
    dy_cols = dy.reshape(n, geo.groups, n_out // geo.groups, -1)  # (N, G, Co/G, P), no copy

    cols = _columns(x, (kh, kw), geo)  # (N, G, K, P), K = C/G * kh * kw
    # dw = sum over samples of dy_n @ cols_n^T: one batched matmul (BLAS reads the transposed
    # operand in place), then a reduction over the small (N, G, Co/G, K) stack.
    dw = np.matmul(dy_cols, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
    # The column gradient has the columns' shape: reuse their buffer (peak memory).
    w_cols = w.reshape(geo.groups, n_out // geo.groups, -1).transpose(0, 2, 1)  # (G, K, Co/G)
    dcols = np.matmul(w_cols, dy_cols, out=cols).reshape(n, c, kh, kw, *geo.out_hw)
    # col2im: add each tap's gradient back onto the input cells it read. Taps are clipped to
    # the unpadded input, so padding never needs a buffer of its own.
    dx = np.zeros(x.shape, dtype=x.dtype)
    pads_before = (geo.pads[0][0], geo.pads[1][0])
    for p, q, ((in_rows, in_cols), (out_rows, out_cols)) in tap_reads(
        (kh, kw), geo.stride, geo.dilation, pads_before, (h, width), geo.out_hw
    ):
        dx[:, :, in_rows, in_cols] += dcols[:, :, p, q, out_rows, out_cols]
    return dx, dw, db
