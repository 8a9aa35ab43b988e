"""Smoke tests of the framework adapters, at spatial ranks 1, 2 and 3.

The shared argument helpers (framework-free), then hand-written cases whose answers are obvious
(each adapter on its own; 2-D literals, and the same cases at every rank as outer products), then
torch vs TensorFlow (and SciPy, forward) agreement on seeded random configurations per rank,
forward and backward, in float32 and float64. Tolerances are relative to the magnitude of the
summed terms.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from conformance.backends import BACKEND_NAMES, Unsupported, load_backend
from conformance.backends import arguments as helpers
from conformance.frameworks import require

FORWARD = [
    pytest.param("torch", marks=pytest.mark.torch),
    pytest.param("tensorflow", marks=pytest.mark.tf),
    pytest.param("jax", marks=pytest.mark.jax),
    pytest.param("scipy"),
]
DIFFERENTIABLE = FORWARD[:3]
DTYPES = [np.float32, np.float64]
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
RANKS = pytest.mark.parametrize("rank", [1, 2, 3], ids=["1d", "2d", "3d"])


def _backend(name: str):
    require(name)
    return load_backend(name)


@pytest.fixture(params=FORWARD)
def backend(request):
    return _backend(request.param)


@pytest.fixture(params=DIFFERENTIABLE)
def diff_backend(request):
    return _backend(request.param)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)


def _fn(backend, family: str, rank: int, backward: bool = False):
    """backend.conv{rank}d, backend.max_pool{rank}d_backward, ..."""
    return getattr(backend, f"{family}{rank}d" + ("_backward" if backward else ""))


def _outer(*vectors) -> np.ndarray:
    """Outer product of per-axis vectors (an (N=1, C=1, ...) array): separable hand answers."""
    out = functools.reduce(np.multiply.outer, [np.asarray(v, np.float64) for v in vectors])
    return out[None, None]


def _channel_axes(ndim: int) -> tuple[int, ...]:
    return (0, *range(2, ndim))


def _same(actual: np.ndarray, expected, dtype: np.dtype) -> None:
    """Shape and dtype first, then values (hand cases are exact up to rounding)."""
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    assert actual.dtype == dtype
    np.testing.assert_allclose(actual, expected, rtol=0,
                               atol=TOL[dtype] * max(1.0, np.abs(expected).max()))


def _close(actual: np.ndarray, expected: np.ndarray, scale: float | None = None) -> None:
    """Agreement between frameworks: |a - e| <= tol * magnitude of the summed terms."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    mag = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0, scale or 0.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[expected.dtype] * mag)


# ------------------------------------------------------------------------------- load_backend


def test_backend_names_and_aliases():
    assert BACKEND_NAMES == ("nnref", "torch", "tensorflow", "scipy", "jax", "onnx-ref",
                             "onnxruntime")
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend("caffe")


def test_unsupported_carries_id():
    err = Unsupported("scipy-no-autodiff", "no gradients")
    assert err.divergence_id == "scipy-no-autodiff"
    assert "scipy-no-autodiff" in str(err) and "no gradients" in str(err)


def test_load_backend_missing_framework(monkeypatch):
    import conformance.backends as backends

    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"'torch'.*not installed"):
        load_backend("torch")


def test_require_skips_unless_required(monkeypatch):
    from conformance import frameworks

    missing = "nnref_no_such_framework_for_tests"
    monkeypatch.delenv(frameworks.ENV_VAR, raising=False)
    with pytest.raises(pytest.skip.Exception):
        frameworks.require(missing)
    monkeypatch.setenv(frameworks.ENV_VAR, f"torch, {missing}")
    assert frameworks.required() == {"torch", missing}
    with pytest.raises(ImportError, match=frameworks.ENV_VAR):
        frameworks.require(missing)
    monkeypatch.setenv(frameworks.ENV_VAR, "tf")
    assert frameworks.required() == {"tensorflow"}


def test_groups_must_divide_channels(backend):
    x = np.ones((1, 3, 4, 4))
    with pytest.raises(ValueError, match="groups"):
        backend.conv2d(x, np.ones((4, 1, 2, 2)), groups=2)


@pytest.mark.tf
def test_tf_alias():
    require("tensorflow")
    assert load_backend("tf") is load_backend("tensorflow")


# --------------------------------------------------------- shared argument helpers (no framework)


def test_per_axis_and_pad_pairs():
    assert helpers.per_axis(2, "k", 3) == (2, 2, 2)
    assert helpers.per_axis((1, 2, 3), "k", 3) == (1, 2, 3)
    assert helpers.per_axis([np.int64(4)], "k", 1) == (4,)
    for bad in ((1, 2), 0, (1, True, 1), 1.0):
        with pytest.raises(ValueError, match="k"):
            helpers.per_axis(bad, "k", 3)
    assert helpers.pad_pairs(1, 1) == ((1, 1),)
    assert helpers.pad_pairs((1,), 1) == helpers.pad_pairs([1], 1) == ((1, 1),)
    assert helpers.pad_pairs(((0, 2),), 1) == ((0, 2),)
    assert helpers.pad_pairs((1, (0, 2)), 2) == ((1, 1), (0, 2))
    assert helpers.pad_pairs((1, (0, 2), [3, 4]), 3) == ((1, 1), (0, 2), (3, 4))
    for bad, rank in (((0, 2), 1), ((1, 2), 3), (((1, 2, 3),), 1), ((-1,), 1), ("same", 1)):
        with pytest.raises(ValueError, match="padding"):
            helpers.pad_pairs(bad, rank)


def test_conv_args_and_same_pads():
    k, s, pads, d = helpers.conv_args((1, 4, 5, 6, 7), (6, 2, 2, 4, 1), 3, (1, 2, 3), "same", 1, 2)
    assert (k, s, d) == ((2, 4, 1), (1, 2, 3), (1, 1, 1))
    assert pads == ((0, 1), (1, 1), (0, 0))  # the odd extra at the end of each axis
    assert helpers.conv_args((1, 1, 5), (1, 1, 3), 1, 1, "valid", 2, 1)[2] == ((0, 0),)
    with pytest.raises(ValueError, match="x must be 3-D"):
        helpers.conv_args((1, 1, 5, 5), (1, 1, 3, 3), 1, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="w must be 5-D"):
        helpers.conv_args((1, 1, 5, 5, 5), (1, 1, 3, 3), 3, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="groups"):
        helpers.conv_args((1, 4, 5), (6, 2, 3), 1, 1, 0, 1, 3)


