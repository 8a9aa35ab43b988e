"""``--api deeplearning-ai``: "Convolution model - Step by Step" (course 4, week 1).

Channels last throughout: ``A_prev`` (m, n_H, n_W, n_C), ``W`` (f, f, n_C_prev, n_C), ``b``
(1, 1, 1, n_C); ``hparameters`` dicts (``{'stride', 'pad'}`` for ``conv_forward``, ``{'f',
'stride'}`` for ``pool_forward``); square kernels and windows, one stride, one symmetric zero
padding (``zero_pad(X, pad)``), pooling without padding. Backward functions take
``(dA, cache)``: the user's forward runs first. ``pool_backward``'s mask gives the gradient to
every tied maximum (the course's ``create_mask_from_window``), not to the first as the contract
does: the binding states the tie rule "every", so the sampler draws tie-free inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import (
    Binding,
    UserCode,
    channels_first,
    channels_last,
    first_axis,
    fixed,
    one_int,
    one_padding,
    require,
    resolved_pads,
    row,
    symmetric_pad,
    ungrouped,
    zeros_if_none,
)


def zero_pad(u: UserCode, x: np.ndarray, pad_width: Any, mode: str = "constant",
             value: float = 0.0) -> Any:
    require(x.ndim == 4, "padding of other than (N, C, H, W) input")
    require(mode == "constant" and value == 0, "modes and values other than zeros")
    pad = symmetric_pad(resolved_pads(pad_width, x.shape, (1, 1), 1, 1))
    return channels_first(u.zero_pad(channels_last(x), pad))


def hparameters(x: np.ndarray, w: np.ndarray, stride: Any, padding: Any, dilation: Any,
                groups: int) -> dict[str, int]:
    require(groups == 1, "groups (hparameters has none)")
    require(set(np.ravel(dilation)) == {1}, "dilation (hparameters has none)")
    require(w.shape[2] == w.shape[3], "non-square kernels (W is (f, f, n_C_prev, n_C))")
    pads = resolved_pads(padding, x.shape, w.shape[2:], stride, dilation)
    return {"stride": one_int(stride, 2, "stride"), "pad": symmetric_pad(pads)}


def _weights(w: np.ndarray) -> np.ndarray:
    """(Co, C, f, f) -> (f, f, C, Co)."""
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv2d(u: UserCode, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
           stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    hp = hparameters(x, w, stride, padding, dilation, groups)
    bias = zeros_if_none(b, w.shape[0], x).reshape(1, 1, 1, -1)
    z, _ = u.conv_forward(channels_last(x), _weights(w), bias, hp)
    return channels_first(z)


def conv2d_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Any = 1,
                    padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    hp = hparameters(x, w, stride, padding, dilation, groups)
    bias = np.zeros((1, 1, 1, w.shape[0]), dtype=x.dtype)
    _, cache = u.conv_forward(channels_last(x), _weights(w), bias, hp)
    da, dw, db = u.conv_backward(channels_last(dy), cache)
    return (channels_first(da), np.ascontiguousarray(np.asarray(dw).transpose(3, 2, 0, 1)),
            np.asarray(db).reshape(-1))


def pool_hparameters(kernel_size: Any, stride: Any, padding: Any, dilation: Any = 1,
                     ceil_mode: bool = False) -> dict[str, int]:
    require(set(np.ravel(padding)) == {0}, "padding (hparameters has none)")
    require(set(np.ravel(dilation)) == {1}, "dilation (hparameters has none)")
    require(not ceil_mode, "ceil_mode (hparameters has none)")
    f = one_int(kernel_size, 2, "window size")
    return {"f": f, "stride": one_int(f if stride is None else stride, 2, "stride")}


def pool(mode: str) -> tuple[Any, Any]:
    """The contract's max or avg pooling, forward and backward, through pool_forward(mode)."""

    def forward(u: UserCode, x: np.ndarray, kernel_size: Any, stride: Any = None,
                padding: Any = 0, *rest: Any, **options: Any) -> Any:
        require(not options.pop("return_indices", False), "indices (the API returns none)")
        require(options.pop("divisor_override", None) is None, "divisor_override")
        options.pop("count_include_pad", None)  # no padding: every window counts its cells
        hp = pool_hparameters(kernel_size, stride, padding, **_pool_options(mode, rest, options))
        a, _ = u.pool_forward(channels_last(x), hp, mode=mode)
        return channels_first(a)

    def backward(u: UserCode, dy: np.ndarray, x: np.ndarray, kernel_size: Any,
                 stride: Any = None, padding: Any = 0, *rest: Any, **options: Any) -> Any:
        require(options.pop("divisor_override", None) is None, "divisor_override")
        options.pop("count_include_pad", None)
        hp = pool_hparameters(kernel_size, stride, padding, **_pool_options(mode, rest, options))
        _, cache = u.pool_forward(channels_last(x), hp, mode=mode)
        return channels_first(u.pool_backward(channels_last(dy), cache, mode=mode))

    return forward, backward


