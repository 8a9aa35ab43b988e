"""The nnref contract on torch.nn.functional (CPU), at spatial ranks 1, 2 and 3.

One implementation per op family, parametrised by the rank r (F.conv{r}d, F.max_pool{r}d);
conv1d / conv2d / conv3d and friends are thin wrappers.

Conventions handled here (see conformance/divergences.toml):
- F.conv{1,2,3}d pad symmetrically only and refuse padding="same" with stride > 1: every conv pads
  explicitly with F.pad first, then runs with padding=0
  (torch-conv-symmetric-padding-only, torch-same-padding-strided).
- F.conv_transpose{1,2,3}d are the contract's transposed convolution (its argument order, weight
  layout (C, Co / G, *k) and output_padding rule); the adapter checks the arguments first.
- F.max_pool{1,2,3}d pad symmetrically only: symmetric pads go straight to torch (so ceil_mode is
  torch's own); asymmetric pads are composed as F.pad(-inf) + padding=0, which is exact unless a
  window whose input cells are all -inf would report a padded cell (maxpool-neg-inf-sentinel).
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
- F.batch_norm updates running statistics in place with (1 - m) * old + m * batch and the
  unbiased variance, as the contract does (torch-running-var-unbiased). It rejects eps = 0 in
  training (torch-batchnorm-eps-positive): that case is composed from torch.var_mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from conformance.backends import Unsupported
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
    float_input,
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
    pad_pairs,
    pool_geometry,
    product_nans,
    same_shape_dy,
    spatial_rank,
    unpadded_shape,
)

NAME = "torch"
_TORCH_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _t(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    """A private torch copy of `a` (inputs are never shared with torch, so never mutated)."""
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_(requires_grad) if requires_grad else t


def _np(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=dtype, copy=True)


def _torch_pads(pads: Pads) -> tuple[int, ...]:
    """Contract ((b1, a1), ..., (br, ar)) -> F.pad's (br, ar, ..., b1, a1): last axis first."""
    return tuple(v for pair in reversed(pads) for v in pair)


# ----------------------------------------------------------------------------------- padding


def _torch_pad(xt: torch.Tensor, pads: Pads, mode: str, value: float) -> torch.Tensor:
    if mode == "constant":
        return F.pad(xt, _torch_pads(pads), mode="constant", value=float(value))
    return F.pad(xt, _torch_pads(pads), mode=_TORCH_MODES[mode])


def pad(x: np.ndarray, pad_width: object, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """F.pad with the contract's pad order (first spatial axis first) -> torch's (last first)."""
    x = float_input(x)
    pads = pad_pairs(pad_width, spatial_rank(x.shape), "pad_width")
    check_pad(x.shape, pads, mode)
    return _np(_torch_pad(_t(x), pads, mode, value), x.dtype)


def pad_backward(dy: np.ndarray, pad_width: object, mode: str = "constant") -> np.ndarray:
    """Adjoint of `pad` by autograd through F.pad (x's shape comes from dy's)."""
    dy = float_input(dy, "dy")
    pads = pad_pairs(pad_width, spatial_rank(dy.shape, "dy"), "pad_width")
    shape = unpadded_shape(dy.shape, pads, pad_width)
    check_pad(shape, pads, mode)
    xt = torch.zeros(shape, dtype=_t(dy).dtype, requires_grad=True)
    y = _torch_pad(xt, pads, mode, 0.0)
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=_t(dy))
    return _np(dx, dy.dtype)


# ------------------------------------------------------------------------------- convolution


def _conv(xt, wt, bt, stride, padding, dilation, groups, rank: int) -> torch.Tensor:
    _, s, pads, d = conv_args(tuple(xt.shape), tuple(wt.shape), rank, stride, padding, dilation,
                              groups)
    if any(before or after for before, after in pads):
        xt = F.pad(xt, _torch_pads(pads))
    return _CONV[rank](xt, wt, bt, stride=s, padding=0, dilation=d, groups=groups)


def _conv_forward(x, w, b, stride, padding, dilation, groups, rank: int) -> np.ndarray:
    x, w = float_input(x), float_input(w, "w")
    bt = None if b is None else _t(float_input(b, "b"))
    return _np(_conv(_t(x), _t(w), bt, stride, padding, dilation, groups, rank), x.dtype)