def test_pool_geometry():
    geo = helpers.pool_geometry((1, 1, 5), 1, 2, 2, 1, 1, True)
    assert geo.out == (3,) and geo.symmetric  # the ceil window starting in the padding is dropped
    geo = helpers.pool_geometry((1, 1, 1, 3, 4), 3, (1, 2, 2), None, (0, (1, 0), 1), (1, 2, 1),
                                False)
    assert geo.stride == (1, 2, 2) and not geo.symmetric
    assert geo.floor_pads == tuple((b, a + e) for (b, a), e in zip(geo.pads, geo.extra,
                                                                   strict=True))
    assert geo.hit.shape == geo.out
    ind, inside = geo.flat_index((np.array([0, 0]), np.array([1, 0]), np.array([1, 5])))
    assert ind.tolist() == [0, -1] and inside.tolist() == [True, False]  # (0, 0, 0) -> 0
    empty = helpers.pool_geometry((1, 1, 1), 1, 2, 1, 1, 2, False)
    assert empty.out == (1,) and empty.hit.tolist() == [False]
    with pytest.raises(ValueError, match="kernel_size / 2"):
        helpers.pool_geometry((1, 1, 9), 1, 2, 1, 2, 3, False)


def test_rank_and_batch_norm_helpers():
    assert [helpers.spatial_rank((1, 1) + (2,) * r) for r in (1, 2, 3)] == [1, 2, 3]
    for shape in ((1, 1), (1, 1, 1, 1, 1, 1)):
        with pytest.raises(ValueError, match="3-D"):
            helpers.spatial_rank(shape)
    assert helpers.bn_axes(2) == (0,) and helpers.bn_axes(5) == (0, 2, 3, 4)
    assert helpers.channel_shape(3) == (1, -1, 1)
    assert helpers.bn_check(np.ones((2, 3, 4, 5, 6)), None, None, True) == 240
    for shape in ((1, 3), (1, 3, 1, 1, 1)):
        with pytest.raises(ValueError, match="more than one value"):
            helpers.bn_check(np.ones(shape), None, None, True)
    with pytest.raises(ValueError, match="x must be"):
        helpers.bn_check(np.ones((2,)), None, None, True)


# ------------------------------------------------------------------- hand-written: padding

ROW = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 4)
PAD_ROW = {
    "constant": [9, 9, 1, 2, 3, 4, 9, 9],
    "reflect": [3, 2, 1, 2, 3, 4, 3, 2],
    "replicate": [1, 1, 1, 2, 3, 4, 4, 4],
    "circular": [3, 4, 1, 2, 3, 4, 1, 2],
}
PAD_ROW_ADJOINT = {  # pad_backward of all-ones: how often each cell was copied
    "constant": [1, 1, 1, 1],
    "reflect": [1, 3, 3, 1],
    "replicate": [3, 1, 1, 3],
    "circular": [2, 2, 2, 2],
}


@pytest.mark.parametrize("mode", list(PAD_ROW))
def test_pad_row(backend, dtype, mode):
    x = ROW.astype(dtype)
    before = x.copy()
    y = backend.pad(x, ((0, 0), (2, 2)), mode, value=9.0)
    _same(y, np.array(PAD_ROW[mode]).reshape(1, 1, 1, 8), dtype)
    np.testing.assert_array_equal(x, before)


def test_pad_two_axes_asymmetric(backend, dtype):
    x = np.arange(6.0).reshape(1, 1, 2, 3).astype(dtype)
    y = backend.pad(x, ((1, 0), (0, 2)), "constant", value=-1.0)
    _same(y, [[[[-1, -1, -1, -1, -1], [0, 1, 2, -1, -1], [3, 4, 5, -1, -1]]]], dtype)
    y = backend.pad(x, 1, "replicate")
    _same(y[0, 0, 0], [0, 0, 1, 2, 2], dtype)
    _same(y[0, 0, :, 0], [0, 0, 3, 3], dtype)


@pytest.mark.parametrize("mode", list(PAD_ROW_ADJOINT))
def test_pad_backward_row(diff_backend, dtype, mode):
    dy = np.ones((1, 1, 1, 8), dtype)
    dx = diff_backend.pad_backward(dy, ((0, 0), (2, 2)), mode)
    _same(dx, np.array(PAD_ROW_ADJOINT[mode]).reshape(1, 1, 1, 4), dtype)


# ------------------------------------------------------------------ hand-written: conv2d


def test_conv_ones(backend, dtype):
    x = np.ones((1, 1, 3, 3), dtype)
    w = np.ones((1, 1, 2, 2), dtype)
    _same(backend.conv2d(x, w, np.array([0.5], dtype)), np.full((1, 1, 2, 2), 4.5), dtype)
    y = backend.conv2d(x, w, padding=1)
    _same(y, [[[[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]]], dtype)


def test_conv_is_cross_correlation(backend, dtype):
    x = np.arange(9.0).reshape(1, 1, 3, 3).astype(dtype)
    w = np.array([[1.0, 0.0], [0.0, 0.0]], dtype).reshape(1, 1, 2, 2)
    _same(backend.conv2d(x, w), x[:, :, :2, :2], dtype)  # picks the top-left tap, not flipped


def test_conv_stride_dilation(backend, dtype):
    x = np.arange(25.0).reshape(1, 1, 5, 5).astype(dtype)
    w = np.ones((1, 1, 2, 2), dtype)
    _same(backend.conv2d(x, w, stride=2, dilation=2), [[[[24, 32], [64, 72]]]], dtype)


def test_conv_groups(backend, dtype):
    x = np.array([2.0, 3.0], dtype).reshape(1, 2, 1, 1)
    w = np.array([10.0, 100.0], dtype).reshape(2, 1, 1, 1)
    _same(backend.conv2d(x, w, groups=2), np.array([20.0, 300.0]).reshape(1, 2, 1, 1), dtype)


def test_conv_same_padding_places_extra_at_end(backend, dtype):
    x = np.ones((1, 1, 4, 4), dtype)
    w = np.ones((1, 1, 2, 2), dtype)
    y = backend.conv2d(x, w, padding="same")
    assert y.shape == (1, 1, 4, 4)
    assert y[0, 0, 0, 0] == 4 and y[0, 0, 3, 3] == 1  # extra row / column at bottom / right
    y = backend.conv2d(np.ones((1, 1, 5, 5), dtype), np.ones((1, 1, 3, 3), dtype), stride=2,
                       padding="same")
    _same(y, [[[[4, 6, 4], [6, 9, 6], [4, 6, 4]]]], dtype)


def test_conv_asymmetric_padding(backend, dtype):
    x = np.ones((1, 1, 2, 2), dtype)
    w = np.ones((1, 1, 1, 1), dtype)
    _same(backend.conv2d(x, w, padding=((1, 0), (0, 2))), [[[[0, 0, 0, 0], [1, 1, 0, 0],
                                                            [1, 1, 0, 0]]]], dtype)


def test_conv_backward_ones(diff_backend, dtype):
    x = np.ones((1, 1, 3, 3), dtype)
    w = np.ones((1, 1, 2, 2), dtype)
    dx, dw, db = diff_backend.conv2d_backward(np.ones((1, 1, 2, 2), dtype), x, w)
    _same(dx, [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]], dtype)
    _same(dw, np.full((1, 1, 2, 2), 4.0), dtype)
    _same(db, [4.0], dtype)


