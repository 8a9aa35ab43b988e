"""The deeplearning.ai functions with one bug: conv_forward sizes the output width from the
input height (the notebook's test uses square inputs)."""

import numpy as np
from conv_model import *  # noqa: F403 - the rest of the homework, unchanged
from conv_model import conv_single_step, zero_pad


def conv_forward(A_prev, W, b, hparameters):
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H_prev, _, _ = A_prev.shape
    f, _, _, n_C = W.shape
    n_H = int((n_H_prev - f + 2 * pad) / stride) + 1
    n_W = int((n_H_prev - f + 2 * pad) / stride) + 1  # the bug: n_H_prev for the width
    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vert, horiz = h * stride, w * stride
                a_slice = A_prev_pad[i, vert:vert + f, horiz:horiz + f, :]
                for c in range(n_C):
                    Z[i, h, w, c] = conv_single_step(a_slice, W[..., c], b[..., c])
    return Z, (A_prev, W, b, hparameters)
