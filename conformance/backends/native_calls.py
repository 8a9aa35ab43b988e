"""The natively equivalent framework call of an invalid contract call (conformance/invalid_call.py).

:func:`run_torch` calls ``torch.nn.functional`` directly (F.pad, F.conv1d / 2d / 3d,
F.conv_transpose1d / 2d / 3d, F.max_pool1d / 2d / 3d, F.avg_pool1d / 2d / 3d, F.lp_pool1d / 2d,
F.adaptive_avg_pool1d / 2d / 3d, F.adaptive_max_pool1d / 2d / 3d, F.batch_norm, F.layer_norm,
F.group_norm, F.instance_norm; autograd with ``dy`` for the backward functions). :func:`run_tf`
calls ``tf.nn`` directly on ``tf.constant`` tensors in TF's channels-last layout (NWC, NHWC,
NDHWC): tf.pad, tf.nn.conv1d / conv2d / conv3d, tf.nn.conv1d_transpose / 2d / 3d (output_shape
from the contract's output size), tf.nn.max_pool1d / 2d / 3d and tf.nn.pool,
tf.nn.avg_pool1d / 2d / 3d, tf.nn.moments + tf.nn.batch_normalization (batch, instance and group
norm, the last on a (N, *S, G, C / G) view; layer norm over x's own trailing axes);
GradientTape with ``dy`` for the backward functions (tf.nn has no LP pooling, no
normalized_shape, no num_groups: not expressible). NEVER the adapters (``*_backend.py``), which
validate arguments on their own: the point is what the framework itself answers.

An argument with no native counterpart raises ``invalid_call.NotExpressible`` (``incidental``
when it is not the broken argument: the draw is discarded); a call known to kill the process
raises ``invalid_call.WouldAbort`` instead of running. torch and TensorFlow are imported by the
caller (the module is an argument), so importing this module needs neither.

An array whose ndim is not the one its rank gives (a wrong_ndim draw) is passed in the
contract's layout, unchanged: it has no channels-last counterpart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..cases import pads_of, spatial
from ..invalid_call import InvalidCall, NotExpressible, WouldAbort

Pads = tuple[tuple[int, int], ...]


def _copy(a: np.ndarray) -> np.ndarray:
    return np.array(a, copy=True, order="C")


# Contract padding as (before, after) per axis, without any validation (negative pads kept):
# the contract's own geometry helper, which validates nothing.
loose_pads = pads_of


def _ints(v: Any) -> Any:
    """A per-axis argument as the frameworks take it: a list stays a sequence (a tuple)."""
    return tuple(v) if isinstance(v, tuple | list) else v


def _strided(args: Mapping[str, Any], rank: int) -> bool:
    stride = args.get("stride")
    return stride is not None and any(s != 1 for s in spatial(stride, rank))


def _dilated(args: Mapping[str, Any], rank: int) -> bool:
    return any(d != 1 for d in spatial(args["dilation"], rank))


def pad_input_shape(dy: np.ndarray, pad_width: Any, rank: int) -> tuple[int, ...]:
    """The x whose padding has dy's shape: no native pad_backward exists, so autograd of the
    native pad over an x of this shape is the natively equivalent call."""
    pads = loose_pads(pad_width, rank)
    if dy.ndim < len(pads):
        raise NotExpressible(f"dy has {dy.ndim} axes, fewer than the {len(pads)} padded ones: "
                             "there is no x to pad")
    lead = dy.ndim - len(pads)
    shape = (*dy.shape[:lead],
             *(s - b - a for s, (b, a) in zip(dy.shape[lead:], pads, strict=True)))
    if min(shape, default=0) < 0:
        raise NotExpressible(f"x would have shape {shape}: dy is smaller than the pads")
    return shape


# torch ----------------------------------------------------------------------------------


def _torch_padding(padding: Any, rank: int) -> Any:
    """Padding as F.conv*d / F.max_pool*d take it (symmetric only); strings unchanged."""
    if isinstance(padding, str | int | np.integer):
        return padding
    pads = loose_pads(padding, rank)
    if any(b != a for b, a in pads):
        raise NotExpressible("torch pads conv / pool symmetrically only", incidental=True)
    return tuple(b for b, _ in pads)


def _torch_pad_list(pads: Pads) -> tuple[int, ...]:
    """F.pad's flat list: (before, after) of the last axis first."""
    return tuple(v for b, a in reversed(pads) for v in (b, a))


def torch_pool_overruns(invalid: InvalidCall) -> bool:
    """torch 2.13 (CPU) max_pool1d / 2d / 3d with ceil_mode accepts a dilated kernel that
    overruns the padded input by less than the stride (its output size formula rounds the
    negative span up to one window) and then reports indices past the end of the input plane;
    the backward scatters the gradient there, outside dx: heap corruption ("double free or
    corruption", "free(): invalid next size"), an abort of the process at ranks 2 and 3.
    True for such a call (every other argument valid, so torch's own checks pass)."""
    a, rank = invalid.args, invalid.rank
    if invalid.family != "max_pool" or not a["ceil_mode"]:
        return False
    x = a.get("x")
    if not isinstance(x, np.ndarray) or x.ndim != rank + 2 or isinstance(a["padding"], str):
        return False
    k = spatial(a["kernel_size"], rank)
    s = k if a["stride"] is None else spatial(a["stride"], rank)
    d = spatial(a["dilation"], rank)
    pads = loose_pads(a["padding"], rank)
    if min(*k, *s, *d) < 1 or any(b != af or b < 0 or b > kk // 2
                                   for (b, af), kk in zip(pads, k, strict=True)):
        return False
    overrun = False
    for size, kk, ss, dd, (p, _) in zip(x.shape[2:], k, s, d, pads, strict=True):
        out = (size + 2 * p - dd * (kk - 1) - 1 + ss - 1) // ss + 1  # torch's, with ceil_mode
        if (out - 1) * ss >= size + p:
            out -= 1
        if out < 1:
            return False  # torch raises "Output size is too small"
        overrun |= size + 2 * p < dd * (kk - 1) + 1
    return overrun


