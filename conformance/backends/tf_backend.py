"""The nnref contract on TensorFlow (tf.nn, CPU, eager).

Conventions handled here (see conformance/divergences.toml):
- CPU kernels are NHWC only in float64 (tf-cpu-nhwc-only): conv and pooling transpose NCHW <->
  NHWC inside the adapter. Every NumPy input is wrapped with tf.constant(x, dtype=...).
- tf.pad has CONSTANT / REFLECT / SYMMETRIC only (pad-mode-names): replicate and circular are
  composed with tf.gather index maps.
- Conv padding is always explicit (tf.pad, then VALID). Gradients of dilated conv2d and of grouped
  conv2d fail on CPU (tf-dilated-conv-gradient, tf-grouped-conv-gradient-cpu): the backward pass
  composes a dilated conv at stride 1 (tf.nn.convolution, space-to-batch) followed by a strided
  slice, and splits groups into separate convolutions.
- Max pooling: tf.nn.max_pool_with_argmax on an input padded with -inf (explicit padding, ceil_mode
  by extra -inf rows at the end: maxpool-ceil-mode); TF has no pooling dilation
  (tf-maxpool-no-dilation), composed by pooling each dilation phase. TF's argmax is an NHWC
  offset (tf-maxpool-argmax-layout), converted here. TF keeps NaN only when it comes first in
  its window (max-pool-nan): NaN inputs raise Unsupported.
- Batch norm: tf.nn.moments + tf.nn.batch_normalization (fused batch norm has no float64:
  tf-fused-batchnorm-no-float64); running statistics are updated here with the contract's
  (torch's) convention (batchnorm-momentum-convention, torch-running-var-unbiased).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

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
    window_hits,
)

NAME = "tensorflow"
_TO_NHWC = (0, 2, 3, 1)
_TO_NCHW = (0, 3, 1, 2)


def _c(a: np.ndarray, dtype: np.dtype) -> tf.Tensor:
    """tf.constant with an explicit dtype (never let TF pick float32 for a float64 array)."""
    return tf.constant(np.array(a, copy=True), dtype=tf.as_dtype(np.dtype(dtype)))


def _np(t: tf.Tensor, dtype: np.dtype) -> np.ndarray:
    return np.array(tf.convert_to_tensor(t).numpy(), dtype=dtype, copy=True)


def _grads(tape: tf.GradientTape, y: tf.Tensor, sources: list, dy: tf.Tensor) -> list:
    out = tape.gradient(y, sources, output_gradients=dy)
    return [tf.zeros_like(s) if g is None else tf.convert_to_tensor(g)
            for s, g in zip(sources, out, strict=True)]


# ----------------------------------------------------------------------------------- padding


def _gather_pad(x: tf.Tensor, pads, mode: str) -> tf.Tensor:
    """replicate / circular composed with index maps along H (axis 2) and W (axis 3)."""
    for axis, (before, after) in zip((2, 3), pads, strict=True):
        n = int(x.shape[axis])
        src = np.arange(-before, n + after)
        src = np.clip(src, 0, n - 1) if mode == "replicate" else np.mod(src, n)
        x = tf.gather(x, tf.constant(src, dtype=tf.int64), axis=axis)
    return x


def _tf_pad(x: tf.Tensor, pads, mode: str, value: float) -> tf.Tensor:
    (t, b), (l, r) = pads
    paddings = [[0, 0], [0, 0], [t, b], [l, r]]
    if mode == "constant":
        return tf.pad(x, paddings, mode="CONSTANT",
                      constant_values=tf.constant(value, dtype=x.dtype))
    if mode == "reflect":
        return tf.pad(x, paddings, mode="REFLECT")
    return _gather_pad(x, pads, mode)


def pad(x: np.ndarray, pad_width: object, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """tf.pad (CONSTANT / REFLECT) or a tf.gather index map (replicate / circular)."""
    x = float_input(x)
    pads = pads2d(pad_width, "pad_width")
    check_pad(x.shape, pads, mode)
    return _np(_tf_pad(_c(x, x.dtype), pads, mode, value), x.dtype)


def pad_backward(dy: np.ndarray, pad_width: object, mode: str = "constant") -> np.ndarray:
    """Adjoint of `pad` by GradientTape (output_gradients=dy)."""
    dy = float_input(dy, "dy")
    (t, b), (l, r) = pads = pads2d(pad_width, "pad_width")
    n, c, h, w = dy.shape
    shape = (n, c, h - t - b, w - l - r)
    if min(shape) < 0:
        raise ValueError(f"pad_width {pad_width!r} is larger than dy of shape {dy.shape}")
    check_pad(shape, pads, mode)
    x = tf.zeros(shape, dtype=tf.as_dtype(dy.dtype))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = _tf_pad(x, pads, mode, 0.0)
    (dx,) = _grads(tape, y, [x], _c(dy, dy.dtype))
    return _np(dx, dy.dtype)


# ------------------------------------------------------------------------------- convolution


def _conv_nhwc(xp: tf.Tensor, wk: tf.Tensor, s: tuple[int, int], d: tuple[int, int], groups: int,
               differentiable: bool) -> tf.Tensor:
    """VALID cross-correlation of padded NHWC x with HWIO w.

    Forward uses tf.nn.conv2d directly (grouped and dilated-strided forward work on CPU).
    For gradients, groups are split (tf-grouped-conv-gradient-cpu) and a dilated conv runs at
    stride 1 through tf.nn.convolution, then is sliced (tf-dilated-conv-gradient).
    """
    if s[1] > 1 and xp.dtype == tf.float32 and (xp.shape[2] - d[1] * (wk.shape[1] - 1) - 1) < s[1]:
        # One output column with a width stride: oneDNN's float32 kernel returns uninitialised
        # memory for every row after the first (tf-onednn-conv-width1-garbage). Stride 1 in
        # width and keeping column 0 computes the same sums.
        return _conv_nhwc(xp, wk, (s[0], 1), d, groups, differentiable)[:, :, :1, :]
    if not differentiable:
        return tf.nn.conv2d(xp, wk, strides=[1, s[0], s[1], 1], padding="VALID",
                            dilations=[1, d[0], d[1], 1])
    if groups > 1:
        xs = tf.split(xp, groups, axis=3)
        ws = tf.split(wk, groups, axis=3)
        return tf.concat([_conv_nhwc(a, b, s, d, 1, True) for a, b in zip(xs, ws, strict=True)],
                         axis=3)
    if d == (1, 1):
        return tf.nn.conv2d(xp, wk, strides=[1, s[0], s[1], 1], padding="VALID")
    y = tf.nn.convolution(xp, wk, strides=1, padding="VALID", dilations=list(d))
    return y[:, :: s[0], :: s[1], :] if s != (1, 1) else y


def _conv(x: tf.Tensor, w: tf.Tensor, stride, padding, dilation, groups: int,
          differentiable: bool) -> tf.Tensor:
    """NCHW x, OIHW w -> NCHW y, all in TF."""
    if (groups < 1 or x.shape[1] % groups or w.shape[0] % groups
            or w.shape[1] * groups != x.shape[1]):
        raise ValueError(
            f"groups={groups} does not fit x channels {x.shape[1]} and w of shape {w.shape}"
        )
    kh, kw = int(w.shape[2]), int(w.shape[3])
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    (t, b), (l, r) = conv_pads(padding, (int(x.shape[2]), int(x.shape[3])), (kh, kw), s, d)
    xp = tf.pad(tf.transpose(x, _TO_NHWC), [[0, 0], [t, b], [l, r], [0, 0]])
    wk = tf.transpose(w, (2, 3, 1, 0))  # (Co, C/G, kh, kw) -> (kh, kw, C/G, Co)
    y = _conv_nhwc(xp, wk, s, d, groups, differentiable)
    return tf.transpose(y, _TO_NCHW)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """tf.pad (explicit) then tf.nn.conv2d(VALID) in NHWC, plus bias."""
    x, w = float_input(x), float_input(w, "w")
    y = _conv(_c(x, x.dtype), _c(w, x.dtype), stride, padding, dilation, groups, False)
    if b is not None:
        y = y + tf.reshape(_c(float_input(b, "b"), x.dtype), (1, -1, 1, 1))
    return _np(y, x.dtype)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by GradientTape; db is the gradient of a zero bias."""
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    xt, wt = _c(x, x.dtype), _c(w, x.dtype)
    bt = tf.zeros((w.shape[0],), dtype=xt.dtype)
    with tf.GradientTape() as tape:
        tape.watch([xt, wt, bt])
        y = _conv(xt, wt, stride, padding, dilation, groups, True)
        y = y + tf.reshape(bt, (1, -1, 1, 1))
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    dx, dw, db = _grads(tape, y, [xt, wt, bt], _c(dy, x.dtype))
    return _np(dx, x.dtype), _np(dw, x.dtype), _np(db, x.dtype)


