"""Documented details the random checks leave open, pinned one by one (many found by mutation
testing, docs/mutation.md):

- the documented defaults of every keyword (CONTRACT.md signatures), compared with the explicit
  call; ``gamma=None`` / ``beta=None`` meaning ones / zeros; NumPy integers as integer
  arguments; conv padding on a single side;
- the batch-norm boundary m = N * H * W = 2 (the smallest valid training batch);
- max-pool window rules on inputs with ties, -inf and NaN, with and without ``return_indices``
  (a separate code path), against a brute-force reference: the first maximum wins, so an all -inf
  window is won by its first *input* cell (padding is outside the window); the last NaN wins; a
  window without input cells gives -inf and index -1 and passes no gradient; a non-finite dy
  reaches its winner only; float32 stays float32 when the windows need padding;
- the same rules at every spatial rank;
- nnref's window geometry (``nnref._windows.Windows``): each of its fast readings of the
  windows (strided tap slices, the im2col view, taps clipped to the input, the wide layout)
  against the plain rule "window i reads the padded cell i * s + p * d for tap p".
- layer, group and instance norm: defaults, gamma/beta None, a group of one value (y = beta,
  dx = 0, as torch), the instance-norm boundary m = prod(S) = 2 and (N, C) in eval mode.

Deterministic, no Hypothesis: tiny arrays, well under a second in total. The error messages are
checked in test_error_messages.py.
"""
from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest

from .. import tolerance as tol
from ..comparison import compare
from ..ops.group_norm import GroupNormCase

R = np.random.default_rng(20)
X = R.standard_normal((2, 4, 5, 6))          # N, C, H, W
W = R.standard_normal((6, 2, 3, 2))          # groups=2 with X
DY_POOL = R.standard_normal((2, 4, 2, 3))    # max_pool2d(X, 2)
DY_PAD = R.standard_normal((2, 4, 7, 8))     # pad(X, 1)
G = R.standard_normal(4)
B = R.standard_normal(4)
RM = R.standard_normal(4)
RV = R.random(4) + 0.5
F32 = np.float32



def _outputs(result: Any) -> tuple[np.ndarray, ...]:
    return result if isinstance(result, tuple) else (result,)



# --------------------------------------------------------------------------------- defaults


def test_pad_defaults_to_constant_zero(impl):
    np.testing.assert_array_equal(impl.pad(X, 1), impl.pad(X, 1, "constant", 0.0))
    y = impl.pad(X, 1)
    assert not y[:, :, 0].any() and not y[:, :, :, -1].any()
    np.testing.assert_array_equal(impl.pad_backward(DY_PAD, 1),
                                  impl.pad_backward(DY_PAD, 1, "constant"))


def test_conv2d_defaults_are_stride_1_padding_0_dilation_1_groups_1(impl):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4, 2, 3))
    dy = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_array_equal(impl.conv2d(X, w), impl.conv2d(X, w, None, 1, 0, 1, 1))
    for got, want in zip(impl.conv2d_backward(dy, X, w),
                         impl.conv2d_backward(dy, X, w, 1, 0, 1, 1), strict=True):
        np.testing.assert_array_equal(got, want)