# -------------------------------------------------------------- hand-written: max pooling


def test_pool_simple(backend, dtype):
    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype).reshape(1, 1, 2, 2)
    _same(backend.max_pool2d(x, 2), [[[[4.0]]]], dtype)
    if backend.NAME != "scipy":
        _, ind = backend.max_pool2d(x, 2, return_indices=True)
        assert ind.dtype == np.int64 and ind.tolist() == [[[[3]]]]


def test_pool_ceil_mode_and_padding(backend, dtype):
    x = np.arange(25.0).reshape(1, 1, 5, 5).astype(dtype)
    _same(backend.max_pool2d(x, 2), [[[[6, 8], [16, 18]]]], dtype)
    _same(backend.max_pool2d(x, 2, ceil_mode=True), [[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]],
          dtype)
    # padding 1, ceil_mode: the fourth window would start in the right padding and is dropped.
    y = backend.max_pool2d(x, 2, 2, padding=1, ceil_mode=True)
    _same(y, [[[[0, 2, 4], [10, 12, 14], [20, 22, 24]]]], dtype)


def test_pool_asymmetric_padding_and_dilation(backend, dtype):
    x = np.array([[[[5.0]]]], dtype)
    _same(backend.max_pool2d(x, 2, 1, padding=((1, 0), (0, 1))), [[[[5.0]]]], dtype)
    x = np.arange(9.0).reshape(1, 1, 3, 3).astype(dtype)
    _same(backend.max_pool2d(x, 2, 1, dilation=2), [[[[8.0]]]], dtype)
    _same(backend.max_pool2d(-x, 2, 1, dilation=2), [[[[0.0]]]], dtype)


def test_pool_empty_window(backend, dtype):
    x = np.array([[[[3.0]], [[5.0]]]], dtype)
    cfg = {"kernel_size": (1, 2), "stride": 1, "padding": (0, 1), "dilation": (1, 2)}
    y = backend.max_pool2d(x, **cfg)
    assert y.shape == (1, 2, 1, 1) and np.all(np.isneginf(y))
    if backend.NAME != "scipy":
        _, ind = backend.max_pool2d(x, return_indices=True, **cfg)
        assert ind.ravel().tolist() == [-1, -1]


def test_pool_ties_indices(diff_backend, dtype):
    _, ind = diff_backend.max_pool2d(np.ones((1, 1, 3, 3), dtype), 2, 1, return_indices=True)
    assert ind.ravel().tolist() == [0, 1, 3, 4]


def test_pool_backward_ties(diff_backend, dtype):
    x = np.ones((1, 1, 3, 3), dtype)
    dx = diff_backend.max_pool2d_backward(np.ones((1, 1, 2, 2), dtype), x, 2, 1)
    _same(dx, [[[[1, 1, 0], [1, 1, 0], [0, 0, 0]]]], dtype)
    dy = np.array([[1.0, 10.0], [100.0, 1000.0]], dtype).reshape(1, 1, 2, 2)
    dx = diff_backend.max_pool2d_backward(dy, x, 2, 1)
    _same(dx, [[[[1, 10, 0], [100, 1000, 0], [0, 0, 0]]]], dtype)


def test_pool_backward_empty_window(diff_backend, dtype):
    x = np.array([[[[3.0]], [[5.0]]]], dtype)
    dx = diff_backend.max_pool2d_backward(np.array([[[[10.0]], [[20.0]]]], dtype), x, (1, 2), 1,
                                          (0, 1), (1, 2))
    _same(dx, np.zeros((1, 2, 1, 1)), dtype)


# --------------------------------------------------------------- hand-written: batch norm


def test_batch_norm_training(backend, dtype):
    x = np.array([1.0, 3.0], dtype).reshape(2, 1, 1, 1)
    _same(backend.batch_norm(x, None, None, eps=0.0), [[[[-1.0]]], [[[1.0]]]], dtype)
    g, b = np.array([2.0], dtype), np.array([1.0], dtype)
    y, rm, rv = backend.batch_norm(x, g, b, np.array([0.0], dtype), np.array([1.0], dtype),
                                   momentum=0.5, eps=0.0)
    _same(y, [[[[-1.0]]], [[[3.0]]]], dtype)
    _same(rm, [1.0], dtype)  # 0.5 * 0 + 0.5 * 2
    _same(rv, [1.5], dtype)  # 0.5 * 1 + 0.5 * 2 (unbiased batch variance 2)


def test_batch_norm_eval(backend, dtype):
    x = np.array([1.0, 3.0], dtype).reshape(2, 1, 1, 1)
    y = backend.batch_norm(x, None, None, np.array([1.0], dtype), np.array([3.0], dtype),
                           training=False, eps=1.0)
    _same(y, [[[[0.0]]], [[[1.0]]]], dtype)
    with pytest.raises(ValueError, match="running"):
        backend.batch_norm(x, None, None, training=False)


def test_batch_norm_backward(diff_backend, dtype):
    x = np.array([1.0, 3.0, 2.0, 6.0], dtype).reshape(2, 2, 1, 1)
    g = np.array([2.0, 3.0], dtype)
    dy = np.ones_like(x)
    dx, dg, db = diff_backend.batch_norm_backward(dy, x, g, eps=0.0)
    _same(dx, np.zeros((2, 2, 1, 1)), dtype)  # a constant dy is normalised away
    _same(dg, [0.0, 0.0], dtype)
    _same(db, [2.0, 2.0], dtype)
    rm, rv = np.array([0.0, 1.0], dtype), np.array([3.0, 8.0], dtype)
    dy = np.array([1.0, 2.0, 3.0, 4.0], dtype).reshape(2, 2, 1, 1)
    dx, dg, db = diff_backend.batch_norm_backward(dy, x, g, 1.0, rm, rv, training=False)
    _same(dx, dy * np.array([1.0, 1.0]).reshape(1, 2, 1, 1), dtype)  # gamma / sqrt(rv + eps)
    _same(dg, [1 * 0.5 + 3 * 1.0, 2 * (2 / 3) + 4 * (5 / 3)], dtype)
    _same(db, [4.0, 6.0], dtype)


