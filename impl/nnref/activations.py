"""Elementwise activations: relu, elu and sigmoid, and their backwards.

Every function takes x of any shape (float32 or float64; usually (N, C, *S)) and returns an
array of the same shape and dtype; a backward takes the upstream gradient dy of x's shape and
returns dx = dy * f'(x), an IEEE product (CONTRACT.md, "Activations"):

- ``relu(x) = x`` where ``x >= 0`` (a copy: ``relu(-0.0)`` is ``-0.0``), ``+0.0`` where
  ``x < 0``; ``relu'(x) = 1`` for ``x > 0`` and ``0`` for ``x <= 0`` (at exactly 0, of either
  sign, the derivative is 0, as torch and TF take it).
- ``elu(x, alpha) = x`` for ``x > 0``, ``alpha * expm1(x)`` for ``x <= 0``;
  ``elu'(x) = 1`` for ``x > 0`` and ``alpha * exp(x)`` for ``x <= 0`` (so ``elu'(0) = alpha``,
  the left derivative, as torch takes it).
- ``sigmoid(x) = 1 / (1 + exp(-x))``, evaluated as ``exp(x) / (1 + exp(x))`` for ``x < 0`` so
  that no exp overflows (no warning for any finite x); ``sigmoid'(x) = sigmoid(x) *
  sigmoid(-x)``, both factors computed directly (``1 - sigmoid(x)`` would lose every digit of a
  small ``sigmoid(-x)``).

NaN in x gives NaN in y and in dx (f'(NaN) is NaN); a NaN or an infinity in dy meets the
derivative by multiplication, so ``inf * 0`` is NaN.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES, expect_shape, same_dtype


def _array(name: str, value: Any) -> np.ndarray:
    """A float32 / float64 ndarray of any shape (0-d included), not empty."""
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a NumPy ndarray of float32 or float64, got {type(value).__name__}"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64, got dtype {value.dtype}")
    if value.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    return value


def _pair(dy: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    x = _array("x", x)
    dy = _array("dy", dy)
    same_dtype("x", x, dy=dy)
    expect_shape("dy", dy, x.shape)
    return dy, x


def _alpha(value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"alpha must be a finite real number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"alpha must be a finite real number, got {value!r}")
    return float(value)


def _nan_where_x_is_nan(dx: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx (a fresh array) with NaN where x is NaN. In place, and only where there is a NaN: a
    masked write is several times slower than the arithmetic around it."""
    nan = np.isnan(x)
    if nan.any():
        np.copyto(dx, np.array(np.nan, dx.dtype), where=nan)
    return dx


# ------------------------------------------------------------------------------------- relu


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) elementwise, any shape: x where x >= 0 (-0.0 stays -0.0), +0.0 below; NaN
    stays NaN.

    The rule is ``np.where(x < 0, 0, x)``; computed as np.maximum (several times faster than a
    masked select), whose result for x = -0.0 may be either zero, then x copied back where
    x == 0 (only if there is such a cell)."""
    x = _array("x", x)
    y = np.maximum(x, np.zeros((), x.dtype))
    zero = x == 0
    if zero.any():
        np.copyto(y, x, where=zero)
    return y


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx = dy * (x > 0), shape of x; the derivative at 0 is 0; NaN where x is NaN."""
    dy, x = _pair(dy, x)
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN: the contract's product, no warning
        dx = dy * (x > 0).astype(x.dtype)
    return _nan_where_x_is_nan(dx, x)


# -------------------------------------------------------------------------------------- elu


def _select(take: np.ndarray | np.bool_, first: np.ndarray, into: np.ndarray) -> np.ndarray:
    """``np.where(take, first, into)``, written into ``into`` (a fresh float array; ``first``
    of its dtype, its shape or 0-d): the two operands' bits merged through an integer mask.

    A selection, so every bit of the result (signed zeros, NaN payloads) is the chosen
    operand's. NumPy's where and masked copyto take a branch per element, mispredicted on a
    mixed mask (30 of elu's 36 ms at (32, 64, 56, 56) float32); these six passes of integer
    arithmetic take none. One x-sized integer buffer besides ``into``."""
    ints = np.dtype(f"i{into.itemsize}")
    keep = np.asarray(take).astype(ints)        # 1 where first is taken, 0 where into stays
    np.subtract(keep, 1, out=keep)              # all ones where into stays, 0 elsewhere
    bits = into.view(ints)
    np.bitwise_and(bits, keep, out=bits)        # into's bits where it stays, 0 elsewhere
    np.invert(keep, out=keep)                   # all ones where first is taken
    np.bitwise_and(keep, first.view(ints), out=keep)
    np.bitwise_or(bits, keep, out=bits)
    return into


