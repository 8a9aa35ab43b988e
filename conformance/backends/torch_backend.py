"""The nnref contract on torch.nn.functional (CPU), as a table over the op records.

The module is :data:`TABLE` (one :class:`~conformance.backends.table.Row` per op record) turned
into the contract's functions (conv1d, conv1d_backward, ..., pad) by
:func:`~conformance.backends.table.contract_functions`. Its pieces:

- one forward per op family at every rank, ``forward(rank, x, ..., **parameters)``: the contract's
  arguments with every array as a torch tensor, returning a tensor, or a tuple whose first item
  is y (indices as integer tensors or NumPy arrays);
- :func:`_run` gives a forward private tensor copies of the NumPy arrays (inputs are never
  shared with torch, so never mutated) and turns its results into NumPy: floats in x's dtype,
  indices int64;
- :func:`_autodiff` derives every ``_backward`` by ``torch.autograd.grad`` through the forward
  (the record's ``gradient_call`` and ``differentiable``); a custom backward exists only where
  torch's gradient needs the contract's corrections (pad_backward has no x; max-pool empty
  windows; the activations' NaNs).

Conventions handled here (see conformance/divergences.toml):
- F.conv{1,2,3}d pad symmetrically only and refuse padding="same" with stride > 1: every conv pads
  explicitly with F.pad first, then runs with padding=0
  (torch-conv-symmetric-padding-only, torch-same-padding-strided).
- F.conv_transpose{1,2,3}d are the contract's transposed convolution (its argument order, weight
  layout (C, Co / G, *k) and output_padding rule); the adapter checks the arguments first. In
  float32 on oneDNN, a 3-D one with an axis padded by the kernel's whole reach runs uncropped and
  is cropped (torch-cpu-onednn-conv-transpose3d-overpadded-weight-gradient).
- F.max_pool{1,2,3}d pad symmetrically only: symmetric pads go straight to torch (so ceil_mode is
  torch's own); asymmetric pads are composed as F.pad(-inf) + padding=0, which is exact unless a
  window whose input cells are all -inf would report a padded cell (maxpool-neg-inf-sentinel).
  Indices are torch's per-row l, per-plane row * W + col, per-volume (d * H + h) * W + w.
- torch reports an index outside the plane / volume for windows that cover no input cell, and its
  backward writes that window's gradient into a neighbouring plane (torch-maxpool-empty-window):
  the adapter returns -1 there and zeroes those upstream gradients.
- F.avg_pool{1,2,3}d are the contract's average pooling. F.avg_pool1d has no divisor_override:
  that case runs F.avg_pool2d on an (N, C, 1, L) view. F.avg_pool3d refuses an input axis
  smaller than the kernel even when the padding makes it fit (torch-avgpool3d-unpadded-size):
  that case is composed as F.pad(zeros) + window sums (divisor_override=1) / the contract divisor.
- F.lp_pool1d / 2d are the contract's LP pooling (torch's own definition). F.lp_pool1d refuses
  a one-int tuple kernel_size (torch-lppool1d-kernel-tuple): the adapter passes the int. torch
  returns max pooling of |x| for norm_type = inf (torch-lppool-inf-max-abs) and NaN gradients at
  a zero-sum window for p < 1 (torch-lppool-zero-window-grad-below-1): the contract refuses the
  first, and the second is left to the registry (the sampler keeps window sums positive).
- F.adaptive_{avg,max}_pool{1,2,3}d are the contract's adaptive pooling; the 1-D functions refuse
  None in output_size (torch-adaptive-pool1d-no-none): the adapter passes the input's length.
  Indices are torch's flat offsets.
- F.batch_norm updates running statistics in place with (1 - m) * old + m * batch and the
  unbiased variance, as the contract does (torch-running-var-unbiased): on the adapter's copies.
  It rejects eps = 0 in training (torch-batchnorm-eps-positive): that case is composed from
  torch.var_mean. The backward in eval mode treats the running statistics as constants.
- F.layer_norm, F.group_norm and F.instance_norm are the contract's (biased statistics per
  group; instance norm's running statistics with the unbiased per-instance variance averaged over
  N, updated in place on the adapter's copies; eval mode is use_input_stats=False). torch takes a
  negative eps and a momentum above 1 and raises without naming the parameter for a wrong
  normalized_shape or num_groups: the adapter checks the contract's rules first (arguments.py).
  torch's layer and group norm backward kernels fold dx into a * dy * gamma + b * x + c, which
  turns the formula's infinities into NaN (and some NaN into infinities) when dy or gamma is not
  finite (torch-norm-gradient-non-finite): those calls compute the contract's formula from
  torch tensor ops.
- F.relu, F.elu and torch.sigmoid. torch's relu and elu backwards test x <= 0 and pass dy where
  x is NaN, and relu's selects (threshold_backward), so a NaN or an infinity in dy where x <= 0
  gives 0 (activation-gradient-at-nan, torch-relu-gradient-selects): product_nans puts the
  contract's NaN there. sigmoid's gradient where dy is infinite: see _sigmoid_backward.
- F.linear; its db is the gradient of a zero bias whether or not the forward had one.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import nnref
import numpy as np
import torch
import torch.nn.functional as F

from conformance.backends import Unsupported, backend
from conformance.backends.arguments import (
    Pads,
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
    norm_groups,
    norm_real,
    normalized_axes,
    pad_pairs,
    pool_geometry,
    product_nans,
    spatial_rank,
    unpadded_shape,
)
from conformance.backends.table import LowPrecision, Row, contract_functions
from conformance.ops import contract_functions as contract_names
from conformance.ops import record as op_record

NAME = "torch"

# The contract's array arguments (nnref annotates them np.ndarray): what _run and _autodiff
# hand to a forward as tensors. Everything else goes to it as given.
_ARRAYS = frozenset(
    p.name for f in contract_names()
    for p in inspect.signature(getattr(nnref, f)).parameters.values()
    if "ndarray" in str(p.annotation)
)


# The device the adapter computes on: NNREF_TORCH_DEVICE ("cpu" by default; "cuda", "cuda:1",
# "mps", ... where torch has it). Every array goes there and every result comes back through
# _tensor / _host, so the CPU runs exercise the same path. The run header reports the device,
# whether CUDA is present and cuDNN's TF32 default (device_report).
DEVICE_ENV = "NNREF_TORCH_DEVICE"


def device() -> torch.device:
    """The device named by NNREF_TORCH_DEVICE; a ValueError when torch does not have it."""
    name = os.environ.get(DEVICE_ENV, "cpu") or "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"{DEVICE_ENV}={name!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}={name!r}: this torch has no CUDA device "
                         f"(torch {torch.__version__}, cuda {torch.version.cuda})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{DEVICE_ENV}={name!r}: this torch has no MPS device")
    return dev


def device_report() -> str:
    """One line for the run header: the device, CUDA's presence, cuDNN's TF32 default."""
    cuda = (f"cuda: {torch.cuda.device_count()} device(s), cuDNN TF32 "
            f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'} (convolutions), matmul TF32 "
            f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"
            if torch.cuda.is_available() else "cuda: absent")
    return f"torch device: {os.environ.get(DEVICE_ENV, 'cpu') or 'cpu'} ({cuda})"


def _tensor(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    """A private torch copy of `a` on the adapter's device (inputs are never shared with torch,
    so never mutated); a bfloat16 array (ml_dtypes) becomes a torch.bfloat16 tensor bit for
    bit."""
    a = np.array(a, copy=True)
    if a.dtype.name == "bfloat16":
        t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(a)
    t = t.to(device())
    return t.requires_grad_(requires_grad) if requires_grad else t


def _host(t: torch.Tensor) -> torch.Tensor:
    """`t` detached and on the CPU (a no-op there), ready for .numpy()."""
    return t.detach().cpu()


def _view(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of `t` for the contract's shape checks (arguments.py), which read only
    (bfloat16, which NumPy lacks: a float32 copy)."""
    return _host(t).float().numpy() if t.dtype == torch.bfloat16 else _host(t).numpy()