# ---------------------------------------------------- hand-written: the same cases at every rank


def _line(rank: int, values) -> np.ndarray:
    """`values` along the last axis of a (1, 1, 1, ..., L) array of the given rank."""
    values = np.asarray(values, np.float64)
    return values.reshape((1, 1) + (1,) * (rank - 1) + (values.size,))


@RANKS
@pytest.mark.parametrize("mode", list(PAD_ROW))
def test_pad_row_every_rank(backend, dtype, mode, rank):
    x = _line(rank, ROW.ravel()).astype(dtype)
    pw = ((0, 0),) * (rank - 1) + ((2, 2),)
    _same(backend.pad(x, pw, mode, value=9.0), _line(rank, PAD_ROW[mode]), dtype)
    if rank == 1:  # p, (p,) and ((b, a),) are the same padding at rank 1
        for same_pw in (2, (2,), [(2, 2)]):
            _same(backend.pad(x, same_pw, mode, value=9.0), _line(1, PAD_ROW[mode]), dtype)
        with pytest.raises(ValueError, match="pad_width"):
            backend.pad(x, (2, 2), mode)  # two entries for one axis


@RANKS
@pytest.mark.parametrize("mode", list(PAD_ROW_ADJOINT))
def test_pad_backward_row_every_rank(diff_backend, dtype, mode, rank):
    dy = np.ones(_line(rank, np.zeros(8)).shape, dtype)
    dx = diff_backend.pad_backward(dy, ((0, 0),) * (rank - 1) + ((2, 2),), mode)
    _same(dx, _line(rank, PAD_ROW_ADJOINT[mode]), dtype)


def test_pad_three_axes_asymmetric(backend, dtype):
    x = np.arange(8.0).reshape(1, 1, 2, 2, 2).astype(dtype)
    y = backend.pad(x, ((1, 0), (0, 1), 0), "constant", value=-1.0)
    expected = np.full((1, 1, 3, 3, 2), -1.0)
    expected[:, :, 1:, :2, :] = x
    _same(y, expected, dtype)
    y = backend.pad(x, (0, 0, (1, 2)), "circular")
    _same(y, np.concatenate([x[..., 1:], x, x], axis=-1), dtype)


@RANKS
def test_conv_ones_every_rank(backend, dtype, rank):
    conv = _fn(backend, "conv", rank)
    x, w = np.ones((1, 1) + (3,) * rank, dtype), np.ones((1, 1) + (2,) * rank, dtype)
    _same(conv(x, w, np.array([0.5], dtype)), np.full((1, 1) + (2,) * rank, 2**rank + 0.5), dtype)
    _same(conv(x, w, padding=1), _outer(*[[1, 2, 2, 1]] * rank), dtype)
    # cross-correlation: a kernel with only its first tap set picks the leading corner
    xi = np.arange(3.0**rank).reshape(x.shape).astype(dtype)
    w1 = np.zeros_like(w)
    w1.flat[0] = 1.0
    _same(conv(xi, w1), xi[(..., *[slice(2)] * rank)], dtype)


@RANKS
def test_conv_stride_dilation_groups_every_rank(backend, dtype, rank):
    conv = _fn(backend, "conv", rank)
    x = np.arange(5.0**rank).reshape((1, 1) + (5,) * rank).astype(dtype)
    taps = [x[(0, 0, *(slice(2 * t, 2 * t + 3, 2) for t in tap))]
            for tap in itertools.product((0, 1), repeat=rank)]
    _same(conv(x, np.ones((1, 1) + (2,) * rank, dtype), stride=2, dilation=2),
          np.sum(taps, axis=0)[None, None], dtype)
    xg = np.array([2.0, 3.0], dtype).reshape((1, 2) + (1,) * rank)
    wg = np.array([10.0, 100.0], dtype).reshape((2, 1) + (1,) * rank)
    _same(conv(xg, wg, groups=2), np.array([20.0, 300.0]).reshape(xg.shape), dtype)


@RANKS
def test_conv_same_and_asymmetric_padding_every_rank(backend, dtype, rank):
    conv = _fn(backend, "conv", rank)
    y = conv(np.ones((1, 1) + (4,) * rank, dtype), np.ones((1, 1) + (2,) * rank, dtype),
             padding="same")
    assert y.shape == (1, 1) + (4,) * rank
    assert y.flat[0] == 2**rank and y.flat[-1] == 1  # the extra pad at the end of every axis
    y = conv(np.ones((1, 1) + (5,) * rank, dtype), np.ones((1, 1) + (3,) * rank, dtype),
             stride=2, padding="same")
    _same(y, _outer(*[[2, 3, 2]] * rank), dtype)
    pw = ((1, 0),) + ((0, 2),) * (rank - 1)
    y = conv(np.ones((1, 1) + (2,) * rank, dtype), np.ones((1, 1) + (1,) * rank, dtype),
             padding=pw)
    _same(y, _outer([0, 1, 1], *[[1, 1, 0, 0]] * (rank - 1)), dtype)


@RANKS
def test_conv_backward_ones_every_rank(diff_backend, dtype, rank):
    x, w = np.ones((1, 1) + (3,) * rank, dtype), np.ones((1, 1) + (2,) * rank, dtype)
    dx, dw, db = _fn(diff_backend, "conv", rank, True)(np.ones_like(w), x, w)
    _same(dx, _outer(*[[1, 2, 1]] * rank), dtype)
    _same(dw, np.full(w.shape, 2.0**rank), dtype)
    _same(db, [2.0**rank], dtype)


@RANKS
def test_conv_rank_is_fixed_by_the_function(backend, rank):
    other = 2 if rank != 2 else 3
    x, w = np.ones((1, 1) + (3,) * other), np.ones((1, 1) + (2,) * other)
    with pytest.raises(ValueError, match=f"x must be {rank + 2}-D"):
        _fn(backend, "conv", rank)(x, w)
    with pytest.raises(ValueError, match=f"x must be {rank + 2}-D"):
        _fn(backend, "max_pool", rank)(x, 2)
    x = np.ones((1, 1) + (3,) * rank)
    with pytest.raises(ValueError, match="kernel_size"):
        _fn(backend, "max_pool", rank)(x, (2,) * (rank + 1))


