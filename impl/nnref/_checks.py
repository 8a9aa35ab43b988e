"""Argument checking and normalisation shared by every op, at every spatial rank.

Every public function funnels its arguments through these helpers, so a bad argument always
raises ``ValueError`` naming the parameter and the offending value. The spatial rank r (1, 2 or
3) is fixed by the caller: a spatial argument is an int or exactly one int per spatial axis
(CONTRACT.md). Padding forms and output sizes belong to the window geometry (``_windows``).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Names of the spatial axes at each rank: for layouts in messages, and per-axis messages.
SPATIAL_LETTERS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def layout(rank: int, lead: str = "N, C", prefix: str = "", suffix: str = "",
           lower: bool = False) -> str:
    """The layout of an array at ``rank``, for messages: ``layout(2) == "(N, C, H, W)"``,
    ``layout(1, "Co, C/G", prefix="k", lower=True) == "(Co, C/G, kl)"``."""
    letters = (s.lower() if lower else s for s in SPATIAL_LETTERS[rank])
    return "(" + ", ".join([lead, *(prefix + s + suffix for s in letters)]) + ")"


def float_array(name: str, value: Any, ndim: int | tuple[int, ...] | None = None,
                shape_hint: str = "") -> np.ndarray:
    """Return ``value`` as an ndarray after checking it is float32/float64 with ``ndim`` axes
    (one of them if ``ndim`` is a tuple); ``shape_hint`` (e.g. "(N, C, L)") goes in the message."""
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a NumPy ndarray of float32 or float64, got {type(value).__name__}"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim and not (
        type(ndim) is tuple and value.ndim in ndim
    ):
        wanted = (ndim if type(ndim) is int
                  else ", ".join(map(str, ndim[:-1])) + f" or {ndim[-1]}")  # type: ignore[index]
        hint = f" {shape_hint}" if shape_hint else ""
        raise ValueError(
            f"{name} must have {wanted} dimensions{hint}, got {value.ndim} (shape {value.shape})"
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


def int_arg(name: str, value: Any) -> int:
    """An int (NumPy integers too, not bools); 1.5 or True is an error, never truncated."""
    if type(value) is int:  # the common case, without the slower ABC checks below
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int or a tuple of ints, got {value!r}")
    return int(value)


def int_tuple(name: str, value: Any, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """Normalise an int or exactly ``rank`` ints to a ``rank``-tuple of ints, each >= minimum."""
    if type(value) is int and value >= minimum:  # the common case, cheaply
        return (value,) * rank
    if isinstance(value, tuple | list):
        if len(value) != rank:
            raise ValueError(
                f"{name} must be an int or exactly {rank} int{'s' if rank > 1 else ''} (one per "
                f"spatial axis), got {value!r}"
            )
        ints = tuple(int_arg(name, v) for v in value)
    else:
        ints = (int_arg(name, value),) * rank
    if min(ints) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return ints


def groups_int(groups: Any) -> int:
    """groups: an int (NumPy integers too, not bools); its range and divisibility are checked
    by the caller, whose message names the channels."""
    if isinstance(groups, bool | np.bool_) or not isinstance(groups, int | np.integer):
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    return int(groups)


# The channels-first layouts of the normalisation ops (batch, group and instance norm).
CHANNELS_FIRST_NDIMS = (2, 3, 4, 5)
CHANNELS_FIRST_LAYOUTS = "(N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)"


def per_channel(name: str, value: np.ndarray | None, x: np.ndarray) -> np.ndarray | None:
    """A per-channel array (gamma, beta, a running statistic): None, or (C,) of x's dtype."""
    if value is None:
        return None
    value = float_array(name, value, ndim=1)
    expect_shape(name, value, (x.shape[1],))
    same_dtype("x", x, **{name: value})
    return value


def real_in(name: str, value: Any, low: float, high: float) -> float:
    """A real number (not a bool) in [low, high]: eps in [0, inf], momentum in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{name} must be a real number in [{low}, {high}], got {value!r}")
    return float(value)
