"""The nnref contract on TensorFlow (tf.nn, CPU, eager), at spatial ranks 1, 2 and 3.

A table over the op records (conformance/backends/table.py). Per op family one forward function
computes the op at any rank on TF tensors: ``forward(rank, x, ..., **parameters)`` takes the
contract's arguments by name, its array arguments (the parameters annotated ``tf.Tensor``) as
eager tensors in x's dtype, and returns a tensor or a tuple of them (max-pool indices as NumPy
int64). ``_run`` wraps the contract's NumPy arguments (private copies) and converts the results
back (floats in x's dtype, indices int64); ``_autodiff`` turns any forward into its ``_backward``
function with tf.GradientTape (output_gradients=dy). Custom backward functions exist only where
TF's gradient needs the contract's corrections: conv (gradient-safe compositions), pad (no x),
relu / elu (NaN products), sigmoid (saturated gradient). ``TABLE`` has one Row per record, and
``contract_functions`` generates conv1d, conv1d_backward, ..., pad with nnref's signatures.

Conventions handled here (see conformance/divergences.toml):
- CPU kernels are channels-last only in float64 (tf-cpu-nhwc-only): conv and pooling transpose
  (N, C, *S) <-> (N, *S, C) (NWC, NHWC, NDHWC) inside the adapter. Every NumPy input is wrapped
  with tf.constant(x, dtype=...).
- tf.pad has CONSTANT / REFLECT / SYMMETRIC only (pad-mode-names): replicate and circular are
  composed with tf.gather index maps.
- Conv padding is always explicit (tf.pad, then VALID). TF's own kernels run wherever they work:
  tf.nn.conv1d / conv2d (grouped, dilated and strided forward) and tf.nn.conv3d. Compositions:
  gradients of dilated convs, and dilated float64 / float16 conv3d (tf-dilated-conv-gradient,
  tf-conv3d-dilation-float64), run a dilated conv at stride 1 (tf.nn.convolution,
  space-to-batch) followed by a strided slice; grouped gradients and every grouped conv3d
  (tf-grouped-conv-gradient-cpu, tf-conv3d-no-groups) split into one conv per group;
  tf.nn.convolution always gets its data_format (tf-convolution-3d-gradient-data-format);
  float32 / bfloat16 convs with one output column and a last-axis stride > 1 run at last-axis
  stride 1 (tf-onednn-conv-width1-garbage); so do transposed convs of one input column, whose
  gradient is such a conv.
- Transposed convolution: tf.nn.conv{1,2,3}d_transpose take (*k, Co, C) filters, an explicit
  output_shape and SAME / VALID only: the adapter runs VALID with the uncropped output_shape,
  appends output_padding zeros and crops the contract's padding (tf-conv-transpose-output-shape);
  groups are one call per group (tf-conv-transpose-no-groups); float64 / float16 dilation is a
  zero-dilated kernel (tf-conv-transpose-dilation-float64).
- Max pooling: tf.nn.max_pool_with_argmax (4-D only: tf-maxpool-argmax-4d-only) on an input
  padded with -inf (explicit padding, ceil_mode by extra -inf cells at the end:
  maxpool-ceil-mode). 1-D pools are 2-D pools of a (N, 1, L, C) input; 3-D pools take, per
  depth tap of the window, a 2-D pool of the (H, W) planes it reads and keep the first maximum
  over the taps (tf.nn.max_pool3d has no float64 and splits no ties: tf-maxpool3d-no-float64,
  tf-maxpool3d-gradient-ties). TF has no pooling dilation (tf-maxpool-no-dilation): H / W
  dilation is composed by pooling each dilation phase, depth dilation by the choice of taps. TF's
  argmax is an NHWC offset (tf-maxpool-argmax-layout), converted here. TF keeps NaN only when it
  comes first in its window (max-pool-nan): NaN inputs raise Unsupported.
- Average pooling: tf.nn.avg_pool1d / 2d / 3d pad only by SAME / VALID and never count
  padding or honour ceil_mode (tf-avgpool-padding-not-counted): the adapter pads with zeros
  explicitly (ceil_mode by extra zeros at the end), pools VALID (the mean of the k cells of every
  window) and rescales by k / the contract's divisor (in float64). tf.nn.avg_pool3d has no
  float64 or float16 kernel (tf-avgpool3d-no-float64): such a 3-D pool sums, over the depth
  taps, 2-D pools of the (H, W) planes each tap reads.
- LP pooling: TF has none. Composed: tf.pow(x, p), zeros appended for ceil_mode's extra
  cells, tf.nn.avg_pool1d / 2d (VALID) of that times K (the window sums), times K / count, and
  tf.pow(., 1 / p); a window summing to 0 gives 0 and passes no gradient (tf.where), as the
  contract says.
- Adaptive pooling (TF has none): adaptive average is tf.reduce_mean of every bin's slice, axis
  by axis; adaptive max takes per bin tf.argmax (the first maximum) + tf.gather, exact and with
  the whole gradient on the winner (tf.reduce_max's gradient splits among ties). tf.argmax skips
  NaN: NaN inputs raise Unsupported (adaptive-max-pool-nan).
- Batch norm: tf.nn.moments + tf.nn.batch_normalization (fused batch norm has no float64:
  tf-fused-batchnorm-no-float64); running statistics are updated here with the contract's
  (torch's) convention (batchnorm-momentum-convention, torch-running-var-unbiased).
- float16 / bfloat16 (conformance.low_precision): float16 runs on TF's Eigen CPU kernels, which
  lack what float64 lacks (tf-float16-eigen-kernels: composed as float64 is); bfloat16 on
  oneDNN, like float32. Both compute in the storage format (each operation's result rounded to
  it: tf-low-precision-storage-arithmetic), so every function is held to the
  storage-accumulation bound there.
- Layer, group and instance norm (no tf.nn op): tf.nn.moments over each group's axes (two
  passes), layer norm as (x - mean) / sqrt(var + eps) * gamma + beta, group and instance norm
  folded by tf.nn.batch_normalization as torch folds them; instance norm's running statistics
  with the contract's (torch's) convention, the instance means and unbiased variances averaged
  over N.
"""

from __future__ import annotations

from ..frameworks import tf_environment

