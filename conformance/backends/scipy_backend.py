"""The forward half of the nnref contract on SciPy (scipy.ndimage, scipy.signal, scipy.stats).

Every SciPy routine used here is N-dimensional, so one implementation per op serves the spatial
ranks 1, 2 and 3; conv1d / conv2d / conv3d and friends are thin wrappers.

Conventions handled here (see conformance/divergences.toml):
- scipy.ndimage names the pad modes differently (pad-mode-names): constant -> grid-constant,
  reflect -> mirror, replicate -> nearest, circular -> grid-wrap (ndimage's plain "wrap" is not
  periodic outside the grid: ndimage-wrap-not-periodic).
- Deep-learning conv is cross-correlation: scipy.signal.correlate, not convolve
  (scipy-correlate-vs-convolve). Dilation inserts zeros into the kernel; stride subsamples.
- Transposed convolution is scipy.signal.correlate of the zero-inserted (stride), fully padded
  input with the flipped, zero-dilated kernel, then cropped by the padding.
- Max pooling is scipy.ndimage.maximum_filter with -inf outside the input and a dilated footprint;
  it returns no indices (scipy-max-filter-no-indices) and its NaN handling depends on the NaN's
  position (max-pool-nan), so both raise Unsupported.
- Average pooling is scipy.ndimage.correlate with a kernel of ones on the zero-padded input
  (the window sums, each a direct sum of its k cells: uniform_filter's running sums would err
  with the row length and turn an inf into NaN), subsampled and divided by the contract's divisor.
- SciPy has no automatic differentiation: every *_backward raises Unsupported (scipy-no-autodiff).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal, stats

from conformance.backends import (
    Unsupported,
    avg_divisors,
    avg_pool_geometry,
    bn_axes,
    bn_check,
    channel_shape,
    check_pad,
    conv_args,
    conv_transpose_args,
    float_input,
    pad_pairs,
    pool_geometry,
    spatial_rank,
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
    pads = pad_pairs(pad_width, spatial_rank(x.shape), "pad_width")
    check_pad(x.shape, pads, mode)
    axes = [np.arange(x.shape[0]), np.arange(x.shape[1])]
    axes += [np.arange(-b, n + a) for n, (b, a) in zip(x.shape[2:], pads, strict=True)]
    coords = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(x, np.stack(coords), order=0, mode=_NDIMAGE_MODES[mode],
                                   cval=value, output=x.dtype)


def pad_backward(dy: np.ndarray, pad_width: object, mode: str = "constant") -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("pad")


# ------------------------------------------------------------------------------- convolution


def _conv(x, w, b, stride, padding, dilation, groups, rank: int) -> np.ndarray:
    """scipy.signal.correlate (direct) per output channel over its group's input channels."""
    x, w = float_input(x), float_input(w, "w")
    k, s, pads, d = conv_args(x.shape, w.shape, rank, stride, padding, dilation, groups)
    n, c = x.shape[:2]
    co, cg = w.shape[:2]
    xp = np.zeros((n, c, *(size + bb + a for size, (bb, a) in zip(x.shape[2:], pads,
                                                                  strict=True))), x.dtype)
    xp[(slice(None), slice(None), *(slice(bb, bb + size) for size, (bb, _) in
                                    zip(x.shape[2:], pads, strict=True)))] = x
    # Dilation: the kernel with (d - 1) zeros between taps.
    wdil = np.zeros((co, cg, *(dd * (kk - 1) + 1 for kk, dd in zip(k, d, strict=True))), x.dtype)
    wdil[(slice(None), slice(None), *(slice(None, None, dd) for dd in d))] = w
    per_group = co // groups
    subsample = (slice(None), 0, *(slice(None, None, ss) for ss in s))
    out = []
    for o in range(co):
        g = o // per_group
        xs = xp[:, g * cg : (g + 1) * cg]
        full = signal.correlate(xs, wdil[o][None], mode="valid", method="direct")  # (N, 1, ...)
        out.append(full[subsample])
    y = np.stack(out, axis=1).astype(x.dtype, copy=False)
    if b is not None:
        y = y + float_input(b, "b").reshape(channel_shape(rank + 2))
    return y.astype(x.dtype, copy=False)


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """scipy.signal.correlate (direct) per output channel over its group's input channels."""
    return _conv(x, w, b, stride, padding, dilation, groups, 1)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """scipy.signal.correlate (direct) per output channel over its group's input channels."""
    return _conv(x, w, b, stride, padding, dilation, groups, 2)


