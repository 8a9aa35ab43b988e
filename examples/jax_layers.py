"""A thin module over JAX, the way a user wraps their own JAX layers to check them.

Run the suite against it with ``python -m conformance check examples.jax_layers`` (or
``pytest --impl examples.jax_layers``). It implements a few 2-D contract functions straight on
jax.lax / jax.nn, with gradients from ``jax.vjp``; everything else is absent, and the suite
reports those functions as not implemented rather than failing. What it cannot do is declared
up front in CONFORMANCE_LIMITS, so the sampler draws only what it supports:

- max pooling without indices and without dilation (JAX has no window argmax, and no VJP for a
  dilated max pool: divergences jax-maxpool-no-indices, jax-maxpool-dilation-no-vjp);
- and it raises NotImplementedError for what it leaves out (padding="same", ceil_mode), which
  the suite counts as "not supported" and draws around.

What the suite then reports is where JAX itself differs from the contract: jax.nn.relu(-0.0)
is +0.0 (jax-relu-negative-zero) and a max pool over -0.0 and +0.0 returns +0.0 whatever the
order (jax-maxpool-signed-zero). The full adapter, with every convention composed, is
conformance/backends/jax_backend.py.
float64 needs JAX's x64 mode; each function enables it for its own call only.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

CONFORMANCE_LIMITS = {"max_pool": {"return_indices": False, "dilation": 1}}


def _x64(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(e) for e in v)


def _pads(padding) -> tuple[tuple[int, int], ...]:
    """Contract padding (an int, "valid", one int per axis or (before, after) per axis)."""
    if padding == "same":
        raise NotImplementedError("padding='same' is not supported")
    if padding == "valid":
        padding = 0
    if np.isscalar(padding):
        return ((int(padding),) * 2,) * 2
    return tuple((p, p) if np.isscalar(p) else (int(p[0]), int(p[1])) for p in padding)


def _conv(x, w, b, stride, padding, dilation, groups):
    y = lax.conv_general_dilated(x, w, _pair(stride), _pads(padding),
                                 rhs_dilation=_pair(dilation), feature_group_count=groups,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                 precision=lax.Precision.HIGHEST)
    return y + b[None, :, None, None]


@_x64
def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """(N, C, H, W) * (Co, C / G, kh, kw) -> (N, Co, Ho, Wo); Ho = (H + pads - d (kh - 1) - 1)
    // s + 1."""
    b = np.zeros(w.shape[0], x.dtype) if b is None else b
    return np.asarray(_conv(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride, padding,
                            dilation, groups))


@_x64
def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db) by jax.vjp."""
    y, pullback = jax.vjp(
        lambda a, k, c: _conv(a, k, c, stride, padding, dilation, groups),
        jnp.asarray(x), jnp.asarray(w), jnp.zeros(w.shape[0], x.dtype))
    return tuple(np.asarray(g) for g in pullback(jnp.asarray(dy, y.dtype)))


def _max_pool(x, kernel_size, stride, padding, dilation):
    if _pair(dilation) != (1, 1):  # declared in CONFORMANCE_LIMITS; fixtures still call it
        raise NotImplementedError("dilation is not supported")
    k, s = _pair(kernel_size), _pair(kernel_size if stride is None else stride)
    pads = ((0, 0), (0, 0), *_pads(padding))
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, (1, 1, *k), (1, 1, *s),
                             pads)


@_x64
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False) -> np.ndarray:
    """(N, C, H, W) -> (N, C, Ho, Wo), Ho = (H + 2 p - k) // s + 1 (floor mode only)."""
    if ceil_mode or return_indices:
        raise NotImplementedError("ceil_mode and return_indices are not supported")
    return np.asarray(_max_pool(jnp.asarray(x), kernel_size, stride, padding, dilation))


@_x64
def max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False) -> np.ndarray:
    """jax.vjp of reduce_window(max)."""
    if ceil_mode:
        raise NotImplementedError("ceil_mode is not supported")
    y, pullback = jax.vjp(lambda v: _max_pool(v, kernel_size, stride, padding, dilation),
                          jnp.asarray(x))
    return np.asarray(pullback(jnp.asarray(dy, y.dtype))[0])


@_x64
def relu(x) -> np.ndarray:
    """jax.nn.relu, any shape."""
    return np.asarray(jax.nn.relu(jnp.asarray(x)))


@_x64
def relu_backward(dy, x) -> np.ndarray:
    """jax.vjp of jax.nn.relu."""
    y, pullback = jax.vjp(jax.nn.relu, jnp.asarray(x))
    return np.asarray(pullback(jnp.asarray(dy, y.dtype))[0])


@_x64
def linear(x, w, b=None) -> np.ndarray:
    """(..., in) @ (out, in).T + b -> (..., out)."""
    y = jnp.matmul(jnp.asarray(x), jnp.asarray(w).T, precision=lax.Precision.HIGHEST)
    return np.asarray(y if b is None else y + jnp.asarray(b))


@_x64
def linear_backward(dy, x, w):
    """(dx, dw, db) by jax.vjp."""
    y, pullback = jax.vjp(
        lambda a, k, c: jnp.matmul(a, k.T, precision=lax.Precision.HIGHEST) + c,
        jnp.asarray(x), jnp.asarray(w), jnp.zeros(w.shape[0], x.dtype))
    return tuple(np.asarray(g) for g in pullback(jnp.asarray(dy, y.dtype)))