tf_environment()  # oneDNN kernels on every CPU, quiet logs (conformance/frameworks.py)

import functools  # noqa: E402
import inspect  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from conformance.backends import Unsupported, backend  # noqa: E402
from conformance.backends.arguments import (  # noqa: E402
    PoolGeometry,
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
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
    norm_groups,
    norm_real,
    normalized_axes,
    pad_pairs,
    pool_geometry,
    product_nans,
    spatial_rank,
    unpadded_shape,
)
from conformance.backends.table import LowPrecision, Row, contract_functions  # noqa: E402
from conformance.ops import record  # noqa: E402

NAME = "tensorflow"
_DATA_FORMAT = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
# TF's CPU runs float32 and bfloat16 on oneDNN, float64 and float16 on its Eigen kernels: the
# Eigen side has no AvgPool3D / MaxPool3D and no dilated Conv3D or transposed conv
# (tf-avgpool3d-no-float64, tf-conv3d-dilation-float64, tf-conv-transpose-dilation-float64,
# tf-float16-eigen-kernels), the oneDNN side has the one-column garbage
# (tf-onednn-conv-width1-garbage).
_ONEDNN = (tf.float32, tf.bfloat16)
_EIGEN = (tf.float64, tf.float16)


def _to_last(rank: int) -> tuple[int, ...]:
    """(N, C, *S) -> (N, *S, C)."""
    return (0, *range(2, rank + 2), 1)


def _to_first(rank: int) -> tuple[int, ...]:
    """(N, *S, C) -> (N, C, *S)."""
    return (0, rank + 1, *range(1, rank + 1))


def _c(a: np.ndarray, dtype: np.dtype) -> tf.Tensor:
    """tf.constant with an explicit dtype (never let TF pick float32 for a float64 array)."""
    return tf.constant(np.array(a, copy=True), dtype=tf.as_dtype(np.dtype(dtype)))


# ------------------------------------------------------------------ NumPy <-> TF, autodiff


@functools.cache
def _tensor_parameters(forward: Callable[..., Any]) -> frozenset[str]:
    """The parameters of a forward function that take tensors (annotated tf.Tensor)."""
    return frozenset(p.name for p in inspect.signature(forward).parameters.values()
                     if "Tensor" in str(p.annotation))


def _tensors(forward: Callable[..., Any], arguments: dict[str, Any],
             dtype: np.dtype) -> dict[str, Any]:
    """The contract's arguments for `forward`: its array arguments as tensors of `dtype`."""
    takes = _tensor_parameters(forward)
    return {k: _c(v, dtype) if k in takes and v is not None else v
            for k, v in arguments.items()}


def _numpy(result: Any, dtype: np.dtype) -> Any:
    """A forward's result as the contract's: floats in x's dtype, indices int64 (copies)."""
    if isinstance(result, tuple):
        return tuple(_numpy(r, dtype) for r in result)
    a = np.asarray(result.numpy() if tf.is_tensor(result) else result)
    return np.array(a, dtype=np.int64 if a.dtype.kind in "iu" else dtype, copy=True)


def _run(forward: Callable[..., Any], rank: int | None, arguments: dict[str, Any]) -> Any:
    """The table's run hook: forward(rank, **arguments) on tensors in x's dtype, as NumPy."""
    dtype = arguments["x"].dtype
    return _numpy(forward(rank, **_tensors(forward, arguments, dtype)), dtype)


def _autodiff(rec: Any, forward: Callable[..., Any], rank: int | None,
              arguments: dict[str, Any]) -> np.ndarray | tuple[np.ndarray, ...]:
    """The backward contract of `rec` by tf.GradientTape through `forward`.

    The forward runs on ``rec.case_type.gradient_call(arguments)`` (a zero bias, ones for a
    missing gamma); its first output is y, and dy must have y's shape. Returns the gradients
    of y . dy with respect to ``rec.case_type.differentiable`` (zeros where y does not depend
    on an input), in the order of ``backward_outputs``: one array, or a tuple of them.
    """
    case = rec.case_type
    call = case.gradient_call(arguments)
    dtype = call["x"].dtype
    tensors = _tensors(forward, call, dtype)
    with tf.GradientTape() as tape:
        tape.watch([tensors[n] for n in case.differentiable if tensors.get(n) is not None])
        out = forward(rank, **tensors)
    y = out[0] if isinstance(out, tuple) else out
    dy = arguments["dy"]
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    sources = [tensors[n] for n in case.differentiable]
    grads = tape.gradient(y, sources, output_gradients=_c(dy, dtype))
    dxs = tuple(_numpy(tf.zeros_like(s) if g is None else tf.convert_to_tensor(g), dtype)
                for s, g in zip(sources, grads, strict=True))
    return dxs[0] if len(case.backward_outputs) == 1 else dxs


# ----------------------------------------------------------------------------------- padding


def _gather_pad(x: tf.Tensor, pads, mode: str) -> tf.Tensor:
    """replicate / circular composed with index maps along each spatial axis (2, 3, ...)."""
    for axis, (before, after) in enumerate(pads, start=2):
        n = int(x.shape[axis])
        src = np.arange(-before, n + after)
        src = np.clip(src, 0, n - 1) if mode == "replicate" else np.mod(src, n)
        x = tf.gather(x, tf.constant(src, dtype=tf.int64), axis=axis)
    return x


def _tf_pad(x: tf.Tensor, pads, mode: str, value: float) -> tf.Tensor:
    paddings = [[0, 0], [0, 0], *([b, a] for b, a in pads)]
    if mode == "constant":
        return tf.pad(x, paddings, mode="CONSTANT",
                      constant_values=tf.constant(value, dtype=x.dtype))
    if mode == "reflect":
        return tf.pad(x, paddings, mode="REFLECT")
    return _gather_pad(x, pads, mode)


def _pad(rank: None, x: tf.Tensor, pad_width: object, mode: str = "constant",
         value: float = 0.0) -> tf.Tensor:
    """tf.pad (CONSTANT / REFLECT) or a tf.gather index map (replicate / circular)."""
    pads = pad_pairs(pad_width, spatial_rank(tuple(x.shape)), "pad_width")
    check_pad(tuple(x.shape), pads, mode)
    return _tf_pad(x, pads, mode, value)


