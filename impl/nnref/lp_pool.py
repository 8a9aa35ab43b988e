"""Power-average (LP) pooling at spatial rank 1 or 2: lp_pool1d / lp_pool2d (and their
backwards) are thin wrappers over one rank-generic implementation. torch's semantics
(F.lp_pool1d / 2d), computed as torch computes them.

    x: (N, C, *S)   ->   y: (N, C, *So)

Along every spatial axis of size S with kernel k and stride s (no padding), window i covers the
input cells ``i * s, ..., min(i * s + k, S) - 1``;

    So = floor_or_ceil((S - k) / s) + 1,

and with ceil_mode a last window that would start at or beyond S is dropped, so every window
covers ``count >= 1`` input cells (the product over the axes). With K = prod(kernel) and p =
norm_type:

    y = (K / count * sum over the window of x ** p) ** (1 / p).

A full window (count = K) gives the plain p-norm ``(sum x ** p) ** (1 / p)``; a ceil_mode
window cut short by the input's end is scaled by K / count (torch averages x ** p with its
avg_pool, then multiplies by K). Powers are real powers: ``x ** p`` is NaN for x < 0 and a
non-integer p, and an odd integer p can give a negative window sum, whose root is NaN.

The gradient: dy/dx_j = x_j ** (p - 1) * (K / count) * A ** (1 / p - 1) over each window
covering x_j, with A = K / count * S and S the plain sum of x ** p (that is x_j ** (p - 1) * y /
S, written as torch's chain rule evaluates it, which decides what an infinite S gives);
overlapping windows accumulate. A window whose sum is 0 passes no gradient (0, whatever dy is),
as torch does; at p = 1 a window whose sum is NaN passes dy * 0 (0 for a finite dy, NaN for a
NaN or infinite one), as torch does.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._checks import expect_shape, float_array, layout, same_dtype
from ._windows import Windows, pool_windows

_X = {r: layout(r) for r in (1, 2)}
_DY = {r: layout(r, suffix="o") for r in (1, 2)}


def _norm_type(value: Any) -> float:
    """p: a finite real number > 0 (not a bool). inf is refused: max pooling of |x| is
    max_pool, not a limit taken here."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"norm_type must be a finite real number > 0, got {value!r}")
    p = float(value)
    if not math.isfinite(p) or p <= 0:
        raise ValueError(f"norm_type must be a finite real number > 0, got {value!r}")
    return p


def _geometry(op: str, x: np.ndarray, kernel_size: Any, stride: Any, ceil_mode: Any
              ) -> Windows:
    """The pool's windows over x, its arguments checked: no padding, dilation 1."""
    return pool_windows(op, x.shape, kernel_size, stride, 0, 1, ceil_mode, symmetric=True)


def _counts(geo: Windows, dtype: np.dtype) -> np.ndarray:
    """The number of input cells of every window, (*So) (broadcast over N and C)."""
    rank = len(geo.out)
    count: Any = np.ones((1,) * rank, dtype=np.int64)
    for a, (o, s, k, size) in enumerate(zip(geo.out, geo.stride, geo.kernel, geo.in_sizes,
                                            strict=True)):
        start = np.arange(o) * s
        covered = np.minimum(start + k, size) - start
        count = count * covered.reshape([-1 if b == a else 1 for b in range(rank)])
    return count.astype(dtype)


def _window_sums(v: np.ndarray, geo: Windows) -> np.ndarray:
    """sum of v over each window's input cells, (N, C, *So): one whole-array add per tap (the
    zeros past the input's end that a ceil_mode window reaches add nothing)."""
    ve = geo.padded(v)
    acc = np.zeros((*v.shape[:2], *geo.out), dtype=v.dtype)
    for _, cells in geo.tap_slices():
        acc += ve[cells]
    return acc


def _lp_pool(op: str, rank: int, x: Any, norm_type: Any, kernel_size: Any, stride: Any,
             ceil_mode: Any) -> np.ndarray:
    """The forward pass at any rank; lp_pool1d / 2d fix ``rank`` (and name ``op``)."""
    x = float_array("x", x, rank + 2, _X[rank])
    p = _norm_type(norm_type)
    geo = _geometry(op, x, kernel_size, stride, ceil_mode)
    # NaN for negative bases (documented above); x ** p beyond the dtype's range is inf, the
    # IEEE result the backward also takes (no warning: the value is the contract's)
    with np.errstate(invalid="ignore", over="ignore"):
        sums = _window_sums(np.power(x, x.dtype.type(p)), geo)
        # torch's order: the mean of x ** p over the covered cells, times K, then the root.
        mean = sums / _counts(geo, x.dtype)
        return np.power(mean * x.dtype.type(math.prod(geo.kernel)), x.dtype.type(1.0 / p))


