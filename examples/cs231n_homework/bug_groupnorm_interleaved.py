"""cs231n layers with one bug: spatial_groupnorm_* put channel c in group c % G instead of
c // (C / G) (the notebook only prints the normalised statistics, and the numerical gradient
check differentiates the same forward)."""

import numpy as np
from cs231n.layers import *  # noqa: F403 - the rest of the homework, unchanged


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    eps = gn_param.get("eps", 1e-5)
    n, c, h, w = x.shape
    xg = x.reshape(n, c // G, G, h * w).transpose(0, 2, 1, 3).reshape(n, G, -1)
    mean = xg.mean(axis=2, keepdims=True)
    std = np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    xhat = ((xg - mean) / std).reshape(n, G, c // G, h, w).transpose(0, 2, 1, 3, 4)
    xhat = xhat.reshape(n, c, h, w)
    return gamma * xhat + beta, (xhat, gamma, std, G)


def spatial_groupnorm_backward(dout, cache):
    xhat, gamma, std, G = cache
    n, c, h, w = dout.shape

    def grouped(a):
        return a.reshape(n, c // G, G, h * w).transpose(0, 2, 1, 3).reshape(n, G, -1)

    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dxhat, xg = grouped(dout * gamma), grouped(xhat)
    dx = (dxhat - dxhat.mean(axis=2, keepdims=True)
          - xg * (dxhat * xg).mean(axis=2, keepdims=True)) / std
    dx = dx.reshape(n, G, c // G, h, w).transpose(0, 2, 1, 3, 4)
    return dx.reshape(n, c, h, w), dgamma, dbeta
