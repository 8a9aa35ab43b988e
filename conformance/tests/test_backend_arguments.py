"""The argument rules the framework adapters share (conformance/backends/arguments.py).

Framework-free: per-axis arguments, padding forms, conv and pool geometry, batch-norm helpers.
"""

from __future__ import annotations

import numpy as np
import pytest

from ..backends import arguments


def test_per_axis_and_pad_pairs():
    assert arguments.per_axis(2, "k", 3) == (2, 2, 2)
    assert arguments.per_axis((1, 2, 3), "k", 3) == (1, 2, 3)
    assert arguments.per_axis([np.int64(4)], "k", 1) == (4,)
    for bad in ((1, 2), 0, (1, True, 1), 1.0):
        with pytest.raises(ValueError, match="k"):
            arguments.per_axis(bad, "k", 3)
    assert arguments.pad_pairs(1, 1) == ((1, 1),)
    assert arguments.pad_pairs((1,), 1) == arguments.pad_pairs([1], 1) == ((1, 1),)
    assert arguments.pad_pairs(((0, 2),), 1) == ((0, 2),)
    assert arguments.pad_pairs((1, (0, 2)), 2) == ((1, 1), (0, 2))
    assert arguments.pad_pairs((1, (0, 2), [3, 4]), 3) == ((1, 1), (0, 2), (3, 4))
    for bad, rank in (((0, 2), 1), ((1, 2), 3), (((1, 2, 3),), 1), ((-1,), 1), ("same", 1)):
        with pytest.raises(ValueError, match="padding"):
            arguments.pad_pairs(bad, rank)


def test_conv_args_and_same_pads():
    k, s, pads, d = arguments.conv_args((1, 4, 5, 6, 7), (6, 2, 2, 4, 1), 3, (1, 2, 3), "same",
                                        1, 2)
    assert (k, s, d) == ((2, 4, 1), (1, 2, 3), (1, 1, 1))
    assert pads == ((0, 1), (1, 1), (0, 0))  # the odd extra at the end of each axis
    assert arguments.conv_args((1, 1, 5), (1, 1, 3), 1, 1, "valid", 2, 1)[2] == ((0, 0),)
    with pytest.raises(ValueError, match="x must be 3-D"):
        arguments.conv_args((1, 1, 5, 5), (1, 1, 3, 3), 1, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="w must be 5-D"):
        arguments.conv_args((1, 1, 5, 5, 5), (1, 1, 3, 3), 3, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="groups"):
        arguments.conv_args((1, 4, 5), (6, 2, 3), 1, 1, 0, 1, 3)


def test_pool_geometry():
    geo = arguments.pool_geometry((1, 1, 5), 1, 2, 2, 1, 1, True)
    assert geo.out == (3,) and geo.symmetric  # the ceil window starting in the padding is dropped
    geo = arguments.pool_geometry((1, 1, 1, 3, 4), 3, (1, 2, 2), None, (0, (1, 0), 1), (1, 2, 1),
                                False)
    assert geo.stride == (1, 2, 2) and not geo.symmetric
    assert geo.floor_pads == tuple((b, a + e) for (b, a), e in zip(geo.pads, geo.extra,
                                                                   strict=True))
    assert geo.hit.shape == geo.out
    ind, inside = geo.flat_index((np.array([0, 0]), np.array([1, 0]), np.array([1, 5])))
    assert ind.tolist() == [0, -1] and inside.tolist() == [True, False]  # (0, 0, 0) -> 0
    empty = arguments.pool_geometry((1, 1, 1), 1, 2, 1, 1, 2, False)
    assert empty.out == (1,) and empty.hit.tolist() == [False]
    with pytest.raises(ValueError, match="kernel_size / 2"):
        arguments.pool_geometry((1, 1, 9), 1, 2, 1, 2, 3, False)


def test_rank_and_batch_norm_helpers():
    assert [arguments.spatial_rank((1, 1) + (2,) * r) for r in (1, 2, 3)] == [1, 2, 3]
    for shape in ((1, 1), (1, 1, 1, 1, 1, 1)):
        with pytest.raises(ValueError, match="3-D"):
            arguments.spatial_rank(shape)
    assert arguments.bn_axes(2) == (0,) and arguments.bn_axes(5) == (0, 2, 3, 4)
    assert arguments.channel_shape(3) == (1, -1, 1)
    assert arguments.bn_check(np.ones((2, 3, 4, 5, 6)), None, None, True) == 240
    for shape in ((1, 3), (1, 3, 1, 1, 1)):
        with pytest.raises(ValueError, match="more than one value"):
            arguments.bn_check(np.ones(shape), None, None, True)
    with pytest.raises(ValueError, match="x must be"):
        arguments.bn_check(np.ones((2,)), None, None, True)


@pytest.mark.torch
def test_the_torch_backend_computes_on_the_device_it_is_given(monkeypatch):
    """NNREF_TORCH_DEVICE: every tensor goes to that device and every result comes back through
    one path, exercised here on the CPU device named explicitly (a GPU, where present, takes the
    same path); a device torch lacks is a ValueError naming the variable; the summary line
    reports the device, CUDA's presence and cuDNN's TF32 default."""
    from ..backends import torch_backend as tb
    from ..frameworks import require

    torch = require("torch")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6)), rng.standard_normal((4, 3, 2))
    want = tb.conv1d(x, w)
    monkeypatch.setenv(tb.DEVICE_ENV, "cpu")
    assert tb.device() == torch.device("cpu")
    assert tb._tensor(x).device == torch.device("cpu")
    np.testing.assert_array_equal(tb.conv1d(x, w), want)
    y, idx = tb.max_pool1d(x, 2, return_indices=True)
    assert idx.dtype == np.int64 and y.dtype == x.dtype
    assert tb.device_report().startswith("torch device: cpu (cuda: ")
    if not torch.cuda.is_available():
        assert "cuda: absent" in tb.device_report()
        monkeypatch.setenv(tb.DEVICE_ENV, "cuda")
        with pytest.raises(ValueError, match="NNREF_TORCH_DEVICE='cuda': this torch has no CUDA"):
            tb.conv1d(x, w)
    monkeypatch.setenv(tb.DEVICE_ENV, "no-such-device")
    with pytest.raises(ValueError, match="NNREF_TORCH_DEVICE='no-such-device'"):
        tb.conv1d(x, w)
