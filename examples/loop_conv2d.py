"""A student's conv2d, as a course notebook has it written: four loops, correct values, plain
errors, and NotImplementedError for what it does not do (groups, dilation, padding strings).

    python -m conformance check loop_conv2d -m values      # from this directory: exit 0
    KERNEL_FLIPPED=1 python -m conformance check loop_conv2d -m values -x   # exit 1

The other contract functions are reported missing; configurations it does not support are
reported as such, and every other configuration of conv2d is still checked. With
KERNEL_FLIPPED=1 it computes a true convolution (the kernel flipped), the classic mix-up with
the cross-correlation the contract asks for.
"""

from __future__ import annotations

import os

import numpy as np

KERNEL_FLIPPED = os.environ.get("KERNEL_FLIPPED") == "1"


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if groups != 1 or dilation not in (1, (1, 1)) or isinstance(padding, str):
        raise NotImplementedError("only groups=1, dilation=1 and numeric padding")
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    if isinstance(padding, int):
        padding = (padding, padding)
    (top, bottom), (left, right) = [(p, p) if isinstance(p, int) else p for p in padding]
    n_batch, _, height, width = x.shape
    n_out, _, kh, kw = w.shape
    if KERNEL_FLIPPED:
        w = w[:, :, ::-1, ::-1]
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    out_h = (height + top + bottom - kh) // sh + 1
    out_w = (width + left + right - kw) // sw + 1
    y = np.zeros((n_batch, n_out, out_h, out_w), dtype=x.dtype)
    for n in range(n_batch):
        for o in range(n_out):
            for i in range(out_h):
                for j in range(out_w):
                    window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[n, o, i, j] = np.sum(window * w[o])
            if b is not None:
                y[n, o] += b[o]
    return y
