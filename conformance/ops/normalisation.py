"""Shared by the records of the per-sample normalisations (layer, group and instance norm): the
value kinds drawn per normalisation group and the error model of normalising groups of m values.
Nothing here names an op; no RECORD (it is not an op record).

Each of these ops normalises contiguous blocks of x in C order: x.reshape(R, m) holds one
normalisation group per row (layer norm: the rows over the leading axes; group norm: (N * G)
rows; instance norm: (N * C) rows). Every function below works on that (R, m) view; a record
reshapes its per-element gamma and beta (and dy) the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tolerance import gamma, unit_roundoff

# How x is drawn, group by group:
#   normal      standard normal
#   small_var   offsets up to 8 and spreads from 1e-3 to 1, and group 0 with spread 1e-4
#               (variance 1e-8 << eps): dropping eps, or E[x^2] - E[x]^2, is far off
#   large_mean  offsets of magnitude 16 to 50 with spreads 0.5 to 2: the mean dominates the
#               values (a one-pass variance loses digits), while float32 keeps enough of them
#               for a 5 % perturbation to stand out of the bound (test_meta)
KINDS = ("normal", "small_var", "large_mean")
KIND_CORNERS = {"small_var": "small-variance groups", "large_mean": "large-mean groups"}


def group_values(rng: np.random.Generator, shape: tuple[int, ...], groups: int,
                 kind: str) -> np.ndarray:
    """x of ``shape`` (float64) whose normalisation groups, x.reshape(groups, -1), are drawn by
    ``kind`` (see KINDS)."""
    x = rng.standard_normal(shape).reshape(groups, -1)
    if kind == "small_var":
        spread = 10.0 ** rng.uniform(-3, 0, size=groups)
        spread[0] = 1e-4
        x = rng.uniform(-8, 8, size=(groups, 1)) + x * spread[:, None]
    elif kind == "large_mean":
        offset = rng.choice([-1.0, 1.0], size=groups) * 10.0 ** rng.uniform(1.2, 1.7, groups)
        x = offset[:, None] + x * rng.uniform(0.5, 2.0, size=(groups, 1))
    return x.reshape(shape)


def spread(rows: np.ndarray, eps: float) -> np.ndarray:
    """sqrt(var + eps) per row, (R, 1): the scale of a group, for finite-difference steps."""
    return np.sqrt(np.asarray(rows, dtype=np.float64).var(axis=1, keepdims=True) + eps)


# --------------------------------------------------------------------------------------------
# error model
#
# Per row of m values, d = x - mean, s = sqrt(var + eps), xhat = d / s (batch norm's model,
# per normalisation group instead of per channel):
#   mean:   |dmean| <= gamma(m) * max|x|                   (a sum of m terms, / m)
#   d:      |dd|    <= |dmean| + u * (max|x| + |mean|)      (the subtraction)
#   var:    |dvar|  <= 2 |dd| * sqrt(var) + gamma(m + 2) * var
#                      (mean of (d + dd)^2: the cross term 2 d dd averages to at most
#                      2 |dd| mean|d| <= 2 |dd| sqrt(var); m + 2 roundings: square, sum, / m)
#   s:      |ds|/s  <= |dvar| / (2 (var + eps)) + 2u        (the sqrt and the reciprocal)
#   xhat:   |dxhat| <= |dd| / s + max|xhat| * |ds| / s
# Given statistics (eval mode: the running ones) are exact: dmean = 0, dvar = 0.


def row_stats(rows: np.ndarray, eps: float, dtype: Any, mean: np.ndarray | None = None,
              var: np.ndarray | None = None) -> dict[str, Any]:
    """The model's magnitudes per row, each (R, 1): the statistics are the rows' own (biased
    variance) unless ``mean`` and ``var`` (R,) are given."""
    x = np.asarray(rows, dtype=np.float64)
    u = unit_roundoff(dtype)
    m = x.shape[1]
    x_max = np.abs(x).max(axis=1, keepdims=True)
    if mean is None:
        mean = x.mean(axis=1, keepdims=True)
        var = x.var(axis=1, keepdims=True)
        d_mean = gamma(m, dtype) * x_max
        d_d = d_mean + u * (x_max + np.abs(mean))
        d_var = 2 * d_d * np.sqrt(var) + gamma(m + 2, dtype) * var
    else:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1, 1)
        var = np.asarray(var, dtype=np.float64).reshape(-1, 1)
        d_mean = np.zeros_like(mean)
        d_d = u * (x_max + np.abs(mean))
        d_var = np.zeros_like(var)
    s = np.sqrt(var + eps)
    xhat_max = np.abs(x - mean).max(axis=1, keepdims=True) / s
    ds_rel = d_var / (2 * s * s) + 2 * u
    d_xhat = d_d / s + xhat_max * ds_rel
    return {"u": u, "m": m, "x_max": x_max, "mean": mean, "var": var, "s": s,
            "xhat_max": xhat_max, "d_mean": d_mean, "d_var": d_var, "ds_rel": ds_rel,
            "d_xhat": d_xhat}


def y_bound(st: dict[str, Any], g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bound on y = xhat * gamma + beta per element, (R, m); g, b: |gamma|, |beta| per element.

    An implementation may fold y into x * scale + (beta - mean * scale), scale = gamma / s (as
    torch's kernels do): its three roundings of terms as large as (|x| + |mean|) |gamma| / s
    (scale, x * scale, mean * scale) cancel no better than the subtraction x - mean, hence the
    3u (max|x| + |mean|) / s besides dxhat; then the product and the sum, 3u (|g| max|xhat| +
    |beta|) (the multiply by gamma, the add of beta, and xhat's own product d * (1 / s))."""
    u = st["u"]
    fold = 3 * u * (st["x_max"] + np.abs(st["mean"])) / st["s"]
    return g * (st["d_xhat"] + fold) + 3 * u * (g * st["xhat_max"] + b)