def test_integer_arguments_accept_numpy_integers(impl):
    """NumPy integers (np.int64, np.int32) are ints to the contract, as in torch; they must give
    exactly the results of the Python ints, never be truncated or rejected."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 2, 3, 2))
    i64, i32 = np.int64, np.int32
    np.testing.assert_array_equal(
        impl.conv2d(X, w, None, (i64(2), i32(1)), ((i64(1), 0), (0, i32(1))), i64(1), i64(2)),
        impl.conv2d(X, w, None, (2, 1), ((1, 0), (0, 1)), 1, 2))
    np.testing.assert_array_equal(impl.max_pool2d(X, i64(3), i32(2), i64(1)),
                                  impl.max_pool2d(X, 3, 2, 1))
    np.testing.assert_array_equal(impl.pad(X, (i64(1), i32(2))), impl.pad(X, (1, 2)))


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_conv2d_padding_on_one_side_only(side, impl):
    """Padding on exactly one side (the other three 0) equals zero-padding x by hand and
    convolving with no padding, forward and backward."""
    pads = {"top": ((2, 0), (0, 0)), "bottom": ((0, 2), (0, 0)),
            "left": ((0, 0), (2, 0)), "right": ((0, 0), (0, 2))}[side]
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 4, 2, 3))
    xp = np.pad(X, ((0, 0), (0, 0), *pads))
    y = impl.conv2d(X, w, padding=pads)
    np.testing.assert_allclose(y, impl.conv2d(xp, w), rtol=1e-13, atol=1e-13)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = impl.conv2d_backward(dy, X, w, padding=pads)
    dxp, dwp, dbp = impl.conv2d_backward(dy, xp, w)
    (top, _), (left, _) = pads
    np.testing.assert_allclose(dx, dxp[:, :, top : top + X.shape[2], left : left + X.shape[3]],
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dw, dwp, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(db, dbp, rtol=1e-13, atol=1e-13)


def test_max_pool2d_defaults_are_stride_kernel_padding_0_dilation_1_floor(impl):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 7))  # odd sizes: ceil_mode would add a window
    y = impl.max_pool2d(x, 2)
    assert y.shape == (2, 3, 2, 3)
    np.testing.assert_array_equal(y, impl.max_pool2d(x, 2, 2, 0, 1, False, False))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(impl.max_pool2d_backward(dy, x, 2),
                                  impl.max_pool2d_backward(dy, x, 2, 2, 0, 1, False))


def test_batch_norm_defaults_are_training_momentum_0_1_eps_1e_5(impl):
    np.testing.assert_array_equal(impl.batch_norm(X, G, B),
                                  impl.batch_norm(X, G, B, None, None, True, 0.1, 1e-5))
    for got, want in zip(impl.batch_norm(X, G, B, RM, RV),
                         impl.batch_norm(X, G, B, RM, RV, True, 0.1, 1e-5), strict=True):
        np.testing.assert_array_equal(got, want)
    dy = np.random.default_rng(3).standard_normal(X.shape)
    for got, want in zip(impl.batch_norm_backward(dy, X, G),
                         impl.batch_norm_backward(dy, X, G, 1e-5, None, None, True), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gamma_none_is_ones_and_beta_none_is_zeros(training, impl):
    ones, zeros = np.ones(4), np.zeros(4)
    stats = {"running_mean": RM, "running_var": RV, "training": training}
    y_none = _outputs(impl.batch_norm(X, None, None, **stats))
    y_explicit = _outputs(impl.batch_norm(X, ones, zeros, **stats))
    assert len(y_none) == len(y_explicit) == (3 if training else 1)
    for got, want in zip(y_none, y_explicit, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    dy = np.random.default_rng(4).standard_normal(X.shape)
    for got, want in zip(impl.batch_norm_backward(dy, X, None, **stats),
                         impl.batch_norm_backward(dy, X, ones, **stats), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------- batch-norm boundary


@pytest.mark.parametrize("shape", [(1, 3, 2, 1), (1, 3, 1, 2), (2, 3, 1, 1)],
                         ids=["H=2", "W=2", "N=2"])
def test_batch_norm_training_accepts_exactly_two_values_per_channel(shape, impl):
    """m = N * H * W = 2 is valid (the limit is m > 1): y = +-1 / sqrt(1 + eps / var) and the
    unbiased variance is var * m / (m - 1) = 2 var."""
    x = np.random.default_rng(5).standard_normal(shape)
    c = shape[1]
    eps = 1e-3
    y, new_mean, new_var = impl.batch_norm(x, None, None, np.zeros(c), np.ones(c),
                                           momentum=1.0, eps=eps)
    flat = x.transpose(1, 0, 2, 3).reshape(c, 2)
    mean, var = flat.mean(axis=1), flat.var(axis=1)
    want = (flat - mean[:, None]) / np.sqrt(var[:, None] + eps)
    np.testing.assert_allclose(y.transpose(1, 0, 2, 3).reshape(c, 2), want, rtol=1e-12)
    np.testing.assert_allclose(new_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(new_var, 2 * var, rtol=1e-12)
    dx, _, _ = impl.batch_norm_backward(np.ones(shape), x, None, eps=eps)
    np.testing.assert_allclose(dx, 0.0, atol=1e-12)  # a constant dy moves no normalised value


# ------------------------------------------------------------- max-pool: -inf, NaN, empty windows


def _pool_reference(x, kernel, stride, padding, dilation, ceil_mode):
    """Brute force over explicit cell lists, CONTRACT.md's rules: the window is its input cells
    (padding is outside it); the first maximum in row-major window order wins, so a window whose
    cells are all -inf is won by its first cell; a NaN wins, the last NaN in window order; a
    window without input cells gives -inf and index -1."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    (t, b), (l, r) = padding
    n, c, h, w = x.shape

    def size(extent, k, s, d, before, after):
        span = extent + before + after - d * (k - 1) - 1
        out = -(-span // s) + 1 if ceil_mode else span // s + 1
        return out - 1 if ceil_mode and (out - 1) * s >= extent + before else out

    ho, wo = size(h, kh, sh, dh, t, b), size(w, kw, sw, dw, l, r)
    y = np.full((n, c, ho, wo), -np.inf)
    idx = np.full((n, c, ho, wo), -1, dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            cells = [(i * sh + p * dh - t, j * sw + q * dw - l)
                     for p in range(kh) for q in range(kw)]
            flat = [row * w + col for row, col in cells if 0 <= row < h and 0 <= col < w]
            if not flat:
                continue
            values = x.reshape(n, c, -1)[:, :, flat]
            nan = np.isnan(values)
            last_nan = len(flat) - 1 - np.argmax(nan[..., ::-1], axis=-1)
            pick = np.where(nan.any(axis=-1), last_nan, np.argmax(values, axis=-1))
            idx[:, :, i, j] = np.asarray(flat)[pick]
            y[:, :, i, j] = np.take_along_axis(values, pick[..., None], axis=-1)[..., 0]
    return y, idx


def _special_input(shape, seed):
    """Small integers (ties), an all -inf corner and block, two NaNs per plane."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(np.float64)
    x[..., :3, :2] = -np.inf
    x[..., -2:, -3:] = -np.inf
    plane = x.reshape(-1, shape[2] * shape[3])
    for row in plane[::2]:  # every other plane: two NaNs, the second later in row-major order
        row[rng.choice(row.size, 2, replace=False)] = np.nan
    return x


# (x shape, kernel, stride, ((t, b), (l, r)), dilation, ceil_mode): non-square kernels, strides
# and inputs, asymmetric padding (padding only before or only after), dilation, ceil_mode windows
# that reach past the padding, and (last) a row of windows that cover no input cell at all.
POOL_CONFIGS = [
    ((2, 2, 5, 7), (2, 3), (2, 3), ((0, 0), (0, 0)), (1, 1), False),
    ((1, 3, 6, 5), (3, 3), (2, 2), ((1, 0), (1, 1)), (1, 1), True),
    ((2, 2, 7, 6), (3, 2), (2, 1), ((1, 1), (0, 1)), (2, 3), True),
    ((1, 2, 5, 8), (2, 4), (3, 2), ((1, 0), (2, 0)), (2, 1), True),
    ((1, 2, 4, 6), (1, 3), (1, 2), ((0, 0), (1, 1)), (1, 2), False),
    ((1, 2, 1, 5), (2, 1), (1, 1), ((1, 1), (0, 0)), (2, 1), False),
]


@pytest.mark.parametrize("config", POOL_CONFIGS, ids=[f"config{i}" for i in range(6)])
def test_max_pool2d_follows_the_window_rules_with_minus_inf_and_nan(config, impl):
    """Values with and without return_indices, indices and the backward against the brute-force
    reference, on inputs full of ties, -inf and NaN."""
    shape, kernel, stride, padding, dilation, ceil_mode = config
    x = _special_input(shape, sum(shape))
    params = {"kernel_size": kernel, "stride": stride, "padding": padding,
              "dilation": dilation, "ceil_mode": ceil_mode}
    want_y, want_idx = _pool_reference(x, kernel, stride, padding, dilation, ceil_mode)
    y = impl.max_pool2d(x, **params)
    y_i, idx = impl.max_pool2d(x, **params, return_indices=True)
    np.testing.assert_array_equal(y, want_y)  # NaN == NaN here; max is exact
    np.testing.assert_array_equal(y_i, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    assert idx.dtype == np.int64
    dy = np.random.default_rng(1).standard_normal(want_y.shape)
    want_dx = np.zeros(x.size)
    n_c = shape[0] * shape[1]
    planes = np.arange(n_c).reshape(shape[0], shape[1], 1, 1) * shape[2] * shape[3]
    hit = want_idx >= 0
    np.add.at(want_dx, (planes + want_idx)[hit], dy[hit])
    dx = impl.max_pool2d_backward(dy, x, **params)
    np.testing.assert_allclose(dx, want_dx.reshape(shape), rtol=1e-13, atol=1e-13)


def test_max_pool2d_of_an_all_minus_inf_input_picks_each_window_first_input_cell(impl):
    """Every window's cells are -inf: the first input cell in row-major window order wins, never
    a padded cell (which is outside the window)."""
    x = np.full((1, 1, 4, 5), -np.inf)
    y, idx = impl.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    assert (y == -np.inf).all()
    # windows start at rows -1, 1, 3 and columns -1, 1, 3: the first input row/column of each
    np.testing.assert_array_equal(idx, [[[[0, 1, 3], [5, 6, 8], [15, 16, 18]]]])


def test_max_pool2d_two_nans_in_a_window_the_last_one_wins(impl):
    """Window 0 = [1 nan; nan 0]: NaNs at flat 1 and 4, the last in window order (4) wins;
    window 1 = [3 nan; 5 2]: its only NaN (flat 3). The gradient follows the index."""
    x = np.array([[[[1.0, np.nan, 3.0, np.nan], [np.nan, 0.0, 5.0, 2.0]]]])
    y, idx = impl.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx, [[[[4, 3]]]])
    assert np.isnan(y).all() and np.isnan(impl.max_pool2d(x, 2)).all()
    dx = impl.max_pool2d_backward(np.array([[[[10.0, 20.0]]]]), x, 2)
    np.testing.assert_array_equal(dx, [[[[0.0, 0, 0, 20], [10, 0, 0, 0]]]])


@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
def test_max_pool2d_backward_sends_a_non_finite_dy_to_its_winner_only(special, impl):
    """Overlapping 3x3/2 windows: a non-finite dy reaches only its window's winner (inf there,
    or NaN for NaN), never a cell of another window as inf * 0 = NaN."""
    x = np.random.default_rng(7).standard_normal((2, 3, 7, 6))
    params = {"kernel_size": 3, "stride": 2, "padding": 1}
    y, idx = impl.max_pool2d(x, **params, return_indices=True)
    dy = np.random.default_rng(8).standard_normal(y.shape)
    dy[1, 2, 1, 1] = special
    want = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(*y.shape):
        want[n, c].flat[idx[n, c, i, j]] += dy[n, c, i, j]
    got = impl.max_pool2d_backward(dy, x, **params)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))  # where inf/NaN land
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)  # order of the sums only


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_keeps_the_dtype_with_padding_and_ceil_mode(dtype, impl):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 5, 4)).astype(dtype)
    for return_indices in (False, True):
        out = impl.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=return_indices)
        y = out[0] if return_indices else out
        assert y.dtype == dtype, (return_indices, y.dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert impl.max_pool2d_backward(dy, x, 3, 2, 1, ceil_mode=True).dtype == dtype


# ------------------------------------------------ every spatial rank: one core, the same rules


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bits of a float array (so that -0.0 != 0.0 and NaN payloads count)."""
    return a.view(np.int64 if a.dtype == np.float64 else np.int32)


def _pool_reference_nd(x, kernel, stride, padding, dilation, ceil_mode):
    """Brute force over explicit cell lists at any rank (the 2-D reference above, generalised):
    returns (y, indices), y read from x at the index (-inf and -1 for a window without cells)."""
    spatial = x.shape[2:]

    def size(extent, k, s, d, before, after):
        span = extent + before + after - d * (k - 1) - 1
        out = -(-span // s) + 1 if ceil_mode else span // s + 1
        return out - 1 if ceil_mode and (out - 1) * s >= extent + before else out

    out = tuple(size(*a) for a in zip(spatial, kernel, stride, dilation,
                                     (p[0] for p in padding), (p[1] for p in padding), strict=True))
    y = np.full((*x.shape[:2], *out), -np.inf, dtype=x.dtype)
    idx = np.full(y.shape, -1, dtype=np.int64)
    flat_x = x.reshape(*x.shape[:2], -1)
    for i in np.ndindex(*out):
        flat = []
        for tap in np.ndindex(*kernel):
            cell = [i[a] * stride[a] + tap[a] * dilation[a] - padding[a][0]
                    for a in range(len(out))]
            if all(0 <= c < n for c, n in zip(cell, spatial, strict=True)):
                flat.append(int(np.ravel_multi_index(cell, spatial)))
        if not flat:
            continue
        values = flat_x[:, :, flat]
        nan = np.isnan(values)
        last_nan = len(flat) - 1 - np.argmax(nan[..., ::-1], axis=-1)
        pick = np.where(nan.any(axis=-1), last_nan, np.argmax(values, axis=-1))
        idx[(Ellipsis, *i)] = np.asarray(flat)[pick]
        y[(Ellipsis, *i)] = np.take_along_axis(values, pick[..., None], axis=-1)[..., 0]
    return y, idx


def _special_input_nd(shape, seed, dtype=np.float64):
    """Ties (values in {-1, 0, 1}), zeros of both signs, -inf cells and NaNs of distinct
    payloads (so that which NaN is returned shows in the bits)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, shape).astype(dtype)
    x[(x == 0) & (rng.random(shape) < 0.5)] = -0.0
    x[rng.random(shape) < 0.15] = -np.inf
    nan_cells = rng.random(shape) < 0.05
    ints = np.int64 if dtype == np.float64 else np.int32
    payloads = (np.asarray(np.nan, dtype).view(ints) + 1 + np.arange(nan_cells.sum())).astype(ints)
    x[nan_cells] = payloads.view(dtype)
    return x


# (x shape, kernel, stride, padding pairs, dilation, ceil_mode) at ranks 1, 2 and 3
ND_POOL_CONFIGS = [
    ((2, 3, 9), (3,), (2,), ((1, 1),), (1,), True),
    ((1, 2, 10), (2,), (1,), ((0, 1),), (3,), False),
    ((1, 2, 1), (2,), (1,), ((1, 1),), (2,), False),  # the one window has no input cell
    ((2, 2, 5, 7), (2, 3), (2, 3), ((0, 1), (1, 0)), (1, 2), True),
    ((2, 2, 4, 5, 6), (2, 2, 3), (2, 1, 2), ((1, 0), (0, 1), (1, 1)), (1, 2, 1), True),
    ((1, 3, 3, 4, 5), (3, 1, 2), (1, 2, 1), ((1, 1), (0, 0), (0, 1)), (2, 1, 2), False),
    ((1, 2, 2, 3, 2), (2, 2, 2), (1, 1, 1), ((1, 1), (1, 0), (0, 0)), (2, 1, 1), False),
]


@pytest.mark.parametrize("config", ND_POOL_CONFIGS, ids=[f"r{len(c[1])}-{i}" for i, c in
                                                         enumerate(ND_POOL_CONFIGS)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_nd_follows_the_window_rules_bit_for_bit(config, dtype, impl):
    """At every rank: values-only and indexed forward and the plain statement of the rule
    (nnref.max_pool.max_pool_plain) agree with the brute force, bit for bit (signed zeros; with
    indices also NaN payloads: the value is x at the index); the backward follows the index."""
    from nnref.max_pool import max_pool_plain, max_pool_plain_backward

    shape, kernel, stride, padding, dilation, ceil_mode = config
    rank = len(kernel)
    pool = getattr(impl, f"max_pool{rank}d")
    pool_backward = getattr(impl, f"max_pool{rank}d_backward")
    x = _special_input_nd(shape, sum(shape), dtype)
    x_before = x.copy()
    params = {"kernel_size": kernel, "stride": stride, "padding": padding,
              "dilation": dilation, "ceil_mode": ceil_mode}
    want_y, want_idx = _pool_reference_nd(x, kernel, stride, padding, dilation, ceil_mode)
    y = pool(x, **params)
    y_i, idx = pool(x, **params, return_indices=True)
    y_p, idx_p = max_pool_plain(x, **params)
    for got in (y_i, y_p):
        assert got.dtype == dtype and got.shape == want_y.shape
        np.testing.assert_array_equal(_bits(got), _bits(want_y))
    # without indices: the same bits, but any NaN may stand for the window's last one
    assert y.dtype == dtype
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want_y))
    np.testing.assert_array_equal(_bits(np.where(np.isnan(y), 0, y)),
                                  _bits(np.where(np.isnan(want_y), 0, want_y)))
    for got in (idx, idx_p):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want_idx)
    dy = np.random.default_rng(1).standard_normal(want_y.shape).astype(dtype)
    want_dx = np.zeros((*x.shape[:2], int(np.prod(x.shape[2:]))), dtype=np.float64)
    for n, c, *i in np.ndindex(*want_y.shape):
        if want_idx[(n, c, *i)] >= 0:
            want_dx[n, c, want_idx[(n, c, *i)]] += dy[(n, c, *i)]
    tol = 1e-13 if dtype == np.float64 else 1e-5
    for got in (pool_backward(dy, x, **params), max_pool_plain_backward(dy, x, **params)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got.reshape(want_dx.shape), want_dx, rtol=tol, atol=tol)
    np.testing.assert_array_equal(_bits(x), _bits(x_before))  # inputs are never modified


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_pool_returns_the_first_of_two_equal_zeros(rank, impl):
    """-0.0 before 0.0 gives -0.0 and 0.0 before -0.0 gives 0.0, with or without indices, on a
    long run of windows (np.maximum's SIMD path does not keep the first of two equal zeros)."""
    pool = getattr(impl, f"max_pool{rank}d")
    rng = np.random.default_rng(rank)
    shape = (2, 3, *(4,) * (rank - 1), 64)
    x = np.where(rng.random(shape) < 0.5, -0.0, 0.0)
    kernel = (1,) * (rank - 1) + (2,)
    first = x[..., ::2]  # the first cell of each window along the last axis
    for y in (pool(x, kernel), pool(x, kernel, return_indices=True)[0]):
        np.testing.assert_array_equal(np.signbit(y), np.signbit(first))
    y, idx = pool(x, kernel, return_indices=True)
    np.testing.assert_array_equal(
        _bits(y), _bits(np.take_along_axis(x.reshape(*shape[:2], -1),
                                           idx.reshape(*shape[:2], -1), -1).reshape(y.shape)))


def test_max_pool_returns_the_bits_of_the_last_nan(impl):
    """Two NaNs of different payloads in one window: the index is the last one and the value its
    bits (the value is x at the index); without indices the value is NaN too."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    nan_a, nan_b = (np.array([np.nan]).view(np.int64) + np.array([1, 2])).view(np.float64)
    x[0, 0, 1], x[0, 0, 3] = nan_a, nan_b
    y, idx = impl.max_pool1d(x, 4, return_indices=True)
    assert idx[0, 0, 0] == 3
    np.testing.assert_array_equal(_bits(y), _bits(x[..., 3:]))
    assert np.isnan(impl.max_pool1d(x, 4)).all()


def test_max_pool_indices_with_a_dilation_beyond_int8(impl):
    """Tap p at dilation d reads p * d: with 3 taps, p * d = 200 does not fit the int8 the winning
    taps are kept in, the index must not wrap."""
    x = np.zeros((1, 1, 1, 300))
    x[..., 250] = 1.0
    y, idx = impl.max_pool2d(x, (1, 3), stride=1, dilation=(1, 100), return_indices=True)
    assert y[0, 0, 0, 50] == 1.0 and idx[0, 0, 0, 50] == 250
    _, idx1 = impl.max_pool1d(x[0], 3, stride=1, dilation=100, return_indices=True)
    np.testing.assert_array_equal(idx1, idx[0])


PAD_FORMS = [  # (rank, a form, the same padding as pairs)
    (1, 2, ((2, 2),)), (1, (2,), ((2, 2),)), (1, [(0, 1)], ((0, 1),)),
    (2, (1, (0, 2)), ((1, 1), (0, 2))), (2, [2, 1], ((2, 2), (1, 1))),
    (3, (1, (0, 1), 0), ((1, 1), (0, 1), (0, 0))), (3, 1, ((1, 1),) * 3),
]


@pytest.mark.parametrize("form", PAD_FORMS, ids=[repr(f[1]) for f in PAD_FORMS])
def test_padding_forms_per_rank(form, impl):
    """Every padding form of CONTRACT.md at its rank means its (before, after) pairs, for pad,
    conv and pool alike (NumPy integers too)."""
    rank, value, pairs = form
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 2, *(4,) * rank))
    np.testing.assert_array_equal(impl.pad(x, value), impl.pad(x, pairs))
    np.testing.assert_array_equal(impl.pad(x, value), np.pad(x, ((0, 0), (0, 0), *pairs)))
    w = rng.standard_normal((3, 2, *(2,) * rank))
    conv = getattr(impl, f"conv{rank}d")
    np.testing.assert_array_equal(conv(x, w, padding=value), conv(x, w, padding=pairs))
    pool = getattr(impl, f"max_pool{rank}d")
    np.testing.assert_array_equal(pool(x, 4, 1, value), pool(x, 4, 1, pairs))


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_backward_copies_cells_without_border_gradient_bit_for_bit(rank, mode, impl):
    """A -0.0 in dy stays -0.0 in dx where no border gradient lands: with zero padding on an
    axis (or everywhere) and in the interior of padded axes."""
    rng = np.random.default_rng(rank)
    sizes = (8, 9, 7)[:rank]
    pads_list = [((0, 0),) * rank, ((2, 1),) + ((0, 0),) * (rank - 1),
                 ((0, 0),) * (rank - 1) + ((1, 2),)]
    for pads in pads_list:
        shape = (2, 3, *(s + b + a for s, (b, a) in zip(sizes, pads, strict=True)))
        dy = np.where(rng.random(shape) < 0.5, -0.0, rng.standard_normal(shape))
        dy_before = dy.copy()
        dx = impl.pad_backward(dy, pads, mode)
        # cells no padded cell copies from (reflect reaches `pad` cells in, the other modes
        # fewer): more than 2 (the largest pad) from each edge of a padded axis
        inner = tuple(slice(b + 3, b + s - 3) if b or a else slice(b, b + s)
                      for s, (b, a) in zip(sizes, pads, strict=True))
        dx_inner = tuple(slice(3, s - 3) if b or a else slice(None)
                         for s, (b, a) in zip(sizes, pads, strict=True))
        np.testing.assert_array_equal(_bits(dx[(Ellipsis, *dx_inner)]),
                                      _bits(dy[(Ellipsis, *inner)]))
        np.testing.assert_array_equal(_bits(dy), _bits(dy_before))
        if all(p == (0, 0) for p in pads):
            np.testing.assert_array_equal(_bits(dx), _bits(dy))


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_backward_is_the_adjoint_of_pad_at_every_rank(rank, mode, impl):
    """<pad(x), dy> == <x, pad_backward(dy)> with asymmetric pads on every axis."""
    rng = np.random.default_rng(10 + rank)
    x = rng.standard_normal((2, 2, *(5, 4, 3)[:rank]))
    pads = ((2, 1), (0, 3), (1, 0))[:rank]
    y = impl.pad(x, pads, mode)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, impl.pad_backward(dy, pads, mode)),
                               rtol=1e-12)


def test_rank_wrappers_agree_on_a_size_1_axis(impl):
    """conv1d / conv3d and max_pool1d / max_pool3d equal the 2-D op with a size-1 axis added:
    the same rank-generic core, the same formulas along each axis."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 9))
    w = rng.standard_normal((6, 2, 3))
    b = rng.standard_normal(6)
    geo = {"stride": 2, "padding": ((1, 2),), "dilation": 2, "groups": 2}
    geo2 = {"stride": (1, 2), "padding": ((0, 0), (1, 2)), "dilation": (1, 2), "groups": 2}
    y1 = impl.conv1d(x, w, b, **geo)
    y2 = impl.conv2d(x[:, :, None], w[:, :, None], b, **geo2)
    y3 = impl.conv3d(x[:, :, None, None], w[:, :, None, None], b,
                     stride=(1, 1, 2), padding=(0, 0, (1, 2)), dilation=(1, 1, 2), groups=2)
    np.testing.assert_allclose(y1, y2[:, :, 0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(y1, y3[:, :, 0, 0], rtol=1e-13, atol=1e-13)
    dy = rng.standard_normal(y1.shape)
    for g1, g2 in zip(impl.conv1d_backward(dy, x, w, **geo),
                      impl.conv2d_backward(dy[:, :, None], x[:, :, None], w[:, :, None], **geo2),
                      strict=True):
        np.testing.assert_allclose(g1, g2.reshape(g1.shape), rtol=1e-13, atol=1e-13)
    p1 = impl.max_pool1d(x, 3, 2, 1, 2, True, True)
    p3 = impl.max_pool3d(x[:, :, None, None], (1, 1, 3), (1, 1, 2), (0, 0, 1), (1, 1, 2), True,
                         True)
    np.testing.assert_array_equal(p1[0], p3[0][:, :, 0, 0])
    np.testing.assert_array_equal(p1[1], p3[1][:, :, 0, 0])
    dyp = rng.standard_normal(p1[0].shape)
    np.testing.assert_array_equal(
        impl.max_pool1d_backward(dyp, x, 3, 2, 1, 2, True),
        impl.max_pool3d_backward(dyp[:, :, None, None], x[:, :, None, None], (1, 1, 3),
                                 (1, 1, 2), (0, 0, 1), (1, 1, 2), True)[:, :, 0, 0])


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4), (2, 3, 2, 2, 2)])
def test_batch_norm_at_every_rank_uses_every_axis_but_1(shape, impl):
    """Statistics over every axis but the channel axis: m = N * prod(S) (N for (N, C)), the
    unbiased running variance var * m / (m - 1); the backward through them."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape)
    c = shape[1]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    y, new_mean, new_var = impl.batch_norm(x, gamma, beta, np.zeros(c), np.ones(c), momentum=1.0)
    flat = np.moveaxis(x, 1, 0).reshape(c, -1)
    m = flat.shape[1]
    mean, var = flat.mean(axis=1), flat.var(axis=1)
    want = (flat - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * gamma[:, None] + beta[:, None]
    np.testing.assert_allclose(np.moveaxis(y, 1, 0).reshape(c, -1), want, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(new_mean, mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new_var, var * m / (m - 1), rtol=1e-12)
    # the backward agrees with the 4-D op on the same values laid out as (N, C, m / N, 1)
    dy = rng.standard_normal(shape)
    as4 = (shape[0], c, -1, 1)
    for got, want4 in zip(impl.batch_norm_backward(dy, x, gamma),
                          impl.batch_norm_backward(dy.reshape(as4), x.reshape(as4), gamma),
                          strict=True):
        np.testing.assert_allclose(got, want4.reshape(got.shape), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ nnref's window geometry

# (input sizes, kernel, stride, dilation, pads, ceil_mode): strides below, at and above the
# kernel, dilations, one-sided padding, ceil_mode windows reaching past the padding, r = 1-3.
WINDOW_GEOMETRIES = [
    ((7,), (3,), (2,), (1,), ((1, 1),), False),
    ((5,), (2,), (2,), (1,), ((0, 0),), True),
    ((6,), (2,), (3,), (2,), ((1, 0),), True),
    ((9,), (3,), (1,), (3,), ((0, 2),), False),
    ((5, 6), (3, 2), (2, 1), (1, 2), ((1, 0), (0, 1)), True),
    ((4, 7), (2, 3), (3, 2), (2, 1), ((1, 1), (1, 1)), True),
    ((3, 4, 5), (2, 1, 3), (1, 2, 2), (2, 1, 1), ((0, 1), (0, 0), (1, 1)), True),
]


@pytest.mark.parametrize("geometry", WINDOW_GEOMETRIES,
                         ids=[f"r{len(g[0])}-{i}" for i, g in enumerate(WINDOW_GEOMETRIES)])
def test_every_reading_of_the_windows_follows_the_plain_rule(geometry):
    """Along each axis window i reads, for kernel tap p, the padded cell i * s + p * d, that is
    the input cell i * s + p * d - before; cells outside the input are padding. Each reading of
    nnref._windows.Windows gives exactly these cells (the input's cells numbered 1, 2, ...;
    padding 0)."""
    from nnref._windows import from_wide, sliding_windows, valid_part, wide_planes

    sizes, kernel, stride, dilation, pads, ceil_mode = geometry
    win = sliding_windows(str, sizes, kernel, stride, dilation, pads, ceil_mode)
    x = np.arange(1, np.prod(sizes) + 1, dtype=np.float64).reshape(1, 1, *sizes)
    # The plain rule: want[p][i] is the number of the cell tap p of window i reads, 0 outside.
    want = np.zeros((*kernel, *win.out))
    for p in np.ndindex(*kernel):
        for i in np.ndindex(*win.out):
            cell = [i_a * s + p_a * d - b for i_a, p_a, s, d, (b, _) in
                    zip(i, p, stride, dilation, pads, strict=True)]
            if all(0 <= c < size for c, size in zip(cell, sizes, strict=True)):
                want[(*p, *i)] = x[(0, 0, *cell)]
    xp = win.padded(x)
    assert xp.shape[2:] == win.reach
    np.testing.assert_array_equal(xp[win.interior], x)
    assert xp.sum() == x.sum()  # zeros everywhere else
    for tap, cells in win.tap_slices():
        np.testing.assert_array_equal(xp[cells][0, 0], want[tap])
    np.testing.assert_array_equal(win.view(xp)[0, 0], want)
    clipped = np.zeros_like(want)
    for tap, in_cells, out_cells in win.reads():
        clipped[(*tap, *out_cells)] = x[(0, 0, *in_cells)]
    np.testing.assert_array_equal(clipped, want)
    layout = win.wide()
    planes = wide_planes(x, layout, 0.0)
    for t, tap in enumerate(np.ndindex(*kernel)):
        np.testing.assert_array_equal(from_wide(layout.tap(planes, t), layout)[0, 0], want[tap])
        assert valid_part(layout.tap(planes, t), layout).shape[2:] == win.out

# ------------------------------------------------------------ layer, group and instance norm

DY = np.random.default_rng(6).standard_normal(X.shape)


def _all_equal(got: Any, want: Any) -> None:
    for g, w in zip(_outputs(got), _outputs(want), strict=True):
        np.testing.assert_array_equal(g, w)


def _all_close(got: Any, want: Any) -> None:
    for g, w in zip(_outputs(got), _outputs(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)


def test_layer_group_and_instance_norm_defaults(impl):
    """gamma, beta None, eps 1e-5; instance norm training, momentum 0.1; normalized_shape as an
    int, a tuple or a list is the same trailing shape."""
    _all_equal(impl.layer_norm(X, 6), impl.layer_norm(X, (6,), None, None, 1e-5))
    _all_equal(impl.layer_norm(X, [5, 6]), impl.layer_norm(X, (5, 6), None, None, 1e-5))
    _all_equal(impl.layer_norm_backward(DY, X, 6), impl.layer_norm_backward(DY, X, (6,), None,
                                                                             1e-5))
    _all_equal(impl.group_norm(X, 2), impl.group_norm(X, 2, None, None, 1e-5))
    _all_equal(impl.group_norm_backward(DY, X, 2), impl.group_norm_backward(DY, X, 2, None, 1e-5))
    _all_equal(impl.instance_norm(X), impl.instance_norm(X, None, None, None, None, True, 0.1,
                                                         1e-5))
    _all_equal(impl.instance_norm(X, G, B, RM, RV),
               impl.instance_norm(X, G, B, RM, RV, True, 0.1, 1e-5))
    _all_equal(impl.instance_norm_backward(DY, X),
               impl.instance_norm_backward(DY, X, None, 1e-5, None, None, True))


@pytest.mark.parametrize("training", [True, False])
def test_norm_gamma_none_is_ones_and_beta_none_is_zeros(training, impl):
    """Each op with gamma None and beta None equals the call with ones and zeros, and still
    returns dgamma and dbeta."""
    c, ones, zeros = X.shape[1], np.ones(4), np.zeros(4)
    _all_close(impl.layer_norm(X, (5, 6)), impl.layer_norm(X, (5, 6), np.ones((5, 6)),
                                                           np.zeros((5, 6))))
    _all_close(impl.layer_norm_backward(DY, X, (5, 6)),
               impl.layer_norm_backward(DY, X, (5, 6), np.ones((5, 6))))
    _all_close(impl.group_norm(X, 2), impl.group_norm(X, 2, ones, zeros))
    _all_close(impl.group_norm_backward(DY, X, 2), impl.group_norm_backward(DY, X, 2, ones))
    stats = {"running_mean": RM, "running_var": RV, "training": training}
    assert len(_outputs(impl.instance_norm(X, **stats))) == (3 if training else 1)
    _all_close(impl.instance_norm(X, **stats), impl.instance_norm(X, ones, zeros, **stats))
    _all_close(impl.instance_norm_backward(DY, X, **stats),
               impl.instance_norm_backward(DY, X, ones, **stats))
    for grads in (impl.group_norm_backward(DY, X, 2), impl.instance_norm_backward(DY, X)):
        assert [g.shape for g in grads] == [X.shape, (c,), (c,)]


def test_one_value_per_group_gives_beta_and_no_gradient(impl):
    """As torch: a group of one value (group norm with C groups on (N, C); layer norm over an
    axis of size 1) has variance 0, y = beta and dx = 0."""
    x = X[:, :, 0, 0]
    y = impl.group_norm(x, 4, G, B)
    # y = x * scale + (beta - mean * scale) (torch's fold) rounds x * scale ~ |x gamma| /
    # sqrt(eps) ~ 1e3 here: within the record's bound of beta, not bit for bit.
    case = GroupNormCase(x.shape, 4)
    bound = tol.forward_bounds(case, {"x": x, "gamma": G, "beta": B}, np.float64)["y"]
    compare("y", y, np.broadcast_to(B, x.shape), tol.comparison_atol(bound, bound))
    dx, dgamma, dbeta = impl.group_norm_backward(DY[:, :, 0, 0], x, 4, G)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dgamma, 0.0)
    np.testing.assert_allclose(dbeta, DY[:, :, 0, 0].sum(axis=0), rtol=1e-15)
    column = X[..., :1]
    np.testing.assert_array_equal(impl.layer_norm(column, 1, np.full(1, 2.0), np.full(1, 3.0)),
                                  3.0)
    np.testing.assert_array_equal(impl.layer_norm_backward(DY[..., :1], column, 1)[0], 0.0)


@pytest.mark.parametrize("shape", [(2, 3, 2), (1, 3, 1, 2), (2, 3, 2, 1, 1)],
                         ids=["L=2", "W=2", "D=2"])
def test_instance_norm_training_accepts_exactly_two_values_per_instance(shape, impl):
    """m = prod(S) = 2 is valid (the limit is m > 1): y = +-1 / sqrt(1 + eps / var); the running
    variance is the unbiased per-instance variance 2 var averaged over N; (N, C) is valid in
    eval mode."""
    x = np.random.default_rng(7).standard_normal(shape)
    n, c = shape[:2]
    eps = 1e-3
    y, new_mean, new_var = impl.instance_norm(x, None, None, np.zeros(c), np.ones(c),
                                              momentum=1.0, eps=eps)
    flat = x.reshape(n, c, 2)
    mean, var = flat.mean(axis=2), flat.var(axis=2)
    want = (flat - mean[..., None]) / np.sqrt(var[..., None] + eps)
    np.testing.assert_allclose(y.reshape(n, c, 2), want, rtol=1e-12)
    np.testing.assert_allclose(new_mean, mean.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(new_var, (2 * var).mean(axis=0), rtol=1e-12)
    dx, _, _ = impl.instance_norm_backward(np.ones(shape), x, None, eps=eps)
    np.testing.assert_allclose(dx, 0.0, atol=1e-12)  # a constant dy moves no normalised value
    first = np.ascontiguousarray(flat[:, :, 0])  # (N, C)
    y_eval = impl.instance_norm(first, running_mean=RM[:c], running_var=RV[:c], training=False)
    np.testing.assert_allclose(y_eval, (first - RM[:c]) / np.sqrt(RV[:c] + 1e-5), rtol=1e-13)


# ------------------------------------------- the plain statements next to the fast paths


def test_layout_strings_name_every_axis():
    """The layouts the messages quote (built once at import, so pinned here directly)."""
    from nnref._checks import layout

    assert layout(1) == "(N, C, L)"
    assert layout(2) == "(N, C, H, W)"
    assert layout(3, suffix="o") == "(N, C, Do, Ho, Wo)"
    assert layout(2, "Co, C/G", prefix="k", lower=True) == "(Co, C/G, kh, kw)"


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_pool_plain_has_the_contracts_defaults_and_argument_checks(rank):
    """nnref.max_pool.max_pool_plain(_backward), the rule written out plainly, takes
    max_pool{r}d's defaults and refuses what it refuses, with the same messages (but its own
    name)."""
    import nnref
    from nnref.max_pool import max_pool_plain, max_pool_plain_backward

    pool = getattr(nnref, f"max_pool{rank}d")
    pool_backward = getattr(nnref, f"max_pool{rank}d_backward")
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2, 3, *(5, 6, 7)[:rank]))
    y, idx = max_pool_plain(x, 2)
    want_y, want_idx = pool(x, 2, return_indices=True)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(max_pool_plain_backward(dy, x, 2), pool_backward(dy, x, 2))
    name = f"max_pool{rank}d"
    any_rank = (r"^x must have 3, 4 or 5 dimensions \(N, C, L\), \(N, C, H, W\) or "
                r"\(N, C, D, H, W\), got 2 \(shape \(3, 5\)\)$")  # any rank: its own message
    with pytest.raises(ValueError, match=any_rank):
        max_pool_plain(np.ones((3, 5)), 2)
    with pytest.raises(ValueError, match=any_rank):
        max_pool_plain_backward(np.ones((3, 5)), np.ones((3, 5)), 2)
    bad_calls = [
        ((x.astype(np.int64), 2), {}), (([[1.0]], 2), {}), ((x, 0), {}),
        ((x, 2), {"stride": 0}), ((x, 2), {"padding": 2}), ((x, 2), {"dilation": 0}),
        ((x, 9), {}),
    ]
    for args, kwargs in bad_calls:
        with pytest.raises(ValueError) as want:
            pool(*args, **kwargs)
        with pytest.raises(ValueError) as got:
            max_pool_plain(*args, **kwargs)
        assert str(got.value).replace("max_pool_plain", name) == str(want.value), (args, kwargs)
        with pytest.raises(ValueError) as got:
            max_pool_plain_backward(dy, *args, **kwargs)
        assert str(got.value).replace("max_pool_plain", name) == str(want.value), (args, kwargs)

    def head(exc):  # the message up to its first detail
        return re.split(r",| \(", str(exc.value))[0]

    for bad_dy in (dy[0], dy.astype(np.float32), dy[..., :1], [[1.0]]):
        with pytest.raises(ValueError) as want:
            pool_backward(bad_dy, x, 2)
        with pytest.raises(ValueError) as got:
            max_pool_plain_backward(bad_dy, x, 2)
        assert head(got) == head(want)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_adaptive_max_pool_nan_wins_its_bin_the_last_nan(rank, impl):
    """CONTRACT.md: NaN wins its bin, the last NaN in row-major window order; its gradient goes
    to that cell. Three bins: two NaNs not at the bin's end, one NaN mid-bin, none
    (deterministic: the sampler rarely draws two NaNs in one bin)."""
    nan = np.nan
    x = np.array([nan, nan, 1.0, 5.0, nan, 2.0, 3.0, 7.0, 4.0]).reshape(
        1, 1, *(9, 1, 1)[:rank])
    out = (3, 1, 1)[:rank]
    pool = getattr(impl, f"adaptive_max_pool{rank}d")
    y, idx = pool(x, out, return_indices=True)
    assert np.isnan(y.ravel()[:2]).all() and y.ravel()[2] == 7.0
    np.testing.assert_array_equal(idx.ravel(), [1, 4, 7])  # bins [0, 3), [3, 6), [6, 9)
    dy = np.array([3.0, 4.0, 5.0]).reshape(y.shape)
    dx = getattr(impl, f"adaptive_max_pool{rank}d_backward")(dy, x, out)
    np.testing.assert_array_equal(dx.ravel(), [0, 3.0, 0, 0, 4.0, 0, 0, 5.0, 0])


# (x shape, output_size): overlapping and repeating bins, evenly dividing ones, None
ADAPTIVE_CONFIGS = [
    ((2, 3, 10), (4,)), ((1, 2, 3), (7,)), ((2, 2, 12), (3,)),
    ((2, 2, 7, 5), (3, 4)), ((1, 3, 4, 6), (8, 3)), ((2, 2, 9, 8), (3, None)),
    ((1, 2, 5, 4, 6), (2, 3, 4)), ((2, 1, 3, 4, 2), (4, 2, 3)), ((1, 2, 4, 6, 8), (2, 3, 4)),
]


def _bins_brute(size, out):
    return [range(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


@pytest.mark.parametrize("config", ADAPTIVE_CONFIGS,
                         ids=[f"r{len(c[1])}-{i}" for i, c in enumerate(ADAPTIVE_CONFIGS)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nans", [True, False], ids=["nans", "no-nan"])
def test_adaptive_max_pool_follows_its_rule_bit_for_bit(config, dtype, nans, impl):
    """The adaptive max pool (nnref: a running reduction, axis by axis) and its plain statement
    (nnref.adaptive_pool.adaptive_max_plain: every bin's whole window at once) agree with the
    brute force bit for bit on ties, signed zeros, -inf and NaNs with distinct payloads: the first
    maximum in row-major bin order, the last NaN; the gradient goes to that cell, and a dy of
    -0.0 lands as +0.0 (a sum starting from 0). Without NaNs nnref takes its other paths (a
    running maximum and scores; values only: leading axis first), held to the same bits."""
    from nnref.adaptive_pool import adaptive_max_plain

    shape, out = config
    rank = len(out)
    x = _special_input_nd(shape, sum(shape) + 7, dtype)
    if not nans:
        x[np.isnan(x)] = np.where(np.arange(np.isnan(x).sum()) % 2, 1.0, -0.0)
    x_before = x.copy()
    sizes = tuple(s if o is None else o for s, o in zip(shape[2:], out, strict=True))
    want_y = np.zeros((*shape[:2], *sizes), dtype)
    want_idx = np.zeros(want_y.shape, np.int64)
    bins = [_bins_brute(s, o) for s, o in zip(shape[2:], sizes, strict=True)]
    for n, c, *i in np.ndindex(*want_y.shape):
        cells = [(flat, x[n, c].ravel()[flat]) for flat in (
            np.ravel_multi_index(p, shape[2:]) for p in itertools.product(
                *(bins[a][i[a]] for a in range(rank))))]
        nans = [f for f, v in cells if np.isnan(v)]
        best = nans[-1] if nans else max(cells, key=lambda fv: fv[1])[0]  # max: first of ties
        want_idx[(n, c, *i)] = best
        want_y[(n, c, *i)] = x[n, c].ravel()[best]
    y, idx = getattr(impl, f"adaptive_max_pool{rank}d")(x, out, return_indices=True)
    y_p, idx_p = adaptive_max_plain(x, out)
    for got_y, got_idx in ((y, idx), (y_p, idx_p)):
        assert got_y.dtype == dtype and got_idx.dtype == np.int64
        np.testing.assert_array_equal(got_idx, want_idx)
        np.testing.assert_array_equal(_bits(got_y), _bits(want_y))
    values_only = getattr(impl, f"adaptive_max_pool{rank}d")(x, out)
    number = ~np.isnan(want_y)  # which NaN's payload the values-only call returns is left open
    np.testing.assert_array_equal(np.isnan(values_only), ~number)
    np.testing.assert_array_equal(_bits(values_only[number]), _bits(want_y[number]))
    dy = np.random.default_rng(2).standard_normal(want_y.shape).astype(dtype)
    dy.ravel()[::3] = -0.0
    want_dx = np.zeros((*shape[:2], int(np.prod(shape[2:]))))
    for n, c, *i in np.ndindex(*want_y.shape):
        want_dx[n, c, want_idx[(n, c, *i)]] += dy[(n, c, *i)]
    dx = getattr(impl, f"adaptive_max_pool{rank}d_backward")(dy, x, out)
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dx.reshape(want_dx.shape), want_dx, rtol=tol, atol=tol)
    assert not np.signbit(dx[dx == 0]).any()
    np.testing.assert_array_equal(_bits(x), _bits(x_before))


@pytest.mark.parametrize("cells", [127, 128, 255, 256])
def test_adaptive_max_pool_bins_of_many_cells_keep_the_first_maximum(cells):
    """Bins of 127 to 256 cells (the tap scores' integer type widens past 127 and 255 taps): a
    maximum in a bin's first cell tied later in the bin is still the first, by index and by
    the gradient."""
    import nnref

    x = np.random.default_rng(cells).uniform(-1.0, 1.0, (2, 3, 2 * cells))
    x[..., [0, cells]] = 5.0   # each bin's first cell
    x[..., [10, cells + 11]] = 5.0  # the ties, later in each bin
    y, idx = nnref.adaptive_max_pool1d(x, 2, return_indices=True)
    assert (y == 5.0).all() and (idx == [0, cells]).all()
    dx = nnref.adaptive_max_pool1d_backward(np.ones_like(y), x, 2)
    assert (dx[..., [0, cells]] == 1).all() and dx.sum() == y.size


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_adaptive_max_pool_zero_maxima_take_the_first_zeros_sign(rank):
    """Bins whose maximum is zero, of both signs and no other value above -1 (no NaN): the value
    is the first zero's, bits included, with indices and without."""
    import nnref

    rng = np.random.default_rng(rank)
    shape = (2, 3, *(6,) * rank)
    x = rng.choice(np.array([-1.0, -0.0, 0.0]), size=shape)
    pool = getattr(nnref, f"adaptive_max_pool{rank}d")
    for dtype in (np.float64, np.float32):
        xd = x.astype(dtype)
        y, idx = pool(xd, 2, return_indices=True)
        first = np.take_along_axis(xd.reshape(*shape[:2], -1), idx.reshape(*shape[:2], -1), -1)
        np.testing.assert_array_equal(_bits(y), _bits(first.reshape(y.shape)))
        np.testing.assert_array_equal(_bits(pool(xd, 2)), _bits(y))
        from nnref.adaptive_pool import adaptive_max_plain
        np.testing.assert_array_equal(_bits(y), _bits(adaptive_max_plain(xd, 2)[0]))


def test_adaptive_max_plain_checks_its_input():
    from nnref.adaptive_pool import adaptive_max_plain

    with pytest.raises(ValueError, match=r"x must be .*got shape \(2, 3\)"):
        adaptive_max_plain(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="output_size"):
        adaptive_max_plain(np.zeros((1, 1, 3)), 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("zeros", ["none", "both signs"])
def test_relu_follows_its_rule_bit_for_bit(dtype, zeros, impl):
    """relu(x) = where(x < 0, +0.0, x) bit for bit: -0.0 stays -0.0, NaN payloads and
    infinities pass, negatives give +0.0 (long arrays: the vectorised paths); its gradient is
    dy where x > 0, 0 elsewhere (a signed zero from the product), NaN where x is NaN."""
    x = _special_input_nd((3, 5, 67), 11, dtype)
    x[np.isneginf(x)] = np.inf
    x[0, 0, :6] = [-2.5, -0.0, 0.0, np.inf, -np.inf, 3.0]
    if zeros == "none":
        x[x == 0] = 1.5
    x_before = x.copy()
    want = np.where(x < 0, np.zeros((), dtype), x)
    np.testing.assert_array_equal(_bits(impl.relu(x)), _bits(want))
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    with np.errstate(invalid="ignore"):
        want_dx = np.where(np.isnan(x), np.nan, dy * (x > 0)).astype(dtype)
    np.testing.assert_array_equal(_bits(impl.relu_backward(dy, x)), _bits(want_dx))
    np.testing.assert_array_equal(_bits(x), _bits(x_before))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_follows_its_plain_rule_bit_for_bit(dtype):
    """nnref's sigmoid and its gradient (two buffers, in place) against the rule written out
    (nnref.activations.sigmoid_plain(_backward)): the same bits for signed zeros, NaN payloads,
    infinities, values where exp(-|x|) is subnormal or 0, and ordinary values of both signs,
    in a long array (NumPy's vectorised loops) and in a strided view; the inputs untouched."""
    import nnref
    from nnref.activations import sigmoid_plain, sigmoid_plain_backward

    x = _special_input_nd((3, 5, 67), 12, dtype)
    x[np.isneginf(x) & (np.random.default_rng(0).random(x.shape) < 0.5)] = np.inf
    rng = np.random.default_rng(5)
    ordinary = x == 1
    x[ordinary] = (rng.standard_normal(ordinary.sum()) * 30).astype(dtype)
    x[0, 0, :8] = [-0.0, 0.0, -745.0, -104.0, 88.0, -88.7, 1e-30, -1e-30]
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy[0, 1, :4] = [np.inf, -np.inf, np.nan, 0.0]
    for xs, dys in ((x, dy), (x[:, ::2, ::3], dy[:, ::2, ::3])):
        before = xs.copy(), dys.copy()
        np.testing.assert_array_equal(_bits(nnref.sigmoid(xs)), _bits(sigmoid_plain(xs)))
        np.testing.assert_array_equal(_bits(nnref.sigmoid_backward(dys, xs)),
                                      _bits(sigmoid_plain_backward(dys, xs)))
        np.testing.assert_array_equal(_bits(xs), _bits(before[0]))
        np.testing.assert_array_equal(_bits(dys), _bits(before[1]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha", [1.0, 0.3, -0.7, 0.0, 1e-30])
def test_elu_follows_its_plain_rule_bit_for_bit(dtype, alpha):
    """nnref's elu and its gradient (a bitwise selection) against the rule written out
    (nnref.activations.elu_plain(_backward), np.where): the same bits for signed zeros (x =
    -0.0, an alpha * expm1(x) that underflows, alpha 0 or negative), NaN payloads, infinities
    and ordinary values of both signs, in a long array, a strided view and a 0-d array; the
    inputs untouched."""
    import nnref
    from nnref.activations import elu_plain, elu_plain_backward

    x = _special_input_nd((3, 5, 67), 13, dtype)
    rng = np.random.default_rng(6)
    x[np.isneginf(x) & (rng.random(x.shape) < 0.5)] = np.inf
    ordinary = x == 1
    x[ordinary] = (rng.standard_normal(ordinary.sum()) * 30).astype(dtype)
    x[0, 0, :8] = [-0.0, 0.0, -1e-300 if dtype == np.float64 else -1e-40, -104.0, 88.0, 710.0,
                   1e-30, -1e-30]
    x[0, 1, :2] = np.array([0x7FC00123, 0xFFC00456], np.uint32).view(np.float32) \
        if dtype == np.float32 else np.array([0x7FF8000000000123, 0xFFF8000000000456],
                                             np.uint64).view(np.float64)  # NaN payloads
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy[0, 2, :4] = [np.inf, -np.inf, np.nan, 0.0]
    for xs, dys in ((x, dy), (x[:, ::2, ::3], dy[:, ::2, ::3]),
                    (x[0, 0, 0, ...], dy[0, 0, 0, ...])):  # the last 0-d
        before = xs.copy(), dys.copy()
        np.testing.assert_array_equal(_bits(nnref.elu(xs, alpha)), _bits(elu_plain(xs, alpha)))
        np.testing.assert_array_equal(_bits(nnref.elu_backward(dys, xs, alpha)),
                                      _bits(elu_plain_backward(dys, xs, alpha)))
        np.testing.assert_array_equal(_bits(xs), _bits(before[0]))
        np.testing.assert_array_equal(_bits(dys), _bits(before[1]))


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_backward", "elu", "elu_backward"])
def test_the_activations_plain_rules_take_the_same_checks(name):
    """activations.<name>_plain refuses what nnref.<name> refuses, with the same message (its
    parameters named as the contract names them)."""
    import nnref
    from nnref import activations

    plain = getattr(activations, name.replace("_backward", "_plain_backward")
                    if name.endswith("_backward") else f"{name}_plain")
    good = np.ones((2, 3))
    calls = [([[1.0]],), (np.ones(3, np.int64),), (np.ones((0, 2)),)]
    if name.endswith("_backward"):
        calls = [(good, x) for (x,) in calls] + [(x, good) for (x,) in calls] + [
            (np.ones((3, 2)), good), (good.astype(np.float32), good)]
    for args in calls:
        with pytest.raises(ValueError) as want:
            getattr(nnref, name)(*args)
        with pytest.raises(ValueError) as got:
            plain(*args)
        assert str(got.value) == str(want.value), args


@pytest.mark.parametrize("function", ["relu_backward", "elu_backward", "sigmoid_backward"])
def test_activation_gradient_is_nan_where_x_is_nan(function, impl):
    """CONTRACT.md: f'(NaN) is NaN, so dx is NaN where x is NaN even for a finite dy (relu's
    selection would give 0 there); elsewhere the ordinary derivative."""
    x = np.array([[np.nan, 2.0, -2.0]])
    dx = getattr(impl, function)(np.ones_like(x), x)
    assert np.isnan(dx[0, 0]) and np.isfinite(dx[0, 1:]).all()


@pytest.mark.parametrize(("x", "p", "want"), [
    # a window whose sum is 0 passes nothing; the other dy * x ** (p - 1) * y ** (1 - p)
    ([0.0, 0.0, 1.0, 2.0], 2.0, [0.0, 0.0, 7 / 5 ** 0.5, 14 / 5 ** 0.5]),
    # a NaN sum passes NaN, but at p = 1 it passes 0 (torch's rule)
    ([np.nan, 1.0, 2.0, 3.0], 1.0, [0.0, 0.0, 7.0, 7.0]),
    ([np.nan, 1.0, 2.0, 3.0], 3.0, [np.nan, np.nan, 7 * 4 / 35 ** (2 / 3),
                                    7 * 9 / 35 ** (2 / 3)]),
    # p < 1: a zero cell in a window with a non-zero sum gets 0 ** (p - 1) = inf, a zero cell
    # covered only by zero-sum windows gets 0
    ([0.0, 4.0, 0.0, 0.0], 0.5, [np.inf, 5.0, 0.0, 0.0]),
], ids=["zero-window", "nan-window-p1", "nan-window-p3", "zero-cell-p-below-1"])
def test_lp_pool_gradient_at_zero_and_nan_windows(x, p, want, impl):
    """CONTRACT.md's LP-pool gradient rules at the windows where the formula breaks down
    (kernel 2, stride 2, dy = [5, 7]; deterministic: the sampler rarely builds them)."""
    dx = impl.lp_pool1d_backward(np.array([[[5.0, 7.0]]]), np.array([[x]]), p, 2)
    np.testing.assert_allclose(dx.ravel(), want, rtol=1e-12)


@pytest.mark.parametrize("dy0", [np.nan, np.inf, -np.inf])
def test_lp_pool_gradient_at_a_nan_window_with_p1_is_dy_times_zero(dy0, impl):
    """At p = 1 a window whose sum is NaN passes dy * 0, an IEEE product as in torch (its
    relu' and sign' of the NaN are 0): 0 for a finite dy, NaN for a NaN or infinite one. A
    window whose sum is 0 passes 0 whatever dy is (torch: 0 for dy NaN and inf as well).
    Found by a dev-profile run (x and dy NaN in the same window of lp_pool1d, p = 1)."""
    dy = np.array([[[dy0, 7.0]]])
    dx = impl.lp_pool1d_backward(dy, np.array([[[np.nan, 1.0, 2.0, 3.0]]]), 1.0, 2)
    np.testing.assert_array_equal(dx.ravel(), [np.nan, np.nan, 7.0, 7.0])
    dx = impl.lp_pool1d_backward(dy, np.array([[[0.0, 0.0, 1.0, 2.0]]]), 1.0, 2)
    np.testing.assert_array_equal(dx.ravel(), [0.0, 0.0, 7.0, 7.0])