def _pad_backward(rank: None, dy: np.ndarray, pad_width: object,
                  mode: str = "constant") -> np.ndarray:
    """The adjoint of `pad` by _autodiff at a zero x of the unpadded shape (no x is given)."""
    pads = pad_pairs(pad_width, spatial_rank(dy.shape, "dy"), "pad_width")
    shape = unpadded_shape(dy.shape, pads, pad_width)
    check_pad(shape, pads, mode)
    x = np.zeros(shape, dtype=dy.dtype)
    return _autodiff(record("pad"), _pad, rank,
                     {"dy": dy, "x": x, "pad_width": pad_width, "mode": mode})


# ------------------------------------------------------------------------------- convolution


def _native_conv(xp: tf.Tensor, wk: tf.Tensor, s: tuple[int, ...],
                 d: tuple[int, ...]) -> tf.Tensor:
    """TF's own VALID conv kernel of the rank (grouped only at ranks 1 and 2)."""
    if len(s) == 1:
        return tf.nn.conv1d(xp, wk, stride=s[0], padding="VALID", data_format="NWC",
                            dilations=d[0])
    conv = tf.nn.conv2d if len(s) == 2 else tf.nn.conv3d
    return conv(xp, wk, strides=[1, *s, 1], padding="VALID", dilations=[1, *d, 1])


def _conv_last(xp: tf.Tensor, wk: tf.Tensor, s: tuple[int, ...], d: tuple[int, ...],
               groups: int, differentiable: bool) -> tf.Tensor:
    """VALID cross-correlation of padded channels-last x with (*k, C / G, Co) w.

    Forward runs TF's own kernel where it exists (grouped and dilated-strided forward work at
    ranks 1 and 2). For gradients, groups are split (tf-grouped-conv-gradient-cpu) and a dilated
    conv runs at stride 1 through tf.nn.convolution, then is sliced (tf-dilated-conv-gradient);
    conv3d splits groups always (tf-conv3d-no-groups) and composes float64 dilation
    (tf-conv3d-dilation-float64).
    """
    rank = len(s)
    if (s[-1] > 1 and xp.dtype in _ONEDNN
            and xp.shape[-2] - d[-1] * (wk.shape[rank - 1] - 1) - 1 < s[-1]):
        # One output column with a last-axis stride: oneDNN's kernel returns
        # uninitialised memory for rows after the first (tf-onednn-conv-width1-garbage).
        # Stride 1 on that axis and keeping column 0 computes the same sums.
        y = _conv_last(xp, wk, (*s[:-1], 1), d, groups, differentiable)
        return y[..., :1, :]
    if groups > 1 and (differentiable or rank == 3):
        xs = tf.split(xp, groups, axis=-1)
        ws = tf.split(wk, groups, axis=-1)
        return tf.concat([_conv_last(a, b, s, d, 1, differentiable)
                          for a, b in zip(xs, ws, strict=True)], axis=-1)
    dilated = any(v > 1 for v in d)
    if dilated and (differentiable or (rank == 3 and xp.dtype in _EIGEN)):
        y = tf.nn.convolution(xp, wk, strides=1, padding="VALID", dilations=list(d),
                              data_format=_DATA_FORMAT[rank])
        return y[(slice(None), *(slice(None, None, v) for v in s))]
    return _native_conv(xp, wk, s, d)


def _conv(rank: int, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None, stride: object = 1,
          padding: object = 0, dilation: object = 1, groups: int = 1,
          differentiable: bool = False) -> tf.Tensor:
    """(N, C, *S) x, (Co, C / G, *k) w, (Co,) b -> (N, Co, *So) y: tf.pad (explicit), then
    VALID convolution in channels-last (_conv_last), plus b. ``differentiable``: only the
    compositions whose TF gradients are right (for _conv_backward)."""
    _, s, pads, d = conv_args(tuple(x.shape), tuple(w.shape), rank, stride, padding, dilation,
                              groups)
    xp = tf.pad(tf.transpose(x, _to_last(rank)), [[0, 0], *([b, a] for b, a in pads), [0, 0]])
    wk = tf.transpose(w, (*range(2, rank + 2), 1, 0))  # (Co, C/G, *k) -> (*k, C/G, Co)
    y = tf.transpose(_conv_last(xp, wk, s, d, groups, differentiable), _to_first(rank))
    return y if b is None else y + tf.reshape(b, channel_shape(rank + 2))


_conv_differentiable = functools.partial(_conv, differentiable=True)


