"""The forward half of the nnref contract on SciPy (scipy.ndimage, scipy.signal, scipy.stats).

Every SciPy routine used here is N-dimensional, so one forward per op family serves every rank.
The contract functions (conv1d, conv2d, conv3d, ..., pad) are generated from TABLE, one Row per
op record, by conformance.backends.table.contract_functions: it binds nnref's signature, checks
the array arguments' dtypes (float32 / float64) and calls the forward, passing the rank its name
fixes to the forwards of ranked families (conv3d -> rank=3).

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
  NaN result, as for max pooling (scipy-adaptive-max-no-indices, adaptive-max-pool-nan).
- SciPy has no automatic differentiation: every *_backward raises Unsupported (scipy-no-autodiff).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

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
    instance_norm_check,
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
    norm_affine,
    norm_groups,
    norm_real,
    normalized_axes,
    pad_pairs,
    pool_geometry,
    spatial_rank,
)
from conformance.backends.table import Row, contract_functions

NAME = "scipy"
_NDIMAGE_MODES = {
    "constant": "grid-constant",
    "reflect": "mirror",
    "replicate": "nearest",
    "circular": "grid-wrap",
}


# ----------------------------------------------------------------------------------- padding


def _pad(x: np.ndarray, pad_width: object, mode: str, value: float) -> np.ndarray:
    """scipy.ndimage.map_coordinates (order 0, integer coordinates) with ndimage's mode names."""
    pads = pad_pairs(pad_width, spatial_rank(x.shape), "pad_width")
    check_pad(x.shape, pads, mode)
    axes = [np.arange(x.shape[0]), np.arange(x.shape[1])]
    axes += [np.arange(-b, n + a) for n, (b, a) in zip(x.shape[2:], pads, strict=True)]
    coords = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(x, np.stack(coords), order=0, mode=_NDIMAGE_MODES[mode],
                                   cval=value, output=x.dtype)


# ------------------------------------------------------------------------------- convolution


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: object, padding: object,
          dilation: object, groups: int, *, rank: int) -> np.ndarray:
    """scipy.signal.correlate (direct) per output channel over its group's input channels."""
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
        y = y + b.reshape(channel_shape(rank + 2))
    return y.astype(x.dtype, copy=False)


# -------------------------------------------------------------------- transposed convolution


def _conv_t(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: object,
            padding: object, output_padding: object, groups: int, dilation: object, *,
            rank: int) -> np.ndarray:
    """scipy.signal.correlate (direct) of the zero-inserted, fully padded input with the
    flipped (dilated) kernel, per output channel over its group's input channels; cropped."""
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
        y = y + b.reshape(channel_shape(rank + 2))
    return y.astype(x.dtype, copy=False)


# ------------------------------------------------------------------------------- max pooling


def _max_pool(x: np.ndarray, kernel_size: object, stride: object, padding: object,
              dilation: object, ceil_mode: bool, return_indices: bool, *,
              rank: int) -> np.ndarray:
    """scipy.ndimage.maximum_filter on a -inf padded input with a dilated footprint, subsampled."""
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


# --------------------------------------------------------------------------- average pooling


def _avg_pool(x: np.ndarray, kernel_size: object, stride: object, padding: object,
              ceil_mode: bool, count_include_pad: bool, divisor_override: int | None, *,
              rank: int) -> np.ndarray:
    """Window sums by scipy.ndimage.correlate (ones) of the zero-padded input / the divisor."""
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


# --------------------------------------------------------------------------------- LP pooling


def _lp_pool(x: np.ndarray, norm_type: float, kernel_size: object, stride: object,
             ceil_mode: bool, *, rank: int) -> np.ndarray:
    """Window sums of x ** p by scipy.ndimage.correlate (ones, zeros past the end for
    ceil_mode's cells), times K / count, ** (1 / p)."""
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


def _adaptive(kind: str, x: np.ndarray, output_size: object, rank: int) -> np.ndarray:
    """Separable: the mean (maximum) over a product of intervals is the mean (maximum), axis by
    axis, of the per-axis interval means (maxima)."""
    _, bins = adaptive_bins(x.shape, rank, output_size)
    y = x
    for a in range(rank):
        y = _adaptive_axis(y, 2 + a, bins[a], kind)
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def _adaptive_avg(x: np.ndarray, output_size: object, *, rank: int) -> np.ndarray:
    """Per-axis bin means by scipy.ndimage.correlate1d (ones) / the bin length."""
    return _adaptive("avg", x, output_size, rank)


