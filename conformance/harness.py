"""Running a case against an implementation and an oracle, with failures that reproduce.

Every check here raises ``tolerance.Mismatch`` carrying the case, dtype, seed and a copy-paste
reproducer, so a failure report is enough to rebuild the arrays and rerun the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import tolerance as tol
from .cases import Case
from .comparison import Mismatch, compare


def context(case: Case, dtype: Any, seed: int, impl_name: str, direction: str | None = None,
            planted: str = "") -> str:
    """What a failure report says: the op, dtype, seed, case and a reproducer that calls only
    ``direction`` (both if None) after re-planting ``planted`` (code run on the arrays ``a``)."""
    return (
        f"op={case.op} dtype={np.dtype(dtype).name} seed={seed}\n"
        f"case: {case.describe()}\nreproducer:\n"
        f"{case.reproducer(dtype, seed, impl_name, direction, planted)}"
    )


def upcast(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same values in float64 (exact: float32 values are float64 values)."""
    return {k: v.astype(np.float64) for k, v in a.items()}


def check_against_reference(
    case: Case,
    impl: Any,
    reference: Any,
    dtype: Any,
    seed: int,
    impl_name: str,
    direction: str = "forward",
    outputs: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """impl in ``dtype`` vs ``reference`` in float64 on the same values; headroom per output.

    Tolerance: tolerance.comparison_atol(bound(dtype), bound(float64)) per output.
    """
    a = case.arrays(dtype, seed)
    a64 = upcast(a)
    run: Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]] = (
        case.forward if direction == "forward" else case.backward
    )
    bounds = tol.forward_bounds if direction == "forward" else tol.backward_bounds
    got = run(impl, a)
    want = run(reference, a64)
    b_dtype, b_64 = bounds(case, a64, dtype), bounds(case, a64, np.float64)
    where = context(case, dtype, seed, impl_name, direction)
    headroom = {}
    for name in outputs or tuple(want):
        value = got[name]
        if name != "indices" and value is not None and np.asarray(value).dtype != np.dtype(dtype):
            raise Mismatch(
                f"{name}: dtype {np.asarray(value).dtype}, expected {np.dtype(dtype)} [{where}]"
            )
        headroom[name] = compare(
            name, value, want[name], tol.comparison_atol(b_dtype[name], b_64[name]), where
        )
    return headroom


# Largest |error| / tolerance seen per (backend, op, direction, dtype, output) in this process,
# with the number of examples and the seconds they took; printed at the end of a pytest run.
HEADROOM: dict[tuple[str, str, str, str, str], float] = {}
THROUGHPUT: dict[str, list[float]] = {}


def record_headroom(backend: str, case: Case, direction: str, dtype: Any,
                    headroom: dict[str, float]) -> None:
    for output, ratio in headroom.items():
        key = (backend, case.label, direction, np.dtype(dtype).name, output)
        HEADROOM[key] = max(HEADROOM.get(key, 0.0), ratio)


def record_example(backend: str, seconds: float) -> None:
    stats = THROUGHPUT.setdefault(backend, [0.0, 0.0])
    stats[0] += 1
    stats[1] += seconds