def _conv_backward(rank: int, **arguments: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by _autodiff through the gradient-safe compositions (groups split, dilated
    convs at stride 1 then sliced: tf-grouped-conv-gradient-cpu, tf-dilated-conv-gradient)."""
    return _autodiff(record("conv"), _conv_differentiable, rank, arguments)


# -------------------------------------------------------------------- transposed convolution

_CONV_T = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose, 3: tf.nn.conv3d_transpose}


def _zero_dilated(wk: tf.Tensor, d: tuple[int, ...]) -> tf.Tensor:
    """(*k, Co, C) -> (*(d * (k - 1) + 1), Co, C): d - 1 zeros between taps (differentiable)."""
    for axis, dd in enumerate(d):
        if dd == 1:
            continue
        k = int(wk.shape[axis])
        shape = list(wk.shape)
        spread = tf.concat([tf.expand_dims(wk, axis + 1),
                            tf.zeros([*shape[:axis + 1], dd - 1, *shape[axis + 1:]],
                                     dtype=wk.dtype)], axis=axis + 1)
        spread = tf.reshape(spread, [*shape[:axis], k * dd, *shape[axis + 1:]])
        wk = spread[(*(slice(None),) * axis, slice(0, dd * (k - 1) + 1))]
    return wk


def _conv_transpose(rank: int, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None,
                    stride: object = 1, padding: object = 0, output_padding: object = 0,
                    groups: int = 1, dilation: object = 1) -> tf.Tensor:
    """(N, C, *S) x, (C, Co / G, *k) w, (Co,) b -> (N, Co, *So) y, all in TF.

    tf.nn.conv{1,2,3}d_transpose with VALID padding and output_shape = the uncropped size
    (S - 1) * s + d * (k - 1) + 1; then output_padding zeros at the end (cells no input
    reaches) and the contract's padding cropped from both ends (TF's SAME / VALID cannot say
    torch's padding: tf-conv-transpose-output-shape). No groups argument: one call per group,
    concatenated (tf-conv-transpose-no-groups). Dilation is TF's dilations in float32 (forward
    and gradients); float64 has no dilated CPU kernel and runs a zero-dilated kernel instead
    (tf-conv-transpose-dilation-float64).
    """
    geo = conv_transpose_args(tuple(x.shape), tuple(w.shape), rank, stride, padding,
                              output_padding, groups, dilation)
    n, c = int(x.shape[0]), int(x.shape[1])
    xl = tf.transpose(x, _to_last(rank))  # (N, *S, C)
    wk = tf.transpose(w, (*range(2, rank + 2), 1, 0))  # (C, Co/G, *k) -> (*k, Co/G, C)
    d = geo.dilation
    if any(v > 1 for v in d) and x.dtype in _EIGEN:
        wk, d = _zero_dilated(wk, d), (1,) * rank
    uncropped = [f - e for f, e in zip(geo.full, geo.output_padding, strict=True)]
    cg, co_g = c // geo.groups, int(w.shape[1])
    stride = list(geo.stride)
    if stride[-1] > 1 and int(x.shape[-1]) == 1 and x.dtype in _ONEDNN:
        # One input column: the last-axis stride places nothing, so stride 1 gives the same
        # output; with the stride, the gradient to x (a strided conv with one output column)
        # is oneDNN's uninitialised memory in bfloat16 (tf-onednn-conv-width1-garbage).
        stride[-1] = 1
    ys = []
    for g in range(geo.groups):
        xg, wg = xl[..., g * cg:(g + 1) * cg], wk[..., g * cg:(g + 1) * cg]
        shape = [n, *uncropped, co_g]
        if rank == 1:
            y = tf.nn.conv1d_transpose(xg, wg, shape, stride[0], padding="VALID",
                                       dilations=d[0])
        else:
            y = _CONV_T[rank](xg, wg, shape, stride, padding="VALID", dilations=list(d))
        ys.append(y)
    y = ys[0] if len(ys) == 1 else tf.concat(ys, axis=-1)
    if any(geo.output_padding):
        y = tf.pad(y, [[0, 0], *([0, e] for e in geo.output_padding), [0, 0]])
    y = y[(slice(None), *(slice(p, p + o) for p, o in zip(geo.pads, geo.out, strict=True)))]
    y = tf.transpose(y, _to_first(rank))
    return y if b is None else y + tf.reshape(b, channel_shape(rank + 2))


# ------------------------------------------------------------------------------- max pooling


def _pool_planes(xp: tf.Tensor, k, s, d, out):
    """2-D max pool of padded NHWC planes into `out` windows: (y, row, col), where row and col
    (NumPy, shaped like y) are the winners' coordinates in the padded planes."""
    c, wp = int(xp.shape[3]), int(xp.shape[2])
    if d == (1, 1):
        y, am = tf.nn.max_pool_with_argmax(xp, ksize=list(k), strides=list(s), padding="VALID",
                                           include_batch_in_index=False)
        y = y[:, : out[0], : out[1], :]
        flat = am.numpy()[:, : out[0], : out[1], :] // c  # (row * Wp + col) * C + ch
        return y, flat // wp, flat % wp
    return _dilated_pool(xp, k, s, d, out)