def _adaptive_max(x: np.ndarray, output_size: object, return_indices: bool, *,
                  rank: int) -> np.ndarray:
    """Per-axis bin maxima by scipy.ndimage.maximum_filter1d; values only."""
    if return_indices:
        raise Unsupported("scipy-adaptive-max-no-indices",
                          "scipy.ndimage.maximum_filter1d returns values only")
    if np.isnan(x).any():
        raise Unsupported("adaptive-max-pool-nan",
                          "scipy.ndimage.maximum_filter1d's NaN result depends on its position")
    return _adaptive("max", x, output_size, rank)


# ------------------------------------------------------------------------------- batch norm


def _batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                running_mean: np.ndarray | None, running_var: np.ndarray | None,
                training: bool, momentum: float,
                eps: float) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training: scipy.stats.moment (biased variance) per channel; eval: plain arithmetic."""
    m = bn_check(x, running_mean, running_var, training)
    c, shape = x.shape[1], channel_shape(x.ndim)
    g = np.ones(c, x.dtype) if gamma is None else gamma
    bb = np.zeros(c, x.dtype) if beta is None else beta
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


# ------------------------------------------------------------ layer, group, instance norm
# An independent two-pass formulation: each normalisation group is a row of an (R, m) view;
# np.mean, then scipy.stats.moment (order 2: the mean square of the row minus its mean, the
# biased variance), then (x - mean) / sqrt(var + eps) * gamma + beta.


def _row_statistics(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of rows (R, m): the mean and the biased variance, (R, 1) each."""
    return (np.mean(rows, axis=1, keepdims=True),
            stats.moment(rows, order=2, axis=1, keepdims=True))


def _affine(xhat: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
            shape: tuple[int, ...]) -> np.ndarray:
    """xhat * gamma + beta, gamma and beta reshaped to `shape` (None: ones / zeros)."""
    y = xhat if gamma is None else xhat * gamma.reshape(shape)
    return y if beta is None else y + beta.reshape(shape)


def _layer_norm(x: np.ndarray, normalized_shape: object, gamma: np.ndarray | None,
                beta: np.ndarray | None, eps: float) -> np.ndarray:
    """Rows over the trailing axes normalized_shape (m = prod of them); gamma, beta of that
    shape, elementwise."""
    axes = normalized_axes(x.shape, normalized_shape)
    norm_affine(gamma, "gamma", axes, x)
    norm_affine(beta, "beta", axes, x)
    eps = norm_real(eps, "eps", 0.0)
    rows = x.reshape(-1, math.prod(axes))
    mean, var = _row_statistics(rows)
    xhat = ((rows - mean) / np.sqrt(var + eps)).reshape(x.shape)
    return _affine(xhat, gamma, beta, axes).astype(x.dtype, copy=False)


def _group_norm(x: np.ndarray, num_groups: int, gamma: np.ndarray | None,
                beta: np.ndarray | None, eps: float) -> np.ndarray:
    """Rows x[n, group g] (N * G of them, m = C / G * prod(S)); gamma, beta per channel."""
    groups = norm_groups(x, num_groups)
    norm_affine(gamma, "gamma", (x.shape[1],), x)
    norm_affine(beta, "beta", (x.shape[1],), x)
    eps = norm_real(eps, "eps", 0.0)
    rows = x.reshape(x.shape[0] * groups, -1)
    mean, var = _row_statistics(rows)
    xhat = ((rows - mean) / np.sqrt(var + eps)).reshape(x.shape)
    return _affine(xhat, gamma, beta, channel_shape(x.ndim)).astype(x.dtype, copy=False)


