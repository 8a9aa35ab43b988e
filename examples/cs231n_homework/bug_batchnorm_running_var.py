"""cs231n layers with one bug: batchnorm_forward keeps the unbiased variance in running_var
(the course's checks look at test-time outputs only)."""

from cs231n import layers
from cs231n.layers import *  # noqa: F403 - the rest of the homework, unchanged


def batchnorm_forward(x, gamma, beta, bn_param):
    before = bn_param.get("running_var")
    out, cache = layers.batchnorm_forward(x, gamma, beta, bn_param)
    if bn_param["mode"] == "train" and before is not None:
        momentum = bn_param.get("momentum", 0.9)
        bn_param["running_var"] = momentum * before + (1 - momentum) * x.var(axis=0, ddof=1)
    return out, cache


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    n, c, h, w = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(-1, c)
    out, cache = batchnorm_forward(flat, gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), cache
