"""cs231n layers with one bug: conv_backward_naive crops the padding with ``pad:-pad``, which
is empty at pad 0 (the course checks pad 1 only)."""

import numpy as np
from cs231n import layers
from cs231n.layers import *  # noqa: F403 - the rest of the homework, unchanged


def conv_backward_naive(dout, cache):
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows = slice(i * stride, i * stride + hh)
            cols = slice(j * stride, j * stride + ww)
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    _, dw, db = layers.conv_backward_naive(dout, cache)
    return dxp[:, :, pad:-pad, pad:-pad], dw, db  # the bug: empty when pad == 0