def dx_bound(st: dict[str, Any], dy_gamma: np.ndarray, training: bool, dtype: Any) -> np.ndarray:
    """Bound on dx per element, (R, m); dy_gamma: |dy * gamma| per element, (R, m).

    dx = (g - mean(g) - xhat * mean(g * xhat)) / s with g = dy * gamma (training), g / s (given
    statistics). With G = sum|g| and max|g| per row:
      mean(g):        gamma(m + 1) G / m              (m terms; the rounding of dy * gamma)
      mean(g * xhat): (gamma(m + 2) G max|xhat| + G |dxhat|) / m,  |mean(g * xhat)| <= G
                      max|xhat| / m
      bracket:        |.| <= 2 max|g| + max|xhat| |mean(g * xhat)|; its error the terms' errors
                      plus 3u of its size (two subtractions, one product) and u max|g|
      dx:             (error of the bracket + |bracket| (|ds| / s + 2u)) / s
    """
    u, m = st["u"], st["m"]
    g_sum = dy_gamma.sum(axis=1, keepdims=True)
    g_max = dy_gamma.max(axis=1, keepdims=True)
    if training:
        gx_mean = g_sum * st["xhat_max"] / m
        d_mean_g = gamma(m + 1, dtype) * g_sum / m
        d_mean_gx = (gamma(m + 2, dtype) * g_sum * st["xhat_max"] + g_sum * st["d_xhat"]) / m
        bracket = 2 * g_max + st["xhat_max"] * gx_mean
        d_bracket = (u * g_max + d_mean_g + st["xhat_max"] * d_mean_gx
                     + st["d_xhat"] * gx_mean + 3 * u * bracket)
    else:
        bracket, d_bracket = g_max, u * g_max
    dx = (d_bracket + bracket * (st["ds_rel"] + 2 * u)) / st["s"]
    return np.broadcast_to(dx, dy_gamma.shape)


def dgamma_terms(st: dict[str, Any], dy: np.ndarray, terms: int, dtype: Any) -> np.ndarray:
    """Per element, (R, m), the error dgamma = sum(dy * xhat) takes from it when summed over
    ``terms`` elements: gamma(terms + 1) |dy| max|xhat| (the sum and the product) plus
    |dy| |dxhat|; a record sums these over its dgamma's axes."""
    return dy * (gamma(terms + 1, dtype) * st["xhat_max"] + st["d_xhat"])
