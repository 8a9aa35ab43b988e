"""Instance normalisation over (N, C), (N, C, L), (N, C, H, W) and (N, C, D, H, W):
instance_norm (one value per instance, as (N, C) has, is valid in eval mode only)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

from ..cases import Case
from ..invalid_category import DATA_ARRAYS, Broken, Ctx, InvalidCategory, fresh, has, normal
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws
from . import normalisation as norm

ORDER = 43
RANKS = (0, 1, 2, 3)


@dataclass(frozen=True)
class InstanceNormCase(Case):
    family = "instance_norm"
    differentiable = ("x", "gamma", "beta")
    backward_outputs = ("dx", "dgamma", "dbeta")
    grad_defaults: ClassVar[dict[str, Any]] = {
        "gamma": (1.0, lambda a: (a["x"].shape[1],)), "beta": (0.0, lambda a: (a["x"].shape[1],))}
    shape: tuple[int, ...]
    training: bool = True
    running: bool = True
    momentum: float = 0.1
    eps: float = 1e-5
    affine: bool = True  # False: gamma and beta None
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    @property
    def groups(self) -> int:
        """Rows of the (N * C, m) view: one per instance."""
        return self.shape[0] * self.shape[1]

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
        a = {"x": norm.group_values(rng, self.shape, self.groups, self.kind)}
        if self.affine:
            a["gamma"], a["beta"] = rng.standard_normal(c), rng.standard_normal(c)
        if self.running or not self.training:
            a["running_mean"] = rng.standard_normal(c)
            a["running_var"] = rng.uniform(0.5, 2.0, size=c)
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        running = {"running_mean": a.get("running_mean"), "running_var": a.get("running_var")}
        if direction == "forward":
            return {"x": a["x"], "gamma": a.get("gamma"), "beta": a.get("beta"), **running,
                    **self.params()}
        if self.training:
            running = {}
        return {"dy": a["dy"], "x": a["x"], "gamma": a.get("gamma"), "eps": self.eps,
                **running, "training": self.training}


def sample(d: Any, rank: int | None = None, small: bool = False,
           kind: str | None = None, affine: bool | None = None) -> InstanceNormCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    size = draws.sizes(d, r, small)
    # Training needs more than one value per instance: (N, C), or every spatial size 1, is
    # eval only.
    training = d.boolean("training") and math.prod(size) > 1
    running = d.boolean("running stats") or not training
    momentum = d.choice([0.1, 0.0, 1.0, 0.37], "momentum")
    eps = d.choice([1e-5, 1e-3, 0.1], "eps")
    # affine=True / False fixes it (e.g. for callers that break or compare gamma and beta)
    affine = d.boolean("gamma and beta given") if affine is None else affine
    kind = kind or d.choice(norm.KINDS, "values")
    return InstanceNormCase((n, c, *size), training, running, momentum, eps, affine, kind)


def corners(case: InstanceNormCase) -> list[str]:
    out = [f"rank {case.rank}", "training" if case.training else "eval"]
    if case.training and case.running:
        out.append("running statistics updated")
    if case.momentum in (0.0, 1.0):
        out.append("momentum 0 or 1")
    if not case.affine:
        out.append("gamma and beta None")
    if case.kind in norm.KIND_CORNERS:
        out.append(norm.KIND_CORNERS[case.kind])
    n, c = case.shape[:2]
    if n > 1 and c > 1:
        out.append("N, C > 1")
    return out


CORNERS = ("rank 0", "rank 1", "rank 2", "rank 3", "training", "eval",
           "running statistics updated", "momentum 0 or 1", "gamma and beta None",
           "small-variance groups", "large-mean groups", "N, C > 1")


# --------------------------------------------------------------------------------------------
# error model: normalisation.py's, per instance (n, c), a row of m = prod(S) values, with
# gamma and beta per channel; in eval mode the running statistics are the (exact) statistics
# of every row of channel c. dgamma and dbeta sum N * prod(S) terms per channel.
#   running statistics: new = (1 - mom) * old + mom * mean_n(stat[n]), stat the instance's
#   mean or its unbiased variance var * m / (m - 1):
#     mean_n(stat): mean_n of the statistic's error + gamma(N) mean_n |stat| (the sum of N
#     terms, / N); then mom * that, and 3 roundings (1 - mom, the two products, the sum) of
#     terms as large as |old| and |stat| (4 for the variance: the Bessel factor too).


def _rows(case: InstanceNormCase, v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(case.groups, -1)


def _per_channel_rows(case: InstanceNormCase, v: np.ndarray) -> np.ndarray:
    """A (C,) vector at every instance: (N * C, 1)."""
    return np.broadcast_to(np.asarray(v, np.float64), case.shape[:2]).reshape(-1, 1)


def _stats(case: InstanceNormCase, a: Mapping[str, np.ndarray], dtype: Any) -> dict[str, Any]:
    rows = _rows(case, a["x"])
    if case.training:
        return norm.row_stats(rows, case.eps, dtype)
    return norm.row_stats(rows, case.eps, dtype, _per_channel_rows(case, a["running_mean"]),
                          _per_channel_rows(case, a["running_var"]))


def _gamma_beta(case: InstanceNormCase, a: Mapping[str, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
    c = case.shape[1]
    g = abs64(a["gamma"]) if "gamma" in a else np.ones(c)
    b = abs64(a["beta"]) if "beta" in a else np.zeros(c)
    return _per_channel_rows(case, g), _per_channel_rows(case, b)


def _by_instance(case: InstanceNormCase, v: np.ndarray) -> np.ndarray:
    """(N * C, 1) -> (N, C)."""
    return v.reshape(case.shape[:2])


def forward_bounds(case: InstanceNormCase, a: Mapping[str, np.ndarray],
                   dtype: Any) -> dict[str, Any]:
    st = _stats(case, a, dtype)
    g, b = _gamma_beta(case, a)
    y = np.broadcast_to(norm.y_bound(st, g, b), (case.groups, st["m"]))
    out: dict[str, Any] = {"y": y.reshape(case.shape)}
    if case.training and case.running:
        u, m, n = st["u"], st["m"], case.shape[0]
        mom = case.momentum
        rm, rv = abs64(a["running_mean"]), abs64(a["running_var"])
        mean = np.abs(_by_instance(case, st["mean"]))
        d_mean = _by_instance(case, st["d_mean"]).mean(axis=0) + gamma(n, dtype) * mean.mean(0)
        out["running_mean"] = mom * d_mean + 3 * u * (rm + mean.mean(axis=0))
        bessel = m / (m - 1)
        var = _by_instance(case, st["var"]) * bessel
        d_var = (_by_instance(case, st["d_var"]).mean(axis=0) * bessel
                 + gamma(n, dtype) * var.mean(axis=0))
        out["running_var"] = mom * d_var + 4 * u * (rv + var.mean(axis=0))
    return out


def _sum_but_channels(v: np.ndarray) -> np.ndarray:
    return v.sum(axis=(0, *range(2, v.ndim)))


def backward_bounds(case: InstanceNormCase, a: Mapping[str, np.ndarray],
                    dtype: Any) -> dict[str, Any]:
    st = _stats(case, a, dtype)
    g, _ = _gamma_beta(case, a)
    dy = _rows(case, abs64(a["dy"]))
    dx = norm.dx_bound(st, dy * g, case.training, dtype)
    terms = case.shape[0] * math.prod(case.shape[2:])  # per channel: N * prod(S)
    d_dgamma = _sum_but_channels(norm.dgamma_terms(st, dy, terms, dtype).reshape(case.shape))
    d_dbeta = gamma(terms, dtype) * _sum_but_channels(abs64(a["dy"]))
    return {"dx": dx.reshape(case.shape), "dgamma": d_dgamma, "dbeta": d_dbeta}


def fd_step(case: InstanceNormCase, name: str, value: np.ndarray) -> np.ndarray:
    if name == "x":
        # h scales with the instance's spread so the h^2 term stays small relative to the
        # curvature (which grows like 1/sigma^3) while staying well above rounding.
        step = 1e-4 * np.broadcast_to(norm.spread(_rows(case, value), case.eps),
                                      (case.groups, value.size // case.groups))
        return step.reshape(value.shape)
    return np.full(value.shape, 1e-4)


FIXTURES: tuple[tuple[str, InstanceNormCase], ...] = (
    ("instance_norm-training-running", InstanceNormCase((3, 3, 3, 2))),
    ("instance_norm-training-no-running", InstanceNormCase((3, 3, 3, 2), running=False)),
    ("instance_norm-eval", InstanceNormCase((2, 3, 2, 3), training=False)),
    ("instance_norm-no-affine", InstanceNormCase((2, 3, 3, 3), affine=False)),
    ("instance_norm-small-variance", InstanceNormCase((2, 4, 3, 3), kind="small_var")),
    ("instance_norm-large-mean", InstanceNormCase((2, 4, 3, 3), kind="large_mean")),
    ("instance_norm-eps0-training", InstanceNormCase((2, 2, 3, 2), eps=0.0)),
    ("instance_norm-momentum1-eps1e-3", InstanceNormCase((3, 2, 2, 3), momentum=1.0,
                                                         eps=1e-3)),
    ("instance_norm-momentum0", InstanceNormCase((3, 2, 2, 3), momentum=0.0)),
    # (N, C) (eval only), (N, C, L), (N, C, D, H, W)
    ("instance_norm0d-eval", InstanceNormCase((4, 3), training=False)),
    ("instance_norm1d-small-variance", InstanceNormCase((3, 4, 5), kind="small_var")),
    ("instance_norm1d-two-values", InstanceNormCase((3, 2, 2), momentum=0.37)),
    ("instance_norm3d-training-running", InstanceNormCase((2, 3, 2, 3, 2), momentum=0.37)),
)


HAND_CASES: tuple[HandCase, ...] = (
    # Instance norm, x (2, 1, 4), eps = 0 for exact numbers, momentum 0.1, running (0, 1):
    #   instance (0, 0) values [0, 2, 2, 8]: mean 3, var 9 (unbiased 12), s = 3,
    #     xhat [-1, -1/3, -1/3, 5/3]
    #   instance (1, 0) values [3, 1, 1, 3]: mean 2, var 1 (unbiased 4/3), xhat [1, -1, -1, 1]
    #   y = 2 xhat + 1: [-1, 1/3, 1/3, 13/3] and [3, -1, -1, 3]
    #   running_mean = 0.9 * 0 + 0.1 * (3 + 2) / 2 = 0.25
    #   running_var = 0.9 * 1 + 0.1 * (12 + 4/3) / 2 = 0.9 + 2/3
    # Backward, dy [1, 0, 0, -1] and [0, 1, 0, 0]:
    #   dbeta = 1 - 1 + 1 = 1; dgamma = (-1 - 5/3) + (-1) = -11/3
    #   instance 0: mean(dy) = 0, mean(dy xhat) = -8/3 / 4 = -2/3;
    #     dx = 2/3 (dy + 2/3 xhat) = 2/3 [1/3, -2/9, -2/9, 1/9] = [2/9, -4/27, -4/27, 2/27]
    #   instance 1: mean(dy) = 1/4, mean(dy xhat) = -1/4;
    #     dx = 2 (dy - 1/4 + xhat / 4) = 2 [0, 1/2, -1/2, 0] = [0, 1, -1, 0]
    HandCase(
        "instance_norm_training_running_stats",
        InstanceNormCase((2, 1, 4), training=True, running=True, momentum=0.1, eps=0.0),
        {"x": [[[0.0, 2, 2, 8]], [[3.0, 1, 1, 3]]], "gamma": [2.0], "beta": [1.0],
         "running_mean": [0.0], "running_var": [1.0],
         "dy": [[[1.0, 0, 0, -1]], [[0.0, 1, 0, 0]]]},
        {"y": [[[-1.0, 1 / 3, 1 / 3, 13 / 3]], [[3.0, -1.0, -1.0, 3.0]]],
         "running_mean": [0.25], "running_var": [0.9 + 2 / 3]},
        {"dx": [[[2 / 9, -4 / 27, -4 / 27, 2 / 27]], [[0.0, 1.0, -1.0, 0.0]]],
         "dgamma": [-11 / 3], "dbeta": [1.0]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("instancenorm", "small", InstanceNormCase((2, 3, 9, 9), running=False)),
    BenchCase("instancenorm", "medium", InstanceNormCase((8, 16, 32, 32), running=False)),
    BenchCase("instancenorm", "large", InstanceNormCase((32, 64, 56, 56), running=False)),
    BenchCase("instancenorm1d", "medium", InstanceNormCase((64, 256, 16), running=False)),
    BenchCase("instancenorm3d", "medium", InstanceNormCase((4, 16, 16, 16, 16),
                                                           running=False)),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _in_one_value_per_instance(k: Ctx) -> Broken:
    """Training with one value per instance, prod(S) = 1, and N > 1 (so that the batch holds
    more than one value per channel: batch norm's statistics would exist, instance norm's do
    not)."""
    k.args["training"] = True
    one = (slice(None), slice(None)) + (slice(0, 1),) * k.rank
    extra = k.draw(st.integers(1, 2), label="more samples") if k.args["x"].shape[0] == 1 else 0
    for name in DATA_ARRAYS:
        if name in k.args:
            v = fresh(k.args[name][one])
            k.args[name] = np.concatenate([v, normal(k.rng, (extra, *v.shape[1:]), v.dtype)])
    return ("x", "training"), "x"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("in_one_value_per_instance", "training instance norm with prod(S) == 1 and "
                    "N > 1", has("training"), _in_one_value_per_instance,
                    "ValueError naming x / training"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="instance_norm",
    ranks=RANKS,
    case_type=InstanceNormCase,
    float_attributes=("eps", "momentum"),
    functions=lambda r: ("instance_norm", "instance_norm_backward"),
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
