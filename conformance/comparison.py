"""Comparing two outputs, one module for the whole suite: assertions for tests, statistics for
``diff``.

- :func:`compare` asserts ``|actual - expected| <= atol`` elementwise (shape, dtype of integers,
  NaN placement and infinities checked) and raises :class:`Mismatch` naming the worst element;
- :func:`compare_output` measures the same thing without raising: largest absolute, relative and
  ULP differences, the worst element (:class:`Worst`) and the failures, for reports;
- :func:`ulp_distance` counts representable values between two floats;
- :func:`same_bits` checks that two arrays are equal bit for bit (selections, copies: signed
  zeros included, any NaN payload aside).

Tolerances come from the error model (``tolerance.py`` and each op's record), never from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def ulp_distance(a: Any, b: Any, dtype: Any = None) -> np.ndarray:
    """Elementwise number of representable ``dtype`` values between ``a`` and ``b``.

    Uses the monotone map of a float's bits onto unsigned integers (negative floats reversed), so
    adjacent floats are 1 apart, +0 and -0 are 0 apart and the count runs across zero. Both NaN:
    0; one NaN: inf. Returned as float64 (exact below 2**53).
    """
    dt = np.dtype(dtype) if dtype is not None else np.result_type(np.asarray(a), np.asarray(b))
    if dt.kind != "f":
        raise ValueError(f"ulp_distance needs a float dtype, got {dt}")
    uint = np.dtype(f"uint{8 * dt.itemsize}")
    top = uint.type(1) << uint.type(8 * dt.itemsize - 1)
    a = np.ascontiguousarray(a, dtype=dt)
    b = np.ascontiguousarray(b, dtype=dt)

    def key(x: np.ndarray) -> np.ndarray:
        bits = x.view(uint)
        negative = (bits & top) != 0
        return np.where(negative, ~bits + uint.type(1), bits | top)

    ka, kb = key(a), key(b)
    out = np.where(ka >= kb, ka - kb, kb - ka).astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    out = np.where(nan_a & nan_b, 0.0, out)
    return np.where(nan_a ^ nan_b, np.inf, out)


class Mismatch(AssertionError):
    """A comparison failed; the message names the worst element and its tolerance."""


def compare(name: str, actual: Any, expected: Any, atol: Any, context: str = "") -> float:
    """Assert ``|actual - expected| <= atol`` elementwise (shapes and dtypes checked first).

    NaNs must sit in the same places; infinities must be equal. Returns the largest
    ``|error| / atol`` (0 when exact), the headroom measure the reports print.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    where = f" [{context}]" if context else ""
    if actual.shape != expected.shape:
        raise Mismatch(f"{name}: shape {actual.shape} != expected {expected.shape}{where}")
    if actual.size == 0:
        return 0.0
    if expected.dtype.kind == "i" or actual.dtype.kind == "i":
        bad = actual != expected
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise Mismatch(
                f"{name}: {int(bad.sum())} of {bad.size} integer elements differ; first at "
                f"{idx}: got {actual[idx]}, expected {expected[idx]}{where}"
            )
        return 0.0
    a64, e64 = actual.astype(np.float64), expected.astype(np.float64)
    atol_b = np.broadcast_to(np.asarray(atol, dtype=np.float64), a64.shape)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    same_inf = np.isinf(a64) & (a64 == e64)
    with np.errstate(invalid="ignore"):
        err = np.where(nan_a & nan_e | same_inf, 0.0, np.abs(a64 - e64))
    err = np.where(nan_a ^ nan_e, np.inf, err)
    err = np.nan_to_num(err, nan=np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / atol_b)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if not ratio[worst] <= 1.0:
        n_bad = int((ratio > 1.0).sum())
        raise Mismatch(
            f"{name}: {n_bad} of {ratio.size} elements outside tolerance; worst at "
            f"{tuple(int(i) for i in worst)}: got {a64[worst]!r}, expected {e64[worst]!r}, "
            f"|error| {err[worst]:.3g} > atol {atol_b[worst]:.3g}{where}"
        )
    return float(ratio[worst])


@dataclass
class Worst:
    """The element of one comparison closest to (or furthest beyond) its tolerance."""

    item: str
    output: str
    index: tuple[int, ...]
    a: float
    b: float
    abs_err: float
    atol: float
    ulp: float
    ratio: float  # abs_err / atol (inf when atol is 0 and the values differ)


def fmt_value(v: float, dtype: str) -> str:
    """Shortest text that round-trips ``v`` in ``dtype`` (so 1-ulp differences show)."""
    if dtype not in ("float32", "float64"):
        return str(v)
    return str(np.dtype(dtype).type(v))