@RANKS
def test_pool_simple_and_ceil_every_rank(backend, dtype, rank):
    pool = _fn(backend, "max_pool", rank)
    x = (np.arange(2.0**rank) + 1).reshape((1, 1) + (2,) * rank).astype(dtype)
    _same(pool(x, 2), np.full((1, 1) + (1,) * rank, 2.0**rank), dtype)
    if backend.NAME != "scipy":
        _, ind = pool(x, 2, return_indices=True)
        assert ind.dtype == np.int64 and ind.ravel().tolist() == [2**rank - 1]
    x = np.arange(5.0**rank).reshape((1, 1) + (5,) * rank).astype(dtype)
    for kwargs, cells in (({}, [1, 3]), ({"ceil_mode": True}, [1, 3, 4]),
                          ({"padding": 1, "ceil_mode": True}, [0, 2, 4])):  # 4th window dropped
        _same(pool(x, 2, 2, **kwargs), x[(0, 0, *np.ix_(*[cells] * rank))][None, None], dtype)


@RANKS
def test_pool_asymmetric_padding_dilation_empty_every_rank(backend, dtype, rank):
    pool = _fn(backend, "max_pool", rank)
    one = np.full((1, 1) + (1,) * rank, 5.0, dtype)
    _same(pool(one, 2, 1, padding=((1, 0),) + ((0, 1),) * (rank - 1)), one, dtype)
    x = np.arange(3.0**rank).reshape((1, 1) + (3,) * rank).astype(dtype)
    _same(pool(x, 2, 1, dilation=2), np.full(one.shape, 3.0**rank - 1), dtype)
    _same(pool(-x, 2, 1, dilation=2), np.zeros(one.shape), dtype)
    x = np.array([3.0, 5.0], dtype).reshape((1, 2) + (1,) * rank)
    lead = (1,) * (rank - 1)
    cfg = {"kernel_size": (*lead, 2), "stride": 1, "padding": (*(0,) * (rank - 1), 1),
           "dilation": (*lead, 2)}
    y = pool(x, **cfg)
    assert y.shape == x.shape and np.all(np.isneginf(y))
    if backend.NAME != "scipy":
        _, ind = pool(x, return_indices=True, **cfg)
        assert ind.ravel().tolist() == [-1, -1]
        dx = _fn(backend, "max_pool", rank, True)(np.array([10.0, 20.0], dtype).reshape(x.shape),
                                                 x, **cfg)
        _same(dx, np.zeros(x.shape), dtype)


@RANKS
def test_pool_ties_every_rank(diff_backend, dtype, rank):
    x = np.ones((1, 1) + (3,) * rank, dtype)
    _, ind = _fn(diff_backend, "max_pool", rank)(x, 2, 1, return_indices=True)
    starts = [np.ravel_multi_index(c, (3,) * rank) for c in itertools.product((0, 1), repeat=rank)]
    assert ind.ravel().tolist() == starts  # the first cell of every window
    dy = np.arange(1.0, 2.0**rank + 1).reshape((1, 1) + (2,) * rank).astype(dtype)
    dx = _fn(diff_backend, "max_pool", rank, True)(dy, x, 2, 1)
    expected = np.zeros(x.shape)
    expected[(0, 0, *[slice(2)] * rank)] = dy[0, 0]
    _same(dx, expected, dtype)


BN_SHAPES = {"2d-input": (2, 1), "1d": (2, 1, 1), "2d": (2, 1, 1, 1), "3d": (2, 1, 1, 1, 1)}


@pytest.mark.parametrize("shape", list(BN_SHAPES.values()), ids=list(BN_SHAPES))
def test_batch_norm_every_rank(backend, dtype, shape):
    x = np.array([1.0, 3.0], dtype).reshape(shape)
    _same(backend.batch_norm(x, None, None, eps=0.0), np.array([-1.0, 1.0]).reshape(shape), dtype)
    y, rm, rv = backend.batch_norm(x, np.array([2.0], dtype), np.array([1.0], dtype),
                                   np.array([0.0], dtype), np.array([1.0], dtype), momentum=0.5,
                                   eps=0.0)
    _same(y, np.array([-1.0, 3.0]).reshape(shape), dtype)
    _same(rm, [1.0], dtype)
    _same(rv, [1.5], dtype)
    y = backend.batch_norm(x, None, None, np.array([1.0], dtype), np.array([3.0], dtype),
                           training=False, eps=1.0)
    _same(y, np.array([0.0, 1.0]).reshape(shape), dtype)


@pytest.mark.parametrize("shape", list(BN_SHAPES.values()), ids=list(BN_SHAPES))
def test_batch_norm_backward_every_rank(diff_backend, dtype, shape):
    x = np.array([1.0, 3.0], dtype).reshape(shape)
    dy = np.array([1.0, 2.0], dtype).reshape(shape)
    dx, dg, db = diff_backend.batch_norm_backward(dy, x, np.array([2.0], dtype), eps=0.0)
    _same(dx, np.zeros(shape), dtype)  # two values: xhat = -1, 1 whatever the shift and scale
    _same(dg, [1.0], dtype)  # -1 * 1 + 1 * 2
    _same(db, [3.0], dtype)


# ---------------------------------------------------------- torch vs TF (vs SciPy) agreement


def _pair_backends():
    require("torch")
    require("tensorflow")
    return load_backend("torch"), load_backend("tensorflow")


def _scipy():
    require("scipy")
    return load_backend("scipy")


