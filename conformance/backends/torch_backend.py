"""The nnref contract on torch.nn.functional (CPU).

Conventions handled here (see conformance/divergences.toml):
- F.conv2d pads symmetrically only and refuses padding="same" with stride > 1: every conv pads
  explicitly with F.pad first, then runs with padding=0
  (torch-conv-symmetric-padding-only, torch-same-padding-strided).
- F.max_pool2d pads symmetrically only: symmetric pads go straight to torch (so ceil_mode is
  torch's own); asymmetric pads are composed as F.pad(-inf) + padding=0, which is exact unless a
  window whose input cells are all -inf would report a padded cell (maxpool-neg-inf-sentinel).
- torch reports an index outside the plane for windows that cover no input cell, and its backward
  writes that window's gradient into a neighbouring plane (torch-maxpool-empty-window): the
  adapter returns -1 there and zeroes those upstream gradients.
- F.batch_norm updates running statistics in place with (1 - m) * old + m * batch and the
  unbiased variance, as the contract does (torch-running-var-unbiased). It rejects eps = 0 in
  training (torch-batchnorm-eps-positive): that case is composed from torch.var_mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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

NAME = "torch"
_TORCH_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}


def _t(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    """A private torch copy of `a` (inputs are never shared with torch, so never mutated)."""
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_(requires_grad) if requires_grad else t


def _np(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=dtype, copy=True)


# ----------------------------------------------------------------------------------- padding


def _torch_pad(xt: torch.Tensor, pads, mode: str, value: float) -> torch.Tensor:
    (t, b), (l, r) = pads
    if mode == "constant":
        return F.pad(xt, (l, r, t, b), mode="constant", value=float(value))
    return F.pad(xt, (l, r, t, b), mode=_TORCH_MODES[mode])


def pad(x: np.ndarray, pad_width: object, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """F.pad with the contract's pad order ((t, b), (l, r)) -> torch's (l, r, t, b)."""
    x = float_input(x)
    pads = pads2d(pad_width, "pad_width")
    check_pad(x.shape, pads, mode)
    return _np(_torch_pad(_t(x), pads, mode, value), x.dtype)


def pad_backward(dy: np.ndarray, pad_width: object, mode: str = "constant") -> np.ndarray:
    """Adjoint of `pad` by autograd through F.pad (x's shape comes from dy's)."""
    dy = float_input(dy, "dy")
    (t, b), (l, r) = pads = pads2d(pad_width, "pad_width")
    n, c, h, w = dy.shape
    shape = (n, c, h - t - b, w - l - r)
    if min(shape) < 0:
        raise ValueError(f"pad_width {pad_width!r} is larger than dy of shape {dy.shape}")
    check_pad(shape, pads, mode)
    xt = torch.zeros(shape, dtype=_t(dy).dtype, requires_grad=True)
    y = _torch_pad(xt, pads, mode, 0.0)
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=_t(dy))
    return _np(dx, dy.dtype)


# ------------------------------------------------------------------------------- convolution


def _conv(xt, wt, bt, stride, padding, dilation, groups) -> torch.Tensor:
    c, co, cg = xt.shape[1], wt.shape[0], wt.shape[1]
    if groups < 1 or c % groups or co % groups or cg * groups != c:
        raise ValueError(f"groups={groups} does not fit x channels {c} and w of shape "
                         f"{tuple(wt.shape)}")
    kh, kw = wt.shape[2], wt.shape[3]
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    (t, b), (l, r) = conv_pads(padding, tuple(xt.shape[2:]), (kh, kw), s, d)
    if t or b or l or r:
        xt = F.pad(xt, (l, r, t, b))
    return F.conv2d(xt, wt, bt, stride=s, padding=0, dilation=d, groups=groups)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """F.pad (explicit, possibly asymmetric or "same") then F.conv2d(padding=0)."""
    x, w = float_input(x), float_input(w, "w")
    bt = None if b is None else _t(float_input(b, "b"))
    return _np(_conv(_t(x), _t(w), bt, stride, padding, dilation, groups), x.dtype)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by autograd with upstream gradient dy."""
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    xt, wt = _t(x, True), _t(w, True)
    bt = torch.zeros(w.shape[0], dtype=xt.dtype, requires_grad=True)
    y = _conv(xt, wt, bt, stride, padding, dilation, groups)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    dx, dw, db = torch.autograd.grad(y, (xt, wt, bt), grad_outputs=_t(dy))
    return _np(dx, x.dtype), _np(dw, x.dtype), _np(db, x.dtype)