def _torch_pad_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                    grads: Callable[..., Any]) -> Any:
    """The native torch call of pad (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    flat = _torch_pad_list(loose_pads(a["pad_width"], rank))
    if not backward:
        value = {"value": float(a["value"])} if a["mode"] == "constant" else {}
        return F.pad(t("x"), flat, mode=a["mode"], **value)
    x = torch.zeros(pad_input_shape(a["dy"], a["pad_width"], rank), dtype=t("dy").dtype,
                    requires_grad=True)
    return grads(F.pad(x, flat, mode=a["mode"]), [x])


def _torch_conv_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                     grads: Callable[..., Any]) -> Any:
    """The native torch call of conv (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    if a["padding"] == "same" and _strided(a, rank):
        raise NotExpressible("torch refuses padding='same' with a stride > 1",
                             incidental=True)
    conv = getattr(F, f"conv{rank}d")
    x, w = t("x", backward), t("w", backward)
    y = conv(x, w, None if backward else t("b"), stride=_ints(a["stride"]),
             padding=_torch_padding(a["padding"], rank), dilation=_ints(a["dilation"]),
             groups=a["groups"])
    return grads(y, [x, w]) if backward else y


def _torch_conv_transpose_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                               grads: Callable[..., Any]) -> Any:
    """The native torch call of conv_transpose (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    conv_t = getattr(F, f"conv_transpose{rank}d")
    x, w = t("x", backward), t("w", backward)
    y = conv_t(x, w, None if backward else t("b"), stride=_ints(a["stride"]),
               padding=_torch_padding(a["padding"], rank),
               output_padding=_ints(a["output_padding"]), groups=a["groups"],
               dilation=_ints(a["dilation"]))
    return grads(y, [x, w]) if backward else y


def _torch_max_pool_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                         grads: Callable[..., Any]) -> Any:
    """The native torch call of max_pool (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    if backward and torch_pool_overruns(invalid):
        raise WouldAbort("torch's max-pool backward writes outside the gradient: heap "
                         "corruption")
    pool = getattr(F, f"max_pool{rank}d")
    x = t("x", backward)
    y = pool(x, _ints(a["kernel_size"]), _ints(a["stride"]),
             _torch_padding(a["padding"], rank), _ints(a["dilation"]),
             ceil_mode=a["ceil_mode"])
    return grads(y, [x]) if backward else y


def _torch_avg_pool_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                         grads: Callable[..., Any]) -> Any:
    """The native torch call of avg_pool (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    x = t("x", backward)
    extra = {}
    if a["divisor_override"] is not None or invalid.category == "bad_divisor_override":
        if rank == 1:
            raise NotExpressible("F.avg_pool1d has no divisor_override",
                                 incidental=invalid.category != "bad_divisor_override")
        extra["divisor_override"] = a["divisor_override"]
    pool = getattr(F, f"avg_pool{rank}d")
    y = pool(x, _ints(a["kernel_size"]), _ints(a["stride"]),
             _torch_padding(a["padding"], rank), a["ceil_mode"], a["count_include_pad"],
             **extra)
    return grads(y, [x]) if backward else y


def _torch_lp_pool_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                        grads: Callable[..., Any]) -> Any:
    """The native torch call of lp_pool (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    x = t("x", backward)
    kernel = _ints(a["kernel_size"])
    if rank == 1 and isinstance(kernel, tuple | list) and len(kernel) == 1:
        kernel = kernel[0]  # torch-lppool1d-kernel-tuple: F.lp_pool1d multiplies by it
    pool = getattr(F, f"lp_pool{rank}d")
    y = pool(x, a["norm_type"], kernel, _ints(a["stride"]), a["ceil_mode"])
    return grads(y, [x]) if backward else y


def _torch_adaptive_pool(kind: str) -> Callable[..., Any]:
    """The native torch call of an adaptive pool: F.adaptive_<kind>_pool1d / 2d / 3d."""

    def native(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
               grads: Callable[..., Any]) -> Any:
        a, rank = invalid.args, invalid.rank
        backward = invalid.direction == "backward"
        x = t("x", backward)
        size = a["output_size"]
        if rank == 1 and isinstance(size, tuple | list) and None in size:
            # torch's 1-D adaptive pools refuse None (torch-adaptive-pool1d-no-none): the
            # native equivalent of None is the input's length
            size = type(size)(a["x"].shape[2] if e is None else e for e in size)
        pool = getattr(torch.nn.functional, f"adaptive_{kind}_pool{rank}d")
        extra = {"return_indices": a["return_indices"]} if "return_indices" in a else {}
        y = pool(x, size, **extra)
        return grads(y, [x]) if backward else y

    return native


def _torch_batch_norm_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                           grads: Callable[..., Any]) -> Any:
    """The native torch call of batch_norm (a row of TORCH_CALLS)."""
    F = torch.nn.functional
    a = invalid.args
    backward = invalid.direction == "backward"
    x, gamma = t("x", backward), t("gamma", backward)
    y = F.batch_norm(x, t("running_mean"), t("running_var"), gamma, t("beta"),
                     training=a["training"], momentum=a.get("momentum", 0.1), eps=a["eps"])
    return grads(y, [x, gamma]) if backward else y


def _torch_layer_norm_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                           grads: Callable[..., Any]) -> Any:
    """F.layer_norm (an int normalized_shape as a 1-tuple, as torch.nn.LayerNorm takes it)."""
    a = invalid.args
    backward = invalid.direction == "backward"
    shape = a["normalized_shape"]
    if type(shape) is int:
        shape = (shape,)
    x, gamma = t("x", backward), t("gamma", backward)
    y = torch.nn.functional.layer_norm(x, _ints(shape), gamma, None if backward else t("beta"),
                                       a["eps"])
    return grads(y, [x, gamma]) if backward else y