def _conv_backward(dy, x, w, stride, padding, dilation, groups, rank: int):
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    xt, wt = _t(x, True), _t(w, True)
    bt = torch.zeros(w.shape[0], dtype=xt.dtype, requires_grad=True)
    y = _conv(xt, wt, bt, stride, padding, dilation, groups, rank)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    dx, dw, db = torch.autograd.grad(y, (xt, wt, bt), grad_outputs=_t(dy))
    return _np(dx, x.dtype), _np(dw, x.dtype), _np(db, x.dtype)


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """F.pad (explicit, possibly asymmetric or "same") then F.conv1d(padding=0)."""
    return _conv_forward(x, w, b, stride, padding, dilation, groups, 1)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """F.pad (explicit, possibly asymmetric or "same") then F.conv2d(padding=0)."""
    return _conv_forward(x, w, b, stride, padding, dilation, groups, 2)


def conv3d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """F.pad (explicit, possibly asymmetric or "same") then F.conv3d(padding=0)."""
    return _conv_forward(x, w, b, stride, padding, dilation, groups, 3)


def conv1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through conv1d's composition, upstream gradient dy."""
    return _conv_backward(dy, x, w, stride, padding, dilation, groups, 1)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through conv2d's composition, upstream gradient dy."""
    return _conv_backward(dy, x, w, stride, padding, dilation, groups, 2)


def conv3d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through conv3d's composition, upstream gradient dy."""
    return _conv_backward(dy, x, w, stride, padding, dilation, groups, 3)


# -------------------------------------------------------------------- transposed convolution


def _conv_t(xt, wt, bt, stride, padding, output_padding, groups, dilation, rank: int):
    """F.conv_transpose{r}d is the contract's op; the arguments are checked first (ValueError)."""
    geo = conv_transpose_args(tuple(xt.shape), tuple(wt.shape), rank, stride, padding,
                              output_padding, groups, dilation)
    return _CONV_T[rank](xt, wt, bt, stride=geo.stride, padding=geo.pads,
                         output_padding=geo.output_padding, groups=geo.groups,
                         dilation=geo.dilation)


def _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, rank: int):
    x, w = float_input(x), float_input(w, "w")
    bt = None if b is None else _t(float_input(b, "b"))
    y = _conv_t(_t(x), _t(w), bt, stride, padding, output_padding, groups, dilation, rank)
    return _np(y, x.dtype)


def _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, rank: int):
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    xt, wt = _t(x, True), _t(w, True)
    n_out = w.shape[1] * groups if isinstance(groups, int) else w.shape[1]
    bt = torch.zeros(n_out, dtype=xt.dtype, requires_grad=True)
    y = _conv_t(xt, wt, bt, stride, padding, output_padding, groups, dilation, rank)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    dx, dw, db = torch.autograd.grad(y, (xt, wt, bt), grad_outputs=_t(dy))
    return _np(dx, x.dtype), _np(dw, x.dtype), _np(db, x.dtype)


def conv_transpose1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """F.conv_transpose1d."""
    return _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """F.conv_transpose2d."""
    return _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """F.conv_transpose3d."""
    return _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, 3)