# ------------------------------------------------------------------------------- max pooling


def _pool(xt: torch.Tensor, kernel_size, stride, padding, dilation, ceil_mode):
    """Forward max pool on torch; returns (y, contract indices as numpy, empty-window mask)."""
    h, w = int(xt.shape[2]), int(xt.shape[3])
    k, s, ((t, b), (l, r)), d = pool_args(tuple(xt.shape), kernel_size, stride, padding, dilation)
    ho = pool_out_len(h, t, b, k[0], s[0], d[0], ceil_mode)
    wo = pool_out_len(w, l, r, k[1], s[1], d[1], ceil_mode)
    hit = window_hits(h, t, k[0], s[0], d[0], ho)[:, None] & window_hits(w, l, k[1], s[1], d[1],
                                                                         wo)[None, :]
    if t == b and l == r:
        y, idx = F.max_pool2d(xt, k, s, (t, l), d, ceil_mode=ceil_mode, return_indices=True)
        ind = idx.numpy().copy()
    else:
        # torch-maxpool-symmetric-padding-only: compose with -inf padding (cells that never win
        # unless every input cell of the window is -inf) and count the windows ourselves.
        eh = pool_extra_end(h, t, b, k[0], s[0], d[0], ho)
        ew = pool_extra_end(w, l, r, k[1], s[1], d[1], wo)
        xp = F.pad(xt, (l, r + ew, t, b + eh), value=float("-inf"))
        y, idx = F.max_pool2d(xp, k, s, 0, d, ceil_mode=False, return_indices=True)
        y, idx = y[:, :, :ho, :wo], idx[:, :, :ho, :wo]
        wp = xp.shape[3]
        ip = idx.numpy()
        row, col = ip // wp - t, ip % wp - l
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        if (~inside & hit).any():
            raise Unsupported(
                "maxpool-neg-inf-sentinel",
                "asymmetric padding is composed with -inf padding in torch; a window whose input "
                "cells are all -inf would report a padded cell",
            )
        ind = np.where(inside, row * w + col, -1)
    if tuple(y.shape[2:]) != (ho, wo):
        raise AssertionError(f"torch pooled to {tuple(y.shape[2:])}, contract says {(ho, wo)}")
    ind = np.where(hit, ind, -1).astype(np.int64)  # torch-maxpool-empty-window
    return y, ind, hit


def max_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """F.max_pool2d(return_indices=True); indices are torch's per-plane row * W + col."""
    x = float_input(x)
    y, ind, _ = _pool(_t(x), kernel_size, stride, padding, dilation, ceil_mode)
    out = _np(y, x.dtype)
    return (out, ind) if return_indices else out


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """Autograd through the same forward; windows without input cells pass no gradient."""
    x, dy = float_input(x), float_input(dy, "dy")
    xt = _t(x, True)
    y, _, hit = _pool(xt, kernel_size, stride, padding, dilation, ceil_mode)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    g = _t(dy) * torch.from_numpy(hit.astype(dy.dtype))
    (dx,) = torch.autograd.grad(y, xt, grad_outputs=g)
    return _np(dx, x.dtype)


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
    var, mean = torch.var_mean(xt, dim=(0, 2, 3), correction=0, keepdim=True)
    y = (xt - mean) / torch.sqrt(var) * g.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)
    if rm is not None:
        m = xt.shape[0] * xt.shape[2] * xt.shape[3]
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
