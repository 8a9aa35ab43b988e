"""float16 and bfloat16 inputs, computed with float32 accumulation (CONTRACT.md, "Low precision").

Every public function accepts arrays stored in a format narrower than float32: NumPy's
``float16`` and ``bfloat16`` (the dtype ``ml_dtypes`` registers with NumPy, recognised here by
its name, so nnref needs NumPy only). The rule, for a call whose float arrays are all in one
such storage format F:

    result = round_F( f32_function( widen(inputs) ) )

``widen`` converts each F array to float32 exactly (every float16 and bfloat16 value is a
float32 value), ``f32_function`` is the function's own float32 computation (float32 products
and float32 accumulation), and ``round_F`` rounds each float output once, to nearest with ties
to even, back to F. Integer outputs (max-pool indices) stay int64; running statistics come back
in F like every other float output. Mixing formats (a float16 ``x`` with a float32 ``w``, or
float16 with bfloat16) is an error naming the parameter, as for float32 with float64.

float32 and float64 calls are not touched: :func:`accepts_low_precision` passes them straight
through.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

# Storage formats narrower than float32, by NumPy dtype name.
LOW_PRECISION = ("float16", "bfloat16")

F = TypeVar("F", bound=Callable[..., Any])


def is_low_precision(value: Any) -> bool:
    """Whether ``value`` is an ndarray stored in float16 or bfloat16."""
    return isinstance(value, np.ndarray) and value.dtype.name in LOW_PRECISION


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and (
        value.dtype.kind == "f" or value.dtype.name in LOW_PRECISION)


def _rounded(result: Any, storage: np.dtype) -> Any:
    """Each float32 output rounded once to ``storage``; integer outputs as they are."""
    if isinstance(result, tuple):
        return tuple(_rounded(r, storage) for r in result)
    if isinstance(result, np.ndarray) and result.dtype == np.float32:
        return result.astype(storage)
    return result


def accepts_low_precision(function: F) -> F:
    """``function`` (float32/float64 only) extended to float16 / bfloat16 inputs by the rule in
    the module docstring."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if not any(map(is_low_precision, (*args, *kwargs.values()))):
            return function(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        arrays = {name: v for name, v in bound.arguments.items() if _is_float(v)}
        first = next(iter(arrays))  # the first float array in the signature: x, or dy
        storage = arrays[first].dtype
        for name, value in arrays.items():
            if value.dtype != storage:
                raise ValueError(f"{name} has dtype {value.dtype} but {first} has dtype "
                                 f"{storage}; they must match")
        for name, value in arrays.items():
            bound.arguments[name] = value.astype(np.float32)
        return _rounded(function(*bound.args, **bound.kwargs), storage)

    return call  # type: ignore[return-value]