# ------------------------------------------------------------------------------- max pooling


def _pool(x: tf.Tensor, x_np: np.ndarray, kernel_size, stride, padding, dilation, ceil_mode):
    """Max pool in TF; returns (y NCHW tensor, contract indices as numpy)."""
    if np.isnan(x_np).any():
        raise Unsupported(
            "max-pool-nan",
            "TF's max_pool_with_argmax keeps a NaN only when it is first in its window",
        )
    _, c, h, w = x_np.shape
    k, s, ((t, b), (l, r)), d = pool_args(x_np.shape, kernel_size, stride, padding, dilation)
    ho = pool_out_len(h, t, b, k[0], s[0], d[0], ceil_mode)
    wo = pool_out_len(w, l, r, k[1], s[1], d[1], ceil_mode)
    hit = window_hits(h, t, k[0], s[0], d[0], ho)[:, None] & window_hits(w, l, k[1], s[1], d[1],
                                                                         wo)[None, :]
    eh = pool_extra_end(h, t, b, k[0], s[0], d[0], ho)
    ew = pool_extra_end(w, l, r, k[1], s[1], d[1], wo)
    # Padded cells (and ceil_mode's extra cells) hold -inf: they never beat an input cell.
    xp = tf.pad(tf.transpose(x, _TO_NHWC), [[0, 0], [t, b + eh], [l, r + ew], [0, 0]],
                constant_values=tf.constant(-np.inf, dtype=x.dtype))
    if d == (1, 1):
        y, am = tf.nn.max_pool_with_argmax(xp, ksize=list(k), strides=list(s), padding="VALID",
                                           include_batch_in_index=False)
        y = y[:, :ho, :wo, :]
        flat = am.numpy()[:, :ho, :wo, :] // c  # (row * Wp + col) * C + ch -> row * Wp + col
        wp = int(xp.shape[2])
        prow, pcol = flat // wp, flat % wp
    else:
        y, prow, pcol = _dilated_pool(xp, c, k, s, d, ho, wo)
    row, col = prow - t, pcol - l
    inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    hit4 = hit[None, :, :, None]
    if (~inside & hit4).any():
        raise Unsupported(
            "maxpool-neg-inf-sentinel",
            "TF pools an input padded with -inf; a window whose input cells are all -inf "
            "reports a padded cell",
        )
    ind = np.where(inside & hit4, row * w + col, -1).astype(np.int64)
    return tf.transpose(y, _TO_NCHW), ind.transpose(_TO_NCHW)