def _torch_group_norm_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                           grads: Callable[..., Any]) -> Any:
    """F.group_norm."""
    a = invalid.args
    backward = invalid.direction == "backward"
    x, gamma = t("x", backward), t("gamma", backward)
    y = torch.nn.functional.group_norm(x, a["num_groups"], gamma,
                                       None if backward else t("beta"), a["eps"])
    return grads(y, [x, gamma]) if backward else y


def _torch_instance_norm_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                              grads: Callable[..., Any]) -> Any:
    """F.instance_norm, use_input_stats = training."""
    a = invalid.args
    backward = invalid.direction == "backward"
    x, gamma = t("x", backward), t("gamma", backward)
    y = torch.nn.functional.instance_norm(
        x, t("running_mean"), t("running_var"), gamma, None if backward else t("beta"),
        use_input_stats=a["training"], momentum=a.get("momentum", 0.1), eps=a["eps"])
    return grads(y, [x, gamma]) if backward else y


def run_torch(torch: Any, invalid: InvalidCall) -> Any:
    """The natively equivalent torch.nn.functional call (autograd for the backward ones).

    Returns the output, or the gradients for a backward function.
    """
    a = invalid.args

    def t(name: str, grad: bool = False) -> Any:
        if a.get(name) is None:
            return None
        tensor = torch.from_numpy(_copy(a[name]))
        return tensor.requires_grad_(True) if grad else tensor

    def grads(y: Any, sources: list) -> Any:
        return torch.autograd.grad(y, [s for s in sources if s is not None],
                                   grad_outputs=t("dy"))

    native = TORCH_CALLS.get(invalid.family)
    if native is None:
        raise NotImplementedError(f"no native torch call for the {invalid.family!r} record")
    return native(torch, invalid, t, grads)


# tensorflow -----------------------------------------------------------------------------


def _last(a: np.ndarray, ndim: int) -> np.ndarray:
    """(N, C, *S) -> (N, *S, C) when ``a`` has the ``ndim`` its rank gives; else unchanged."""
    if a.ndim == ndim and ndim >= 3:
        return _copy(np.moveaxis(a, 1, -1))
    return _copy(a)


def _filter_last(w: np.ndarray, ndim: int) -> np.ndarray:
    """(Co, C / G, *k) -> (*k, C / G, Co) when ``w`` has the ``ndim`` its rank gives."""
    if w.ndim == ndim:
        return _copy(w.transpose(*range(2, ndim), 1, 0))
    return _copy(w)


def _tf_explicit(pads: Pads) -> list[list[int]]:
    """Channels-last explicit padding: [[0, 0], [b1, a1], ..., [0, 0]]."""
    return [[0, 0], *([b, a] for b, a in pads), [0, 0]]


def _tf_string(padding: str) -> str:
    return {"same": "SAME", "valid": "VALID"}.get(padding, padding)


_TF_PAD_MODES = {"constant": "CONSTANT", "reflect": "REFLECT"}


def _tf_pad(tf: Any, x: Any, invalid: InvalidCall) -> Any:
    a = invalid.args
    pads = loose_pads(a["pad_width"], invalid.rank)
    paddings = [[0, 0]] * max(len(x.shape) - len(pads), 0) + [[b, af] for b, af in pads]
    mode = a["mode"]
    if mode in ("replicate", "circular"):
        try:  # the claim: tf.pad has no such mode
            tf.pad(x, paddings, mode=mode.upper())
        except ValueError:
            raise NotExpressible(f"tf.pad has no {mode} mode",
                                 incidental=invalid.category != f"{mode}_pad_too_large") from None
        raise AssertionError(f"tf.pad accepted mode {mode.upper()!r}: update the record")
    if mode == "constant" and invalid.direction == "forward":
        return tf.pad(x, paddings, mode="CONSTANT", constant_values=a["value"])
    return tf.pad(x, paddings, mode=_TF_PAD_MODES.get(mode, mode))


def tf_conv_aborts(invalid: InvalidCall) -> bool:
    """tensorflow-cpu 2.21 (oneDNN) float32 Conv2D / Conv3D with an input of fewer than 4 dims
    aborts the process ("Check failed: index >= 0 && index < num_total_dims" in
    tensor_format.h); float64 (no oneDNN kernel) raises InvalidArgumentError instead.
    tf.nn.conv1d adds an axis before its Conv2D: a 2-D x aborts, a 1-D x fails in ExpandDims."""
    x = invalid.args.get("x")
    if invalid.family != "conv" or not isinstance(x, np.ndarray) or x.dtype != np.float32:
        return False
    return x.ndim == 2 if invalid.rank == 1 else x.ndim < 4


def tf_pool_aborts(invalid: InvalidCall) -> bool:
    """tensorflow-cpu 2.21 (oneDNN) float32 tf.nn.max_pool3d, which takes no explicit padding
    (so the call is a tf.pad, then the pool with "VALID"), kills the process when
    - x is 4-D: "Check failed: d < dims() (4 vs. 4)" in tensor_shape.cc, for most windows
      (InvalidArgumentError with sizes read past the shape for the others): never run;
    - the last spatial axis gets no window by TF's truncating output size, (n - k + s) / s with
      C++ division, i.e. -s < n - k + s <= 0 for the padded size n: SIGFPE (an empty output
      along the other axes is an empty result, a numerator in (0, s) an AbortedError).
    (max_pool1d / max_pool2d take TF's explicit padding lists, whose kernel does not crash.)"""
    a, rank = invalid.args, invalid.rank
    x = a.get("x")
    if invalid.family != "max_pool" or rank != 3 or not isinstance(x, np.ndarray) \
            or x.dtype != np.float32:
        return False
    if x.ndim == 4:
        return True
    if x.ndim != 5 or isinstance(a["padding"], str):
        return False
    kernel = spatial(a["kernel_size"], rank)
    stride = kernel if a["stride"] is None else spatial(a["stride"], rank)
    pads = loose_pads(a["padding"], rank)
    if min(*kernel, *stride) < 1 or min(min(p) for p in pads) < 0:
        return False  # TF refuses these before the oneDNN kernel runs
    (b, af), k, s = pads[-1], kernel[-1], stride[-1]
    numerator = x.shape[-1] + b + af - k + s
    return -s < numerator <= 0


