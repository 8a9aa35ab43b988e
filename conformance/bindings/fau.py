"""``--api fau``: the FAU Deep Learning exercises' stateful layers, a ``Layers/`` package.

The target is the exercise's source folder holding ``Layers/`` (or ``Layers/`` itself); each
class comes from the module of its name (``Layers/Conv.py`` defines ``Conv``). A layer is built
from its constructor arguments, its weights set (``weights``, ``bias``), ``forward`` called,
then ``backward`` on the same object; gradients are read from ``gradient_weights`` and
``gradient_bias``. An ``optimizer`` attribute is set to None first, so that ``backward`` updates
nothing.

- ``Conv(stride_shape, convolution_shape, num_kernels)``: 1-D and 2-D; weights (num_kernels, c,
  *kernel), the contract's layout; "same" zero padding as ``scipy.signal.correlate(mode=
  "same")``, k // 2 before and (k - 1) // 2 after (the extra zero of an even kernel *before*,
  unlike the contract's "same"), then subsampled by the stride: the sampler draws exactly that
  padding, any stride, no dilation or groups.
- ``FullyConnected(input_size, output_size)``: (batch, input_size) input; ``weights`` is
  (input_size + 1, output_size), the contract's ``w.T`` with the bias as its last row (the input
  is extended by a column of ones), and so is ``gradient_weights``.
- ``Pooling(stride_shape, pooling_shape)``: max pooling, valid windows, any stride.
- ``ReLU()``, ``Sigmoid()``: any shape.
- ``BatchNormalization(channels)``: (N, C) and (N, C, H, W) in training mode (``testing_phase``
  False) without running statistics (the course initialises its moving averages with the first
  batch; their attribute names are the student's); ``weights`` is gamma, ``bias`` beta, and eps
  is the layer's own (read from an ``eps`` or ``epsilon`` attribute when it has one, else the
  course's 1e-11).

The course fixes no tie rule for pooling: tie-free inputs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .core import (
    Binding,
    Coercion,
    UserCode,
    fixed,
    require,
    resolved_pads,
    row,
    ungrouped,
    zeros_if_none,
)
from .targets import Namespace

CLASSES = ("FullyConnected", "Conv", "Pooling", "ReLU", "Sigmoid", "BatchNormalization")
EPS_ATTRIBUTES = ("eps", "epsilon", "_eps", "_epsilon")
DEFAULT_EPS = 1e-11


def load_layers(folder: Path) -> tuple[Namespace, str]:
    """The classes of ``folder/Layers`` (or of ``folder`` when it is ``Layers`` itself)."""
    root = folder.parent if folder.name == "Layers" else folder
    if not (root / "Layers").is_dir():
        raise ImportError(f"{folder} holds no Layers/ package")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    found: Namespace = {}
    for name in CLASSES:
        if not (root / "Layers" / f"{name}.py").is_file():
            continue
        module = importlib.import_module(f"Layers.{name}")
        if hasattr(module, name):
            found[name] = getattr(module, name)
    return found, str(root / "Layers")


def _unoptimised(u: UserCode, layer: Any) -> None:
    if hasattr(layer, "optimizer"):
        u.set(layer, "optimizer", None)


# --------------------------------------------------------------------------------------------
# FullyConnected: weights (in + 1, out), the bias the last row


def fc_layer(u: UserCode, w: np.ndarray, b: np.ndarray | None, like: np.ndarray) -> Any:
    layer = u.FullyConnected(w.shape[1], w.shape[0])
    _unoptimised(u, layer)
    bias = zeros_if_none(b, w.shape[0], like)
    u.set(layer, "weights", np.concatenate([w.T, bias[None, :]], axis=0))
    return layer


def _rows(x: np.ndarray) -> np.ndarray:  # (*lead, in) -> (batch, in)
    return x.reshape(-1, x.shape[-1])


def linear(u: UserCode, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> Any:
    y = u.method(fc_layer(u, w, b, x), "forward")(_rows(x))
    return np.asarray(y).reshape(*x.shape[:-1], w.shape[0])


def linear_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> Any:
    layer = fc_layer(u, w, None, x)
    u.method(layer, "forward")(_rows(x))
    dx = u.method(layer, "backward")(_rows(dy))
    grad = np.asarray(u.get(layer, "gradient_weights"))
    require(grad.shape == (w.shape[1] + 1, w.shape[0]),
            "gradient_weights not shaped (input_size + 1, output_size)")
    return np.asarray(dx).reshape(x.shape), grad[:-1].T, grad[-1]


# --------------------------------------------------------------------------------------------
# Conv


def course_same_pads(kernel: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """scipy.signal.correlate(mode="same"): k // 2 zeros before, (k - 1) // 2 after."""
    return tuple((k // 2, (k - 1) // 2) for k in kernel)


def conv_layer(u: UserCode, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Any,
               padding: Any, dilation: Any, groups: int) -> Any:
    require(groups == 1, "groups (Conv has none)")
    require(set(np.ravel(dilation)) == {1}, "dilation (Conv has none)")
    kernel = tuple(w.shape[2:])
    pads = resolved_pads(padding, x.shape, kernel, stride, dilation)
    require(pads == course_same_pads(kernel),
            "padding other than the course's 'same' (k // 2 before, (k - 1) // 2 after)")
    rank = x.ndim - 2
    strides = (stride,) * rank if np.ndim(stride) == 0 else tuple(stride)
    layer = u.Conv(tuple(int(s) for s in strides) if rank > 1 else [int(strides[0])],
                   (x.shape[1], *kernel), w.shape[0])
    _unoptimised(u, layer)
    u.set(layer, "weights", np.array(w, copy=True))
    u.set(layer, "bias", np.array(zeros_if_none(b, w.shape[0], x), copy=True))
    return layer


def conv(u: UserCode, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
         stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    layer = conv_layer(u, x, w, b, stride, padding, dilation, groups)
    return u.method(layer, "forward")(x)


def conv_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Any = 1,
                  padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    layer = conv_layer(u, x, w, None, stride, padding, dilation, groups)
    u.method(layer, "forward")(x)
    dx = u.method(layer, "backward")(dy)
    return dx, u.get(layer, "gradient_weights"), u.get(layer, "gradient_bias")


# --------------------------------------------------------------------------------------------
# Pooling


def pooling_layer(u: UserCode, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                  ceil_mode: bool) -> Any:
    require(set(np.ravel(padding)) == {0}, "padding (Pooling has none)")
    require(set(np.ravel(dilation)) == {1}, "dilation (Pooling has none)")
    require(not ceil_mode, "ceil_mode (Pooling takes valid windows only)")
    kernel = (kernel_size,) * 2 if np.ndim(kernel_size) == 0 else tuple(kernel_size)
    strides = kernel if stride is None else (stride,) * 2 if np.ndim(stride) == 0 else stride
    return u.Pooling(tuple(int(s) for s in strides), tuple(int(k) for k in kernel))


def max_pool2d(u: UserCode, x: np.ndarray, kernel_size: Any, stride: Any = None,
               padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    require(not return_indices, "indices (Pooling returns none)")
    layer = pooling_layer(u, kernel_size, stride, padding, dilation, ceil_mode)
    return u.method(layer, "forward")(x)


def max_pool2d_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, kernel_size: Any,
                        stride: Any = None, padding: Any = 0, dilation: Any = 1,
                        ceil_mode: bool = False) -> Any:
    layer = pooling_layer(u, kernel_size, stride, padding, dilation, ceil_mode)
    u.method(layer, "forward")(x)
    return u.method(layer, "backward")(dy)


# --------------------------------------------------------------------------------------------
# ReLU, Sigmoid


def activation(cls: str) -> tuple[Any, Any]:
    """forward and backward of a parameterless layer class."""

    def forward(u: UserCode, x: np.ndarray) -> Any:
        return u.method(getattr(u, cls)(), "forward")(x)

    def backward(u: UserCode, dy: np.ndarray, x: np.ndarray) -> Any:
        layer = getattr(u, cls)()
        u.method(layer, "forward")(x)
        return u.method(layer, "backward")(dy)

    return forward, backward


relu, relu_backward = activation("ReLU")
sigmoid, sigmoid_backward = activation("Sigmoid")


# --------------------------------------------------------------------------------------------
# BatchNormalization


def layer_eps(cls: Any) -> float | None:
    """The eps a BatchNormalization layer keeps, when it has an attribute for it."""
    try:
        layer = cls(1)
    except Exception:
        return None
    for name in EPS_ATTRIBUTES:
        value = getattr(layer, name, None)
        if isinstance(value, float) and value > 0:
            return value
    return None


def batch_norm_layer(u: UserCode, x: np.ndarray, gamma: Any, beta: Any, training: bool,
                     eps: float) -> Any:
    require(x.ndim in (2, 4), "batch norm of (N, C, L) or (N, C, D, H, W) input")
    require(training, "test mode (the moving averages' names are the student's)")
    c = x.shape[1]
    kept = layer_eps(u.raw("BatchNormalization")) or DEFAULT_EPS
    require(eps == kept, "eps other than the layer's")
    layer = u.BatchNormalization(c)
    _unoptimised(u, layer)
    if hasattr(layer, "testing_phase"):
        u.set(layer, "testing_phase", False)
    u.set(layer, "weights", np.array(np.ones(c, dtype=x.dtype) if gamma is None else gamma))
    u.set(layer, "bias", np.array(zeros_if_none(beta, c, x)))
    return layer


def batch_norm(u: UserCode, x: np.ndarray, gamma: Any = None, beta: Any = None,
               running_mean: Any = None, running_var: Any = None, training: bool = True,
               momentum: float = 0.1, eps: float = 1e-5) -> Any:
    require(running_mean is None, "running statistics (the moving averages are the layer's)")
    layer = batch_norm_layer(u, x, gamma, beta, training, eps)
    return u.method(layer, "forward")(x)


def batch_norm_backward(u: UserCode, dy: np.ndarray, x: np.ndarray, gamma: Any = None,
                        eps: float = 1e-5, running_mean: Any = None, running_var: Any = None,
                        training: bool = True) -> Any:
    layer = batch_norm_layer(u, x, gamma, None, training, eps)
    u.method(layer, "forward")(x)
    dx = u.method(layer, "backward")(dy)
    return dx, u.get(layer, "gradient_weights"), u.get(layer, "gradient_bias")


def limits_for(user: UserCode) -> dict[str, dict[str, Any]]:
    """The eps of the user's BatchNormalization: the one the sampler draws."""
    eps = layer_eps(user.raw("BatchNormalization")) if user.has("BatchNormalization") else None
    return {"batch_norm": {"eps": fixed(eps or DEFAULT_EPS, f"eps {eps or DEFAULT_EPS:g} ("
                                        + ("the layer's" if eps else "the course's") + ")")}}


BINDING = Binding(
    name="fau",
    rows=(
        row("linear", "FullyConnected.forward", linear,
            outputs={"y": "FullyConnected.forward: output"}),
        row("linear_backward", ["FullyConnected.forward", "FullyConnected.backward"],
            linear_backward,
            outputs={"dx": "FullyConnected.backward: returned error tensor",
                     "dw": "FullyConnected.backward: gradient_weights[:-1].T",
                     "db": "FullyConnected.backward: gradient_weights[-1]"}),
        *(row(f"conv{r}d", "Conv.forward", conv,
              outputs={"y": "Conv.forward: output"}) for r in (1, 2)),
        *(row(f"conv{r}d_backward", ["Conv.forward", "Conv.backward"], conv_backward,
              outputs={"dx": "Conv.backward: returned error tensor",
                       "dw": "Conv.backward: gradient_weights",
                       "db": "Conv.backward: gradient_bias"}) for r in (1, 2)),
        row("max_pool2d", "Pooling.forward", max_pool2d),
        row("max_pool2d_backward", ["Pooling.forward", "Pooling.backward"],
            max_pool2d_backward, outputs={"dx": "Pooling.backward: returned error tensor"}),
        row("relu", "ReLU.forward", relu),
        row("relu_backward", ["ReLU.forward", "ReLU.backward"], relu_backward,
            outputs={"dx": "ReLU.backward: returned error tensor"}),
        row("sigmoid", "Sigmoid.forward", sigmoid),
        row("sigmoid_backward", ["Sigmoid.forward", "Sigmoid.backward"], sigmoid_backward,
            outputs={"dx": "Sigmoid.backward: returned error tensor"}),
        row("batch_norm", "BatchNormalization.forward", batch_norm),
        row("batch_norm_backward",
            ["BatchNormalization.forward", "BatchNormalization.backward"], batch_norm_backward,
            outputs={"dx": "BatchNormalization.backward: returned error tensor",
                     "dgamma": "BatchNormalization.backward: gradient_weights",
                     "dbeta": "BatchNormalization.backward: gradient_bias"}),
    ),
    limits={
        "conv": {"rank": [1, 2], **ungrouped(), "dilation": fixed(1, "no dilation"),
                 "padding": Coercion("the course's 'same' padding (k // 2 before, (k - 1) // 2 "
                                     "after)", lambda case: course_same_pads(case.w_shape[2:]))},
        "max_pool2d": {"padding": fixed(0, "no padding"), "dilation": fixed(1, "no dilation"),
                       "ceil_mode": False, "return_indices": False},
        "batch_norm": {"rank": [0, 2], "training": True, "running": False},
    },
    limits_for=limits_for,
    load_directory=load_layers,
    notes=("Conv: the course's 'same' padding only (the extra zero of an even kernel before); "
           "no dilation, no groups, no 3-D",
           "Pooling: max, valid windows: no padding, no dilation, no ceil_mode, no indices",
           "BatchNormalization: training mode without running statistics, the layer's eps",
           "ties: no rule in the course (tie-free inputs)"),
)
