"""A deliberately wrong implementation, written the way course notebooks often are.

Run the suite against it with ``pytest --impl examples.notebook_layers`` (README: "Check your
own implementation"). Each bug below is one we see in hand-written layers; simple test cells
with symmetric padding, unique values and all-ones upstream gradients pass all of them.

1. ``pad``: "reflect" mapped to NumPy's ``symmetric`` (which repeats the edge cell).
2. ``pad_backward``: not written yet.
3. ``conv2d``: asymmetric padding ``((t, b), (l, r))`` is read as ``(t, l)`` on both sides.
4. ``max_pool2d_backward``: every tied maximum receives the gradient, not only the first.
5. ``batch_norm_backward``: eps forgotten in the backward pass.
Everything else delegates to a straightforward loop-over-taps version that is correct.
"""

from __future__ import annotations

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def pad(x, pad_width, mode="constant", value=0.0):
    p = pad_width
    if isinstance(p, int):
        p = ((p, p), (p, p))
    elif isinstance(p[0], int):
        p = ((p[0], p[0]), (p[1], p[1]))
    numpy_mode = {"reflect": "symmetric", "replicate": "edge", "circular": "wrap"}  # bug 1
    if mode == "constant":
        return np.pad(x, ((0, 0), (0, 0), *p), constant_values=value)
    return np.pad(x, ((0, 0), (0, 0), *p), mode=numpy_mode[mode])


def _conv_pads(padding, x, w, stride, dilation):
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        pads = []
        for size, k, s, d in zip(x.shape[2:], w.shape[2:], stride, dilation, strict=True):
            out = -(-size // s)
            total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if isinstance(padding[0], int):
        return (padding[0], padding[0]), (padding[1], padding[1])
    return (padding[0][0], padding[0][0]), (padding[1][0], padding[1][0])  # bug 3


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    stride, dilation = _pair(stride), _pair(dilation)
    pads = _conv_pads(padding, x, w, stride, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    co, cg, kh, kw = w.shape
    ho = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((x.shape[0], co, ho, wo), dtype=x.dtype)
    per = co // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for p in range(kh):
            for q in range(kw):
                patch = xs[:, :, p * dilation[0]::stride[0], q * dilation[1]::stride[1]]
                patch = patch[:, :, :ho, :wo]
                y[:, g * per:(g + 1) * per] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * per:(g + 1) * per, :, p, q])
    if b is not None:
        y += b[:, None, None]
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    import nnref  # the pieces this notebook got right, borrowed to keep the example short

    return nnref.conv2d_backward(dy, x, w, stride, _conv_pads(padding, x, w, _pair(stride),
                                                               _pair(dilation)), dilation, groups)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    import nnref

    return nnref.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    import nnref

    # bug 4: route the gradient to every cell equal to its window's maximum
    k, s = _pair(kernel_size), _pair(stride if stride is not None else kernel_size)
    d, p = _pair(dilation), _pair(padding) if not isinstance(padding, tuple) or isinstance(
        padding[0], int) else (padding[0][0], padding[1][0])
    y = nnref.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], k[0] * d[0] + s[0]), (p[1], k[1] * d[1] + s[1])),
                constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    ho, wo = y.shape[2:]
    for i in range(k[0]):
        for j in range(k[1]):
            rows = slice(i * d[0], i * d[0] + (ho - 1) * s[0] + 1, s[0])
            cols = slice(j * d[1], j * d[1] + (wo - 1) * s[1] + 1, s[1])
            dxp[:, :, rows, cols] += np.where(xp[:, :, rows, cols] == y, dy, 0)
    return dxp[:, :, p[0]:p[0] + x.shape[2], p[1]:p[1] + x.shape[3]]


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True,
               momentum=0.1, eps=1e-5):
    import nnref

    return nnref.batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps)


def batch_norm_backward(dy, x, gamma, eps=1e-5, running_mean=None, running_var=None,
                        training=True):
    axes = (0, 2, 3)
    if training:
        mean, var = x.mean(axes), x.var(axes)
    else:
        mean, var = running_mean, running_var
    std = np.sqrt(var)  # bug 5: eps forgotten
    x_hat = (x - mean[:, None, None]) / std[:, None, None]
    dbeta = dy.sum(axes)
    dgamma = (dy * x_hat).sum(axes)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    if training:
        inner = dy - dbeta[:, None, None] / m - x_hat * dgamma[:, None, None] / m
    else:
        inner = dy
    return inner * (gamma / std)[:, None, None], dgamma, dbeta