def _tf_out(size: int, k: int, s: int) -> int:
    """TF's VALID output size, (n - k + s) / s with C++'s truncating division."""
    numerator = size - k + s
    return numerator // s if numerator >= 0 else -(-numerator // s)


def tf_avg_pool_reads_past_x(invalid: InvalidCall) -> bool:
    """tensorflow-cpu 2.21's AvgPool / AvgPoolGrad on an x whose number of axes is not the
    rank's (a wrong_ndim draw) answer differently from run to run on the same call - an
    InvalidArgumentError, an AbortedError, an empty result, or accepted (a 5-D float32 x of
    avg_pool2d, kernel (2, 2), stride 1 was recorded with the first three, then accepted) - and
    the gradient once killed the test process ("Fatal Python error: Aborted" inside
    GradientTape.gradient of a wrong_ndim avg_pool call): memory read past the input. True for
    such a call: it is never run."""
    x = invalid.args.get("x")
    return invalid.family == "avg_pool" and isinstance(x, np.ndarray) \
        and x.ndim != invalid.rank + 2


def tf_avg_pool_grad_aborts(invalid: InvalidCall) -> bool:
    """tensorflow-cpu 2.21's AvgPoolGrad / AvgPool3DGrad (the gradients of tf.nn.avg_pool1d /
    2d / 3d) do not check the upstream gradient against the pool's output:
    - a dy of the right number of axes but other sizes (a wrong_dy_shape draw, or the contract's
      dy of a kernel_too_large draw, whose TF output is empty) is read and scattered past the
      buffers: "malloc(): invalid size (unsorted)" (float64, x (3, 2, 4, 2), kernel (3, 4),
      stride 2, padding 1, dy (3, 3, 2, 1)) or SIGFPE (float32, x (2, 3, 4, 3), kernel (3, 4),
      stride 1, dy (2, 3, 2, 1): TF's output is (2, 3, 2, 0));
    - oneDNN float32 at ranks 2 and 3: a dy of fewer axes than the output fails
      "Check failed: d < dims() (3 vs. 3)" in tensor_shape.cc (more axes are accepted; float64
      and rank 1, which reshapes dy first, raise InvalidArgumentError).
    True for such a call: it is never run."""
    a, rank = invalid.args, invalid.rank
    x, dy = a.get("x"), a.get("dy")
    if invalid.family != "avg_pool" or invalid.direction != "backward" \
            or not isinstance(x, np.ndarray) or not isinstance(dy, np.ndarray):
        return False
    if dy.ndim < rank + 2:
        return rank > 1 and x.dtype == np.float32 and dy.dtype == np.float32
    if dy.ndim != rank + 2 or x.ndim != rank + 2 or isinstance(a["padding"], str):
        return False
    kernel = spatial(a["kernel_size"], rank)
    stride = kernel if a["stride"] is None else spatial(a["stride"], rank)
    pads = loose_pads(a["padding"], rank)
    if min(*kernel, *stride) < 1 or min(min(p) for p in pads) < 0:
        return False  # TF refuses these before the gradient runs
    out = [_tf_out(n + b + af, k, s)
           for n, (b, af), k, s in zip(x.shape[2:], pads, kernel, stride, strict=True)]
    if min(out) < 0:
        return False  # the forward raises 'Computed output size would be negative'
    return tuple(dy.shape) != (*x.shape[:2], *out)


# The categories whose broken argument is the padding: where a TF op has no explicit padding,
# the padding of such a call has no native counterpart (a tf.pad before the op would answer
# for tf.pad, which the pad categories record).
_PADDING_CATEGORIES = ("negative_padding", "pool_padding_above_half")