def conv3d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """scipy.signal.correlate (direct) per output channel over its group's input channels."""
    return _conv(x, w, b, stride, padding, dilation, groups, 3)


def conv1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv1d")


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv2d")


def conv3d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv3d")


# -------------------------------------------------------------------- transposed convolution


def _conv_t(x, w, b, stride, padding, output_padding, groups, dilation, rank: int) -> np.ndarray:
    """scipy.signal.correlate (direct) of the zero-inserted, fully padded input with the
    flipped (dilated) kernel, per output channel over its group's input channels; cropped."""
    x, w = float_input(x), float_input(w, "w")
    geo = conv_transpose_args(x.shape, w.shape, rank, stride, padding, output_padding, groups,
                              dilation)
    n, c = x.shape[:2]
    cg, co_g = c // geo.groups, w.shape[1]
    ext = [dd * (kk - 1) for kk, dd in zip(geo.kernel, geo.dilation, strict=True)]
    # Stride: s - 1 zeros between input cells; then d * (k - 1) zeros at both ends (every
    # partial overlap) and output_padding zeros at the end.
    xz = np.zeros((n, c, *((size - 1) * ss + 1 + 2 * e + op for size, ss, e, op in
                           zip(x.shape[2:], geo.stride, ext, geo.output_padding, strict=True))),
                  x.dtype)
    xz[(slice(None), slice(None), *(slice(e, e + (size - 1) * ss + 1, ss) for size, ss, e in
                                    zip(x.shape[2:], geo.stride, ext, strict=True)))] = x
    wdil = np.zeros((c, co_g, *(e + 1 for e in ext)), x.dtype)
    wdil[(slice(None), slice(None), *(slice(None, None, dd) for dd in geo.dilation))] = w
    flipped = wdil[(slice(None), slice(None), *(slice(None, None, -1),) * rank)]
    crop = (slice(None), 0, *(slice(p, p + o) for p, o in zip(geo.pads, geo.out, strict=True)))
    out = []
    for o in range(co_g * geo.groups):
        g, j = divmod(o, co_g)
        xs = xz[:, g * cg:(g + 1) * cg]
        kernel = flipped[g * cg:(g + 1) * cg, j][None]  # (1, C/G, *k')
        full = signal.correlate(xs, kernel, mode="valid", method="direct")  # (N, 1, ...)
        out.append(full[crop])
    y = np.stack(out, axis=1).astype(x.dtype, copy=False)
    if b is not None:
        y = y + float_input(b, "b").reshape(channel_shape(rank + 2))
    return y.astype(x.dtype, copy=False)