def _pool_options(mode: str, rest: tuple[Any, ...], options: dict[str, Any]) -> dict[str, Any]:
    """Positional extras by the contract's order: max (dilation, ceil_mode), avg (ceil_mode)."""
    names = ("dilation", "ceil_mode") if mode == "max" else ("ceil_mode",)
    found = dict(zip(names, rest, strict=False))
    found.update({k: v for k, v in options.items() if k in ("dilation", "ceil_mode")})
    return found


max_pool2d, max_pool2d_backward = pool("max")
avg_pool2d, avg_pool2d_backward = pool("average")

POOL_LIMITS = {"padding": fixed(0, "no padding"), "ceil_mode": False,
               "stride": first_axis("stride"), "kernel_size": first_axis("kernel_size")}

BINDING = Binding(
    name="deeplearning-ai",
    rows=(
        row("pad", "zero_pad", zero_pad),
        row("conv2d", "conv_forward", conv2d,
            outputs={"y": "conv_forward: Z"}),
        row("conv2d_backward", ["conv_forward", "conv_backward"], conv2d_backward,
            outputs={"dx": "conv_backward: dA_prev", "dw": "conv_backward: dW",
                     "db": "conv_backward: db"}),
        row("max_pool2d", "pool_forward", max_pool2d, label="pool_forward (max)",
            outputs={"y": "pool_forward (max): A"}),
        row("max_pool2d_backward", ["pool_forward", "pool_backward"], max_pool2d_backward,
            label="pool_backward (max)", outputs={"dx": "pool_backward (max): dA_prev"}),
        row("avg_pool2d", "pool_forward", avg_pool2d, label="pool_forward (average)",
            outputs={"y": "pool_forward (average): A"}),
        row("avg_pool2d_backward", ["pool_forward", "pool_backward"], avg_pool2d_backward,
            label="pool_backward (average)",
            outputs={"dx": "pool_backward (average): dA_prev"}),
    ),
    limits={
        "pad": {"rank": 2, "mode": fixed("constant", "zeros"), "value": fixed(0.0, "zeros"),
                "pad_width": one_padding("pad_width")},
        "conv2d": {**ungrouped(square=True), "dilation": fixed(1, "no dilation"),
                   "stride": first_axis("stride"), "padding": one_padding()},
        "max_pool2d": {**POOL_LIMITS, "dilation": fixed(1, "no dilation"),
                       "return_indices": False},
        "avg_pool2d": {**POOL_LIMITS, "divisor_override": fixed(None, "no divisor_override")},
    },
    ties="every",
    entries=("conv_model.py", "cnn_utils.py", "homework.py"),
    notes=("hparameters: square kernels and windows, one stride, one symmetric zero padding; "
           "no dilation, no groups",
           "pool_forward: no padding, no ceil_mode, no indices, no divisor_override",
           "zero_pad: zeros, one pad for every side of H and W; no pad_backward",
           "ties: the course's mask gives every tied maximum the gradient (tie-free inputs)"),
)
