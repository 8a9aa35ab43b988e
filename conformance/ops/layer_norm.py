"""Layer normalisation over the trailing axes of (N, C), (N, C, L), (N, C, H, W) and
(N, C, D, H, W): layer_norm (the contract takes any x with at least one axis; the suite draws
the channels-first layouts, normalised over their last 1 to all axes)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

from ..cases import Case
from ..invalid_category import Broken, Ctx, InvalidCategory, has, normal
from ..rounding import abs64, gamma
from . import BenchCase, HandCase, OpRecord, draws
from . import normalisation as norm

ORDER = 41
RANKS = (0, 1, 2, 3)


def _as_tuple(normalized_shape: Any) -> tuple[int, ...]:
    """The contract's normalized_shape (an int or a tuple of ints) as a tuple."""
    if isinstance(normalized_shape, int | np.integer):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


@dataclass(frozen=True)
class LayerNormCase(Case):
    family = "layer_norm"
    differentiable = ("x", "gamma", "beta")
    backward_outputs = ("dx", "dgamma", "dbeta")
    positional: ClassVar[dict[str, tuple[str, ...]]] = {
        "forward": ("x", "normalized_shape"), "backward": ("dy", "x", "normalized_shape")}
    grad_defaults: ClassVar[dict[str, Any]] = {
        "gamma": (1.0, lambda a: _as_tuple(a["normalized_shape"])),
        "beta": (0.0, lambda a: _as_tuple(a["normalized_shape"]))}
    # x and dy take any ndim from 1 up (normalized_shape says how many trailing axes count)
    min_ndim: ClassVar[dict[str, int]] = {"x": 1, "dy": 1}
    shape: tuple[int, ...]
    normalized_shape: int | tuple[int, ...]  # as passed: an int or the trailing shape
    affine: bool = True  # False: gamma and beta None
    eps: float = 1e-5
    kind: str = "normal"

    @property
    def rank(self) -> int:
        return len(self.shape) - 2

    @property
    def normalized(self) -> tuple[int, ...]:
        return _as_tuple(self.normalized_shape)

    @property
    def groups(self) -> int:
        """Rows of the (R, m) view: one per index of the leading, not normalised, axes."""
        return math.prod(self.shape[:len(self.shape) - len(self.normalized)])

    def params(self) -> dict[str, Any]:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps}

    def fixed_ndim(self) -> dict[str, int]:
        """gamma and beta have shape normalized_shape: its length is their one valid ndim."""
        return {"gamma": len(self.normalized), "beta": len(self.normalized)}

    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.shape)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        a = {"x": norm.group_values(rng, self.shape, self.groups, self.kind)}
        if self.affine:
            a["gamma"] = rng.standard_normal(self.normalized)
            a["beta"] = rng.standard_normal(self.normalized)
        return a

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if direction == "forward":
            return {"x": a["x"], "normalized_shape": self.normalized_shape,
                    "gamma": a.get("gamma"), "beta": a.get("beta"), "eps": self.eps}
        return {"dy": a["dy"], "x": a["x"], "normalized_shape": self.normalized_shape,
                "gamma": a.get("gamma"), "eps": self.eps}


def sample(d: Any, rank: int | None = None, small: bool = False,
           kind: str | None = None, affine: bool | None = None) -> LayerNormCase:
    r = draws.rank_of(d, RANKS, rank)
    n, c = draws.batch_channels(d, small)
    shape = (n, c, *draws.sizes(d, r, small))
    axes = d.integer(1, len(shape), "normalised trailing axes")
    normalized: Any = shape[len(shape) - axes:]
    if axes == 1 and d.boolean("normalized_shape as an int"):
        normalized = normalized[0]
    # affine=True / False fixes it (e.g. for callers that break or compare gamma and beta)
    affine = d.boolean("gamma and beta given") if affine is None else affine
    eps = d.choice([1e-5, 1e-3, 0.1], "eps")
    kind = kind or d.choice(norm.KINDS, "values")
    return LayerNormCase(shape, normalized, affine, eps, kind)


def corners(case: LayerNormCase) -> list[str]:
    axes = len(case.normalized)
    out = [f"rank {case.rank}"]
    if axes == 1:
        out.append("the last axis only")
    if axes == len(case.shape) - 1:
        out.append("C and every spatial axis")
    if axes == len(case.shape):
        out.append("every axis")
    if isinstance(case.normalized_shape, int):
        out.append("normalized_shape as an int")
    if not case.affine:
        out.append("gamma and beta None")
    if case.kind in norm.KIND_CORNERS:
        out.append(norm.KIND_CORNERS[case.kind])
    n, c = case.shape[:2]
    if n > 1 and c > 1:
        out.append("N, C > 1")
    return out


CORNERS = ("rank 0", "rank 1", "rank 2", "rank 3", "the last axis only",
           "C and every spatial axis", "every axis", "normalized_shape as an int",
           "gamma and beta None", "small-variance groups", "large-mean groups", "N, C > 1")


