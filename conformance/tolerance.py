"""Tolerance policy: error bounds from a rounding-error model, one place for the whole suite.

The model (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3-4): a sum of n terms
computed in any order in floating point with unit roundoff u errs by at most
``gamma(n) * sum(|terms|)`` with ``gamma(n) = n u / (1 - n u)``. Each op's bound below is that
inequality applied to the sums the op computes, with ``sum(|terms|)`` bounded from the inputs'
float64 absolute values. These are *worst-case* bounds for any summation order (BLAS blocking,
pairwise sums, Welford), so an implementation within them is right and one outside is wrong;
typical errors are far smaller (the headroom is reported by the cross-check run).

Every bound is the error of *one* implementation in ``dtype``. Comparing an implementation in
``dtype`` with a float64 reference allows ``bound(dtype) + bound(float64)``; see
:func:`comparison_atol`. Exact operations (max-pool forward, pad forward, indices) get 0: they
select values, they do not compute them.

Bounds are per element where the model gives one (broadcastable arrays), otherwise scalars.
Nothing here calls an implementation under test: magnitudes come from plain NumPy on the inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .cases import BatchNormCase, Case, ConvCase, PadCase, PoolCase, _pads, _pair

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


def _abs64(a: np.ndarray | None) -> np.ndarray:
    return np.zeros(1) if a is None else np.abs(np.asarray(a, dtype=np.float64))


def forward_bounds(case: Case, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    """Error bound of each forward output of one implementation computing in ``dtype``."""
    if isinstance(case, PadCase | PoolCase):
        # Pure selection/copy: exact. (Indices are integers: exact.)
        return {"y": 0.0, "indices": 0.0}
    if isinstance(case, ConvCase):
        return _conv_forward(case, a, dtype)
    if isinstance(case, BatchNormCase):
        return _bn_forward(case, a, dtype)
    raise TypeError(case)


def backward_bounds(case: Case, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    """Error bound of each gradient of one implementation computing in ``dtype``."""
    dy = _abs64(a["dy"])
    if isinstance(case, PadCase):
        if case.mode == "constant":
            return {"dx": 0.0}
        # A cell receives its own gradient plus at most one copy from each side of each axis.
        (t, b), (l, r) = _pads(case.pad_width)
        n = (1 + (t > 0) + (b > 0)) * (1 + (l > 0) + (r > 0))
        return {"dx": gamma(n, dtype) * n * dy.max(initial=0.0)}
    if isinstance(case, PoolCase):
        # A cell can win in at most ceil(extent / stride) windows per axis; their dy add up.
        k, d = _pair(case.kernel_size), _pair(case.dilation)
        s = k if case.stride is None else _pair(case.stride)
        n = math.prod(-(-(d[i] * (k[i] - 1) + 1) // s[i]) for i in (0, 1))
        return {"dx": gamma(n, dtype) * n * dy.max(initial=0.0)}
    if isinstance(case, ConvCase):
        return _conv_backward(case, a, dtype)
    if isinstance(case, BatchNormCase):
        return _bn_backward(case, a, dtype)
    raise TypeError(case)


def comparison_atol(bound_dtype: Any, bound_f64: Any) -> Any:
    """Allowed |candidate(dtype) - reference(float64)|: both implementations' bounds add."""
    return SAFETY * (np.asarray(bound_dtype) + np.asarray(bound_f64))


# --------------------------------------------------------------------------------------------
# convolution