def _tf_conv_limits(invalid: InvalidCall) -> None:
    """TF's CPU convolutions refuse some valid configurations: such a draw would record the
    limitation, not the category (divergences tf-dilated-conv-gradient,
    tf-grouped-conv-gradient-cpu; Conv3D has no groups and, in float64, no dilation)."""
    a, rank, cat = invalid.args, invalid.rank, invalid.category
    x, w = a["x"], a["w"]
    f64 = x.dtype == np.float64
    if rank == 3 and a["groups"] != 1:
        raise NotExpressible("tf.nn.conv3d has no grouped convolution", incidental=True)
    if cat != "nonpositive_dilation" and _dilated(a, rank):
        if rank == 3 and f64:
            raise NotExpressible("TF CPU float64 Conv3D supports dilation 1 only",
                                 incidental=True)
        if invalid.direction == "backward" and (rank == 2 or f64):
            raise NotExpressible("TF CPU conv gradients support dilation 1 only (float64; "
                                 "float32 with explicit padding)", incidental=True)
    if invalid.direction == "backward" and f64 and x.ndim == w.ndim == rank + 2 \
            and w.shape[1] >= 1:
        c, depth, co = x.shape[1], w.shape[1], w.shape[0]
        if depth != c and c % depth == 0 and co % (c // depth) == 0:
            raise NotExpressible("TF CPU float64 grouped conv gradients are unimplemented",
                                 incidental=True)


def _tf_padding(tf: Any, x: Any, invalid: InvalidCall, explicit_ok: bool,
                fill: Callable[[], Any]) -> tuple[Any, Any]:
    """(input, padding) for a tf.nn conv / pool: strings as TF names; explicit pads as TF's
    explicit list where the op takes one (``explicit_ok``), else a tf.pad with ``fill()`` and
    "VALID"."""
    a, rank = invalid.args, invalid.rank
    if isinstance(a["padding"], str):
        return x, _tf_string(a["padding"])
    pads = loose_pads(a["padding"], rank)
    if explicit_ok:
        return x, _tf_explicit(pads)
    if invalid.category in _PADDING_CATEGORIES:
        raise NotExpressible(f"tf.nn's {rank}-D op takes 'SAME' / 'VALID' only: no explicit "
                             "padding")
    if all(b == af == 0 for b, af in pads):
        return x, "VALID"
    if len(x.shape) != rank + 2:
        raise NotExpressible("the explicit padding would be a tf.pad of an input of the wrong "
                             "rank", incidental=True)
    return tf.pad(x, _tf_explicit(pads), constant_values=fill()), "VALID"


def _tf_spatial(v: Any, rank: int) -> Any:
    """A stride / dilation for tf.nn.conv3d: [1, *per axis, 1]; for the others as given."""
    if rank == 3:
        return [1, *spatial(v, rank), 1]
    return list(v) if isinstance(v, tuple | list) else v


def tf_conv_transpose_aborts(invalid: InvalidCall, out: list[int]) -> bool:
    """tensorflow-cpu 2.21's oneDNN float32 Conv2DBackpropInput / Conv3DBackpropInputV2 (the
    forward of tf.nn.conv1d/2d/3d_transpose) build the output shape before checking it: a
    negative output_shape dimension fails "Check failed: ... Dimension -1 must be >= 0" in
    mkl_conv_grad_input_ops.cc and kills the process (x ones (1, 2, 1), filters (2, 1, 1),
    output_shape [1, -1, 1]; an output size of 0 returns an empty result). The contract's
    output size of a transposed_output_too_small draw is negative exactly there."""
    x = invalid.args["x"]
    return x.dtype == np.float32 and min(out) < 0


def _tf_conv_transpose(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                       grads: Callable[..., Any]) -> Any:
    """tf.nn.conv{1,2,3}d_transpose with the contract's output size as output_shape: VALID
    without padding, explicit pads at rank 2 (the only one that takes them), filters
    (*k, Co / G, C) (divergences tf-conv-transpose-output-shape, -filter-layout)."""
    a, cat, rank = invalid.args, invalid.category, invalid.rank
    if cat in ("groups_not_dividing", "nonpositive_groups"):
        raise NotExpressible("tf.nn.conv*_transpose have no groups argument")
    if a["groups"] != 1:
        raise NotExpressible("tf.nn.conv*_transpose have no groups", incidental=True)
    x_np, w_np = a["x"], a["w"]
    if any(a[k].ndim != rank + 2 for k in ("x", "w", "dy") if k in a):
        raise NotExpressible("output_shape is computed from arrays of the rank's ndim",
                             incidental=cat != "wrong_ndim")
    if cat != "nonpositive_dilation" and _dilated(a, rank) and x_np.dtype == np.float64:
        raise NotExpressible("TF CPU float64 transposed convs support dilation 1 only "
                             "(tf-conv-transpose-dilation-float64)", incidental=True)
    pads = loose_pads(a["padding"], rank)
    if any(b != af for b, af in pads):
        raise NotExpressible("the contract's transposed-conv padding is symmetric",
                             incidental=True)
    if any(b for b, _ in pads) and rank != 2:
        if cat in _PADDING_CATEGORIES or cat == "transposed_output_too_small":
            raise NotExpressible(f"tf.nn.conv{rank}d_transpose takes 'SAME' / 'VALID' only")
        raise NotExpressible(f"tf.nn.conv{rank}d_transpose takes no explicit padding",
                             incidental=True)
    s, d = spatial(a["stride"], rank), spatial(a["dilation"], rank)
    e = spatial(a["output_padding"], rank)
    out = [(n - 1) * si - 2 * b + di * (k - 1) + ei + 1 for n, k, si, di, ei, (b, _) in
           zip(x_np.shape[2:], w_np.shape[2:], s, d, e, pads, strict=True)]
    shape = [x_np.shape[0], *out, w_np.shape[1]]
    if tf_conv_transpose_aborts(invalid, out):
        raise WouldAbort("oneDNN float32 conv*_transpose: CHECK failure on a negative "
                         "output_shape dimension")
    padding: Any = _tf_explicit(pads) if any(b for b, _ in pads) else "VALID"
    x = c("x", _last)
    w = tf.constant(_copy(w_np.transpose(*range(2, rank + 2), 1, 0)))  # (*k, Co, C)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        if rank == 1:
            y = tf.nn.conv1d_transpose(x, w, shape, s[0], padding=padding, dilations=d[0])
        else:
            fn = tf.nn.conv2d_transpose if rank == 2 else tf.nn.conv3d_transpose
            y = fn(x, w, shape, list(s), padding=padding, dilations=list(d))
        if invalid.direction == "forward" and a.get("b") is not None:
            y = tf.nn.bias_add(y, c("b"))
    if invalid.direction == "backward":
        return grads(tape, y, [x, w], c("dy", _last))
    return y


def _tf_pad_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                 grads: Callable[..., Any]) -> Any:
    """The native tf call of pad (a row of TF_CALLS)."""
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    if not backward:
        return _tf_pad(tf, c("x"), invalid)
    dy = c("dy")
    x = tf.zeros(pad_input_shape(a["dy"], a["pad_width"], rank), dtype=dy.dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = _tf_pad(tf, x, invalid)
    return grads(tape, y, [x], dy)


def _tf_conv_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                  grads: Callable[..., Any]) -> Any:
    """The native tf call of conv (a row of TF_CALLS)."""
    a = invalid.args
    cat = invalid.category
    rank = invalid.rank
    backward = invalid.direction == "backward"
    if cat in ("groups_not_dividing", "nonpositive_groups"):
        raise NotExpressible("tf.nn's convolutions have no groups argument: groups is C / "
                             "the filter's in-depth")
    _tf_conv_limits(invalid)
    x, w = c("x", _last), c("w", _filter_last)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        xp, padding = _tf_padding(tf, x, invalid, rank == 2, lambda: 0)
        if tf_conv_aborts(invalid):
            raise WouldAbort("oneDNN float32 Conv2D / Conv3D: CHECK failure on an input "
                             "of < 4 dims")
        stride, dilation = _tf_spatial(a["stride"], rank), _tf_spatial(a["dilation"], rank)
        if rank == 1:
            y = tf.nn.conv1d(xp, w, stride=stride, padding=padding, dilations=dilation)
        else:
            conv = tf.nn.conv2d if rank == 2 else tf.nn.conv3d
            y = conv(xp, w, strides=stride, padding=padding, dilations=dilation)
        if not backward and a.get("b") is not None:
            y = tf.nn.bias_add(y, c("b"))
    return grads(tape, y, [x, w], c("dy", _last)) if backward else y