# --------------------------------------------------------------------------------------------
# error model: normalisation.py's, per row of m = prod(normalized_shape) values, with gamma
# and beta per element of the row; dgamma and dbeta sum over the R rows.


def _rows(case: LayerNormCase, v: np.ndarray) -> np.ndarray:
    """An array of x's shape as the (R, m) rows."""
    return np.asarray(v, dtype=np.float64).reshape(case.groups, -1)


def _per_element(case: LayerNormCase, a: Mapping[str, np.ndarray], name: str,
                 absent: float) -> np.ndarray:
    """|gamma| or |beta| (normalized_shape) at every element of x, as rows."""
    v = abs64(a[name]) if name in a else np.full(case.normalized, absent)
    return _rows(case, np.broadcast_to(v, case.shape))


def forward_bounds(case: LayerNormCase, a: Mapping[str, np.ndarray],
                   dtype: Any) -> dict[str, Any]:
    st = norm.row_stats(_rows(case, a["x"]), case.eps, dtype)
    y = norm.y_bound(st, _per_element(case, a, "gamma", 1.0), _per_element(case, a, "beta", 0.0))
    return {"y": y.reshape(case.shape)}


def backward_bounds(case: LayerNormCase, a: Mapping[str, np.ndarray],
                    dtype: Any) -> dict[str, Any]:
    st = norm.row_stats(_rows(case, a["x"]), case.eps, dtype)
    dy = _rows(case, abs64(a["dy"]))
    dx = norm.dx_bound(st, dy * _per_element(case, a, "gamma", 1.0), True, dtype)
    rows = case.groups
    d_dgamma = norm.dgamma_terms(st, dy, rows, dtype).sum(axis=0).reshape(case.normalized)
    d_dbeta = gamma(rows, dtype) * dy.sum(axis=0).reshape(case.normalized)
    return {"dx": dx.reshape(case.shape), "dgamma": d_dgamma, "dbeta": d_dbeta}


