"""Group normalisation over (N, C), (N, C, L), (N, C, H, W) and (N, C, D, H, W): group_norm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

from ..cases import Case
from ..invalid_category import Broken, Ctx, InvalidCategory, has
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws
from . import normalisation as norm

ORDER = 42
RANKS = (0, 1, 2, 3)


@dataclass(frozen=True)
class GroupNormCase(Case):
    family = "group_norm"
    differentiable = ("x", "gamma", "beta")
    backward_outputs = ("dx", "dgamma", "dbeta")
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x", "num_groups"), "backward": ("dy", "x", "num_groups")}
    grad_defaults: ClassVar[dict[str, Any]] = {
        "gamma": (1.0, lambda a: (a["x"].shape[1],)), "beta": (0.0, lambda a: (a["x"].shape[1],))}
    shape: tuple[int, ...]
    num_groups: int
    affine: bool = True  # False: gamma and beta None
    eps: float = 1e-5
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    @property
    def groups(self) -> int:
        """Rows of the (N * G, m) view: one per sample and group."""
        return self.shape[0] * self.num_groups

    def params(self) -> dict[str, Any]:
        return {"num_groups": self.num_groups, "eps": self.eps}

    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.shape)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c = self.shape[1]
        a = {"x": norm.group_values(rng, self.shape, self.groups, self.kind)}
        if self.affine:
            a["gamma"], a["beta"] = rng.standard_normal(c), rng.standard_normal(c)
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], "num_groups": self.num_groups, "gamma": a.get("gamma"),
                    "beta": a.get("beta"), "eps": self.eps}
        return {"dy": a["dy"], "x": a["x"], "num_groups": self.num_groups,
                "gamma": a.get("gamma"), "eps": self.eps}


def sample(d: Any, rank: int | None = None, small: bool = False,
           kind: str | None = None, affine: bool | None = None) -> GroupNormCase:
    r = draws.rank_of(d, RANKS, rank)
    n = d.integer(2, 3, "N")
    # The groups regime first, so that one group, C groups (instance norm's groups) and
    # 1 < G < C are each a third of the draws; C > 1 always.
    regime = d.choice(["one group", "C groups", "between"], "groups regime")
    if regime == "one group":
        num_groups, per_group = 1, d.integer(2, 3 if small else 5, "channels per group")
    elif regime == "C groups":
        num_groups, per_group = d.integer(2, 3 if small else 5, "num_groups"), 1
    else:
        num_groups = d.integer(2, 3, "num_groups")
        per_group = d.integer(2, 2 if small else 3, "channels per group")
    size = draws.sizes(d, r, small)
    # affine=True / False fixes it (e.g. for callers that break or compare gamma and beta)
    affine = d.boolean("gamma and beta given") if affine is None else affine
    eps = d.choice([1e-5, 1e-3, 0.1], "eps")
    kind = kind or d.choice(norm.KINDS, "values")
    return GroupNormCase((n, num_groups * per_group, *size), num_groups, affine, eps, kind)


def corners(case: GroupNormCase) -> list[str]:
    c = case.shape[1]
    out = [f"rank {case.rank}"]
    if case.num_groups == 1:
        out.append("num_groups 1")
    elif case.num_groups == c:
        out.append("num_groups C")
    else:
        out.append("1 < num_groups < C")
    if c // case.num_groups * int(np.prod(case.shape[2:])) == 1:
        out.append("one value per group")
    if not case.affine:
        out.append("gamma and beta None")
    if case.kind in norm.KIND_CORNERS:
        out.append(norm.KIND_CORNERS[case.kind])
    n = case.shape[0]
    if n > 1 and c > 1:
        out.append("N, C > 1")
    return out


CORNERS = ("rank 0", "rank 1", "rank 2", "rank 3", "num_groups 1", "num_groups C",
           "1 < num_groups < C", "one value per group", "gamma and beta None",
           "small-variance groups", "large-mean groups", "N, C > 1")


# --------------------------------------------------------------------------------------------
# error model: normalisation.py's, per (sample, group) row of m = C / G * prod(S) values, with
# gamma and beta per channel (so per element of a row); dgamma and dbeta sum N * prod(S) terms.


def _rows(case: GroupNormCase, v: np.ndarray) -> np.ndarray:
    """An array of x's shape as the (N * G, m) rows."""
    return np.asarray(v, dtype=np.float64).reshape(case.groups, -1)