def _rand(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# Per rank: spatial size s, kernel k and the contract arguments; x is (2, 4, *s), w (co, 4 / g, *k)
# with co = 6 unless given. Each rank covers stride 1 with a kernel > 1, a stride above the
# kernel, asymmetric and "same" padding (odd extra at the end, with strides), dilation (with
# stride) and groups; "one-column" has one output column and a last-axis stride > 1 with one
# input channel per group (tf-onednn-conv-width1-garbage).
CONV_CONFIGS = {
    1: {
        "asymmetric-padding": dict(s=(9,), k=(3,), stride=1, padding=((1, 2),), dilation=1,
                                   groups=1),
        "same-stride-2": dict(s=(8,), k=(2,), stride=2, padding="same", dilation=1, groups=1),
        "same-stride-2-odd": dict(s=(9,), k=(3,), stride=2, padding="same", dilation=1, groups=1),
        "stride-above-kernel": dict(s=(11,), k=(2,), stride=3, padding=(1,), dilation=1,
                                    groups=1),
        "dilation-2-stride-2": dict(s=(9,), k=(3,), stride=2, padding=1, dilation=2, groups=1),
        "groups-2-dilated-same": dict(s=(9,), k=(3,), stride=2, padding="same", dilation=2,
                                      groups=2),
        "one-column": dict(s=(5,), k=(4,), stride=4, padding=0, dilation=1, groups=4, co=4),
    },
    2: {
        "asymmetric-padding": dict(s=(7, 8), k=(3, 3), stride=1, padding=((1, 2), (0, 1)),
                                   dilation=1, groups=1),
        "same-stride-2": dict(s=(8, 9), k=(2, 2), stride=2, padding="same", dilation=1, groups=1),
        "same-stride-2-odd": dict(s=(9, 10), k=(3, 3), stride=2, padding="same", dilation=1,
                                  groups=1),
        "dilation-2-stride-2": dict(s=(9, 10), k=(3, 3), stride=2, padding=1, dilation=2,
                                    groups=1),
        "groups-2": dict(s=(6, 7), k=(3, 3), stride=1, padding=1, dilation=1, groups=2),
        "groups-2-dilated-same": dict(s=(9, 10), k=(3, 3), stride=2, padding="same", dilation=2,
                                      groups=2),
        "valid-rect": dict(s=(6, 7), k=(2, 3), stride=(1, 2), padding="valid", dilation=(2, 1),
                           groups=1),
        "one-column": dict(s=(3, 5), k=(2, 4), stride=(1, 4), padding=0, dilation=1, groups=4,
                           co=4),
    },
    3: {
        "asymmetric-padding": dict(s=(4, 5, 6), k=(2, 3, 2), stride=1,
                                   padding=((1, 0), 1, (0, 2)), dilation=1, groups=1),
        "same-stride-2-odd": dict(s=(5, 4, 5), k=(3, 2, 3), stride=2, padding="same", dilation=1,
                                  groups=1),
        "stride-above-kernel": dict(s=(7, 5, 6), k=(2, 1, 2), stride=(3, 2, 4), padding=(1, 0, 1),
                                    dilation=1, groups=1),
        "dilation-stride": dict(s=(6, 5, 7), k=(2, 2, 3), stride=(2, 1, 2), padding=1,
                                dilation=(2, 1, 2), groups=1),
        "groups-2-dilated-same": dict(s=(5, 6, 5), k=(2, 3, 2), stride=(1, 2, 2), padding="same",
                                      dilation=2, groups=2),
        "one-column": dict(s=(2, 3, 5), k=(1, 2, 4), stride=(1, 1, 4), padding=0, dilation=1,
                           groups=4, co=4),
    },
}
CONV_CASES = [pytest.param(r, name, id=f"{r}d-{name}") for r in CONV_CONFIGS
              for name in CONV_CONFIGS[r]]


def _conv_inputs(rank: int, name: str, dtype, seed: str):
    cfg = CONV_CONFIGS[rank][name]
    rng = np.random.default_rng(zlib.crc32(f"{seed}{rank}-{name}".encode()))
    g, co = cfg["groups"], cfg.get("co", 6)
    x = _rand(rng, (2, 4, *cfg["s"]), dtype)
    w = _rand(rng, (co, 4 // g, *cfg["k"]), dtype)
    b = _rand(rng, (co,), dtype)
    args = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=g)
    return rng, x, w, b, args


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize(("rank", "name"), CONV_CASES)
def test_agree_conv(rank, name, dtype):
    T, TF = _pair_backends()
    rng, x, w, b, args = _conv_inputs(rank, name, dtype, "")
    ref = _fn(T, "conv", rank)(x, w, b, **args)
    scale = float(np.abs(_fn(T, "conv", rank)(np.abs(x), np.abs(w), np.abs(b), **args)).max())
    _close(_fn(TF, "conv", rank)(x, w, b, **args), ref, scale)
    _close(_fn(_scipy(), "conv", rank)(x, w, b, **args), ref, scale)

    dy = _rand(rng, ref.shape, dtype)
    grads_t = _fn(T, "conv", rank, True)(dy, x, w, **args)
    grads_f = _fn(TF, "conv", rank, True)(dy, x, w, **args)
    abs_grads = _fn(T, "conv", rank, True)(np.abs(dy), np.abs(x), np.abs(w), **args)
    for gf, gt, ga in zip(grads_f, grads_t, abs_grads, strict=True):
        _close(gf, gt, float(np.abs(ga).max()))


# Per rank, x is (2, 3, *s). Each rank covers ceil_mode with padding (a last window that would
# start in the end padding is dropped), asymmetric padding, dilation with stride and ceil_mode,
# stride 1 with a kernel > 1 and a stride above the kernel.
POOL_CONFIGS = {
    1: {
        "ceil-mode-padded": dict(s=(7,), k=3, stride=2, padding=1, dilation=1, ceil_mode=True),
        "ceil-drops-window": dict(s=(5,), k=2, stride=2, padding=1, dilation=1, ceil_mode=True),
        "asymmetric-padding": dict(s=(8,), k=2, stride=1, padding=((1, 0),), dilation=1,
                                   ceil_mode=False),
        "dilation-3-asym-ceil": dict(s=(10,), k=2, stride=3, padding=((0, 1),), dilation=3,
                                     ceil_mode=True),
        "stride-above-kernel": dict(s=(11,), k=2, stride=3, padding=(1,), dilation=2,
                                    ceil_mode=False),
    },
    2: {
        "ceil-mode-padded": dict(s=(7, 9), k=3, stride=2, padding=1, dilation=1, ceil_mode=True),
        "asymmetric-padding": dict(s=(8, 10), k=2, stride=1, padding=((1, 0), (0, 1)),
                                   dilation=1, ceil_mode=False),
        "dilation-2-stride-2-ceil": dict(s=(9, 11), k=3, stride=2, padding=1, dilation=2,
                                         ceil_mode=True),
        "dilation-3-asym-ceil": dict(s=(10, 12), k=2, stride=3, padding=((0, 1), (1, 0)),
                                     dilation=3, ceil_mode=True),
        "rect": dict(s=(6, 8), k=(2, 3), stride=(2, 1), padding=(1, 1), dilation=(1, 2),
                     ceil_mode=False),
    },
    3: {
        "ceil-mode-padded": dict(s=(5, 6, 7), k=3, stride=2, padding=1, dilation=1,
                                 ceil_mode=True),
        "ceil-drops-window": dict(s=(5, 5, 4), k=2, stride=2, padding=1, dilation=1,
                                  ceil_mode=True),
        "asymmetric-padding": dict(s=(4, 5, 6), k=2, stride=1, padding=((1, 0), 0, (0, 1)),
                                   dilation=1, ceil_mode=False),
        "dilation-asym-ceil": dict(s=(7, 6, 8), k=(2, 3, 2), stride=(3, 2, 1),
                                   padding=((0, 1), 1, (1, 0)), dilation=(2, 1, 3),
                                   ceil_mode=True),
        "stride-above-kernel": dict(s=(7, 8, 6), k=(2, 3, 1), stride=(3, 4, 2), padding=(1, 1, 0),
                                    dilation=(2, 1, 1), ceil_mode=False),
    },
}
POOL_CASES = [pytest.param(r, name, id=f"{r}d-{name}") for r in POOL_CONFIGS
              for name in POOL_CONFIGS[r]]


def _pool_args(rank: int, name: str) -> tuple[tuple[int, ...], dict]:
    cfg = POOL_CONFIGS[rank][name]
    args = dict(kernel_size=cfg["k"], stride=cfg["stride"], padding=cfg["padding"],
                dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    return (2, 3, *cfg["s"]), args


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("rank", "name"), POOL_CASES)
def test_agree_pool(rank, name, ties, dtype):
    T, TF = _pair_backends()
    shape, args = _pool_args(rank, name)
    rng = np.random.default_rng(zlib.crc32(f"{rank}-{name}-{ties}".encode()))
    x = (rng.integers(0, 3, shape) if ties else rng.permutation(np.prod(shape)).reshape(shape))
    x = x.astype(dtype)
    yt, it = _fn(T, "max_pool", rank)(x, return_indices=True, **args)
    yf, i_f = _fn(TF, "max_pool", rank)(x, return_indices=True, **args)
    np.testing.assert_array_equal(yf, yt)
    np.testing.assert_array_equal(i_f, it)
    np.testing.assert_array_equal(_fn(_scipy(), "max_pool", rank)(x, **args), yt)
    dy = _rand(rng, yt.shape, dtype)
    _close(_fn(TF, "max_pool", rank, True)(dy, x, **args),
           _fn(T, "max_pool", rank, True)(dy, x, **args), float(np.abs(dy).sum()))


BN_RANDOM_SHAPES = {"2d-input": (6, 4), "1d": (3, 4, 5), "2d": (3, 4, 5, 2), "3d": (2, 4, 3, 2, 3)}
BN_CASES = [pytest.param(shape, id=name) for name, shape in BN_RANDOM_SHAPES.items()]


def _bn_inputs(rng, shape, dtype):
    x = (_rand(rng, shape, dtype) * 3 + 2).astype(dtype)
    c = shape[1]
    g, b = _rand(rng, (c,), dtype), _rand(rng, (c,), dtype)
    rm, rv = _rand(rng, (c,), dtype), (rng.random(c) + 0.5).astype(dtype)
    return x, g, b, rm, rv


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("shape", BN_CASES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_agree_batch_norm(training, shape, dtype):
    T, TF = _pair_backends()
    rng = np.random.default_rng(11 + training + len(shape))
    x, g, b, rm, rv = _bn_inputs(rng, shape, dtype)
    args = dict(training=training, momentum=0.3, eps=1e-3)
    ref = T.batch_norm(x, g, b, rm, rv, **args)
    for other in (TF, _scipy()):
        out = other.batch_norm(x, g, b, rm, rv, **args)
        if training:
            for a, e in zip(out, ref, strict=True):
                _close(a, e, 10.0)
        else:
            _close(out, ref, 10.0)
    dy = _rand(rng, x.shape, dtype)
    grads_t = T.batch_norm_backward(dy, x, g, 1e-3, rm, rv, training=training)
    grads_f = TF.batch_norm_backward(dy, x, g, 1e-3, rm, rv, training=training)
    for gf, gt in zip(grads_f, grads_t, strict=True):
        _close(gf, gt, float(np.abs(dy).sum()))


# Per rank: x's spatial shape and per-axis pads (reflect pads < size, circular pads <= size).
PAD_CASES = {
    1: ((5,), ((4, 2),)),
    2: ((4, 5), ((1, 3), (4, 2))),
    3: ((3, 4, 5), ((2, 1), (0, 3), (4, 2))),
}


def _pad_inputs(rank: int, mode: str, dtype, seed: str):
    size, pw = PAD_CASES[rank]
    if mode == "circular":  # one pad of the full size (allowed for circular only)
        pw = (*pw[:-1], (pw[-1][0], size[-1]))
    rng = np.random.default_rng(zlib.crc32(f"{seed}{rank}-{mode}".encode()))
    return rng, _rand(rng, (2, 3, *size), dtype), pw


@pytest.mark.torch
@pytest.mark.tf
@RANKS
@pytest.mark.parametrize("mode", list(PAD_ROW))
def test_agree_pad(mode, rank, dtype):
    T, TF = _pair_backends()
    rng, x, pw = _pad_inputs(rank, mode, dtype, "")
    ref = T.pad(x, pw, mode, value=-2.5)
    np.testing.assert_array_equal(TF.pad(x, pw, mode, value=-2.5), ref)
    np.testing.assert_array_equal(_scipy().pad(x, pw, mode, value=-2.5), ref)
    dy = _rand(rng, ref.shape, dtype)
    _close(TF.pad_backward(dy, pw, mode), T.pad_backward(dy, pw, mode), 8.0)


# ------------------------- one framework at a time (the tox torch / tf environments have one)


@pytest.mark.parametrize(("rank", "name"), CONV_CASES)
def test_conv_vs_scipy_and_adjoint(diff_backend, rank, name, dtype):
    """Forward against the SciPy adapter; backward by the bilinear identities
    <dy, conv(x, w)> = <dx, x> = <dw, w> and db = sum(dy)."""
    rng, x, w, _, args = _conv_inputs(rank, name, dtype, "single-")
    y = _fn(diff_backend, "conv", rank)(x, w, **args)
    scale = float(np.abs(_fn(_scipy(), "conv", rank)(np.abs(x), np.abs(w), **args)).max())
    _close(y, _fn(_scipy(), "conv", rank)(x, w, **args), scale)
    dy = _rand(rng, y.shape, dtype)
    dx, dw, db = _fn(diff_backend, "conv", rank, True)(dy, x, w, **args)
    inner = np.vdot(dy.astype(np.float64), y)
    total = float(np.abs(dy).sum()) * scale
    tol = TOL[np.dtype(dtype)] * max(1.0, total)
    assert abs(np.vdot(dx.astype(np.float64), x) - inner) <= tol
    assert abs(np.vdot(dw.astype(np.float64), w) - inner) <= tol
    _close(db, dy.sum(axis=_channel_axes(dy.ndim), dtype=np.float64).astype(dtype),
           float(np.abs(dy).sum()))


@pytest.mark.parametrize(("rank", "name"), POOL_CASES)
def test_pool_vs_scipy_and_adjoint(diff_backend, rank, name, dtype):
    """Forward against the SciPy adapter; max pooling picks cells, so <dy, y> = <dx, x>."""
    shape, args = _pool_args(rank, name)
    rng = np.random.default_rng(zlib.crc32(f"single-{rank}-{name}".encode()))
    x = _rand(rng, shape, dtype)
    y, ind = _fn(diff_backend, "max_pool", rank)(x, return_indices=True, **args)
    np.testing.assert_array_equal(y, _fn(_scipy(), "max_pool", rank)(x, **args))
    hit = ind >= 0
    np.testing.assert_array_equal(np.isfinite(y), hit)
    planes = x.reshape(*x.shape[:2], -1)
    picked = np.take_along_axis(planes, np.where(hit, ind, 0).reshape(*ind.shape[:2], -1),
                                axis=2).reshape(ind.shape)
    np.testing.assert_array_equal(np.where(hit, picked, -np.inf), y)  # indices point at y
    dy = _rand(rng, y.shape, dtype)
    dx = _fn(diff_backend, "max_pool", rank, True)(dy, x, **args)
    inner = np.vdot(np.where(hit, dy, 0).astype(np.float64), np.where(hit, y, 0))
    tol = TOL[np.dtype(dtype)] * max(1.0, float(np.abs(dy).sum() * np.abs(x).max()))
    assert abs(np.vdot(dx.astype(np.float64), x) - inner) <= tol


@RANKS
@pytest.mark.parametrize("mode", list(PAD_ROW))
def test_pad_vs_scipy_and_adjoint(diff_backend, mode, rank, dtype):
    """Forward against the SciPy adapter; pad is linear, so <dy, pad(x)> = <pad_backward(dy), x>."""
    rng, x, pw = _pad_inputs(rank, mode, dtype, "single-")
    y = diff_backend.pad(x, pw, mode)
    np.testing.assert_array_equal(y, _scipy().pad(x, pw, mode))
    dy = _rand(rng, y.shape, dtype)
    dx = diff_backend.pad_backward(dy, pw, mode)
    tol = TOL[np.dtype(dtype)] * max(1.0, float(np.abs(dy).sum() * np.abs(x).max()))
    assert abs(np.vdot(dx.astype(np.float64), x) - np.vdot(dy.astype(np.float64), y)) <= tol


@pytest.mark.parametrize("shape", BN_CASES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_vs_scipy_and_invariances(diff_backend, training, shape, dtype):
    """Forward against the SciPy adapter; in training with eps = 0 the output ignores a shift and
    a scale of each channel, so per channel sum(dx) = 0 and sum(dx * x) = 0."""
    rng = np.random.default_rng(21 + training + len(shape))
    x, g, b, rm, rv = _bn_inputs(rng, shape, dtype)
    axes = _channel_axes(x.ndim)
    eps = 0.0 if training else 1e-3
    out = diff_backend.batch_norm(x, g, b, rm, rv, training=training, momentum=0.3, eps=eps)
    ref = _scipy().batch_norm(x, g, b, rm, rv, training=training, momentum=0.3, eps=eps)
    for a, e in zip(out if training else (out,), ref if training else (ref,), strict=True):
        _close(a, e, 10.0)
    dy = _rand(rng, x.shape, dtype)
    dx, dg, db = diff_backend.batch_norm_backward(dy, x, g, eps, rm, rv, training=training)
    _close(db, dy.sum(axis=axes, dtype=np.float64).astype(dtype), float(np.abs(dy).sum()))
    if training:
        xhat = diff_backend.batch_norm(x, None, None, eps=eps)
    else:
        xhat = diff_backend.batch_norm(x, None, None, rm, rv, training=False, eps=eps)
    _close(dg, (dy * xhat).sum(axis=axes, dtype=np.float64).astype(dtype),
           float(np.abs(dy * xhat).sum()))
    tol = TOL[np.dtype(dtype)] * 10 * float(np.abs(dy).sum() * np.abs(g).max() / x.std())
    if training:
        assert np.abs(dx.astype(np.float64).sum(axis=axes)).max() <= tol
        centred = x - x.mean(axis=axes, keepdims=True)
        assert np.abs((dx * centred).astype(np.float64).sum(axis=axes)).max() <= tol * 10
    else:
        scale = (g / np.sqrt(rv.astype(np.float64) + eps)).reshape(helpers.channel_shape(x.ndim))
        _close(dx, (dy * scale).astype(dtype), 10.0)


def _window(rank: int, x: np.ndarray) -> np.ndarray:
    return x[(slice(2), slice(None), *[slice(2)] * rank)]


@RANKS
@pytest.mark.parametrize("op", ["pad", "conv", "pool", "batch_norm"])
def test_inputs_not_mutated(backend, op: str, rank, dtype):
    calls: dict[str, Callable] = {
        "pad": lambda B, x: B.pad(x, 1, "reflect"),
        "conv": lambda B, x: _fn(B, "conv", rank)(x, _window(rank, x), stride=2, padding="same"),
        "pool": lambda B, x: _fn(B, "max_pool", rank)(x, 2, 1, ((1, 0),) + ((0, 1),) * (rank - 1),
                                                      return_indices=B.NAME != "scipy"),
        "batch_norm": lambda B, x: B.batch_norm(x, None, None, np.zeros(3, x.dtype),
                                                np.ones(3, x.dtype)),
    }
    rng = np.random.default_rng(3)
    x = _rand(rng, (2, 3) + (4,) * rank, dtype)
    before = x.copy()
    calls[op](backend, x)
    np.testing.assert_array_equal(x, before)
