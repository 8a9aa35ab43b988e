"""cs231n layers with one bug: conv_backward_naive ignores the stride (the course checks
stride 1 only)."""

import numpy as np
from cs231n.layers import *  # noqa: F403 - the rest of the homework, unchanged


def conv_backward_naive(dout, cache):
    x, w, _, conv_param = cache
    pad = conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i, i + hh), slice(j, j + ww)  # the bug: no stride
            g = dout[:, :, i, j]
            dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))
