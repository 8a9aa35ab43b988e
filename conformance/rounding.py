"""The rounding-error model's primitives: unit roundoff, gamma(n), magnitudes, the safety factor.

Each op record (``conformance/ops/<op>.py``) builds its error bounds from these; the tolerance
policy (``conformance.tolerance``) applies the bounds. The model is described there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# First-order model: products of two error terms (u^2) and the rounding of the final
# multiply/add are not tracked separately; this factor covers them with margin while staying
# within a small constant of the worst case.
SAFETY = 2.0


# Storage formats NumPy's finfo does not know: bfloat16 (8 significand bits, ml_dtypes' dtype).
_EPS_BY_NAME = {"bfloat16": 2.0**-7}


class Probabilistic:
    """An accumulation in ``dtype`` judged by the probabilistic bound instead of the worst case
    (Higham and Mary, "A new approach to probabilistic rounding error analysis", SIAM J. Sci.
    Comput. 41(5), 2019): with independent zero-mean rounding errors, a length-n sum errs by at
    most ``lam * sqrt(n) * u * sum |terms|`` (to first order) with probability at least
    ``1 - 2 n exp(-lam**2 / 2)``; lam = 6 makes that 1 - 3e-8 n. For a storage format such as
    bfloat16, where the worst case gamma(n) exceeds 1 from n = 256 on and so bounds nothing,
    this is the bound a declared storage-precision accumulation is held to (stated as such)."""

    def __init__(self, dtype: Any, lam: float = 6.0) -> None:
        self.dtype = np.dtype(dtype)
        self.lam = lam

    def __repr__(self) -> str:
        return f"probabilistic {self.dtype.name} (lambda {self.lam:g})"


# TF32: float32's exponent with 10 explicit mantissa bits. Rounding to nearest errs by at most
# 2**-11 relative; how tensor cores round float32 to TF32 is not documented (truncation errs by
# less than one unit in the last place, 2**-10), so the model budgets 2**-10 per input.
TF32_INPUT_ROUNDING = 2.0**-10


class RoundedInputs:
    """A sum of products whose two factors were each rounded (relative error at most
    ``u_in``) before an exact product and an accumulation in ``dtype``: each term is
    x y (1 + d1)(1 + d2), so the sum errs by at most
    ``gamma_acc(n) + (2 u_in + u_in**2)(1 + gamma_acc(n))`` times sum |terms|.
    ``RoundedInputs()`` is TF32 on float32 (the products of two 11-bit significands are exact
    in float32)."""

    def __init__(self, dtype: Any = np.float32, u_in: float = TF32_INPUT_ROUNDING) -> None:
        self.dtype = np.dtype(dtype)
        self.u_in = u_in

    def __repr__(self) -> str:
        return f"inputs rounded by {self.u_in:g}, {self.dtype.name} accumulation"


def unit_roundoff(dtype: Any) -> float:
    """u = eps / 2: the largest relative error of one rounding (2**-24 f32, 2**-53 f64, 2**-11
    float16, 2**-8 bfloat16)."""
    if isinstance(dtype, Probabilistic | RoundedInputs):
        return unit_roundoff(dtype.dtype)
    name = np.dtype(dtype).name
    return (_EPS_BY_NAME[name] if name in _EPS_BY_NAME else float(np.finfo(dtype).eps)) / 2


def gamma(n: int, dtype: Any) -> float:
    """gamma(n) = n u / (1 - n u): relative bound for a length-n sum or product chain (for a
    :class:`Probabilistic` accumulation, lam sqrt(n) u in place of n u)."""
    if isinstance(dtype, Probabilistic):
        nu = dtype.lam * math.sqrt(n) * unit_roundoff(dtype)
        return math.inf if nu >= 1 else nu / (1 - nu)
    if isinstance(dtype, RoundedInputs):
        acc = gamma(n, dtype.dtype)
        return acc + (2 * dtype.u_in + dtype.u_in**2) * (1 + acc)
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        return math.inf
    return nu / (1 - nu)


def abs64(a: np.ndarray | None) -> np.ndarray:
    """|a| in float64 (zeros(1) for an absent array): the magnitudes the bounds are built on."""
    return np.zeros(1) if a is None else np.abs(np.asarray(a, dtype=np.float64))


def tiny(dtype: Any) -> float:
    """The smallest positive normal number of ``dtype`` (bfloat16 shares float32's exponent)."""
    if isinstance(dtype, Probabilistic | RoundedInputs):
        return tiny(dtype.dtype)
    if np.dtype(dtype).name == "bfloat16":
        return float(np.finfo(np.float32).tiny)
    return float(np.finfo(dtype).tiny)
