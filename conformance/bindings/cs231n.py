"""``--api cs231n``: CS231n assignment 2, ``cs231n/layers.py``.

Functions returning ``(out, cache)`` and backward functions taking ``(dout, cache)``: every
backward row calls the user's forward first and hands its cache over. Conventions: ``w`` of
``affine_*`` is (in, out); ``conv_param = {'stride': int, 'pad': int}`` (one stride, one
symmetric zero padding, no dilation or groups); ``pool_param = {'pool_height', 'pool_width',
'stride'}`` (no padding); ``bn_param`` with ``mode``, ``eps``, ``momentum`` (cs231n's 0.9 is the
contract's 0.1: ``running = momentum * running + (1 - momentum) * batch``) and running statistics
written back into it, the running variance the *biased* batch variance (the contract's is
unbiased: the binding adds the difference, ``momentum * var / (m - 1)``, to the user's value).
``batchnorm_*`` takes (N, D), ``spatial_batchnorm_*`` (N, C, H, W). ``layernorm_*`` normalises
each row of (N, D) (``ln_param = {'eps'}``); ``spatial_groupnorm_*`` takes (N, C, H, W), ``G``
and ``gn_param = {'eps'}``, with gamma, beta and their gradients shaped (1, C, 1, 1). The tie
rule of max pooling is not fixed by the course: tie-free inputs.

Not bound: ``batchnorm_backward_alt`` (a second backward of the same op: check it by renaming
it ``batchnorm_backward`` in a copy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import (
    Binding,
    Coercion,
    UserCode,
    first_axis,
    fixed,
    one_int,
    one_padding,
    require,
    resolved_pads,
    row,
    scale_and_shift,
    symmetric_pad,
    ungrouped,
    zeros_if_none,
)

# --------------------------------------------------------------------------------------------
# affine_* (the contract's linear: w is (out, in) there, (in, out) here)


def _rows_2d(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]) if x.ndim != 1 else x.reshape(1, -1)


def linear(u: UserCode, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> Any:
    out, _ = u.affine_forward(_rows_2d(x), np.ascontiguousarray(w.T),
                              zeros_if_none(b, w.shape[0], x))
    return np.asarray(out).reshape(*x.shape[:-1], w.shape[0])


def linear_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> Any:
    _, cache = u.affine_forward(_rows_2d(x), np.ascontiguousarray(w.T),
                                np.zeros(w.shape[0], dtype=x.dtype))
    dx, dw, db = u.affine_backward(_rows_2d(dy), cache)
    return np.asarray(dx).reshape(x.shape), np.asarray(dw).T, np.asarray(db)


# --------------------------------------------------------------------------------------------
# relu_*


def relu(u: UserCode, x: np.ndarray) -> Any:
    return u.relu_forward(x)[0]


def relu_backward(u: UserCode, dy: np.ndarray, x: np.ndarray) -> Any:
    _, cache = u.relu_forward(x)
    return u.relu_backward(dy, cache)


# --------------------------------------------------------------------------------------------
# conv_*_naive


def conv_param(x: np.ndarray, w: np.ndarray, stride: Any, padding: Any, dilation: Any,
               groups: int) -> dict[str, int]:
    """The contract's geometry as cs231n's conv_param (Inexpressible where it cannot say it)."""
    require(groups == 1, "groups (conv_param has none)")
    require(set(np.ravel(dilation)) == {1}, "dilation (conv_param has none)")
    pads = resolved_pads(padding, x.shape, w.shape[2:], stride, dilation)
    return {"stride": one_int(stride, 2, "stride"), "pad": symmetric_pad(pads)}


def conv2d(u: UserCode, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
           stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    param = conv_param(x, w, stride, padding, dilation, groups)
    return u.conv_forward_naive(x, w, zeros_if_none(b, w.shape[0], x), param)[0]


def conv2d_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Any = 1,
                    padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    param = conv_param(x, w, stride, padding, dilation, groups)
    _, cache = u.conv_forward_naive(x, w, np.zeros(w.shape[0], dtype=x.dtype), param)
    return tuple(u.conv_backward_naive(dy, cache))


# --------------------------------------------------------------------------------------------
# max_pool_*_naive


def pool_param(kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               ceil_mode: bool) -> dict[str, int]:
    require(set(np.ravel(padding)) == {0}, "padding (pool_param has none)")
    require(set(np.ravel(dilation)) == {1}, "dilation (pool_param has none)")
    require(not ceil_mode, "ceil_mode (pool_param has none)")
    kh, kw = (kernel_size,) * 2 if np.ndim(kernel_size) == 0 else kernel_size
    return {"pool_height": int(kh), "pool_width": int(kw),
            "stride": one_int(kernel_size if stride is None else stride, 2, "stride")}


def max_pool2d(u: UserCode, x: np.ndarray, kernel_size: Any, stride: Any = None,
               padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    require(not return_indices, "indices (the API returns none)")
    param = pool_param(kernel_size, stride, padding, dilation, ceil_mode)
    return u.max_pool_forward_naive(x, param)[0]


def max_pool2d_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, kernel_size: Any,
                        stride: Any = None, padding: Any = 0, dilation: Any = 1,
                        ceil_mode: bool = False) -> Any:
    param = pool_param(kernel_size, stride, padding, dilation, ceil_mode)
    _, cache = u.max_pool_forward_naive(x, param)
    return u.max_pool_backward_naive(dy, cache)


# --------------------------------------------------------------------------------------------
# batchnorm_* (N, D) and spatial_batchnorm_* (N, C, H, W)


def _batchnorm_functions(x: np.ndarray) -> tuple[str, str]:
    require(x.ndim in (2, 4), "batch norm of (N, C, L) or (N, C, D, H, W) input")
    return (("batchnorm_forward", "batchnorm_backward") if x.ndim == 2
            else ("spatial_batchnorm_forward", "spatial_batchnorm_backward"))


def bn_param(training: bool, momentum: float, eps: float, running_mean: Any,
             running_var: Any) -> dict[str, Any]:
    """The contract's arguments as bn_param (copies: the user's code writes into them)."""
    param: dict[str, Any] = {"mode": "train" if training else "test", "eps": eps,
                             "momentum": 1.0 - momentum}
    if running_mean is not None:
        param["running_mean"] = np.array(running_mean, copy=True)
        param["running_var"] = np.array(running_var, copy=True)
    return param


def batch_norm(u: UserCode, x: np.ndarray, gamma: np.ndarray | None = None,
               beta: np.ndarray | None = None, running_mean: np.ndarray | None = None,
               running_var: np.ndarray | None = None, training: bool = True,
               momentum: float = 0.1, eps: float = 1e-5) -> Any:
    forward, _ = _batchnorm_functions(x)
    c = x.shape[1]
    gamma = np.ones(c, dtype=x.dtype) if gamma is None else gamma
    param = bn_param(training, momentum, eps, running_mean, running_var)
    y, _ = getattr(u, forward)(x, gamma, zeros_if_none(beta, c, x), param)
    if not training or running_mean is None:
        return y
    axes = tuple(i for i in range(x.ndim) if i != 1)
    m = x.size // c
    # cs231n keeps the biased batch variance; the contract's running variance takes the
    # unbiased one: the difference is momentum * var * (1 / (m - 1)).
    biased = np.asarray(x, dtype=np.float64).var(axis=axes)
    new_var = np.asarray(param["running_var"])
    correction = (momentum * biased / (m - 1)).astype(new_var.dtype)
    return y, np.asarray(param["running_mean"]), new_var + correction


def batch_norm_backward(u: UserCode, dy: np.ndarray, x: np.ndarray,
                        gamma: np.ndarray | None = None, eps: float = 1e-5,
                        running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None, training: bool = True) -> Any:
    forward, backward = _batchnorm_functions(x)
    require(training, "backward in test mode (the API differentiates the training mode)")
    c = x.shape[1]
    gamma = np.ones(c, dtype=x.dtype) if gamma is None else gamma
    _, cache = getattr(u, forward)(x, gamma, np.zeros(c, dtype=x.dtype),
                                   bn_param(True, 0.1, eps, None, None))
    return tuple(getattr(u, backward)(dy, cache))


# --------------------------------------------------------------------------------------------
# layernorm_* (N, D) and spatial_groupnorm_* (N, C, H, W)


def layer_norm(u: UserCode, x: np.ndarray, normalized_shape: Any, gamma: Any, beta: Any,
               eps: float) -> Any:
    gamma, beta = scale_and_shift(x, gamma, beta)
    return u.layernorm_forward(x, gamma, beta, {"eps": eps})[0]


def layer_norm_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, normalized_shape: Any,
                        gamma: Any, eps: float) -> Any:
    _, cache = u.layernorm_forward(x, *scale_and_shift(x, gamma), {"eps": eps})
    return tuple(u.layernorm_backward(dy, cache))


def _per_channel(v: np.ndarray) -> np.ndarray:  # (C,) -> (1, C, 1, 1)
    return np.asarray(v).reshape(1, -1, 1, 1)


def group_norm(u: UserCode, x: np.ndarray, num_groups: int, gamma: Any, beta: Any,
               eps: float) -> Any:
    gamma, beta = scale_and_shift(x, gamma, beta)
    return u.spatial_groupnorm_forward(x, _per_channel(gamma), _per_channel(beta), num_groups,
                                       {"eps": eps})[0]


def group_norm_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, num_groups: int,
                        gamma: Any, eps: float) -> Any:
    gamma, beta = scale_and_shift(x, gamma)
    _, cache = u.spatial_groupnorm_forward(x, _per_channel(gamma), _per_channel(beta),
                                           num_groups, {"eps": eps})
    dx, dgamma, dbeta = u.spatial_groupnorm_backward(dy, cache)
    return dx, np.asarray(dgamma).reshape(-1), np.asarray(dbeta).reshape(-1)


BINDING = Binding(
    name="cs231n",
    rows=(
        row("linear", "affine_forward", linear),
        row("linear_backward", ["affine_forward", "affine_backward"], linear_backward),
        row("relu", "relu_forward", relu),
        row("relu_backward", ["relu_forward", "relu_backward"], relu_backward),
        row("conv2d", "conv_forward_naive", conv2d),
        row("conv2d_backward", ["conv_forward_naive", "conv_backward_naive"], conv2d_backward),
        row("max_pool2d", "max_pool_forward_naive", max_pool2d),
        row("max_pool2d_backward", ["max_pool_forward_naive", "max_pool_backward_naive"],
            max_pool2d_backward),
        row("batch_norm", ["batchnorm_forward", "spatial_batchnorm_forward"], batch_norm,
            label="batchnorm_forward / spatial_batchnorm_forward",
            outputs={"y": "batchnorm_forward / spatial_batchnorm_forward: out",
                     "running_mean": "batchnorm_forward: bn_param['running_mean']",
                     "running_var": "batchnorm_forward: bn_param['running_var']"}),
        row("batch_norm_backward", ["batchnorm_forward", "spatial_batchnorm_forward",
                                    "batchnorm_backward", "spatial_batchnorm_backward"],
            batch_norm_backward, label="batchnorm_backward / spatial_batchnorm_backward",
            outputs={"dx": "batchnorm_backward / spatial_batchnorm_backward: dx",
                     "dgamma": "batchnorm_backward / spatial_batchnorm_backward: dgamma",
                     "dbeta": "batchnorm_backward / spatial_batchnorm_backward: dbeta"}),
        row("layer_norm", "layernorm_forward", layer_norm, outputs={"y": "layernorm_forward: out"}),
        row("layer_norm_backward", ["layernorm_forward", "layernorm_backward"],
            layer_norm_backward),
        row("group_norm", "spatial_groupnorm_forward", group_norm,
            outputs={"y": "spatial_groupnorm_forward: out"}),
        row("group_norm_backward", ["spatial_groupnorm_forward", "spatial_groupnorm_backward"],
            group_norm_backward),
    ),
    limits={
        "conv2d": {**ungrouped(), "dilation": fixed(1, "no dilation"),
                   "stride": first_axis("stride"), "padding": one_padding()},
        "max_pool2d": {"padding": fixed(0, "no padding"), "dilation": fixed(1, "no dilation"),
                       "ceil_mode": False, "return_indices": False,
                       "stride": first_axis("stride")},
        "batch_norm": {"rank": [0, 2]},
        "layer_norm": {"rank": 0, "normalized_shape": Coercion(
            "each row of (N, D) normalised", lambda case: case.shape[-1:])},
        "group_norm": {"rank": 2},
    },
    entries=("cs231n/layers.py", "layers.py"),
    notes=("conv_param: one stride, one symmetric zero padding; no dilation, no groups",
           "pool_param: no padding, no dilation, no ceil_mode, no indices",
           "batchnorm_backward: the training mode only",
           "layernorm_*: (N, D) rows only; spatial_groupnorm_*: (N, C, H, W) only",
           "batchnorm_backward_alt: not bound (rename it batchnorm_backward in a copy)"),
)
