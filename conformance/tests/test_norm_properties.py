"""Oracle-free properties of the per-sample normalisations (layer, group and instance norm).

Each normalisation group (a row of the records' (R, m) view, ``case.groups`` rows) of y has
mean 0 and variance var / (var + eps); y is invariant to a per-group shift of x, and to a
positive per-group scale when eps = 0; group norm with C groups is instance norm, layer norm
over (C, *S) is group norm with one group; dx sums to zero over each group and
<dx, x - mean> = eps / (var + eps) * sum(dy * xhat) (0 when eps = 0: dx is orthogonal to the
constants and to xhat). Tolerances are the records' error bounds (tolerance module), and the
float64 rounding of the checks' own sums.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..comparison import compare
from ..harness import context
from ..ops import normalisation as norm
from ..ops import record
from ..ops.group_norm import GroupNormCase
from ..ops.layer_norm import LayerNormCase
from ..profiles import examples
from ..sampler import DTYPES, corner_frequencies, sample, seeds, strategy
from .test_meta import MIN_CORNER_FREQUENCY

LAYER, GROUP, INSTANCE = record("layer_norm"), record("group_norm"), record("instance_norm")
NORMS = (LAYER, GROUP, INSTANCE)
F64 = np.float64


def _ranks(*records: Any, least: int = 0) -> list:
    return [pytest.param(r, k, id=r.label(k)) for r in records for k in r.ranks if k >= least]


# Instance norm normalises by its own statistics in training only, which needs more than one
# value per instance: rank >= 1 (and not every spatial size 1, assumed away).
OWN_STATISTICS = _ranks(LAYER, GROUP) + _ranks(INSTANCE, least=1)


def _own_statistics(case: Any, **changes: Any) -> Any:
    """The case normalising by its own statistics (instance norm: training, no running
    statistics), with ``changes``."""
    if hasattr(case, "training"):
        assume(math.prod(case.shape[2:]) > 1)
        changes = {"training": True, "running": False, **changes}
    return dataclasses.replace(case, **changes)


def _rows(case: Any, v: Any) -> np.ndarray:
    """An array of x's shape as the case's (R, m) rows of normalisation groups, float64."""
    return np.broadcast_to(np.asarray(v, dtype=F64), case.shape).reshape(case.groups, -1)


@pytest.mark.parametrize(("record", "rank"), OWN_STATISTICS)
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_each_group_has_mean_0_and_variance_var_over_var_plus_eps(record, rank, data, seed,
                                                                   dtype, impl, impl_name_opt):
    """gamma None: per group, mean(y) = 0 and var(y) = var(x) / (var(x) + eps).

    y = y* + e with |e| <= delta (the forward bound), y* exact: |mean(y)| <= mean(delta);
    var(y) - var(y*) = mean(2 (y* - mean y*)(e - mean e) + (e - mean e)^2), at most
    4 max(delta) mean|y - mean y| + 4 max(delta)^2 (to first order in delta); the float64
    sums add gamma(m) mean|y| and gamma(m + 2) var(y); var(x) / (var(x) + eps) computed in
    float64 errs by eps |dvar| / (var + eps)^2 (the variance's float64 error, records' model).
    """
    case = _own_statistics(data.draw(strategy(record, rank), label="case"), affine=False)
    a = case.arrays(dtype, seed)
    where = context(case, dtype, seed, impl_name_opt, "forward")
    y = _rows(case, case.forward(impl, a)["y"])
    delta = _rows(case, tol.forward_bounds(case, a, dtype)["y"])
    m = y.shape[1]
    mean_y = y.mean(axis=1)
    compare("mean(y) per group", mean_y, np.zeros_like(mean_y),
            tol.SAFETY * (delta.mean(axis=1) + tol.gamma(m, F64) * np.abs(y).mean(axis=1)),
            where)
    st64 = norm.row_stats(_rows(case, a["x"]), case.eps, F64)
    var_x, d_var = st64["var"][:, 0], st64["d_var"][:, 0]
    want = var_x / (var_x + case.eps)
    var_y = y.var(axis=1)
    d_max = delta.max(axis=1)
    atol = (4 * d_max * np.abs(y - mean_y[:, None]).mean(axis=1) + 4 * d_max**2
            + tol.gamma(m + 2, F64) * var_y + case.eps * d_var / (var_x + case.eps) ** 2
            + tol.gamma(4, F64) * want)
    compare("var(y) per group", var_y, want, tol.SAFETY * atol, where)


@pytest.mark.parametrize(("record", "rank"), OWN_STATISTICS)
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_a_per_group_shift_leaves_y_unchanged(record, rank, data, seed, dtype, impl,
                                              impl_name_opt):
    """y(x + b) == y(x) for one shift b per group (any eps, gamma and beta as drawn).

    x + b is rounded to the dtype: a change e of at most u max|x + b| per element, which moves
    y_i by gamma_i / s (e_i - mean(e) - xhat_i mean(xhat e)), at most
    max|gamma| / s (2 + max|xhat|) max|e| (mean|xhat| <= 1)."""
    case = _own_statistics(data.draw(strategy(record, rank), label="case"))
    a = case.arrays(dtype, seed)
    shift = np.random.default_rng(seed).uniform(-4, 4, size=(case.groups, 1))
    b = {**a, "x": (_rows(case, a["x"]) + shift).reshape(case.shape).astype(dtype)}
    where = context(case, dtype, seed, impl_name_opt, "forward")
    st_ = norm.row_stats(_rows(case, b["x"]), case.eps, dtype)
    g_max = float(np.abs(a["gamma"]).max()) if "gamma" in a else 1.0
    rounding = (g_max / st_["s"] * (2 + st_["xhat_max"])
                * tol.unit_roundoff(dtype) * np.abs(_rows(case, b["x"])).max(axis=1,
                                                                             keepdims=True))
    atol = (tol.comparison_atol(tol.forward_bounds(case, a, dtype)["y"],
                                tol.forward_bounds(case, b, dtype)["y"])
            + tol.SAFETY * np.broadcast_to(rounding, (case.groups, st_["m"])).reshape(case.shape))
    compare("y(x + b) vs y(x)", case.forward(impl, b)["y"], case.forward(impl, a)["y"], atol,
            where)


@pytest.mark.parametrize(("record", "rank"), OWN_STATISTICS)
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_a_positive_per_group_scale_leaves_y_unchanged_when_eps_is_0(record, rank, data, seed,
                                                                     dtype, impl,
                                                                     impl_name_opt):
    """y(a x) == y(x) for one power of two a > 0 per group, with eps = 0 (eps does not scale
    with x: with eps > 0 the identity does not hold). Powers of two scale x exactly."""
    case = _own_statistics(data.draw(strategy(record, rank), label="case"), eps=0.0)
    a = case.arrays(dtype, seed)
    assume(np.all(_rows(case, a["x"]).var(axis=1) > 0))  # eps = 0: no constant group
    scale = 2.0 ** np.random.default_rng(seed).integers(-3, 4, size=(case.groups, 1))
    b = {**a, "x": (_rows(case, a["x"]) * scale).reshape(case.shape).astype(dtype)}
    atol = tol.comparison_atol(tol.forward_bounds(case, a, dtype)["y"],
                               tol.forward_bounds(case, b, dtype)["y"])
    compare("y(a x) vs y(x)", case.forward(impl, b)["y"], case.forward(impl, a)["y"], atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


def _compare_directions(first: Any, second: Any, a: dict, dtype: Any, impl: Any,
                        where: str) -> None:
    """first and second (cases of the same call on the same arrays) agree, forward and
    backward, within both records' bounds."""
    for direction, bounds in (("forward", tol.forward_bounds), ("backward", tol.backward_bounds)):
        want, got = first.call(impl, direction, a), second.call(impl, direction, a)
        b1, b2 = bounds(first, a, dtype), bounds(second, a, dtype)
        for name, value in want.items():
            compare(f"{name} ({direction})", got[name], value,
                    tol.comparison_atol(b1[name], b2[name]), where)