def as_numpy(value: torch.Tensor | np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A result as a NumPy copy: floats in `dtype` (x's), integers (indices) as int64; a
    torch.bfloat16 result becomes a bfloat16 array (ml_dtypes) bit for bit."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
        a = _host(value).view(torch.int16).numpy().view(np.dtype(dtype))
        return np.array(a, copy=True)
    a = np.asarray(_host(value).numpy() if isinstance(value, torch.Tensor) else value)
    floating = a.dtype.kind == "f" or a.dtype.name == "bfloat16"
    return np.array(a, dtype=dtype if floating else np.int64, copy=True)


def as_tensors(arguments: dict[str, Any], differentiable: tuple[str, ...] = ()
               ) -> dict[str, Any]:
    """The arguments with every array as a private tensor (a leaf of the gradient when its name
    is in `differentiable`); the rest as given. Also the benchmark's (torch_bench.py)."""
    return {k: _tensor(v, k in differentiable) if k in _ARRAYS and v is not None else v
            for k, v in arguments.items()}


def first_output(out: Any) -> torch.Tensor:
    """y: a forward's result, or the first item of a forward that returns a tuple."""
    return out[0] if isinstance(out, tuple) else out


def _run(forward: Any, rank: int | None, arguments: dict[str, Any]) -> Any:
    """The forward on private tensors; its results as NumPy (floats in x's dtype)."""
    dtype = np.asarray(arguments["x"]).dtype
    out = forward(rank, **as_tensors(arguments))
    if isinstance(out, tuple):
        return tuple(as_numpy(o, dtype) for o in out)
    return as_numpy(out, dtype)


def _autodiff(record: Any, forward: Any, rank: int | None, arguments: dict[str, Any]) -> Any:
    """The `_backward` contract of op `record` by torch.autograd.grad through `forward`.

    The forward call is ``gradient_call`` of the backward's arguments (an absent bias or a None
    gamma filled in); the gradients are those of ``differentiable``, in the order of
    ``backward_outputs``, for the upstream gradient dy of the forward's first output y. Returns
    one array when the record has one gradient, else a tuple, in x's dtype.
    """
    case = record.case_type
    dtype = np.asarray(arguments["x"]).dtype
    inputs = as_tensors(case.gradient_call(arguments), case.differentiable)
    y = first_output(forward(rank, **inputs))
    dy = arguments["dy"]
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    grads = torch.autograd.grad(y, [inputs[n] for n in case.differentiable],
                                grad_outputs=_tensor(dy))
    result = tuple(as_numpy(g, dtype) for g in grads)
    return result[0] if len(case.backward_outputs) == 1 else result


def _torch_pads(pads: Pads) -> tuple[int, ...]:
    """Contract ((b1, a1), ..., (br, ar)) -> F.pad's (br, ar, ..., b1, a1): last axis first."""
    return tuple(v for pair in reversed(pads) for v in pair)


# ----------------------------------------------------------------------------------- padding


def _torch_pad(x: torch.Tensor, pads: Pads, mode: str, value: float) -> torch.Tensor:
    if mode == "constant":
        return F.pad(x, _torch_pads(pads), mode="constant", value=float(value))
    return F.pad(x, _torch_pads(pads), mode=mode)  # reflect, replicate, circular: torch's names


def _pad(rank: int | None, x: torch.Tensor, pad_width: object, mode: str = "constant",
         value: float = 0.0) -> torch.Tensor:
    """F.pad with the contract's pad order (first spatial axis first) -> torch's (last first)."""
    pads = pad_pairs(pad_width, spatial_rank(tuple(x.shape)), "pad_width")
    check_pad(tuple(x.shape), pads, mode)
    return _torch_pad(x, pads, mode, value)


def _pad_backward(rank: int | None, dy: np.ndarray, pad_width: object,
                  mode: str = "constant") -> np.ndarray:
    """Autodiff through `_pad` of zeros of the unpadded shape (x's shape comes from dy's)."""
    pads = pad_pairs(pad_width, spatial_rank(dy.shape, "dy"), "pad_width")
    shape = unpadded_shape(dy.shape, pads, pad_width)
    check_pad(shape, pads, mode)
    arguments = {"dy": dy, "x": np.zeros(shape, dy.dtype), "pad_width": pad_width, "mode": mode}
    return _autodiff(op_record("pad"), _pad, rank, arguments)


# ------------------------------------------------------------------------------- convolution


def _conv(rank: int, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None,
          stride: object = 1, padding: object = 0, dilation: object = 1,
          groups: int = 1) -> torch.Tensor:
    """F.pad (explicit, possibly asymmetric or "same") then F.conv{r}d(padding=0)."""
    _, s, pads, d = conv_args(tuple(x.shape), tuple(w.shape), rank, stride, padding, dilation,
                              groups)
    if any(before or after for before, after in pads):
        x = F.pad(x, _torch_pads(pads))
    conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    last = (x.shape[-1] - d[-1] * (w.shape[-1] - 1) - 1) // s[-1] + 1
    if last == 1 and s[-1] > 1 and x.dtype == torch.bfloat16 and _takes_onednn(x.dtype):
        # torch-cpu-onednn-bfloat16-conv-width1-garbage: oneDNN's bfloat16 kernel leaves output
        # rows unwritten for one output column at a last-axis stride > 1. Stride 1 on that axis
        # makes the same sums; column 0 is the one asked for.
        y = conv(x, w, b, stride=(*s[:-1], 1), padding=0, dilation=d, groups=groups)
        return y[..., :1]
    return conv(x, w, b, stride=s, padding=0, dilation=d, groups=groups)


def _conv_transpose(rank: int, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None,
                    stride: object = 1, padding: object = 0, output_padding: object = 0,
                    groups: int = 1, dilation: object = 1) -> torch.Tensor:
    """F.conv_transpose{r}d, the contract's op, after the contract's argument checks."""
    geo = conv_transpose_args(tuple(x.shape), tuple(w.shape), rank, stride, padding,
                              output_padding, groups, dilation)
    conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    if _overpadded_onednn_conv_transpose3d(rank, x.dtype, geo):
        # torch-cpu-onednn-conv-transpose3d-overpadded-weight-gradient: the weight gradient
        # of such a call is garbage or kills the process. The same op as the uncropped
        # transposed conv (padding 0), output_padding zeros at the end, the padding cropped,
        # plus b: its gradient takes no over-padded path.
        y = conv_t(x, w, None, stride=geo.stride, padding=0, output_padding=0,
                   groups=geo.groups, dilation=geo.dilation)
        if any(geo.output_padding):
            y = F.pad(y, [v for e in reversed(geo.output_padding) for v in (0, e)])
        y = y[(slice(None), slice(None),
               *(slice(p, p + o) for p, o in zip(geo.pads, geo.out, strict=True)))]
        return y if b is None else y + b.reshape(1, -1, *(1,) * rank)
    return conv_t(x, w, b, stride=geo.stride, padding=geo.pads,
                  output_padding=geo.output_padding, groups=geo.groups, dilation=geo.dilation)


def _overpadded_onednn_conv_transpose3d(rank: int, dtype: torch.dtype, geo: Any) -> bool:
    """Where torch's oneDNN float32 conv_transpose3d weight gradient goes wrong: some axis
    padded by its whole kernel reach, padding >= dilation * (kernel - 1) > 0 (every case found
    had it; torch-cpu-onednn-conv-transpose3d-overpadded-weight-gradient)."""
    return (rank == 3 and dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
            and any(0 < p >= d * (k - 1)
                    for p, d, k in zip(geo.pads, geo.dilation, geo.kernel, strict=True)))


# ------------------------------------------------------------------------------- max pooling


def _max_pool(rank: int, x: torch.Tensor, kernel_size: object, stride: object = None,
              padding: object = 0, dilation: object = 1, ceil_mode: bool = False,
              return_indices: bool = False
              ) -> torch.Tensor | tuple[torch.Tensor, np.ndarray]:
    """F.max_pool{r}d(return_indices=True); indices -1 for windows without input cells."""
    geo = pool_geometry(tuple(x.shape), rank, kernel_size, stride, padding, dilation, ceil_mode)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
    if geo.symmetric:
        y, idx = pool(x, geo.kernel, geo.stride, tuple(b for b, _ in geo.pads), geo.dilation,
                      ceil_mode=bool(ceil_mode), return_indices=True)
        ind = _host(idx).numpy()
    else:
        # torch-maxpool-symmetric-padding-only: compose with -inf padding (cells that never win
        # unless every input cell of the window is -inf) and count the windows ourselves.
        xp = F.pad(x, _torch_pads(geo.floor_pads), value=float("-inf"))
        y, idx = pool(xp, geo.kernel, geo.stride, 0, geo.dilation, ceil_mode=False,
                      return_indices=True)
        crop = (slice(None), slice(None), *(slice(o) for o in geo.out))
        y, idx = y[crop], idx[crop]
        ind, inside = geo.flat_index(np.unravel_index(_host(idx).numpy(), tuple(xp.shape[2:])))
        if (~inside & geo.hit).any():
            raise Unsupported(
                "maxpool-neg-inf-sentinel",
                "asymmetric padding is composed with -inf padding in torch; a window whose input "
                "cells are all -inf would report a padded cell",
            )
    if tuple(y.shape[2:]) != geo.out:
        raise AssertionError(f"torch pooled to {tuple(y.shape[2:])}, contract says {geo.out}")
    if not return_indices:
        return y
    return y, np.where(geo.hit, ind, -1)  # torch-maxpool-empty-window


def _max_pool_backward(rank: int, dy: np.ndarray, x: np.ndarray, kernel_size: object,
                       stride: object = None, padding: object = 0, dilation: object = 1,
                       ceil_mode: bool = False) -> np.ndarray:
    """Autodiff through `_max_pool` with dy zeroed at windows without input cells (torch would
    write their gradient into a neighbouring plane: torch-maxpool-empty-window)."""
    geo = pool_geometry(x.shape, rank, kernel_size, stride, padding, dilation, ceil_mode)
    if dy.shape[2:] == geo.out:  # else _autodiff reports dy's shape
        dy = np.where(geo.hit, dy, dy.dtype.type(0))
    arguments = {"dy": dy, "x": x, "kernel_size": kernel_size, "stride": stride,
                 "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
    return _autodiff(op_record("max_pool"), _max_pool, rank, arguments)


# --------------------------------------------------------------------------- average pooling


def _avg_pool(rank: int, x: torch.Tensor, kernel_size: object, stride: object = None,
              padding: object = 0, ceil_mode: bool = False, count_include_pad: bool = True,
              divisor_override: int | None = None) -> torch.Tensor:
    """F.avg_pool{r}d; 1-D with divisor_override on an (N, C, 1, L) view; 3-D with an axis
    smaller than the kernel composed (module docstring)."""
    geo = avg_pool_geometry(tuple(x.shape), rank, kernel_size, stride, padding, ceil_mode)
    pads = tuple(b for b, _ in geo.pads)
    if rank == 3 and any(n < k for n, k in zip(geo.size, geo.kernel, strict=True)):
        # torch-avgpool3d-unpadded-size: window sums of the zero-padded input, then the
        # contract's divisor.
        div = avg_divisors(geo, bool(count_include_pad), divisor_override)
        xp = F.pad(x, _torch_pads(geo.floor_pads))
        sums = F.avg_pool3d(xp, geo.kernel, geo.stride, 0, divisor_override=1)
        sums = sums[(slice(None), slice(None), *(slice(o) for o in geo.out))]
        return sums / torch.from_numpy(div).to(device=x.device, dtype=x.dtype)
    if rank == 1 and divisor_override is not None:  # F.avg_pool1d has no divisor_override
        y = F.avg_pool2d(x[:, :, None, :], (1, *geo.kernel), (1, *geo.stride), (0, *pads),
                         bool(ceil_mode), bool(count_include_pad), divisor_override)
        return y[:, :, 0, :]
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
    extra = {} if rank == 1 else {"divisor_override": divisor_override}
    return pool(x, geo.kernel, geo.stride, pads, bool(ceil_mode), bool(count_include_pad),
                **extra)


# --------------------------------------------------------------------------------- LP pooling


def _lp_pool(rank: int, x: torch.Tensor, norm_type: float, kernel_size: object,
             stride: object = None, ceil_mode: bool = False) -> torch.Tensor:
    """F.lp_pool{r}d; F.lp_pool1d gets kernel_size as an int (torch-lppool1d-kernel-tuple)."""
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(tuple(x.shape), rank, kernel_size, stride, ceil_mode)
    pool = F.lp_pool1d if rank == 1 else F.lp_pool2d
    # F.lp_pool1d multiplies by kernel_size, so it must be an int.
    kernel = geo.kernel[0] if rank == 1 else geo.kernel
    return pool(x, p, kernel, geo.stride, bool(ceil_mode))


# -------------------------------------------------------------------------- adaptive pooling


def _adaptive_size(x: torch.Tensor, rank: int, output_size: object
                   ) -> tuple[object, tuple[int, ...]]:
    """(output_size as torch takes it, the contract's output size), after the contract's
    checks (torch itself takes 0 and truthy return_indices, see invalid_behaviour.toml)."""
    out, _ = adaptive_bins(tuple(x.shape), rank, output_size)
    if rank == 1:  # torch-adaptive-pool1d-no-none: the 1-D functions take ints only
        return out, out
    return (tuple(output_size) if isinstance(output_size, tuple | list) else output_size), out


def _checked_pool_shape(y: torch.Tensor, out: tuple[int, ...]) -> None:
    if tuple(y.shape[2:]) != out:
        raise AssertionError(f"torch pooled to {tuple(y.shape[2:])}, contract says {out}")


def _adaptive_avg_pool(rank: int, x: torch.Tensor, output_size: object) -> torch.Tensor:
    """F.adaptive_avg_pool{r}d (None entries of output_size go to torch as given, but 1-D)."""
    size, out = _adaptive_size(x, rank, output_size)
    y = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[rank - 1](x, size)
    _checked_pool_shape(y, out)
    return y


def _adaptive_max_pool(rank: int, x: torch.Tensor, output_size: object,
                       return_indices: object = False
                       ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """F.adaptive_max_pool{r}d(return_indices=True); indices are torch's flat offsets."""
    if not isinstance(return_indices, bool | np.bool_):
        raise ValueError(f"return_indices must be a bool, got {return_indices!r}")
    size, out = _adaptive_size(x, rank, output_size)
    pool = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[rank - 1]
    y, ind = pool(x, size, return_indices=True)
    _checked_pool_shape(y, out)
    return (y, ind) if return_indices else y


# ------------------------------------------------------------------------------- batch norm


def _bn_train(x: torch.Tensor, rm: torch.Tensor | None, rv: torch.Tensor | None,
              g: torch.Tensor, b: torch.Tensor, momentum: float, eps: float) -> torch.Tensor:
    """Training-mode batch norm; F.batch_norm unless eps == 0 (torch-batchnorm-eps-positive)."""
    if eps > 0:
        return F.batch_norm(x, rm, rv, g, b, training=True, momentum=momentum, eps=eps)
    shape = channel_shape(x.ndim)
    var, mean = torch.var_mean(x, dim=bn_axes(x.ndim), correction=0, keepdim=True)
    y = (x - mean) / torch.sqrt(var) * g.reshape(shape) + b.reshape(shape)
    if rm is not None:
        m = x.numel() // x.shape[1]
        with torch.no_grad():
            rm.mul_(1 - momentum).add_(momentum * mean.flatten())
            rv.mul_(1 - momentum).add_(momentum * var.flatten() * (m / (m - 1)))
    return y


def _batch_norm(rank: int | None, x: torch.Tensor, gamma: torch.Tensor | None,
                beta: torch.Tensor | None = None, running_mean: torch.Tensor | None = None,
                running_var: torch.Tensor | None = None, training: bool = True,
                momentum: float = 0.1, eps: float = 1e-5
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F.batch_norm; the running statistics (copies) are updated in place by torch and
    returned in training mode."""
    bn_check(_view(x), running_mean, running_var, training)
    c = x.shape[1]
    g = torch.ones(c, dtype=x.dtype, device=x.device) if gamma is None else gamma
    b = torch.zeros(c, dtype=x.dtype, device=x.device) if beta is None else beta
    if not training:
        return F.batch_norm(x, running_mean, running_var, g, b, training=False, momentum=0.0,
                            eps=float(eps))
    y = _bn_train(x, running_mean, running_var, g, b, float(momentum), float(eps))
    return y if running_mean is None else (y, running_mean, running_var)


# ------------------------------------------------------------ layer, group and instance norm


def _layer_norm(rank: int | None, x: torch.Tensor, normalized_shape: object,
                gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None,
                eps: float = 1e-5) -> torch.Tensor:
    """F.layer_norm after the contract's checks (torch takes a negative eps)."""
    shape = normalized_axes(tuple(x.shape), normalized_shape)
    return F.layer_norm(x, shape, gamma, beta, eps=norm_real(eps, "eps", 0.0, np.inf))


def _finite(*arrays: np.ndarray | None) -> bool:
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


def _norm_gradient_formula(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float,
                           view: tuple[int, ...], param_axes: tuple[int, ...]
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contract's layer / group norm gradients as torch tensor ops, for x grouped as `view`
    (the groups along its last axis) and gamma broadcast against x (None: ones):
    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps) with g = dy * gamma;
    dgamma = sum(dy * xhat), dbeta = sum(dy) over `param_axes` (torch-norm-gradient-non-finite).
    """
    xt, dyt = _tensor(x), _tensor(dy)
    rows = xt.reshape(view)
    m = rows.shape[-1]
    centred = rows - rows.sum(-1, keepdim=True) / m
    inv_std = 1.0 / torch.sqrt((centred * centred).sum(-1, keepdim=True) / m + eps)
    xhat = centred * inv_std
    g = (dyt if gamma is None else dyt * _tensor(gamma)).reshape(view)
    dx = (g - g.sum(-1, keepdim=True) / m - xhat * ((g * xhat).sum(-1, keepdim=True) / m))
    dx = dx * inv_std

    def total(t: torch.Tensor) -> torch.Tensor:  # torch's sum over () would sum every axis
        return t.sum(param_axes) if param_axes else t

    dgamma = total(dyt * xhat.reshape(xt.shape))
    return (as_numpy(dx.reshape(xt.shape), x.dtype), as_numpy(dgamma, x.dtype),
            as_numpy(total(dyt), x.dtype))


def _layer_norm_backward(rank: int | None, dy: np.ndarray, x: np.ndarray,
                         normalized_shape: object, gamma: np.ndarray | None = None,
                         eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Autodiff through F.layer_norm; with a non-finite dy or gamma the contract's formula in
    torch ops instead (torch-norm-gradient-non-finite)."""
    grads = _autodiff(op_record("layer_norm"), _layer_norm, rank,
                      {"dy": dy, "x": x, "normalized_shape": normalized_shape, "gamma": gamma,
                       "eps": eps})
    if _finite(dy, gamma):
        return grads
    shape = normalized_axes(x.shape, normalized_shape)
    lead = x.ndim - len(shape)
    return _norm_gradient_formula(dy, x, gamma, float(eps), (-1, int(np.prod(shape))),
                                  tuple(range(lead)))


def _group_norm_backward(rank: int | None, dy: np.ndarray, x: np.ndarray, num_groups: object,
                         gamma: np.ndarray | None = None,
                         eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Autodiff through F.group_norm; with a non-finite dy or gamma the contract's formula in
    torch ops instead (torch-norm-gradient-non-finite)."""
    grads = _autodiff(op_record("group_norm"), _group_norm, rank,
                      {"dy": dy, "x": x, "num_groups": num_groups, "gamma": gamma, "eps": eps})
    if _finite(dy, gamma):
        return grads
    per_channel = None if gamma is None else gamma.reshape(channel_shape(x.ndim))
    return _norm_gradient_formula(dy, x, per_channel, float(eps),
                                  (x.shape[0], int(num_groups), -1), bn_axes(x.ndim))


def _group_norm(rank: int | None, x: torch.Tensor, num_groups: object,
                gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None,
                eps: float = 1e-5) -> torch.Tensor:
    """F.group_norm after the contract's checks (torch takes a negative eps)."""
    groups = norm_groups(x, num_groups)
    return F.group_norm(x, groups, gamma, beta, eps=norm_real(eps, "eps", 0.0, np.inf))


def _instance_norm(rank: int | None, x: torch.Tensor, gamma: torch.Tensor | None = None,
                   beta: torch.Tensor | None = None, running_mean: torch.Tensor | None = None,
                   running_var: torch.Tensor | None = None, training: bool = True,
                   momentum: float = 0.1, eps: float = 1e-5
                   ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F.instance_norm(use_input_stats=training); the running statistics (copies) are updated
    in place by torch and returned in training mode."""
    instance_norm_check(x, running_mean, running_var, training)
    y = F.instance_norm(x, running_mean, running_var, gamma, beta, use_input_stats=training,
                        momentum=norm_real(momentum, "momentum", 0.0, 1.0),
                        eps=norm_real(eps, "eps", 0.0, np.inf))
    return (y, running_mean, running_var) if training and running_mean is not None else y


# ------------------------------------------------------------------------------ activations


def _relu(rank: int | None, x: torch.Tensor) -> torch.Tensor:
    """F.relu."""
    return F.relu(x)


def _relu_backward(rank: int | None, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Autodiff through F.relu, with the contract's NaNs (module docstring)."""
    dx = _autodiff(op_record("relu"), _relu, rank, {"dy": dy, "x": x})
    return product_nans(dx, dy, x, x <= 0)


def _elu(rank: int | None, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """F.elu(alpha=alpha)."""
    return F.elu(x, alpha=check_alpha(alpha))


def _elu_backward(rank: int | None, dy: np.ndarray, x: np.ndarray,
                  alpha: float = 1.0) -> np.ndarray:
    """Autodiff through F.elu, NaN where x is NaN (module docstring)."""
    dx = _autodiff(op_record("elu"), _elu, rank, {"dy": dy, "x": x, "alpha": alpha})
    return product_nans(dx, dy, x)


def _sigmoid(rank: int | None, x: torch.Tensor) -> torch.Tensor:
    """torch.sigmoid."""
    return torch.sigmoid(x)


def _sigmoid_backward(rank: int | None, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Autodiff through torch.sigmoid (dy * y * (1 - y)); where dy is infinite, dy * e /
    (1 + e)^2 with e = torch.exp(-|x|), the contract's sigmoid(x) * sigmoid(-x)
    (sigmoid-saturated-gradient: 1 - y is exactly 0 once y rounds to 1, and torch.sigmoid
    flushes a subnormal y to 0, sigmoid-subnormal-flush; inf * 0 is NaN where the contract's
    derivative is not 0)."""
    dx = _autodiff(op_record("sigmoid"), _sigmoid, rank, {"dy": dy, "x": x})
    infinite = np.isinf(dy)
    if infinite.any():
        e = torch.exp(-_tensor(x).abs())
        composed = _tensor(dy) * (e / (1 + e) ** 2)
        dx = np.where(infinite, as_numpy(composed, dx.dtype), dx)
    return dx


# ---------------------------------------------------------------------------- dense layer


def _linear(rank: int | None, x: torch.Tensor, w: torch.Tensor,
            b: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear after the contract's shape checks."""
    linear_check(_view(x), _view(w), None if b is None else _view(b))
    return F.linear(x, w, b)


# ---------------------------------------------------------------------------------- the table

# float16 / bfloat16 (conformance.low_precision): torch's CPU kernels are held to float32
# accumulation and one rounding to the format, except where measured otherwise; each departure
# names the registry entry (conformance/divergences.toml) with the smallest input that shows it
# and is judged by the storage-accumulation bound, or not computed where even that fails.
POOL_BACKWARD = LowPrecision("torch-cpu-pool-backward-storage-accumulation")
NORM = LowPrecision("torch-cpu-low-precision-norm-statistics")
NO_3D_KERNEL = LowPrecision("torch-cpu-no-avg-pool3d-low-precision", accumulation=None)
FLOAT16_CONV = LowPrecision("torch-cpu-float16-conv-storage-rounding")


def _takes_onednn(dtype: torch.dtype) -> bool:
    """Whether torch sends CPU convolutions in float16 / bfloat16 ``dtype`` to oneDNN (ATen's
    ``use_mkldnn``: oneDNN built in and enabled, and ``mkldnn_fp16_device_check()`` /
    ``mkldnn_bf16_device_check()``, asked as ``torch.ops.mkldnn._is_mkldnn_fp16_supported`` /
    ``_is_mkldnn_bf16_supported``: float16 on CPUs with avx512_fp16, amx_fp16 or
    avx_ne_convert, bfloat16 on AVX-512 or avx_ne_convert CPUs)."""
    check = {torch.float16: torch.ops.mkldnn._is_mkldnn_fp16_supported,
             torch.bfloat16: torch.ops.mkldnn._is_mkldnn_bf16_supported}[dtype]
    return (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and bool(check()))


def float16_conv_takes_im2col() -> bool:
    """Whether torch's CPU convolution in float16 takes its own im2col / GEMM kernels (which
    round partial results to float16) rather than oneDNN's (:func:`_takes_onednn`). Transposed
    convolutions leave oneDNN when an output padding is at least the stride, so conv_transpose
    keeps the storage declaration on every CPU."""
    return not _takes_onednn(torch.float16)


FLOAT16_CONV_BACKWARD = LowPrecision("torch-cpu-float16-conv-storage-rounding",
                                     where=float16_conv_takes_im2col)
# Not computed: on CPUs where torch sends float16 to oneDNN (avx512_fp16 / AMX), oneDNN's
# float16 and bfloat16 conv_transpose gradients crash the process or corrupt its heap.
CONV_TRANSPOSE_BACKWARD_CRASH = LowPrecision(
    "torch-cpu-onednn-low-precision-conv-transpose-backward-crash", accumulation=None,
    where=lambda: _takes_onednn(torch.float16))

TABLE: dict[str, Row] = {
    "pad": Row(_pad, backward=_pad_backward,
               doc="F.pad, pads given first spatial axis first (torch's order is last first).",
               low_precision={"backward": LowPrecision(
                   "torch-cpu-pad-backward-storage-accumulation")}),
    "conv": Row(_conv, doc='F.pad (explicit, possibly asymmetric or "same") then '
                           "F.conv{r}d(padding=0).",
                low_precision={"backward float16": FLOAT16_CONV_BACKWARD}),
    "conv_transpose": Row(_conv_transpose, doc="F.conv_transpose{r}d.",
                          low_precision={"backward": CONV_TRANSPOSE_BACKWARD_CRASH,
                                         "float16": FLOAT16_CONV, "bfloat16": LowPrecision(
                              "torch-cpu-bfloat16-grouped-conv-transpose")}),
    "max_pool": Row(_max_pool, backward=_max_pool_backward,
                    doc="F.max_pool{r}d(return_indices=True), torch's flat indices per plane; "
                        "asymmetric pads as F.pad(-inf).",
                    low_precision={"backward": POOL_BACKWARD}),
    "avg_pool": Row(_avg_pool, doc="F.avg_pool{r}d (1-D divisor_override on a 2-D view; 3-D "
                                   "axes smaller than the kernel composed).",
                    low_precision={"3d": NO_3D_KERNEL, "backward": POOL_BACKWARD}),
    "lp_pool": Row(_lp_pool, doc="F.lp_pool{r}d (1-D: kernel_size as an int).",
                   low_precision={"float16": LowPrecision("torch-cpu-lp-pool-low-precision",
                                                          accumulation=None),
                                  "": LowPrecision("torch-cpu-lp-pool-low-precision")}),
    "adaptive_avg_pool": Row(_adaptive_avg_pool, doc="F.adaptive_avg_pool{r}d.",
                             low_precision={"backward": POOL_BACKWARD, "forward 3d": LowPrecision(
                                 "torch-cpu-adaptive-avg-pool3d-low-precision")}),
    "adaptive_max_pool": Row(_adaptive_max_pool,
                             doc="F.adaptive_max_pool{r}d(return_indices=True); indices are "
                                 "torch's flat offsets.",
                             low_precision={"backward": POOL_BACKWARD}),
    "batch_norm": Row(_batch_norm, doc="F.batch_norm; running statistics are copies that torch "
                                       "updates in place.", low_precision={"": NORM}),
    "layer_norm": Row(_layer_norm, backward=_layer_norm_backward, doc="F.layer_norm.",
                      low_precision={"backward": NORM}),
    "group_norm": Row(_group_norm, backward=_group_norm_backward, doc="F.group_norm.",
                      low_precision={"backward": NORM}),
    "instance_norm": Row(_instance_norm, doc="F.instance_norm(use_input_stats=training); running "
                                             "statistics are copies that torch updates in place.",
                         low_precision={"": NORM}),
    "relu": Row(_relu, backward=_relu_backward, doc="F.relu."),
    "elu": Row(_elu, backward=_elu_backward, doc="F.elu(alpha=alpha)."),
    "sigmoid": Row(_sigmoid, backward=_sigmoid_backward, doc="torch.sigmoid.",
                   low_precision={"backward": LowPrecision(
                       "torch-sigmoid-backward-rounded-output")}),
    "linear": Row(_linear, doc="F.linear."),
}

globals().update(contract_functions(TABLE, NAME, run=_run, autodiff=_autodiff, module=__name__,
                                    storage=backend(NAME).storage_formats))

# contract_functions also set CONFORMANCE_ACCUMULATION (float32, "storage" where TABLE says) and
# LOW_PRECISION_DIVERGENCES ("<function> <format>" -> registry id).