def _lp_pool_backward(op: str, rank: int, dy: Any, x: Any, norm_type: Any, kernel_size: Any,
                      stride: Any, ceil_mode: Any) -> np.ndarray:
    """The backward pass at any rank: dx (N, C, *S)."""
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x = float_array("x", x, rank + 2, _X[rank])
    same_dtype("x", x, dy=dy)
    p = _norm_type(norm_type)
    geo = _geometry(op, x, kernel_size, stride, ceil_mode)
    expect_shape("dy", dy, (*x.shape[:2], *geo.out))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sums = _window_sums(np.power(x, x.dtype.type(p)), geo)
        scale = x.dtype.type(math.prod(geo.kernel)) / _counts(geo, x.dtype)
        a = sums * scale
        # Per window dy * (K / count) * A ** (1 / p - 1) (= dy * y / S), in torch's form, so
        # that an infinite sum gives what torch gives (0 for p > 1). A window whose sum is 0
        # passes nothing (torch's rule, whatever dy is); a NaN sum passes NaN, except at p = 1,
        # where A ** 0 = 1 would pass dy * K / count and torch passes dy * 0 (CONTRACT.md): 0
        # for a finite dy, NaN for a NaN or infinite one.
        zero_sum = sums == 0
        nan_p1 = np.isnan(sums) & (p == 1)
        dead = zero_sum | nan_p1
        g = np.where(dead, dy * x.dtype.type(0),
                     dy * scale * np.power(np.where(dead, 1, a), x.dtype.type(1.0 / p - 1)))
        g[zero_sum] = 0
        acc = np.zeros((*x.shape[:2], *geo.reach), dtype=x.dtype)
        for _, cells in geo.tap_slices():  # within one tap, distinct windows hit distinct cells
            acc[cells] += g
        acc = acc[geo.interior]
        # x ** (p - 1) is inf at x = 0 for p < 1; a zero cell that only windows passing
        # nothing cover (acc == 0) gets 0, not inf * 0.
        dx = np.where((acc == 0) & (x == 0), x.dtype.type(0),
                      np.power(x, x.dtype.type(p - 1)) * acc)
    return np.ascontiguousarray(dx.astype(x.dtype, copy=False))


def lp_pool1d(
    x: np.ndarray,
    norm_type: float,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    """(K / count * sum x ** p) ** (1 / p) over each window along one spatial axis, p = norm_type.

    x: (N, C, L) -> y: (N, C, Lo), Lo = floor_or_ceil((L - k) / s) + 1 (no padding; the
    ceil_mode rule and the K / count scale in the module docstring and CONTRACT.md).
    """
    return _lp_pool("lp_pool1d", 1, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(
    x: np.ndarray,
    norm_type: float,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    """(K / count * sum x ** p) ** (1 / p) over each window of the two spatial axes.

    x: (N, C, H, W) -> y: (N, C, Ho, Wo), Ho = floor_or_ceil((H - kh) / sh) + 1 (likewise Wo;
    no padding; K = kh * kw; the ceil_mode rule in the module docstring and CONTRACT.md).
    """
    return _lp_pool("lp_pool2d", 2, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool1d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    norm_type: float,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of :func:`lp_pool1d`: dy (N, C, Lo) -> dx (N, C, L).

    dx_j = x_j ** (p - 1) * sum over the windows covering j of dy * (K / count) * A ** (1 / p - 1)
    (A = K / count * the window sum of x ** p); a window summing to 0 contributes 0.
    """
    return _lp_pool_backward("lp_pool1d", 1, dy, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    norm_type: float,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of :func:`lp_pool2d`: dy (N, C, Ho, Wo) -> dx (N, C, H, W).

    dx_j = x_j ** (p - 1) * sum over the windows covering j of dy * (K / count) * A ** (1 / p - 1)
    (A = K / count * the window sum of x ** p); a window summing to 0 contributes 0.
    """
    return _lp_pool_backward("lp_pool2d", 2, dy, x, norm_type, kernel_size, stride, ceil_mode)
