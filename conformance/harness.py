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
            planted: str = "", reference: str = "nnref") -> str:
    """What a failure report says: the op, dtype, seed, case and a reproducer that calls only
    ``direction`` (both if None) after re-planting ``planted`` (code run on the arrays ``a``),
    printing the result next to ``reference``'s (a module name)."""
    # "function=": the contract function that failed, which the plugin's summary reads to judge
    # only that function (a test may call both directions)
    function = {"forward": case.op, "backward": case.backward_op}.get(direction or "", "")
    return (
        f"op={case.op} dtype={np.dtype(dtype).name} seed={seed}"
        f"{f' function={function}' if function else ''}\n"
        f"case: {case.describe()}\nreproducer:\n"
        f"{case.reproducer(dtype, seed, impl_name, direction, planted, reference)}"
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

    Tolerance: tolerance.comparison_atol(bound(dtype), bound(float64)) per output, plus
    tolerance.attribute_rounding where a module stores parameters narrower than its data.
    """
    a = case.arrays(dtype, seed)
    a64 = upcast(a)
    run: Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]] = (
        case.forward if direction == "forward" else case.backward
    )
    bounds = tol.forward_bounds if direction == "forward" else tol.backward_bounds
    # the reference first: where it cannot express the case (Unsupported), the implementation
    # under test is not called, so the test does not count as judging it
    want = run(reference, a64)
    got = run(impl, a)
    b_dtype, b_64 = bounds(case, a64, dtype), bounds(case, a64, np.float64)
    # parameters an implementation stores narrower than its data (ONNX float32 attributes)
    stored = tol.attribute_rounding(case, a64, direction, impl, reference)
    where = context(case, dtype, seed, impl_name, direction,
                    reference=getattr(reference, "__name__", "nnref"))
    headroom = {}
    for name in outputs or tuple(want):
        value = got[name]
        if name != "indices" and value is not None and np.asarray(value).dtype != np.dtype(dtype):
            raise Mismatch(
                f"{name}: dtype {np.asarray(value).dtype}, expected {np.dtype(dtype)} [{where}]"
            )
        atol = tol.comparison_atol(b_dtype[name], b_64[name]) + stored.get(name, 0.0)
        headroom[name] = compare(name, value, want[name], atol, where)
    return headroom


# Largest |error| / tolerance seen per (backend, op, direction, dtype, output) in this process,
# with the number of examples and the seconds they took; printed at the end of a pytest run.
HEADROOM: dict[tuple[str, str, str, str, str], float] = {}
THROUGHPUT: dict[str, list[float]] = {}


# What was recorded since the last drain, kept only in a pytest-xdist worker (SHIPPING), which
# sends it to the controller with each test's report.
PENDING: list[tuple[str, Any, Any]] = []
SHIPPING = False


def record_headroom(backend: str, case: Case, direction: str, dtype: Any,
                    headroom: dict[str, float]) -> None:
    for output, ratio in headroom.items():
        key = (backend, case.label, direction, np.dtype(dtype).name, output)
        merge_headroom(key, ratio)
        if SHIPPING:
            PENDING.append(("headroom", list(key), ratio))


def record_example(backend: str, seconds: float) -> None:
    merge_example(backend, 1, seconds)
    if SHIPPING:
        PENDING.append(("example", backend, seconds))


def merge_headroom(key: tuple[str, str, str, str, str], ratio: float) -> None:
    HEADROOM[key] = max(HEADROOM.get(key, 0.0), ratio)


def merge_example(backend: str, count: float, seconds: float) -> None:
    stats = THROUGHPUT.setdefault(backend, [0.0, 0.0])
    stats[0] += count
    stats[1] += seconds


def drain() -> list[tuple[str, Any, Any]]:
    """What was recorded since the last call (and forget it)."""
    out = list(PENDING)
    PENDING.clear()
    return out


def merge(records: list[tuple[str, Any, Any]]) -> None:
    """Add another process's records (from :func:`drain`) to this one's."""
    for kind, key, value in records:
        if kind == "headroom":
            merge_headroom(tuple(key), value)
        else:
            merge_example(key, 1, value)