@pytest.mark.parametrize("rank", [k for k in INSTANCE.ranks if k >= 1])
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_group_norm_with_c_groups_is_instance_norm(rank, data, seed, dtype, impl,
                                                  impl_name_opt):
    """group_norm(x, C, gamma, beta) == instance_norm(x, gamma, beta) in training without
    running statistics: y, dx, dgamma, dbeta."""
    case = _own_statistics(data.draw(strategy(INSTANCE, rank), label="case"))
    groups = GroupNormCase(case.shape, case.shape[1], case.affine, case.eps, case.kind)
    a = case.arrays(dtype, seed)
    _compare_directions(case, groups, a, dtype, impl,
                        context(groups, dtype, seed, impl_name_opt))


@pytest.mark.parametrize("rank", GROUP.ranks)
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_layer_norm_over_channels_and_space_is_group_norm_with_one_group(rank, data, seed, dtype,
                                                                         impl, impl_name_opt):
    """gamma None: layer_norm(x, x.shape[1:]) == group_norm(x, 1) (y and dx), and group
    norm's per-channel dgamma and dbeta are layer norm's summed over the spatial axes (float64
    sums of the layer's values: their bounds add, and gamma(prod(S)) of the sum)."""
    drawn = data.draw(strategy(GROUP, rank), label="case")
    groups = dataclasses.replace(drawn, num_groups=1, affine=False)
    layer = LayerNormCase(groups.shape, groups.shape[1:], False, groups.eps, groups.kind)
    a = groups.arrays(dtype, seed)
    where = context(layer, dtype, seed, impl_name_opt)
    compare("y", layer.forward(impl, a)["y"], groups.forward(impl, a)["y"],
            tol.comparison_atol(tol.forward_bounds(layer, a, dtype)["y"],
                                tol.forward_bounds(groups, a, dtype)["y"]), where)
    got, want = layer.backward(impl, a), groups.backward(impl, a)
    b_layer, b_groups = tol.backward_bounds(layer, a, dtype), tol.backward_bounds(groups, a, dtype)
    compare("dx", got["dx"], want["dx"], tol.comparison_atol(b_layer["dx"], b_groups["dx"]),
            where)
    spatial = tuple(range(1, len(groups.shape) - 1))  # dgamma of layer norm: (C, *S)
    n_spatial = math.prod(groups.shape[2:])
    for name in ("dgamma", "dbeta"):
        summed = np.asarray(got[name], F64).sum(axis=spatial)
        rounding = tol.gamma(n_spatial, F64) * np.abs(np.asarray(got[name], F64)).sum(axis=spatial)
        atol = tol.comparison_atol(np.broadcast_to(b_layer[name], got[name].shape).sum(
            axis=spatial), b_groups[name]) + tol.SAFETY * rounding
        compare(f"{name} summed over S", summed, want[name], atol, where)