def _per_element(case: GroupNormCase, a: Mapping[str, np.ndarray], name: str,
                 absent: float) -> np.ndarray:
    """|gamma| or |beta| (C,) at every element of x, as rows (``absent`` when None)."""
    v = abs64(a[name]) if name in a else np.full(case.shape[1], absent)
    return _rows(case, np.broadcast_to(v.reshape(1, -1, *(1,) * case.rank), case.shape))


def _sum_but_channels(v: np.ndarray) -> np.ndarray:
    return v.sum(axis=(0, *range(2, v.ndim)))


def forward_bounds(case: GroupNormCase, a: Mapping[str, np.ndarray],
                   dtype: Any) -> dict[str, Any]:
    st = norm.row_stats(_rows(case, a["x"]), case.eps, dtype)
    y = norm.y_bound(st, _per_element(case, a, "gamma", 1.0), _per_element(case, a, "beta", 0.0))
    return {"y": y.reshape(case.shape)}


def backward_bounds(case: GroupNormCase, a: Mapping[str, np.ndarray],
                    dtype: Any) -> dict[str, Any]:
    st = norm.row_stats(_rows(case, a["x"]), case.eps, dtype)
    dy = _rows(case, abs64(a["dy"]))
    dx = norm.dx_bound(st, dy * _per_element(case, a, "gamma", 1.0), True, dtype)
    terms = case.shape[0] * int(np.prod(case.shape[2:]))  # per channel: N * prod(S)
    d_dgamma = _sum_but_channels(norm.dgamma_terms(st, dy, terms, dtype).reshape(case.shape))
    d_dbeta = gamma(terms, dtype) * _sum_but_channels(abs64(a["dy"]))
    return {"dx": dx.reshape(case.shape), "dgamma": d_dgamma, "dbeta": d_dbeta}