def conv_transpose1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """scipy.signal.correlate of the zero-inserted input with the flipped kernel, cropped."""
    return _conv_t(x, w, b, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """scipy.signal.correlate of the zero-inserted input with the flipped kernel, cropped."""
    return _conv_t(x, w, b, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """scipy.signal.correlate of the zero-inserted input with the flipped kernel, cropped."""
    return _conv_t(x, w, b, stride, padding, output_padding, groups, dilation, 3)


def conv_transpose1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                              stride: object = 1,
                              padding: object = 0, output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv_transpose1d")


def conv_transpose2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                              stride: object = 1,
                              padding: object = 0, output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv_transpose2d")


def conv_transpose3d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                              stride: object = 1,
                              padding: object = 0, output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("conv_transpose3d")


# ------------------------------------------------------------------------------- max pooling


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              rank: int) -> np.ndarray:
    """scipy.ndimage.maximum_filter on a -inf padded input with a dilated footprint, subsampled."""
    x = float_input(x)
    if return_indices:
        raise Unsupported("scipy-max-filter-no-indices",
                          "scipy.ndimage.maximum_filter returns values only")
    if np.isnan(x).any():
        raise Unsupported("max-pool-nan",
                          "scipy.ndimage.maximum_filter's NaN result depends on its position")
    geo = pool_geometry(x.shape, rank, kernel_size, stride, padding, dilation, ceil_mode)
    xp = np.pad(x, ((0, 0), (0, 0), *geo.floor_pads), constant_values=-np.inf)
    span = tuple(d * (k - 1) + 1 for k, d in zip(geo.kernel, geo.dilation, strict=True))
    footprint = np.zeros((1, 1, *span), bool)
    footprint[(0, 0, *(slice(None, None, d) for d in geo.dilation))] = True
    full = ndimage.maximum_filter(xp, footprint=footprint, mode="constant", cval=-np.inf)
    # ndimage centres a footprint of length L at L // 2: the window starting at i is output
    # i + L // 2.
    picks = [L // 2 + np.arange(o) * s for L, o, s in zip(span, geo.out, geo.stride, strict=True)]
    y = full[np.ix_(np.arange(x.shape[0]), np.arange(x.shape[1]), *picks)]
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def max_pool1d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """scipy.ndimage.maximum_filter on a -inf padded input with a dilated footprint, subsampled."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """scipy.ndimage.maximum_filter on a -inf padded input with a dilated footprint, subsampled."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool3d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """scipy.ndimage.maximum_filter on a -inf padded input with a dilated footprint, subsampled."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def max_pool1d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("max_pool1d")


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("max_pool2d")


def max_pool3d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("max_pool3d")


# --------------------------------------------------------------------------- average pooling


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              rank: int) -> np.ndarray:
    """Window sums by scipy.ndimage.correlate (ones) of the zero-padded input / the divisor."""
    x = float_input(x)
    geo = avg_pool_geometry(x.shape, rank, kernel_size, stride, padding, ceil_mode)
    div = avg_divisors(geo, bool(count_include_pad), divisor_override)
    xp = np.pad(x, ((0, 0), (0, 0), *geo.floor_pads))
    sums = ndimage.correlate(xp, np.ones((1, 1, *geo.kernel), dtype=x.dtype), mode="constant")
    # ndimage centres a kernel of length k at k // 2: the window starting at i is output
    # i + k // 2.
    picks = [k // 2 + np.arange(o) * s for k, o, s in zip(geo.kernel, geo.out, geo.stride,
                                                          strict=True)]
    y = sums[np.ix_(np.arange(x.shape[0]), np.arange(x.shape[1]), *picks)] / div
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def avg_pool1d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """scipy.ndimage.correlate window sums / the contract's divisor."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 1)


def avg_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """scipy.ndimage.correlate window sums / the contract's divisor."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def avg_pool3d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """scipy.ndimage.correlate window sums / the contract's divisor."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3)


def avg_pool1d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("avg_pool1d")


def avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("avg_pool2d")


def avg_pool3d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("avg_pool3d")


# ------------------------------------------------------------------------------- batch norm


def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
               training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training: scipy.stats.moment (biased variance) per channel; eval: plain arithmetic."""
    x = float_input(x)
    m = bn_check(x, running_mean, running_var, training)
    c, shape = x.shape[1], channel_shape(x.ndim)
    g = np.ones(c, x.dtype) if gamma is None else float_input(gamma, "gamma")
    bb = np.zeros(c, x.dtype) if beta is None else float_input(beta, "beta")
    axes = bn_axes(x.ndim)
    if training:
        mean = np.mean(x, axis=axes)
        var = stats.moment(x, order=2, axis=axes)  # central, biased (ddof 0)
    else:
        mean, var = np.asarray(running_mean), np.asarray(running_var)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    y = (y * g.reshape(shape) + bb.reshape(shape)).astype(x.dtype, copy=False)
    if not training or running_mean is None:
        return y
    new_mean = (1 - momentum) * np.asarray(running_mean) + momentum * mean
    new_var = (1 - momentum) * np.asarray(running_var) + momentum * var * (m / (m - 1))
    return y, new_mean.astype(x.dtype), new_var.astype(x.dtype)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None,
                        eps: float = 1e-5, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None,
                        training: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("batch_norm")
