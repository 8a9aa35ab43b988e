"""Instance normalisation: statistics per sample and per channel over every spatial axis.

x: (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); the statistics of x[n, c] are taken over
its m = prod(S) values (1 for a 2-D x, which is only valid in eval mode). gamma, beta and the
running statistics are per channel, (C,).
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import (
    CHANNELS_FIRST_LAYOUTS,
    CHANNELS_FIRST_NDIMS,
    expect_shape,
    flag,
    float_array,
    per_channel,
    real_in,
    same_dtype,
)

_RANKS = CHANNELS_FIRST_NDIMS
_LAYOUTS = CHANNELS_FIRST_LAYOUTS


def _count(x: np.ndarray) -> int:
    """m: the number of values per instance, prod(S)."""
    return math.prod(x.shape[2:])


def _statistics(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mean and variance used to normalise, (N, C) from the instance (biased variance) or
    (1, C) from the running statistics, and in training x - mean as (N, C, m): a fresh buffer
    the caller may overwrite. Two passes: no E[x^2] - E[x]^2."""
    if (running_mean is None) != (running_var is None):
        raise ValueError(
            "running_mean and running_var must be given together, got "
            f"running_mean={'None' if running_mean is None else 'array'}, "
            f"running_var={'None' if running_var is None else 'array'}"
        )
    flag("training", training)
    if not training:
        if running_mean is None:
            raise ValueError("training=False needs running_mean and running_var, got None")
        return running_mean[None, :], running_var[None, :], None  # type: ignore[index]
    count = _count(x)
    if count < 2:
        raise ValueError(
            f"training needs more than one value per instance (prod(S) > 1), got x of shape "
            f"{x.shape}"
        )
    rows = x.reshape(*x.shape[:2], count)
    m = x.dtype.type(count)
    mean = rows.sum(axis=-1) / m
    centred = rows - mean[..., None]
    return mean, np.einsum("nck,nck->nc", centred, centred) / m, centred


def _expand(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N or 1, C) -> (N or 1, C, 1, ..., 1), broadcastable against x."""
    return v.reshape(*v.shape, *(1,) * (x.ndim - 2))


def _sum_but_channels(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but 1: (C,)."""
    return a.sum(axis=(0, *range(2, a.ndim)))


def instance_norm(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise each channel of each sample: x (N, C, *S) with 0 to 3 spatial axes; gamma,
    beta, running stats (C,).

    training: y[n, c] = gamma[c] * (x[n, c] - mean[n, c]) / sqrt(var[n, c] + eps) + beta[c],
    mean and the biased var over the m = prod(S) spatial values (m > 1). With running stats
    also returns (y, (1 - momentum) * mean_old + momentum * mean_n(mean[n]),
    (1 - momentum) * var_old + momentum * mean_n(var[n] * m / (m - 1))): torch's convention, the
    unbiased per-instance variance averaged over the batch. eval: y from the running statistics.
    """
    x = float_array("x", x, _RANKS, _LAYOUTS)
    gamma, beta, running_mean, running_var = (
        per_channel(name, value, x)
        for name, value in (
            ("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
            ("running_var", running_var),
        )
    )
    momentum = real_in("momentum", momentum, 0.0, 1.0)
    eps = real_in("eps", eps, 0.0, np.inf)
    mean, var, centred = _statistics(x, running_mean, running_var, training)
    # One scale and one shift per (sample, channel), y = x * scale + shift, as torch's CPU
    # kernel (instance norm runs as batch norm over the (1, N * C, *S) view).
    scale = 1.0 / np.sqrt(var + x.dtype.type(eps))
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale if beta is None else beta - mean * scale
    # x - mean (training) is no longer needed: its buffer takes y
    y = np.multiply(x, _expand(scale, x), out=None if centred is None else centred.reshape(x.shape))
    y += _expand(shift, x)
    if not training or running_mean is None:
        return y
    count = _count(x)
    m = x.dtype.type(momentum)
    batch = x.dtype.type(x.shape[0])
    new_mean = (1 - m) * running_mean + m * (mean.sum(axis=0) / batch)
    unbiased = var * x.dtype.type(count / (count - 1))
    new_var = (1 - m) * running_var + m * (unbiased.sum(axis=0) / batch)
    return y, new_mean, new_var


def instance_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    eps: float = 1e-5,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    training: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`instance_norm`: dy, x (N, C, *S) -> (dx, dgamma (C,), dbeta (C,)).

    training: through the per-instance statistics, with means over the spatial axes of x[n, c],
    dx = gamma / sigma * (dy - mean(dy) - xhat * mean(dy * xhat)).
    eval (training=False): the running statistics are constants, dx = dy * gamma / sigma.
    dgamma = sum(dy * xhat), dbeta = sum(dy) over N and every spatial axis.
    """
    dy = float_array("dy", dy, _RANKS, _LAYOUTS)
    x = float_array("x", x, _RANKS, _LAYOUTS)
    expect_shape("dy", dy, x.shape)
    same_dtype("x", x, dy=dy)
    gamma = per_channel("gamma", gamma, x)
    running_mean = per_channel("running_mean", running_mean, x)
    running_var = per_channel("running_var", running_var, x)
    eps = real_in("eps", eps, 0.0, np.inf)
    mean, var, centred = _statistics(x, running_mean, running_var, training)
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))  # (N or 1, C)
    scale = inv_std if gamma is None else inv_std * gamma
    dbeta = _sum_but_channels(dy)
    if not training:
        xhat = (x - _expand(mean, x)) * _expand(inv_std, x)
        return dy * _expand(scale, x), _sum_but_channels(dy * xhat), dbeta
    xhat = centred
    xhat *= inv_std[..., None]  # (N, C, m)
    dy_rows = dy.reshape(xhat.shape)
    dot = np.einsum("nck,nck->nc", dy_rows, xhat)  # sum dy * xhat per instance
    dgamma = dot.sum(axis=0)
    count = x.dtype.type(xhat.shape[-1])
    dx = dy_rows - (dy_rows.sum(axis=-1) / count)[..., None]
    dx -= np.multiply(xhat, (dot / count)[..., None], out=xhat)  # xhat is not needed after
    dx *= scale[..., None]
    return dx.reshape(x.shape), dgamma, dbeta