def fd_step(case: GroupNormCase, name: str, value: np.ndarray) -> np.ndarray:
    if name == "x":
        # h scales with the group's spread so the h^2 term stays small relative to the
        # curvature (which grows like 1/sigma^3) while staying well above rounding.
        step = 1e-4 * np.broadcast_to(norm.spread(_rows(case, value), case.eps),
                                      (case.groups, value.size // case.groups))
        return step.reshape(value.shape)
    return np.full(value.shape, 1e-4)


FIXTURES: tuple[tuple[str, GroupNormCase], ...] = (
    ("group_norm-two-groups", GroupNormCase((3, 4, 3, 2), 2)),
    ("group_norm-one-group", GroupNormCase((2, 3, 3, 3), 1)),
    ("group_norm-groups-equal-channels", GroupNormCase((2, 3, 2, 3), 3)),
    ("group_norm-no-affine", GroupNormCase((2, 4, 3, 3), 2, affine=False)),
    ("group_norm-small-variance", GroupNormCase((2, 6, 3, 3), 3, kind="small_var")),
    ("group_norm-large-mean", GroupNormCase((2, 6, 3, 3), 2, kind="large_mean")),
    ("group_norm-eps0", GroupNormCase((2, 4, 2, 3), 2, eps=0.0)),
    ("group_norm-eps0.1", GroupNormCase((2, 4, 2, 3), 4, eps=0.1)),
    # (N, C), (N, C, L), (N, C, D, H, W)
    ("group_norm0d-two-groups", GroupNormCase((3, 4), 2)),
    ("group_norm0d-one-value-per-group", GroupNormCase((3, 4), 4)),
    ("group_norm1d-small-variance", GroupNormCase((3, 4, 5), 2, kind="small_var")),
    ("group_norm3d-three-groups", GroupNormCase((2, 6, 2, 3, 2), 3)),
)


HAND_CASES: tuple[HandCase, ...] = (
    # Group norm, x (1, 4, 2), num_groups 2, eps = 0 for exact numbers:
    #   group 0 = channels 0, 1, values [0, 2, 2, 8]: mean 3, var (9 + 1 + 1 + 25) / 4 = 9,
    #     s = 3, xhat [-1, -1/3, -1/3, 5/3]
    #   group 1 = channels 2, 3, values [3, 1, 1, 3]: mean 2, var 1, xhat [1, -1, -1, 1]
    #   gamma (2, 1, 3, -1), beta (0, 1, 0, 1), y = gamma[c] * xhat + beta[c]:
    #     ch0 2 * [-1, -1/3] = [-2, -2/3]       ch1 [-1/3, 5/3] + 1 = [2/3, 8/3]
    #     ch2 3 * [1, -1] = [3, -3]             ch3 -[-1, 1] + 1 = [2, 0]
    # Backward, dy ch0 [1, 0], ch1 [0, -1], ch2 [0, 1], ch3 [1, 0]:
    #   dbeta = sum(dy) per channel = (1, -1, 1, 1)
    #   dgamma = sum(dy * xhat) per channel = (-1, -5/3, -1, -1)
    #   group 0: g = dy * gamma = [2, 0, 0, -1], mean(g) = 1/4, mean(g * xhat) =
    #     (-2 - 5/3) / 4 = -11/12; dx = (g - 1/4 + 11/12 xhat) / 3
    #     = ([63, -9, -9, -45] + [-33, -11, -11, 55]) / 36 / 3 = [5/18, -5/27, -5/27, 5/54]
    #   group 1: g = [0, 3, -1, 0], mean(g) = 1/2, mean(g * xhat) = (-3 + 1) / 4 = -1/2;
    #     dx = g - 1/2 + xhat / 2 = [0, 2, -2, 0]
    #   (each group's dx sums to 0 and is orthogonal to its xhat)
    HandCase(
        "group_norm_two_groups",
        GroupNormCase((1, 4, 2), 2, eps=0.0),
        {"x": [[[0.0, 2], [2.0, 8], [3.0, 1], [1.0, 3]]],
         "gamma": [2.0, 1.0, 3.0, -1.0], "beta": [0.0, 1.0, 0.0, 1.0],
         "dy": [[[1.0, 0], [0.0, -1], [0.0, 1], [1.0, 0]]]},
        {"y": [[[-2.0, -2 / 3], [2 / 3, 8 / 3], [3.0, -3.0], [2.0, 0.0]]]},
        {"dx": [[[5 / 18, -5 / 27], [-5 / 27, 5 / 54], [0.0, 2.0], [-2.0, 0.0]]],
         "dgamma": [-1.0, -5 / 3, -1.0, -1.0], "dbeta": [1.0, -1.0, 1.0, 1.0]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("groupnorm", "small", GroupNormCase((2, 4, 9, 9), 2)),
    BenchCase("groupnorm", "medium", GroupNormCase((8, 32, 32, 32), 8)),
    BenchCase("groupnorm", "large", GroupNormCase((32, 64, 56, 56), 32)),
    BenchCase("groupnorm1d", "medium", GroupNormCase((64, 256, 16), 32)),
    BenchCase("groupnorm3d", "medium", GroupNormCase((4, 16, 16, 16, 16), 4)),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _gn_bad_num_groups(k: Ctx) -> Broken:
    """num_groups not dividing C, <= 0, a float (also one of a valid value, 2.0) or a bool
    (True, which would be 1 group)."""
    c = k.args["x"].shape[1]
    way = k.draw(st.sampled_from(["not dividing", "nonpositive", "float", "bool"]),
                 label="num_groups broken by")
    if way == "not dividing":
        bad: Any = k.draw(st.sampled_from([g for g in range(2, c + 2) if c % g]),
                          label="num_groups")
    elif way == "nonpositive":
        bad = k.draw(st.sampled_from([0, -1, -2]), label="num_groups")
    elif way == "float":
        bad = k.draw(st.sampled_from([float(k.args["num_groups"]), 1.5]), label="num_groups")
    else:
        bad = k.draw(st.sampled_from([True, False]), label="num_groups")
    k.args["num_groups"] = bad
    return ("num_groups",), "num_groups"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("gn_bad_num_groups", "num_groups not dividing C, <= 0, a float or a bool",
                    has("num_groups"), _gn_bad_num_groups, "ValueError naming num_groups"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="group_norm",
    ranks=RANKS,
    case_type=GroupNormCase,
    float_attributes=("eps",),
    functions=lambda r: ("group_norm", "group_norm_backward"),
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
