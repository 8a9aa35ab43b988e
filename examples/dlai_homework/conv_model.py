"""The deeplearning.ai "Convolution model - Step by Step" functions, channels last: correct,
written for the nnref examples.

    python -m conformance check examples/dlai_homework/conv_model.py --api deeplearning-ai \\
        -m values                                                            # exit 0

The files ``bug_*.py`` next to it are the same functions, each with one realistic bug that the
notebook's own test cells do not catch.
"""

import numpy as np


def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant",
                  constant_values=(0, 0))


def conv_single_step(a_slice_prev, W, b):
    return np.sum(a_slice_prev * W) + float(np.asarray(b).reshape(-1)[0])


def conv_forward(A_prev, W, b, hparameters):
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    n_H = int((n_H_prev - f + 2 * pad) / stride) + 1
    n_W = int((n_W_prev - f + 2 * pad) / stride) + 1
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


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros_like(A_prev_pad)
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vert, horiz = h * stride, w * stride
                a_slice = A_prev_pad[i, vert:vert + f, horiz:horiz + f, :]
                for c in range(n_C):
                    dA_prev_pad[i, vert:vert + f, horiz:horiz + f, :] += W[..., c] * dZ[i, h, w, c]
                    dW[..., c] += a_slice * dZ[i, h, w, c]
                    db[..., c] += dZ[i, h, w, c]
    n_H_prev, n_W_prev = A_prev.shape[1:3]
    dA_prev = dA_prev_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    n_H = int(1 + (n_H_prev - f) / stride)
    n_W = int(1 + (n_W_prev - f) / stride)
    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            A[:, h, w, :] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return A, (A_prev, hparameters)


def create_mask_from_window(x):
    return x == np.max(x)


def distribute_value(dz, shape):
    return np.ones(shape) * dz / (shape[0] * shape[1])


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros_like(A_prev)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vert, horiz = h * stride, w * stride
                for c in range(n_C):
                    if mode == "max":
                        window = A_prev[i, vert:vert + f, horiz:horiz + f, c]
                        mask = create_mask_from_window(window)
                        dA_prev[i, vert:vert + f, horiz:horiz + f, c] += mask * dA[i, h, w, c]
                    else:
                        dA_prev[i, vert:vert + f, horiz:horiz + f, c] += distribute_value(
                            dA[i, h, w, c], (f, f))
    return dA_prev