def _dilated_pool(xp: tf.Tensor, k, s, d, out):
    """Dilated 2-D max pool composed from undilated TF pools over the dilation phases.

    Output row i reads padded rows i*sh + p*dh; with a = (i*sh) % dh and j = (i*sh) // dh these
    are rows a + (j + p)*dh, i.e. a plain stride-1 pool of the phase grid xp[a::dh] at row j.
    """
    def plan(n_out: int, st: int, dl: int):
        phases: dict[int, list[int]] = {}
        for i in range(n_out):
            phases.setdefault((i * st) % dl, []).append(i)
        return {a: (np.array(ii), np.array([(i * st) // dl for i in ii])) for a, ii in
                phases.items()}

    c = int(xp.shape[3])
    ho, wo = out
    rows, cols = plan(ho, s[0], d[0]), plan(wo, s[1], d[1])
    prow = np.zeros((int(xp.shape[0]), ho, wo, c), np.int64)
    pcol = np.zeros_like(prow)
    row_blocks, row_order = [], []
    for a, (ii, jj) in sorted(rows.items()):
        col_blocks, col_order = [], []
        for bb, (kk, ll) in sorted(cols.items()):
            sub = xp[:, a :: d[0], bb :: d[1], :]
            yp, am = tf.nn.max_pool_with_argmax(sub, ksize=list(k), strides=1, padding="VALID",
                                                include_batch_in_index=False)
            col_blocks.append(tf.gather(tf.gather(yp, jj, axis=1), ll, axis=2))
            col_order.extend(kk.tolist())
            flat = am.numpy()[:, jj][:, :, ll] // c
            wsub = int(sub.shape[2])
            prow[:, ii[:, None], kk[None, :], :] = a + (flat // wsub) * d[0]
            pcol[:, ii[:, None], kk[None, :], :] = bb + (flat % wsub) * d[1]
        blocks = tf.concat(col_blocks, axis=2)
        row_blocks.append(tf.gather(blocks, np.argsort(col_order), axis=2))
        row_order.extend(ii.tolist())
    y = tf.gather(tf.concat(row_blocks, axis=1), np.argsort(row_order), axis=1)
    return y, prow, pcol


def _depth_taps_pool(xp: tf.Tensor, geo: PoolGeometry):
    """3-D max pool of padded NDHWC x: per depth tap p, the (H, W) planes at depths
    i*sd + p*dd are pooled in 2-D (all taps in one batch); the first maximum over the taps wins
    (the depth tap is the outermost axis of the row-major window order)."""
    n, _, hp, wp, c = (int(v) for v in xp.shape)
    (kd, *k2), (sd, *s2), (dd, *d2) = geo.kernel, geo.stride, geo.dilation
    do = geo.out[0]
    taps = [xp[:, p * dd : p * dd + (do - 1) * sd + 1 : sd] for p in range(kd)]
    planes = tf.reshape(tf.concat(taps, axis=0), (kd * n * do, hp, wp, c))
    yp, prow, pcol = _pool_planes(planes, tuple(k2), tuple(s2), tuple(d2), geo.out[1:])
    shape = (kd, n, do, *geo.out[1:], c)
    yp, prow, pcol = tf.reshape(yp, shape), prow.reshape(shape), pcol.reshape(shape)
    depth = (np.arange(do) * sd)[None, :, None, None, None]
    y, z, row, col = yp[0], np.broadcast_to(depth, shape[1:]), prow[0], pcol[0]
    for p in range(1, kd):
        take = yp[p] > y  # strictly greater: ties stay with the earlier tap
        y = tf.where(take, yp[p], y)
        t = take.numpy()
        z = np.where(t, depth + p * dd, z)
        row, col = np.where(t, prow[p], row), np.where(t, pcol[p], col)
    return y, (z, row, col)


def _max_pool(rank: int, x: tf.Tensor, kernel_size: object, stride: object = None,
              padding: object = 0, dilation: object = 1, ceil_mode: bool = False,
              return_indices: bool = False) -> tf.Tensor | tuple[tf.Tensor, np.ndarray]:
    """(N, C, *S) x -> (N, C, *So) y (and the contract's indices, NumPy int64): 1-D pools are
    2-D pools of (N, 1, L, C), 2-D tf.nn.max_pool_with_argmax of the -inf padded NHWC input
    (dilation by phases), 3-D per depth tap a 2-D pool of the planes, the first maximum over the
    taps winning. Its gradient is TF's (MaxPoolGradWithArgmax and tf.where)."""
    if bool(tf.reduce_any(tf.math.is_nan(x))):
        raise Unsupported(
            "max-pool-nan",
            "TF's max_pool_with_argmax keeps a NaN only when it is first in its window",
        )
    geo = pool_geometry(tuple(x.shape), rank, kernel_size, stride, padding, dilation, ceil_mode)
    # Padded cells (and ceil_mode's extra cells) hold -inf: they never beat an input cell.
    xp = tf.pad(tf.transpose(x, _to_last(rank)),
                [[0, 0], *([b, a] for b, a in geo.floor_pads), [0, 0]],
                constant_values=tf.constant(-np.inf, dtype=x.dtype))
    if rank == 1:  # a 2-D pool of (N, 1, Lp, C)
        y, _, col = _pool_planes(xp[:, None], (1, *geo.kernel), (1, *geo.stride),
                                 (1, *geo.dilation), (1, *geo.out))
        y, coords = y[:, 0], (col[:, 0],)
    elif rank == 2:
        y, row, col = _pool_planes(xp, geo.kernel, geo.stride, geo.dilation, geo.out)
        coords = (row, col)
    else:
        y, coords = _depth_taps_pool(xp, geo)
    ind, inside = geo.flat_index(coords)
    hit = geo.hit[None, ..., None]
    if (~inside & hit).any():
        raise Unsupported(
            "maxpool-neg-inf-sentinel",
            "TF pools an input padded with -inf; a window whose input cells are all -inf "
            "reports a padded cell",
        )
    y = tf.transpose(y, _to_first(rank))
    ind = np.where(hit, ind, -1).astype(np.int64).transpose(_to_first(rank))
    return (y, ind) if return_indices else y


# --------------------------------------------------------------------------- average pooling


def _avg_depth_taps(xp: tf.Tensor, k, s, out) -> tf.Tensor:
    """tf-avgpool3d-no-float64: (N, Dp, Hp, Wp, C) -> the sum over the depth taps of the 2-D
    means of the planes each tap reads, (N, Do, Ho, Wo, C): kd times the 3-D mean."""
    n, c = int(xp.shape[0]), int(xp.shape[-1])
    total = None
    for t in range(k[0]):
        planes = xp[:, t: t + (out[0] - 1) * s[0] + 1: s[0]]
        flat = tf.reshape(planes, (n * out[0], *planes.shape[2:]))
        mean = tf.nn.avg_pool2d(flat, list(k[1:]), list(s[1:]), "VALID")
        mean = tf.reshape(mean, (n, out[0], *mean.shape[1:3], c))
        total = mean if total is None else total + mean
    return total


def _avg_pool(rank: int, x: tf.Tensor, kernel_size: object, stride: object = None,
              padding: object = 0, ceil_mode: bool = False, count_include_pad: bool = True,
              divisor_override: int | None = None) -> tf.Tensor:
    """(N, C, *S) x -> (N, C, *So) y: tf.nn.avg_pool1d / 2d / 3d (VALID; float64 3-D by depth
    taps of 2-D pools) of the zero-padded channels-last input, rescaled to the divisor."""
    geo = avg_pool_geometry(tuple(x.shape), rank, kernel_size, stride, padding, ceil_mode)
    div = avg_divisors(geo, bool(count_include_pad), divisor_override)
    # Zeros for the padding and ceil_mode's extra cells; VALID then averages k cells.
    xp = tf.pad(tf.transpose(x, _to_last(rank)),
                [[0, 0], *([b, a] for b, a in geo.floor_pads), [0, 0]])
    taps = float(np.prod(geo.kernel))
    if rank == 3 and x.dtype in _EIGEN:
        y = _avg_depth_taps(xp, geo.kernel, geo.stride, geo.out)
        taps /= geo.kernel[0]
    else:
        pool = {1: tf.nn.avg_pool1d, 2: tf.nn.avg_pool2d, 3: tf.nn.avg_pool3d}[rank]
        y = pool(xp, list(geo.kernel), list(geo.stride), "VALID")
    y = y[(slice(None), *(slice(o) for o in geo.out), slice(None))]
    scale = taps / div
    if not (scale == 1).all():  # the rescale in float64, one rounding back to x's dtype
        y = tf.cast(tf.cast(y, tf.float64) * tf.constant(scale[None, ..., None]), x.dtype)
    return tf.transpose(y, _to_first(rank))


# --------------------------------------------------------------------------------- LP pooling


def _lp_pool(rank: int, x: tf.Tensor, norm_type: float, kernel_size: object,
             stride: object = None, ceil_mode: bool = False) -> tf.Tensor:
    """(N, C, *S) x -> (N, C, *So) y: tf.nn.avg_pool1d / 2d (VALID) of x ** p times K (the window
    sums), times K / count, ** (1 / p); 0 (and no gradient) where a window sums to 0."""
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(tuple(x.shape), rank, kernel_size, stride, ceil_mode)
    counts = avg_divisors(geo, True, None)  # no padding: the input cells of each window
    taps = float(np.prod(geo.kernel))
    powers = tf.pow(tf.transpose(x, _to_last(rank)), tf.constant(p, dtype=x.dtype))
    xp = tf.pad(powers, [[0, 0], *([b, a] for b, a in geo.floor_pads), [0, 0]])
    pool = tf.nn.avg_pool1d if rank == 1 else tf.nn.avg_pool2d
    mean = pool(xp, list(geo.kernel), list(geo.stride), "VALID")
    mean = mean[(slice(None), *(slice(o) for o in geo.out), slice(None))]
    # the mean of K cells (extra zeros included) times K is the window sum; times K / count
    scale = tf.constant((taps * taps / counts)[None, ..., None], dtype=x.dtype)
    a = mean * scale
    zero = tf.equal(a, 0)
    root = tf.pow(tf.where(zero, tf.ones_like(a), a), tf.constant(1.0 / p, dtype=x.dtype))
    return tf.transpose(tf.where(zero, tf.zeros_like(a), root), _to_first(rank))


# -------------------------------------------------------------------------- adaptive pooling


def _adaptive_avg_pool(rank: int, x: tf.Tensor, output_size: object) -> tf.Tensor:
    """Axis by axis, tf.reduce_mean of every bin's slice, stacked (the mean over a product of
    intervals is the mean of the per-axis means)."""
    _, bins = adaptive_bins(tuple(x.shape), rank, output_size)
    y = x
    for a in range(rank):
        axis = 2 + a
        parts = [tf.reduce_mean(y[(slice(None),) * axis + (slice(s, e),)], axis=axis)
                 for s, e in bins[a]]
        y = tf.stack(parts, axis=axis)
    return y


def _adaptive_max_pool(rank: int, x: tf.Tensor, output_size: object,
                       return_indices: bool = False) -> tf.Tensor | tuple[tf.Tensor, np.ndarray]:
    """Per bin: tf.argmax (the first maximum) over the bin's cells in row-major order, then
    tf.gather of that cell, so the value is x's cell and the gradient goes to it alone
    (tf.reduce_max's gradient would split among tied maxima). tf.argmax skips NaN: NaN inputs
    raise Unsupported (adaptive-max-pool-nan)."""
    if not isinstance(return_indices, bool | np.bool_):
        raise ValueError(f"return_indices must be a bool, got {return_indices!r}")
    shape = tuple(x.shape)
    out, bins = adaptive_bins(shape, rank, output_size)
    if bool(tf.reduce_any(tf.math.is_nan(x))):
        raise Unsupported("adaptive-max-pool-nan", "tf.argmax skips NaN")
    plane = np.arange(int(np.prod(shape[2:]))).reshape(shape[2:])
    values, indices = [], []
    for idx in np.ndindex(*out):
        where = tuple(slice(*bins[a][i]) for a, i in enumerate(idx))
        cells = tf.reshape(x[(slice(None), slice(None), *where)], (*shape[:2], -1))
        am = tf.argmax(cells, axis=-1, output_type=tf.int64)
        values.append(tf.gather(cells, am, batch_dims=2))
        indices.append(plane[where].reshape(-1)[am.numpy()])
    y = tf.reshape(tf.stack(values, axis=-1), (*shape[:2], *out))
    if not return_indices:
        return y
    return y, np.stack(indices, axis=-1).reshape(*shape[:2], *out).astype(np.int64)


# ------------------------------------------------------------------------------- batch norm


def _batch_norm(rank: None, x: tf.Tensor, gamma: tf.Tensor | None = None,
                beta: tf.Tensor | None = None,
                running_mean: tf.Tensor | None = None, running_var: tf.Tensor | None = None,
                training: bool = True, momentum: float = 0.1, eps: float = 1e-5
                ) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """tf.nn.moments (biased variance) + tf.nn.batch_normalization; y, and in training with
    running statistics their updates with the contract's (torch's) convention."""
    m = bn_check(x.numpy(), running_mean, running_var, training)
    c, ndim = int(x.shape[1]), len(x.shape)
    shape = channel_shape(ndim)
    g = tf.ones((c,), x.dtype) if gamma is None else gamma
    b = tf.zeros((c,), x.dtype) if beta is None else beta
    if training:
        mean, var = tf.nn.moments(x, axes=list(bn_axes(ndim)), keepdims=True)
    else:
        mean, var = tf.reshape(running_mean, shape), tf.reshape(running_var, shape)
    y = tf.nn.batch_normalization(x, mean, var, offset=tf.reshape(b, shape),
                                  scale=tf.reshape(g, shape), variance_epsilon=float(eps))
    if not training or running_mean is None:
        return y
    mom = tf.constant(momentum, dtype=x.dtype)
    # Contract (torch) convention: new = (1 - m) * old + m * batch, unbiased batch variance.
    # Keras would be new = momentum * old + (1 - momentum) * batch with the biased variance.
    new_mean = (1 - mom) * running_mean + mom * tf.reshape(mean, (-1,))
    new_var = (1 - mom) * running_var + mom * tf.reshape(var, (-1,)) * tf.constant(
        m / (m - 1), dtype=x.dtype)
    return y, new_mean, new_var


# ------------------------------------------------------------ layer, group and instance norm
# Composed: tf.nn.moments (two passes: the mean square of x - mean, never E[x^2] - E[x]^2) over
# each group's axes. Group and instance norm then fold y = x * scale + (beta - mean * scale) with
# tf.nn.batch_normalization, as torch does (the contract's NaN rule for an infinite scale); layer
# norm keeps (x - mean) / sqrt(var + eps) * gamma + beta. Gradients by _autodiff through the
# composition. Instance norm's running statistics follow the contract's (torch's) convention.

_NORM_LAYOUTS = "(N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)"


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_layout(x: tf.Tensor) -> None:
    """Group and instance norm's x: (N, C, *S) with 0 to 3 spatial axes, not empty."""
    if not 2 <= len(x.shape) <= 5:
        raise ValueError(f"x must be {_NORM_LAYOUTS}, got shape {tuple(x.shape)}")
    if 0 in x.shape:
        raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")


def _check_shapes(shape: tuple[int, ...], **arrays: tf.Tensor | None) -> None:
    """gamma / beta / running statistics: None or exactly `shape`."""
    for name, a in arrays.items():
        if a is not None and tuple(a.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(a.shape)}")


def _layer_norm(rank: None, x: tf.Tensor, normalized_shape: object,
                gamma: tf.Tensor | None = None, beta: tf.Tensor | None = None,
                eps: float = 1e-5) -> tf.Tensor:
    """x (*B, *D), D = normalized_shape, gamma / beta D -> y of x's shape: tf.nn.moments over
    the trailing axes D, y = (x - mean) / sqrt(var + eps) * gamma + beta."""
    if len(x.shape) < 1:
        raise ValueError(f"x must have at least 1 dimension, got shape {tuple(x.shape)}")
    shape = normalized_axes(tuple(x.shape), normalized_shape)
    _check_shapes(shape, gamma=gamma, beta=beta)
    eps = norm_real(eps, "eps", 0.0, np.inf)
    axes = list(range(len(x.shape) - len(shape), len(x.shape)))
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
    y = (x - mean) * tf.math.rsqrt(var + tf.constant(eps, x.dtype))
    if gamma is not None:
        y = y * gamma
    return y if beta is None else y + beta


def _group_norm(rank: None, x: tf.Tensor, num_groups: int, gamma: tf.Tensor | None = None,
                beta: tf.Tensor | None = None, eps: float = 1e-5) -> tf.Tensor:
    """x (N, C, *S), gamma / beta (C,) -> y of x's shape: tf.nn.moments of the (N, G, C / G *
    prod(S)) view, each group's statistics repeated over its channels, then
    tf.nn.batch_normalization per (sample, channel)."""
    _check_layout(x)
    n, c = int(x.shape[0]), int(x.shape[1])
    norm_groups(x, num_groups)
    _check_shapes((c,), gamma=gamma, beta=beta)
    eps = norm_real(eps, "eps", 0.0, np.inf)
    groups = int(num_groups)
    mean, var = tf.nn.moments(tf.reshape(x, (n, groups, -1)), axes=[2])  # (N, G)
    per_channel = (n, c, *(1,) * (len(x.shape) - 2))
    mean, var = (tf.reshape(tf.repeat(v, c // groups, axis=1), per_channel)
                 for v in (mean, var))
    shape = channel_shape(len(x.shape))
    return tf.nn.batch_normalization(
        x, mean, var, offset=None if beta is None else tf.reshape(beta, shape),
        scale=None if gamma is None else tf.reshape(gamma, shape), variance_epsilon=eps)


def _instance_norm(rank: None, x: tf.Tensor, gamma: tf.Tensor | None = None,
                   beta: tf.Tensor | None = None, running_mean: tf.Tensor | None = None,
                   running_var: tf.Tensor | None = None, training: bool = True,
                   momentum: float = 0.1, eps: float = 1e-5
                   ) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """x (N, C, *S), gamma / beta / running statistics (C,) -> y, and in training with running
    statistics their updates: tf.nn.moments over the spatial axes of each (sample, channel)
    (eval: the running statistics), tf.nn.batch_normalization; new = (1 - momentum) * old +
    momentum * mean over N of the instance means and unbiased variances (var * m / (m - 1))."""
    _check_layout(x)
    c, ndim = int(x.shape[1]), len(x.shape)
    _check_shapes((c,), gamma=gamma, beta=beta, running_mean=running_mean,
                  running_var=running_var)
    momentum = norm_real(momentum, "momentum", 0.0, 1.0)
    eps = norm_real(eps, "eps", 0.0, np.inf)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (both or neither)")
    training = _flag("training", training)
    shape = channel_shape(ndim)
    m = int(np.prod(x.shape[2:]))
    if not training:
        if running_mean is None:
            raise ValueError("training=False needs running_mean and running_var")
        mean, var = tf.reshape(running_mean, shape), tf.reshape(running_var, shape)
    elif m < 2:
        raise ValueError(f"training needs more than one value per instance (prod(S) > 1), got "
                         f"x of shape {tuple(x.shape)}")
    else:
        mean, var = tf.nn.moments(x, axes=list(range(2, ndim)), keepdims=True)  # (N, C, 1..)
    y = tf.nn.batch_normalization(
        x, mean, var, offset=None if beta is None else tf.reshape(beta, shape),
        scale=None if gamma is None else tf.reshape(gamma, shape), variance_epsilon=eps)
    if not training or running_mean is None:
        return y
    mom = tf.constant(momentum, dtype=x.dtype)
    batch_mean = tf.reduce_mean(tf.reshape(mean, (-1, c)), axis=0)
    batch_var = tf.reduce_mean(tf.reshape(var, (-1, c)), axis=0) * tf.constant(m / (m - 1),
                                                                                x.dtype)
    return y, (1 - mom) * running_mean + mom * batch_mean, \
        (1 - mom) * running_var + mom * batch_var


# ------------------------------------------------------------------------------ activations
# tf.nn.relu, tf.nn.elu and tf.nn.sigmoid; backwards by _autodiff.
# - tf.nn.elu has no alpha (tf-elu-no-alpha): y = where(x > 0, x, alpha * tf.nn.elu(x)), which
#   keeps TF's kernel on the negative side and gives elu'(0) = alpha like the contract.
# - tf.nn.relu's vectorised path returns +0.0 for -0.0 (tf-relu-negative-zero): the adapter
#   keeps x where x == 0.
# - TF's relu gradient is 0 and its elu gradient dy where x is NaN (activation-gradient-at-nan):
#   product_nans puts the contract's NaN there.


def _relu(rank: None, x: tf.Tensor) -> tf.Tensor:
    """tf.nn.relu, x kept where x == 0 (the sign of -0.0). The forward only: its gradient would
    pass dy at x == 0."""
    return tf.where(tf.equal(x, 0), x, tf.nn.relu(x))


def _tf_relu(rank: None, x: tf.Tensor) -> tf.Tensor:
    """tf.nn.relu itself, for the gradient (0 at x == 0)."""
    return tf.nn.relu(x)


def _relu_backward(rank: None, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """_autodiff through tf.nn.relu, NaN where x is NaN."""
    dx = _autodiff(record("relu"), _tf_relu, rank, {"dy": dy, "x": x})
    return product_nans(dx, dy, x)


def _elu(rank: None, x: tf.Tensor, alpha: float = 1.0) -> tf.Tensor:
    """tf.nn.elu (alpha 1); otherwise where(x > 0, x, alpha * tf.nn.elu(x))."""
    alpha = check_alpha(alpha)
    if alpha == 1.0:
        return tf.nn.elu(x)
    return tf.where(x > 0, x, tf.constant(alpha, x.dtype) * tf.nn.elu(x))


def _elu_backward(rank: None, dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """_autodiff through elu's composition, NaN where x is NaN."""
    dx = _autodiff(record("elu"), _elu, rank, {"dy": dy, "x": x, "alpha": alpha})
    return product_nans(dx, dy, x)


def _sigmoid(rank: None, x: tf.Tensor) -> tf.Tensor:
    """tf.nn.sigmoid."""
    return tf.nn.sigmoid(x)


def _sigmoid_backward(rank: None, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """_autodiff through tf.nn.sigmoid (dy * y * (1 - y)); where dy is infinite, dy * e /
    (1 + e)^2 with e = tf.exp(-|x|) (sigmoid-saturated-gradient; TF's exp flushes subnormals,
    so below x = -708.4 in float64 this still meets inf * 0)."""
    dx = _autodiff(record("sigmoid"), _sigmoid, rank, {"dy": dy, "x": x})
    infinite = np.isinf(dy)
    if infinite.any():
        e = tf.exp(-tf.abs(_c(x, dx.dtype)))
        slope = e / (1 + e) ** 2
        dx = np.where(infinite, _numpy(_c(dy, dx.dtype) * slope, dx.dtype), dx)
    return dx


# ---------------------------------------------------------------------------- dense layer


def _linear(rank: None, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
    """tf.tensordot over x's last axis and w's in-features axis (any number of leading axes, a
    1-D x included), plus b."""
    linear_check(x.numpy(), w.numpy(), None if b is None else b.numpy())
    y = tf.tensordot(x, w, axes=[[len(x.shape) - 1], [1]])
    return y if b is None else y + b


# ------------------------------------------------------------------------------------ table
# float16 / bfloat16: every function is held to the storage-accumulation bound
# (tf-low-precision-storage-arithmetic, the backend-wide entry below); in float16 the norms and
# the LP pools leave even that bound (out of float16's range where the result is not) and are
# refused.
F16_NORM = LowPrecision("tf-float16-norm-overflow", accumulation=None)
F16_LP_POOL = LowPrecision("tf-float16-lp-pool-overflow", accumulation=None)

TABLE: dict[str, Row] = {
    "pad": Row(_pad, backward=_pad_backward,
               doc="tf.pad (CONSTANT / REFLECT) or a tf.gather index map (replicate / "
                   "circular)."),
    "conv": Row(_conv, backward=_conv_backward,
                doc="tf.pad (explicit) then tf.nn.conv1d / conv2d / conv3d (VALID) channels-last "
                    "(conv3d per group), plus bias; gradients through the split / stride-1 "
                    "compositions."),
    "conv_transpose": Row(_conv_transpose,
                          doc="tf.nn.conv{1,2,3}d_transpose (VALID) per group, output_padding "
                              "zeros, crop, plus bias; gradients by GradientTape."),
    "max_pool": Row(_max_pool,
                    doc="tf.nn.max_pool_with_argmax on the -inf padded channels-last input "
                        "(1-D as 2-D, 3-D by depth taps, dilation by phases)."),
    "avg_pool": Row(_avg_pool,
                    doc="tf.nn.avg_pool1d / 2d / 3d (VALID) of the zero-padded channels-last "
                        "input, rescaled to the divisor."),
    "lp_pool": Row(_lp_pool,
                   doc="composed: tf.nn.avg_pool1d / 2d of x ** p, rescaled, ** (1 / p).",
                   low_precision={"float16": F16_LP_POOL}),
    "adaptive_avg_pool": Row(_adaptive_avg_pool,
                             doc="per-axis tf.reduce_mean of every bin's slice."),
    "adaptive_max_pool": Row(_adaptive_max_pool,
                             doc="per bin tf.argmax + tf.gather (the first maximum, the "
                                 "gradient to it alone)."),
    "batch_norm": Row(_batch_norm,
                      doc="tf.nn.moments + tf.nn.batch_normalization; running statistics with "
                          "torch's convention.", low_precision={"float16": F16_NORM}),
    "layer_norm": Row(_layer_norm,
                      doc="tf.nn.moments over the trailing axes, (x - mean) / sqrt(var + eps) * "
                          "gamma + beta.", low_precision={"backward float16": F16_NORM}),
    "group_norm": Row(_group_norm,
                      doc="tf.nn.moments of the (N, G, m) view + tf.nn.batch_normalization per "
                          "(sample, channel).", low_precision={"float16": F16_NORM}),
    "instance_norm": Row(_instance_norm,
                         doc="tf.nn.moments over the spatial axes + tf.nn.batch_normalization; "
                             "running statistics with torch's convention.",
                         low_precision={"float16": F16_NORM}),
    "relu": Row(_relu, backward=_relu_backward,
                doc="tf.nn.relu (x kept where x == 0: the sign of -0.0)."),
    "elu": Row(_elu, backward=_elu_backward, doc="tf.nn.elu (alpha 1), composed with alpha."),
    "sigmoid": Row(_sigmoid, backward=_sigmoid_backward, doc="tf.nn.sigmoid."),
    "linear": Row(_linear, doc="tf.tensordot(x, w, [[-1], [1]]) + b."),
}

globals().update(contract_functions(
    TABLE, NAME, run=_run, autodiff=_autodiff, module=__name__,
    storage=backend(NAME).storage_formats,
    low_precision=LowPrecision("tf-low-precision-storage-arithmetic")))