def conv_transpose1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                              padding: object = 0, output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through F.conv_transpose1d, upstream gradient dy."""
    return _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                              padding: object = 0, output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through F.conv_transpose2d, upstream gradient dy."""
    return _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                              padding: object = 0, output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through F.conv_transpose3d, upstream gradient dy."""
    return _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, 3)


# ------------------------------------------------------------------------------- max pooling


def _pool(xt: torch.Tensor, rank: int, kernel_size, stride, padding, dilation, ceil_mode):
    """Forward max pool on torch; returns (y, contract indices as numpy, empty-window mask)."""
    geo = pool_geometry(tuple(xt.shape), rank, kernel_size, stride, padding, dilation, ceil_mode)
    hit = geo.hit
    pool = _MAX_POOL[rank]
    if geo.symmetric:
        y, idx = pool(xt, geo.kernel, geo.stride, tuple(b for b, _ in geo.pads), geo.dilation,
                      ceil_mode=bool(ceil_mode), return_indices=True)
        ind = idx.numpy().copy()
    else:
        # torch-maxpool-symmetric-padding-only: compose with -inf padding (cells that never win
        # unless every input cell of the window is -inf) and count the windows ourselves.
        xp = F.pad(xt, _torch_pads(geo.floor_pads), value=float("-inf"))
        y, idx = pool(xp, geo.kernel, geo.stride, 0, geo.dilation, ceil_mode=False,
                      return_indices=True)
        crop = (slice(None), slice(None), *(slice(o) for o in geo.out))
        y, idx = y[crop], idx[crop]
        ind, inside = geo.flat_index(np.unravel_index(idx.numpy(), tuple(xp.shape[2:])))
        if (~inside & hit).any():
            raise Unsupported(
                "maxpool-neg-inf-sentinel",
                "asymmetric padding is composed with -inf padding in torch; a window whose input "
                "cells are all -inf would report a padded cell",
            )
    if tuple(y.shape[2:]) != geo.out:
        raise AssertionError(f"torch pooled to {tuple(y.shape[2:])}, contract says {geo.out}")
    ind = np.where(hit, ind, -1).astype(np.int64)  # torch-maxpool-empty-window
    return y, ind, hit


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, rank: int):
    x = float_input(x)
    y, ind, _ = _pool(_t(x), rank, kernel_size, stride, padding, dilation, ceil_mode)
    out = _np(y, x.dtype)
    return (out, ind) if return_indices else out


def _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, rank: int):
    x, dy = float_input(x), float_input(dy, "dy")
    xt = _t(x, True)
    y, _, hit = _pool(xt, rank, kernel_size, stride, padding, dilation, ceil_mode)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    g = _t(dy) * torch.from_numpy(hit.astype(dy.dtype))
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=g)
    return _np(dx, x.dtype)


def max_pool1d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """F.max_pool1d(return_indices=True); indices are torch's per-row offsets l."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """F.max_pool2d(return_indices=True); indices are torch's per-plane row * W + col."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool3d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """F.max_pool3d(return_indices=True); indices are torch's per-volume (d * H + h) * W + w."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def max_pool1d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Autograd through max_pool1d; windows without input cells pass no gradient."""
    return _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Autograd through max_pool2d; windows without input cells pass no gradient."""
    return _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, 2)


def max_pool3d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Autograd through max_pool3d; windows without input cells pass no gradient."""
    return _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, 3)


# --------------------------------------------------------------------------- average pooling


def _avg(xt: torch.Tensor, rank: int, kernel_size, stride, padding, ceil_mode,
         count_include_pad, divisor_override) -> torch.Tensor:
    geo = avg_pool_geometry(tuple(xt.shape), rank, kernel_size, stride, padding, ceil_mode)
    pads = tuple(b for b, _ in geo.pads)
    if rank == 3 and any(n < k for n, k in zip(geo.size, geo.kernel, strict=True)):
        # torch-avgpool3d-unpadded-size: window sums of the zero-padded input, then the
        # contract's divisor.
        div = avg_divisors(geo, bool(count_include_pad), divisor_override)
        xp = F.pad(xt, _torch_pads(geo.floor_pads))
        sums = F.avg_pool3d(xp, geo.kernel, geo.stride, 0, divisor_override=1)
        sums = sums[(slice(None), slice(None), *(slice(o) for o in geo.out))]
        return sums / torch.from_numpy(div).to(xt.dtype)
    if rank == 1 and divisor_override is not None:  # F.avg_pool1d has no divisor_override
        y = F.avg_pool2d(xt[:, :, None, :], (1, *geo.kernel), (1, *geo.stride), (0, *pads),
                         bool(ceil_mode), bool(count_include_pad), divisor_override)
        return y[:, :, 0, :]
    extra = {} if rank == 1 else {"divisor_override": divisor_override}
    return _AVG_POOL[rank](xt, geo.kernel, geo.stride, pads, bool(ceil_mode),
                           bool(count_include_pad), **extra)


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              rank: int) -> np.ndarray:
    x = float_input(x)
    y = _avg(_t(x), rank, kernel_size, stride, padding, ceil_mode, count_include_pad,
             divisor_override)
    return _np(y, x.dtype)


def _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, rank: int) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    xt = _t(x, True)
    y = _avg(xt, rank, kernel_size, stride, padding, ceil_mode, count_include_pad,
             divisor_override)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=_t(dy))
    return _np(dx, x.dtype)


