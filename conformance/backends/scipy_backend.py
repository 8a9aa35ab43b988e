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
- LP pooling: the same window sums of x ** p (correlate), scaled by K / count, ** (1 / p).
- Average pooling is scipy.ndimage.correlate with a kernel of ones on the zero-padded input
  (the window sums, each a direct sum of its k cells: uniform_filter's running sums would err
  with the row length and turn an inf into NaN), subsampled and divided by the contract's divisor.
- Adaptive pooling is separable: per axis, scipy.ndimage.correlate1d with ones (direct sums of a
  bin's cells, / its length) or maximum_filter1d, one filter per bin length (at most two per
  axis), picked at each bin's start. Adaptive max returns no indices and NaN positions decide its
  NaN result, as for max pooling (scipy-max-filter-no-indices, max-pool-nan).
- SciPy has no automatic differentiation: every *_backward raises Unsupported (scipy-no-autodiff).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal, special, stats

from conformance.backends import Unsupported
from conformance.backends.arguments import (
    adaptive_bins,
    avg_divisors,
    avg_pool_geometry,
    bn_axes,
    bn_check,
    channel_shape,
    check_alpha,
    check_pad,
    conv_args,
    conv_transpose_args,
    float_input,
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
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


# --------------------------------------------------------------------------------- LP pooling


def _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, rank: int) -> np.ndarray:
    """Window sums of x ** p by scipy.ndimage.correlate (ones, zeros past the end for
    ceil_mode's cells), times K / count, ** (1 / p)."""
    x = float_input(x)
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(x.shape, rank, kernel_size, stride, ceil_mode)
    counts = avg_divisors(geo, True, None)  # no padding: the input cells of each window
    with np.errstate(invalid="ignore"):
        xp = np.pad(np.power(x, x.dtype.type(p)), ((0, 0), (0, 0), *geo.floor_pads))
        sums = ndimage.correlate(xp, np.ones((1, 1, *geo.kernel), dtype=x.dtype),
                                 mode="constant")
        # ndimage centres a kernel of length k at k // 2: the window starting at i is output
        # i + k // 2.
        picks = [k // 2 + np.arange(o) * s for k, o, s in zip(geo.kernel, geo.out, geo.stride,
                                                              strict=True)]
        win = sums[np.ix_(np.arange(x.shape[0]), np.arange(x.shape[1]), *picks)]
        y = np.power(win * (np.prod(geo.kernel) / counts), 1.0 / p)
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def lp_pool1d(x: np.ndarray, norm_type: float, kernel_size: object, stride: object = None,
              ceil_mode: bool = False) -> np.ndarray:
    """scipy.ndimage.correlate window sums of x ** p, scaled, ** (1 / p)."""
    return _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(x: np.ndarray, norm_type: float, kernel_size: object, stride: object = None,
              ceil_mode: bool = False) -> np.ndarray:
    """scipy.ndimage.correlate window sums of x ** p, scaled, ** (1 / p)."""
    return _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool1d_backward(dy: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: object,
                       stride: object = None, ceil_mode: bool = False) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("lp_pool1d")


def lp_pool2d_backward(dy: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: object,
                       stride: object = None, ceil_mode: bool = False) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("lp_pool2d")
# -------------------------------------------------------------------------- adaptive pooling


