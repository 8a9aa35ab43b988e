"""Oracle-free properties: identities any correct implementation satisfies, at every rank.

Each property compares two computations by the implementation under test (or one against a
plainly written rule); the tolerance is the sum of the two computations' error bounds
(tolerance module), never a guessed constant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..cases import spatial
from ..comparison import compare, same_bits
from ..harness import check_against_reference, context
from ..ops import RECORDS, record
from ..ops.adaptive_avg_pool import plain_bin_reduce
from ..ops.adaptive_max_pool import first_max_indices as adaptive_first_max_indices
from ..ops.avg_pool import AvgPoolCase
from ..ops.conv import ConvCase
from ..ops.conv_transpose import ConvTransposeCase
from ..ops.max_pool import PoolCase, first_max_indices
from ..profiles import examples
from ..sampler import DTYPES, any_case, sample, seeds, strategy

CONV, POOL, PAD, AVG = record("conv"), record("max_pool"), record("pad"), record("avg_pool")
LP = record("lp_pool")
RANKS = {r.name: [pytest.param(k, id=f"{k}d") for k in r.ranks] for r in RECORDS}


def judging(name: str, direction: str) -> list:
    """RANKS[name], each marked as judging the op's forward or backward at its rank: a relation
    between a forward and its backward (an adjoint identity) is the backward's claim, so its
    failure is charged to the backward alone (the forward has value tests of its own)."""
    rec = next(r for r in RECORDS if r.name == name)
    index = 0 if direction == "forward" else 1
    return [pytest.param(k, id=f"{k}d", marks=pytest.mark.checks(rec.functions(k)[index]))
            for k in rec.ranks]


def _dot_atol(*pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Bound for <a, b> computed in float64 where b carries elementwise error bound e_b."""
    total = 0.0
    for a, b, e_b in pairs:
        total += float(np.sum(np.abs(a) * np.broadcast_to(e_b, b.shape)))
        total += tol.gamma(a.size, np.float64) * float(np.sum(np.abs(a * b)))
    return tol.SAFETY * total


def _conv(impl, case, x, w, b, **params):
    """conv at the case's rank with the case's parameters, some replaced."""
    return getattr(impl, case.op)(x, w, b, **{**case.params(), **params})


@pytest.mark.parametrize("rank", judging("conv", "backward"))
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_conv_backward_is_the_adjoint_of_forward(rank, data, seed, impl, impl_name_opt):
    """<conv(x, w), g> == <x, dx(g)> == <w, dw(g)>, and db == the sum of g: all in float64."""
    case = dataclasses.replace(data.draw(strategy(CONV, rank), label="case"), bias=False)
    a = case.arrays(np.float64, seed)
    y = case.forward(impl, a)["y"]
    g = case.backward(impl, a)
    fwd_b = tol.forward_bounds(case, a, np.float64)["y"]
    bwd_b = tol.backward_bounds(case, a, np.float64)
    lhs = float(np.sum(y * a["dy"]))
    where = context(case, np.float64, seed, impl_name_opt)
    for name, grad in (("x", g["dx"]), ("w", g["dw"])):
        rhs = float(np.sum(a[name] * grad))
        atol = _dot_atol((a["dy"], y, fwd_b), (a[name], grad, bwd_b["d" + name]))
        compare(f"<conv(x,w),g> vs <{name}, d{name}>", rhs, lhs, atol, where)
    axes = tuple(i for i in range(a["dy"].ndim) if i != 1)
    compare("db", g["db"], a["dy"].sum(axis=axes), 2 * bwd_b["db"], where)


# ------------------------------------------------------------------- transposed convolution

CONV_T = record("conv_transpose")


