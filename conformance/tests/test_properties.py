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
from ..ops.conv import ConvCase
from ..ops.max_pool import first_max_indices
from ..profiles import examples
from ..sampler import DTYPES, any_case, seeds, strategy

CONV, POOL, PAD, AVG = record("conv"), record("max_pool"), record("pad"), record("avg_pool")
RANKS = {r.name: [pytest.param(k, id=f"{k}d") for k in r.ranks] for r in RECORDS}


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


@pytest.mark.parametrize("rank", RANKS["conv"])
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


def _conv_t_with_conv(data: Any, rank: int, seed: int, dtype: Any) -> tuple[Any, Any, dict, dict]:
    """A drawn transposed-conv case without bias and with output_padding < stride (the sizes a
    conv with the same stride, padding, dilation and groups maps back to x), and that conv: its
    input z has the transposed output's shape, its weight is the same w read as (Co', C'/G)."""
    drawn = data.draw(strategy(CONV_T, rank), label="case")
    _, s, p, e, _ = drawn.geometry()
    case = dataclasses.replace(drawn, bias=False, output_padding=tuple(
        min(ei, si - 1) for ei, si in zip(e, s, strict=True)))
    conv = ConvCase(case.output_shape(), case.w_shape, bias=False, stride=case.stride,
                    padding=tuple(p), dilation=case.dilation, groups=case.groups)
    assert conv.output_shape() == case.x_shape
    t_arrays = case.arrays(dtype, seed)
    c_arrays = conv.arrays(dtype, seed + 1)
    c_arrays["w"] = t_arrays["w"]
    return case, conv, t_arrays, c_arrays


@pytest.mark.parametrize("rank", RANKS["conv_transpose"])
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds)
def test_conv_transpose_is_the_adjoint_of_conv(rank, data, seed, impl, impl_name_opt):
    """<conv(z, w), x> == <z, conv_transpose(x, w)> with the same stride, padding, dilation,
    groups and the output_padding that restores z's size; in float64."""
    case, conv, a, c = _conv_t_with_conv(data, rank, seed, np.float64)
    y_conv = conv.forward(impl, c)["y"]  # (N, C, *S): x's shape
    y_t = case.forward(impl, a)["y"]  # (N, Co, *So): z's shape
    atol = _dot_atol((a["x"], y_conv, tol.forward_bounds(conv, c, np.float64)["y"]),
                     (c["x"], y_t, tol.forward_bounds(case, a, np.float64)["y"]))
    compare("<conv(z, w), x> vs <z, conv_transpose(x, w)>", float(np.sum(c["x"] * y_t)),
            float(np.sum(y_conv * a["x"])), atol,
            context(case, np.float64, seed, impl_name_opt, "forward"))


@pytest.mark.parametrize("rank", RANKS["conv_transpose"])
@settings(max_examples=examples(30))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_conv_transpose_dx_is_conv_and_conv_dx_is_conv_transpose(rank, data, seed, dtype, impl,
                                                                 impl_name_opt):
    """conv_transpose's dx(dy) == conv(dy, w); conv's dx(g) == conv_transpose(g, w)."""
    case, conv, a, c = _conv_t_with_conv(data, rank, seed, dtype)
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


@pytest.mark.parametrize("rank", RANKS["pad"])
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


@pytest.mark.parametrize("rank", RANKS["avg_pool"])
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