@pytest.mark.parametrize(("record", "rank"), OWN_STATISTICS)
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_dx_sums_to_0_per_group_and_is_orthogonal_to_xhat_up_to_eps(record, rank, data, seed,
                                                                    dtype, impl, impl_name_opt):
    """gamma None, per group: sum(dx) = 0 and <dx, xhat> = eps / (var + eps) / s * sum(dy xhat)
    (dx = (dy - mean(dy) - xhat mean(dy xhat)) / s and sum(xhat^2) = m var / (var + eps)):
    0 when eps = 0. xhat is computed in float64 (its error, the records' dxhat, on both
    sides), dx within its bound, the float64 sums within gamma(m + 2) of their terms."""
    case = _own_statistics(data.draw(strategy(record, rank), label="case"), affine=False)
    a = case.arrays(dtype, seed)
    where = context(case, dtype, seed, impl_name_opt, "backward")
    dx = _rows(case, case.backward(impl, a)["dx"])
    bound = _rows(case, tol.backward_bounds(case, a, dtype)["dx"])
    m = dx.shape[1]
    total = dx.sum(axis=1)
    compare("sum(dx) per group", total, np.zeros_like(total),
            tol.SAFETY * (bound.sum(axis=1) + tol.gamma(m, F64) * np.abs(dx).sum(axis=1)), where)
    x, dy = _rows(case, a["x"]), _rows(case, a["dy"])
    st64 = norm.row_stats(x, case.eps, F64)
    xhat = (x - st64["mean"]) / st64["s"]
    share = case.eps / (st64["var"][:, 0] + case.eps) / st64["s"][:, 0]
    want = share * (dy * xhat).sum(axis=1)
    got = (dx * xhat).sum(axis=1)
    # xhat's float64 error enters both sides: sum|dx| dxhat and share sum|dy| dxhat; share's
    # own (the variance's and s's) relative error |dvar| / (var + eps) + |ds| / s multiplies
    # the right-hand side.
    d_xhat = st64["d_xhat"][:, 0]
    d_share = st64["d_var"][:, 0] / (st64["var"][:, 0] + case.eps) + st64["ds_rel"][:, 0]
    atol = ((bound * np.abs(xhat)).sum(axis=1)
            + (np.abs(dx).sum(axis=1) + share * np.abs(dy).sum(axis=1)) * d_xhat
            + d_share * np.abs(want)
            + tol.gamma(m + 2, F64) * (np.abs(dx * xhat).sum(axis=1)
                                       + share * np.abs(dy * xhat).sum(axis=1)))
    compare("<dx, xhat> per group", got, want, tol.SAFETY * atol, where)


