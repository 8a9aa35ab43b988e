"""Batch normalisation over (N, C), (N, C, L), (N, C, H, W) and (N, C, D, H, W): batch_norm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

from ..cases import Case
from ..invalid_category import DATA_ARRAYS, Broken, Ctx, InvalidCategory, fresh, has, normal
from ..rounding import abs64, gamma, unit_roundoff
from . import BenchCase, HandCase, OpRecord, draws

ORDER = 40
RANKS = (0, 1, 2, 3)


@dataclass(frozen=True)
class BatchNormCase(Case):
    family = "batch_norm"
    differentiable = ("x", "gamma", "beta")
    backward_outputs = ("dx", "dgamma", "dbeta")
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x", "gamma", "beta"), "backward": ("dy", "x", "gamma")}
    grad_defaults: ClassVar[dict[str, Any]] = {
        "gamma": (1.0, lambda a: (a["x"].shape[1],)), "beta": (0.0, lambda a: (a["x"].shape[1],))}
    shape: tuple[int, ...]
    training: bool = True
    running: bool = True
    momentum: float = 0.1
    eps: float = 1e-5
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    def params(self) -> dict[str, Any]:
        return {"training": self.training, "momentum": self.momentum, "eps": self.eps}

    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.shape)

    def outputs(self, direction: str) -> tuple[str, ...]:
        if direction == "forward":
            return ("y", "running_mean", "running_var") if self.training and self.running \
                else ("y",)
        return self.backward_outputs

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c = self.shape[1]
        x = rng.standard_normal(self.shape)
        per_channel = (1, c, *(1,) * self.rank)
        if self.kind == "small_var":
            # Offsets up to 8 and spreads from 1e-3 to 1; channel 0 has variance 1e-8 << eps,
            # so an implementation that drops eps (or uses E[x^2] - E[x]^2) is far off.
            spread = 10.0 ** rng.uniform(-3, 0, size=c)
            spread[0] = 1e-4
            x = (rng.uniform(-8, 8, size=c).reshape(per_channel)
                 + x * spread.reshape(per_channel))
        a = {"x": x, "gamma": rng.standard_normal(c), "beta": rng.standard_normal(c)}
        if self.running or not self.training:
            a["running_mean"] = rng.standard_normal(c)
            a["running_var"] = rng.uniform(0.5, 2.0, size=c)
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        running = {"running_mean": a.get("running_mean"), "running_var": a.get("running_var")}
        if direction == "forward":
            return {"x": a["x"], "gamma": a["gamma"], "beta": a["beta"], **running,
                    **self.params()}
        if self.training:
            running = {}
        return {"dy": a["dy"], "x": a["x"], "gamma": a["gamma"], "eps": self.eps, **running,
                "training": self.training}


def sample(d: Any, rank: int | None = None, small: bool = False,
           kind: str | None = None) -> BatchNormCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    training = d.boolean("training")
    running = d.boolean("running stats") or not training
    momentum = d.choice([0.1, 0.0, 1.0, 0.37], "momentum")
    eps = d.choice([1e-5, 1e-3, 0.1], "eps")
    kind = kind or d.choice(["normal", "small_var"], "values")
    return BatchNormCase((n, c, *size), training, running, momentum, eps, kind)


def corners(case: BatchNormCase) -> list[str]:
    out = [f"rank {case.rank}", "training" if case.training else "eval"]
    if case.training and case.running:
        out.append("running statistics updated")
    if case.kind == "small_var":
        out.append("small-variance channels")
    if case.momentum in (0.0, 1.0):
        out.append("momentum 0 or 1")
    n, c = case.shape[:2]
    if n > 1 and c > 1:
        out.append("N, C > 1")
    return out


CORNERS = ("rank 0", "rank 1", "rank 2", "rank 3", "training", "eval",
           "running statistics updated", "small-variance channels", "momentum 0 or 1",
           "N, C > 1")


# --------------------------------------------------------------------------------------------
# error model
#
# With m values per channel, d = x - mean, s = sqrt(var + eps), xhat = d / s:
#   mean:   |dmean| <= gamma(m) * max|x|                   (sum of m terms, / m)
#   d:      |dd|    <= |dmean| + u * (max|x| + |mean|)
#   var:    |dvar|  <= 2 |dd| * sqrt(var) + gamma(m + 2) * var      (mean of (d + dd)^2)
#   s:      |ds|/s  <= |dvar| / (2 (var + eps)) + 2u
#   xhat:   |dxhat| <= |dd| / s + max|xhat| * |ds| / s
#   y = xhat * g + beta: |dy| <= |g| |dxhat| + 2u (|g| max|xhat| + |beta|)
# In eval mode the statistics are given (exact): dmean = 0, dvar = 0.


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(i for i in range(x.ndim) if i != 1)


def _per_channel(case: BatchNormCase, v: np.ndarray) -> np.ndarray:
    return v.reshape(1, -1, *(1,) * case.rank)


def _stats(case: BatchNormCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    x = np.asarray(a["x"], dtype=np.float64)
    u = unit_roundoff(dtype)
    axes = _axes(x)
    m = x.size // x.shape[1]
    x_max = np.abs(x).max(axis=axes)
    if case.training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
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
    xhat_max = np.abs(x - _per_channel(case, mean)).max(axis=axes) / s
    ds_rel = d_var / (2 * s * s) + 2 * u
    d_xhat = d_d / s + xhat_max * ds_rel
    return {"u": u, "m": m, "mean": mean, "var": var, "s": s, "xhat_max": xhat_max,
            "d_mean": d_mean, "d_var": d_var, "ds_rel": ds_rel, "d_xhat": d_xhat}


def forward_bounds(case: BatchNormCase, a: Mapping[str, np.ndarray],
                   dtype: Any) -> dict[str, Any]:
    st = _stats(case, a, dtype)
    g, beta, u = abs64(a["gamma"]), abs64(a["beta"]), st["u"]
    y = g * st["d_xhat"] + 2 * u * (g * st["xhat_max"] + beta)
    out: dict[str, Any] = {"y": _per_channel(case, y)}
    if case.training and case.running:
        mom = case.momentum
        rm, rv = abs64(a["running_mean"]), abs64(a["running_var"])
        m = st["m"]
        out["running_mean"] = mom * st["d_mean"] + 3 * u * (rm + np.abs(st["mean"]))
        bessel = m / (m - 1)
        out["running_var"] = mom * st["d_var"] * bessel + 4 * u * (rv + st["var"] * bessel)
    return out


def backward_bounds(case: BatchNormCase, a: Mapping[str, np.ndarray],
                    dtype: Any) -> dict[str, Any]:
    # dbeta = sum(dy); dgamma = sum(dy * xhat);
    # dx = g / s * (dy - mean(dy) - xhat * mean(dy * xhat))  (training)   or  g / s * dy (eval).
    st = _stats(case, a, dtype)
    dy = abs64(a["dy"])
    g, u, m = abs64(a["gamma"]), st["u"], st["m"]
    axes = _axes(dy)
    dy_sum = dy.sum(axis=axes)
    dy_max = dy.max(axis=axes)
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
    return {"dx": _per_channel(case, dx), "dgamma": d_dgamma, "dbeta": d_dbeta}


def fd_step(case: BatchNormCase, name: str, value: np.ndarray) -> np.ndarray:
    if name == "x":
        # h scales with the channel's spread so the h^2 term stays small relative to the
        # curvature (which grows like 1/sigma^3) while staying well above rounding.
        spread = np.sqrt(value.var(axis=_axes(value)) + case.eps)
        return np.broadcast_to(1e-4 * _per_channel(case, spread), value.shape)
    return np.full(value.shape, 1e-4)


FIXTURES: tuple[tuple[str, BatchNormCase], ...] = (
    ("batch_norm-training-running", BatchNormCase((4, 3, 3, 2))),
    ("batch_norm-training-no-running", BatchNormCase((4, 3, 3, 2), running=False)),
    ("batch_norm-eval", BatchNormCase((3, 3, 2, 3), training=False)),
    ("batch_norm-eval-eps0", BatchNormCase((3, 3, 2, 3), training=False, eps=0.0)),
    ("batch_norm-small-variance", BatchNormCase((4, 3, 3, 3), kind="small_var")),
    ("batch_norm-eps0-training", BatchNormCase((3, 2, 3, 2), eps=0.0)),
    ("batch_norm-momentum1-eps1e-3", BatchNormCase((3, 2, 2, 3), momentum=1.0, eps=1e-3)),
    ("batch_norm-momentum0", BatchNormCase((3, 2, 2, 3), momentum=0.0)),
    ("batch_norm-single-sample", BatchNormCase((1, 3, 2, 3))),
    # (N, C), (N, C, L), (N, C, D, H, W)
    ("batch_norm0d-training-running", BatchNormCase((5, 3))),
    ("batch_norm1d-small-variance", BatchNormCase((3, 4, 5), kind="small_var")),
    ("batch_norm1d-eval", BatchNormCase((2, 3, 4), training=False)),
    ("batch_norm3d-training-running", BatchNormCase((2, 3, 2, 3, 2), momentum=0.37)),
)


HAND_CASES: tuple[HandCase, ...] = (
    # Batch norm, x (2, 2, 1, 2), eps = 0 for exact numbers, momentum 0.1, running (0, 1):
    #   channel 0 values [0, 2, 2, 8]: mean 3, var 9, xhat [-1, -1/3, -1/3, 5/3]
    #   channel 1 values [3, 1, 1, 3]: mean 2, var 1, xhat [1, -1, -1, 1]
    #   y = gamma * xhat + beta with gamma (2, 0.5), beta (1, -1)
    #   running_mean = 0.1 * (3, 2); running_var = 0.9 + 0.1 * (9, 1) * 4/3 = (2.1, 1.0333...)
    # Backward, dy channel 0 = [1, 0, 0, -1], channel 1 = [0, 1, 0, 0]:
    #   dbeta = (0, 1); dgamma = (-1 - 5/3, -1)
    #   dx0 = 2/3 * (dy + 2/3 xhat) = [2/9, -4/27, -4/27, 2/27]
    #   dx1 = 1/2 * (dy - 1/4 + xhat/4) = [0, 1/4, -1/4, 0]
    HandCase(
        "batch_norm_training_running_stats",
        BatchNormCase((2, 2, 1, 2), training=True, running=True, momentum=0.1, eps=0.0),
        {"x": [[[[0.0, 2]], [[3.0, 1]]], [[[2.0, 8]], [[1.0, 3]]]],
         "gamma": [2.0, 0.5], "beta": [1.0, -1.0],
         "running_mean": [0.0, 0.0], "running_var": [1.0, 1.0],
         "dy": [[[[1.0, 0]], [[0.0, 1]]], [[[0.0, -1]], [[0.0, 0]]]]},
        {"y": [[[[-1.0, 1 / 3]], [[-0.5, -1.5]]], [[[1 / 3, 13 / 3]], [[-1.5, -0.5]]]],
         "running_mean": [0.3, 0.2], "running_var": [2.1, 0.9 + 0.4 / 3]},
        {"dx": [[[[2 / 9, -4 / 27]], [[0.0, 0.25]]], [[[-4 / 27, 2 / 27]], [[-0.25, 0.0]]]],
         "dgamma": [-8 / 3, -1.0], "dbeta": [0.0, 1.0]},
    ),
    # Eval mode uses the running statistics (mean (1, -2), var (4, 0.25), eps 0):
    #   y = gamma * (x - rm) / sqrt(rv) + beta; dx = dy * gamma / sqrt(rv).
    HandCase(
        "batch_norm_eval_running_stats",
        BatchNormCase((1, 2, 1, 2), training=False, running=True, momentum=0.1, eps=0.0),
        {"x": [[[[3.0, -1]], [[-2.0, -1.5]]]], "gamma": [1.0, 2.0], "beta": [0.0, 1.0],
         "running_mean": [1.0, -2.0], "running_var": [4.0, 0.25],
         "dy": [[[[1.0, 2]], [[3.0, -1]]]]},
        {"y": [[[[1.0, -1]], [[1.0, 3]]]]},
        {"dx": [[[[0.5, 1]], [[12.0, -4]]]],
         "dgamma": [1 * 1 + 2 * -1, 3 * 0 + -1 * 1], "dbeta": [3.0, 2.0]},
    ),
    # (N, C) = (4, 1), eps 0, no running statistics: values [1, 3, 5, 7], mean 4, var 5,
    # xhat = [-3, -1, 1, 3] / sqrt(5); with gamma 2 and beta 1: y = 1 + 2 xhat.
    # Backward with dy = [1, 0, 0, 0]: dbeta = 1, dgamma = -3/sqrt(5),
    # dx = gamma / sqrt(5) * (dy - 1/4 - xhat * (-3/sqrt(5)) / 4)
    #    = 2/sqrt(5) * ([3/4, -1/4, -1/4, -1/4] + [-9, -3, 3, 9] / 20)
    #    = 2/sqrt(5) * [0.3, -0.4, -0.1, 0.2]
    HandCase(
        "batch_norm0d_training",
        BatchNormCase((4, 1), training=True, running=False, eps=0.0),
        {"x": [[1.0], [3.0], [5.0], [7.0]], "gamma": [2.0], "beta": [1.0],
         "dy": [[1.0], [0.0], [0.0], [0.0]]},
        {"y": [[1 - 6 / 5**0.5], [1 - 2 / 5**0.5], [1 + 2 / 5**0.5], [1 + 6 / 5**0.5]]},
        {"dx": [[0.6 / 5**0.5], [-0.8 / 5**0.5], [-0.2 / 5**0.5], [0.4 / 5**0.5]],
         "dgamma": [-3 / 5**0.5], "dbeta": [1.0]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("batchnorm", "small", BatchNormCase((2, 3, 9, 9), running=False)),
    BenchCase("batchnorm", "medium", BatchNormCase((8, 16, 32, 32), running=False)),
    BenchCase("batchnorm", "large", BatchNormCase((32, 64, 56, 56), running=False)),
    BenchCase("batchnorm1d", "medium", BatchNormCase((64, 256), running=False)),
    BenchCase("batchnorm3d", "medium", BatchNormCase((4, 16, 16, 16, 16), running=False)),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _bn_eval_without_running(k: Ctx) -> Broken:
    k.args.update(training=False, running_mean=None, running_var=None)
    return ("running_mean", "running_var", "training"), "running_mean"


def _bn_running_unpaired(k: Ctx) -> Broken:
    a = k.args
    if a.get("running_mean") is None:  # a case without them, or a training backward call
        c, dtype = a["x"].shape[1], a["x"].dtype
        a["running_mean"] = normal(k.rng, (c,), dtype)
        a["running_var"] = np.abs(normal(k.rng, (c,), dtype))
    dropped = k.draw(st.sampled_from(["running_mean", "running_var"]), label="dropped")
    a[dropped] = None
    kept = "running_var" if dropped == "running_mean" else "running_mean"
    return ("running_mean", "running_var"), kept


def _bn_one_value_per_channel(k: Ctx) -> Broken:
    k.args["training"] = True
    one = (slice(0, 1), slice(None)) + (slice(0, 1),) * k.rank
    for name in DATA_ARRAYS:
        if name in k.args:
            k.args[name] = fresh(k.args[name][one])
    return ("x", "training"), "x"


def _bn_scalar_out_of_range(k: Ctx) -> Broken:
    names = [n for n in ("eps", "momentum") if n in k.args]
    name = k.draw(st.sampled_from(names), label="scalar")
    bad = [-0.5, 1.5, 2.0] if name == "momentum" else [-1e-5, -0.1]
    k.args[name] = k.draw(st.sampled_from(bad), label=name)
    return (name,), name


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("bn_eval_without_running", "eval-mode batch norm without running statistics",
                    has("training"), _bn_eval_without_running,
                    "ValueError naming running_mean / running_var"),
    InvalidCategory("bn_running_unpaired", "only one of running_mean / running_var",
                    has("training"), _bn_running_unpaired,
                    "ValueError naming running_mean / running_var"),
    InvalidCategory("bn_one_value_per_channel", "training batch norm with N * prod(S) == 1",
                    has("training"), _bn_one_value_per_channel, "ValueError naming x / training"),
    InvalidCategory("bn_scalar_out_of_range", "momentum outside [0, 1] or eps < 0", has("eps"),
                    _bn_scalar_out_of_range, "ValueError naming momentum / eps"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="batch_norm",
    ranks=RANKS,
    case_type=BatchNormCase,
    float_attributes=("eps", "momentum"),
    functions=lambda r: ("batch_norm", "batch_norm_backward"),
    sample=sample,
    corners=corners,
    corner_labels=CORNERS,
    forward_bounds=forward_bounds,
    backward_bounds=backward_bounds,
    fd_step=fd_step,
    fd_smooth=True,
    fixtures=FIXTURES,
    hand_cases=HAND_CASES,
    bench=BENCH,
)
