"""Convolution (cross-correlation) with stride, padding, dilation, groups and bias, at spatial
rank 1, 2 or 3: conv1d / conv2d / conv3d are thin wrappers over one rank-generic implementation.

    x: (N, C, *S)   w: (Co, C/G, *k)   b: (Co,) or None   ->   y: (N, Co, *So)

    y[n, o, i] = b[o] + sum_{c, p} w[o, c, p] * xpad[n, g(o) * C/G + c, i * s + p * d]

with i, p, s, d multi-indices over the r spatial axes (i * s + p * d taken axis by axis),
g(o) = o // (Co / G) the group of output channel o and xpad x zero-padded by (before, after)
on each axis. Along every spatial axis

    So = floor((S + before + after - d * (k - 1) - 1) / s) + 1.

``padding`` is p, one entry per axis (p or (before, after)), "valid" (0) or "same": So =
ceil(S / s), total pad max((So - 1) * s + d * (k - 1) + 1 - S, 0), split before = total // 2,
after = total - before. The windows are ``_windows.Windows``: the forward reads them all as one
strided view (im2col) and multiplies by w in one batched GEMM; the backward gives

    dx = the column gradient w^T @ dy added back onto the cells each tap read (col2im),
    dw[o, c, p] = sum_{n, i} dy[n, o, i] * xpad[n, g(o) * C/G + c, i * s + p * d],
    db[o] = sum_{n, i} dy[n, o, i].
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from ._checks import expect_shape, float_array, groups_int, int_tuple, layout, same_dtype
from ._windows import Windows, conv_pads, sliding_windows

_X = {r: layout(r) for r in (1, 2, 3)}
_W = {r: layout(r, "Co, C/G", prefix="k", lower=True) for r in (1, 2, 3)}
_DY = {r: layout(r, "N, Co", suffix="o") for r in (1, 2, 3)}


def _geometry(
    op: str, x: np.ndarray, w: np.ndarray, stride: Any, padding: Any, dilation: Any, groups: Any
) -> tuple[Windows, int]:
    """The windows of conv (x's spatial axes, w's kernel) and the number of groups, checked."""
    rank = x.ndim - 2
    strides = int_tuple("stride", stride, rank)
    dilations = int_tuple("dilation", dilation, rank)
    groups = groups_int(groups)
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
    kernel = w.shape[2:]  # >= 1 per axis: float_array rejects empty arrays
    pads = conv_pads(padding, x.shape[2:], kernel, strides, dilations)
    win = sliding_windows(lambda axis: f"{op} {axis} (x {x.shape}, w {w.shape})", x.shape[2:],
                          kernel, strides, dilations, pads)
    return win, groups


def _columns(x: np.ndarray, win: Windows, groups: int) -> np.ndarray:
    """im2col: (N, C, *S) -> (N, G, C/G * prod(k), prod(So)), one contiguous copy.

    Per sample and group the columns are one GEMM operand, so ``w @ cols`` is a single batched
    matmul whose result is already channels-first (no transpose of the output), and the padded
    copy is released as soon as the columns exist.
    """
    view = win.view(win.padded(x))  # (N, C, *k, *So)
    n, c = x.shape[:2]
    # Always a fresh buffer (a reshape could alias x for 1x1 kernels), which the backward
    # reuses for the column gradient.
    cols = np.empty((n, groups, c // groups * prod(win.kernel), prod(win.out)), dtype=x.dtype)
    cols.reshape(view.shape)[...] = view
    return cols


def _conv(op: str, rank: int, x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any,
          groups: Any) -> np.ndarray:
    """The forward pass at any rank; conv1d / conv2d / conv3d fix ``rank`` (and name ``op``)."""
    x = float_array("x", x, rank + 2, _X[rank])
    w = float_array("w", w, rank + 2, _W[rank])
    if b is not None:
        b = float_array("b", b, ndim=1)
        expect_shape("b", b, (w.shape[0],))
    same_dtype("x", x, w=w, b=b)
    win, g = _geometry(op, x, w, stride, padding, dilation, groups)
    cols = _columns(x, win, g)  # (N, G, K, P), K = C/G * prod(k), P = prod(So)
    n_out = w.shape[0]
    w_rows = w.reshape(g, n_out // g, -1)  # (G, Co/G, K)
    y = np.matmul(w_rows, cols)  # (N, G, Co/G, P): channels-first once reshaped
    del cols
    if b is not None:
        y += b.reshape(g, -1, 1)
    return y.reshape(x.shape[0], n_out, *win.out)


def _conv_backward(op: str, rank: int, dy: Any, x: Any, w: Any, stride: Any, padding: Any,
                   dilation: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward pass at any rank: (dx, dw, db)."""
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x = float_array("x", x, rank + 2, _X[rank])
    w = float_array("w", w, rank + 2, _W[rank])
    same_dtype("x", x, w=w, dy=dy)
    win, g = _geometry(op, x, w, stride, padding, dilation, groups)
    n, c = x.shape[:2]
    n_out = w.shape[0]
    expect_shape("dy", dy, (n, n_out, *win.out))
    db = dy.sum(axis=(0, *range(2, rank + 2)))
    dy_cols = dy.reshape(n, g, n_out // g, -1)  # (N, G, Co/G, P), no copy

    cols = _columns(x, win, g)  # (N, G, K, P), K = C/G * prod(k)
    # dw = sum over samples of dy_n @ cols_n^T: one batched matmul (BLAS reads the transposed
    # operand in place), then a reduction over the small (N, G, Co/G, K) stack.
    dw = np.matmul(dy_cols, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
    # The column gradient has the columns' shape: reuse their buffer (peak memory).
    w_cols = w.reshape(g, n_out // g, -1).transpose(0, 2, 1)  # (G, K, Co/G)
    dcols = np.matmul(w_cols, dy_cols, out=cols).reshape(n, c, *win.kernel, *win.out)
    # col2im: add each tap's gradient back onto the input cells it read. Taps are clipped to
    # the unpadded input, so padding never needs a buffer of its own.
    dx = np.zeros(x.shape, dtype=x.dtype)
    everything = (slice(None), slice(None))
    for tap, in_cells, out_cells in win.reads():
        dx[(*everything, *in_cells)] += dcols[(*everything, *tap, *out_cells)]
    return dx, dw, db


def conv1d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlate x with w along one spatial axis.

    x: (N, C, L), w: (Co, C/G, k), b: (Co,) or None -> y: (N, Co, Lo) with
    Lo = floor((L + before + after - d*(k - 1) - 1) / s) + 1; see CONTRACT.md.
    """
    return _conv("conv1d", 1, x, w, b, stride, padding, dilation, groups)


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
    return _conv("conv2d", 2, x, w, b, stride, padding, dilation, groups)


def conv3d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlate x with w over a volume.

    x: (N, C, D, H, W), w: (Co, C/G, kd, kh, kw), b: (Co,) or None -> y: (N, Co, Do, Ho, Wo)
    with Do = floor((D + before + after - dd*(kd - 1) - 1) / sd) + 1 (likewise Ho, Wo); see
    CONTRACT.md.
    """
    return _conv("conv3d", 3, x, w, b, stride, padding, dilation, groups)


def conv1d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv1d` given the upstream gradient dy: (N, Co, Lo).

    Returns (dx, dw, db) with the shapes of x (N, C, L), w (Co, C/G, k) and b (Co,).
    """
    return _conv_backward("conv1d", 1, dy, x, w, stride, padding, dilation, groups)


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
    return _conv_backward("conv2d", 2, dy, x, w, stride, padding, dilation, groups)


def conv3d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int, int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv3d` given the upstream gradient dy: (N, Co, Do, Ho, Wo).

    Returns (dx, dw, db) with the shapes of x (N, C, D, H, W), w (Co, C/G, kd, kh, kw) and
    b (Co,).
    """
    return _conv_backward("conv3d", 3, dy, x, w, stride, padding, dilation, groups)
