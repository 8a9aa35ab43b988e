"""Argument checking and normalisation shared by every op.

Every public function funnels its arguments through these helpers, so a bad argument always
raises ``ValueError`` naming the parameter and the offending value.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

Pads = tuple[tuple[int, int], tuple[int, int]]


def float_array(name: str, value: Any, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as an ndarray after checking it is float32/float64 with ``ndim`` axes."""
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a NumPy ndarray of float32 or float64, got {type(value).__name__}"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, got {value.ndim} (shape {value.shape})"
        )
    if value.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    return value


def flag(name: str, value: Any) -> bool:
    """A bool argument (numpy bools too); anything else is an error, not a truthiness test."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def real(name: str, value: Any) -> float:
    """A real scalar (int or float, not bool)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def same_dtype(reference_name: str, reference: np.ndarray, **others: np.ndarray | None) -> None:
    """Require every array in ``others`` (None is ignored) to share ``reference``'s dtype."""
    for name, arr in others.items():
        if arr is not None and arr.dtype != reference.dtype:
            raise ValueError(
                f"{name} has dtype {arr.dtype} but {reference_name} has dtype {reference.dtype}; "
                "they must match"
            )


def expect_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    """Require ``arr.shape == shape``."""
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")


def _int(name: str, value: Any) -> int:
    if type(value) is int:  # the common case, without the slower ABC checks below
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(value)


def int_pair(name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or ``(a, b)`` to a pair of ints, each >= ``minimum``."""
    if type(value) is int and value >= minimum:  # the common case, cheaply
        return (value, value)
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (_int(name, value[0]), _int(name, value[1]))
    else:
        v = _int(name, value)
        pair = (v, v)
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def padding_pairs(name: str, value: Any) -> Pads:
    """Normalise ``p``, ``(ph, pw)`` or ``((t, b), (l, r))`` to ``((t, b), (l, r))``, all >= 0."""
    if type(value) is int and value >= 0:  # the common case, cheaply
        return ((value, value), (value, value))
    if isinstance(value, tuple | list) and len(value) == 2 and all(
        isinstance(v, tuple | list) for v in value
    ):
        if any(len(v) != 2 for v in value):
            raise ValueError(f"{name} must be p, (ph, pw) or ((t, b), (l, r)), got {value!r}")
        pads = tuple((_int(name, a), _int(name, b)) for a, b in value)
    elif isinstance(value, tuple | list):
        ph, pw = int_pair(name, value, minimum=0)
        pads = ((ph, ph), (pw, pw))
    else:
        p = _int(name, value)
        pads = ((p, p), (p, p))
    if min(min(pads[0]), min(pads[1])) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return pads  # type: ignore[return-value]


def output_size(
    name: Callable[[], str], size: int, pad_before: int, pad_after: int, kernel: int, stride: int,
    dilation: int, ceil_mode: bool = False,
) -> int:
    """Windows along one axis: floor_or_ceil((size + pads - dilation*(kernel-1) - 1)/stride) + 1.

    With ``ceil_mode`` a last window that would start at or beyond ``size + pad_before`` (inside
    the right padding only) is dropped, as torch does. ``name()`` describes the axis for the
    error message; it is only called on error (formatting shapes costs microseconds).
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    if span < 0:
        raise ValueError(
            f"{name()}: the (dilated) kernel extent {dilation * (kernel - 1) + 1} is larger than "
            f"the padded input {size + pad_before + pad_after} (size {size}, padding "
            f"({pad_before}, {pad_after}))"
        )
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_before:
            out -= 1
    else:
        out = span // stride + 1
    return out