def _instance_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                   running_mean: np.ndarray | None, running_var: np.ndarray | None,
                   training: bool, momentum: float,
                   eps: float) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training: rows x[n, c] (m = prod(S)); with running statistics also torch's update, the
    per-instance means and unbiased variances (var * m / (m - 1)) averaged over N. Eval: the
    running statistics for every instance."""
    m = instance_norm_check(x, running_mean, running_var, training)
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        norm_affine(value, name, (x.shape[1],), x)
    momentum, eps = norm_real(momentum, "momentum", 0.0, 1.0), norm_real(eps, "eps", 0.0)
    shape = channel_shape(x.ndim)
    if not training:
        xhat = (x - running_mean.reshape(shape)) / np.sqrt(  # type: ignore[union-attr]
            running_var.reshape(shape) + eps)  # type: ignore[union-attr]
        return _affine(xhat, gamma, beta, shape).astype(x.dtype, copy=False)
    rows = x.reshape(-1, m)
    mean, var = _row_statistics(rows)
    xhat = ((rows - mean) / np.sqrt(var + eps)).reshape(x.shape)
    y = _affine(xhat, gamma, beta, shape).astype(x.dtype, copy=False)
    if running_mean is None:
        return y
    n, c = x.shape[:2]
    new_mean = (1 - momentum) * running_mean + momentum * mean.reshape(n, c).mean(axis=0)
    unbiased = var.reshape(n, c) * (m / (m - 1))
    new_var = (1 - momentum) * running_var + momentum * unbiased.mean(axis=0)  # type: ignore[operator]
    return y, new_mean.astype(x.dtype, copy=False), new_var.astype(x.dtype, copy=False)


# ----------------------------------------------------------------- activations, dense layer
# Independent formulations: relu by np.maximum (its -0.0 -> +0.0 undone where x == 0), elu by
# scipy.special.expm1, sigmoid by scipy.special.expit, linear by np.einsum. No autodiff.


def _relu(x: np.ndarray) -> np.ndarray:
    """np.maximum(x, 0), x itself where x == 0 (the sign of -0.0)."""
    return np.where(x == 0, x, np.maximum(x, x.dtype.type(0)))


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """alpha * scipy.special.expm1(min(x, 0)) + max(x, 0)."""
    a = x.dtype.type(check_alpha(alpha))
    zero = x.dtype.type(0)
    out = a * special.expm1(np.minimum(x, zero)) + np.maximum(x, zero)
    return out.astype(x.dtype, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """scipy.special.expit."""
    return special.expit(x).astype(x.dtype, copy=False)


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """np.einsum('...i,oi->...o', x, w) + b."""
    linear_check(x, w, b)
    y = np.einsum("...i,oi->...o", x, w)
    return (y if b is None else y + b).astype(x.dtype, copy=False)




# ---------------------------------------------------------------------------------- the table


def _run(forward: Callable[..., Any], rank: int | None, arguments: dict[str, Any]) -> Any:
    """A plain call (the arguments are NumPy arrays already dtype-checked by table.py); the
    forwards of ranked families (conv1d / conv2d / conv3d) also get the rank their name fixes."""
    return forward(**arguments) if rank is None else forward(**arguments, rank=rank)


def _row(forward: Callable[..., Any], doc: str) -> Row:
    return Row(forward, backward_unsupported="scipy-no-autodiff", doc=doc)


TABLE: dict[str, Row] = {
    "pad": _row(_pad, "scipy.ndimage.map_coordinates (order 0) with ndimage's mode names."),
    "conv": _row(_conv, "scipy.signal.correlate (direct) per output channel over its group's "
                 "input channels, zero-dilated kernel, subsampled by the stride."),
    "conv_transpose": _row(_conv_t, "scipy.signal.correlate of the zero-inserted, fully padded "
                           "input with the flipped, zero-dilated kernel, cropped."),
    "max_pool": _row(_max_pool, "scipy.ndimage.maximum_filter on a -inf padded input with a "
                     "dilated footprint, subsampled; values only."),
    "avg_pool": _row(_avg_pool, "scipy.ndimage.correlate window sums (ones) of the zero-padded "
                     "input / the contract's divisor."),
    "lp_pool": _row(_lp_pool, "scipy.ndimage.correlate window sums of x ** p, times K / count, "
                    "** (1 / p)."),
    "adaptive_avg_pool": _row(_adaptive_avg, "per-axis bin means by scipy.ndimage.correlate1d "
                              "(ones) / the bin length."),
    "adaptive_max_pool": _row(_adaptive_max, "per-axis bin maxima by "
                              "scipy.ndimage.maximum_filter1d; values only."),
    "batch_norm": _row(_batch_norm, "training: scipy.stats.moment (biased variance) per "
                       "channel; eval: plain arithmetic."),
    "layer_norm": _row(_layer_norm, "rows over the trailing axes: np.mean, then "
                       "scipy.stats.moment (biased variance; two passes)."),
    "group_norm": _row(_group_norm, "rows per (sample, group): np.mean, then scipy.stats.moment "
                       "(biased variance; two passes)."),
    "instance_norm": _row(_instance_norm, "rows per (sample, channel): np.mean, then "
                          "scipy.stats.moment; eval and the running statistics' update by "
                          "plain arithmetic."),
    "relu": _row(_relu, "np.maximum(x, 0), x itself where x == 0 (the sign of -0.0)."),
    "elu": _row(_elu, "alpha * scipy.special.expm1(min(x, 0)) + max(x, 0)."),
    "sigmoid": _row(_sigmoid, "scipy.special.expit."),
    "linear": _row(_linear, "np.einsum('...i,oi->...o', x, w) + b."),
}

globals().update(contract_functions(TABLE, NAME, run=_run, module=__name__))
