"""The dense layer: linear and linear_backward (torch's F.linear).

    x: (..., in)   w: (out, in)   b: (out,) or None   ->   y = x @ w.T + b: (..., out)

x has any number of leading axes (none: a single vector of length in). The backward, with
the upstream gradient dy of y's shape (..., out), returns

    dx = dy @ w: (..., in),   dw = sum over the leading axes of dy^T x: (out, in),
    db = dy summed over every leading axis: (out,)

(db is returned whether the forward had a bias or not, as conv's backward does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES, same_dtype


def _array(name: str, value: Any, ndim: int | None = None, hint: str = "") -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a NumPy ndarray of float32 or float64, got {type(value).__name__}"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension{'s' if ndim > 1 else ''} {hint}, "
                         f"got {value.ndim} (shape {value.shape})")
    if value.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    return value


def _check(x: Any, w: Any) -> tuple[np.ndarray, np.ndarray]:
    x = _array("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension (..., in), got a 0-d array")
    w = _array("w", w, 2, "(out, in)")
    same_dtype("x", x, w=w)
    if w.shape[1] != x.shape[-1]:
        raise ValueError(f"w of shape {w.shape} has {w.shape[1]} in-features but x of shape "
                         f"{x.shape} has {x.shape[-1]} (the last axis of x); they must match")
    return x, w


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """y = x @ w.T (+ b): x (..., in), w (out, in), b (out,) or None -> (..., out)."""
    x, w = _check(x, w)
    if b is not None:
        b = _array("b", b, 1, "(out,)")
        same_dtype("x", x, b=b)
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"b must have shape ({w.shape[0]},) (w's out-features), "
                             f"got {b.shape}")
    # One GEMM over all leading axes: np.matmul of an (..., in) x would run one small GEMM per
    # leading index (16 x (49, 256) took 2.5x the time of the one (784, 256) product)
    y = np.matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(*x.shape[:-1], w.shape[0])
    if b is not None:
        y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db): dx = dy @ w (x's shape), dw = dy^T x over the leading axes (out, in),
    db = dy summed over the leading axes (out,)."""
    x, w = _check(x, w)
    dy = _array("dy", dy)
    same_dtype("x", x, dy=dy)
    want = (*x.shape[:-1], w.shape[0])
    if dy.shape != want:
        raise ValueError(f"dy must have shape {want} (x's leading axes, w's out-features), "
                         f"got {dy.shape}")
    dy2 = dy.reshape(-1, w.shape[0])
    x2 = x.reshape(-1, w.shape[1])
    dx = np.matmul(dy2, w).reshape(x.shape)  # one GEMM (see linear)
    dw = np.matmul(dy2.T, x2)
    db = dy2.sum(axis=0)
    return dx, dw, db