def _conv_forward(case: ConvCase, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    x, w, b = _abs64(a["x"]), _abs64(a["w"]), _abs64(a.get("b"))
    n_terms = w[0].size + 1  # C/G * kh * kw products, plus the bias
    # Each output sums products x * w[o] over one window: sum |terms| <= max|x| * ||w[o]||_1.
    per_out_channel = x.max(initial=0.0) * w.reshape(w.shape[0], -1).sum(axis=1)
    if case.bias:
        per_out_channel = per_out_channel + b
    return {"y": (gamma(n_terms, dtype) * per_out_channel)[None, :, None, None]}


def _conv_backward(case: ConvCase, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    x, w, dy = _abs64(a["x"]), _abs64(a["w"]), _abs64(a["dy"])
    n_out, c_group, kh, kw = w.shape
    groups = case.groups
    # dx[c] sums dy[o] * w[o, c] over the Co/G output channels of its group and the kh*kw taps
    # (each (o, tap) pair meets a given input cell in at most one window).
    w_in = w.reshape(groups, n_out // groups, c_group, kh * kw).sum(axis=(1, 3)).reshape(-1)
    dx = gamma(n_out // groups * kh * kw, dtype) * dy.max(initial=0.0) * w_in
    # dw[o] and db[o] sum over N * Ho * Wo output positions.
    positions = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dy_sum = dy.sum(axis=(0, 2, 3))
    dw = gamma(positions, dtype) * x.max(initial=0.0) * dy_sum
    db = gamma(positions, dtype) * dy_sum
    return {"dx": dx[None, :, None, None], "dw": dw[:, None, None, None], "db": db}


# --------------------------------------------------------------------------------------------
# batch norm
#
# With m = N*H*W values per channel, d = x - mean, s = sqrt(var + eps), xhat = d / s:
#   mean:   |dmean| <= gamma(m) * max|x|                   (sum of m terms, / m)
#   d:      |dd|    <= |dmean| + u * (max|x| + |mean|)
#   var:    |dvar|  <= 2 |dd| * sqrt(var) + gamma(m + 2) * var      (mean of (d + dd)^2)
#   s:      |ds|/s  <= |dvar| / (2 (var + eps)) + 2u
#   xhat:   |dxhat| <= |dd| / s + max|xhat| * |ds| / s
#   y = xhat * g + beta: |dy| <= |g| |dxhat| + 2u (|g| max|xhat| + |beta|)
# In eval mode the statistics are given (exact): dmean = 0, dvar = 0.


def _bn_stats(case: BatchNormCase, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    x = np.asarray(a["x"], dtype=np.float64)
    u = unit_roundoff(dtype)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    x_max = np.abs(x).max(axis=(0, 2, 3))
    if case.training:
        mean = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))
        d_mean = gamma(m, dtype) * x_max
        d_d = d_mean + u * (x_max + np.abs(mean))
        d_var = 2 * d_d * np.sqrt(var) + gamma(m + 2, dtype) * var
    else:
        mean = np.asarray(a["running_mean"], dtype=np.float64)
        var = np.asarray(a["running_var"], dtype=np.float64)
        d_mean = np.zeros_like(mean)
        d_d = u * (x_max + np.abs(mean))
        d_var = np.zeros_like(var)
    s = np.sqrt(var + case.eps)
    xhat_max = np.abs(x - mean[:, None, None]).max(axis=(0, 2, 3)) / s
    ds_rel = d_var / (2 * s * s) + 2 * u
    d_xhat = d_d / s + xhat_max * ds_rel
    return {"u": u, "m": m, "mean": mean, "var": var, "s": s, "xhat_max": xhat_max,
            "d_mean": d_mean, "d_var": d_var, "ds_rel": ds_rel, "d_xhat": d_xhat}


def _bn_forward(case: BatchNormCase, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    st = _bn_stats(case, a, dtype)
    g, beta, u = _abs64(a["gamma"]), _abs64(a["beta"]), st["u"]
    y = g * st["d_xhat"] + 2 * u * (g * st["xhat_max"] + beta)
    out: dict[str, Any] = {"y": y[None, :, None, None]}
    if case.training and case.running:
        mom = case.momentum
        rm, rv = _abs64(a["running_mean"]), _abs64(a["running_var"])
        m = st["m"]
        out["running_mean"] = mom * st["d_mean"] + 3 * u * (rm + np.abs(st["mean"]))
        bessel = m / (m - 1)
        out["running_var"] = mom * st["d_var"] * bessel + 4 * u * (rv + st["var"] * bessel)
    return out


def _bn_backward(case: BatchNormCase, a: dict[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    # dbeta = sum(dy); dgamma = sum(dy * xhat);
    # dx = g / s * (dy - mean(dy) - xhat * mean(dy * xhat))  (training)   or  g / s * dy (eval).
    st = _bn_stats(case, a, dtype)
    dy = _abs64(a["dy"])
    g, u, m = _abs64(a["gamma"]), st["u"], st["m"]
    dy_sum = dy.sum(axis=(0, 2, 3))
    dy_max = dy.max(axis=(0, 2, 3))
    d_dbeta = gamma(m, dtype) * dy_sum
    d_dgamma = gamma(m + 1, dtype) * dy_sum * st["xhat_max"] + dy_sum * st["d_xhat"]
    if case.training:
        dgamma_mean = dy_sum * st["xhat_max"] / m  # |mean(dy * xhat)| <= this
        inner_max = 2 * dy_max + st["xhat_max"] * dgamma_mean
        d_inner = (d_dbeta + st["xhat_max"] * d_dgamma) / m + st["d_xhat"] * dgamma_mean
        d_inner = d_inner + 3 * u * inner_max
    else:
        inner_max, d_inner = dy_max, 0.0
    dx = g / st["s"] * (d_inner + inner_max * (st["ds_rel"] + 2 * u))
    return {"dx": dx[None, :, None, None], "dgamma": d_dgamma, "dbeta": d_dbeta}


# --------------------------------------------------------------------------------------------
# comparison


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
