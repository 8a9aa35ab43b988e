"""Kernels that store float16 / bfloat16 and also *accumulate* in that format: conv2d, linear,
avg_pool2d and batch_norm (training mode) sum their terms one by one, rounding every partial sum
to the storage format (float32 and float64 calls, and every other function, are nnref's).

    python -m conformance check storage_accumulating_kernels -m values -k low_precision
    # exit 1: conv2d, linear, avg_pool2d, batch_norm "... x the bound of bfloat16 storage, float32
    # accumulation ...: consistent with accumulating in bfloat16"

Declaring ``CONFORMANCE_ACCUMULATION = "storage"`` holds them to that (probabilistic) bound
instead.
"""

import nnref
import numpy as np
from nnref import *  # noqa: F403 - the rest of the contract

CONFORMANCE_ACCUMULATION = "float32"  # the claim the suite checks (and these kernels break)

LOW = ("float16", "bfloat16")


def _accumulate(terms, storage):
    """Sum the float32 terms left to right, each partial sum rounded to ``storage``."""
    acc = None
    for t in terms:
        t = np.asarray(t, np.float32)
        acc = t.astype(storage) if acc is None else (acc.astype(np.float32) + t).astype(storage)
    return acc


def _one_hot(shape, index):
    m = np.zeros(shape, np.float32)
    m[index] = 1.0
    return m


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if x.dtype.name not in LOW:
        return nnref.conv2d(x, w, b, stride, padding, dilation, groups)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    # one term per weight tap: the convolution with that tap alone (one product per output)
    terms = (nnref.conv2d(x32, w32 * _one_hot(w.shape[1:], t)[None], None, stride, padding,
                          dilation, groups) for t in np.ndindex(*w.shape[1:]))
    y = _accumulate(terms, x.dtype)
    return y if b is None else (y.astype(np.float32) + b.astype(np.float32)[:, None, None]
                                ).astype(x.dtype)


def linear(x, w, b=None):
    if x.dtype.name not in LOW:
        return nnref.linear(x, w, b)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    y = _accumulate((x32[..., i, None] * w32[:, i] for i in range(w.shape[1])), x.dtype)
    return y if b is None else (y.astype(np.float32) + b.astype(np.float32)).astype(x.dtype)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    if x.dtype.name not in LOW:
        return nnref.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                divisor_override)
    if ceil_mode or not count_include_pad or divisor_override is not None:
        raise NotImplementedError("low precision: plain windows only")
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
    c = x.shape[1]
    ones = np.ones((c, 1, kh, kw), np.float32)
    x32 = x.astype(np.float32)
    terms = (nnref.conv2d(x32, ones * _one_hot((1, kh, kw), (0, *t))[None], None,
                          kernel_size if stride is None else stride, padding, 1, c)
             for t in np.ndindex(kh, kw))
    return (_accumulate(terms, x.dtype).astype(np.float32) / (kh * kw)).astype(x.dtype)


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True,
               momentum=0.1, eps=1e-5):
    if x.dtype.name not in LOW or not training or running_mean is not None:
        return nnref.batch_norm(x, gamma, beta, running_mean, running_var, training, momentum,
                                eps)
    c = x.shape[1]
    flat = np.moveaxis(x.astype(np.float32), 1, 0).reshape(c, -1)  # (C, m)
    m = flat.shape[1]
    mean = _accumulate(flat.T, x.dtype).astype(np.float32) / m
    var = _accumulate(((flat - mean[:, None]) ** 2).T, x.dtype).astype(np.float32) / m
    shape = (1, c) + (1,) * (x.ndim - 2)
    g = np.ones(c, np.float32) if gamma is None else gamma.astype(np.float32)
    b = np.zeros(c, np.float32) if beta is None else beta.astype(np.float32)
    y = ((x.astype(np.float32) - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
         * g.reshape(shape) + b.reshape(shape))
    return y.astype(x.dtype)
