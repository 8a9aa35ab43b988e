"""A homework of plain functions with explicit hyperparameters (N, C, H, W; W (F, C, HH, WW)),
checked through ``my_binding.py``:

    python -m conformance check homework.py --api my_binding.py -m values     # exit 0
"""

import numpy as np


def convolution2D(X, W, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    _, _, hh, ww = W.shape
    oh, ow = (Xp.shape[2] - hh) // sh + 1, (Xp.shape[3] - ww) // sw + 1
    out = np.zeros((X.shape[0], W.shape[0], oh, ow), dtype=X.dtype)
    for i in range(oh):
        for j in range(ow):
            window = Xp[:, :, i * sh:i * sh + hh, j * sw:j * sw + ww]
            out[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3]))
    return out


def convolution2D_backward_input(out_grad, X, W, stride):
    sh, sw = stride
    _, _, hh, ww = W.shape
    dX = np.zeros_like(X)
    for i in range(out_grad.shape[2]):
        for j in range(out_grad.shape[3]):
            dX[:, :, i * sh:i * sh + hh, j * sw:j * sw + ww] += np.tensordot(
                out_grad[:, :, i, j], W, axes=([1], [0]))
    return dX


def convolution2D_backward_filter(out_grad, X, W, stride):
    sh, sw = stride
    _, _, hh, ww = W.shape
    dW = np.zeros_like(W)
    for i in range(out_grad.shape[2]):
        for j in range(out_grad.shape[3]):
            window = X[:, :, i * sh:i * sh + hh, j * sw:j * sw + ww]
            dW += np.tensordot(out_grad[:, :, i, j], window, axes=([0], [0]))
    return dW


def pool_forward(X, f, s):
    n, c, h, w = X.shape
    out = np.zeros((n, c, (h - f) // s + 1, (w - f) // s + 1), dtype=X.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = X[:, :, i * s:i * s + f, j * s:j * s + f].max(axis=(2, 3))
    return out


def pool_back(grad_pool, X, f, s):
    n, c = X.shape[:2]
    dX = np.zeros_like(X)
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(grad_pool.shape[2]):
        for j in range(grad_pool.shape[3]):
            window = X[:, :, i * s:i * s + f, j * s:j * s + f].reshape(n, c, -1)
            r, q = np.unravel_index(window.argmax(axis=2), (f, f))
            np.add.at(dX, (nn, cc, i * s + r, j * s + q), grad_pool[:, :, i, j])
    return dX


def batch_norm_forward(X, gamma, beta):
    xhat = (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0))
    return gamma * xhat + beta


def batch_norm_backward(dout, X, gamma, beta):
    std = np.sqrt(X.var(axis=0))
    xhat = (X - X.mean(axis=0)) / std
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