def elu_plain(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """The rule, plainly: ``np.where(x > 0, x, alpha * expm1(x))``. :func:`elu` computes
    exactly this, bit for bit (signed zeros, NaN); the suite holds the two to each other."""
    x = _array("x", x)
    a = x.dtype.type(_alpha(alpha))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # see elu
        return np.where(x > 0, x, a * np.expm1(x))


def elu_plain_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """The rule, plainly: ``dy * np.where(x > 0, 1, alpha * exp(x))`` (the same bits as
    :func:`elu_backward`)."""
    dy, x = _pair(dy, x)
    a = x.dtype.type(_alpha(alpha))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return dy * np.where(x > 0, np.ones((), x.dtype), a * np.exp(x))


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """x for x > 0, alpha * expm1(x) for x <= 0, elementwise, any shape.

    :func:`elu_plain`'s selection, made by :func:`_select` (no branch per element)."""
    x = _array("x", x)
    a = x.dtype.type(_alpha(alpha))
    # expm1 of a large positive x overflows, and alpha 0 times it is NaN, but neither is
    # selected; a tiny alpha * expm1(x) underflows gradually, which is the right answer
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        negative = np.expm1(x, out=np.empty(x.shape, x.dtype))  # out=: an array when x is 0-d
        np.multiply(a, negative, out=negative)
    return _select(x > 0, x, negative)


def elu_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """dx = dy * (1 for x > 0, alpha * exp(x) for x <= 0): elu'(0) = alpha; NaN at NaN x.

    :func:`elu_plain_backward`'s selection, made by :func:`_select`."""
    dy, x = _pair(dy, x)
    a = x.dtype.type(_alpha(alpha))
    # exp of a large positive x overflows (alpha 0 times it: NaN) but is not selected; exp of a
    # very negative x underflows gradually (the right answer)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        slope = np.exp(x, out=np.empty(x.shape, x.dtype))
        np.multiply(a, slope, out=slope)
    _select(x > 0, np.ones((), x.dtype), slope)  # slope is NaN where x is NaN
    with np.errstate(under="ignore", invalid="ignore"):  # inf * 0 is NaN (the contract's)
        return np.multiply(dy, slope, out=slope)


# ---------------------------------------------------------------------------------- sigmoid


def sigmoid_plain(x: np.ndarray) -> np.ndarray:
    """The rule, plainly: 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0, with
    e = exp(-|x|): the exp argument is never positive, so it never overflows; NaN propagates.
    :func:`sigmoid` computes exactly this, bit for bit, in two x-sized buffers (this peaks at
    four, measured); the suite holds the two to each other."""
    x = _array("x", x)
    one = np.ones((), x.dtype)
    # exp(-|x|) and e / (1 + e) underflow gradually for very negative x: the right answer
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, one / (one + e), e / (one + e))


def sigmoid_plain_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The rule, plainly: dy * (sigmoid(x) * sigmoid(-x)), each factor by :func:`sigmoid_plain`
    (the same as :func:`sigmoid_backward`, bit for bit)."""
    dy, x = _pair(dy, x)
    with np.errstate(under="ignore", invalid="ignore"):
        return dy * (sigmoid_plain(x) * sigmoid_plain(-x))


def _exp_minus_abs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e, d) = (exp(-|x|), 1 + e), each in a buffer of its own that the caller may reuse."""
    e = np.abs(x, out=np.empty(x.shape, x.dtype))  # out=: an array even when x is 0-d
    np.negative(e, out=e)
    with np.errstate(under="ignore"):
        np.exp(e, out=e)
    return e, np.add(np.ones((), x.dtype), e, out=np.empty_like(e))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) elementwise, any shape, without overflow for any x.

    :func:`sigmoid_plain`'s rule (numerator 1 for x >= 0, e = exp(-|x|) below, over 1 + e),
    with the numerator written over e and divided in place: two x-sized buffers and a mask.
    The numerator is max(e, x >= 0): e <= 1 where x >= 0, so the maximum is 1 there, and e
    (>= 0, or NaN, which maximum keeps) below; a selection without a branch per element
    (a masked copy takes one, mispredicted on mixed signs: 31 of 53 ms at (32, 64, 56, 56)
    float32)."""
    x = _array("x", x)
    e, d = _exp_minus_abs(x)
    np.maximum(e, x >= 0, out=e)  # the numerator
    with np.errstate(under="ignore"):
        return np.divide(e, d, out=e)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx = dy * sigmoid(x) * sigmoid(-x), shape of x (NaN where x is NaN).

    sigmoid(x) and sigmoid(-x) share e = exp(-|x|) and d = 1 + e: one is 1 / d, the other
    e / d (which is which depends on x's sign; at x = 0 both are 1 / 2), so their product is
    (1 / d) * (e / d) wherever x is a number; a NaN x makes every factor the same NaN. Two
    x-sized buffers; :func:`sigmoid_plain_backward` is the rule written out."""
    dy, x = _pair(dy, x)
    e, d = _exp_minus_abs(x)
    # a gradually underflowing product is the right answer; inf * 0 is NaN (the contract's)
    with np.errstate(under="ignore", invalid="ignore"):
        np.divide(e, d, out=e)                      # e / d
        np.divide(np.ones((), x.dtype), d, out=d)   # 1 / d
        np.multiply(d, e, out=d)                    # sigmoid(x) * sigmoid(-x)
        return np.multiply(dy, d, out=d)