SMALL_VARIANCE, LARGE_MEAN = norm.KIND_CORNERS["small_var"], norm.KIND_CORNERS["large_mean"]


@pytest.mark.parametrize("record", [pytest.param(r, id=r.name) for r in NORMS])
def test_the_samplers_draw_small_variance_and_large_mean_groups(record):
    """Both labels are corners of each record, drawn often, and mean what they say: a group
    with variance far below eps (1e-8 < 1e-5); groups whose |mean| is mostly over 5 spreads."""
    assert {SMALL_VARIANCE, LARGE_MEAN} <= set(record.corner_labels)
    freq = corner_frequencies(record, n=300, seed=3)
    assert min(freq[SMALL_VARIANCE], freq[LARGE_MEAN]) >= MIN_CORNER_FREQUENCY, freq
    for kind, label in (("small_var", SMALL_VARIANCE), ("large_mean", LARGE_MEAN)):
        for case, seed in sample(record, 10, seed=4, kind=kind):
            assert label in case.corners()
            x = _rows(case, case.arrays(F64, seed)["x"])
            var, mean = x.var(axis=1), np.abs(x.mean(axis=1))
            if kind == "small_var":
                assert var.min() < 1e-7, (case, var.min())
            else:
                assert np.mean(mean > 5 * np.sqrt(var)) > 0.5, (case, mean, var)


def test_layer_norm_takes_a_one_dimensional_x(impl):
    """x (D,) with normalized_shape (D,): one row, as torch takes it (no leading axes)."""
    x = np.array([1.0, 2.0, 4.0])
    want = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
    np.testing.assert_allclose(impl.layer_norm(x, 3), want, rtol=1e-12)
    dx, dgamma, dbeta = impl.layer_norm_backward(np.array([1.0, 0.0, -1.0]), x, 3)
    assert dx.shape == (3,) and dgamma.shape == (3,) and abs(dx.sum()) < 1e-12
    np.testing.assert_allclose(dbeta, [1.0, 0.0, -1.0])
