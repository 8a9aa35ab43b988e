"""Group normalisation: statistics per sample and per group of C / G consecutive channels.

x: (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), C divisible by the number of groups G;
the statistics of sample n, group g are taken over x[n, g * C/G : (g + 1) * C/G, ...],
m = C/G * prod(S) values. gamma and beta are per channel, (C,).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._checks import (
    CHANNELS_FIRST_LAYOUTS,
    CHANNELS_FIRST_NDIMS,
    expect_shape,
    float_array,
    per_channel,
    real_in,
    same_dtype,
)

_RANKS = CHANNELS_FIRST_NDIMS
_LAYOUTS = CHANNELS_FIRST_LAYOUTS


def _check_groups(num_groups: Any, channels: int) -> int:
    if isinstance(num_groups, bool | np.bool_) or not isinstance(num_groups, numbers.Integral) \
            or num_groups < 1:
        raise ValueError(f"num_groups must be an int >= 1, got {num_groups!r}")
    if channels % num_groups:
        raise ValueError(
            f"num_groups must divide the number of channels C = {channels}, got "
            f"num_groups={num_groups}"
        )
    return int(num_groups)


def _moments(
    x: np.ndarray, num_groups: int, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (sample, group): the mean (N, G), 1 / sqrt(var + eps) (N, G) with the biased
    variance, and x - mean grouped as (N, G, m), a fresh buffer the caller may overwrite.
    Two passes: the variance is the mean square of x - mean (no E[x^2] - E[x]^2)."""
    rows = x.reshape(x.shape[0], num_groups, -1)
    count = x.dtype.type(rows.shape[-1])
    mean = rows.sum(axis=-1) / count
    centred = rows - mean[..., None]
    var = np.einsum("ngk,ngk->ng", centred, centred) / count
    return mean, 1.0 / np.sqrt(var + x.dtype.type(eps)), centred


def _per_sample_channel(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, G) -> (N, C, 1, ..., 1): each group's value for each of its channels, broadcastable
    against x."""
    per_channel = np.repeat(v, x.shape[1] // v.shape[1], axis=1)
    return per_channel.reshape(*per_channel.shape, *(1,) * (x.ndim - 2))


def _channel_vector(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C,) -> (C, 1, ..., 1), broadcastable against x."""
    return v.reshape(-1, *(1,) * (x.ndim - 2))


def _sum_but_channels(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but 1: (C,)."""
    return a.sum(axis=(0, *range(2, a.ndim)))


def group_norm(
    x: np.ndarray,
    num_groups: int,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    """Normalise each group of C / num_groups channels of each sample: x (N, C, *S) with 0 to 3
    spatial axes, gamma, beta (C,) -> y of x's shape.

    y[n, c] = gamma[c] * (x[n, c] - mean[n, g]) / sqrt(var[n, g] + eps) + beta[c], g the group of
    channel c, mean and the biased var over the group's channels and every spatial axis
    (m = C / num_groups * prod(S) values). A group of one value has var = 0: y = beta (to a
    rounding of the fold below) and dx = 0, as torch.
    """
    x = float_array("x", x, _RANKS, _LAYOUTS)
    num_groups = _check_groups(num_groups, x.shape[1])
    gamma = per_channel("gamma", gamma, x)
    beta = per_channel("beta", beta, x)
    eps = real_in("eps", eps, 0.0, np.inf)
    mean, inv_std, centred = _moments(x, num_groups, eps)
    # One scale and one shift per (sample, channel), y = x * scale + shift, as torch's CPU kernel.
    scale = _per_sample_channel(inv_std, x)
    if gamma is not None:
        scale = scale * _channel_vector(gamma, x)
    shift = -_per_sample_channel(mean, x) * scale
    if beta is not None:
        shift = shift + _channel_vector(beta, x)
    y = np.multiply(x, scale, out=centred.reshape(x.shape))  # x - mean is no longer needed
    y += shift
    return y


def group_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    num_groups: int,
    gamma: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`group_norm`: dy, x (N, C, *S) -> (dx of x's shape, dgamma (C,),
    dbeta (C,)).

    With xhat = (x - mean) / sqrt(var + eps) and g = dy * gamma (per channel), means over each
    (sample, group): dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps);
    dgamma = sum(dy * xhat), dbeta = sum(dy) over N and every spatial axis.
    """
    dy = float_array("dy", dy, _RANKS, _LAYOUTS)
    x = float_array("x", x, _RANKS, _LAYOUTS)
    expect_shape("dy", dy, x.shape)
    same_dtype("x", x, dy=dy)
    num_groups = _check_groups(num_groups, x.shape[1])
    gamma = per_channel("gamma", gamma, x)
    eps = real_in("eps", eps, 0.0, np.inf)
    _, inv_std, centred = _moments(x, num_groups, eps)
    xhat = centred
    xhat *= inv_std[..., None]  # (N, G, m)
    dbeta = _sum_but_channels(dy)
    work = dy * xhat.reshape(x.shape)  # the one x-sized buffer besides xhat
    dgamma = _sum_but_channels(work)
    # dy * xhat is summed: work takes g = dy * gamma, then dx (elementwise, in place)
    scaled_dy = dy if gamma is None else np.multiply(dy, _channel_vector(gamma, x), out=work)
    g = scaled_dy.reshape(xhat.shape)
    count = x.dtype.type(xhat.shape[-1])
    mean_g = g.sum(axis=-1) / count
    mean_g_xhat = np.einsum("ngk,ngk->ng", g, xhat) / count
    dx = np.subtract(g, mean_g[..., None], out=work.reshape(xhat.shape))
    dx -= np.multiply(xhat, mean_g_xhat[..., None], out=xhat)  # xhat is not needed after
    dx *= inv_std[..., None]
    return dx.reshape(x.shape), dgamma, dbeta
