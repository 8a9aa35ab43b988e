"""The forward half of the nnref contract on SciPy (scipy.ndimage, scipy.signal, scipy.stats).

Conventions handled here (see conformance/divergences.toml):
- scipy.ndimage names the pad modes differently (pad-mode-names): constant -> grid-constant,
  reflect -> mirror, replicate -> nearest, circular -> grid-wrap (ndimage's plain "wrap" is not
  periodic outside the grid: ndimage-wrap-not-periodic).
- Deep-learning conv is cross-correlation: scipy.signal.correlate, not convolve
  (scipy-correlate-vs-convolve). Dilation inserts zeros into the kernel; stride subsamples.
- Max pooling is scipy.ndimage.maximum_filter with -inf outside the input and a dilated footprint;
  it returns no indices (scipy-max-filter-no-indices) and its NaN handling depends on the NaN's
  position (max-pool-nan), so both raise Unsupported.
- SciPy has no automatic differentiation: every *_backward raises Unsupported (scipy-no-autodiff).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal, stats

from conformance.backends import (
    Unsupported,
    bn_check,
    check_pad,
    conv_pads,
    float_input,
    pads2d,
    pair,
    pool_args,
    pool_extra_end,
    pool_out_len,
)

NAME = "scipy"
_NDIMAGE_MODES = {
    "constant": "grid-constant",
    "reflect": "mirror",
    "replicate": "nearest",
    "circular": "grid-wrap",
}


def _no_autodiff(op: str) -> Unsupported:
    return Unsupported("scipy-no-autodiff", f"SciPy cannot differentiate {op}")


# ----------------------------------------------------------------------------------- padding


def pad(x: np.ndarray, pad_width: object, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """scipy.ndimage.map_coordinates (order 0, integer coordinates) with ndimage's mode names."""
    x = float_input(x)
    (t, b), (l, r) = pads = pads2d(pad_width, "pad_width")
    check_pad(x.shape, pads, mode)
    n, c, h, w = x.shape
    coords = np.meshgrid(np.arange(n), np.arange(c), np.arange(-t, h + b), np.arange(-l, w + r),
                         indexing="ij")
    return ndimage.map_coordinates(x, np.stack(coords), order=0, mode=_NDIMAGE_MODES[mode],
                                   cval=value, output=x.dtype)


def pad_backward(dy: np.ndarray, pad_width: object, mode: str = "constant") -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("pad")


# ------------------------------------------------------------------------------- convolution


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """scipy.signal.correlate (direct) per output channel over its group's input channels."""
    x, w = float_input(x), float_input(w, "w")
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    if groups < 1 or c % groups or co % groups or cg * groups != c:
        raise ValueError(f"groups={groups} does not fit x channels {c} and w of shape {w.shape}")
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    (t, bt), (l, r) = conv_pads(padding, (h, wd), (kh, kw), s, d)
    xp = np.zeros((n, c, h + t + bt, wd + l + r), x.dtype)
    xp[:, :, t : t + h, l : l + wd] = x
    # Dilation: the kernel with (d - 1) zeros between taps.
    wdil = np.zeros((co, cg, d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1), x.dtype)
    wdil[:, :, :: d[0], :: d[1]] = w
    per_group = co // groups
    out = []
    for o in range(co):
        g = o // per_group
        xs = xp[:, g * cg : (g + 1) * cg]
        full = signal.correlate(xs, wdil[o][None], mode="valid", method="direct")  # (N, 1, ., .)
        out.append(full[:, 0, :: s[0], :: s[1]])
    y = np.stack(out, axis=1).astype(x.dtype, copy=False)
    if b is not None:
        y = y + float_input(b, "b").reshape(1, -1, 1, 1)
    return y.astype(x.dtype, copy=False)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv2d")


# ------------------------------------------------------------------------------- max pooling


def max_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """scipy.ndimage.maximum_filter on a -inf padded input with a dilated footprint, subsampled."""
    x = float_input(x)
    if return_indices:
        raise Unsupported("scipy-max-filter-no-indices",
                          "scipy.ndimage.maximum_filter returns values only")
    if np.isnan(x).any():
        raise Unsupported("max-pool-nan",
                          "scipy.ndimage.maximum_filter's NaN result depends on its position")
    n, c, h, w = x.shape
    k, s, ((t, b), (l, r)), d = pool_args(x.shape, kernel_size, stride, padding, dilation)
    ho = pool_out_len(h, t, b, k[0], s[0], d[0], ceil_mode)
    wo = pool_out_len(w, l, r, k[1], s[1], d[1], ceil_mode)
    eh = pool_extra_end(h, t, b, k[0], s[0], d[0], ho)
    ew = pool_extra_end(w, l, r, k[1], s[1], d[1], wo)
    xp = np.full((n, c, h + t + b + eh, w + l + r + ew), -np.inf, x.dtype)
    xp[:, :, t : t + h, l : l + w] = x
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    footprint = np.zeros((1, 1, *span), bool)
    footprint[0, 0, :: d[0], :: d[1]] = True
    full = ndimage.maximum_filter(xp, footprint=footprint, mode="constant", cval=-np.inf)
    # ndimage centres a footprint of length L at L // 2: the window starting at i is output
    # i + L // 2.
    rows = span[0] // 2 + np.arange(ho) * s[0]
    cols = span[1] // 2 + np.arange(wo) * s[1]
    return np.ascontiguousarray(full[:, :, rows][:, :, :, cols]).astype(x.dtype, copy=False)


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("max_pool2d")


# ------------------------------------------------------------------------------- batch norm


def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
               training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training: scipy.stats.moment (biased variance) per channel; eval: plain arithmetic."""
    x = float_input(x)
    bn_check(x, running_mean, running_var, training)
    c = x.shape[1]
    g = np.ones(c, x.dtype) if gamma is None else float_input(gamma, "gamma")
    bb = np.zeros(c, x.dtype) if beta is None else float_input(beta, "beta")
    axes = (0, 2, 3)
    if training:
        mean = np.mean(x, axis=axes)
        var = stats.moment(x, order=2, axis=axes)  # central, biased (ddof 0)
    else:
        mean, var = np.asarray(running_mean), np.asarray(running_var)
    y = (x - mean.reshape(1, c, 1, 1)) / np.sqrt(var.reshape(1, c, 1, 1) + eps)
    y = (y * g.reshape(1, c, 1, 1) + bb.reshape(1, c, 1, 1)).astype(x.dtype, copy=False)
    if not training or running_mean is None:
        return y
    m = x.shape[0] * x.shape[2] * x.shape[3]
    new_mean = (1 - momentum) * np.asarray(running_mean) + momentum * mean
    new_var = (1 - momentum) * np.asarray(running_var) + momentum * var * (m / (m - 1))
    return y, new_mean.astype(x.dtype), new_var.astype(x.dtype)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None,
                        eps: float = 1e-5, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None,
                        training: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("batch_norm")
