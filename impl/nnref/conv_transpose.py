"""Transposed convolution (the adjoint of conv's input gradient) with stride, symmetric padding,
output_padding, groups, dilation and bias, at spatial rank 1, 2 or 3: conv_transpose1d / 2d /
3d (and their backwards) are thin wrappers over one rank-generic implementation. torch's
semantics (F.conv_transpose{1,2,3}d).

    x: (N, C, *S)   w: (C, Co/G, *k)   b: (Co,) or None   ->   y: (N, Co, *So)

(w input channels first, as torch stores it). Every input cell scatters itself times the
kernel into a full-size output, which is then cropped by ``padding`` on both sides of every
axis:

    yfull[n, g(c) * Co/G + o, i * s + p * d] += x[n, c, i] * w[c, o, p]
    y[n, :, j] = b + yfull[n, :, j + padding]

with i, p, j multi-indices over the r spatial axes (taken axis by axis) and g(c) = c // (C/G)
the group of input channel c. Along every spatial axis of size S

    So = (S - 1) * s - 2 * padding + d * (k - 1) + output_padding + 1,

``output_padding`` (< max(s, d) per axis, torch's rule) only adds cells at the end, which no
input reaches (they hold the bias): it picks one of the sizes whose conv (same s, p, d, k) has
S outputs. So must be >= 1 on every axis. ``padding`` is p or one int per axis (both ends
alike). The geometry is that conv's (``_windows.Windows`` over an input of size So padded by
``padding``, with S windows): input cell i scatters onto the cells its window reads.

The backward of y = conv_transpose(x, w) is a convolution of dy (zero-padded back to the full
size) with stride s and dilation d: dx[n, c, i] = sum_{o, p} w[c, o, p] * dyfull[n, o, i*s +
p*d], dw[c, o, p] = sum_{n, i} x[n, c, i] * dyfull[n, o, i*s + p*d], db = dy summed over
N and the spatial axes.
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from ._checks import (
    AXIS_NAMES,
    expect_shape,
    float_array,
    groups_int,
    int_tuple,
    layout,
    same_dtype,
)
from ._windows import Windows, symmetric_pads

_X = {r: layout(r) for r in (1, 2, 3)}
_W = {r: layout(r, "C, Co/G", prefix="k", lower=True) for r in (1, 2, 3)}
_DY = {r: layout(r, "N, Co", suffix="o") for r in (1, 2, 3)}


def _geometry(op: str, x: np.ndarray, w: np.ndarray, stride: Any, padding: Any,
              output_padding: Any, groups: Any, dilation: Any) -> tuple[Windows, int]:
    """The windows of the conv whose input gradient this is, and the number of groups, checked.

    That conv reads an input of size So padded by ``padding`` (to the full size (S - 1) * s +
    d * (k - 1) + 1 + output_padding) and has S outputs: input cell i of conv_transpose is that
    conv's window i, and scatters onto the cells ``i * s + p * d`` of the full output that the
    window reads. (S is given, not computed: with output_padding >= s the conv would have S + 1
    windows.)
    """
    rank = x.ndim - 2
    strides = int_tuple("stride", stride, rank)
    dilations = int_tuple("dilation", dilation, rank)
    pads = symmetric_pads(padding, rank, " (both sides alike)")
    extra = int_tuple("output_padding", output_padding, rank, minimum=0)
    groups = groups_int(groups)
    n_in = x.shape[1]
    if w.shape[0] != n_in:
        raise ValueError(
            f"w has shape {w.shape}: expected w.shape[0] == C = {n_in}, the input channels "
            f"(w is (C, Co/G, *k); x has shape {x.shape})"
        )
    if groups < 1 or n_in % groups:
        raise ValueError(
            f"groups={groups} must be >= 1 and divide the input channels {n_in}"
        )
    for axis, op_, s, d in zip(AXIS_NAMES[rank], extra, strides, dilations, strict=True):
        if op_ >= max(s, d):
            raise ValueError(
                f"output_padding={output_padding!r}: along the {axis} it is {op_}, which must "
                f"be smaller than the stride {s} or the dilation {d}"
            )
    kernel = w.shape[2:]
    full = tuple((size - 1) * s + d * (k - 1) + 1 + e
                 for size, k, s, d, e in zip(x.shape[2:], kernel, strides, dilations, extra,
                                             strict=True))
    out = tuple(f - 2 * p for f, (p, _) in zip(full, pads, strict=True))
    for axis, o, f, (p, _) in zip(AXIS_NAMES[rank], out, full, pads, strict=True):
        if o < 1:
            raise ValueError(
                f"padding={padding!r}: {op} {axis} output size would be {o} (uncropped size {f} "
                f"minus 2 * {p}; x {x.shape}, w {w.shape}); it must be >= 1"
            )
    return Windows(kernel, strides, dilations, pads, out, x.shape[2:]), groups


def _conv_transpose(op: str, rank: int, x: Any, w: Any, b: Any, stride: Any, padding: Any,
                    output_padding: Any, groups: Any, dilation: Any) -> np.ndarray:
    """The forward pass at any rank; conv_transpose1d / 2d / 3d fix ``rank`` (and ``op``)."""
    x = float_array("x", x, rank + 2, _X[rank])
    w = float_array("w", w, rank + 2, _W[rank])
    win, g = _geometry(op, x, w, stride, padding, output_padding, groups, dilation)
    n, c = x.shape[:2]
    n_out = w.shape[1] * g
    if b is not None:
        b = float_array("b", b, ndim=1)
        expect_shape("b", b, (n_out,))
    same_dtype("x", x, w=w, b=b)
    # Every product x[n, c, i] * w[c, o, p], summed over the C/G channels of c's group, at once:
    # (G, Co/G * K, C/G) @ (N, G, C/G, P) -> (N, G, Co/G * K, P), K = prod(k), P = prod(S).
    w_cols = w.reshape(g, c // g, -1).transpose(0, 2, 1)
    x_rows = x.reshape(n, g, c // g, -1)
    z = np.matmul(w_cols, x_rows).reshape(n, n_out, *win.kernel, *x.shape[2:])
    # Scatter: tap p of every input cell lands on cell i * s + p * d of the full output. A loop
    # over the K taps (not over pixels): each iteration is one strided, vectorised add; taps
    # overlap where s < d * (k - 1) + 1, so they cannot be written in one assignment.
    y_full = np.zeros((n, n_out, *win.reach), dtype=x.dtype)
    everything = (slice(None), slice(None))
    for tap, cells in win.tap_slices():
        y_full[cells] += z[(*everything, *tap)]
    del z
    y = y_full[win.interior].copy()  # padding cropped off both ends
    if b is not None:
        y += b.reshape(-1, *(1,) * rank)
    return y


def _conv_transpose_backward(op: str, rank: int, dy: Any, x: Any, w: Any, stride: Any,
                             padding: Any, output_padding: Any, groups: Any, dilation: Any
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward pass at any rank: (dx, dw, db)."""
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x = float_array("x", x, rank + 2, _X[rank])
    w = float_array("w", w, rank + 2, _W[rank])
    same_dtype("x", x, w=w, dy=dy)
    win, g = _geometry(op, x, w, stride, padding, output_padding, groups, dilation)
    n, c = x.shape[:2]
    n_out = w.shape[1] * g
    expect_shape("dy", dy, (n, n_out, *win.in_sizes))
    db = dy.sum(axis=(0, *range(2, rank + 2)))
    # dy back on the full output (the cropped border and nothing else is zero).
    dy_full = win.padded(dy)
    # Gather, the mirror of the forward's scatter: cols[n, o, p, i] = dyfull[n, o, i*s + p*d].
    # A loop over the K taps, each one strided copy of every position.
    everything = (slice(None), slice(None))
    cols = np.empty((n, n_out, *win.kernel, *x.shape[2:]), dtype=dy.dtype)
    for tap, cells in win.tap_slices():
        cols[(*everything, *tap)] = dy_full[cells]
    del dy_full
    cols = cols.reshape(n, g, n_out // g * prod(win.kernel), -1)  # (N, G, Co/G * K, P)
    w_rows = w.reshape(g, c // g, -1)  # (G, C/G, Co/G * K)
    dx = np.matmul(w_rows, cols).reshape(x.shape)
    x_rows = x.reshape(n, g, c // g, -1)  # (N, G, C/G, P)
    dw = np.matmul(x_rows, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
    return dx, dw, db


def conv_transpose1d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
) -> np.ndarray:
    """Transposed convolution along one spatial axis.

    x: (N, C, L), w: (C, Co/G, k), b: (Co,) or None -> y: (N, Co, Lo) with
    Lo = (L - 1)*s - 2*padding + d*(k - 1) + output_padding + 1; see CONTRACT.md.
    """
    return _conv_transpose("conv_transpose1d", 1, x, w, b, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Transposed convolution over an image.

    x: (N, C, H, W), w: (C, Co/G, kh, kw), b: (Co,) or None -> y: (N, Co, Ho, Wo) with
    Ho = (H - 1)*sh - 2*ph + dh*(kh - 1) + output_padding_h + 1 (likewise Wo); see CONTRACT.md.
    """
    return _conv_transpose("conv_transpose2d", 2, x, w, b, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose3d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
) -> np.ndarray:
    """Transposed convolution over a volume.

    x: (N, C, D, H, W), w: (C, Co/G, kd, kh, kw), b: (Co,) or None -> y: (N, Co, Do, Ho, Wo)
    with Do = (D - 1)*sd - 2*pd + dd*(kd - 1) + output_padding_d + 1 (likewise Ho, Wo); see
    CONTRACT.md.
    """
    return _conv_transpose("conv_transpose3d", 3, x, w, b, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose1d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose1d` given the upstream gradient dy: (N, Co, Lo).

    Returns (dx, dw, db) with the shapes of x (N, C, L), w (C, Co/G, k) and b (Co,).
    """
    return _conv_transpose_backward("conv_transpose1d", 1, dy, x, w, stride, padding,
                                    output_padding, groups, dilation)


def conv_transpose2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose2d` given the upstream gradient dy: (N, Co, Ho, Wo).

    Returns (dx, dw, db) with the shapes of x (N, C, H, W), w (C, Co/G, kh, kw) and b (Co,).
    """
    return _conv_transpose_backward("conv_transpose2d", 2, dy, x, w, stride, padding,
                                    output_padding, groups, dilation)


def conv_transpose3d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose3d` given the upstream gradient dy: (N, Co, Do, Ho, Wo).

    Returns (dx, dw, db) with the shapes of x (N, C, D, H, W), w (C, Co/G, kd, kh, kw) and
    b (Co,).
    """
    return _conv_transpose_backward("conv_transpose3d", 3, dy, x, w, stride, padding,
                                    output_padding, groups, dilation)