def adjoint_pair(drawn: ConvTransposeCase) -> tuple[ConvTransposeCase, ConvCase]:
    """The transposed-conv case the adjoint properties check, built from a drawn one, and the
    conv it is the adjoint of (CONTRACT.md): the same stride, padding, dilation and groups, the
    transposed output's shape as its input, the same w read as (Co', C'/G).

    A conv with stride s maps s input sizes to the transposed conv's input size S; output_padding
    e picks one of them, so only e < s has a conv adjoint. The contract also allows s <= e <
    max(s, d) (through the dilation): the conv maps that output to S + e // s cells, so the pair
    lowers e to s - 1, the largest paired value. That shortens the axis, and a padding the
    sampler allowed for the drawn e (up to (full - 1) // 2, full the uncropped size) can then
    crop the whole axis: the pair lowers it to the same rule's limit for the new e, so that every
    output axis keeps at least one cell (the conv's input must not be empty). A drawn case with
    e < s is kept as drawn (argument forms included), bias dropped (the identities are linear).
    """
    k, s, p, e, d = drawn.geometry()
    extra = tuple(min(ei, si - 1) for ei, si in zip(e, s, strict=True))
    full = [(n - 1) * si + di * (ki - 1) + 1 + ei
            for n, ki, si, di, ei in zip(drawn.x_shape[2:], k, s, d, extra, strict=True)]
    pads = tuple(min(pi, (f - 1) // 2) for pi, f in zip(p, full, strict=True))
    case = dataclasses.replace(
        drawn, bias=False,
        output_padding=drawn.output_padding if extra == e else extra,
        padding=drawn.padding if pads == p else pads)
    conv = ConvCase(case.output_shape(), case.w_shape, bias=False, stride=case.stride,
                    padding=case.padding, dilation=case.dilation, groups=case.groups)
    return case, conv


def pairing_problems(case: ConvTransposeCase, conv: ConvCase) -> list[str]:
    """Why (case, conv) is not a valid adjoint pair under the contract; empty when it is."""
    _, s, _, e, d = case.geometry()
    out = []
    if any(ei >= max(si, di) for ei, si, di in zip(e, s, d, strict=True)):
        out.append(f"transposed conv: output_padding {e} not < max(stride {s}, dilation {d})")
    if any(ei >= si for ei, si in zip(e, s, strict=True)):
        out.append(f"output_padding {e} not < stride {s}: no conv maps the output back")
    if min(case.output_shape()[2:]) < 1:
        out.append(f"transposed output {case.output_shape()} has an empty axis (the conv's "
                   f"input must not be empty)")
    elif conv.output_shape() != case.x_shape:
        out.append(f"conv maps {conv.x_shape} to {conv.output_shape()}, not to the transposed "
                   f"conv's input {case.x_shape}")
    if conv.x_shape[1] % conv.groups or conv.w_shape[1] * conv.groups != conv.x_shape[1]:
        out.append(f"conv channels {conv.x_shape[1]} do not match w {conv.w_shape} in "
                   f"{conv.groups} groups")
    return out


def _conv_t_with_conv(data: Any, rank: int, seed: int, dtype: Any) -> tuple[Any, Any, dict, dict]:
    """A drawn transposed-conv case and its conv (adjoint_pair), with their arrays: the conv's
    arrays are its own but for w, the transposed case's."""
    return _pair_arrays(*adjoint_pair(data.draw(strategy(CONV_T, rank), label="case")), seed,
                        dtype)


def _pair_arrays(case: ConvTransposeCase, conv: ConvCase, seed: int, dtype: Any
                 ) -> tuple[Any, Any, dict, dict]:
    problems = pairing_problems(case, conv)
    assert not problems, f"{case} and {conv}: " + "; ".join(problems)
    t_arrays = case.arrays(dtype, seed)
    c_arrays = conv.arrays(dtype, seed + 1)
    c_arrays["w"] = t_arrays["w"]
    return case, conv, t_arrays, c_arrays


def _check_adjoint(case, conv, a, c, seed, impl, impl_name_opt):
    y_conv = conv.forward(impl, c)["y"]  # (N, C, *S): x's shape
    y_t = case.forward(impl, a)["y"]  # (N, Co, *So): z's shape
    atol = _dot_atol((a["x"], y_conv, tol.forward_bounds(conv, c, np.float64)["y"]),
                     (c["x"], y_t, tol.forward_bounds(case, a, np.float64)["y"]))
    compare("<conv(z, w), x> vs <z, conv_transpose(x, w)>", float(np.sum(c["x"] * y_t)),
            float(np.sum(y_conv * a["x"])), atol,
            context(case, np.float64, seed, impl_name_opt, "forward"))


def _check_dx_pairs(case, conv, a, c, seed, dtype, impl, impl_name_opt):
    where = context(case, dtype, seed, impl_name_opt, "backward")
    dx_t = case.backward(impl, a)["dx"]
    via_conv = conv.forward(impl, {**c, "x": a["dy"]})["y"]
    atol = tol.comparison_atol(tol.backward_bounds(case, a, dtype)["dx"],
                               tol.forward_bounds(conv, {**c, "x": a["dy"]}, dtype)["y"])
    compare("conv_transpose dx vs conv(dy, w)", dx_t, via_conv, atol, where)
    dx_conv = conv.backward(impl, c)["dx"]  # c["dy"] has x's shape
    via_t = case.forward(impl, {**a, "x": c["dy"]})["y"]
    atol = tol.comparison_atol(tol.backward_bounds(conv, c, dtype)["dx"],
                               tol.forward_bounds(case, {**a, "x": c["dy"]}, dtype)["y"])
    compare("conv dx vs conv_transpose(g, w)", dx_conv, via_t, atol, where)


@pytest.mark.parametrize("rank", judging("conv_transpose", "forward"))
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_conv_transpose_is_the_adjoint_of_conv(rank, data, seed, impl, impl_name_opt):
    """<conv(z, w), x> == <z, conv_transpose(x, w)> with the same stride, padding, dilation,
    groups and the output_padding that restores z's size; in float64."""
    case, conv, a, c = _conv_t_with_conv(data, rank, seed, np.float64)
    _check_adjoint(case, conv, a, c, seed, impl, impl_name_opt)


@pytest.mark.parametrize("rank", RANKS["conv_transpose"])
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_conv_transpose_dx_is_conv_and_conv_dx_is_conv_transpose(rank, data, seed, dtype, impl,
                                                                 impl_name_opt):
    """conv_transpose's dx(dy) == conv(dy, w); conv's dx(g) == conv_transpose(g, w)."""
    case, conv, a, c = _conv_t_with_conv(data, rank, seed, dtype)
    _check_dx_pairs(case, conv, a, c, seed, dtype, impl, impl_name_opt)


# A draw that once paired with a conv whose input had an empty axis: on the last axis output
# padding 1 < dilation 2 with stride 1 (valid), and padding 2 that crops the 5 uncropped cells
# to 1; lowering output_padding to 0 for the pairing left 4 - 2 * 2 = 0 cells.
EMPTY_AXIS_DRAW = ConvTransposeCase((2, 1, 1, 1, 4), (1, 1, 1, 2, 1), bias=True,
                                    stride=(1, 2, 1), padding=(0, 0, 2),
                                    output_padding=(0, 0, 1), dilation=(1, 1, 2))


def test_the_empty_axis_draw_pairs_with_a_valid_conv():
    assert EMPTY_AXIS_DRAW.output_shape() == (2, 1, 1, 2, 1)  # the draw itself is valid
    case, conv = adjoint_pair(EMPTY_AXIS_DRAW)
    assert pairing_problems(case, conv) == []
    assert case.geometry()[3] == (0, 0, 0) and case.geometry()[2] == (0, 0, 1)
    assert conv.x_shape == case.output_shape() == (2, 1, 1, 2, 2)
    assert conv.output_shape() == case.x_shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_empty_axis_draw_satisfies_the_adjoint_properties(dtype, impl, impl_name_opt):
    seed = 12345
    case, conv, a, c = _pair_arrays(*adjoint_pair(EMPTY_AXIS_DRAW), seed, np.float64)
    _check_adjoint(case, conv, a, c, seed, impl, impl_name_opt)
    case, conv, a, c = _pair_arrays(*adjoint_pair(EMPTY_AXIS_DRAW), seed, dtype)
    _check_dx_pairs(case, conv, a, c, seed, dtype, impl, impl_name_opt)


def test_every_sampled_conv_transpose_case_pairs_with_a_valid_conv():
    """Over seeded draws of the record's sampler, at every rank: each pair is valid, a draw
    with output_padding < stride is kept as drawn, and the two adjustments (output_padding
    lowered; padding lowered with it) are both reached, so the check covers them."""
    lowered = {"output_padding": 0, "padding": 0}
    for rank in CONV_T.ranks:
        for drawn, _ in sample(CONV_T, 3000, seed=rank, rank=rank):
            case, conv = adjoint_pair(drawn)
            problems = pairing_problems(case, conv)
            assert not problems, f"{drawn}: " + "; ".join(problems)
            _, s, _, e, _ = drawn.geometry()
            if all(ei < si for ei, si in zip(e, s, strict=True)):
                assert case == dataclasses.replace(drawn, bias=False)
            lowered["output_padding"] += case.output_padding != drawn.output_padding
            lowered["padding"] += case.padding != drawn.padding
    assert min(lowered.values()) > 0, lowered


@pytest.mark.parametrize("rank", RANKS["conv_transpose"])
@settings(max_examples=examples(25))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_grouped_conv_transpose_is_the_concatenation_of_per_group_calls(rank, data, seed, dtype,
                                                                        impl, impl_name_opt):
    case = data.draw(strategy(CONV_T, rank), label="case")
    groups = case.groups if case.groups > 1 else 2
    n, c, *size = case.x_shape
    cg, co_g = c // case.groups, case.w_shape[1]
    case = dataclasses.replace(case, x_shape=(n, cg * groups, *size),
                               w_shape=(cg * groups, co_g, *case.w_shape[2:]), groups=groups)
    a = case.arrays(dtype, seed)
    whole = case.forward(impl, a)["y"]
    parts = [
        getattr(impl, case.op)(a["x"][:, i * cg:(i + 1) * cg], a["w"][i * cg:(i + 1) * cg],
                               None if "b" not in a else a["b"][i * co_g:(i + 1) * co_g],
                               **{**case.params(), "groups": 1})
        for i in range(groups)
    ]
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    compare("grouped conv_transpose vs per-group calls", whole, np.concatenate(parts, axis=1),
            atol, context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["conv_transpose"])
@settings(max_examples=examples(25))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_conv_transpose_stride_is_zero_insertion(rank, data, seed, dtype, impl, impl_name_opt):
    """conv_transpose with stride s == conv_transpose with stride 1 of x with s - 1 zeros
    between its cells (no output_padding: its cells are cut from the strided result)."""
    case = data.draw(strategy(CONV_T, rank), label="case")
    s = case.geometry()[1]
    n, c, *size = case.x_shape
    spread = tuple((si - 1) * st_ + 1 for si, st_ in zip(size, s, strict=True))
    unit = dataclasses.replace(case, x_shape=(n, c, *spread), stride=1, output_padding=0)
    assume(min(unit.output_shape()[2:]) >= 1)
    a = case.arrays(dtype, seed)
    y = case.forward(impl, a)["y"]
    xz = np.zeros((n, c, *spread), dtype=a["x"].dtype)
    xz[(slice(None), slice(None), *(slice(None, None, st_) for st_ in s))] = a["x"]
    au = {**a, "x": xz}
    y1 = unit.forward(impl, au)["y"]
    keep = (slice(None), slice(None), *(slice(0, o) for o in unit.output_shape()[2:]))
    atol = tol.comparison_atol(tol.forward_bounds(case, a, dtype)["y"],
                               tol.forward_bounds(unit, au, dtype)["y"])
    compare("conv_transpose stride s vs stride 1 of the zero-inserted x", y[keep], y1, atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", judging("pad", "backward"))
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_pad_backward_is_the_adjoint_of_pad(rank, data, seed, impl, impl_name_opt):
    """<pad(x), g> == <x, pad_backward(g)> for every mode (constant value 0)."""
    case = dataclasses.replace(data.draw(strategy(PAD, rank), label="case"), value=0.0)
    a = case.arrays(np.float64, seed)
    y, dx = case.forward(impl, a)["y"], case.backward(impl, a)["dx"]
    atol = _dot_atol((a["dy"], y, 0.0),
                     (a["x"], dx, tol.backward_bounds(case, a, np.float64)["dx"]))
    compare("<pad(x), g> vs <x, pad_backward(g)>", float(np.sum(a["x"] * dx)),
            float(np.sum(y * a["dy"])), atol, context(case, np.float64, seed, impl_name_opt))


@pytest.mark.parametrize("rank", judging("avg_pool", "backward"))
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_avg_pool_backward_is_the_adjoint_of_forward(rank, data, seed, impl, impl_name_opt):
    """Average pooling is linear: <avg_pool(x), g> == <x, avg_pool_backward(g)>, in float64,
    for every padding, ceil_mode, count_include_pad and divisor_override."""
    case = data.draw(strategy(AVG, rank), label="case")
    a = case.arrays(np.float64, seed)
    y, dx = case.forward(impl, a)["y"], case.backward(impl, a)["dx"]
    atol = _dot_atol((a["dy"], y, tol.forward_bounds(case, a, np.float64)["y"]),
                     (a["x"], dx, tol.backward_bounds(case, a, np.float64)["dx"]))
    compare("<avg_pool(x), g> vs <x, avg_pool_backward(g)>", float(np.sum(a["x"] * dx)),
            float(np.sum(y * a["dy"])), atol, context(case, np.float64, seed, impl_name_opt))


@pytest.mark.parametrize("rank", RANKS["avg_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_avg_pool_with_stride_kernel_and_no_padding_is_the_block_mean(rank, data, seed, dtype,
                                                                      impl, impl_name_opt):
    """Windows that tile the input (stride = kernel, no padding, floor mode) average blocks:
    reshape each spatial axis into (blocks, kernel) and take the mean (divisor_override: the
    block sum over it)."""
    drawn = data.draw(strategy(AVG, rank), label="case")
    kernel = drawn.geometry()[0]
    shape = (*drawn.shape[:2], *(max(s // k, 1) * k for s, k in zip(drawn.shape[2:], kernel,
                                                                     strict=True)))
    case = dataclasses.replace(drawn, shape=shape, stride=None, padding=0, ceil_mode=False)
    a = case.arrays(dtype, seed)
    y = case.forward(impl, a)["y"]
    x = a["x"].astype(np.float64)
    blocks = x.reshape(*shape[:2], *(d for s, k in zip(shape[2:], kernel, strict=True)
                                     for d in (s // k, k)))
    sums = blocks.sum(axis=tuple(3 + 2 * i for i in range(rank)))
    want = sums / (case.divisor_override or int(np.prod(kernel)))
    atol = tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    compare("avg_pool vs block means", y, want, atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["lp_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_lp_pool_with_p_1_is_avg_pool_times_the_window_size(rank, data, seed, dtype, impl,
                                                            impl_name_opt):
    """On x >= 0, p = 1 gives K / count * the window sum: the unpadded avg_pool (its divisor is
    the covered count, ceil_mode windows included) times K, by the same implementation."""
    drawn = data.draw(strategy(LP, rank, kind=data.draw(st.sampled_from(["positive", "ties"]),
                                                         label="values")), label="case")
    case = dataclasses.replace(drawn, norm_type=data.draw(st.sampled_from([1, 1.0]),
                                                          label="p = 1"))
    avg = AvgPoolCase(case.shape, case.kernel_size, case.stride, 0, case.ceil_mode)
    a = case.arrays(dtype, seed)
    taps = int(np.prod(case.geometry()[0]))
    y = case.forward(impl, a)["y"]
    want = avg.forward(impl, {"x": a["x"]})["y"].astype(np.float64) * taps
    # both computations' bounds, and the rounding of the product by K
    atol = tol.SAFETY * (tol.forward_bounds(case, a, dtype)["y"]
                         + taps * tol.forward_bounds(avg, a, dtype)["y"]
                         + tol.gamma(1, dtype) * np.abs(want))
    compare("lp_pool(p = 1) vs avg_pool * K", y, want, atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["lp_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_lp_pool_tends_to_max_pool_as_p_grows(rank, data, seed, impl, impl_name_opt):
    """On x >= 0, every window of y = (K / count * sum x ** p) ** (1 / p) lies in
    [max, K ** (1 / p) * max] (count <= K terms, each <= max ** p, the largest = max ** p):
    at p = 64 in float64 within 100 * ln(K) / 64 % of the unpadded max_pool of the same
    implementation."""
    p = 64.0
    drawn = data.draw(strategy(LP, rank, kind=data.draw(st.sampled_from(["positive", "ties"]),
                                                         label="values")), label="case")
    case = dataclasses.replace(drawn, norm_type=p)
    pool = PoolCase(case.shape, case.kernel_size, case.stride, 0, 1, case.ceil_mode,
                    return_indices=False)
    a = case.arrays(np.float64, seed)
    y = case.forward(impl, a)["y"]
    top = pool.forward(impl, {"x": a["x"]})["y"]
    growth = float(np.prod(case.geometry()[0])) ** (1 / p)
    # y within [top, growth * top]: the midpoint, plus half the width and y's error bound
    atol = (growth - 1) / 2 * top + tol.SAFETY * tol.forward_bounds(case, a, np.float64)["y"]
    compare("lp_pool(p = 64) vs max_pool", y, (1 + growth) / 2 * top, atol,
            context(case, np.float64, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["conv"])
@settings(max_examples=examples(25))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_grouped_conv_is_the_concatenation_of_per_group_convs(rank, data, seed, dtype, impl,
                                                              impl_name_opt):
    case = data.draw(strategy(CONV, rank), label="case")
    groups = case.groups if case.groups > 1 else 2
    n, _, *size = case.x_shape
    co, cg, *kernel = case.w_shape
    case = dataclasses.replace(case, x_shape=(n, cg * groups, *size),
                               w_shape=(co // case.groups * groups, cg, *kernel), groups=groups)
    a = case.arrays(dtype, seed)
    whole = case.forward(impl, a)["y"]
    per = case.w_shape[0] // groups
    parts = [
        _conv(impl, case, a["x"][:, i * cg:(i + 1) * cg], a["w"][i * per:(i + 1) * per],
              None if "b" not in a else a["b"][i * per:(i + 1) * per], groups=1)
        for i in range(groups)
    ]
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    compare("grouped conv vs per-group convs", whole, np.concatenate(parts, axis=1), atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


def _explicit(case):
    """'same' pads depend on the stride and dilation; fix them explicitly."""
    if case.padding == "same":
        return dataclasses.replace(case, padding=case.resolved_pads())
    return case


@pytest.mark.parametrize("rank", RANKS["conv"])
@settings(max_examples=examples(25))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_strided_conv_is_the_stride_one_output_subsampled(rank, data, seed, dtype, impl,
                                                          impl_name_opt):
    case = _explicit(data.draw(strategy(CONV, rank), label="case"))
    a = case.arrays(dtype, seed)
    strided = case.forward(impl, a)["y"]
    dense = _conv(impl, case, a["x"], a["w"], a.get("b"), stride=1)
    step = tuple(slice(None, None, s) for s in spatial(case.stride, rank))
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    compare("stride s vs stride 1 subsampled", strided, dense[(slice(None), slice(None), *step)],
            atol, context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["conv"])
@settings(max_examples=examples(25))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_dilated_conv_is_a_conv_with_a_zero_inserted_kernel(rank, data, seed, dtype, impl,
                                                            impl_name_opt):
    case = _explicit(data.draw(strategy(CONV, rank), label="case"))
    a = case.arrays(dtype, seed)
    dilated = case.forward(impl, a)["y"]
    dil = spatial(case.dilation, rank)
    co, cg, *kernel = case.w_shape
    spread = np.zeros((co, cg, *((k - 1) * d + 1 for k, d in zip(kernel, dil, strict=True))),
                      dtype=dtype)
    spread[(slice(None), slice(None), *(slice(None, None, d) for d in dil))] = a["w"]
    plain = _conv(impl, case, a["x"], spread, a.get("b"), dilation=1)
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    compare("dilated kernel vs zero-inserted kernel", dilated, plain, atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["max_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_max_pool_ties_go_to_the_first_maximum_in_window_order(rank, data, seed, dtype, impl,
                                                               impl_name_opt):
    """Indices are the first maximum (row-major window order) of each window's input cells
    (brute force: ops.max_pool.first_max_indices); the backward sends each window's dy to its
    index, accumulating."""
    case = data.draw(strategy(POOL, rank, kind=data.draw(
        st.sampled_from(["ties", "signed_zeros"]), label="values")), label="case")
    a = case.arrays(dtype, seed)
    expected_idx = first_max_indices(case, a["x"])
    if case.return_indices:  # where the implementation offers indices
        out = case.forward(impl, a)
        compare("indices", out["indices"], expected_idx, 0,
                context(case, dtype, seed, impl_name_opt, "forward"))
    n, c, *size = case.shape
    flat = np.zeros((n * c, int(np.prod(size))))
    windows = int(np.prod(expected_idx.shape[2:]))
    rows = np.repeat(np.arange(n * c), windows)
    np.add.at(flat, (rows, expected_idx.reshape(-1)), a["dy"].astype(np.float64).reshape(-1))
    dx = case.backward(impl, a)["dx"]
    compare("dx (tie rule)", dx, flat.reshape(case.shape),
            tol.SAFETY * tol.backward_bounds(case, a, dtype)["dx"],
            context(case, dtype, seed, impl_name_opt, "backward"))


@pytest.mark.parametrize("rank", RANKS["max_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_max_pool_returns_x_at_its_index_bit_for_bit(rank, data, seed, dtype, impl,
                                                     impl_name_opt):
    """The value of a window is exactly x at its index (-0.0 stays -0.0), with and without
    return_indices: x at the returned index where indices are offered, and always x at the index
    the tie rule picks (brute force: ops.max_pool.first_max_indices)."""
    case = data.draw(strategy(POOL, rank, kind="signed_zeros"), label="case")
    a = case.arrays(dtype, seed)
    out = case.forward(impl, a)
    where = context(case, dtype, seed, impl_name_opt, "forward")
    flat_x = a["x"].reshape(*a["x"].shape[:2], -1)
    indices = {"the tie rule's index": first_max_indices(case, a["x"])}
    if case.return_indices:
        indices["the returned index"] = out["indices"]
    for what, idx in indices.items():
        picked = np.take_along_axis(flat_x, idx.reshape(*idx.shape[:2], -1).clip(0), axis=2)
        picked = np.where(idx.reshape(picked.shape) < 0, -np.inf, picked).reshape(idx.shape)
        same_bits(f"y vs x at {what}", out["y"], picked.astype(dtype), where)


@settings(max_examples=examples(60))
@given(case=any_case(), seed=seeds)
def test_float32_agrees_with_float64_within_the_float32_error_model(case, seed, impl,
                                                                    impl_name_opt):
    """Outputs keep float32 and agree with the float64 run on the same values."""
    for direction in ("forward", "backward"):
        check_against_reference(case, impl, impl, np.float32, seed, impl_name_opt, direction)


@pytest.mark.parametrize("rank", RANKS["pad"])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_backward_copies_untouched_gradients_bit_for_bit(rank, mode, impl):
    """With no padding on an axis, or away from the border, dy's cells reach dx unchanged:
    a -0.0 in dy stays -0.0 (CONTRACT.md; torch and TF's composed modes turn it into +0.0:
    registry entry pad-backward-signed-zero)."""
    from ..ops.pad import PadCase

    numpy_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}[mode]
    shape = (2, 2, *(3, 4, 5)[:rank])
    for pad_width in (0, ((1, 0),) + ((0, 0),) * (rank - 1)):
        case = PadCase(shape, pad_width, mode)
        dy = np.where(np.arange(np.prod(case.output_shape())).reshape(case.output_shape()) % 2,
                      -0.0, 1.0)
        dx = impl.pad_backward(dy, pad_width, mode=mode)
        if pad_width == 0:
            same_bits("dx (no padding) vs dy", dx, dy)
            continue
        # One padded row before axis 0: the row it copies (none for constant) gets a sum; every
        # other row of dx is the matching row of dy, bit for bit.
        copied = set() if mode == "constant" else {
            int(np.pad(np.arange(shape[2]), (1, 0), mode=numpy_mode)[0])}
        for row in sorted(set(range(shape[2])) - copied):
            same_bits(f"dx row {row} vs dy row {row + 1}", dx[:, :, row], dy[:, :, row + 1],
                      f"pad_backward(dy, {pad_width!r}, mode={mode!r})")


def test_inputs_are_never_mutated(impl):
    for rec in RECORDS:
        for rank in rec.ranks:
            case = next(c for _, c in rec.fixtures if c.rank == rank)
            a = case.arrays(np.float64, 7)
            before = {k: v.copy() for k, v in a.items()}
            case.forward(impl, a)
            case.backward(impl, a)
            for k, v in a.items():
                np.testing.assert_array_equal(v, before[k], err_msg=f"{case.label} modified {k}")


# ------------------------------------------------------------------------ activations, linear

ACTIVATIONS = [pytest.param(record(name), id=name) for name in ("relu", "elu", "sigmoid")]
LINEAR = record("linear")


@pytest.mark.parametrize("rec", ACTIVATIONS)
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_activations_are_monotone(rec, data, seed, dtype, impl, impl_name_opt):
    """On sorted inputs the outputs never decrease by more than the two neighbours' error
    bounds (0 for relu: exact). elu's alpha is positive in every draw."""
    case = data.draw(strategy(rec), label="case")
    a = case.arrays(dtype, seed)
    x = np.sort(a["x"].reshape(-1)).reshape(a["x"].shape)
    y = case.forward(impl, {**a, "x": x})["y"].astype(np.float64).reshape(-1)
    bound = np.broadcast_to(tol.forward_bounds(case, {"x": x}, dtype)["y"], x.shape).reshape(-1)
    drop = y[:-1] - y[1:]  # > 0 where y decreases
    allowed = tol.SAFETY * (bound[:-1] + bound[1:])
    where = context(case, dtype, seed, impl_name_opt, "forward",
                    'a["x"] = np.sort(a["x"].reshape(-1)).reshape(a["x"].shape)')
    compare("decrease of y along sorted x", np.maximum(drop, 0.0), np.zeros_like(drop),
            allowed, where)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_relu_is_max_x_0_exactly(dtype, impl):
    """relu(x) == max(x, 0) bit for bit, -0.0 (not < 0) copied, NaN kept; every kind of x."""
    rec = record("relu")
    for kind in ("normal", "zeros", "wide"):
        case = rec.case_type((3, 4, 5, 6), kind)
        x = case.arrays(dtype, 3)["x"]
        x.reshape(-1)[:3] = (np.nan, -0.0, np.inf)
        y = impl.relu(x)
        assert y.dtype == dtype
        same_bits("relu(x) vs max(x, 0)", y, np.where(x < 0, dtype(0), x), case.describe())
        compare("relu(x) vs np.maximum(x, 0)", y, np.maximum(x, dtype(0)), 0.0, case.describe())


@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_sigmoid_of_minus_x_is_one_minus_sigmoid_of_x(data, seed, dtype, impl, impl_name_opt):
    """sigmoid(-x) = 1 - sigmoid(x) within the two results' error bounds (1 - s is exact in
    float64 for a float32 s and rounds once for a float64 one)."""
    rec = record("sigmoid")
    case = data.draw(strategy(rec), label="case")
    a = case.arrays(dtype, seed)
    s = case.forward(impl, a)["y"].astype(np.float64)
    s_neg = case.forward(impl, {**a, "x": -a["x"]})["y"].astype(np.float64)
    bounds = tol.forward_bounds(case, {"x": a["x"]}, dtype)["y"]
    bounds_neg = tol.forward_bounds(case, {"x": -a["x"]}, dtype)["y"]
    atol = tol.SAFETY * (bounds + bounds_neg + tol.unit_roundoff(np.float64))
    compare("sigmoid(-x) vs 1 - sigmoid(x)", s_neg, 1 - s, atol,
            context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0, 1.6732632423543772])
def test_elu_is_continuous_at_0(alpha, dtype, impl):
    """elu(+-0.0) is +-0.0 and |elu(+-h)| <= max(1, alpha) h (1 + 4u) for h -> 0: the two
    branches meet at 0 (|expm1(-h)| <= h)."""
    hs = 2.0 ** -np.arange(1, 60 if dtype == np.float64 else 30, 3)
    x = np.concatenate([-hs, [-0.0, 0.0], hs]).astype(dtype)
    y = impl.elu(x, alpha).astype(np.float64)
    same_bits("elu(+-0.0)", y[len(hs):len(hs) + 2], np.array([-0.0, 0.0]), f"alpha={alpha}")
    limit = max(1.0, alpha) * np.abs(x.astype(np.float64)) * (1 + 4 * tol.unit_roundoff(dtype))
    assert (np.abs(y) <= limit).all(), (alpha, x[np.abs(y) > limit], y[np.abs(y) > limit])


@pytest.mark.parametrize("rank", judging("linear", "backward"))
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_linear_backward_is_the_adjoint_of_forward(rank, data, seed, impl, impl_name_opt):
    """<linear(x, w), g> == <x, dx(g)> == <w, dw(g)> (no bias), and db == g summed over the
    leading axes: all in float64."""
    case = dataclasses.replace(data.draw(strategy(LINEAR, rank), label="case"), bias=False)
    a = case.arrays(np.float64, seed)
    y = case.forward(impl, a)["y"]
    g = case.backward(impl, a)
    fwd_b = tol.forward_bounds(case, a, np.float64)["y"]
    bwd_b = tol.backward_bounds(case, a, np.float64)
    lhs = float(np.sum(y * a["dy"]))
    where = context(case, np.float64, seed, impl_name_opt)
    for name, grad in (("x", g["dx"]), ("w", g["dw"])):
        rhs = float(np.sum(a[name] * grad))
        atol = _dot_atol((a["dy"], y, fwd_b), (a[name], grad, bwd_b["d" + name]))
        compare(f"<linear(x,w),g> vs <{name}, d{name}>", rhs, lhs, atol, where)
    dy = a["dy"].reshape(-1, case.out_features)
    compare("db vs the sum of g", g["db"], dy.sum(axis=0),
            tol.SAFETY * 2 * bwd_b["db"], where)


@pytest.mark.parametrize("rank", [r for r in RANKS["linear"] if r.values[0] >= 2])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_linear_with_leading_dims_is_the_2d_case_flattened(rank, data, seed, dtype, impl,
                                                           impl_name_opt):
    """x (*lead, in) gives the (prod(lead), in) results reshaped, forward and backward,
    within both computations' error bounds."""
    case = data.draw(strategy(LINEAR, rank), label="case")
    flat = dataclasses.replace(case, lead=(int(np.prod(case.lead)),))
    a = case.arrays(dtype, seed)
    a_flat = {k: v.reshape(-1, v.shape[-1]) if k in ("x", "dy") else v for k, v in a.items()}
    where = context(case, dtype, seed, impl_name_opt)
    a64 = {k: v.astype(np.float64) for k, v in a.items()}
    for direction, bounds in (("forward", tol.forward_bounds), ("backward", tol.backward_bounds)):
        got = case.call(impl, direction, a)
        want = flat.call(impl, direction, a_flat)
        b = bounds(case, a64, dtype)
        for name, value in got.items():
            shape = np.shape(value)
            atol = tol.SAFETY * 2 * np.broadcast_to(b[name], shape)
            compare(f"{name} vs the flattened call's", value,
                    np.asarray(want[name]).reshape(shape), atol, where)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sigmoid_neither_overflows_nor_warns_up_to_1e4(dtype, impl):
    """Under np.errstate(all="raise"), sigmoid and its backward on |x| up to 1e4 raise nothing
    and saturate to exactly 0 and 1 (the subnormal range in between may underflow, silently);
    the gradient stays finite and >= 0."""
    x = np.array([-1e4, -1e3, -100.0, -50.0, -20.0, -1.0, -0.0, 0.0, 1.0, 20.0, 50.0, 100.0,
                  1e3, 1e4], dtype=dtype)
    dy = np.ones_like(x)
    with np.errstate(all="raise"):
        y = impl.sigmoid(x)
        dx = impl.sigmoid_backward(dy, x)
    assert y.dtype == dtype and dx.dtype == dtype
    assert y[0] == 0 and y[-1] == 1 and y[6] == y[7] == 0.5
    assert np.isfinite(dx).all() and (dx >= 0).all() and dx[0] == dx[-1] == 0
    assert (np.diff(y.astype(np.float64)) >= 0).all()
# -------------------------------------------------------------------------- adaptive pooling

ADAPTIVE_AVG, ADAPTIVE_MAX = record("adaptive_avg_pool"), record("adaptive_max_pool")


@pytest.mark.parametrize("rank", judging("adaptive_avg_pool", "backward"))
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_adaptive_avg_pool_backward_is_the_adjoint_of_forward(rank, data, seed, impl,
                                                              impl_name_opt):
    """Adaptive average pooling is linear: <f(x), g> == <x, f_backward(g)>, in float64, for
    output sizes that divide the input, do not (overlapping bins), exceed it or keep it."""
    case = data.draw(strategy(ADAPTIVE_AVG, rank), label="case")
    a = case.arrays(np.float64, seed)
    y, dx = case.forward(impl, a)["y"], case.backward(impl, a)["dx"]
    atol = _dot_atol((a["dy"], y, tol.forward_bounds(case, a, np.float64)["y"]),
                     (a["x"], dx, tol.backward_bounds(case, a, np.float64)["dx"]))
    compare("<adaptive_avg_pool(x), g> vs <x, adaptive_avg_pool_backward(g)>",
            float(np.sum(a["x"] * dx)), float(np.sum(y * a["dy"])), atol,
            context(case, np.float64, seed, impl_name_opt))


@pytest.mark.parametrize("rank", RANKS["adaptive_avg_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_adaptive_avg_pool_is_the_mean_of_each_bin(rank, data, seed, dtype, impl,
                                                   impl_name_opt):
    """Each output is the float64 mean of its bin's cells, the bins listed plainly
    (ops.adaptive_avg_pool.bin_cells: floor(i S / O) .. ceil((i + 1) S / O) - 1)."""
    case = data.draw(strategy(ADAPTIVE_AVG, rank), label="case")
    a = case.arrays(dtype, seed)
    y = case.forward(impl, a)["y"]
    want = plain_bin_reduce(case, a["x"].astype(np.float64), lambda v: v.mean(axis=-1))
    compare("adaptive_avg_pool vs plain bin means", y, want,
            tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"],
            context(case, dtype, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("record_", [ADAPTIVE_AVG, ADAPTIVE_MAX], ids=lambda r: r.name)
@pytest.mark.parametrize("rank", [1, 2, 3])
@settings(max_examples=examples(20))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_adaptive_pool_to_the_input_size_is_the_identity(record_, rank, data, seed, dtype,
                                                         impl, impl_name_opt):
    """output_size = the input's size (as ints or all None): one cell per bin, y is x (bit for
    bit for max, a selection; a mean of one cell is a sum, whose zero may take either sign),
    indices the cells' own offsets, dx is dy (a sum too)."""
    drawn = data.draw(strategy(record_, rank), label="case")
    size = drawn.shape[2:]
    out = data.draw(st.sampled_from([tuple(size), (None,) * rank]), label="output_size")
    case = dataclasses.replace(drawn, output_size=out)
    a = case.arrays(dtype, seed)
    got = case.forward(impl, a)
    where = context(case, dtype, seed, impl_name_opt, "forward")
    if record_ is ADAPTIVE_MAX:
        same_bits("y vs x", got["y"], a["x"], where)
    compare("y vs x", got["y"], a["x"], 0, where)
    if "indices" in got:
        plane = np.arange(int(np.prod(size))).reshape(size)
        compare("indices", got["indices"], np.broadcast_to(plane, a["x"].shape), 0, where)
    compare("dx vs dy", case.backward(impl, a)["dx"], a["dy"], 0,
            context(case, dtype, seed, impl_name_opt, "backward"))


@pytest.mark.parametrize("rank", [1, 2, 3])
@settings(max_examples=examples(20))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_adaptive_pool_to_size_1_is_the_global_mean_and_max(rank, data, seed, dtype, impl,
                                                            impl_name_opt):
    """output_size = 1: adaptive average is the mean over every spatial axis, adaptive max the
    maximum (exactly; index = the first maximum's flat offset) and its dx all dy at it."""
    drawn = data.draw(strategy(ADAPTIVE_AVG, rank), label="case")
    avg = dataclasses.replace(drawn, output_size=1)
    a = avg.arrays(dtype, seed)
    x = a["x"]
    axes = tuple(range(2, 2 + rank))
    where = context(avg, dtype, seed, impl_name_opt, "forward")
    compare("adaptive_avg_pool(x, 1) vs the mean", avg.forward(impl, a)["y"],
            x.astype(np.float64).mean(axis=axes, keepdims=True),
            tol.SAFETY * tol.forward_bounds(avg, a, dtype)["y"], where)
    mx = ADAPTIVE_MAX.case_type(avg.shape, 1, kind=data.draw(
        st.sampled_from(["ties", "normal"]), label="values"))
    a = mx.arrays(dtype, seed)
    x = a["x"]
    out = mx.forward(impl, a)
    flat = x.reshape(*x.shape[:2], -1)
    first = np.argmax(flat, axis=2)
    where = context(mx, dtype, seed, impl_name_opt, "forward")
    same_bits("adaptive_max_pool(x, 1) vs the max", out["y"],
              np.take_along_axis(flat, first[..., None], axis=2).reshape(out["y"].shape), where)
    compare("indices", out["indices"].reshape(first.shape), first, 0, where)
    want_dx = np.zeros(flat.shape)
    np.put_along_axis(want_dx, first[..., None], a["dy"].reshape(*first.shape, 1), axis=2)
    compare("dx", mx.backward(impl, a)["dx"], want_dx.reshape(x.shape), 0,
            context(mx, dtype, seed, impl_name_opt, "backward"))


@pytest.mark.parametrize("rank", RANKS["adaptive_max_pool"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_adaptive_max_pool_ties_go_to_the_first_maximum_of_each_bin(rank, data, seed, dtype,
                                                                    impl, impl_name_opt):
    """Indices are the first maximum (row-major bin order) of each bin's cells (brute force:
    ops.adaptive_max_pool.first_max_indices), y is x there bit for bit, and the backward sends
    each bin's dy to its index, accumulating where bins overlap."""
    case = data.draw(strategy(ADAPTIVE_MAX, rank, kind=data.draw(
        st.sampled_from(["ties", "signed_zeros"]), label="values")), label="case")
    a = case.arrays(dtype, seed)
    expected_idx = adaptive_first_max_indices(case, a["x"])
    out = case.forward(impl, a)
    where = context(case, dtype, seed, impl_name_opt, "forward")
    if case.return_indices:
        compare("indices", out["indices"], expected_idx, 0, where)
    n, c, *size = case.shape
    flat_x = a["x"].reshape(n, c, -1)
    picked = np.take_along_axis(flat_x, expected_idx.reshape(n, c, -1), axis=2)
    same_bits("y vs x at the first maximum", out["y"], picked.reshape(out["y"].shape), where)
    flat = np.zeros((n * c, int(np.prod(size))))
    bins = int(np.prod(expected_idx.shape[2:]))
    rows = np.repeat(np.arange(n * c), bins)
    np.add.at(flat, (rows, expected_idx.reshape(-1)), a["dy"].astype(np.float64).reshape(-1))
    compare("dx (tie rule)", case.backward(impl, a)["dx"], flat.reshape(case.shape),
            tol.SAFETY * tol.backward_bounds(case, a, dtype)["dx"],
            context(case, dtype, seed, impl_name_opt, "backward"))
