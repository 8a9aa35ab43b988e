"""Oracle-free properties: identities any correct implementation satisfies.

Each property compares two computations by the implementation under test; the tolerance is the
sum of the two computations' error bounds (tolerance module), never a guessed constant.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..cases import ConvCase, PadCase, PoolCase
from ..harness import context
from ..profiles import examples
from ..strategies import DTYPES, batch_norm_cases, conv_cases, pad_cases, pool_cases, seeds

U64 = tol.unit_roundoff(np.float64)


def _dot_atol(*pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Bound for <a, b> computed in float64 where b carries elementwise error bound e_b."""
    total = 0.0
    for a, b, e_b in pairs:
        total += float(np.sum(np.abs(a) * np.broadcast_to(e_b, b.shape)))
        total += tol.gamma(a.size, np.float64) * float(np.sum(np.abs(a * b)))
    return tol.SAFETY * total


@pytest.mark.checks("conv2d_backward")
@settings(max_examples=examples(100))
@given(case=conv_cases(), seed=seeds)
def test_conv_backward_is_the_adjoint_of_forward(case, seed, impl, impl_name_opt):
    """<conv(x, w), g> == <x, dx(g)> == <w, dw(g)>, and db == the sum of g: all in float64."""
    case = dataclasses.replace(case, bias=False)
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
        tol.compare(f"<conv(x,w),g> vs <{name}, d{name}>", rhs, lhs, atol, where)
    tol.compare("db", g["db"], a["dy"].sum(axis=(0, 2, 3)), 2 * bwd_b["db"], where)


@pytest.mark.checks("pad_backward")
@settings(max_examples=examples(100))
@given(case=pad_cases(), seed=seeds)
def test_pad_backward_is_the_adjoint_of_pad(case, seed, impl, impl_name_opt):
    """<pad(x), g> == <x, pad_backward(g)> for every mode (constant value 0)."""
    case = dataclasses.replace(case, value=0.0)
    a = case.arrays(np.float64, seed)
    y, dx = case.forward(impl, a)["y"], case.backward(impl, a)["dx"]
    atol = _dot_atol((a["dy"], y, 0.0),
                     (a["x"], dx, tol.backward_bounds(case, a, np.float64)["dx"]))
    tol.compare("<pad(x), g> vs <x, pad_backward(g)>", float(np.sum(a["x"] * dx)),
                float(np.sum(y * a["dy"])), atol, context(case, np.float64, seed, impl_name_opt))


