"""Every divergence in conformance/divergences.toml still exists in the installed frameworks.

Each registry entry has one or more tests; each test names its one entry with
``@demonstrates("entry-id")`` (divergence_marks.py), here and in test_divergences_onnx.py, and the
map from id to tests is derived from those marks. A test needs one framework only wherever
possible, so that the single-framework tox environments (torch, tf) each run their half. Meta
tests check that every registry entry has a test and every test (but the meta tests) names an
existing entry, that every Unsupported id raised by an adapter is registered, and that the
registry loader rejects malformed files.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
import warnings
from pathlib import Path

import nnref
import numpy as np
import pytest

from conformance import registry
from conformance.backends import Unsupported, load_backend
from conformance.frameworks import require
from conformance.rounding import gamma

from . import test_divergences_onnx as onnx_entries
from .divergence_marks import defined_tests, demonstrates, divergence_tests

BACKENDS_DIR = Path(__file__).resolve().parents[1] / "backends"


@pytest.fixture
def torch():
    return require("torch")


@pytest.fixture
def tf():
    return require("tensorflow")


@pytest.fixture
def scipy():
    return require("scipy")


@pytest.fixture
def jax():
    return require("jax")


def _jax_vjp(jax, fn, x, dy, x64: bool = False):
    """(y, dx) of ``fn`` at x for upstream dy, as NumPy arrays (float64 inside enable_x64)."""
    with jax.enable_x64(x64):
        y, pullback = jax.vjp(fn, jax.numpy.asarray(x))
        (dx,) = pullback(jax.numpy.asarray(dy, y.dtype))
        return np.asarray(y), np.asarray(dx)


def _nd_pad(a: np.ndarray, n: int, mode: str) -> np.ndarray:
    """1-D padding by n with a scipy.ndimage mode (order-0 map_coordinates, integer coords)."""
    from scipy import ndimage

    coords = np.arange(-n, a.size + n, dtype=float)[None]
    return ndimage.map_coordinates(a, coords, order=0, mode=mode)


A4 = np.array([1.0, 2.0, 3.0, 4.0])


# ------------------------------------------------------------------------------------ padding


@demonstrates("pad-mode-names")
def test_pad_mode_names_scipy(scipy):
    np.testing.assert_array_equal(np.pad(A4, 3, mode="reflect"), [4, 3, 2, 1, 2, 3, 4, 3, 2, 1])
    np.testing.assert_array_equal(np.pad(A4, 3, mode="symmetric"), [3, 2, 1, 1, 2, 3, 4, 4, 3, 2])
    pairs = {"reflect": "mirror", "symmetric": "reflect", "edge": "nearest", "wrap": "grid-wrap"}
    for numpy_mode, ndimage_mode in pairs.items():
        np.testing.assert_array_equal(_nd_pad(A4, 3, ndimage_mode), np.pad(A4, 3, mode=numpy_mode))


@pytest.mark.torch
@demonstrates("pad-mode-names")
def test_pad_mode_names_torch(torch):
    t4 = torch.tensor(A4).reshape(1, 1, 1, 4)

    def tpad(mode):
        return torch.nn.functional.pad(t4, (3, 3, 0, 0), mode=mode).flatten().numpy()

    for numpy_mode, torch_mode in {"reflect": "reflect", "edge": "replicate",
                                   "wrap": "circular"}.items():
        np.testing.assert_array_equal(tpad(torch_mode), np.pad(A4, 3, mode=numpy_mode))
    with pytest.raises(NotImplementedError, match="symmetric"):
        tpad("symmetric")


@pytest.mark.tf
@demonstrates("pad-mode-names")
def test_pad_mode_names_tf(tf):
    def tfpad(mode):
        return tf.pad(tf.constant(A4, tf.float64), [[3, 3]], mode=mode).numpy()

    np.testing.assert_array_equal(tfpad("REFLECT"), np.pad(A4, 3, mode="reflect"))
    np.testing.assert_array_equal(tfpad("SYMMETRIC"), np.pad(A4, 3, mode="symmetric"))
    for missing in ("REPLICATE", "CIRCULAR", "EDGE"):
        with pytest.raises(ValueError, match="CONSTANT"):
            tfpad(missing)


@demonstrates("ndimage-wrap-not-periodic")
def test_ndimage_wrap_not_periodic(scipy):
    wrap = _nd_pad(A4, 3, "wrap")
    np.testing.assert_array_equal(wrap, [4, 2, 3, 1, 2, 3, 4, 2, 3, 1])
    assert not np.array_equal(wrap, np.pad(A4, 3, mode="wrap"))
    np.testing.assert_array_equal(_nd_pad(A4, 3, "grid-wrap"), np.pad(A4, 3, mode="wrap"))


def _check_adapter_pad_limits(name: str) -> None:
    backend = load_backend(name)
    x = A4.reshape(1, 1, 1, 4)
    with pytest.raises(ValueError, match="reflect"):
        backend.pad(x, ((0, 0), (4, 4)), "reflect")
    with pytest.raises(ValueError, match="circular"):
        backend.pad(x, ((0, 0), (5, 5)), "circular")


@demonstrates("pad-size-limits")
def test_pad_size_limits_numpy(scipy):
    assert np.pad(A4, 9, mode="reflect").shape == (22,)  # NumPy reflects repeatedly
    assert np.pad(A4, 9, mode="wrap").shape == (22,)
    _check_adapter_pad_limits("scipy")


@pytest.mark.torch
@demonstrates("pad-size-limits")
def test_pad_size_limits_torch(torch):
    F = torch.nn.functional
    t4 = torch.tensor(A4).reshape(1, 1, 4)
    F.pad(t4, (3, 3), mode="reflect")
    with pytest.raises(RuntimeError, match="less than the corresponding input dimension"):
        F.pad(t4, (4, 4), mode="reflect")
    assert F.pad(t4, (4, 4), mode="circular").numel() == 12
    with pytest.raises(RuntimeError, match="more than once"):
        F.pad(t4, (5, 5), mode="circular")
    _check_adapter_pad_limits("torch")


@pytest.mark.tf
@demonstrates("pad-size-limits")
def test_pad_size_limits_tf(tf):
    a = tf.constant(A4, tf.float64)
    tf.pad(a, [[3, 3]], mode="REFLECT")
    with pytest.raises(tf.errors.InvalidArgumentError, match="less than the dimension size"):
        tf.pad(a, [[4, 4]], mode="REFLECT")
    assert tf.pad(a, [[4, 4]], mode="SYMMETRIC").shape == (12,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="no greater than"):
        tf.pad(a, [[5, 5]], mode="SYMMETRIC")
    _check_adapter_pad_limits("tensorflow")


SIGNED_ZERO_DY = np.array([[[-0.0, -0.0, 1.0, -0.0, -0.0]]])  # pad (1, 1) of 3 cells


@pytest.mark.torch
@demonstrates("pad-backward-signed-zero")
def test_pad_backward_signed_zero_torch(torch):
    backend = load_backend("torch")
    for mode in ("reflect", "replicate", "circular"):
        dx = backend.pad_backward(SIGNED_ZERO_DY, ((1, 1),), mode=mode)
        assert not np.signbit(dx).any(), (mode, dx)
    for mode in ("reflect", "replicate"):  # even with nothing padded
        assert not np.signbit(backend.pad_backward(SIGNED_ZERO_DY, 0, mode=mode)).any(), mode
    assert np.signbit(backend.pad_backward(SIGNED_ZERO_DY, 0, mode="circular")).sum() == 4
    # the contract: the copied cells keep their sign
    assert np.signbit(nnref.pad_backward(SIGNED_ZERO_DY, ((1, 1),), mode="reflect")).tolist() \
        == [[[True, False, True]]]


@pytest.mark.tf
@demonstrates("pad-backward-signed-zero")
def test_pad_backward_signed_zero_tf(tf):
    backend = load_backend("tensorflow")
    dx = backend.pad_backward(SIGNED_ZERO_DY, ((1, 1),), mode="reflect")
    assert np.signbit(dx).tolist() == [[[True, False, True]]]  # tf.pad REFLECT keeps it
    for mode in ("replicate", "circular"):
        assert not np.signbit(backend.pad_backward(SIGNED_ZERO_DY, ((1, 1),), mode=mode)).any()


@pytest.mark.torch
@demonstrates("torch-negative-pad-crops")
def test_torch_negative_pad_crops(torch):
    F = torch.nn.functional
    cropped = F.pad(torch.tensor(A4).reshape(1, 1, 4), (-1, 2)).flatten().numpy()
    np.testing.assert_array_equal(cropped, [2, 3, 4, 0, 0])
    with pytest.raises(ValueError):
        np.pad(A4, (-1, 2))
    with pytest.raises(ValueError, match="pad_width"):
        load_backend("torch").pad(A4.reshape(1, 1, 1, 4), ((0, 0), (-1, 2)))


@pytest.mark.tf
@demonstrates("torch-negative-pad-crops")
def test_negative_pad_tf(tf):
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-negative"):
        tf.pad(tf.constant(A4), [[-1, 2]])


# -------------------------------------------------------------------------------- convolution


@pytest.mark.tf
@demonstrates("same-padding-placement")
def test_same_padding_placement_tf(tf):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 1))
    w = rng.standard_normal((2, 2, 1, 1))
    xt, wt = tf.constant(x, tf.float64), tf.constant(w, tf.float64)
    same = tf.nn.conv2d(xt, wt, 1, "SAME").numpy()
    at_end = tf.nn.conv2d(tf.pad(xt, [[0, 0], [0, 1], [0, 1], [0, 0]]), wt, 1, "VALID").numpy()
    at_start = tf.nn.conv2d(tf.pad(xt, [[0, 0], [1, 0], [1, 0], [0, 0]]), wt, 1, "VALID").numpy()
    np.testing.assert_allclose(same, at_end, rtol=0, atol=1e-13)
    assert not np.allclose(same, at_start)

    # Strided: H = 6, kernel 3, stride 2 -> Ho = 3, total pad 1, all of it at the end.
    x6 = tf.constant(rng.standard_normal((1, 6, 6, 1)), tf.float64)
    w3 = tf.constant(rng.standard_normal((3, 3, 1, 1)), tf.float64)
    same2 = tf.nn.conv2d(x6, w3, 2, "SAME").numpy()
    end2 = tf.nn.conv2d(tf.pad(x6, [[0, 0], [0, 1], [0, 1], [0, 0]]), w3, 2, "VALID").numpy()
    np.testing.assert_allclose(same2, end2, rtol=0, atol=1e-13)

    # conv1d and conv3d likewise (kernel 2: the one pad at the end of every axis).
    x1, w1 = xt[:, 0], wt[0]
    np.testing.assert_allclose(tf.nn.conv1d(x1, w1, 1, "SAME").numpy(),
                               tf.nn.conv1d(tf.pad(x1, [[0, 0], [0, 1], [0, 0]]), w1, 1,
                                            "VALID").numpy(), rtol=0, atol=1e-13)
    x3 = tf.constant(rng.standard_normal((1, 5, 5, 5, 1)), tf.float64)
    w2 = tf.constant(rng.standard_normal((2, 2, 2, 1, 1)), tf.float64)
    at_end3 = tf.nn.conv3d(tf.pad(x3, [[0, 0], [0, 1], [0, 1], [0, 1], [0, 0]]), w2, [1] * 5,
                           "VALID").numpy()
    same3 = tf.nn.conv3d(x3, w2, [1] * 5, "SAME").numpy()
    np.testing.assert_allclose(same3, at_end3, rtol=0, atol=1e-13)


@pytest.mark.torch
@demonstrates("same-padding-placement")
def test_same_padding_placement_torch(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((1, 1, 5, 5)))
    w = torch.from_numpy(rng.standard_normal((1, 1, 2, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        same = F.conv2d(x, w, padding="same").numpy()
    at_end = F.conv2d(F.pad(x, (0, 1, 0, 1)), w).numpy()
    at_start = F.conv2d(F.pad(x, (1, 0, 1, 0)), w).numpy()
    np.testing.assert_allclose(same, at_end, rtol=0, atol=1e-13)
    assert not np.allclose(same, at_start)


@pytest.mark.torch
@demonstrates("torch-same-padding-strided")
def test_torch_same_padding_strided(torch):
    F = torch.nn.functional
    x = torch.ones(1, 1, 5, 5, dtype=torch.float64)
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="not supported for strided convolutions"):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="not supported for strided convolutions"):
        torch.nn.Conv2d(1, 1, 3, stride=2, padding="same")
    backend = load_backend("torch")
    y = backend.conv2d(x.numpy(), w.numpy(), stride=2, padding="same")
    assert y.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(y[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    for rank, conv in ((1, F.conv1d), (3, F.conv3d)):
        xr = torch.ones((1, 1) + (5,) * rank, dtype=torch.float64)
        wr = torch.ones((1, 1) + (3,) * rank, dtype=torch.float64)
        with pytest.raises(RuntimeError, match="not supported for strided convolutions"):
            conv(xr, wr, padding="same", stride=2)
        yr = getattr(backend, f"conv{rank}d")(xr.numpy(), wr.numpy(), stride=2, padding="same")
        assert yr.shape == (1, 1) + (3,) * rank and yr.ravel()[0] == 2**rank


@pytest.mark.torch
@demonstrates("torch-conv-symmetric-padding-only")
def test_torch_conv_symmetric_padding_only(torch):
    F = torch.nn.functional
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    w = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="padding"):
        F.conv2d(x, w, padding=(0, 1, 0, 1))
    with pytest.raises(RuntimeError, match="list of 1 values"):
        F.conv1d(x[:, :, 0], w[:, :, 0], padding=(0, 1))
    with pytest.raises(RuntimeError, match="list of 3 values"):
        F.conv3d(x[:, :, None], w[:, :, None], padding=(0, 1, 0, 1, 0, 1))
    y = load_backend("torch").conv1d(x[:, :, 0].numpy(), w[:, :, 0].numpy(), padding=((0, 1),))
    np.testing.assert_array_equal(y.ravel(), [2, 2, 2, 1])


@pytest.mark.tf
@demonstrates("torch-conv-symmetric-padding-only")
def test_tf_conv_explicit_asymmetric_padding(tf):
    xt = tf.ones((1, 4, 4, 1), tf.float64)
    wt = tf.ones((2, 2, 1, 1), tf.float64)
    explicit = tf.nn.conv2d(xt, wt, 1, [[0, 0], [0, 1], [1, 0], [0, 0]])
    padded = tf.nn.conv2d(tf.pad(xt, [[0, 0], [0, 1], [1, 0], [0, 0]]), wt, 1, "VALID")
    np.testing.assert_array_equal(explicit.numpy(), padded.numpy())


@pytest.mark.torch
@demonstrates("scipy-correlate-vs-convolve")
def test_scipy_correlate_vs_convolve(torch, scipy):
    from scipy import signal

    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 7))
    w = np.array([[1.0, 2.0], [3.0, 5.0]])
    corr = signal.correlate(x, w, mode="valid", method="direct")
    conv = signal.convolve(x, w, mode="valid", method="direct")
    assert not np.allclose(corr, conv)
    np.testing.assert_allclose(conv, signal.correlate(x, w[::-1, ::-1], mode="valid"), atol=1e-12)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x)[None, None],
                                     torch.from_numpy(w)[None, None]).numpy()[0, 0]
    np.testing.assert_allclose(corr, ref, rtol=0, atol=1e-12)
    x3, w3 = rng.standard_normal((4, 5, 6)), rng.standard_normal((2, 3, 2))  # rank 3 likewise
    corr3 = signal.correlate(x3, w3, mode="valid", method="direct")
    assert not np.allclose(corr3, signal.convolve(x3, w3, mode="valid", method="direct"))
    ref3 = torch.nn.functional.conv3d(torch.from_numpy(x3)[None, None],
                                      torch.from_numpy(w3)[None, None]).numpy()[0, 0]
    np.testing.assert_allclose(corr3, ref3, rtol=0, atol=1e-12)


@pytest.mark.tf
@demonstrates("tf-cpu-nhwc-only")
def test_tf_cpu_nhwc_only(tf):
    x = tf.ones((1, 2, 5, 5), tf.float64)  # NCHW
    w = tf.ones((3, 3, 2, 4), tf.float64)
    with pytest.raises(tf.errors.UnimplementedError, match="NHWC"):
        tf.nn.conv2d(x, w, 1, "VALID", data_format="NCHW")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NHWC"):
        tf.nn.max_pool2d(x, 2, 1, "VALID", data_format="NCHW")
    with pytest.raises(tf.errors.UnimplementedError, match="NHWC"):  # conv1d runs Conv2D
        tf.nn.conv1d(x[:, :, 0], w[0], 1, "VALID", data_format="NCW")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NHWC"):
        tf.nn.max_pool1d(x[:, :, 0], 2, 1, "VALID", data_format="NCW")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NHWC"):
        tf.nn.conv3d(x[:, :, None], w[None], [1, 1, 1, 1, 1], "VALID", data_format="NCDHW")


@pytest.mark.tf
@demonstrates("tf-dilated-conv-gradient")
def test_tf_dilated_conv_gradient(tf):
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((1, 9, 9, 2)), tf.float64)
    w = tf.constant(rng.standard_normal((3, 3, 2, 3)), tf.float64)
    with tf.GradientTape() as tape, pytest.raises(tf.errors.InvalidArgumentError,
                                                  match="dilation rates larger than 1"):
        tape.watch([x, w])
        y = tf.nn.conv2d(x, w, 1, "VALID", dilations=2)
        tape.gradient(y, [x, w])
    x32, w32 = tf.cast(x, tf.float32), tf.cast(w, tf.float32)
    with tf.GradientTape() as tape, pytest.raises(tf.errors.InvalidArgumentError,
                                                  match="dilation rates larger than 1"):
        tape.watch([x32, w32])
        y = tf.nn.conv2d(x32, w32, 1, [[0, 0], [1, 1], [1, 1], [0, 0]], dilations=2)
        tape.gradient(y, [x32, w32])
    with pytest.raises(ValueError, match="strides > 1"):
        tf.nn.convolution(x, w, strides=2, padding="VALID", dilations=2)
    x1, w1 = x[:, 0], w[0]  # conv1d runs Conv2D underneath: the same limit
    with tf.GradientTape() as tape, pytest.raises(tf.errors.InvalidArgumentError,
                                                  match="dilation rates larger than 1"):
        tape.watch([x1, w1])
        y = tf.nn.conv1d(x1, w1, 1, "VALID", dilations=2)
        tape.gradient(y, [x1, w1])
    # The composition the adapter uses equals the (forward-only) strided dilated conv2d.
    direct = tf.nn.conv2d(x, w, 2, "VALID", dilations=2).numpy()
    composed = tf.nn.convolution(x, w, padding="VALID", dilations=2)[:, ::2, ::2, :].numpy()
    np.testing.assert_allclose(composed, direct, rtol=0, atol=1e-13)


@pytest.mark.tf
@demonstrates("tf-grouped-conv-gradient-cpu")
def test_tf_grouped_conv_gradient_cpu(tf):
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((1, 5, 5, 4)), tf.float64)
    w = tf.constant(rng.standard_normal((3, 3, 2, 6)), tf.float64)  # groups = 4 / 2 = 2
    assert tf.nn.conv2d(x, w, 1, "VALID").shape == (1, 3, 3, 6)
    with tf.GradientTape() as tape, pytest.raises(tf.errors.InvalidArgumentError,
                                                  match="grouped convolutions"):
        tape.watch([x, w])
        y = tf.nn.conv2d(x, w, 1, "VALID")
        tape.gradient(y, [x, w])
    x1, w1 = x[:, 0], w[0]
    assert tf.nn.conv1d(x1, w1, 1, "VALID").shape == (1, 3, 6)
    with tf.GradientTape() as tape, pytest.raises(tf.errors.InvalidArgumentError,
                                                  match="grouped convolutions"):
        tape.watch([x1, w1])
        y = tf.nn.conv1d(x1, w1, 1, "VALID")
        tape.gradient(y, [x1, w1])


def _avx512() -> bool:
    """Whether this CPU has AVX-512 (oneDNN picks its conv kernels by instruction set)."""
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:  # pragma: no cover - not Linux
        return False


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags as Linux lists them (None elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # pragma: no cover - not Linux
        return None
    return {f for line in text.splitlines() if line.startswith("flags")
            for f in line.partition(":")[2].split()}


def _width1_garbage_seen(raw: np.ndarray, right: np.ndarray, rank: int) -> None:
    """The bug is the oneDNN kernel of AVX-512 CPUs: there it must still be seen; on other CPUs
    (AVX2-only: oneDNN takes another kernel) the right answer is reported as such."""
    if np.allclose(raw.ravel(), right):
        assert not _avx512(), f"TF now gets this right on AVX-512: retire conv{rank}d"
        pytest.skip(f"tf-onednn-conv-width1-garbage (conv{rank}d) does not reproduce on this "
                    "CPU (no AVX-512: oneDNN uses another kernel); the adapter's composition is "
                    "still checked")


@pytest.mark.tf
@demonstrates("tf-onednn-conv-width1-garbage")
def test_tf_onednn_conv_width1_garbage(tf):
    x = np.arange(20, dtype=np.float32).reshape(2, 2, 5, 1)
    w = np.ones((1, 4, 1, 1), np.float32)
    right = np.array([6.0, 26.0, 46.0, 66.0])
    nchw_x, oihw_w = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    np.testing.assert_array_equal(
        load_backend("tensorflow").conv2d(nchw_x, oihw_w, stride=(1, 4)).ravel(), right)
    raw = tf.nn.conv2d(tf.constant(x), tf.constant(w), strides=[1, 1, 4, 1], padding="VALID")
    _width1_garbage_seen(raw.numpy(), right, 2)
    # bfloat16 runs on oneDNN too (garbage seen as zeros here); the adapter composes it as well.
    bf16 = tf.bfloat16.as_numpy_dtype
    y16 = load_backend("tensorflow").conv2d(nchw_x.astype(bf16), oihw_w.astype(bf16),
                                            stride=(1, 4))
    np.testing.assert_array_equal(y16.astype(np.float64).ravel(), right)
    # float64 is unaffected, and the adapter's composition is right in float32.
    raw64 = tf.nn.conv2d(tf.constant(x, tf.float64), tf.constant(w, tf.float64),
                         strides=[1, 1, 4, 1], padding="VALID")
    np.testing.assert_array_equal(raw64.numpy().ravel(), right)
    nchw_x, oihw_w = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    y = load_backend("tensorflow").conv2d(nchw_x, oihw_w, stride=(1, 4))
    np.testing.assert_array_equal(y.ravel(), right)


@pytest.mark.tf
@demonstrates("tf-onednn-conv-width1-garbage")
def test_tf_onednn_conv3d_width1_garbage(tf):
    x = np.arange(20, dtype=np.float32).reshape(2, 1, 2, 5, 1)  # the 2-D case with depth 1
    w = np.ones((1, 1, 4, 1, 1), np.float32)
    right = np.array([6.0, 26.0, 46.0, 66.0])
    y = load_backend("tensorflow").conv3d(x.transpose(0, 4, 1, 2, 3), w.transpose(4, 3, 0, 1, 2),
                                          stride=(1, 1, 4))
    np.testing.assert_array_equal(y.ravel(), right)
    # tf.nn.conv1d (Conv2D with one row per image) gets the same sums right.
    raw1 = tf.nn.conv1d(tf.constant(x.reshape(4, 5, 1)), tf.constant(w[0, 0]), 4, "VALID")
    np.testing.assert_array_equal(raw1.numpy().ravel(), right)
    raw = tf.nn.conv3d(tf.constant(x), tf.constant(w), strides=[1, 1, 1, 4, 1], padding="VALID")
    _width1_garbage_seen(raw.numpy(), right, 3)


@pytest.mark.tf
@demonstrates("tf-onednn-conv-width1-garbage")
@pytest.mark.parametrize("rank", [2, 3])
def test_tf_onednn_conv_transpose_gradient_width1_garbage(tf, rank):
    """The gradient of a transposed conv whose input has one column, at a last-axis stride > 1,
    is TF's strided conv with one output column: in bfloat16 rows after the first of each image
    are zeros or uninitialised memory. The adapter runs that axis at stride 1 (one column: the
    stride places nothing) and gets every row."""
    bf16 = tf.bfloat16.as_numpy_dtype
    lead = (1,) * (rank - 2)  # conv3d: depth 1
    x = np.ones((2, *lead, 2, 1, 1), bf16)  # channels-last, two rows of one column
    w = np.ones((*lead, 1, 2, 1, 1), bf16)  # (*k, Co, C): a two-tap row
    dy = np.ones((2, *lead, 2, 2, 1), bf16)
    strides = [1, *lead, 1, 2, 1]
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = getattr(tf.nn, f"conv{rank}d_transpose")(xt, tf.constant(w), list(dy.shape),
                                                      strides, padding="VALID")
    raw = tape.gradient(y, xt, output_gradients=tf.constant(dy))
    right = [2.0] * 4  # each input cell reaches two output cells, dy 1
    to_first = (0, rank + 1, *range(1, rank + 1))
    dx, _, _ = load_backend("tensorflow").__dict__[f"conv_transpose{rank}d_backward"](
        dy.transpose(to_first), x.transpose(to_first), np.moveaxis(w, (-1, -2), (0, 1)),
        stride=(*lead, 1, 2))
    assert dx.astype(np.float64).ravel().tolist() == right
    got = tf.cast(raw, tf.float64).numpy().ravel().tolist()
    if got == right:
        flags = _cpu_flags()
        assert flags is None or not {"avx512_bf16", "amx_bf16"} <= flags, \
            f"TF's bfloat16 conv_transpose{rank}d gradient is now right here: narrow the entry"
        pytest.skip(f"tf-onednn-conv-width1-garbage (conv_transpose{rank}d gradient, bfloat16) "
                    "does not reproduce on this CPU (seen with AVX-512 bfloat16 and AMX); the "
                    "adapter's composition is still checked")


@pytest.mark.tf
@demonstrates("tf-conv3d-no-groups")
def test_tf_conv3d_no_groups(tf):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 4, 4, 4, 4))
    w = rng.standard_normal((2, 2, 2, 2, 6))  # groups = 4 / 2 = 2
    for dtype, message in ((tf.float64, "must match last dimension"), (tf.float32, "same depth")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            tf.nn.conv3d(tf.constant(x, dtype), tf.constant(w, dtype), [1, 1, 1, 1, 1], "VALID")
    y = load_backend("tensorflow").conv3d(x.transpose(0, 4, 1, 2, 3), w.transpose(4, 3, 0, 1, 2),
                                          groups=2)
    assert y.shape == (1, 6, 3, 3, 3)


@pytest.mark.torch
@demonstrates("tf-conv3d-no-groups")
def test_torch_conv3d_groups(torch):
    x = torch.ones((1, 4, 3, 3, 3), dtype=torch.float64, requires_grad=True)
    w = torch.ones((6, 2, 2, 2, 2), dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv3d(x, w, groups=2)
    assert y.shape == (1, 6, 2, 2, 2) and float(y.detach()[0, 0, 0, 0, 0]) == 16.0
    (dx,) = torch.autograd.grad(y.sum(), x)
    assert float(dx[0, 0, 1, 1, 1]) == 24.0  # 8 windows x 3 output channels of its group


@pytest.mark.tf
@demonstrates("tf-conv3d-dilation-float64")
def test_tf_conv3d_dilation_float64(tf):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 7, 7, 7, 2))
    w = rng.standard_normal((2, 2, 2, 2, 3))
    dil = [1, 2, 2, 2, 1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="only supports dilated rates of 1"):
        tf.nn.conv3d(tf.constant(x, tf.float64), tf.constant(w, tf.float64), [1] * 5, "VALID",
                     dilations=dil)
    y32 = tf.nn.conv3d(tf.constant(x, tf.float32), tf.constant(w, tf.float32), [1] * 5, "VALID",
                       dilations=dil).numpy()  # the oneDNN float32 kernel dilates
    composed = tf.nn.convolution(tf.constant(x, tf.float64), tf.constant(w, tf.float64),
                                 padding="VALID", dilations=2, data_format="NDHWC").numpy()
    np.testing.assert_allclose(y32, composed, rtol=0, atol=1e-4 * np.abs(composed).max())
    y = load_backend("tensorflow").conv3d(x.transpose(0, 4, 1, 2, 3), w.transpose(4, 3, 0, 1, 2),
                                          dilation=2)
    np.testing.assert_allclose(y, composed.transpose(0, 4, 1, 2, 3), rtol=0, atol=1e-13)


@pytest.mark.tf
@demonstrates("tf-convolution-3d-gradient-data-format")
def test_tf_convolution_3d_gradient_data_format(tf):
    for dtype in (tf.float32, tf.float64):
        x, w = tf.ones((1, 1, 1, 1, 1), dtype), tf.ones((1, 1, 1, 1, 1), dtype)
        with tf.GradientTape() as tape, pytest.raises(AttributeError, match="decode"):
            tape.watch([x, w])
            y = tf.nn.convolution(x, w, padding="VALID")
            tape.gradient(y, [x, w])
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = tf.nn.convolution(x, w, padding="VALID", data_format="NDHWC")
        assert [float(g.numpy().item()) for g in tape.gradient(y, [x, w])] == [1.0, 1.0]


# --------------------------------------------------------------------- transposed convolution


def _tf_t(tf, a, dtype=None):
    return tf.constant(a, dtype or tf.float64)


@pytest.mark.tf
@demonstrates("tf-conv-transpose-output-shape")
def test_tf_conv_transpose_output_shape(tf):
    rng = np.random.default_rng(31)
    x, w = rng.standard_normal((1, 3, 1)), rng.standard_normal((2, 1, 1))  # NWC, (k, Co, C)
    full = np.zeros(6)  # the uncropped scatter: stride 2 = kernel 2, so x[i] * w at 2i, 2i + 1
    full[0::2], full[1::2] = x.ravel() * w[0, 0, 0], x.ravel() * w[1, 0, 0]

    def run(size, padding):
        return tf.nn.conv1d_transpose(_tf_t(tf, x), _tf_t(tf, w), [1, size, 1], 2,
                                      padding).numpy().ravel()

    np.testing.assert_allclose(run(6, "VALID"), full, rtol=0, atol=1e-15)
    np.testing.assert_allclose(run(7, "VALID"), [*full, 0.0], rtol=0, atol=1e-15)  # ambiguous
    for size in (5, 8):
        with pytest.raises(tf.errors.InvalidArgumentError, match="doesn't match computed"):
            run(size, "VALID")
    # SAME keeps the first 5 cells; torch's padding crops both ends alike
    np.testing.assert_allclose(run(5, "SAME"), full[:5], rtol=0, atol=1e-15)
    xc, wc = x.transpose(0, 2, 1), w.transpose(2, 1, 0)  # contract layouts
    y = load_backend("tensorflow").conv_transpose1d(xc, wc, stride=2, padding=1,
                                                    output_padding=1)
    np.testing.assert_allclose(y.ravel(), [*full[1:], 0.0][:5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(y, nnref.conv_transpose1d(xc, wc, stride=2, padding=1,
                                                         output_padding=1), rtol=0, atol=1e-15)


@pytest.mark.torch
@demonstrates("tf-conv-transpose-output-shape")
def test_torch_conv_transpose_output_size_from_padding(torch):
    F = torch.nn.functional
    x, w = torch.ones((1, 1, 3), dtype=torch.float64), torch.ones((1, 1, 2), dtype=torch.float64)
    assert F.conv_transpose1d(x, w, stride=2).shape[-1] == 6
    assert F.conv_transpose1d(x, w, stride=2, output_padding=1).shape[-1] == 7
    # full [1, 1, 1, 1, 1, 1] + the output_padding cell [0]; one cell off each end
    y = F.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1)
    assert y.flatten().tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    assert F.conv_transpose1d(x, w, stride=2, padding=1).flatten().tolist() == [1.0] * 4


@pytest.mark.tf
@demonstrates("tf-conv-transpose-no-groups")
def test_tf_conv_transpose_no_groups(tf):
    rng = np.random.default_rng(32)
    x, w = rng.standard_normal((1, 3, 3, 4)), rng.standard_normal((2, 2, 3, 2))
    with pytest.raises(tf.errors.InvalidArgumentError, match="same out_depth"):
        tf.nn.conv2d_transpose(_tf_t(tf, x), _tf_t(tf, w), [1, 4, 4, 3], 1, "VALID")
    with pytest.raises(tf.errors.AbortedError, match="primitive descriptor"):
        tf.nn.conv2d_transpose(_tf_t(tf, x, tf.float32), _tf_t(tf, w, tf.float32), [1, 4, 4, 3],
                               1, "VALID")
    xc, wc = x.transpose(0, 3, 1, 2), rng.standard_normal((4, 3, 2, 2))
    y = load_backend("tensorflow").conv_transpose2d(xc, wc, groups=2)
    np.testing.assert_allclose(y, nnref.conv_transpose2d(xc, wc, groups=2), rtol=0, atol=1e-13)


@pytest.mark.tf
@demonstrates("tf-conv-transpose-dilation-float64")
def test_tf_conv_transpose_dilation_float64(tf):
    rng = np.random.default_rng(33)
    for r, fn, message in ((1, tf.nn.conv1d_transpose, "implementations do not yet support"),
                           (2, tf.nn.conv2d_transpose, "implementations do not yet support"),
                           (3, tf.nn.conv3d_transpose, "implementation does not yet support")):
        x, w = rng.standard_normal((1, *(3,) * r, 2)), rng.standard_normal((*(2,) * r, 3, 2))
        shape = [1, *(5,) * r, 3]  # (3 - 1) + 2 * (2 - 1) + 1
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            fn(_tf_t(tf, x), _tf_t(tf, w), shape, 1, "VALID", dilations=2)
        y32 = fn(_tf_t(tf, x, tf.float32), _tf_t(tf, w, tf.float32), shape, 1, "VALID",
                 dilations=2).numpy()
        xc, wc = x.transpose(0, r + 1, *range(1, r + 1)), w.transpose(r + 1, r, *range(r))
        ref = nnref.__dict__[f"conv_transpose{r}d"](xc, wc, dilation=2)
        np.testing.assert_allclose(y32.transpose(0, r + 1, *range(1, r + 1)), ref, rtol=0,
                                   atol=1e-5 * np.abs(ref).max())
        y = getattr(load_backend("tensorflow"), f"conv_transpose{r}d")(xc, wc, dilation=2)
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-13)


@pytest.mark.tf
@demonstrates("tf-conv-transpose-filter-layout")
def test_tf_conv_transpose_filter_layout(tf):
    rng = np.random.default_rng(34)
    x, w = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 3, 2, 2))  # torch layouts
    ref = nnref.conv_transpose2d(x, w)
    xl = _tf_t(tf, x.transpose(0, 2, 3, 1))
    y = tf.nn.conv2d_transpose(xl, _tf_t(tf, w.transpose(2, 3, 1, 0)), [1, 4, 4, 3], 1, "VALID")
    np.testing.assert_allclose(y.numpy().transpose(0, 3, 1, 2), ref, rtol=0, atol=1e-13)
    with pytest.raises(tf.errors.InvalidArgumentError):  # torch's order read as (kh, kw, Co, C)
        tf.nn.conv2d_transpose(xl, _tf_t(tf, w), [1, 4, 4, 3], 1, "VALID")


@pytest.mark.torch
@demonstrates("torch-conv-transpose-output-padding-rule")
def test_torch_conv_transpose_output_padding_rule(torch):
    F = torch.nn.functional
    x, w = torch.ones((1, 1, 3), dtype=torch.float64), torch.ones((1, 1, 2), dtype=torch.float64)
    assert F.conv_transpose1d(x, w, dilation=2, output_padding=1).shape[-1] == 6
    with pytest.raises(RuntimeError, match="smaller than either stride or dilation"):
        F.conv_transpose1d(x, w, dilation=2, output_padding=2)
    with pytest.raises(RuntimeError, match="smaller than either stride or dilation"):
        F.conv_transpose1d(x, w, stride=2, output_padding=2)
    # a conv of the 6 cells with the same kernel and dilation gives 4 outputs, not x's 3
    assert F.conv1d(torch.ones((1, 1, 6), dtype=torch.float64), w, dilation=2).shape[-1] == 4
    with pytest.raises(ValueError, match="output_padding"):
        nnref.conv_transpose1d(x.numpy(), w.numpy(), dilation=2, output_padding=2)


@pytest.mark.tf
@demonstrates("torch-conv-transpose-output-padding-rule")
def test_tf_conv_transpose_refuses_output_padding_beyond_stride(tf):
    x, w = tf.ones((1, 3, 1), tf.float32), tf.ones((2, 1, 1), tf.float32)
    assert tf.nn.conv1d_transpose(x, w, [1, 5, 1], 1, "VALID", dilations=2).shape[1] == 5
    # 6 cells (output_padding 1): oneDNN cannot build the primitive (float64 has no dilation)
    with pytest.raises(tf.errors.AbortedError, match="primitive descriptor"):
        tf.nn.conv1d_transpose(x, w, [1, 6, 1], 1, "VALID", dilations=2)
    y = load_backend("tensorflow").conv_transpose1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)),
                                                    dilation=2, output_padding=1)
    assert y.ravel().tolist() == [1.0, 1.0, 2.0, 1.0, 1.0, 0.0]


# -------------------------------------------------------------------------------- max pooling


TIE_GRAD = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.torch
@demonstrates("maxpool-tie-first-max")
def test_maxpool_tie_first_max_torch(torch):
    for tdt in (torch.float32, torch.float64):
        xt = torch.ones(1, 1, 3, 3, dtype=tdt, requires_grad=True)
        y, idx = torch.nn.functional.max_pool2d(xt, 2, 1, return_indices=True)
        (g,) = torch.autograd.grad(y.sum(), xt)
        np.testing.assert_array_equal(g.numpy()[0, 0], TIE_GRAD)
        np.testing.assert_array_equal(idx.numpy().ravel(), [0, 1, 3, 4])
    F = torch.nn.functional
    x1 = torch.ones(1, 1, 3, dtype=torch.float64, requires_grad=True)
    y, idx = F.max_pool1d(x1, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy().ravel(), [0, 1])
    np.testing.assert_array_equal(torch.autograd.grad(y.sum(), x1)[0].numpy().ravel(), [1, 1, 0])
    x3 = torch.ones(1, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    y, idx = F.max_pool3d(x3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy().ravel(), [0, 1, 3, 4, 9, 10, 12, 13])
    (g3,) = torch.autograd.grad(y.sum(), x3)
    np.testing.assert_array_equal(g3.numpy()[0, 0], [TIE_GRAD, TIE_GRAD, np.zeros((3, 3))])


@pytest.mark.tf
@demonstrates("maxpool-tie-first-max")
def test_maxpool_tie_first_max_tf(tf):
    expected = TIE_GRAD
    for fdt in (tf.float32, tf.float64):
        xf = tf.ones((1, 3, 3, 1), fdt)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xf)
            y1 = tf.nn.max_pool2d(xf, 2, 1, "VALID")
            y2, am = tf.nn.max_pool_with_argmax(xf, 2, 1, "VALID")
        np.testing.assert_array_equal(tape.gradient(y1, xf).numpy()[0, :, :, 0], expected)
        np.testing.assert_array_equal(tape.gradient(y2, xf).numpy()[0, :, :, 0], expected)
        np.testing.assert_array_equal(am.numpy().ravel(), [0, 1, 3, 4])
        x1 = tf.ones((1, 3, 1), fdt)
        with tf.GradientTape() as tape:
            tape.watch(x1)
            y1 = tf.nn.max_pool1d(x1, 2, 1, "VALID")
        np.testing.assert_array_equal(tape.gradient(y1, x1).numpy().ravel(), [1, 1, 0])
    # reduce_max is not pooling: it splits the gradient among ties.
    v = tf.ones((4,), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(v)
        m = tf.reduce_max(v)
    np.testing.assert_array_equal(tape.gradient(m, v).numpy(), [0.25] * 4)


@pytest.mark.torch
@demonstrates("max-pool-nan")
def test_max_pool_nan_torch(torch):
    nan = np.nan
    y, idx = torch.nn.functional.max_pool2d(
        torch.tensor([[[[nan, 5.0], [nan, 7.0]]]], dtype=torch.float64), 2, return_indices=True)
    assert np.isnan(y.item()) and idx.item() == 2  # NaN wins; the last NaN's index
    _, ind = load_backend("torch").max_pool2d(np.array([[[[nan, 5.0], [nan, 7.0]]]]), 2,
                                              return_indices=True)
    assert ind.item() == 2
    y, idx = torch.nn.functional.max_pool1d(
        torch.tensor([[[nan, 5.0, nan, 7.0]]], dtype=torch.float64), 4, return_indices=True)
    assert np.isnan(y.item()) and idx.item() == 2
    x3 = torch.arange(8.0, dtype=torch.float64).reshape(1, 1, 2, 2, 2)
    x3.view(-1)[[1, 4]] = nan
    y, idx = torch.nn.functional.max_pool3d(x3, 2, return_indices=True)
    assert np.isnan(y.item()) and idx.item() == 4


@pytest.mark.tf
@demonstrates("max-pool-nan")
def test_max_pool_nan_tf(tf):
    nan = np.nan

    def tf_argmax(rows):
        x = tf.constant(np.array(rows)[None, :, :, None], tf.float64)
        out, am = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID")
        return out.numpy().item(), am.numpy().item()

    assert tf_argmax([[1.0, nan], [3.0, 7.0]]) == (7.0, 3)  # a later NaN is ignored
    assert np.isnan(tf_argmax([[nan, 5.0], [3.0, 7.0]])[0])  # a first NaN stays
    plain = tf.nn.max_pool2d(tf.constant(np.array([[nan, 1.0], [2.0, 3.0]])[None, :, :, None],
                                         tf.float64), 2, 2, "VALID")
    assert plain.numpy().item() == 3.0  # max_pool2d drops it even when first
    for where in (0, 1, 7):  # max_pool3d (float32 only) drops it wherever it is
        v = np.arange(8.0)
        v[where] = nan
        x3 = tf.constant(v.reshape(1, 2, 2, 2, 1), tf.float32)
        assert tf.nn.max_pool3d(x3, 2, 2, "VALID").numpy().item() == (7.0 if where != 7 else 6.0)
    with pytest.raises(Unsupported) as info:
        load_backend("tensorflow").max_pool2d(np.array([[[[1.0, nan], [3.0, 7.0]]]]), 2)
    assert info.value.divergence_id == "max-pool-nan"


@demonstrates("max-pool-nan")
def test_max_pool_nan_scipy(scipy):
    from scipy import ndimage

    nan = np.nan
    # ndimage: the NaN result depends on its position in the window.
    filtered = ndimage.maximum_filter(np.array([[1.0, nan, 3.0, 0.0]]), size=(1, 2))
    assert filtered[0, 1] == 1.0 and np.isnan(filtered[0, 2])
    with pytest.raises(Unsupported) as info:
        load_backend("scipy").max_pool2d(np.array([[[[1.0, nan], [3.0, 7.0]]]]), 2)
    assert info.value.divergence_id == "max-pool-nan"


@pytest.mark.torch
@demonstrates("torch-maxpool-symmetric-padding-only")
def test_torch_maxpool_symmetric_padding_only(torch):
    F = torch.nn.functional
    x = torch.tensor(np.random.default_rng(4).standard_normal((1, 2, 5, 6)))
    with pytest.raises(RuntimeError, match="padding must either be a single int, or a tuple"):
        F.max_pool2d(x, 2, padding=(0, 1, 0, 1))
    with pytest.raises(RuntimeError, match="tuple of ints of size 1 but got size 2"):
        F.max_pool1d(x[:, :, 0], 2, padding=(0, 1))
    with pytest.raises(RuntimeError, match="tuple of three ints"):
        F.max_pool3d(x[:, :, None], 2, padding=(0, 1, 0, 1, 0, 1))
    y = load_backend("torch").max_pool1d(np.array([[[1.0, 2.0, 3.0]]]), 2, 2, ((0, 1),))
    np.testing.assert_array_equal(y.ravel(), [2.0, 3.0])
    native = F.max_pool2d(x, 3, 2, padding=1)
    composed = F.max_pool2d(F.pad(x, (1, 1, 1, 1), value=float("-inf")), 3, 2)
    np.testing.assert_array_equal(native.numpy(), composed.numpy())


NEG_INF_2X2 = np.full((1, 1, 2, 2), -np.inf)


@pytest.mark.torch
@demonstrates("maxpool-neg-inf-sentinel")
def test_maxpool_neg_inf_sentinel_torch(torch):
    F = torch.nn.functional
    x = torch.full((1, 1, 2, 2), float("-inf"), dtype=torch.float64)
    xp = F.pad(x, (0, 0, 1, 0), value=float("-inf"))  # top pad 1 as -inf cells
    _, composed = F.max_pool2d(xp, 2, 1, return_indices=True)
    np.testing.assert_array_equal(composed.numpy().ravel(), [0, 2])  # both in the padded row 0
    _, native = F.max_pool2d(x, 2, 1, padding=1, return_indices=True)
    assert native.numpy()[0, 0, 0, 0] == 0  # native padding: the input cell (0, 0)
    backend = load_backend("torch")
    with pytest.raises(Unsupported) as info:
        backend.max_pool2d(NEG_INF_2X2, 2, 1, ((1, 0), (0, 0)), return_indices=True)
    assert info.value.divergence_id == "maxpool-neg-inf-sentinel"
    # The torch adapter passes symmetric pads to torch, which gets this right.
    _, ind = backend.max_pool2d(NEG_INF_2X2, 2, 1, 1, return_indices=True)
    assert ind[0, 0, 0, 0] == 0


@pytest.mark.tf
@demonstrates("maxpool-neg-inf-sentinel")
def test_maxpool_neg_inf_sentinel_tf(tf):
    xf = tf.pad(tf.fill((1, 2, 2, 1), tf.constant(-np.inf, tf.float64)),
                [[0, 0], [1, 0], [0, 0], [0, 0]], constant_values=-np.inf)
    _, am = tf.nn.max_pool_with_argmax(xf, 2, 1, "VALID")
    np.testing.assert_array_equal(am.numpy().ravel(), [0, 2])
    with pytest.raises(Unsupported) as info:
        load_backend("tensorflow").max_pool2d(NEG_INF_2X2, 2, 1, 1, return_indices=True)
    assert info.value.divergence_id == "maxpool-neg-inf-sentinel"


@pytest.mark.torch
@demonstrates("torch-maxpool-empty-window")
def test_torch_maxpool_empty_window(torch):
    F = torch.nn.functional
    x = torch.tensor([[[[3.0]], [[5.0]]]], dtype=torch.float64, requires_grad=True)
    cfg = {"kernel_size": (1, 2), "stride": 1, "padding": (0, 1), "dilation": (1, 2)}
    y, idx = F.max_pool2d(x, return_indices=True, **cfg)
    assert np.all(np.isneginf(y.detach().numpy()))
    np.testing.assert_array_equal(idx.numpy().ravel(), [1, 1])  # outside a 1-cell plane
    dy = torch.tensor([[[[10.0]], [[20.0]]]], dtype=torch.float64)
    (dx,) = torch.autograd.grad(y, x, grad_outputs=dy)
    np.testing.assert_array_equal(dx.numpy().ravel(), [0.0, 10.0])  # channel 0's lands in 1

    backend = load_backend("torch")
    xn = np.array([[[[3.0]], [[5.0]]]])
    _, ind = backend.max_pool2d(xn, return_indices=True, **cfg)
    np.testing.assert_array_equal(ind.ravel(), [-1, -1])
    dxn = backend.max_pool2d_backward(dy.numpy(), xn, **cfg)
    np.testing.assert_array_equal(dxn.ravel(), [0.0, 0.0])

    for rank, pool in ((1, F.max_pool1d), (3, F.max_pool3d)):  # the same at ranks 1 and 3
        xr = torch.tensor([3.0, 5.0], dtype=torch.float64).reshape((1, 2) + (1,) * rank)
        xr.requires_grad_(True)
        one = (1,) * (rank - 1)
        cfg_r = {"kernel_size": (*one, 2), "stride": 1, "padding": (*(0,) * (rank - 1), 1),
                 "dilation": (*one, 2)}
        y, idx = pool(xr, return_indices=True, **cfg_r)
        np.testing.assert_array_equal(idx.numpy().ravel(), [1, 1])
        (dx,) = torch.autograd.grad(y, xr, grad_outputs=dy.reshape(y.shape))
        np.testing.assert_array_equal(dx.numpy().ravel(), [0.0, 10.0])
        fn = getattr(backend, f"max_pool{rank}d")
        _, ind = fn(xr.detach().numpy(), return_indices=True, **cfg_r)
        np.testing.assert_array_equal(ind.ravel(), [-1, -1])
        dxr = getattr(backend, f"max_pool{rank}d_backward")(dy.numpy().reshape(y.shape),
                                                            xr.detach().numpy(), **cfg_r)
        np.testing.assert_array_equal(dxr.ravel(), [0.0, 0.0])


@pytest.mark.torch
@demonstrates("maxpool-pad-limit")
def test_maxpool_pad_limit_torch(torch):
    F = torch.nn.functional
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="half of kernel size"):
        F.max_pool2d(x, 2, 1, padding=2, dilation=3)  # dilated kernel 4 would allow 2
    with pytest.raises(RuntimeError, match="half"):
        F.max_pool2d(x, 3, 1, padding=2)
    with pytest.raises(ValueError, match="kernel_size / 2"):
        load_backend("torch").max_pool2d(x.numpy(), 2, 1, padding=2, dilation=3)
    with pytest.raises(RuntimeError, match="at most half of kernel size"):
        F.max_pool1d(x[:, :, 0], 2, 1, padding=2, dilation=3)
    with pytest.raises(RuntimeError, match="half of kernel size"):
        F.max_pool3d(x[:, :, None].expand(1, 1, 9, 9, 9), 2, 1, padding=2, dilation=3)


@pytest.mark.tf
@demonstrates("maxpool-pad-limit")
def test_maxpool_pad_limit_tf(tf):
    xt = tf.zeros((1, 5, 5, 1), tf.float64)
    assert tf.nn.max_pool2d(xt, 3, 1, [[0, 0], [2, 2], [2, 2], [0, 0]]).shape == (1, 7, 7, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the window size"):
        tf.nn.max_pool2d(xt, 3, 1, [[0, 0], [3, 3], [3, 3], [0, 0]])


@pytest.mark.torch
@demonstrates("maxpool-ceil-mode")
def test_maxpool_ceil_mode_torch(torch):
    x = torch.zeros(1, 1, 5, 5)
    y = torch.nn.functional.max_pool2d(x, 2, 2, padding=1, ceil_mode=True)
    naive = -(-(5 + 2 - 2) // 2) + 1  # ceil formula without the drop rule
    assert naive == 4 and tuple(y.shape[2:]) == (3, 3)
    F = torch.nn.functional
    assert F.max_pool1d(x[:, :, 0], 2, 2, padding=1, ceil_mode=True).shape[2:] == (3,)
    x3 = torch.zeros(1, 1, 5, 5, 5)
    assert F.max_pool3d(x3, 2, 2, padding=1, ceil_mode=True).shape[2:] == (3, 3, 3)


@pytest.mark.tf
@demonstrates("maxpool-ceil-mode")
def test_maxpool_ceil_mode_tf(tf):
    for fn in (tf.nn.max_pool1d, tf.nn.max_pool2d, tf.nn.max_pool3d, tf.nn.max_pool_with_argmax):
        assert "ceil_mode" not in inspect.signature(fn).parameters


@pytest.mark.tf
@demonstrates("tf-maxpool-no-dilation")
def test_tf_maxpool_no_dilation(tf):
    for fn in (tf.nn.max_pool1d, tf.nn.max_pool2d, tf.nn.max_pool3d, tf.nn.max_pool_with_argmax):
        params = inspect.signature(fn).parameters
        assert "dilations" not in params and "dilation" not in params
    x = tf.zeros((1, 9, 9, 1), tf.float64)
    assert tf.nn.pool(x, [2, 2], "MAX", padding="VALID", dilations=[2, 2]).shape == (1, 7, 7, 1)
    with pytest.raises(ValueError, match="strides > 1"):
        tf.nn.pool(x, [2, 2], "MAX", strides=[2, 2], padding="VALID", dilations=[2, 2])


NHWC_8 = np.arange(8.0).reshape(1, 2, 2, 2)


@pytest.mark.torch
@demonstrates("tf-maxpool-argmax-layout")
def test_maxpool_index_layout_torch(torch):
    _, idx = torch.nn.functional.max_pool2d(
        torch.from_numpy(NHWC_8.transpose(0, 3, 1, 2).copy()), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy().ravel(), [3, 3])  # row * W + col per plane


@pytest.mark.tf
@demonstrates("tf-maxpool-argmax-layout")
def test_tf_maxpool_argmax_layout(tf):
    nhwc = NHWC_8
    _, am = tf.nn.max_pool_with_argmax(tf.constant(nhwc, tf.float64), 2, 2, "VALID")
    np.testing.assert_array_equal(am.numpy().ravel(), [6, 7])  # (y * W + x) * C + c
    backend = load_backend("tensorflow")
    _, ind = backend.max_pool2d(nhwc.transpose(0, 3, 1, 2), 2, return_indices=True)
    np.testing.assert_array_equal(ind.ravel(), [3, 3])
    # Ranks 1 and 3: the adapter's indices are the contract's row-major offsets too.
    _, ind = backend.max_pool1d(np.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]]), 2, return_indices=True)
    np.testing.assert_array_equal(ind.ravel(), [1, 3])
    vol = np.arange(27.0).reshape(1, 1, 3, 3, 3)[:, :, ::-1].copy()  # depth reversed
    _, ind = backend.max_pool3d(vol, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ind.ravel(), [4, 5, 7, 8, 13, 14, 16, 17])


@pytest.mark.tf
@demonstrates("tf-maxpool-argmax-4d-only")
def test_tf_maxpool_argmax_4d_only(tf):
    for shape in ((1, 3, 1), (1, 3, 3, 3, 1)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be 4-dimensional"):
            tf.nn.max_pool_with_argmax(tf.zeros(shape, tf.float64), 2, 1, "VALID")
    # The adapter's 3-D composition keeps the first maximum over depth taps, ties included.
    x = np.ones((1, 1, 2, 2, 2))
    _, ind = load_backend("tensorflow").max_pool3d(x, 2, return_indices=True)
    assert ind.item() == 0
    dx = load_backend("tensorflow").max_pool3d_backward(np.full((1, 1, 1, 1, 1), 5.0), x, 2)
    np.testing.assert_array_equal(dx.ravel(), [5, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.torch
@demonstrates("tf-maxpool-argmax-4d-only")
def test_torch_maxpool_indices_all_ranks(torch):
    F = torch.nn.functional
    _, idx = F.max_pool1d(torch.tensor([[[1.0, 4.0, 2.0, 3.0]]]), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy().ravel(), [1, 3])
    x3 = torch.arange(27.0).reshape(1, 1, 3, 3, 3)
    _, idx = F.max_pool3d(x3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy().ravel(), [13, 14, 16, 17, 22, 23, 25, 26])


@pytest.mark.tf
@demonstrates("tf-maxpool3d-gradient-ties")
def test_tf_maxpool3d_gradient_ties(tf):
    x = tf.ones((1, 1, 2, 3, 1), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.max_pool3d(x, [1, 2, 2], 1, "VALID")
    dy = tf.constant([1.0, 10.0], shape=(1, 1, 1, 2, 1))
    dx = tape.gradient(y, x, output_gradients=dy).numpy().ravel()
    np.testing.assert_array_equal(dx, [1, 11, 10, 1, 11, 10])  # every tied cell, every window
    # The adapter composes from 2-D argmax pools: the first maximum only, as the contract says.
    dx = load_backend("tensorflow").max_pool3d_backward(np.array([1.0, 10.0]).reshape(1, 1, 1,
                                                                                     1, 2),
                                                        np.ones((1, 1, 1, 2, 3)), (1, 2, 2), 1)
    np.testing.assert_array_equal(dx.ravel(), [1, 10, 0, 0, 0, 0])


@pytest.mark.tf
@demonstrates("tf-maxpool3d-no-float64")
def test_tf_maxpool3d_no_float64(tf):
    with pytest.raises(tf.errors.InvalidArgumentError, match="double"):
        tf.nn.max_pool3d(tf.ones((1, 2, 2, 2, 1), tf.float64), 2, 2, "VALID")
    assert tf.nn.max_pool3d(tf.ones((1, 2, 2, 2, 1), tf.float32), 2, 2, "VALID").shape == (
        1, 1, 1, 1, 1)
    y = load_backend("tensorflow").max_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2)
    assert y.dtype == np.float64 and y.item() == 7.0


# --------------------------------------------------------------------------- average pooling


@pytest.mark.torch
@demonstrates("torch-avgpool3d-unpadded-size")
def test_torch_avgpool3d_unpadded_size(torch):
    F = torch.nn.functional
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.avg_pool3d(torch.ones(1, 1, 1, 1, 1, dtype=torch.float64), 2, padding=1)
    y2 = F.avg_pool2d(torch.ones(1, 1, 1, 1, dtype=torch.float64), 2, padding=1)
    assert y2.item() == 0.25  # rank 2 checks the padded input
    x = np.ones((1, 1, 1, 1, 1))
    assert load_backend("torch").avg_pool3d(x, 2, padding=1).item() == 0.125
    assert nnref.avg_pool3d(x, 2, padding=1).item() == 0.125
    dx = load_backend("torch").avg_pool3d_backward(np.ones((1, 1, 1, 1, 1)), x, 2, padding=1)
    assert dx.item() == 0.125


@pytest.mark.torch
@demonstrates("torch-avgpool1d-no-divisor-override")
def test_torch_avgpool1d_no_divisor_override(torch):
    F = torch.nn.functional
    x = torch.arange(1.0, 5.0, dtype=torch.float64).reshape(1, 1, 4)
    with pytest.raises(TypeError):
        F.avg_pool1d(x, 2, divisor_override=3)
    assert F.avg_pool2d(x[:, :, None], (1, 2), divisor_override=3).flatten().tolist() == [1, 7 / 3]
    y = load_backend("torch").avg_pool1d(x.numpy(), 2, divisor_override=3)
    np.testing.assert_array_equal(y, nnref.avg_pool1d(x.numpy(), 2, divisor_override=3))


@pytest.mark.tf
@demonstrates("tf-avgpool-padding-not-counted")
def test_tf_avgpool_padding_not_counted(tf):
    x = np.array([[[1.0, 2.0, 3.0]]])
    same = tf.nn.avg_pool1d(tf.constant(x.transpose(0, 2, 1)), 3, 1, "SAME").numpy().ravel()
    np.testing.assert_allclose(same, [1.5, 2, 2.5])  # input cells only
    with pytest.raises(TypeError, match="padding"):
        tf.nn.avg_pool2d(tf.ones((1, 2, 2, 1)), 2, 1, [[0, 0], [1, 1], [1, 1], [0, 0]])
    for fn in (tf.nn.avg_pool1d, tf.nn.avg_pool2d, tf.nn.avg_pool3d):
        params = inspect.signature(fn).parameters
        assert "ceil_mode" not in params and "count_include_pad" not in params
    backend = load_backend("tensorflow")
    np.testing.assert_allclose(backend.avg_pool1d(x, 3, 1, 1).ravel(), [1, 2, 5 / 3])
    np.testing.assert_allclose(backend.avg_pool1d(x, 3, 1, 1, count_include_pad=False).ravel(),
                               [1.5, 2, 2.5])


@pytest.mark.torch
@demonstrates("tf-avgpool-padding-not-counted")
def test_torch_avgpool_counts_padding(torch):
    x = torch.tensor([[[1.0, 2.0, 3.0]]], dtype=torch.float64)
    F = torch.nn.functional
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 1, 1).flatten().numpy(), [1, 2, 5 / 3])
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 1, 1, count_include_pad=False).flatten(),
                               [1.5, 2, 2.5])
    # ceil_mode: the cell beyond the right padding is not counted (divisor 1, not 2)
    y = F.avg_pool1d(torch.arange(1.0, 6.0).reshape(1, 1, 5), 2, 2, ceil_mode=True)
    assert y.flatten().tolist() == [1.5, 3.5, 5.0]


@pytest.mark.tf
@demonstrates("tf-avgpool3d-no-float64")
def test_tf_avgpool3d_no_float64(tf):
    with pytest.raises(tf.errors.NotFoundError, match="AvgPool3D"):
        tf.nn.avg_pool3d(tf.ones((1, 2, 2, 2, 1), tf.float64), 2, 2, "VALID")
    assert tf.nn.avg_pool3d(tf.ones((1, 2, 2, 2, 1), tf.float32), 2, 2, "VALID").shape == (
        1, 1, 1, 1, 1)
    y = load_backend("tensorflow").avg_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2)
    assert y.dtype == np.float64 and y.item() == 3.5


def _tf_takes_float16_to_onednn(flags: set[str]) -> bool:
    """TF's IsDataTypeSupportedByOneDNNOnThisCPU(DT_HALF) (tensorflow/core/util/util.cc): oneDNN
    takes float16 on CPUs with avx512bw and avx512_fp16 or amx_fp16, or with avx_ne_convert."""
    return bool(("avx512bw" in flags and flags & {"avx512_fp16", "amx_fp16"})
                or "avx_ne_convert" in flags)


@pytest.mark.tf
@demonstrates("tf-float16-eigen-kernels")
def test_tf_float16_lacks_what_float64_lacks(tf):
    """float16 runs on TF's Eigen CPU kernels as float64 does: no AvgPool3D / MaxPool3D, no
    dilated Conv3D or transposed conv; bfloat16 (oneDNN) has them. On CPUs where TF's oneDNN
    takes float16 (by the CPU's flags) the convs have a float16 kernel, the 3-D pools still not.
    The adapter composes them on every CPU."""
    flags = _cpu_flags()
    if flags is None:  # pragma: no cover - not Linux
        pytest.skip("tf-float16-eigen-kernels: which kernels TF has in float16 depends on the "
                    "CPU's flags, read from /proc/cpuinfo (Linux only)")
    ones = tf.ones((1, 2, 2, 2, 1), tf.float16)
    for pool in (tf.nn.avg_pool3d, tf.nn.max_pool3d):
        with pytest.raises(tf.errors.NotFoundError, match="Pool3D"):
            pool(ones, 2, 2, "VALID")
        assert pool(tf.cast(ones, tf.bfloat16), 2, 2, "VALID").shape == (1, 1, 1, 1, 1)
    x3, w3 = tf.ones((1, 3, 3, 3, 2), tf.float16), tf.ones((2, 2, 2, 2, 2), tf.float16)
    x2, w2 = tf.ones((1, 3, 3, 2), tf.float16), tf.ones((2, 2, 2, 2), tf.float16)
    if _tf_takes_float16_to_onednn(flags):
        y3 = tf.nn.conv3d(x3, w3, [1] * 5, "VALID", dilations=[1, 2, 1, 1, 1])
        assert y3.numpy().ravel().tolist() == [16.0] * 8
        y2 = tf.nn.conv2d_transpose(x2, w2, [1, 5, 5, 2], 1, "VALID", dilations=2)
        assert y2.numpy()[0, :, :, 0].tolist() == [[2, 2, 4, 2, 2], [2, 2, 4, 2, 2],
                                                   [4, 4, 8, 4, 4], [2, 2, 4, 2, 2],
                                                   [2, 2, 4, 2, 2]]
    else:
        with pytest.raises(tf.errors.InvalidArgumentError, match="dilated rates of 1"):
            tf.nn.conv3d(x3, w3, [1] * 5, "VALID", dilations=[1, 2, 1, 1, 1])
        with pytest.raises(tf.errors.InvalidArgumentError, match="dilation rates larger than 1"):
            tf.nn.conv2d_transpose(x2, w2, [1, 5, 5, 2], 1, "VALID", dilations=2)
    assert tf.nn.conv2d_transpose(tf.cast(x2, tf.bfloat16), tf.cast(w2, tf.bfloat16),
                                  [1, 5, 5, 2], 1, "VALID", dilations=2).shape == (1, 5, 5, 2)
    backend = load_backend("tensorflow")
    f16 = np.float16
    y = backend.avg_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2).astype(f16), 2)
    assert y.dtype == f16 and y.item() == 3.5
    y = backend.conv3d(np.ones((1, 2, 3, 3, 3), f16), np.ones((2, 2, 2, 2, 2), f16), dilation=2)
    assert y.dtype == f16 and y.ravel().tolist() == [16.0] * 2
    y = backend.conv_transpose2d(np.ones((1, 2, 3, 3), f16), np.ones((2, 2, 2, 2), f16),
                                 dilation=2)
    assert y.shape == (1, 2, 5, 5) and y[0, 0, 2, 2] == 8.0


@pytest.mark.tf
@demonstrates("tf-low-precision-storage-arithmetic")
def test_tf_low_precision_rounds_partial_results_to_the_storage_format(tf):
    """float16 (Eigen) sums avg_pool's window 2048 + 1 - 2048 in float16: 0, where float32
    accumulation gives 1/3 (bfloat16's oneDNN pool: 0.334); layer_norm's mean is rounded to the
    format before it is subtracted: [1000, 1000.5] in float16 gives [0, 2], [-31.25, -31.875] in
    bfloat16 [0.785, -1.18] (exact [-1, 1] and [1, -1])."""
    backend = load_backend("tensorflow")
    f16, bf16 = np.float16, tf.bfloat16.as_numpy_dtype
    x = np.array([[[2048.0, 1.0, -2048.0]]])
    assert backend.avg_pool1d(x.astype(f16), 3).astype(np.float64).item() == 0.0
    assert backend.avg_pool1d(x.astype(bf16), 3).astype(np.float64).item() == 0.333984375
    y16 = backend.layer_norm(np.array([[1000.0, 1000.5]], f16), (2,))
    assert y16.astype(np.float64).ravel().tolist() == [0.0, 2.0]
    ybf = backend.layer_norm(np.array([[-31.25, -31.875]]).astype(bf16), (2,))
    assert ybf.astype(np.float64).ravel().tolist() == [0.78515625, -1.1796875]
    assert nnref.layer_norm(np.array([[-31.25, -31.875]]).astype(bf16), (2,)).astype(
        np.float64).ravel().tolist() == [1.0, -1.0]


def _tf_plain(storage: tuple[str, ...]):
    """The TF backend's table with its low-precision refusals lifted (what TF computes)."""
    import types

    from ..backends import tf_backend
    from ..backends.table import contract_functions

    return types.SimpleNamespace(**contract_functions(
        {k: type(v)(v.forward, v.backward, v.unsupported, v.backward_unsupported, v.doc)
         for k, v in tf_backend.TABLE.items()}, "tensorflow", run=tf_backend._run,
        autodiff=tf_backend._autodiff, module="plain", storage=storage))


@pytest.mark.tf
@demonstrates("tf-float16-norm-overflow")
def test_tf_float16_norms_overflow_where_the_result_is_finite(tf):
    """tf.nn.batch_normalization of [1000, 1000] in float16: NaN (exact 0: mean * rsqrt(eps)
    passes 65504); the gradient of every norm of [0, 1/256] with dy [1, -1]: [-inf, inf]
    (exact [194.75, -194.75]). The backend refuses these calls."""
    f16 = np.float16
    x = tf.constant([1000.0, 1000.0], tf.float16)
    y = tf.nn.batch_normalization(x, tf.constant(1000.0, tf.float16), tf.constant(0.0, tf.float16),
                                  None, None, 1e-5)
    assert np.isnan(y.numpy()).all()
    plain = _tf_plain(("float16",))
    big = np.array([[[1000.0, 1000.0]]], f16)
    assert np.isnan(plain.group_norm(big, 1)).all() and np.isnan(plain.instance_norm(big)).all()
    small, dy = np.array([[[0.0, 1 / 256]]], f16), np.array([[[1.0, -1.0]]], f16)
    exact = nnref.layer_norm_backward(dy.astype(np.float64), small.astype(np.float64), (2,))[0]
    np.testing.assert_allclose(exact.ravel(), [194.7547, -194.7547], rtol=1e-5)
    for dx in (plain.layer_norm_backward(dy, small, (2,))[0],
               plain.group_norm_backward(dy, small, 1)[0],
               plain.instance_norm_backward(dy, small)[0],
               plain.batch_norm_backward(dy.reshape(2, 1), small.reshape(2, 1), None)[0]):
        assert np.isinf(dx).all(), dx
    backend = load_backend("tensorflow")
    with pytest.raises(Unsupported, match="tf-float16-norm-overflow"):
        backend.group_norm(big, 1)
    with pytest.raises(Unsupported, match="tf-float16-norm-overflow"):
        backend.layer_norm_backward(dy, small, (2,))
    # layer_norm's forward (no fold) and bfloat16 (float32's range) are kept.
    assert backend.layer_norm(big, (2,)).ravel().tolist() == [0.0, 0.0]
    bf16 = tf.bfloat16.as_numpy_dtype
    assert backend.group_norm(big.astype(bf16), 1).astype(np.float64).ravel().tolist() == [0, 0]


@pytest.mark.tf
@demonstrates("tf-float16-lp-pool-overflow")
def test_tf_float16_lp_pool_overflows_in_the_power(tf):
    """lp_pool1d of [48, 48], p 3, in float16: 48 ** 3 = 110592 passes 65504: inf (exact
    60.48), gradient 0 (exact 0.63). The backend refuses; bfloat16 is kept."""
    f16 = np.float16
    x, dy = np.array([[[48.0, 48.0]]], f16), np.array([[[1.0]]], f16)
    assert np.isinf(tf.pow(tf.constant(48.0, tf.float16), 3.0).numpy())
    plain = _tf_plain(("float16",))
    assert np.isinf(plain.lp_pool1d(x, 3, 2)).all()
    assert plain.lp_pool1d_backward(dy, x, 3, 2).ravel().tolist() == [0.0, 0.0]
    exact = nnref.lp_pool1d(x.astype(np.float64), 3, 2).item()
    assert abs(exact - 60.4762) < 1e-3
    backend = load_backend("tensorflow")
    with pytest.raises(Unsupported, match="tf-float16-lp-pool-overflow"):
        backend.lp_pool1d(x, 3, 2)
    bf16 = tf.bfloat16.as_numpy_dtype
    # bfloat16: finite, 61 (rounded x ** 3 and sum: within the storage bound; spacing 0.25 here)
    assert backend.lp_pool1d(x.astype(bf16), 3, 2).astype(np.float64).item() == 61.0


# -------------------------------------------------------------------------- adaptive pooling


@pytest.mark.torch
@demonstrates("torch-adaptive-pool1d-no-none")
def test_torch_adaptive_pool1d_no_none(torch):
    F = torch.nn.functional
    x = torch.arange(1.0, 5.0, dtype=torch.float64).reshape(1, 1, 4)
    for fn in (F.adaptive_avg_pool1d, F.adaptive_max_pool1d):
        with pytest.raises(TypeError, match="NoneType"):
            fn(x, (None,))
    assert tuple(F.adaptive_avg_pool2d(x[:, :, None], (None, 2)).shape) == (1, 1, 1, 2)
    y = load_backend("torch").adaptive_avg_pool1d(x.numpy(), (None,))
    np.testing.assert_array_equal(y, nnref.adaptive_avg_pool1d(x.numpy(), (None,)))


@pytest.mark.torch
@demonstrates("adaptive-max-pool-nan")
def test_torch_adaptive_max_last_nan(torch):
    """torch keeps the contract's NaN rule (the last NaN): what the entry's handling assumes."""
    F = torch.nn.functional
    x = torch.tensor([[[np.nan, 1.0, np.nan, 2.0]]], dtype=torch.float64)
    y, ind = F.adaptive_max_pool1d(x, 1, return_indices=True)
    assert np.isnan(y.item()) and ind.item() == 2


@pytest.mark.tf
@demonstrates("adaptive-max-pool-nan")
def test_tf_argmax_skips_nan(tf):
    x = np.array([[1.0, np.nan, 3.0, np.nan, 2.0]])
    assert tf.argmax(tf.constant(x), axis=-1).numpy().tolist() == [2]
    with pytest.raises(Unsupported) as info:
        load_backend("tensorflow").adaptive_max_pool1d(x[None], 1)
    assert info.value.divergence_id == "adaptive-max-pool-nan"


@demonstrates("adaptive-max-pool-nan")
def test_scipy_adaptive_max_loses_nan(scipy):
    from scipy import ndimage

    # the window [nan, 1, 2] (output 1 of a size-3 filter) gives 2: the NaN is lost
    full = ndimage.maximum_filter1d(np.array([np.nan, 1.0, 2.0]), 3, mode="constant",
                                    cval=-np.inf)
    assert full[1] == 2.0
    backend = load_backend("scipy")
    for r in (1, 2, 3):
        x = np.ones((1, 1) + (2,) * r)
        x.flat[0] = np.nan
        with pytest.raises(Unsupported) as info:
            getattr(backend, f"adaptive_max_pool{r}d")(x, 1)
        assert info.value.divergence_id == "adaptive-max-pool-nan"


@demonstrates("scipy-adaptive-max-no-indices")
def test_scipy_adaptive_max_no_indices(scipy):
    from scipy import ndimage

    params = inspect.signature(ndimage.maximum_filter1d).parameters
    assert not any("ind" in p or "arg" in p for p in params)
    backend = load_backend("scipy")
    for r in (1, 2, 3):
        with pytest.raises(Unsupported) as info:
            getattr(backend, f"adaptive_max_pool{r}d")(np.ones((1, 1) + (2,) * r), 1,
                                                       return_indices=True)
        assert info.value.divergence_id == "scipy-adaptive-max-no-indices"


# ------------------------------------------------------------------------------- batch norm


@pytest.mark.torch
@demonstrates("torch-running-var-unbiased")
def test_torch_running_var_unbiased(torch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 2, 2))
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    eps = 1e-5
    y = torch.nn.functional.batch_norm(torch.from_numpy(x), rm, rv, training=True, momentum=1.0,
                                       eps=eps)
    unbiased = x.var(axis=(0, 2, 3), ddof=1)
    biased = x.var(axis=(0, 2, 3), ddof=0)
    np.testing.assert_allclose(rv.numpy(), unbiased, rtol=1e-12)
    assert not np.allclose(rv.numpy(), biased)
    # ... while the output is normalised with the biased variance.
    np.testing.assert_allclose(y.numpy().var(axis=(0, 2, 3)), biased / (biased + eps),
                               rtol=1e-12)


BN_X = np.random.default_rng(6).standard_normal((4, 3, 3, 2)).astype(np.float32) * 2 + 1  # NHWC


@pytest.mark.torch
@demonstrates("batchnorm-momentum-convention")
def test_batchnorm_momentum_convention_torch(torch):
    tbn = torch.nn.BatchNorm2d(2)
    assert (tbn.momentum, tbn.eps) == (0.1, 1e-5)
    tbn.train()
    tbn(torch.from_numpy(BN_X.transpose(0, 3, 1, 2).copy()))
    mean = BN_X.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(tbn.running_mean.numpy(), 0.9 * 0 + 0.1 * mean, rtol=1e-5)


@pytest.mark.tf
@demonstrates("batchnorm-momentum-convention")
def test_batchnorm_momentum_convention_keras(tf):
    kbn = tf.keras.layers.BatchNormalization()
    assert (kbn.momentum, kbn.epsilon) == (0.99, 1e-3)
    kbn(BN_X, training=True)
    mean, var = BN_X.mean(axis=(0, 1, 2)), BN_X.var(axis=(0, 1, 2))
    np.testing.assert_allclose(kbn.moving_mean.numpy(), 0.99 * 0 + 0.01 * mean, rtol=1e-5)
    np.testing.assert_allclose(kbn.moving_variance.numpy(), 0.99 * 1 + 0.01 * var, rtol=1e-5)


@pytest.mark.tf
@demonstrates("tf-batchnorm-moving-variance-bessel")
def test_tf_batchnorm_moving_variance_bessel(tf):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    m = 4 * 3 * 3
    _, _, batch_var = tf.compat.v1.nn.fused_batch_norm(tf.constant(x), tf.ones(2), tf.zeros(2),
                                                       is_training=True)
    biased = x.astype(np.float64).var(axis=(0, 1, 2))
    np.testing.assert_allclose(batch_var.numpy(), biased * m / (m - 1), rtol=1e-5)
    assert not np.allclose(batch_var.numpy(), biased, rtol=1e-4)

    kbn = tf.keras.layers.BatchNormalization(momentum=0.0)
    kbn(x, training=True)
    np.testing.assert_allclose(kbn.moving_variance.numpy(), biased, rtol=1e-5)


@pytest.mark.tf
@demonstrates("tf-fused-batchnorm-no-float64")
def test_tf_fused_batchnorm_no_float64(tf):
    x = tf.ones((2, 3, 3, 2), tf.float64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="double"):
        tf.compat.v1.nn.fused_batch_norm(x, tf.ones(2, tf.float64), tf.zeros(2, tf.float64),
                                         is_training=True)
    mean, var = tf.nn.moments(x, axes=[0, 1, 2])
    y = tf.nn.batch_normalization(x, mean, var, None, None, 1e-5)
    assert y.dtype == tf.float64


@pytest.mark.torch
@demonstrates("batchnorm-single-value-per-channel")
def test_batchnorm_single_value_per_channel_torch(torch):
    for shape in ((1, 2, 1, 1), (1, 2), (1, 2, 1), (1, 2, 1, 1, 1)):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            torch.nn.functional.batch_norm(torch.ones(shape), None, None, training=True)
        with pytest.raises(ValueError, match="more than one value per channel"):
            load_backend("torch").batch_norm(np.ones(shape), None, None)


@pytest.mark.tf
@demonstrates("batchnorm-single-value-per-channel")
def test_batchnorm_single_value_per_channel_tf(tf):
    _, var = tf.nn.moments(tf.ones((1, 2, 1, 1)), axes=[0, 2, 3])
    np.testing.assert_array_equal(var.numpy(), [0.0, 0.0])
    with pytest.raises(ValueError, match="more than one value per channel"):
        load_backend("tensorflow").batch_norm(np.ones((1, 2, 1, 1)), None, None)


@demonstrates("batchnorm-single-value-per-channel")
def test_batchnorm_single_value_per_channel_scipy(scipy):
    for shape in ((1, 2, 1, 1), (1, 2), (1, 2, 1), (1, 2, 1, 1, 1)):
        with pytest.raises(ValueError, match="more than one value per channel"):
            load_backend("scipy").batch_norm(np.ones(shape), None, None)


@pytest.mark.torch
@demonstrates("torch-batchnorm-eps-positive")
def test_torch_batchnorm_eps_positive(torch):
    F = torch.nn.functional
    x = torch.from_numpy(np.random.default_rng(8).standard_normal((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="eps must be positive during training"):
        F.batch_norm(x, None, None, training=True, eps=0.0)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    F.batch_norm(x, rm, rv, training=False, eps=0.0)  # eval mode accepts eps = 0
    y, _, new_var = load_backend("torch").batch_norm(
        x.numpy(), None, None, np.zeros(3), np.ones(3), training=True, momentum=0.5, eps=0.0)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(new_var, 0.5 + 0.5 * x.numpy().var(axis=(0, 2, 3), ddof=1),
                               rtol=1e-12)
    for shape, axes in (((4, 3), (0,)), ((2, 3, 2, 2, 2), (0, 2, 3, 4))):  # every rank
        xr = torch.from_numpy(np.random.default_rng(8).standard_normal(shape))
        with pytest.raises(ValueError, match="eps must be positive during training"):
            F.batch_norm(xr, None, None, training=True, eps=0.0)
        yr = load_backend("torch").batch_norm(xr.numpy(), None, None, eps=0.0)
        np.testing.assert_allclose(yr.var(axis=axes), 1.0, rtol=1e-12)


# ------------------------------------------------------------------------------------- SciPy


@demonstrates("scipy-no-autodiff")
def test_scipy_no_autodiff(scipy):
    from scipy import signal

    assert type(signal.correlate(np.ones(3), np.ones(2))) is np.ndarray
    backend = load_backend("scipy")
    calls = [lambda: backend.pad_backward(np.ones((1, 1, 5, 5)), 1)]
    for r in (1, 2, 3):
        x, w = np.ones((1, 1) + (3,) * r), np.ones((1, 1) + (2,) * r)
        dy = w  # the output of a kernel-2 conv / pool of x has w's shape
        calls += [
            lambda r=r, x=x, w=w, dy=dy: getattr(backend, f"conv{r}d_backward")(dy, x, w),
            lambda r=r, x=x, dy=dy: getattr(backend, f"max_pool{r}d_backward")(dy, x, 2, 1),
            lambda x=x: backend.batch_norm_backward(x, x, None),
        ]
    for call in calls:
        with pytest.raises(Unsupported) as info:
            call()
        assert info.value.divergence_id == "scipy-no-autodiff"


@demonstrates("scipy-no-autodiff")
def test_scipy_conv_transpose_no_autodiff(scipy):
    backend = load_backend("scipy")
    for r in (1, 2, 3):
        x, w = np.ones((1, 1) + (2,) * r), np.ones((1, 1) + (2,) * r)
        dy = np.ones((1, 1) + (3,) * r)
        with pytest.raises(Unsupported) as info:
            getattr(backend, f"conv_transpose{r}d_backward")(dy, x, w)
        assert info.value.divergence_id == "scipy-no-autodiff"


@demonstrates("scipy-max-filter-no-indices")
def test_scipy_max_filter_no_indices(scipy):
    from scipy import ndimage

    params = inspect.signature(ndimage.maximum_filter).parameters
    assert not any("ind" in p or "arg" in p for p in params)
    for r in (1, 2, 3):
        with pytest.raises(Unsupported) as info:
            getattr(load_backend("scipy"), f"max_pool{r}d")(np.ones((1, 1) + (2,) * r), 2,
                                                            return_indices=True)
        assert info.value.divergence_id == "scipy-max-filter-no-indices"


# ------------------------------------------------------------------------------- activations


def _torch_grad(torch, fn, x, dy, dtype):
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    (g,) = torch.autograd.grad(fn(xt), xt, torch.tensor(dy, dtype=dtype))
    return g.numpy()


def _tf_grad(tf, fn, x, dy, dtype):
    xt = tf.constant(x, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = fn(xt)
    return tape.gradient(y, xt, output_gradients=tf.constant(dy, dtype=dtype)).numpy()


@pytest.mark.torch
@demonstrates("activation-derivative-at-zero")
def test_activation_derivative_at_zero_torch(torch):
    f = torch.nn.functional
    for dtype in (torch.float32, torch.float64):
        zeros, ones = [-0.0, 0.0], [1.0, 1.0]
        np.testing.assert_array_equal(_torch_grad(torch, f.relu, zeros, ones, dtype), [0, 0])
        for alpha in (1.0, 2.0, 0.5):
            got = _torch_grad(torch, lambda t, a=alpha: f.elu(t, alpha=a), zeros, ones, dtype)
            np.testing.assert_array_equal(got, [alpha, alpha])
    for alpha in (1.0, 2.0):  # the contract agrees
        np.testing.assert_array_equal(nnref.elu_backward(np.ones(2), np.array([-0.0, 0.0]),
                                                         alpha), [alpha, alpha])
    np.testing.assert_array_equal(nnref.relu_backward(np.ones(2), np.array([-0.0, 0.0])), 0)


@pytest.mark.tf
@demonstrates("activation-derivative-at-zero")
def test_activation_derivative_at_zero_tf(tf):
    for dtype in (tf.float32, tf.float64):
        zeros, ones = [-0.0, 0.0], [1.0, 1.0]
        np.testing.assert_array_equal(_tf_grad(tf, tf.nn.relu, zeros, ones, dtype), [0, 0])
        np.testing.assert_array_equal(_tf_grad(tf, tf.nn.elu, zeros, ones, dtype), [1, 1])


@pytest.mark.torch
@demonstrates("activation-gradient-at-nan")
def test_activation_gradient_at_nan_torch(torch):
    f = torch.nn.functional
    for dtype in (torch.float32, torch.float64):
        for fn in (f.relu, f.elu):
            assert _torch_grad(torch, fn, [np.nan], [1.0], dtype)[0] == 1.0
    assert np.isnan(nnref.relu_backward(np.ones(1), np.array([np.nan]))).all()
    assert np.isnan(nnref.elu_backward(np.ones(1), np.array([np.nan]))).all()
    backend = load_backend("torch")
    assert np.isnan(backend.relu_backward(np.ones(1), np.array([np.nan]))).all()
    assert np.isnan(backend.elu_backward(np.ones(1), np.array([np.nan]), 2.0)).all()


@pytest.mark.tf
@demonstrates("activation-gradient-at-nan")
def test_activation_gradient_at_nan_tf(tf):
    for dtype in (tf.float32, tf.float64):
        assert _tf_grad(tf, tf.nn.relu, [np.nan], [1.0], dtype)[0] == 0.0
        assert _tf_grad(tf, tf.nn.elu, [np.nan], [1.0], dtype)[0] == 1.0
    backend = load_backend("tensorflow")
    assert np.isnan(backend.relu_backward(np.ones(1), np.array([np.nan]))).all()
    assert np.isnan(backend.elu_backward(np.ones(1), np.array([np.nan]), 2.0)).all()


@pytest.mark.torch
@demonstrates("torch-relu-gradient-selects")
def test_torch_relu_gradient_selects(torch):
    x = [-1.0, 0.0, 1.0]
    for dtype in (torch.float32, torch.float64):
        got = _torch_grad(torch, torch.nn.functional.relu, x, [np.nan] * 3, dtype)
        np.testing.assert_array_equal(got, [0, 0, np.nan])
        got = _torch_grad(torch, torch.nn.functional.relu, x, [np.inf] * 3, dtype)
        np.testing.assert_array_equal(got, [0, 0, np.inf])
    want = [np.nan, np.nan, np.inf]
    np.testing.assert_array_equal(nnref.relu_backward(np.full(3, np.inf), np.array(x)), want)
    np.testing.assert_array_equal(
        load_backend("torch").relu_backward(np.full(3, np.inf), np.array(x)), want)


@pytest.mark.tf
@demonstrates("torch-relu-gradient-selects")
def test_tf_relu_gradient_multiplies(tf):
    x = [-1.0, 0.0, 1.0]
    for dtype in (tf.float32, tf.float64):
        got = _tf_grad(tf, tf.nn.relu, x, [np.inf] * 3, dtype)
        np.testing.assert_array_equal(got, [np.nan, np.nan, np.inf])


@pytest.mark.tf
@demonstrates("tf-relu-negative-zero")
def test_tf_relu_negative_zero(tf):
    def signs(dtype, n):
        return np.signbit(tf.nn.relu(tf.constant(np.full(n, -0.0), dtype=dtype)).numpy())

    assert not signs(tf.float32, 9)[:8].any() and signs(tf.float32, 9)[8]  # packet, tail
    assert not signs(tf.float64, 4).any() and signs(tf.float64, 3).all()
    for dtype in (np.float32, np.float64):
        x = np.array([-0.0] * 9 + [-1.0, 2.0], dtype=dtype)
        got = load_backend("tensorflow").relu(x)
        assert np.signbit(got[:9]).all() and got[9] == 0 and not np.signbit(got[9])


@pytest.mark.torch
@demonstrates("tf-relu-negative-zero")
def test_torch_relu_keeps_negative_zero(torch):
    for dtype in (torch.float32, torch.float64):
        y = torch.nn.functional.relu(torch.tensor([-0.0], dtype=dtype)).numpy()
        assert np.signbit(y[0])
    assert np.signbit(nnref.relu(np.array([-0.0]))[0])


@pytest.mark.tf
@demonstrates("tf-elu-no-alpha")
def test_tf_elu_no_alpha(tf):
    assert list(inspect.signature(tf.nn.elu).parameters) == ["features", "name"]
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    for alpha in (0.5, 2.0):
        got = load_backend("tensorflow").elu(x, alpha)
        np.testing.assert_allclose(got, nnref.elu(x, alpha), rtol=1e-15, atol=0)


@pytest.mark.torch
@demonstrates("sigmoid-subnormal-flush")
def test_sigmoid_float32_subnormal_flush_torch(torch):
    x = np.array([-88.0, -90.0], dtype=np.float32)
    got = torch.sigmoid(torch.tensor(x)).numpy()
    assert got[0] > 0 and got[1] == 0  # 6.05e-39 kept, 8.19e-40 flushed
    want = nnref.sigmoid(x)
    assert want[1] > 0 and abs(float(want[1]) - 8.194e-40) < 1e-42
    x64 = torch.tensor([-708.5, -718.0], dtype=torch.float64)
    got = torch.sigmoid(x64).numpy()
    assert got[0] > 0 and got[1] == 0 and torch.exp(x64)[1] > 0  # exp keeps the subnormal
    assert nnref.sigmoid(x64.numpy())[1] > 0


@pytest.mark.tf
@demonstrates("sigmoid-subnormal-flush")
def test_sigmoid_float32_subnormal_flush_tf(tf):
    x = np.array([-87.3, -88.0], dtype=np.float32)
    got = tf.nn.sigmoid(tf.constant(x)).numpy()
    assert got[0] > np.finfo(np.float32).tiny and got[1] == 0  # 6.05e-39 flushed
    assert nnref.sigmoid(x)[1] > 0
    x64 = np.array([-708.0, -708.5])
    assert (tf.nn.sigmoid(tf.constant(x64)).numpy() == [np.exp(-708.0) / (1 + np.exp(-708.0)),
                                                        0]).all()
    assert nnref.sigmoid(x64)[1] > 0


@pytest.mark.torch
@demonstrates("sigmoid-saturated-gradient")
def test_sigmoid_saturated_gradient_torch(torch):
    for dtype, x in ((torch.float32, 17.0), (torch.float64, 37.0)):
        assert np.isnan(_torch_grad(torch, torch.sigmoid, [x], [np.inf], dtype)[0])
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        args = np.full(1, np.inf, np_dtype), np.full(1, x, np_dtype)
        assert nnref.sigmoid_backward(*args)[0] == np.inf
        assert load_backend("torch").sigmoid_backward(*args)[0] == np.inf
    # a subnormal derivative (x = -718): torch.sigmoid flushes it, the composition keeps it
    args = np.full(1, np.inf), np.full(1, -718.0)
    assert np.isnan(_torch_grad(torch, torch.sigmoid, [-718.0], [np.inf], torch.float64)[0])
    assert nnref.sigmoid_backward(*args)[0] == np.inf
    assert load_backend("torch").sigmoid_backward(*args)[0] == np.inf


@pytest.mark.torch
@demonstrates("torch-norm-gradient-non-finite")
def test_torch_norm_gradient_non_finite(torch):
    f = torch.nn.functional
    x, dy = np.array([[0.0, 2.0, 3.0]]), np.array([[1.0, 1.0, np.inf]])
    contract = [np.nan, -np.inf, np.nan]
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(nnref.layer_norm_backward(dy, x, 3)[0][0], contract)
    backend = load_backend("torch")
    for native, adapter in (
        (lambda t: f.layer_norm(t, (3,)), lambda: backend.layer_norm_backward(dy, x, 3)[0]),
        (lambda t: f.group_norm(t.reshape(1, 1, 3), 1).reshape(1, 3),
         lambda: backend.group_norm_backward(dy[None], x[None], 1)[0][0]),
    ):
        assert np.isnan(_torch_grad(torch, native, x, dy, torch.float64)).all()
        np.testing.assert_array_equal(adapter()[0], contract)


@pytest.mark.tf
@demonstrates("sigmoid-saturated-gradient")
def test_sigmoid_saturated_gradient_tf(tf):
    for dtype, x in ((tf.float32, 17.0), (tf.float64, 37.0)):
        assert np.isnan(_tf_grad(tf, tf.nn.sigmoid, [x], [np.inf], dtype)[0])
        np_dtype = np.float32 if dtype == tf.float32 else np.float64
        args = np.full(1, np.inf, np_dtype), np.full(1, x, np_dtype)
        assert load_backend("tensorflow").sigmoid_backward(*args)[0] == np.inf


@demonstrates("scipy-no-autodiff")
def test_scipy_no_autodiff_activations_and_linear(scipy):
    backend = load_backend("scipy")
    x = np.ones((2, 3))
    calls = [lambda: backend.relu_backward(x, x), lambda: backend.elu_backward(x, x),
             lambda: backend.sigmoid_backward(x, x),
             lambda: backend.linear_backward(np.ones((2, 4)), x, np.ones((4, 3)))]
    for call in calls:
        with pytest.raises(Unsupported) as info:
            call()
        assert info.value.divergence_id == "scipy-no-autodiff"
# ------------------------------------------------------------------------------ LP pooling


@pytest.mark.torch
@demonstrates("torch-lppool1d-kernel-tuple")
def test_torch_lppool1d_kernel_tuple(torch):
    F = torch.nn.functional
    x = torch.arange(1.0, 5.0, dtype=torch.float64).reshape(1, 1, 4)
    with pytest.raises(TypeError, match="mul"):
        F.lp_pool1d(x, 2, (2,))
    assert F.avg_pool1d(x, (2,)).flatten().tolist() == [1.5, 3.5]
    expected = nnref.lp_pool1d(x.numpy(), 2, (2,))
    np.testing.assert_allclose(load_backend("torch").lp_pool1d(x.numpy(), 2, (2,)), expected,
                               rtol=1e-15)
    np.testing.assert_allclose(expected.ravel(), [5 ** 0.5, 5.0], rtol=1e-15)


@pytest.mark.torch
@demonstrates("torch-lppool-inf-max-abs")
def test_torch_lppool_inf_max_abs(torch):
    F = torch.nn.functional
    x = torch.tensor([[[1.0, -3.0, 2.0, -0.5, 4.0]]], dtype=torch.float64)
    np.testing.assert_array_equal(F.lp_pool1d(x, float("inf"), 2).numpy(),
                                  F.max_pool1d(x.abs(), 2).numpy())
    np.testing.assert_array_equal(F.lp_pool1d(x, float("-inf"), 2).flatten().numpy(), [1, 0.5])
    x2 = x.reshape(1, 1, 1, 5)
    np.testing.assert_array_equal(F.lp_pool2d(x2, float("inf"), (1, 2)).flatten().numpy(), [3, 2])
    for backend in (nnref, load_backend("torch")):
        with pytest.raises(ValueError, match="norm_type"):
            backend.lp_pool1d(x.numpy(), float("inf"), 2)


@pytest.mark.torch
@demonstrates("torch-lppool-zero-window-grad-below-1")
def test_torch_lppool_zero_window_grad_below_1(torch):
    F = torch.nn.functional
    dy = np.array([[[1.0, 2.0]]])
    for dtype in (torch.float32, torch.float64):
        for p in (0.5, 0.75, 1, 1.5, 2, 3):
            x = torch.tensor([[[0.0, 0.0, 1.0, 2.0]]], dtype=dtype, requires_grad=True)
            F.lp_pool1d(x, p, 2).backward(torch.tensor(dy, dtype=dtype))
            zero_window = x.grad.numpy()[0, 0, :2]
            if p < 1:
                assert np.isnan(zero_window).all(), (dtype, p)
            else:
                np.testing.assert_array_equal(zero_window, [0, 0])
            dx = nnref.lp_pool1d_backward(dy.astype((x.dtype == torch.float32 and np.float32)
                                                    or np.float64), x.detach().numpy(), p, 2)
            np.testing.assert_array_equal(dx[0, 0, :2], [0, 0])
            np.testing.assert_allclose(dx[0, 0, 2:], x.grad.numpy()[0, 0, 2:], rtol=1e-6)


@pytest.mark.torch
@demonstrates("lppool-ceil-mode-scaled")
def test_lppool_ceil_mode_scaled_torch(torch):
    F = torch.nn.functional
    x = np.array([[[3.0, 4.0, 6.0, 8.0, 2.0]]])
    y = F.lp_pool1d(torch.from_numpy(x), 2, 2, ceil_mode=True).flatten().numpy()
    np.testing.assert_allclose(y, [5, 10, 8 ** 0.5], rtol=1e-15)  # sqrt(2 * 2 ** 2), not 2
    np.testing.assert_allclose(nnref.lp_pool1d(x, 2, 2, ceil_mode=True).ravel(), y, rtol=1e-15)
    x2 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y2 = F.lp_pool2d(torch.from_numpy(x2), 1, 2, ceil_mode=True).flatten().numpy()
    np.testing.assert_array_equal(y2, [12, 18, 30, 36])  # [3, 6] * 4 / 2, [7, 8] * 2, 9 * 4
    np.testing.assert_array_equal(nnref.lp_pool2d(x2, 1, 2, ceil_mode=True).ravel(), y2)


@pytest.mark.tf
@demonstrates("lppool-ceil-mode-scaled")
def test_lppool_ceil_mode_scaled_tf(tf):
    assert not hasattr(tf.nn, "lp_pool") and not hasattr(tf.nn, "lp_pool2d")
    x = np.array([[[3.0, 4.0, 6.0, 8.0, 2.0]]])
    y = load_backend("tensorflow").lp_pool1d(x, 2, 2, ceil_mode=True).ravel()
    np.testing.assert_allclose(y, [5, 10, 8 ** 0.5], rtol=1e-15)


@demonstrates("lppool-ceil-mode-scaled")
def test_lppool_ceil_mode_scaled_scipy(scipy):
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = load_backend("scipy").lp_pool2d(x, 1, 2, ceil_mode=True).ravel()
    np.testing.assert_allclose(y, [12, 18, 30, 36], rtol=1e-15)


@pytest.mark.torch
@demonstrates("lppool-negative-base-nan")
def test_lppool_negative_base_nan_torch(torch):
    F = torch.nn.functional
    x = np.array([[[1.0, -2.0, 3.0, 0.5]]])
    for p in (3, 1.5):
        y = F.lp_pool1d(torch.from_numpy(x), p, 2).flatten().numpy()
        assert np.isnan(y[0]) and np.isfinite(y[1]), p
        np.testing.assert_allclose(nnref.lp_pool1d(x, p, 2).ravel(), y, rtol=1e-15)
    y = F.lp_pool1d(torch.from_numpy(x), 2, 2).flatten().numpy()  # even p: |x| ** p
    np.testing.assert_allclose(y, [5 ** 0.5, 9.25 ** 0.5], rtol=1e-15)


@pytest.mark.tf
@demonstrates("lppool-negative-base-nan")
def test_lppool_negative_base_nan_tf(tf):
    x = np.array([[[1.0, -2.0, 3.0, 0.5]]])
    for p in (3, 1.5):
        y = load_backend("tensorflow").lp_pool1d(x, p, 2).ravel()
        assert np.isnan(y[0]) and np.isfinite(y[1]), p
    assert np.isnan(tf.pow(tf.constant(-2.0, tf.float64), 1.5).numpy())


@demonstrates("lppool-negative-base-nan")
def test_lppool_negative_base_nan_scipy(scipy):
    x = np.array([[[1.0, -2.0, 3.0, 0.5]]])
    for p in (3, 1.5):
        y = load_backend("scipy").lp_pool1d(x, p, 2).ravel()
        assert np.isnan(y[0]) and np.isfinite(y[1]), p


# ------------------------------------------------------------------------------- meta tests


# ---------------------------------------------------------------------------------------- JAX
# Each calls JAX directly (the behaviour), then the adapter (what the suite does about it).


@pytest.mark.jax
@demonstrates("pad-backward-signed-zero")
def test_pad_backward_signed_zero_jax(jax):
    jnp = jax.numpy
    dy = np.array([-0.0, -0.0, 1.0, -0.0, -0.0])
    for mode in ("reflect", "edge", "wrap"):
        _, dx = _jax_vjp(jax, lambda v, m=mode: jnp.pad(v, (1, 1), mode=m), np.zeros(3), dy,
                         x64=True)
        assert not np.signbit(dx).any(), mode
    assert np.signbit(nnref.pad_backward(dy.reshape(1, 1, 5), 1, "reflect")).tolist() == [
        [[True, False, True]]]


@pytest.mark.jax
@demonstrates("max-pool-nan")
def test_jax_max_pool_nan_gradient(jax):
    lax = jax.lax

    def pool(v):
        return lax.reduce_window(v, np.array(-np.inf, v.dtype), lax.max, (1, 3), (1, 3), "VALID")

    for row in ([np.nan, 5.0, 7.0], [5.0, np.nan, 7.0]):
        y, dx = _jax_vjp(jax, pool, np.array([row], np.float32), [[1.0]])
        assert np.isnan(y).all()
        np.testing.assert_array_equal(dx, [[0, 0, 1]])  # dy to the 7, not to the NaN
    x = np.array([[[np.nan, 5.0, 7.0]]])
    np.testing.assert_array_equal(load_backend("jax").max_pool1d_backward(
        np.ones((1, 1, 1)), x, 3), [[[1, 0, 0]]])


@pytest.mark.jax
@demonstrates("maxpool-neg-inf-sentinel")
def test_jax_maxpool_neg_inf_sentinel(jax):
    lax = jax.lax

    def pool(v):
        return lax.reduce_window(v, np.array(-np.inf, v.dtype), lax.max, (1, 2), (1, 1),
                                 ((0, 0), (1, 0)))

    y, dx = _jax_vjp(jax, pool, np.array([[-np.inf, 1.0]], np.float32), [[1.0, 10.0]])
    np.testing.assert_array_equal(y, [[-np.inf, 1.0]])
    np.testing.assert_array_equal(dx, [[0.0, 10.0]])  # window 0's dy went to the padding
    got = load_backend("jax").max_pool1d_backward(np.array([[[1.0, 10.0]]]),
                                                  np.array([[[-np.inf, 1.0]]]), 2, 1, [(1, 0)])
    np.testing.assert_array_equal(got, [[[1.0, 10.0]]])


@pytest.mark.jax
@demonstrates("activation-gradient-at-nan")
def test_activation_gradient_at_nan_jax(jax):
    for x64 in (False, True):
        assert _jax_vjp(jax, jax.nn.relu, [np.nan], [1.0], x64)[1][0] == 0.0
        assert np.isnan(_jax_vjp(jax, jax.nn.elu, [np.nan], [1.0], x64)[1][0])
    assert np.isnan(load_backend("jax").relu_backward(np.ones(1), np.array([np.nan]))).all()


@pytest.mark.jax
@demonstrates("sigmoid-subnormal-flush")
def test_sigmoid_subnormal_flush_jax(jax):
    y, dx = _jax_vjp(jax, jax.nn.sigmoid, np.array([-87.3, -88.0], np.float32), [1.0, 1.0])
    assert y[0] > np.finfo(np.float32).tiny and y[1] == 0 and dx[1] == 0  # 6.05e-39 flushed
    y, _ = _jax_vjp(jax, jax.nn.sigmoid, np.array([-708.0, -708.5]), [1.0, 1.0], x64=True)
    assert y[0] > 0 and y[1] == 0  # 2.0e-308 flushed
    assert nnref.sigmoid(np.array([-708.5]))[0] > 0


@pytest.mark.jax
@demonstrates("sigmoid-saturated-gradient")
def test_sigmoid_saturated_gradient_jax(jax):
    _, dx = _jax_vjp(jax, jax.nn.sigmoid, np.array([17.0], np.float32), [np.inf])
    assert np.isnan(dx[0])
    args = np.full(1, np.inf, np.float32), np.full(1, 17.0, np.float32)
    assert load_backend("jax").sigmoid_backward(*args)[0] == np.inf
    assert nnref.sigmoid_backward(*args)[0] == np.inf


@pytest.mark.jax
@demonstrates("jax-conv-transpose-no-groups")
def test_jax_conv_transpose_no_groups(jax):
    lax = jax.lax
    assert "feature_group_count" not in inspect.signature(lax.conv_transpose).parameters
    x, w = np.ones((1, 2, 3), np.float32), np.ones((2, 1, 2), np.float32)
    with pytest.raises(TypeError):
        lax.conv_transpose(x, w, (1,), "VALID", dimension_numbers=("NCH", "IOH", "NCH"),
                           feature_group_count=2)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3))
    got = load_backend("jax").conv_transpose1d(x, w, stride=2, padding=1, groups=2)
    np.testing.assert_allclose(got, nnref.conv_transpose1d(x, w, stride=2, padding=1, groups=2),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.jax
@demonstrates("jax-maxpool-no-indices")
def test_jax_maxpool_no_indices(jax):
    names = {n for module in (jax.lax, jax.nn) for n in dir(module)}
    assert not {n for n in names if "pool" in n.lower()}
    assert {n for n in names if "argmax" in n.lower()} == {"argmax", "argmax_p"}
    x = np.array([[[[1.0, 3.0, 2.0], [3.0, 0.0, 9.0]]]])
    _, idx = load_backend("jax").max_pool2d(x, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx, [[[[1, 5]]]])  # first maximum: the 3 at (0, 1)


@pytest.mark.jax
@demonstrates("jax-maxpool-dilation-no-vjp")
def test_jax_maxpool_dilation_no_vjp(jax):
    lax = jax.lax

    def pool(v):
        return lax.reduce_window(v, np.array(-np.inf, v.dtype), lax.max, (1, 2), (1, 1),
                                 "VALID", window_dilation=(1, 2))

    with pytest.raises(NotImplementedError, match="window dilation"):
        _jax_vjp(jax, pool, np.array([[1.0, 3.0, 2.0, 5.0, 4.0]], np.float32), [[1.0] * 3])
    x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    got = load_backend("jax").max_pool1d_backward(np.array([[[1.0, 10.0, 100.0]]]), x, 2, 1,
                                                  dilation=2)
    np.testing.assert_array_equal(got, [[[0, 0, 1, 10, 100]]])


@pytest.mark.jax
@demonstrates("jax-reduce-max-splits-ties")
def test_jax_reduce_max_splits_ties(jax):
    jnp = jax.numpy
    np.testing.assert_array_equal(jax.grad(jnp.max)(jnp.array([1.0, 1.0, 0.0])), [0.5, 0.5, 0])
    got = load_backend("jax").adaptive_max_pool1d_backward(np.ones((1, 1, 1)),
                                                           np.array([[[1.0, 1.0, 0.0]]]), 1)
    np.testing.assert_array_equal(got, [[[1, 0, 0]]])


@pytest.mark.jax
@demonstrates("jax-no-batch-norm")
def test_jax_no_batch_norm(jax):
    names = {n.lower() for module in (jax.lax, jax.nn) for n in dir(module)}
    assert not {n for n in names if "norm" in n}  # batch_matmul aside, nothing "batch"
    assert "standardize" in names
    rng = np.random.default_rng(5)
    x, g, b = rng.standard_normal((3, 2, 4)), rng.standard_normal(2), rng.standard_normal(2)
    jb = load_backend("jax")
    np.testing.assert_allclose(jb.batch_norm(x, g, b), nnref.batch_norm(x, g, b),
                               rtol=1e-12, atol=1e-12)
    for got, want in ((jb.layer_norm(x, (2, 4)), nnref.layer_norm(x, (2, 4))),
                      (jb.group_norm(x, 1, g, b), nnref.group_norm(x, 1, g, b)),
                      (jb.instance_norm(x, g, b), nnref.instance_norm(x, g, b))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.jax
@demonstrates("jax-standardize-one-pass-variance")
def test_jax_standardize_one_pass_variance(jax):
    x = np.float32(1000.0) + np.array([0, 0.01, 0.02, 0.03], np.float32)
    with jax.enable_x64(False):
        fast = np.asarray(jax.nn.standardize(jax.numpy.asarray(x)))
    two_pass = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-5))
    assert np.abs(fast).max() > 3 * np.abs(two_pass).max()  # 4.75 vs 1.29
    jb = load_backend("jax")
    for got in (jb.batch_norm(x.reshape(4, 1), None, None), jb.layer_norm(x, 4),
                jb.group_norm(x.reshape(1, 1, 4), 1), jb.instance_norm(x.reshape(1, 1, 4))):
        np.testing.assert_allclose(got.ravel(), two_pass, rtol=1e-3)


@pytest.mark.jax
@demonstrates("jax-maxpool-signed-zero")
def test_jax_maxpool_signed_zero(jax):
    lax = jax.lax
    for a, b in ((-0.0, 0.0), (0.0, -0.0)):
        assert not np.signbit(np.asarray(lax.max(np.float32(a), np.float32(b))))
    y = lax.reduce_window(np.array([[-0.0, 0.0]]), np.array(-np.inf), lax.max, (1, 2), (1, 1),
                          "VALID")
    assert not np.signbit(np.asarray(y)).any()
    got = load_backend("jax").max_pool1d(np.array([[[-0.0, 0.0, 0.0, -0.0]]]), 2)
    np.testing.assert_array_equal(np.signbit(got), [[[True, False]]])


@pytest.mark.jax
@demonstrates("jax-relu-negative-zero")
def test_jax_relu_negative_zero(jax):
    for x64 in (False, True):
        with jax.enable_x64(x64):
            y = np.asarray(jax.nn.relu(jax.numpy.asarray(np.full(9, -0.0))))
        assert not np.signbit(y).any()
    got = load_backend("jax").relu(np.array([-0.0, -1.0, 2.0]))
    assert np.signbit(got[0]) and got[1] == 0 and not np.signbit(got[1])


# Entry id -> its tests, derived from the @demonstrates marks of both modules.
_MODULES = (sys.modules[__name__], onnx_entries)

_META_TESTS = {
    "test_every_entry_has_a_test", "test_no_test_for_unknown_entry",
    "test_unsupported_ids_are_registered", "test_registry_entries_are_well_formed",
    "test_registry_rejects_malformed", "test_registry_accepts_minimal",
    "test_every_framework_test_carries_its_marker",
    "test_the_reproducers_use_the_adapters_opset", "test_a_test_demonstrates_one_entry",
}
_UNSUPPORTED_ID = re.compile(r"Unsupported\(\s*\"([^\"]+)\"")


def _raised_ids() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(BACKENDS_DIR.glob("*.py")):
        for ident in _UNSUPPORTED_ID.findall(path.read_text()):
            found.setdefault(ident, []).append(path.name)
    return found


@pytest.mark.parametrize("divergence_id", registry.ids())
def test_every_entry_has_a_test(divergence_id):
    tests = divergence_tests(_MODULES).get(divergence_id, ())
    assert tests, f"no test demonstrates {divergence_id!r} (@demonstrates({divergence_id!r}))"


def test_no_test_for_unknown_entry():
    """Every test of the two modules but the meta tests names exactly one existing entry."""
    tests = defined_tests(_MODULES)
    assert _META_TESTS <= set(tests), sorted(_META_TESTS - set(tests))
    unmarked = sorted(name for name, test in tests.items()
                      if name not in _META_TESTS and not hasattr(test, "divergence_id"))
    assert not unmarked, f"divergence tests that name no registry entry: {unmarked}"
    marked_meta = sorted(name for name in _META_TESTS if hasattr(tests[name], "divergence_id"))
    assert not marked_meta, f"meta tests marked as divergence tests: {marked_meta}"
    known = set(registry.ids())
    unknown = {name: test.divergence_id for name, test in tests.items()
               if getattr(test, "divergence_id", None) not in known | {None}}
    assert not unknown, f"tests naming ids not in the registry: {unknown}"


def test_a_test_demonstrates_one_entry():
    def test_example():
        pass

    assert demonstrates("pad-mode-names")(test_example).divergence_id == "pad-mode-names"
    with pytest.raises(TypeError, match="already demonstrates 'pad-mode-names'"):
        demonstrates("pad-size-limits")(test_example)
    with pytest.raises(TypeError, match="non-empty str"):
        demonstrates("")


def test_unsupported_ids_are_registered():
    raised = _raised_ids()
    assert raised, "found no Unsupported(...) in the adapters: the pattern is stale"
    known = set(registry.ids())
    unknown = {i: files for i, files in raised.items() if i not in known}
    assert not unknown, f"adapters raise unregistered divergence ids: {unknown}"
    for ident in raised:
        assert "Unsupported" in registry.get(ident).handling, ident


def test_registry_entries_are_well_formed():
    entries = registry.entries()
    assert len(entries) == len({d.id for d in entries})
    for d in entries:
        assert all(e.startswith("https://") for e in d.evidence), d.id
        assert set(d.behaviour) == set(d.frameworks), d.id
    with pytest.raises(KeyError, match="no-such-id"):
        registry.get("no-such-id")


_GOOD = """
[[divergence]]
id = "{ident}"
op = "pad"
frameworks = ["torch"]
condition = "c"
evidence = ["https://example.org"]
handling = "documented agreement"
[divergence.behaviour]
torch = "b"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_GOOD.format(ident="a") + _GOOD.format(ident="a"), "'a': duplicate id"),
        (_GOOD.format(ident="b").replace('condition = "c"\n', ""), r"'b': missing .*condition"),
        (_GOOD.format(ident="c").replace('op = "pad"', 'op = "pool"'), "'c': unknown op"),
        (_GOOD.format(ident="d").replace('torch = "b"', 'jax = "b"'), "'d': behaviour keys"),
        (_GOOD.format(ident="e").replace("evidence = [", "evidence = [1, "), "'e': 'evidence'"),
        (_GOOD.format(ident="f").replace("handling", 'colour = "red"\nhandling'),
         "'f': unknown key"),
    ],
)
def test_registry_rejects_malformed(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        registry.load(path)


def test_registry_accepts_minimal(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(_GOOD.format(ident="ok"))
    (entry,) = registry.load(path)
    assert entry.id == "ok" and entry.ops == ("pad",) and entry.behaviour["torch"] == "b"


_FRAMEWORK_MARKS = {"torch": "torch", "tf": "tf", "jax": "jax", "onnx": "onnx", "ort": "onnx"}


def test_every_framework_test_carries_its_marker():
    """A test taking a framework's fixture (torch, tf, jax, onnx / ort) without the marker
    would run, and skip, in the core environment only, and never in the framework's own
    environment (tox selects by marker)."""
    missing = []
    for name, fn in sorted(defined_tests(_MODULES).items()):
        params = set(inspect.signature(fn).parameters)
        marks = {m.name for m in getattr(fn, "pytestmark", [])}
        missing += [f"{name} ({fw})" for fw, mark in _FRAMEWORK_MARKS.items()
                    if fw in params and mark not in marks]
    assert not missing, missing


@pytest.mark.torch
@demonstrates("torch-cpu-pool-backward-storage-accumulation")
def test_torch_pool_backward_accumulates_in_the_storage_format(torch):
    """Three windows' gradients meet in one cell: 2048 + 1 - 2048 is 1 with float32
    accumulation (then exactly representable in float16 and bfloat16), 0 in the storage format."""
    F = torch.nn.functional

    def grad(pool, x, dy, dtype):
        t = torch.tensor(x, dtype=dtype, requires_grad=True)
        (g,) = torch.autograd.grad(pool(t), t, torch.tensor(dy, dtype=dtype))
        return g.float().flatten().tolist()

    dy = [[[2048.0, 1.0, -2048.0]]]
    cases = [
        (lambda t: F.max_pool1d(t, 3, 1, padding=1), [[[0.0, 1.0, 0.0]]], dy),
        (lambda t: F.avg_pool1d(t, 3, 1, padding=1), [[[0.0, 1.0, 0.0]]],
         [[[6144.0, 3.0, -6144.0]]]),
        (lambda t: F.adaptive_max_pool1d(t, 5), [[[0.0, 1.0]]],
         [[[0.0, 0.0, 2048.0, 1.0, -2048.0]]]),
    ]
    for pool, x, g in cases:
        assert grad(pool, x, g, torch.float32)[1] == 1.0
        for low in (torch.float16, torch.bfloat16):
            assert grad(pool, x, g, low)[1] == 0.0, (low, pool)
    for low in (torch.float16, torch.bfloat16):  # one cell averaged into three bins
        assert grad(lambda t: F.adaptive_avg_pool1d(t, 3), [[[0.0]]], dy, low) == [0.0], low
    assert grad(lambda t: F.adaptive_avg_pool1d(t, 3), [[[0.0]]], dy, torch.float32) == [1.0]
    for low in (torch.float16, torch.bfloat16):  # conv's backward: float32 accumulation
        w = torch.ones(1, 1, 3, dtype=low)
        assert grad(lambda t, w=w: F.conv1d(t, w, padding=1), [[[0.0, 1.0, 0.0]]], dy,
                    low)[1] == 1.0


def _low_precision_grad(torch, fn, x, dy, dtype, wrt=0):
    """The gradient of fn's output with respect to its ``wrt``-th input, in ``dtype``, as
    Python floats (every value here is exact in float16 and bfloat16)."""
    ts = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in x]
    (g,) = torch.autograd.grad(fn(*ts), ts[wrt], torch.tensor(dy, dtype=dtype))
    return g.float().flatten().tolist()


@pytest.mark.torch
@demonstrates("torch-cpu-pad-backward-storage-accumulation")
def test_torch_pad_backward_accumulates_in_the_storage_format(torch):
    """Replicate padding copies x0 to three output cells: its gradient 2048 + 1 - 2048 is 1
    with float32 accumulation, 0 in the storage format."""
    pad = lambda t: torch.nn.functional.pad(t, (2, 0), mode="replicate")  # noqa: E731
    x, dy = [[[[0.0, 0.0]]]], [[[2048.0, 1.0, -2048.0, 0.0]]]
    assert _low_precision_grad(torch, pad, x, dy, torch.float32) == [1.0, 0.0]
    for low in (torch.float16, torch.bfloat16):
        assert _low_precision_grad(torch, pad, x, dy, low) == [0.0, 0.0], low


@pytest.mark.torch
@demonstrates("torch-cpu-float16-conv-storage-rounding")
def test_torch_float16_convolution_rounds_partial_results(torch):
    """float16 on torch's own kernels: the weight gradient's per-sample terms 2048, 1, -2048 sum
    to 0 (exact 1), and conv_transpose rounds 2048 + 1 to 2048 before adding its bias -2048;
    bfloat16 and conv1d's forward get both right. Where torch sends float16 to oneDNN (its own
    check, which follows the CPU's flags) both are right, except a conv_transpose whose output
    padding is at least its stride (torch's kernel again); the table declares accordingly."""
    from ..backends.torch_backend import LOW_PRECISION_DIVERGENCES, float16_conv_takes_im2col

    F = torch.nn.functional
    im2col = float16_conv_takes_im2col()
    flags = _cpu_flags()
    if flags is not None:  # torch's check (oneDNN's ISA test) agrees with the flags
        assert im2col == (not flags & {"avx512_fp16", "amx_fp16", "avx_ne_convert"}), flags
    rounded = 0.0 if im2col else 1.0
    x, w, dy = [[[1.0]], [[1.0]], [[1.0]]], [[[1.0]]], [[[2048.0]], [[1.0]], [[-2048.0]]]
    for conv in (F.conv1d, F.conv_transpose1d):
        got = _low_precision_grad(torch, conv, [x, w], dy, torch.float16, wrt=1)
        assert got == [rounded], conv
        assert _low_precision_grad(torch, conv, [x, w], dy, torch.bfloat16, wrt=1) == [1.0], conv
    for low, want in ((torch.float16, rounded), (torch.bfloat16, 1.0)):
        xs = torch.tensor([[[1.0], [1.0]]], dtype=low)
        ws = torch.tensor([[[2048.0]], [[1.0]]], dtype=low)
        b = torch.tensor([-2048.0], dtype=low)
        assert F.conv_transpose1d(xs, ws, b).item() == want, low
        assert F.conv1d(xs, ws.transpose(0, 1), b).item() == 1.0, low
        # output_padding >= stride: torch's own kernel in both formats, on every CPU
        wide = torch.tensor([[[2048.0, 0.0]], [[1.0, 0.0]]], dtype=low)
        y = F.conv_transpose1d(xs, wide, b, stride=1, output_padding=1, dilation=2)
        assert y[0, 0, 0].item() == 0.0, low
        y = F.conv_transpose1d(xs, wide, b, stride=2, output_padding=1, dilation=2)
        assert y[0, 0, 0].item() == (rounded if low == torch.float16 else 1.0), low
    assert ("conv1d_backward float16" in LOW_PRECISION_DIVERGENCES) == im2col
    assert LOW_PRECISION_DIVERGENCES["conv_transpose1d float16"] == \
        "torch-cpu-float16-conv-storage-rounding"
    assert LOW_PRECISION_DIVERGENCES["conv_transpose1d bfloat16"] == \
        "torch-cpu-bfloat16-grouped-conv-transpose"  # storage-accumulating, so it covers this


@pytest.mark.torch
@demonstrates("torch-cpu-onednn-bfloat16-conv-width1-garbage")
def test_torch_onednn_bfloat16_conv_width1_garbage(torch):
    """One output column at a last-axis stride > 1 in bfloat16: rows of it never written where
    torch takes oneDNN with two threads (seen on a CPU with AMX; one thread is right); the
    adapter's composition is right."""
    from ..backends.torch_backend import _takes_onednn

    F = torch.nn.functional
    x, w = torch.ones((1, 2, 5, 5)), torch.ones((4, 1, 1, 3))
    args = {"stride": (1, 2), "dilation": (1, 2), "groups": 2}
    assert F.conv2d(x, w, **args).flatten().tolist() == [3.0] * 20
    ml_bf16 = pytest.importorskip("ml_dtypes").bfloat16
    threads = torch.get_num_threads()
    try:  # both with two threads, where the kernel goes wrong
        torch.set_num_threads(2)
        raw = F.conv2d(x.bfloat16(), w.bfloat16(), **args).float().flatten().tolist()
        composed = load_backend("torch").conv2d(np.ones((1, 2, 5, 5), ml_bf16),
                                                np.ones((4, 1, 1, 3), ml_bf16), **args)
    finally:
        torch.set_num_threads(threads)
    assert composed.astype(np.float32).ravel().tolist() == [3.0] * 20
    if raw == [3.0] * 20:
        assert not _takes_onednn(torch.float16), \
            "torch's bfloat16 conv is now right on this CPU: retire the composition"
        pytest.skip("torch-cpu-onednn-bfloat16-conv-width1-garbage does not reproduce on this "
                    "CPU (seen where torch also takes float16 to oneDNN, with AMX); the "
                    "adapter's composition is still checked")
    # the unwritten rows hold whatever the memory held (0, 28, NaN, ...)
    assert _takes_onednn(torch.bfloat16), f"wrong without oneDNN: {raw}: widen the condition"


@pytest.mark.torch
@demonstrates("torch-cpu-onednn-conv-transpose3d-overpadded-weight-gradient")
def test_torch_onednn_conv_transpose3d_overpadded_weight_gradient(torch):
    """Depth padded by the kernel's whole reach (3 of a 4-tap kernel), N = 2, float32: torch's
    own weight gradient, in a subprocess (other such shapes kill the process), is off by 2 where
    it was seen; the adapter's composition (uncropped, then cropped) is right."""
    import subprocess

    code = (
        "import sys, torch\n"
        "torch.set_num_threads(2)\n"
        "x = torch.ones((2, 1, 3, 1, 1), requires_grad=True)\n"
        "w = torch.ones((1, 1, 4, 1, 1), dtype=getattr(torch, sys.argv[1]), "
        "requires_grad=True)\n"
        "y = torch.nn.functional.conv_transpose3d(x.to(w.dtype), w, stride=(2, 1, 1), "
        "padding=(3, 0, 0))\n"
        "y.backward(torch.ones_like(y))\n"
        "print(w.grad.flatten().tolist())\n"
    )

    def run(dtype: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, dtype], capture_output=True,
                              text=True, timeout=120)

    right = run("float64")
    assert right.returncode == 0, right.stderr[-2000:]
    a = {"x": np.ones((2, 1, 3, 1, 1), np.float32), "w": np.ones((1, 1, 4, 1, 1), np.float32),
         "dy": np.ones((2, 1, 2, 1, 1), np.float32)}
    _, dw, _ = load_backend("torch").conv_transpose3d_backward(
        a["dy"], a["x"], a["w"], stride=(2, 1, 1), padding=(3, 0, 0))
    want = [float(v) for v in right.stdout.strip()[1:-1].split(",")]
    np.testing.assert_array_equal(dw.ravel(), want)
    _, dw64, _ = nnref.conv_transpose3d_backward(
        *(a[k].astype(np.float64) for k in ("dy", "x", "w")), stride=(2, 1, 1),
        padding=(3, 0, 0))
    np.testing.assert_array_equal(dw64.ravel(), want)
    got = run("float32")
    if got.returncode == 0 and got.stdout == right.stdout:
        flags = _cpu_flags()
        assert flags is None or not {"avx512_bf16", "amx_bf16"} <= flags, \
            "torch's float32 conv_transpose3d weight gradient is now right here: retire it"
        pytest.skip("torch-cpu-onednn-conv-transpose3d-overpadded-weight-gradient does not "
                    "reproduce on this CPU (seen with AVX-512 bfloat16 and AMX); the adapter's "
                    "composition is still checked")


# The smallest inputs whose conv_transpose gradient crashes torch 2.13.0 where it sends float16
# to oneDNN: (format, rank, x shape, w shape, stride, padding, dilation), all ones, dy ones.
CONV_TRANSPOSE_CRASHES = (
    ("float16", 1, (2, 1, 4), (1, 1, 1), 2, 3, 2),
    ("bfloat16", 3, (1, 1, 1, 1, 1), (1, 1, 2, 2, 2), 1, (0, 1, 0), (1, 2, 2)),
)


@pytest.mark.torch
@demonstrates("torch-cpu-onednn-low-precision-conv-transpose-backward-crash")
@pytest.mark.parametrize("crash", CONV_TRANSPOSE_CRASHES, ids=lambda c: f"{c[0]}-{c[1]}d")
def test_torch_onednn_low_precision_conv_transpose_gradient_crashes(torch, crash):
    """Each smallest input in a subprocess: it dies by a signal where torch sends float16 to
    oneDNN (the table then refuses conv_transpose's low-precision backward: checked here), and
    gives the exact gradient elsewhere; in float32 it is right everywhere."""
    import subprocess

    from ..backends.torch_backend import LOW_PRECISION_DIVERGENCES, _takes_onednn

    fmt, rank, x_shape, w_shape, stride, padding, dilation = crash
    code = (
        "import sys, torch\n"
        "torch.set_num_threads(2)  # the bfloat16 case does not crash with one thread\n"
        "dtype = getattr(torch, sys.argv[1])\n"
        f"x = torch.ones({x_shape}, dtype=dtype, requires_grad=True)\n"
        f"w = torch.ones({w_shape}, dtype=dtype)\n"
        f"y = torch.nn.functional.conv_transpose{rank}d(x, w, None, stride={stride}, "
        f"padding={padding}, dilation={dilation})\n"
        "dx, = torch.autograd.grad(y, x, torch.ones_like(y))\n"
        "print(dx.float().flatten().tolist())\n")

    def run(dtype: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, dtype], capture_output=True,
                              text=True, timeout=300)

    right = run("float32")
    assert right.returncode == 0, right.stderr
    got = run(fmt)
    refused = LOW_PRECISION_DIVERGENCES.get(f"conv_transpose{rank}d_backward {fmt}")
    if _takes_onednn(torch.float16):
        assert got.returncode < 0, (
            f"conv_transpose{rank}d's {fmt} gradient no longer crashes here "
            f"(exit {got.returncode}, {got.stdout.strip()}): retire the refusal")
        assert refused == "torch-cpu-onednn-low-precision-conv-transpose-backward-crash"
    else:
        assert got.returncode == 0, (
            f"conv_transpose{rank}d's {fmt} gradient crashes on this CPU too (exit "
            f"{got.returncode}): widen the entry's condition")
        assert got.stdout == right.stdout
        assert refused != "torch-cpu-onednn-low-precision-conv-transpose-backward-crash"


def _sampled_ratio(torch, op, case, seed, regime, amount, storage_name, direction):
    """The torch backend's largest error on a sampled case as a multiple of the float32-
    accumulation bound (conformance.low_precision), the inputs shaped and stored as the
    low-precision tests do."""
    import nnref

    from .. import low_precision as lp
    from ..backends import load_backend

    storage = next(d for d in lp.storage_dtypes() if d.name == storage_name)
    low, a64 = lp.rounded_inputs(lp.shaped(case.arrays(np.float32, seed), regime, amount),
                                 storage)
    want = case.call(nnref, direction, a64)
    got = case.call(load_backend("torch"), direction, dict(low))
    limits = lp.allowed(case, a64, direction, lp.Arithmetic(storage), want)
    return max(float(np.max(np.abs(np.asarray(got[k], np.float64) - want[k]) / lim))
               for k, lim in limits.items())


@pytest.mark.torch
@demonstrates("torch-cpu-bfloat16-grouped-conv-transpose")
def test_torch_bfloat16_grouped_conv_transpose_leaves_float32_accumulation(torch):
    """The smallest sampled case (the registry's): 2.3x the float32-accumulation bound."""
    from ..ops.conv_transpose import ConvTransposeCase

    case = ConvTransposeCase((3, 2, 2), (2, 2, 1), True, 1, (0,), 1, 2, (2,))
    assert _sampled_ratio(torch, "conv_transpose1d", case, 3642148060, "as drawn", 1.0,
                          "bfloat16", "forward") > 1.5


@pytest.mark.torch
@demonstrates("torch-cpu-no-avg-pool3d-low-precision")
def test_torch_has_no_low_precision_avg_pool3d(torch):
    for low in (torch.float16, torch.bfloat16):
        with pytest.raises(NotImplementedError, match="avg_pool3d"):
            torch.nn.functional.avg_pool3d(torch.zeros(1, 1, 2, 2, 2, dtype=low), 2)


@pytest.mark.torch
@demonstrates("torch-cpu-lp-pool-low-precision")
def test_torch_lp_pool_rounds_each_step_to_the_storage_format(torch):
    """float16: 256 ** 2 overflows before the average and the root bring it back (exact
    sqrt(2) * 256 = 362.04); bfloat16's range holds it."""
    x = [[[256.0, 256.0]]]
    assert math.isinf(torch.nn.functional.lp_pool1d(
        torch.tensor(x, dtype=torch.float16), 2, 2).item())
    assert torch.nn.functional.lp_pool1d(torch.tensor(x, dtype=torch.bfloat16), 2,
                                         2).item() == 362.0


@pytest.mark.torch
@demonstrates("torch-cpu-adaptive-avg-pool3d-low-precision")
def test_torch_adaptive_avg_pool3d_leaves_float32_accumulation(torch):
    """The smallest sampled case (the registry's): 1.6x the float32-accumulation bound."""
    from ..ops.adaptive_avg_pool import AdaptiveCase

    case = AdaptiveCase((2, 2, 3, 1, 2), (1, 1, 2))
    assert _sampled_ratio(torch, "adaptive_avg_pool3d", case, 4140445636, "saturating", 16.0,
                          "bfloat16", "forward") > 1.3


@pytest.mark.torch
@demonstrates("torch-cpu-low-precision-norm-statistics")
def test_torch_low_precision_norms_round_their_statistics(torch):
    """batch_norm / instance_norm forward round the mean to the storage format; the backward
    of all four norms rounds its sums (exact dx here is +-4.8e-9)."""
    F = torch.nn.functional
    bf16, f16 = torch.bfloat16, torch.float16

    def bn(x, dtype):
        return F.batch_norm(torch.tensor(x, dtype=dtype), None, None, training=True,
                            eps=1e-5).float().flatten().tolist()

    assert bn([[-31.25], [-31.875]], torch.float32) == pytest.approx([1.0, -1.0], abs=1e-4)
    assert bn([[-31.25], [-31.875]], bf16) == [0.78515625, -1.1796875]
    assert bn([[1024.0], [1025.0]], f16) == [0.0, 2.0]
    assert F.instance_norm(torch.tensor([[[-31.25, -31.875]]], dtype=bf16)).float().flatten(
    ).tolist() == [0.80078125, -1.203125]
    assert F.group_norm(torch.tensor([[[-31.25, -31.875]]], dtype=bf16), 1).float().flatten(
    ).tolist() == [1.0, -1.0]  # float32 statistics
    x, dy = [[[524.0, 544.0]]], [[[-0.84375, -1.796875]]]
    for norm in (lambda t: F.layer_norm(t, (2,)), lambda t: F.group_norm(t, 1),
                 lambda t: F.instance_norm(t)):
        got = _low_precision_grad(torch, norm, [x], dy, bf16)
        assert got == [0.0220947265625, -0.0306396484375], got
    got = _low_precision_grad(torch, lambda t: F.batch_norm(t, None, None, training=True),
                      [[[524.0], [544.0]]], [[-0.84375], [-1.796875]], bf16)
    assert min(abs(g) for g in got) > 0.02, got


@pytest.mark.torch
@demonstrates("torch-sigmoid-backward-rounded-output")
def test_torch_sigmoid_backward_uses_the_rounded_output(torch):
    """sigmoid'(3) = 0.0451767; from y rounded to bfloat16 / float16: 0.04468 / 0.045105."""
    grads = {low: _low_precision_grad(torch, torch.sigmoid, [[3.0]], [1.0], low)[0]
             for low in (torch.bfloat16, torch.float16)}
    assert grads == {torch.bfloat16: 0.044677734375, torch.float16: 0.04510498046875}
    exact = 1 / (1 + math.exp(-3)) * (1 - 1 / (1 + math.exp(-3)))
    assert abs(grads[torch.bfloat16] - exact) > 2 * 2.0**-8 * exact


@pytest.mark.jax
@demonstrates("jax-low-precision-storage-arithmetic")
def test_jax_pools_sum_in_the_storage_format(jax):
    """The backend's avg_pool (lax.reduce_window) sums 2048 + 1 - 2048 in the storage format:
    0, where float32 accumulation gives 1 / 3; conv over channels gets 1."""
    from ..backends import load_backend
    from ..low_precision import storage_dtypes

    backend = load_backend("jax")
    for fmt in storage_dtypes():
        x = np.array([[[2048.0, 1.0, -2048.0]]]).astype(fmt)
        assert backend.avg_pool1d(x, 3).astype(np.float32).item() == 0.0, fmt
        xc = np.array([[[2048.0], [1.0], [-2048.0]]]).astype(fmt)
        assert backend.conv1d(xc, np.ones((1, 3, 1)).astype(fmt)).astype(
            np.float32).item() == 1.0, fmt


@pytest.mark.jax
@demonstrates("jax-cpu-conv-overpadded-gradient-garbage")
def test_jax_conv_gradient_with_padding_beyond_the_kernel(jax):
    """float32 dx of a conv padded beyond its kernel's reach: garbage where seen (a CPU with
    AMX), right in float64 and through jnp.pad; the adapter's composition is right."""
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
    w32 = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    pads, dy = ((3, 0), (2, 0)), np.ones((3, 2, 3, 2))

    def dx(fn, dtype):
        y, vjp = jax.vjp(fn, x.astype(dtype))
        return np.asarray(vjp(np.ones(y.shape, dtype))[0], np.float64)

    plain = dx(lambda a: lax.conv_general_dilated(a, w32, (1, 1), pads), np.float32)
    padded = dx(lambda a: lax.conv_general_dilated(jnp.pad(a, [(0, 0), (0, 0), *pads]), w32,
                                                   (1, 1), "VALID"), np.float32)
    # float64 on the float32 inputs; each dx is a sum of Co * kh * kw = 8 products w * dy (dy =
    # 1, exact), so a float32 kernel in any order is within gamma(8 + 1) of the sum of |terms|
    # (the jnp.pad composition uses 0.097 of it here; the garbage exceeds it by 1e30)
    right = nnref.conv2d_backward(dy, x.astype(np.float64), w32.astype(np.float64),
                                  padding=pads)[0]
    bound = gamma(8 + 1, np.float32) * nnref.conv2d_backward(
        dy, np.abs(x).astype(np.float64), np.abs(w32).astype(np.float64), padding=pads)[0]
    assert np.all(np.abs(padded - right) <= bound)
    composed = load_backend("jax").conv2d_backward(dy.astype(np.float32), x, w32,
                                                   padding=pads)[0]
    assert np.all(np.abs(composed - right) <= bound)
    if np.all(np.abs(plain - right) <= bound):
        flags = _cpu_flags() or set()
        assert "amx_tile" not in flags, "JAX's plain call is now right here: retire the entry"
        pytest.skip("jax-cpu-conv-overpadded-gradient-garbage does not reproduce on this CPU "
                    "(seen on one with AMX); the adapter's composition is still checked")


@pytest.mark.jax
@demonstrates("jax-float16-lp-pool-overflow")
def test_jax_float16_lp_pool_overflows_in_the_power(jax):
    """lp_pool1d of [256, 256], p 2, in float16: 256 ** 2 = 65536 passes 65504: inf (exact
    362.04), gradient 0 (exact 0.707). The backend refuses; bfloat16 is kept."""
    import ml_dtypes

    from ..backends import jax_backend
    from ..backends.table import contract_functions

    plain = contract_functions(
        {k: type(v)(v.forward, v.backward, v.unsupported, v.backward_unsupported, v.doc)
         for k, v in jax_backend.TABLE.items()}, "jax", run=jax_backend._run,
        autodiff=jax_backend._autodiff, module="plain", storage=("float16",))
    x, dy = np.array([[[256.0, 256.0]]], np.float16), np.array([[[1.0]]], np.float16)
    assert np.isinf(plain["lp_pool1d"](x, 2, 2)).all()
    assert plain["lp_pool1d_backward"](dy, x, 2, 2).ravel().tolist() == [0.0, 0.0]
    assert abs(nnref.lp_pool1d(x.astype(np.float64), 2, 2).item() - 362.0387) < 1e-3
    backend = load_backend("jax")
    with pytest.raises(Unsupported, match="jax-float16-lp-pool-overflow"):
        backend.lp_pool1d(x, 2, 2)
    assert backend.lp_pool1d(x.astype(ml_dtypes.bfloat16), 2, 2).astype(
        np.float64).item() == 362.0


@pytest.mark.jax
@demonstrates("jax-float16-norm-backward-nan")
def test_jax_float16_norm_gradient_of_a_constant_group_is_nan(jax):
    """Composed from jnp.var, the gradient of a norm over a constant group overflows float16:
    NaN where the exact gradient is 0. The backend refuses these calls, so the check runs the
    same composition (its TABLE rows) with the refusal lifted."""
    import types

    from ..backends import jax_backend
    from ..backends.table import contract_functions

    plain = types.SimpleNamespace(**contract_functions(
        {k: type(v)(v.forward, v.backward, v.unsupported, v.backward_unsupported, v.doc)
         for k, v in jax_backend.TABLE.items()}, "jax", run=jax_backend._run,
        autodiff=jax_backend._autodiff, module="plain", storage=("float16",)))
    f16 = np.float16
    dy1, pair, dy2 = (np.array(a, f16) for a in ([[1.0]], [[[0.5, 0.5]]], [[[1.0, -1.0]]]))
    assert np.isnan(plain.layer_norm_backward(dy1, np.array([[0.5]], f16), (1,))[0]).all()
    assert np.isnan(plain.group_norm_backward(dy2, pair, 1)[0]).all()
    assert np.isnan(plain.instance_norm_backward(dy2, pair)[0]).all()
    assert np.isnan(plain.batch_norm_backward(dy2.reshape(2, 1), pair.reshape(2, 1),
                                              np.ones(1, f16))[0]).all()
    with pytest.raises(Unsupported, match="jax-float16-norm-backward-nan"):
        jax_backend.layer_norm_backward(dy1, np.array([[0.5]], f16), (1,))