def _adaptive_axis(v: np.ndarray, axis: int, bins: list[tuple[int, int]], kind: str
                   ) -> np.ndarray:
    """Along one axis, every bin's mean (correlate1d with ones: a direct sum of its cells, then
    / its length) or maximum (maximum_filter1d), picked at the bin's start. Bins along an axis
    have at most two lengths: one filter per length."""
    out = np.empty((*v.shape[:axis], len(bins), *v.shape[axis + 1:]), dtype=v.dtype)
    for length in sorted({e - s for s, e in bins}):
        if kind == "avg":
            full = ndimage.correlate1d(v, np.ones(length, dtype=v.dtype), axis=axis,
                                       mode="constant") / length
        else:
            full = ndimage.maximum_filter1d(v, length, axis=axis, mode="constant",
                                            cval=-np.inf)
        which = [i for i, (s, e) in enumerate(bins) if e - s == length]
        # ndimage centres a filter of length L at L // 2: the bin starting at s is output
        # s + L // 2.
        picks = [bins[i][0] + length // 2 for i in which]
        out[(slice(None),) * axis + (which,)] = np.take(full, picks, axis=axis)
    return out


def _adaptive(kind: str, x, output_size, rank: int) -> np.ndarray:
    """Separable: the mean (maximum) over a product of intervals is the mean (maximum), axis by
    axis, of the per-axis interval means (maxima)."""
    x = float_input(x)
    _, bins = adaptive_bins(x.shape, rank, output_size)
    y = x
    for a in range(rank):
        y = _adaptive_axis(y, 2 + a, bins[a], kind)
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def _adaptive_max(x, output_size, rank: int, return_indices: object) -> np.ndarray:
    if return_indices:
        raise Unsupported("scipy-adaptive-max-no-indices",
                          "scipy.ndimage.maximum_filter1d returns values only")
    if np.isnan(np.asarray(x)).any():
        raise Unsupported("adaptive-max-pool-nan",
                          "scipy.ndimage.maximum_filter1d's NaN result depends on its position")
    return _adaptive("max", x, output_size, rank)


def adaptive_avg_pool1d(x: np.ndarray, output_size: object) -> np.ndarray:
    """Per-axis bin means by scipy.ndimage.correlate1d (ones) / the bin length."""
    return _adaptive("avg", x, output_size, 1)


def adaptive_avg_pool1d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("adaptive_avg_pool1d")


def adaptive_max_pool1d(x: np.ndarray, output_size: object, return_indices: bool = False
                        ) -> np.ndarray:
    """Per-axis bin maxima by scipy.ndimage.maximum_filter1d; values only."""
    return _adaptive_max(x, output_size, 1, return_indices)


def adaptive_max_pool1d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("adaptive_max_pool1d")


def adaptive_avg_pool2d(x: np.ndarray, output_size: object) -> np.ndarray:
    """Per-axis bin means by scipy.ndimage.correlate1d (ones) / the bin length."""
    return _adaptive("avg", x, output_size, 2)


def adaptive_avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("adaptive_avg_pool2d")


def adaptive_max_pool2d(x: np.ndarray, output_size: object, return_indices: bool = False
                        ) -> np.ndarray:
    """Per-axis bin maxima by scipy.ndimage.maximum_filter1d; values only."""
    return _adaptive_max(x, output_size, 2, return_indices)


def adaptive_max_pool2d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("adaptive_max_pool2d")


def adaptive_avg_pool3d(x: np.ndarray, output_size: object) -> np.ndarray:
    """Per-axis bin means by scipy.ndimage.correlate1d (ones) / the bin length."""
    return _adaptive("avg", x, output_size, 3)


def adaptive_avg_pool3d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("adaptive_avg_pool3d")


def adaptive_max_pool3d(x: np.ndarray, output_size: object, return_indices: bool = False
                        ) -> np.ndarray:
    """Per-axis bin maxima by scipy.ndimage.maximum_filter1d; values only."""
    return _adaptive_max(x, output_size, 3, return_indices)


def adaptive_max_pool3d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("adaptive_max_pool3d")


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


# ----------------------------------------------------------------- activations, dense layer
# Independent formulations: relu by np.maximum (its -0.0 -> +0.0 undone where x == 0), elu by
# scipy.special.expm1, sigmoid by scipy.special.expit, linear by np.einsum. No autodiff.


def relu(x: np.ndarray) -> np.ndarray:
    """np.maximum(x, 0), x itself where x == 0 (the sign of -0.0)."""
    x = float_input(x)
    return np.where(x == 0, x, np.maximum(x, x.dtype.type(0)))


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("relu")


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """alpha * scipy.special.expm1(min(x, 0)) + max(x, 0)."""
    x = float_input(x)
    a = x.dtype.type(check_alpha(alpha))
    zero = x.dtype.type(0)
    out = a * special.expm1(np.minimum(x, zero)) + np.maximum(x, zero)
    return out.astype(x.dtype, copy=False)


def elu_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("elu")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """scipy.special.expit."""
    x = float_input(x)
    return special.expit(x).astype(x.dtype, copy=False)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("sigmoid")


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """np.einsum('...i,oi->...o', x, w) + b."""
    x, w = float_input(x), float_input(w, "w")
    b = None if b is None else float_input(b, "b")
    linear_check(x, w, b)
    y = np.einsum("...i,oi->...o", x, w)
    return (y if b is None else y + b).astype(x.dtype, copy=False)


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Not expressible: SciPy has no autodiff."""
    raise _no_autodiff("linear")
