"""cs231n layers with one bug: max pooling reads pool_height for both window sizes (the course
checks 2 x 2 windows only)."""

from cs231n import layers
from cs231n.layers import *  # noqa: F403 - the rest of the homework, unchanged


def _square(pool_param):
    return {**pool_param, "pool_width": pool_param["pool_height"]}  # the bug


def max_pool_forward_naive(x, pool_param):
    out, _ = layers.max_pool_forward_naive(x, _square(pool_param))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    return layers.max_pool_backward_naive(dout, (x, _square(pool_param)))
