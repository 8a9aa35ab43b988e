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


def unit_roundoff(dtype: Any) -> float:
    """u = eps / 2: the largest relative error of one rounding (2**-24 f32, 2**-53 f64)."""
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, dtype: Any) -> float:
    """gamma(n) = n u / (1 - n u): relative bound for a length-n sum or product chain."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        return math.inf
    return nu / (1 - nu)


def abs64(a: np.ndarray | None) -> np.ndarray:
    """|a| in float64 (zeros(1) for an absent array): the magnitudes the bounds are built on."""
    return np.zeros(1) if a is None else np.abs(np.asarray(a, dtype=np.float64))