def avg_pool1d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """F.avg_pool1d (F.avg_pool2d on an (N, C, 1, L) view when divisor_override is set)."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 1)


def avg_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """F.avg_pool2d."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def avg_pool3d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """F.avg_pool3d (composed when an axis is smaller than the kernel: see the module doc)."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3)


def avg_pool1d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """Autograd through avg_pool1d."""
    return _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, 1)


def avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """Autograd through avg_pool2d."""
    return _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, 2)


def avg_pool3d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """Autograd through avg_pool3d."""
    return _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, 3)


# --------------------------------------------------------------------------------- LP pooling


def _lp(xt: torch.Tensor, rank: int, norm_type, kernel_size, stride, ceil_mode) -> torch.Tensor:
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(tuple(xt.shape), rank, kernel_size, stride, ceil_mode)
    pool = F.lp_pool1d if rank == 1 else F.lp_pool2d
    # torch-lppool1d-kernel-tuple: F.lp_pool1d multiplies by kernel_size, so it must be an int.
    kernel = geo.kernel[0] if rank == 1 else geo.kernel
    return pool(xt, p, kernel, geo.stride, bool(ceil_mode))


def _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, rank: int) -> np.ndarray:
    x = float_input(x)
    return _np(_lp(_t(x), rank, norm_type, kernel_size, stride, ceil_mode), x.dtype)


def _lp_pool_backward(dy, x, norm_type, kernel_size, stride, ceil_mode, rank: int) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    xt = _t(x, True)
    y = _lp(xt, rank, norm_type, kernel_size, stride, ceil_mode)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=_t(dy))
    return _np(dx, x.dtype)


# -------------------------------------------------------------------------- adaptive pooling

_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
_ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


def _adaptive(kind: str, xt: torch.Tensor, rank: int, output_size: object):
    """torch's adaptive pool after the contract's argument checks (torch itself takes 0 and
    truthy return_indices, see invalid_behaviour.toml); output_size goes to torch as given
    (None entries included) and the output shape is checked against the contract."""
    out, _ = adaptive_bins(tuple(xt.shape), rank, output_size)
    arg = tuple(output_size) if isinstance(output_size, tuple | list) else output_size
    if rank == 1:  # torch-adaptive-pool1d-no-none: the 1-D functions take ints only
        arg = out
    if kind == "avg":
        y, ind = _ADAPTIVE_AVG[rank](xt, arg), None
    else:
        y, ind = _ADAPTIVE_MAX[rank](xt, arg, return_indices=True)
    if tuple(y.shape[2:]) != out:
        raise AssertionError(f"torch pooled to {tuple(y.shape[2:])}, contract says {out}")
    return y, ind


def _adaptive_forward(kind: str, x, output_size, rank: int, return_indices: object = False):
    x = float_input(x)
    if not isinstance(return_indices, bool | np.bool_):
        raise ValueError(f"return_indices must be a bool, got {return_indices!r}")
    y, ind = _adaptive(kind, _t(x), rank, output_size)
    out = _np(y, x.dtype)
    return (out, ind.numpy().astype(np.int64)) if return_indices else out


def _adaptive_backward(kind: str, dy, x, output_size, rank: int) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    xt = _t(x, True)
    y, _ = _adaptive(kind, xt, rank, output_size)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=_t(dy))
    return _np(dx, x.dtype)