def compare_output(name: str, va: Any, vb: Any, atol: Any, dtype: str) -> dict[str, Any]:
    """Statistics of one output pair; ``failures`` lists what is out of tolerance."""
    va, vb = np.asarray(va), np.asarray(vb)
    stats: dict[str, Any] = {"max_abs": 0.0, "max_rel": 0.0, "max_ulp": 0.0, "max_ratio": 0.0,
                             "index_mismatches": 0, "elements": int(va.size), "worst": None,
                             "failures": []}
    if va.shape != vb.shape:
        stats["failures"].append(f"{name}: shapes differ, {va.shape} vs {vb.shape}")
        stats["max_ratio"] = math.inf
        return stats
    if va.size == 0:
        return stats
    if va.dtype.kind in "iu" or vb.dtype.kind in "iu":
        bad = va != vb
        stats["index_mismatches"] = int(bad.sum())
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            stats["max_ratio"] = math.inf
            stats["worst"] = Worst("", name, idx, float(va[idx]), float(vb[idx]),
                                   abs(float(va[idx]) - float(vb[idx])), 0.0, math.nan, math.inf)
            stats["failures"].append(
                f"{name}: {int(bad.sum())} of {bad.size} indices differ; first at {idx}: "
                f"{va[idx]} vs {vb[idx]}")
        return stats
    for side, v in (("a", va), ("b", vb)):
        if v.dtype != np.dtype(dtype):
            stats["failures"].append(f"{name}: backend {side} returned {v.dtype}, not {dtype}")
    a64, b64 = va.astype(np.float64), vb.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where((nan_a & nan_b) | (np.isinf(a64) & (a64 == b64)), 0.0, np.abs(a64 - b64))
    err = np.nan_to_num(np.where(nan_a ^ nan_b, np.inf, err), nan=np.inf)
    scale = np.maximum(np.abs(a64), np.abs(b64))
    atol_b = np.broadcast_to(np.asarray(atol, dtype=np.float64), err.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(err == 0, 0.0, err / scale)
        ratio = np.where(err == 0, 0.0, err / atol_b)
    rel = np.nan_to_num(rel, nan=np.inf)
    ratio = np.nan_to_num(ratio, nan=np.inf)
    ulp = ulp_distance(va.astype(dtype), vb.astype(dtype), dtype)
    stats.update(max_abs=float(err.max()), max_rel=float(rel.max()), max_ulp=float(ulp.max()),
                 max_ratio=float(ratio.max()))
    if stats["max_ratio"] > 0:
        # The worst element: largest |error| / tolerance, ties broken by ULP distance.
        flat = int(np.lexsort((ulp.ravel(), ratio.ravel()))[-1])
        idx = tuple(int(i) for i in np.unravel_index(flat, err.shape))
        stats["worst"] = Worst("", name, idx, float(a64[idx]), float(b64[idx]), float(err[idx]),
                               float(atol_b[idx]), float(ulp[idx]), float(ratio[idx]))
    if stats["max_ratio"] > 1.0:
        n_bad = int((ratio > 1.0).sum())
        w = stats["worst"]
        stats["failures"].append(
            f"{name}: {n_bad} of {ratio.size} elements outside tolerance; worst at {w.index}: "
            f"{fmt_value(w.a, dtype)} vs {fmt_value(w.b, dtype)}, |diff| {w.abs_err:.3g} > tol "
            f"{w.atol:.3g} ({w.ulp:.0f} ulp)")
    return stats




def same_bits(name: str, actual: Any, expected: Any, context: str = "") -> None:
    """Assert equal values with equal signs of zero (a selection or a copy must return the very
    values it selected); NaN must meet NaN. Raises Mismatch naming the first difference."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    where = f" [{context}]" if context else ""
    if actual.shape != expected.shape:
        raise Mismatch(f"{name}: shape {actual.shape} != expected {expected.shape}{where}")
    if actual.dtype.kind != "f" or expected.dtype.kind != "f":
        return
    a64, e64 = actual.astype(np.float64), expected.astype(np.float64)
    nan = np.isnan(a64) & np.isnan(e64)
    with np.errstate(invalid="ignore"):
        bad = ~nan & ((a64 != e64) | (np.signbit(a64) != np.signbit(e64)))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Mismatch(f"{name}: {int(bad.sum())} of {bad.size} elements are not bit-for-bit "
                       f"the expected values; first at {idx}: got {a64[idx]!r}, expected "
                       f"{e64[idx]!r}{where}")