def _tf_max_pool_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                      grads: Callable[..., Any]) -> Any:
    """The native tf call of max_pool (a row of TF_CALLS)."""
    a = invalid.args
    cat = invalid.category
    rank = invalid.rank
    backward = invalid.direction == "backward"
    if a["ceil_mode"]:
        raise NotExpressible("tf.nn pooling has no ceil_mode", incidental=True)
    if cat != "nonpositive_dilation" and _dilated(a, rank):
        raise NotExpressible("tf.nn.max_pool has no dilation", incidental=True)
    if rank == 3 and a["x"].dtype == np.float64:
        raise NotExpressible("tf.nn.max_pool3d has no float64 kernel", incidental=True)
    x = c("x", _last)
    kernel = a["kernel_size"]
    stride = kernel if a["stride"] is None else a["stride"]

    def lowest() -> Any:
        dtype = np.dtype(x.dtype.as_numpy_dtype)
        if dtype.kind == "f":
            return -np.inf
        return np.iinfo(dtype).min if dtype.kind in "iu" else False

    with tf.GradientTape() as tape:
        tape.watch(x)
        if cat == "nonpositive_dilation":
            if any(p != (0, 0) for p in loose_pads(a["padding"], rank)):
                raise NotExpressible("tf.nn.pool (the one with dilations) has no explicit "
                                     "padding", incidental=True)
            y = tf.nn.pool(x, window_shape=list(spatial(kernel, rank)), pooling_type="MAX",
                           strides=list(spatial(stride, rank)), padding="VALID",
                           dilations=list(spatial(a["dilation"], rank)))
        else:
            xp, padding = _tf_padding(tf, x, invalid, rank < 3, lowest)
            if tf_pool_aborts(invalid):
                raise WouldAbort("oneDNN float32 MaxPool3D: SIGFPE on an empty last axis, "
                                 "CHECK failure on a 4-D input")
            pool = {1: tf.nn.max_pool1d, 2: tf.nn.max_pool2d, 3: tf.nn.max_pool3d}[rank]
            y = pool(xp, ksize=_tf_list(kernel), strides=_tf_list(stride), padding=padding)
    return grads(tape, y, [x], c("dy", _last)) if backward else y


def _tf_avg_pool_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                      grads: Callable[..., Any]) -> Any:
    """The native tf call of avg_pool (a row of TF_CALLS)."""
    a = invalid.args
    rank = invalid.rank
    backward = invalid.direction == "backward"
    if a["ceil_mode"]:
        raise NotExpressible("tf.nn pooling has no ceil_mode", incidental=True)
    if invalid.category == "bad_divisor_override":
        raise NotExpressible("tf.nn.avg_pool has no divisor_override")
    if a["divisor_override"] is not None:
        raise NotExpressible("tf.nn.avg_pool has no divisor_override", incidental=True)
    if rank == 3 and a["x"].dtype == np.float64:
        raise NotExpressible("tf.nn.avg_pool3d has no float64 kernel", incidental=True)
    pads = None if isinstance(a["padding"], str) else loose_pads(a["padding"], rank)
    if not a["count_include_pad"] and pads and any(p != (0, 0) for p in pads) \
            and invalid.category not in _PADDING_CATEGORIES:
        raise NotExpressible("tf.nn.avg_pool counts padding only as a tf.pad of zeros",
                             incidental=True)
    x = c("x", _last)
    kernel = a["kernel_size"]
    stride = kernel if a["stride"] is None else a["stride"]
    with tf.GradientTape() as tape:
        tape.watch(x)
        # A tf.pad of zeros, then VALID: the padded cells count (count_include_pad).
        xp, padding = _tf_padding(tf, x, invalid, False, lambda: 0)
        if tf_avg_pool_reads_past_x(invalid):
            raise WouldAbort("AvgPool / AvgPoolGrad on an x of the wrong number of axes: "
                             "answers vary from run to run, and the gradient has aborted")
        if tf_avg_pool_grad_aborts(invalid):
            raise WouldAbort("AvgPoolGrad: heap corruption or SIGFPE on a dy whose shape is "
                             "not the output's, CHECK failure (oneDNN float32) on fewer axes")
        pool = {1: tf.nn.avg_pool1d, 2: tf.nn.avg_pool2d, 3: tf.nn.avg_pool3d}[rank]
        y = pool(xp, ksize=_tf_list(kernel), strides=_tf_list(stride), padding=padding)
    return grads(tape, y, [x], c("dy", _last)) if backward else y


