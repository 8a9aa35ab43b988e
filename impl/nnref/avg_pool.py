"""Average pooling with kernel, stride, symmetric padding, ceil_mode, count_include_pad and
divisor_override, at spatial rank 1, 2 or 3: avg_pool1d / 2d / 3d (and their backwards) are thin
wrappers over one rank-generic implementation. torch's semantics (F.avg_pool{1,2,3}d).

    x: (N, C, *S)   ->   y: (N, C, *So)
    y[n, c, i] = sum over the taps p of xpad[n, c, i * s + p] / divisor[i]

Along every spatial axis of size S with pad p (the same on both sides), kernel k and stride s,
window i starts at ``start = i * s - p`` (in input coordinates) and covers the cells
``start, ..., start + k - 1``; padding cells are zeros.

    So = floor_or_ceil((S + 2 * p - k) / s) + 1,

and with ceil_mode a last window that would start at or beyond S + p (in the right padding) is
dropped. The window's sum is divided by the product over the axes of

- count_include_pad=True:  ``min(start + k, S + p) - start`` (padding counts, but not the cells
  of a ceil_mode window that reach beyond the right padding),
- count_include_pad=False: ``min(start + k, S) - max(start, 0)`` (input cells only),
- or by ``divisor_override`` when it is given (whatever count_include_pad says).

Every window holds at least one input cell (pad <= k // 2 and the ceil_mode rule), so no divisor
is zero. The gradient: each window's ``dy / divisor`` goes to every input cell it covers;
overlapping windows accumulate.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._checks import expect_shape, flag, float_array, layout, same_dtype
from ._windows import Windows, pool_windows

_X = {r: layout(r) for r in (1, 2, 3)}
_DY = {r: layout(r, suffix="o") for r in (1, 2, 3)}


def _divisor_override(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"divisor_override must be None or a non-zero int, got {value!r}")
    if value == 0:
        raise ValueError(f"divisor_override must be None or a non-zero int, got {value!r}")
    return int(value)


def _geometry(op: str, x: np.ndarray, kernel_size: Any, stride: Any, padding: Any,
              ceil_mode: Any) -> Windows:
    """The pool's windows over x, its arguments checked: symmetric padding, dilation 1."""
    return pool_windows(op, x.shape, kernel_size, stride, padding, 1, ceil_mode, symmetric=True)


def _divisor(geo: Windows, count_include_pad: bool, override: int | None, dtype: np.dtype
             ) -> np.ndarray:
    """The divisor of every window, (*So) (broadcast over N and C)."""
    rank = len(geo.out)
    if override is not None:
        return np.full((1,) * rank, override, dtype=dtype)
    div: Any = np.ones((1,) * rank, dtype=np.int64)
    for a, (o, s, k, (before, after), size) in enumerate(zip(
            geo.out, geo.stride, geo.kernel, geo.pads, geo.in_sizes, strict=True)):
        start = np.arange(o) * s - before
        end = np.minimum(start + k, size + after)
        if count_include_pad:
            count = end - start
        else:
            count = np.minimum(end, size) - np.maximum(start, 0)
        div = div * count.reshape([-1 if b == a else 1 for b in range(rank)])
    return div.astype(dtype)


def _avg_pool(op: str, rank: int, x: Any, kernel_size: Any, stride: Any, padding: Any,
              ceil_mode: Any, count_include_pad: Any, divisor_override: Any) -> np.ndarray:
    """The forward pass at any rank; avg_pool1d / 2d / 3d fix ``rank`` (and name ``op``)."""
    x = float_array("x", x, rank + 2, _X[rank])
    geo = _geometry(op, x, kernel_size, stride, padding, ceil_mode)
    include = flag("count_include_pad", count_include_pad)
    override = _divisor_override(divisor_override)
    xp = geo.padded(x)  # zeros around x, out to every window's reach
    acc = np.zeros((*x.shape[:2], *geo.out), dtype=x.dtype)
    for _, cells in geo.tap_slices():  # one whole-array add per kernel tap
        acc += xp[cells]
    acc /= _divisor(geo, include, override, x.dtype)
    return acc


def _avg_pool_backward(op: str, rank: int, dy: Any, x: Any, kernel_size: Any, stride: Any,
                       padding: Any, ceil_mode: Any, count_include_pad: Any,
                       divisor_override: Any) -> np.ndarray:
    """The backward pass at any rank: dx (N, C, *S)."""
    dy = float_array("dy", dy, rank + 2, _DY[rank])
    x = float_array("x", x, rank + 2, _X[rank])
    same_dtype("x", x, dy=dy)
    geo = _geometry(op, x, kernel_size, stride, padding, ceil_mode)
    include = flag("count_include_pad", count_include_pad)
    override = _divisor_override(divisor_override)
    expect_shape("dy", dy, (*x.shape[:2], *geo.out))
    g = dy / _divisor(geo, include, override, x.dtype)  # a new array: dy is kept
    dxp = np.zeros((*x.shape[:2], *geo.reach), dtype=x.dtype)
    for _, cells in geo.tap_slices():  # within one tap, distinct windows hit distinct cells
        dxp[cells] += g
    return np.ascontiguousarray(dxp[geo.interior])


def avg_pool1d(
    x: np.ndarray,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Mean over each window along one spatial axis.

    x: (N, C, L) -> y: (N, C, Lo), Lo = floor_or_ceil((L + 2p - k) / s) + 1 (the ceil_mode rule
    and the divisor in the module docstring and CONTRACT.md).
    """
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Mean over each window of the two spatial axes.

    x: (N, C, H, W) -> y: (N, C, Ho, Wo), Ho = floor_or_ceil((H + 2ph - kh) / sh) + 1 (likewise
    Wo; the ceil_mode rule and the divisor in the module docstring and CONTRACT.md).
    """
    return _avg_pool("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple[int, int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Mean over each window of the three spatial axes.

    x: (N, C, D, H, W) -> y: (N, C, Do, Ho, Wo), Do = floor_or_ceil((D + 2pd - kd) / sd) + 1
    (likewise Ho, Wo; the ceil_mode rule and the divisor in the module docstring and
    CONTRACT.md).
    """
    return _avg_pool("avg_pool3d", 3, x, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool1d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool1d`: dy (N, C, Lo) -> dx (N, C, L).

    Each window's dy / divisor goes to every input cell it covers; overlapping windows add up.
    """
    return _avg_pool_backward("avg_pool1d", 1, dy, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)


def avg_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: dy (N, C, Ho, Wo) -> dx (N, C, H, W).

    Each window's dy / divisor goes to every input cell it covers; overlapping windows add up.
    """
    return _avg_pool_backward("avg_pool2d", 2, dy, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)


def avg_pool3d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple[int, int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool3d`: dy (N, C, Do, Ho, Wo) -> dx (N, C, D, H, W).

    Each window's dy / divisor goes to every input cell it covers; overlapping windows add up.
    """
    return _avg_pool_backward("avg_pool3d", 3, dy, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)
