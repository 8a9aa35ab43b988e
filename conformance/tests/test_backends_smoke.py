"""Smoke tests of the framework adapters.

Hand-written cases whose answers are obvious (each adapter on its own), then torch vs TensorFlow
(and SciPy, forward) agreement on seeded random configurations, forward and backward, in float32
and float64. Tolerances are relative to the magnitude of the summed terms.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

from conformance.backends import BACKEND_NAMES, Unsupported, load_backend
from conformance.frameworks import require

FORWARD = [
    pytest.param("torch", marks=pytest.mark.torch),
    pytest.param("tensorflow", marks=pytest.mark.tf),
    pytest.param("scipy"),
]
DIFFERENTIABLE = FORWARD[:2]
DTYPES = [np.float32, np.float64]
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


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
    assert BACKEND_NAMES == ("nnref", "torch", "tensorflow", "scipy")
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


CONV_CONFIGS = {
    "asymmetric-padding": dict(h=7, k=3, stride=1, padding=((1, 2), (0, 1)), dilation=1,
                               groups=1),
    "same-stride-2": dict(h=8, k=2, stride=2, padding="same", dilation=1, groups=1),
    "same-stride-2-odd": dict(h=9, k=3, stride=2, padding="same", dilation=1, groups=1),
    "dilation-2-stride-2": dict(h=9, k=3, stride=2, padding=1, dilation=2, groups=1),
    "groups-2": dict(h=6, k=3, stride=1, padding=1, dilation=1, groups=2),
    "groups-2-dilated-same": dict(h=9, k=3, stride=2, padding="same", dilation=2, groups=2),
    "valid-rect": dict(h=6, k=(2, 3), stride=(1, 2), padding="valid", dilation=(2, 1), groups=1),
}


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("name", list(CONV_CONFIGS))
def test_agree_conv(name, dtype):
    T, TF = _pair_backends()
    cfg = CONV_CONFIGS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    k = cfg["k"] if isinstance(cfg["k"], tuple) else (cfg["k"], cfg["k"])
    g = cfg["groups"]
    x = _rand(rng, (2, 4, cfg["h"], cfg["h"] + 1), dtype)
    w = _rand(rng, (6, 4 // g, *k), dtype)
    b = _rand(rng, (6,), dtype)
    args = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=g)
    ref = T.conv2d(x, w, b, **args)
    scale = float(np.abs(T.conv2d(np.abs(x), np.abs(w), np.abs(b), **args)).max())
    _close(TF.conv2d(x, w, b, **args), ref, scale)
    _close(_scipy().conv2d(x, w, b, **args), ref, scale)

    dy = _rand(rng, ref.shape, dtype)
    grads_t = T.conv2d_backward(dy, x, w, **args)
    grads_f = TF.conv2d_backward(dy, x, w, **args)
    abs_grads = T.conv2d_backward(np.abs(dy), np.abs(x), np.abs(w), **args)
    for gf, gt, ga in zip(grads_f, grads_t, abs_grads, strict=True):
        _close(gf, gt, float(np.abs(ga).max()))


POOL_CONFIGS = {
    "ceil-mode-padded": dict(h=7, k=3, stride=2, padding=1, dilation=1, ceil_mode=True),
    "asymmetric-padding": dict(h=8, k=2, stride=1, padding=((1, 0), (0, 1)), dilation=1,
                               ceil_mode=False),
    "dilation-2-stride-2-ceil": dict(h=9, k=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    "dilation-3-asym-ceil": dict(h=10, k=2, stride=3, padding=((0, 1), (1, 0)), dilation=3,
                                 ceil_mode=True),
    "rect": dict(h=6, k=(2, 3), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=False),
}


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("name", list(POOL_CONFIGS))
def test_agree_pool(name, ties, dtype):
    T, TF = _pair_backends()
    cfg = POOL_CONFIGS[name]
    rng = np.random.default_rng(zlib.crc32(f"{name}-{ties}".encode()))
    shape = (2, 3, cfg["h"], cfg["h"] + 2)
    x = (rng.integers(0, 3, shape) if ties else rng.permutation(np.prod(shape)).reshape(shape))
    x = x.astype(dtype)
    args = dict(kernel_size=cfg["k"], stride=cfg["stride"], padding=cfg["padding"],
                dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    yt, it = T.max_pool2d(x, return_indices=True, **args)
    yf, i_f = TF.max_pool2d(x, return_indices=True, **args)
    np.testing.assert_array_equal(yf, yt)
    np.testing.assert_array_equal(i_f, it)
    np.testing.assert_array_equal(_scipy().max_pool2d(x, **args), yt)
    dy = _rand(rng, yt.shape, dtype)
    _close(TF.max_pool2d_backward(dy, x, **args), T.max_pool2d_backward(dy, x, **args),
           float(np.abs(dy).sum()))


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_agree_batch_norm(training, dtype):
    T, TF = _pair_backends()
    rng = np.random.default_rng(11 + training)
    x = (_rand(rng, (3, 4, 5, 2), dtype) * 3 + 2).astype(dtype)
    g, b = _rand(rng, (4,), dtype), _rand(rng, (4,), dtype)
    rm = _rand(rng, (4,), dtype)
    rv = (rng.random(4) + 0.5).astype(dtype)
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


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("mode", list(PAD_ROW))
def test_agree_pad(mode, dtype):
    T, TF = _pair_backends()
    rng = np.random.default_rng(len(mode))
    x = _rand(rng, (2, 3, 4, 5), dtype)
    pw = ((1, 3), (4, 0)) if mode != "reflect" else ((1, 3), (4, 2))
    ref = T.pad(x, pw, mode, value=-2.5)
    np.testing.assert_array_equal(TF.pad(x, pw, mode, value=-2.5), ref)
    np.testing.assert_array_equal(_scipy().pad(x, pw, mode, value=-2.5), ref)
    dy = _rand(rng, ref.shape, dtype)
    _close(TF.pad_backward(dy, pw, mode), T.pad_backward(dy, pw, mode), 4.0)


# ------------------------- one framework at a time (the tox torch / tf environments have one)


def _conv_inputs(name: str, dtype):
    cfg = CONV_CONFIGS[name]
    rng = np.random.default_rng(zlib.crc32(f"single-{name}".encode()))
    k = cfg["k"] if isinstance(cfg["k"], tuple) else (cfg["k"], cfg["k"])
    g = cfg["groups"]
    x = _rand(rng, (2, 4, cfg["h"], cfg["h"] + 1), dtype)
    w = _rand(rng, (6, 4 // g, *k), dtype)
    args = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=g)
    return rng, x, w, args


@pytest.mark.parametrize("name", list(CONV_CONFIGS))
def test_conv_vs_scipy_and_adjoint(diff_backend, name, dtype):
    """Forward against the SciPy adapter; backward by the bilinear identities
    <dy, conv(x, w)> = <dx, x> = <dw, w> and db = sum(dy)."""
    rng, x, w, args = _conv_inputs(name, dtype)
    y = diff_backend.conv2d(x, w, **args)
    scale = float(np.abs(_scipy().conv2d(np.abs(x), np.abs(w), **args)).max())
    _close(y, _scipy().conv2d(x, w, **args), scale)
    dy = _rand(rng, y.shape, dtype)
    dx, dw, db = diff_backend.conv2d_backward(dy, x, w, **args)
    inner = np.vdot(dy.astype(np.float64), y)
    total = float(np.abs(dy).sum()) * scale
    tol = TOL[np.dtype(dtype)] * max(1.0, total)
    assert abs(np.vdot(dx.astype(np.float64), x) - inner) <= tol
    assert abs(np.vdot(dw.astype(np.float64), w) - inner) <= tol
    _close(db, dy.sum(axis=(0, 2, 3), dtype=np.float64).astype(dtype), float(np.abs(dy).sum()))


@pytest.mark.parametrize("name", list(POOL_CONFIGS))
def test_pool_vs_scipy_and_adjoint(diff_backend, name, dtype):
    """Forward against the SciPy adapter; max pooling picks cells, so <dy, y> = <dx, x>."""
    cfg = POOL_CONFIGS[name]
    rng = np.random.default_rng(zlib.crc32(f"single-{name}".encode()))
    x = _rand(rng, (2, 3, cfg["h"], cfg["h"] + 2), dtype)
    args = dict(kernel_size=cfg["k"], stride=cfg["stride"], padding=cfg["padding"],
                dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    y, ind = diff_backend.max_pool2d(x, return_indices=True, **args)
    np.testing.assert_array_equal(y, _scipy().max_pool2d(x, **args))
    hit = ind >= 0
    np.testing.assert_array_equal(np.isfinite(y), hit)
    planes = x.reshape(*x.shape[:2], -1)
    picked = np.take_along_axis(planes, np.where(hit, ind, 0).reshape(*ind.shape[:2], -1),
                                axis=2).reshape(ind.shape)
    np.testing.assert_array_equal(np.where(hit, picked, -np.inf), y)  # indices point at y
    dy = _rand(rng, y.shape, dtype)
    dx = diff_backend.max_pool2d_backward(dy, x, **args)
    inner = np.vdot(np.where(hit, dy, 0).astype(np.float64), np.where(hit, y, 0))
    tol = TOL[np.dtype(dtype)] * max(1.0, float(np.abs(dy).sum() * np.abs(x).max()))
    assert abs(np.vdot(dx.astype(np.float64), x) - inner) <= tol


@pytest.mark.parametrize("mode", list(PAD_ROW))
def test_pad_vs_scipy_and_adjoint(diff_backend, mode, dtype):
    """Forward against the SciPy adapter; pad is linear, so <dy, pad(x)> = <pad_backward(dy), x>."""
    rng = np.random.default_rng(zlib.crc32(f"single-{mode}".encode()))
    x = _rand(rng, (2, 3, 4, 5), dtype)
    pw = ((1, 3), (4, 0)) if mode != "reflect" else ((1, 3), (4, 2))
    y = diff_backend.pad(x, pw, mode)
    np.testing.assert_array_equal(y, _scipy().pad(x, pw, mode))
    dy = _rand(rng, y.shape, dtype)
    dx = diff_backend.pad_backward(dy, pw, mode)
    tol = TOL[np.dtype(dtype)] * max(1.0, float(np.abs(dy).sum() * np.abs(x).max()))
    assert abs(np.vdot(dx.astype(np.float64), x) - np.vdot(dy.astype(np.float64), y)) <= tol


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_vs_scipy_and_invariances(diff_backend, training, dtype):
    """Forward against the SciPy adapter; in training with eps = 0 the output ignores a shift and
    a scale of each channel, so per channel sum(dx) = 0 and sum(dx * x) = 0."""
    rng = np.random.default_rng(21 + training)
    x = (_rand(rng, (3, 4, 5, 2), dtype) * 3 + 2).astype(dtype)
    g, b = _rand(rng, (4,), dtype), _rand(rng, (4,), dtype)
    rm, rv = _rand(rng, (4,), dtype), (rng.random(4) + 0.5).astype(dtype)
    eps = 0.0 if training else 1e-3
    out = diff_backend.batch_norm(x, g, b, rm, rv, training=training, momentum=0.3, eps=eps)
    ref = _scipy().batch_norm(x, g, b, rm, rv, training=training, momentum=0.3, eps=eps)
    for a, e in zip(out if training else (out,), ref if training else (ref,), strict=True):
        _close(a, e, 10.0)
    dy = _rand(rng, x.shape, dtype)
    dx, dg, db = diff_backend.batch_norm_backward(dy, x, g, eps, rm, rv, training=training)
    _close(db, dy.sum(axis=(0, 2, 3), dtype=np.float64).astype(dtype), float(np.abs(dy).sum()))
    if training:
        xhat = diff_backend.batch_norm(x, None, None, eps=eps)
    else:
        xhat = diff_backend.batch_norm(x, None, None, rm, rv, training=False, eps=eps)
    _close(dg, (dy * xhat).sum(axis=(0, 2, 3), dtype=np.float64).astype(dtype),
           float(np.abs(dy * xhat).sum()))
    tol = TOL[np.dtype(dtype)] * 10 * float(np.abs(dy).sum() * np.abs(g).max() / x.std())
    if training:
        assert np.abs(dx.astype(np.float64).sum(axis=(0, 2, 3))).max() <= tol
        centred = x - x.mean(axis=(0, 2, 3), keepdims=True)
        assert np.abs((dx * centred).astype(np.float64).sum(axis=(0, 2, 3))).max() <= tol * 10
    else:
        scale = (g / np.sqrt(rv.astype(np.float64) + eps)).reshape(1, -1, 1, 1)
        _close(dx, (dy * scale).astype(dtype), 10.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda B, x: B.pad(x, 1, "reflect"),
        lambda B, x: B.conv2d(x, x[:2, :, :2, :2], stride=2, padding="same"),
        lambda B, x: B.max_pool2d(x, 2, 1, ((1, 0), (0, 1)), return_indices=B.NAME != "scipy"),
        lambda B, x: B.batch_norm(x, None, None, np.zeros(3, x.dtype), np.ones(3, x.dtype)),
    ],
    ids=["pad", "conv", "pool", "batch_norm"],
)
def test_inputs_not_mutated(backend, call: Callable, dtype):
    rng = np.random.default_rng(3)
    x = _rand(rng, (2, 3, 4, 4), dtype)
    before = x.copy()
    call(backend, x)
    np.testing.assert_array_equal(x, before)