@settings(max_examples=examples(60))
@given(case=conv_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_grouped_conv_is_the_concatenation_of_per_group_convs(case, seed, dtype, impl,
                                                              impl_name_opt):
    groups = case.groups if case.groups > 1 else 2
    n, _, h, w = case.x_shape
    co, cg, kh, kw = case.w_shape
    case = dataclasses.replace(case, x_shape=(n, cg * groups, h, w),
                               w_shape=(co // case.groups * groups, cg, kh, kw), groups=groups)
    a = case.arrays(dtype, seed)
    whole = case.forward(impl, a)["y"]
    per = case.w_shape[0] // groups
    parts = [
        impl.conv2d(a["x"][:, i * cg:(i + 1) * cg], a["w"][i * per:(i + 1) * per],
                    None if "b" not in a else a["b"][i * per:(i + 1) * per],
                    stride=case.stride, padding=case.padding, dilation=case.dilation)
        for i in range(groups)
    ]
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    tol.compare("grouped conv vs per-group convs", whole, np.concatenate(parts, axis=1), atol,
                context(case, dtype, seed, impl_name_opt))


@settings(max_examples=examples(60))
@given(case=conv_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_strided_conv_is_the_stride_one_output_subsampled(case, seed, dtype, impl,
                                                          impl_name_opt):
    if case.padding == "same":  # 'same' pads depend on the stride; fix them explicitly
        case = dataclasses.replace(case, padding=case.resolved_pads())
    a = case.arrays(dtype, seed)
    strided = case.forward(impl, a)["y"]
    dense = impl.conv2d(a["x"], a["w"], a.get("b"), stride=1, padding=case.padding,
                        dilation=case.dilation, groups=case.groups)
    sh, sw = (case.stride, case.stride) if isinstance(case.stride, int) else case.stride
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    tol.compare("stride s vs stride 1 subsampled", strided, dense[:, :, ::sh, ::sw], atol,
                context(case, dtype, seed, impl_name_opt))


@settings(max_examples=examples(60))
@given(case=conv_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_dilated_conv_is_a_conv_with_a_zero_inserted_kernel(case, seed, dtype, impl,
                                                            impl_name_opt):
    if case.padding == "same":
        case = dataclasses.replace(case, padding=case.resolved_pads())
    a = case.arrays(dtype, seed)
    dilated = case.forward(impl, a)["y"]
    dh, dw = (case.dilation,) * 2 if isinstance(case.dilation, int) else case.dilation
    co, cg, kh, kw = case.w_shape
    spread = np.zeros((co, cg, (kh - 1) * dh + 1, (kw - 1) * dw + 1), dtype=dtype)
    spread[:, :, ::dh, ::dw] = a["w"]
    plain = impl.conv2d(a["x"], spread, a.get("b"), stride=case.stride, padding=case.padding,
                        groups=case.groups)
    atol = 2 * tol.SAFETY * tol.forward_bounds(case, a, dtype)["y"]
    tol.compare("dilated kernel vs zero-inserted kernel", dilated, plain, atol,
                context(case, dtype, seed, impl_name_opt))


@settings(max_examples=examples(100))
@given(case=pool_cases(kind="ties"), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_max_pool_ties_go_to_the_first_maximum_in_window_order(case, seed, dtype, impl,
                                                               impl_name_opt):
    """Indices are the first maximum (row-major window order) of each window's input cells;
    the backward sends each window's dy to its index, accumulating."""
    a = case.arrays(dtype, seed)
    out = case.forward(impl, a)
    expected_idx = _first_max_indices(case, a["x"])
    where = context(case, dtype, seed, impl_name_opt)
    tol.compare("indices", out["indices"], expected_idx, 0, where)
    n, c, h, w = case.shape
    flat = np.zeros((n * c, h * w))
    rows = np.repeat(np.arange(n * c), expected_idx[0, 0].size)
    np.add.at(flat, (rows, expected_idx.reshape(-1)), a["dy"].astype(np.float64).reshape(-1))
    dx = case.backward(impl, a)["dx"]
    tol.compare("dx (tie rule)", dx, flat.reshape(case.shape),
                tol.SAFETY * tol.backward_bounds(case, a, dtype)["dx"], where)


def _first_max_indices(case: PoolCase, x: np.ndarray) -> np.ndarray:
    """Brute force over explicit index lists (no windowing helper): the first max wins."""
    from ..cases import _pads, _pair

    k, d = _pair(case.kernel_size), _pair(case.dilation)
    s = k if case.stride is None else _pair(case.stride)
    (t, _), (l, _) = _pads(case.padding)
    n, c, h, w = case.shape
    ho, wo = case.output_shape()[2:]
    out = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            cells = [
                (r, q)
                for r in (i * s[0] + p * d[0] - t for p in range(k[0]))
                for q in (j * s[1] + qq * d[1] - l for qq in range(k[1]))
                if 0 <= r < h and 0 <= q < w
            ]
            flat = np.array([r * w + q for r, q in cells])
            values = x.reshape(n, c, -1)[:, :, flat]
            out[:, :, i, j] = flat[np.argmax(values, axis=2)]  # argmax: first maximum
    return out


@settings(max_examples=examples(60))
@given(case=st.one_of(conv_cases(), pad_cases(), pool_cases(), batch_norm_cases()), seed=seeds)
def test_float32_agrees_with_float64_within_the_float32_error_model(case, seed, impl,
                                                                    impl_name_opt):
    """Outputs keep float32 and agree with the float64 run on the same values."""
    from ..harness import check_against_reference

    for direction in ("forward", "backward"):
        check_against_reference(case, impl, impl, np.float32, seed, impl_name_opt, direction)


def test_inputs_are_never_mutated(impl):
    from ..cases import BatchNormCase

    for case in (ConvCase((2, 4, 5, 6), (4, 2, 3, 2), True, 2, ((1, 0), (2, 1)), 1, 2),
                 PadCase((2, 3, 4, 5), ((1, 2), (0, 3)), "reflect"),
                 PoolCase((2, 3, 5, 7), 3, 2, 1, 1, True, "ties"),
                 BatchNormCase((3, 2, 4, 5), True, True)):
        a = case.arrays(np.float64, 7)
        before = {k: v.copy() for k, v in a.items()}
        case.forward(impl, a)
        case.backward(impl, a)
        for k, v in a.items():
            np.testing.assert_array_equal(v, before[k], err_msg=f"{case.op} modified {k}")