def _tf_lp_pool_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                     grads: Callable[..., Any]) -> Any:
    """The native tf call of lp_pool (a row of TF_CALLS)."""
    raise NotExpressible("tf.nn has no LP pooling (the adapter composes it from tf.pow and "
                         "tf.nn.avg_pool: its answers would be those ops')")


def _tf_adaptive_pool_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                           grads: Callable[..., Any]) -> Any:
    """The native tf call of adaptive_avg_pool / adaptive_max_pool (a row of TF_CALLS)."""
    raise NotExpressible("tf.nn has no adaptive pooling (the TF adapter composes it from "
                         "reduce_mean / argmax of slices)")


def run_tf(tf: Any, invalid: InvalidCall) -> Any:
    """The natively equivalent tf.nn call (channels-last, tf.constant, GradientTape for
    gradients). Returns the output, or the gradients for a backward function."""
    a, ndim = invalid.args, invalid.rank + 2

    def c(name: str, layout: Callable[[np.ndarray, int], np.ndarray] | None = None) -> Any:
        if a.get(name) is None:
            return None
        return tf.constant(_copy(a[name]) if layout is None else layout(a[name], ndim))

    def grads(tape: Any, y: Any, sources: list, dy: Any) -> Any:
        return tape.gradient(y, [s for s in sources if s is not None], output_gradients=dy)

    native = TF_CALLS.get(invalid.family)
    if native is None:
        raise NotImplementedError(f"no native TF call for the {invalid.family!r} record")
    return native(tf, invalid, c, grads)


def _tf_list(v: Any) -> Any:
    return list(v) if isinstance(v, tuple | list) else v


def _tf_batch_norm(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                   grads: Callable[..., Any]) -> Any:
    """tf.nn.moments (training) + tf.nn.batch_normalization; tf.nn keeps no running statistics,
    so in training they (and momentum) are not part of the native call."""
    a, cat = invalid.args, invalid.category
    backward = invalid.direction == "backward"
    training = a["training"]
    running_broken = invalid.broken in ("running_mean", "running_var")
    if cat == "bn_eval_without_running" or (cat == "bn_running_unpaired" and not training):
        raise NotExpressible("tf.nn.batch_normalization takes mean and variance as required "
                             "arguments: there is no eval mode that finds them")
    if training and (running_broken or cat == "bn_running_unpaired"):
        raise NotExpressible("tf.nn keeps no running statistics: in training they are not "
                             "arguments of any tf.nn call")
    if invalid.broken == "momentum":
        raise NotExpressible("tf.nn has no momentum: no tf.nn call updates running statistics")
    x, gamma = c("x", _last), c("gamma")
    with tf.GradientTape() as tape:
        tape.watch([s for s in (x, gamma) if s is not None])
        if training:
            mean, var = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
        else:
            mean, var = c("running_mean"), c("running_var")
        y = tf.nn.batch_normalization(x, mean, var, offset=None if backward else c("beta"),
                                      scale=gamma, variance_epsilon=a["eps"])
    return grads(tape, y, [x, gamma], c("dy", _last)) if backward else y


def _tf_normalise(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                  grads: Callable[..., Any], x: Any, axes: list[int], dy: Any,
                  view: Callable[[Any], Any] = lambda v: v,
                  unview: Callable[[Any], Any] = lambda v: v) -> Any:
    """tf.nn.moments of ``view(x)`` over ``axes`` (keepdims), tf.nn.batch_normalization, back
    by ``unview`` to x's shape, times gamma plus beta (broadcast against x's last axes);
    GradientTape with ``dy`` (x's layout) for the backward functions."""
    a = invalid.args
    backward = invalid.direction == "backward"
    gamma, beta = c("gamma"), None if backward else c("beta")
    with tf.GradientTape() as tape:
        tape.watch([s for s in (x, gamma) if s is not None])
        v = view(x)
        mean, var = tf.nn.moments(v, axes=axes, keepdims=True)
        y = unview(tf.nn.batch_normalization(v, mean, var, None, None, a["eps"]))
        y = y if gamma is None else y * gamma
        y = y if beta is None else y + beta
    return grads(tape, y, [x, gamma], dy) if backward else y


def _tf_layer_norm(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                   grads: Callable[..., Any]) -> Any:
    """tf.nn.moments over x's trailing len(normalized_shape) axes in the contract's layout (the
    axes are x's own, so no channels-last transpose) + tf.nn.batch_normalization, gamma and
    beta broadcast against them. tf.nn takes axes, not a shape: normalized_shape's values have
    no counterpart."""
    a = invalid.args
    if invalid.broken == "normalized_shape":
        raise NotExpressible("tf.nn.moments takes the axes to normalise, not their shape: "
                             "normalized_shape has no tf.nn counterpart")
    shape = a["normalized_shape"]
    count = 1 if type(shape) is int else len(shape)
    x = c("x")
    axes = list(range(len(x.shape) - count, len(x.shape)))
    return _tf_normalise(tf, invalid, c, grads, x, axes, c("dy"))


def _tf_group_norm(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                   grads: Callable[..., Any]) -> Any:
    """Channels-last x (N, *S, C) viewed as (N, *S, G, C / G): tf.nn.moments over the spatial
    axes and the last, tf.nn.batch_normalization, back to (N, *S, C), times gamma plus beta
    (per channel). tf.nn has no num_groups: the view's tf.reshape would answer for it."""
    if invalid.broken == "num_groups":
        raise NotExpressible("tf.nn has no group normalisation: num_groups would be a "
                             "tf.reshape's, not a tf.nn argument")
    groups = invalid.args["num_groups"]
    x = c("x", _last)
    shape = tf.shape(x)
    rank = len(x.shape)
    return _tf_normalise(
        tf, invalid, c, grads, x, [*range(1, rank - 1), rank], c("dy", _last),
        view=lambda v: tf.reshape(v, tf.concat([shape[:-1], [groups, -1]], axis=0)),
        unview=lambda v: tf.reshape(v, shape))