def lp_pool1d(x: np.ndarray, norm_type: float, kernel_size: object, stride: object = None,
              ceil_mode: bool = False) -> np.ndarray:
    """F.lp_pool1d (kernel_size as an int)."""
    return _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(x: np.ndarray, norm_type: float, kernel_size: object, stride: object = None,
              ceil_mode: bool = False) -> np.ndarray:
    """F.lp_pool2d."""
    return _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool1d_backward(dy: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: object,
                       stride: object = None, ceil_mode: bool = False) -> np.ndarray:
    """Autograd through lp_pool1d."""
    return _lp_pool_backward(dy, x, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d_backward(dy: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: object,
                       stride: object = None, ceil_mode: bool = False) -> np.ndarray:
    """Autograd through lp_pool2d."""
    return _lp_pool_backward(dy, x, norm_type, kernel_size, stride, ceil_mode, 2)
def adaptive_avg_pool1d(x: np.ndarray, output_size: object) -> np.ndarray:
    """F.adaptive_avg_pool1d."""
    return _adaptive_forward("avg", x, output_size, 1)


def adaptive_avg_pool1d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Autograd through F.adaptive_avg_pool1d."""
    return _adaptive_backward("avg", dy, x, output_size, 1)


def adaptive_max_pool1d(x: np.ndarray, output_size: object, return_indices: bool = False):
    """F.adaptive_max_pool1d(return_indices=True); indices are torch's flat offsets."""
    return _adaptive_forward("max", x, output_size, 1, return_indices)


def adaptive_max_pool1d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Autograd through F.adaptive_max_pool1d: each bin's dy to torch's reported winner."""
    return _adaptive_backward("max", dy, x, output_size, 1)


def adaptive_avg_pool2d(x: np.ndarray, output_size: object) -> np.ndarray:
    """F.adaptive_avg_pool2d."""
    return _adaptive_forward("avg", x, output_size, 2)


def adaptive_avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Autograd through F.adaptive_avg_pool2d."""
    return _adaptive_backward("avg", dy, x, output_size, 2)


def adaptive_max_pool2d(x: np.ndarray, output_size: object, return_indices: bool = False):
    """F.adaptive_max_pool2d(return_indices=True); indices are torch's flat offsets."""
    return _adaptive_forward("max", x, output_size, 2, return_indices)


def adaptive_max_pool2d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Autograd through F.adaptive_max_pool2d: each bin's dy to torch's reported winner."""
    return _adaptive_backward("max", dy, x, output_size, 2)


def adaptive_avg_pool3d(x: np.ndarray, output_size: object) -> np.ndarray:
    """F.adaptive_avg_pool3d."""
    return _adaptive_forward("avg", x, output_size, 3)


def adaptive_avg_pool3d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Autograd through F.adaptive_avg_pool3d."""
    return _adaptive_backward("avg", dy, x, output_size, 3)


def adaptive_max_pool3d(x: np.ndarray, output_size: object, return_indices: bool = False):
    """F.adaptive_max_pool3d(return_indices=True); indices are torch's flat offsets."""
    return _adaptive_forward("max", x, output_size, 3, return_indices)


def adaptive_max_pool3d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """Autograd through F.adaptive_max_pool3d: each bin's dy to torch's reported winner."""
    return _adaptive_backward("max", dy, x, output_size, 3)


# ------------------------------------------------------------------------------- batch norm


def _affine(x: np.ndarray, gamma, beta, requires_grad: bool = False):
    c = x.shape[1]
    g = np.ones(c, x.dtype) if gamma is None else float_input(gamma, "gamma")
    b = np.zeros(c, x.dtype) if beta is None else float_input(beta, "beta")
    return _t(g, requires_grad), _t(b, requires_grad)


def _bn_train(xt: torch.Tensor, rm, rv, g, b, momentum: float, eps: float) -> torch.Tensor:
    """Training-mode batch norm; F.batch_norm unless eps == 0 (torch-batchnorm-eps-positive)."""
    if eps > 0:
        return F.batch_norm(xt, rm, rv, g, b, training=True, momentum=momentum, eps=eps)
    shape = channel_shape(xt.ndim)
    var, mean = torch.var_mean(xt, dim=bn_axes(xt.ndim), correction=0, keepdim=True)
    y = (xt - mean) / torch.sqrt(var) * g.reshape(shape) + b.reshape(shape)
    if rm is not None:
        m = xt.numel() // xt.shape[1]
        with torch.no_grad():
            rm.mul_(1 - momentum).add_(momentum * mean.flatten())
            rv.mul_(1 - momentum).add_(momentum * var.flatten() * (m / (m - 1)))
    return y


def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
               training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F.batch_norm; running statistics are copies that torch updates in place."""
    x = float_input(x)
    bn_check(x, running_mean, running_var, training)
    g, b = _affine(x, gamma, beta)
    rm = None if running_mean is None else _t(float_input(running_mean, "running_mean"))
    rv = None if running_var is None else _t(float_input(running_var, "running_var"))
    if training:
        y = _bn_train(_t(x), rm, rv, g, b, float(momentum), float(eps))
    else:
        y = F.batch_norm(_t(x), rm, rv, g, b, training=False, momentum=0.0, eps=float(eps))
    if training and rm is not None:
        return _np(y, x.dtype), _np(rm, x.dtype), _np(rv, x.dtype)
    return _np(y, x.dtype)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None,
                        eps: float = 1e-5, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None,
                        training: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) by autograd; eval mode treats the running statistics as constants."""
    x, dy = float_input(x), float_input(dy, "dy")
    bn_check(x, running_mean, running_var, training)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have shape {x.shape}, got {dy.shape}")
    xt = _t(x, True)
    g, b = _affine(x, gamma, None, requires_grad=True)
    if training:
        y = _bn_train(xt, None, None, g, b, 0.0, float(eps))
    else:
        rm, rv = _t(running_mean), _t(running_var)
        y = F.batch_norm(xt, rm, rv, g, b, training=False, momentum=0.0, eps=float(eps))
    dx, dg, db = torch.autograd.grad(y, (xt, g, b), grad_outputs=_t(dy))
    return _np(dx, x.dtype), _np(dg, x.dtype), _np(db, x.dtype)


# ------------------------------------------------------------------------------ activations
# F.relu, F.elu and torch.sigmoid; backwards by autograd. torch's relu and elu backwards test
# x <= 0 and pass dy where x is NaN, and relu's selects (threshold_backward), so a NaN or an
# infinity in dy where x <= 0 gives 0 (activation-gradient-at-nan, torch-relu-gradient-selects):
# product_nans puts the contract's NaN there.


def _activation_backward(fn, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    same_shape_dy(dy, x)
    xt = _t(x, True)
    (dx,) = torch.autograd.grad(fn(xt), xt, grad_outputs=_t(dy))
    return _np(dx, x.dtype)


def relu(x: np.ndarray) -> np.ndarray:
    """F.relu."""
    x = float_input(x)
    return _np(F.relu(_t(x)), x.dtype)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Autograd through F.relu, with the contract's NaNs (see above)."""
    dx = _activation_backward(F.relu, dy, x)
    return product_nans(dx, np.asarray(dy), np.asarray(x), np.asarray(x) <= 0)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """F.elu(alpha=alpha)."""
    x = float_input(x)
    return _np(F.elu(_t(x), alpha=check_alpha(alpha)), x.dtype)


def elu_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Autograd through F.elu, NaN where x is NaN (see above)."""
    a = check_alpha(alpha)
    dx = _activation_backward(lambda t: F.elu(t, alpha=a), dy, x)
    return product_nans(dx, np.asarray(dy), np.asarray(x))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """torch.sigmoid."""
    x = float_input(x)
    return _np(torch.sigmoid(_t(x)), x.dtype)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Autograd through torch.sigmoid (dy * y * (1 - y)); where dy is infinite, dy * e /
    (1 + e)^2 with e = torch.exp(-|x|), the contract's sigmoid(x) * sigmoid(-x)
    (sigmoid-saturated-gradient: 1 - y is exactly 0 once y rounds to 1, and torch.sigmoid
    flushes a subnormal y to 0, sigmoid-subnormal-flush; inf * 0 is NaN where the contract's
    derivative is not 0)."""
    dx = _activation_backward(torch.sigmoid, dy, x)
    infinite = np.isinf(np.asarray(dy))
    if infinite.any():
        e = torch.exp(-_t(np.asarray(x)).abs())
        composed = _t(np.asarray(dy)) * (e / (1 + e) ** 2)
        dx = np.where(infinite, _np(composed, dx.dtype), dx)
    return dx


# ---------------------------------------------------------------------------- dense layer


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """F.linear."""
    x, w = float_input(x), float_input(w, "w")
    b = None if b is None else float_input(b, "b")
    linear_check(x, w, b)
    return _np(F.linear(_t(x), _t(w), None if b is None else _t(b)), x.dtype)


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd through F.linear with a zero bias (db whether or not the
    forward had one)."""
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    linear_check(x, w, dy=dy)
    xt, wt = _t(x, True), _t(w, True)
    bt = torch.zeros(w.shape[0], dtype=wt.dtype, requires_grad=True)
    dx, dw, db = torch.autograd.grad(F.linear(xt, wt, bt), (xt, wt, bt), grad_outputs=_t(dy))
    return _np(dx, x.dtype), _np(dw, x.dtype), _np(db, x.dtype)