def fd_step(case: LayerNormCase, name: str, value: np.ndarray) -> np.ndarray:
    if name == "x":
        # h scales with the row's spread so the h^2 term stays small relative to the
        # curvature (which grows like 1/sigma^3) while staying well above rounding.
        step = 1e-4 * np.broadcast_to(norm.spread(_rows(case, value), case.eps),
                                      (case.groups, value.size // case.groups))
        return step.reshape(value.shape)
    return np.full(value.shape, 1e-4)


FIXTURES: tuple[tuple[str, LayerNormCase], ...] = (
    ("layer_norm-last-axis", LayerNormCase((2, 3, 4, 5), 5)),
    ("layer_norm-last-axis-tuple", LayerNormCase((2, 3, 4, 5), (5,))),
    ("layer_norm-channels-and-spatial", LayerNormCase((2, 3, 3, 4), (3, 3, 4))),
    ("layer_norm-every-axis", LayerNormCase((2, 3, 2, 3), (2, 3, 2, 3))),
    ("layer_norm-no-affine", LayerNormCase((3, 2, 3, 3), (3, 3), affine=False)),
    ("layer_norm-small-variance", LayerNormCase((3, 4, 3, 3), (3, 3), kind="small_var")),
    ("layer_norm-large-mean", LayerNormCase((3, 4, 3, 3), (4, 3, 3), kind="large_mean")),
    ("layer_norm-eps0", LayerNormCase((2, 3, 2, 3), (2, 3), eps=0.0)),
    ("layer_norm-eps0.1", LayerNormCase((2, 3, 2, 3), 3, eps=0.1)),
    # (N, C), (N, C, L), (N, C, D, H, W)
    ("layer_norm0d-channels", LayerNormCase((4, 5), 5)),
    ("layer_norm1d-small-variance", LayerNormCase((3, 4, 5), (4, 5), kind="small_var")),
    ("layer_norm3d-spatial", LayerNormCase((2, 3, 2, 3, 2), (2, 3, 2))),
)


HAND_CASES: tuple[HandCase, ...] = (
    # Layer norm, x (2, 2, 2) over normalized_shape (2, 2), eps = 0 for exact numbers; gamma
    # [[2, -1], [1, 3]], beta [[0, 1], [-1, 0]], i.e. flattened gamma [2, -1, 1, 3], beta
    # [0, 1, -1, 0]:
    #   row 0 values [0, 2, 2, 8]: mean 3, var (9 + 1 + 1 + 25) / 4 = 9, s = 3,
    #     xhat [-1, -1/3, -1/3, 5/3]; y = [-2, 1/3 + 1, -1/3 - 1, 5] = [-2, 4/3, -4/3, 5]
    #   row 1 values [3, 1, 1, 3]: mean 2, var 1, xhat [1, -1, -1, 1]; y = [2, 2, -2, 3]
    # Backward, dy row 0 [1, 0, 0, -1], row 1 [0, 1, 0, 0]:
    #   dbeta = sum over rows of dy = [1, 1, 0, -1]
    #   dgamma = sum over rows of dy * xhat = [-1, 0, 0, -5/3] + [0, -1, 0, 0]
    #   row 0: g = dy * gamma = [2, 0, 0, -3], mean(g) = -1/4, mean(g * xhat) = (-2 - 5) / 4
    #     = -7/4; dx = (g + 1/4 + 7/4 xhat) / 3 = ([27, 3, 3, -33] + [-21, -7, -7, 35]) / 12 / 3
    #     = [1/6, -1/9, -1/9, 1/18]
    #   row 1: g = [0, -1, 0, 0], mean(g) = -1/4, mean(g * xhat) = 1/4;
    #     dx = g + 1/4 - xhat / 4 = [0, -1/2, 1/2, 0]
    #   (each row's dx sums to 0 and is orthogonal to its xhat)
    HandCase(
        "layer_norm_two_trailing_axes",
        LayerNormCase((2, 2, 2), (2, 2), eps=0.0),
        {"x": [[[0.0, 2], [2.0, 8]], [[3.0, 1], [1.0, 3]]],
         "gamma": [[2.0, -1.0], [1.0, 3.0]], "beta": [[0.0, 1.0], [-1.0, 0.0]],
         "dy": [[[1.0, 0], [0.0, -1]], [[0.0, 1], [0.0, 0]]]},
        {"y": [[[-2.0, 4 / 3], [-4 / 3, 5.0]], [[2.0, 2.0], [-2.0, 3.0]]]},
        {"dx": [[[1 / 6, -1 / 9], [-1 / 9, 1 / 18]], [[0.0, -0.5], [0.5, 0.0]]],
         "dgamma": [[-1.0, -1.0], [0.0, -5 / 3]], "dbeta": [[1.0, 1.0], [0.0, -1.0]]},
    ),
)


BENCH: tuple[BenchCase, ...] = (
    BenchCase("layernorm", "small", LayerNormCase((2, 3, 9, 9), (3, 9, 9))),
    BenchCase("layernorm", "medium", LayerNormCase((8, 16, 32, 32), (16, 32, 32))),
    BenchCase("layernorm", "large", LayerNormCase((32, 64, 56, 56), (64, 56, 56))),
    BenchCase("layernorm-last-axis", "medium", LayerNormCase((64, 128, 256), 256)),
    BenchCase("layernorm3d", "medium", LayerNormCase((4, 16, 16, 16, 16), (16, 16, 16))),
)


# ------------------------------------------------------------------------ invalid arguments
# This op's own invalid-argument categories (the generic ones: conformance.generic_categories).


def _ln_bad_normalized_shape(k: Ctx) -> Broken:
    """normalized_shape not x's trailing shape (one entry off, or one axis too many: longer
    than x), empty, or with an entry that is not an int (1.5, True, "2"). gamma and beta follow
    a new shape of ints, so that normalized_shape is the one thing broken."""
    a = k.args
    shape = list(_as_tuple(a["normalized_shape"]))
    x_shape = a["x"].shape
    way = k.draw(st.sampled_from(["not trailing", "longer than x", "empty", "not an int"]),
                 label="normalized_shape broken by")
    if way == "not trailing":
        axis = k.draw(st.integers(0, len(shape) - 1), label="entry")
        shape[axis] = k.draw(st.sampled_from([n for n in (shape[axis] - 1, shape[axis] + 1)
                                               if n >= 1]), label="size")
    elif way == "longer than x":
        shape = [k.draw(st.integers(1, 3), label="extra entry"), *x_shape]
    elif way == "empty":
        shape = []
    else:
        shape[k.draw(st.integers(0, len(shape) - 1), label="entry")] = k.draw(
            st.sampled_from([1.5, True, "2"]), label="bad entry")
    one_int = len(shape) == 1 and k.draw(st.booleans(), label="as a scalar")
    a["normalized_shape"] = shape[0] if one_int else k.container(shape)
    if all(type(n) is int for n in shape):
        for name in ("gamma", "beta"):
            if a.get(name) is not None:
                a[name] = normal(k.rng, shape, a[name].dtype)
    return ("normalized_shape",), "normalized_shape"


INVALID_CATEGORIES: tuple[InvalidCategory, ...] = (
    InvalidCategory("ln_bad_normalized_shape", "normalized_shape not x's trailing shape, longer "
                    "than x, empty or with an entry not an int (1.5, True, '2')",
                    has("normalized_shape"), _ln_bad_normalized_shape,
                    "ValueError naming normalized_shape"),
)


RECORD = OpRecord(
    invalid_categories=INVALID_CATEGORIES,
    name="layer_norm",
    ranks=RANKS,
    case_type=LayerNormCase,
    float_attributes=("eps",),
    functions=lambda r: ("layer_norm", "layer_norm_backward"),
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