def _tf_instance_norm(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                      grads: Callable[..., Any]) -> Any:
    """Channels-last x (N, *S, C): tf.nn.moments over the spatial axes (training) or the
    running statistics (eval) + tf.nn.batch_normalization; tf.nn keeps no running statistics
    (in training they, and momentum, are not part of the native call), as for batch norm."""
    a = invalid.args
    backward = invalid.direction == "backward"
    training = a["training"]
    if invalid.broken in ("running_mean", "running_var") and training:
        raise NotExpressible("tf.nn keeps no running statistics: in training they are not "
                             "arguments of any tf.nn call")
    if invalid.broken == "momentum":
        raise NotExpressible("tf.nn has no momentum: no tf.nn call updates running statistics")
    x, gamma = c("x", _last), c("gamma")
    with tf.GradientTape() as tape:
        tape.watch([s for s in (x, gamma) if s is not None])
        if training:
            mean, var = tf.nn.moments(x, axes=list(range(1, len(x.shape) - 1)), keepdims=True)
        else:
            mean, var = c("running_mean"), c("running_var")
        y = tf.nn.batch_normalization(x, mean, var, offset=None if backward else c("beta"),
                                      scale=gamma, variance_epsilon=a["eps"])
    return grads(tape, y, [x, gamma], c("dy", _last)) if backward else y


# activations and the dense layer ----------------------------------------------------------


def _torch_linear_call(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
                       grads: Callable[..., Any]) -> Any:
    """F.linear (autograd with dy)."""
    backward = invalid.direction == "backward"
    x, w = t("x", backward), t("w", backward)
    y = torch.nn.functional.linear(x, w, None if backward else t("b"))
    return grads(y, [x, w]) if backward else y


def _torch_activation(pick: Callable[[Any, Mapping[str, Any]], Callable[[Any], Any]]
                      ) -> Callable[..., Any]:
    """The native torch call of an activation: ``pick(torch, args)`` is the function applied to
    x (autograd with dy)."""

    def native(torch: Any, invalid: InvalidCall, t: Callable[..., Any],
               grads: Callable[..., Any]) -> Any:
        backward = invalid.direction == "backward"
        x = t("x", backward)
        y = pick(torch, invalid.args)(x)
        return grads(y, [x]) if backward else y

    return native


def _tf_linear_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                    grads: Callable[..., Any]) -> Any:
    """tf.tensordot(x, w) + b over x's last axis (GradientTape with dy)."""
    backward = invalid.direction == "backward"
    x, w = c("x"), c("w")
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = tf.tensordot(x, w, axes=[[len(x.shape) - 1], [1]])
        if not backward and invalid.args.get("b") is not None:
            y = y + c("b")
    return grads(tape, y, [x, w], c("dy")) if backward else y


def _tf_activation(name: str) -> Callable[..., Any]:
    """The native TF call of an activation: tf.nn.<name> (GradientTape with dy)."""

    def native(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
               grads: Callable[..., Any]) -> Any:
        x = c("x")
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = getattr(tf.nn, name)(x)
        return grads(tape, y, [x], c("dy")) if invalid.direction == "backward" else y

    return native


def _tf_elu_call(tf: Any, invalid: InvalidCall, c: Callable[..., Any],
                 grads: Callable[..., Any]) -> Any:
    """tf.nn.elu, whose alpha is fixed to 1."""
    if invalid.category == "bad_alpha" or invalid.args["alpha"] != 1.0:
        raise NotExpressible("tf.nn.elu has no alpha (tf-elu-no-alpha)",
                             incidental=invalid.category != "bad_alpha")
    return _tf_activation("elu")(tf, invalid, c, grads)


# The native call of each op record, by record name: torch(module, invalid, array maker, grads).
TORCH_CALLS: dict[str, Callable[..., Any]] = {
    "pad": _torch_pad_call,
    "conv": _torch_conv_call,
    "conv_transpose": _torch_conv_transpose_call,
    "max_pool": _torch_max_pool_call,
    "avg_pool": _torch_avg_pool_call,
    "lp_pool": _torch_lp_pool_call,
    "adaptive_avg_pool": _torch_adaptive_pool("avg"),
    "adaptive_max_pool": _torch_adaptive_pool("max"),
    "batch_norm": _torch_batch_norm_call,
    "layer_norm": _torch_layer_norm_call,
    "group_norm": _torch_group_norm_call,
    "instance_norm": _torch_instance_norm_call,
    "relu": _torch_activation(lambda torch, a: torch.nn.functional.relu),
    "elu": _torch_activation(
        lambda torch, a: lambda v: torch.nn.functional.elu(v, alpha=a["alpha"])),
    "sigmoid": _torch_activation(lambda torch, a: torch.sigmoid),
    "linear": _torch_linear_call,
}


# The native call of each op record, by record name: TF(module, invalid, array maker, grads).
TF_CALLS: dict[str, Callable[..., Any]] = {
    "pad": _tf_pad_call,
    "conv": _tf_conv_call,
    "conv_transpose": _tf_conv_transpose,
    "max_pool": _tf_max_pool_call,
    "avg_pool": _tf_avg_pool_call,
    "lp_pool": _tf_lp_pool_call,
    "adaptive_avg_pool": _tf_adaptive_pool_call,
    "adaptive_max_pool": _tf_adaptive_pool_call,
    "batch_norm": _tf_batch_norm,
    "layer_norm": _tf_layer_norm,
    "group_norm": _tf_group_norm,
    "instance_norm": _tf_instance_norm,
    "relu": _tf_activation("relu"),
    "elu": _tf_elu_call,
    "sigmoid": _tf_activation("sigmoid"),
    "linear": _tf_linear_call,
}


RUNNERS: dict[str, Callable[[Any, InvalidCall], Any]] = {"torch": run_torch,
                                                         "tensorflow": run_tf}
