"""Layer normalisation: statistics over the trailing axes ``normalized_shape`` of x.

x: any shape (*B, *D) with at least one axis, normalized_shape = D (one to x.ndim trailing
axes); the statistics of x[b] are taken over its m = prod(D) values. gamma and beta are
elementwise over D, shape D.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._checks import (
    expect_shape,
    float_array,
    real_in,
    same_dtype,
)


def _check_x(name: str, x: Any) -> np.ndarray:
    x = float_array(name, x)
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension, got shape {x.shape}")
    return x


def _check_normalized_shape(normalized_shape: Any, x: np.ndarray) -> tuple[int, ...]:
    """normalized_shape as a tuple of ints, required to be x's trailing shape."""
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(
            normalized_shape, bool | np.bool_):
        shape: tuple[Any, ...] = (normalized_shape,)
    elif isinstance(normalized_shape, tuple | list):
        shape = tuple(normalized_shape)
    else:
        raise ValueError(
            f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}")
    if not shape or any(isinstance(s, bool | np.bool_) or not isinstance(s, numbers.Integral)
                        for s in shape):
        raise ValueError(f"normalized_shape must be an int or a non-empty tuple of ints, got "
                         f"{normalized_shape!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) > x.ndim or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(
            f"normalized_shape must be the trailing shape of x, got normalized_shape="
            f"{normalized_shape!r} for x of shape {x.shape}"
        )
    return shape


def _elementwise(name: str, value: np.ndarray | None, shape: tuple[int, ...],
                 x: np.ndarray) -> np.ndarray | None:
    if value is None:
        return None
    value = float_array(name, value, ndim=len(shape))
    expect_shape(name, value, shape)
    same_dtype("x", x, **{name: value})
    return value


def _moments(x: np.ndarray, count: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows of x (x.size / count, count): 1 / sqrt(var + eps) per row with the biased variance,
    and x - mean (a fresh buffer the caller may overwrite). Two passes: the variance is the
    mean square of x - mean (no E[x^2] - E[x]^2)."""
    rows = x.reshape(-1, count)
    m = x.dtype.type(count)
    centred = rows - (rows.sum(axis=1) / m)[:, None]
    var = np.einsum("ij,ij->i", centred, centred) / m
    return 1.0 / np.sqrt(var + x.dtype.type(eps)), centred


def layer_norm(
    x: np.ndarray,
    normalized_shape: int | tuple[int, ...],
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    """Normalise x (*B, *D) over its trailing axes D = normalized_shape; gamma, beta: D.

    y[b] = (x[b] - mean[b]) / sqrt(var[b] + eps) * gamma + beta, mean and the biased var over
    the m = prod(D) values of x[b]. One value per row (D = (1,)) gives y = beta, as torch.
    """
    x = _check_x("x", x)
    shape = _check_normalized_shape(normalized_shape, x)
    gamma = _elementwise("gamma", gamma, shape, x)
    beta = _elementwise("beta", beta, shape, x)
    eps = real_in("eps", eps, 0.0, np.inf)
    inv_std, centred = _moments(x, math.prod(shape), eps)
    y = centred
    y *= inv_std[:, None]
    if gamma is not None:
        y *= gamma.reshape(-1)
    if beta is not None:
        y += beta.reshape(-1)
    return y.reshape(x.shape)


def layer_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    normalized_shape: int | tuple[int, ...],
    gamma: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`layer_norm`: dy, x (*B, *D) -> (dx of x's shape, dgamma D, dbeta D).

    With xhat = (x - mean) / sqrt(var + eps) and g = dy * gamma, means over each row's D:
    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps);
    dgamma = sum(dy * xhat), dbeta = sum(dy) over the leading axes B.
    """
    dy = _check_x("dy", dy)
    x = _check_x("x", x)
    expect_shape("dy", dy, x.shape)
    same_dtype("x", x, dy=dy)
    shape = _check_normalized_shape(normalized_shape, x)
    gamma = _elementwise("gamma", gamma, shape, x)
    eps = real_in("eps", eps, 0.0, np.inf)
    count = math.prod(shape)
    inv_std, centred = _moments(x, count, eps)
    xhat = centred
    xhat *= inv_std[:, None]  # (rows, m)
    dy_rows = dy.reshape(xhat.shape)
    dbeta = dy_rows.sum(axis=0).reshape(shape)
    dgamma = np.einsum("ij,ij->j", dy_rows, xhat).reshape(shape)
    g = dy_rows if gamma is None else dy_rows * gamma.reshape(-1)
    m = x.dtype.type(count)
    mean_g = g.sum(axis=1) / m
    mean_g_xhat = np.einsum("ij,ij->i", g, xhat) / m
    # g - mean(g) in g's own buffer when it is one (dy is the caller's)
    dx = np.subtract(g, mean_g[:, None], out=None if gamma is None else g)
    dx -= np.multiply(xhat, mean_g_xhat[:, None], out=xhat)  # xhat is not needed after
    dx *= inv_std[:, None]
    return dx.reshape(x.shape), dgamma, dbeta