def _dilated_pool(xp: tf.Tensor, c: int, k, s, d, ho: int, wo: int):
    """Dilated max pool composed from undilated TF pools over the dilation phases.

    Output row i reads padded rows i*sh + p*dh; with a = (i*sh) % dh and j = (i*sh) // dh these
    are rows a + (j + p)*dh, i.e. a plain stride-1 pool of the phase grid xp[a::dh] at row j.
    """
    def plan(out: int, st: int, dl: int):
        groups: dict[int, list[int]] = {}
        for i in range(out):
            groups.setdefault((i * st) % dl, []).append(i)
        return {a: (np.array(ii), np.array([(i * st) // dl for i in ii])) for a, ii in
                groups.items()}

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
            blk = tf.gather(tf.gather(yp, jj, axis=1), ll, axis=2)
            col_blocks.append(blk)
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


def max_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """tf.nn.max_pool_with_argmax on a -inf padded NHWC input (dilation by phases)."""
    x = float_input(x)
    y, ind = _pool(_c(x, x.dtype), x, kernel_size, stride, padding, dilation, ceil_mode)
    out = _np(y, x.dtype)
    return (out, ind) if return_indices else out


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """GradientTape through the same composition (MaxPoolGradWithArgmax underneath)."""
    x, dy = float_input(x), float_input(dy, "dy")
    xt = _c(x, x.dtype)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y, _ = _pool(xt, x, kernel_size, stride, padding, dilation, ceil_mode)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    (dx,) = _grads(tape, y, [xt], _c(dy, x.dtype))
    return _np(dx, x.dtype)


# ------------------------------------------------------------------------------- batch norm


def _bn_params(x: np.ndarray, gamma, beta):
    c = x.shape[1]
    g = np.ones(c, x.dtype) if gamma is None else float_input(gamma, "gamma")
    b = np.zeros(c, x.dtype) if beta is None else float_input(beta, "beta")
    return _c(g, x.dtype), _c(b, x.dtype)


def _per_channel(v: tf.Tensor) -> tf.Tensor:
    return tf.reshape(v, (1, -1, 1, 1))


def _bn(xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor, rm, rv, training: bool, eps: float):
    if training:
        mean, var = tf.nn.moments(xt, axes=[0, 2, 3], keepdims=True)  # biased variance
    else:
        mean, var = _per_channel(rm), _per_channel(rv)
    y = tf.nn.batch_normalization(xt, mean, var, offset=_per_channel(b), scale=_per_channel(g),
                                  variance_epsilon=eps)
    return y, tf.reshape(mean, (-1,)), tf.reshape(var, (-1,))


def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
               training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tf.nn.moments + tf.nn.batch_normalization; running stats with torch's convention."""
    x = float_input(x)
    bn_check(x, running_mean, running_var, training)
    g, b = _bn_params(x, gamma, beta)
    rm = None if running_mean is None else _c(running_mean, x.dtype)
    rv = None if running_var is None else _c(running_var, x.dtype)
    y, mean, var = _bn(_c(x, x.dtype), g, b, rm, rv, training, float(eps))
    if not training or rm is None:
        return _np(y, x.dtype)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mom = tf.constant(momentum, dtype=y.dtype)
    # Contract (torch) convention: new = (1 - m) * old + m * batch, unbiased batch variance.
    # Keras would be new = momentum * old + (1 - momentum) * batch with the biased variance.
    new_mean = (1 - mom) * rm + mom * mean
    new_var = (1 - mom) * rv + mom * var * tf.constant(m / (m - 1), dtype=y.dtype)
    return _np(y, x.dtype), _np(new_mean, x.dtype), _np(new_var, x.dtype)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None,
                        eps: float = 1e-5, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None,
                        training: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) by GradientTape; eval mode uses the running stats as constants."""
    x, dy = float_input(x), float_input(dy, "dy")
    bn_check(x, running_mean, running_var, training)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have shape {x.shape}, got {dy.shape}")
    xt = _c(x, x.dtype)
    g, b = _bn_params(x, gamma, None)
    rm = None if running_mean is None else _c(running_mean, x.dtype)
    rv = None if running_var is None else _c(running_var, x.dtype)
    with tf.GradientTape() as tape:
        tape.watch([xt, g, b])
        y, _, _ = _bn(xt, g, b, rm, rv, training, float(eps))
    dx, dg, db = _grads(tape, y, [xt, g, b], _c(dy, x.dtype))
    return _np(dx, x.dtype), _np(dg, x.dtype), _np(db, x.dtype)
