"""The nnref contract on JAX (jax.lax, jax.numpy, jax.nn; CPU), at spatial ranks 1, 2 and 3.

Every op is one rank-generic JAX function run as one jitted XLA computation, the geometry as
static arguments (one compilation per shape and configuration, about 40 ms here: op by op eager
dispatch compiles every primitive separately and is several times slower), on the adapter's own
copy of the inputs; gradients are ``jax.vjp`` of the same function with the suite's upstream
gradient, forward and pullback jitted together. Compiled executables are dropped every
_CACHE_LIMIT shapes (a suite run meets thousands of shapes, each kept alive otherwise). float64
needs ``jax_enable_x64``: every call runs inside ``jax.enable_x64(True)`` (a context manager), so
the flag never leaks into the caller or other tests; float32 inputs stay float32.

Conventions handled here (see conformance/divergences.toml):
- Layouts are given to lax explicitly: ("NCW", "OIW", "NCW") and the 2-D / 3-D analogues, so
  the contract's (N, C, *S) and (Co, C / G, *k) go straight in. Padding is always explicit
  (before, after) pairs, asymmetric included ("same" resolved by the contract formula).
- Convolution: lax.conv_general_dilated (precision HIGHEST). Transposed convolution:
  lax.conv_transpose(transpose_kernel=True) on the contract's (C, Co, *k) kernel, with padding
  d (k - 1) - p before and d (k - 1) - p + output_padding after; lax.conv_transpose has no
  groups (jax-conv-transpose-no-groups): a grouped one is lax.conv_general_dilated with
  lhs_dilation (what conv_transpose lowers to) and feature_group_count.
- Max pooling: lax.reduce_window(max) on the input padded with -inf (explicit padding; ceil_mode
  by extra -inf cells at the end; lax.max(-0.0, 0.0) is +0.0 in either order, so where x holds a
  -0.0 the values are the composed winners': jax-maxpool-signed-zero). JAX has no indices
  (jax-maxpool-no-indices): they are composed
  by a variadic lax.reduce_window over (value, flat index) pairs whose reducer keeps the contract's
  winner (first maximum, the last NaN, never a padded cell); with indices requested, y is the
  winner's value. The gradient is jax.vjp of reduce_window max, except where JAX has no VJP
  (window dilation > 1: jax-maxpool-dilation-no-vjp) and where its select_and_scatter sends the
  gradient elsewhere than the contract (a NaN in the input: max-pool-nan; a window whose best
  input cell is -inf beside padding: maxpool-neg-inf-sentinel): there the gradient is composed by
  scattering dy onto the composed indices (.at[].add).
- Average and LP pooling: lax.reduce_window(add) window sums of the zero-padded input (of x ** p
  for LP) divided by the contract's divisor (flax.linen.avg_pool's construction; JAX has no
  pooling op of its own beyond reduce_window); LP takes the root with a zero-sum window giving 0
  and passing no gradient (jnp.where on both sides).
- Adaptive pooling: per axis, each bin's slice reduced (jnp.sum / its length; for max, a variadic
  lax.reduce over (value, flat index) pairs with max pooling's winner rule). The adaptive max
  gradient is the dy scattered onto those indices: jnp.max's own gradient splits ties evenly
  (jax-reduce-max-splits-ties).
- Batch norm: JAX has none (jax-no-batch-norm); composed from jnp.mean and jnp.var (two-pass:
  jax.nn.standardize's default one-pass variance loses small-variance channels,
  jax-standardize-one-pass-variance), running statistics with the contract's convention.
- Activations: jax.nn.relu (x kept where x == 0: jnp.maximum(-0.0, 0) is +0.0,
  jax-relu-negative-zero), jax.nn.elu(alpha), jax.nn.sigmoid; linear is jnp.tensordot + b.
  JAX's relu gradient is 0 at NaN (activation-gradient-at-nan): product_nans puts the contract's
  NaN there; against an infinite dy the sigmoid derivative is composed from jnp.exp
  (sigmoid-saturated-gradient).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from conformance.backends.arguments import (
    adaptive_bins,
    avg_divisors,
    avg_pool_geometry,
    bn_axes,
    bn_check,
    channel_shape,
    check_alpha,
    check_pad,
    conv_args,
    conv_transpose_args,
    float_input,
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
    pad_pairs,
    pool_geometry,
    product_nans,
    same_shape_dy,
    spatial_rank,
    unpadded_shape,
)

NAME = "jax"
_JNP_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": "wrap"}
_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
_HIGHEST = lax.Precision.HIGHEST
__version__ = jax.__version__


def _x64(fn):
    """Run ``fn`` with float64 enabled (jax.enable_x64 is a context manager: nothing leaks)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


_CACHE_LIMIT = 256
# `python -m conformance diff` runs JAX on this many cases of each op row and dtype (fixtures
# first): about 0.3 s a call here (an XLA compilation per shape), against milliseconds for torch;
# the jax tox environment's cross-checks draw more.
DIFF_CASES = 3


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply_jit(fn, static: tuple, *arrays):
    return fn(*arrays, **dict(static))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _pullback_jit(fn, static: tuple, primals: tuple, consts: tuple, dy):
    _, pullback = jax.vjp(lambda *p: fn(*p, *consts, **dict(static)), *primals)
    return pullback(dy)


def _bound_cache() -> None:
    if _apply_jit._cache_size() + _pullback_jit._cache_size() > _CACHE_LIMIT:
        jax.clear_caches()


def _call(fn, *arrays, **static):
    """fn(*arrays, **static) as one jitted computation (static: hashable compile-time values)."""
    _bound_cache()
    return _apply_jit(fn, tuple(sorted(static.items())), *arrays)


def _vjp(fn, primals: tuple, dy: np.ndarray, consts: tuple = (), **static):
    """Cotangents of ``fn(*primals, *consts, **static)`` for the upstream gradient ``dy`` (its
    shape checked first); ``consts`` are arrays held fixed (no cotangent)."""
    out = jax.eval_shape(functools.partial(fn, **static), *primals, *consts)
    if tuple(out.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(out.shape)}, got {dy.shape}")
    _bound_cache()
    return _pullback_jit(fn, tuple(sorted(static.items())), tuple(primals), tuple(consts),
                         jnp.asarray(dy, out.dtype))


def _j(a: np.ndarray) -> jax.Array:
    """A JAX copy of `a` in its own dtype (the adapter never shares or mutates inputs)."""
    return jnp.array(np.array(a, copy=True))


def _np(t: jax.Array, dtype: np.dtype) -> np.ndarray:
    return np.array(t, dtype=dtype, copy=True)


def _dims(rank: int) -> tuple[str, str, str]:
    s = _SPATIAL[rank]
    return (f"NC{s}", f"OI{s}", f"NC{s}")


# ----------------------------------------------------------------------------------- padding


def _jnp_pad(x: jax.Array, *, pads, mode: str, value: float) -> jax.Array:
    widths = ((0, 0), (0, 0), *pads)
    if mode == "constant":
        return jnp.pad(x, widths, mode="constant", constant_values=jnp.asarray(value, x.dtype))
    return jnp.pad(x, widths, mode=_JNP_MODES[mode])


@_x64
def pad(x: np.ndarray, pad_width: object, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """jnp.pad with NumPy's mode names (reflect, edge, wrap)."""
    x = float_input(x)
    pads = pad_pairs(pad_width, spatial_rank(x.shape), "pad_width")
    check_pad(x.shape, pads, mode)
    return _np(_call(_jnp_pad, _j(x), pads=pads, mode=mode, value=float(value)), x.dtype)


@_x64
def pad_backward(dy: np.ndarray, pad_width: object, mode: str = "constant") -> np.ndarray:
    """jax.vjp of jnp.pad (x's shape comes from dy's)."""
    dy = float_input(dy, "dy")
    pads = pad_pairs(pad_width, spatial_rank(dy.shape, "dy"), "pad_width")
    shape = unpadded_shape(dy.shape, pads, pad_width)
    check_pad(shape, pads, mode)
    (dx,) = _vjp(_jnp_pad, (jnp.zeros(shape, dy.dtype),), dy, pads=pads, mode=mode, value=0.0)
    return _np(dx, dy.dtype)


# ------------------------------------------------------------------------------- convolution


def _conv(x, w, b, *, s, pads, d, groups, rank):
    y = lax.conv_general_dilated(x, w, window_strides=s, padding=pads, rhs_dilation=d,
                                 dimension_numbers=_dims(rank), feature_group_count=groups,
                                 precision=_HIGHEST)
    return y + b.reshape(channel_shape(rank + 2))


def _conv_geometry(x, w, stride, padding, dilation, groups, rank):
    _, s, pads, d = conv_args(x.shape, w.shape, rank, stride, padding, dilation, groups)
    return {"s": s, "pads": pads, "d": d, "groups": int(groups), "rank": rank}


@_x64
def _conv_forward(x, w, b, stride, padding, dilation, groups, rank: int) -> np.ndarray:
    x, w = float_input(x), float_input(w, "w")
    bias = np.zeros(w.shape[0], x.dtype) if b is None else float_input(b, "b")
    geo = _conv_geometry(x, w, stride, padding, dilation, groups, rank)
    return _np(_call(_conv, _j(x), _j(w), _j(bias), **geo), x.dtype)


@_x64
def _conv_backward(dy, x, w, stride, padding, dilation, groups, rank: int):
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    geo = _conv_geometry(x, w, stride, padding, dilation, groups, rank)
    grads = _vjp(_conv, (_j(x), _j(w), jnp.zeros(w.shape[0], x.dtype)), dy, **geo)
    return tuple(_np(g, x.dtype) for g in grads)


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """lax.conv_general_dilated with explicit (before, after) padding."""
    return _conv_forward(x, w, b, stride, padding, dilation, groups, 1)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """lax.conv_general_dilated with explicit (before, after) padding."""
    return _conv_forward(x, w, b, stride, padding, dilation, groups, 2)


def conv3d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> np.ndarray:
    """lax.conv_general_dilated with explicit (before, after) padding."""
    return _conv_forward(x, w, b, stride, padding, dilation, groups, 3)


def conv1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of conv1d."""
    return _conv_backward(dy, x, w, stride, padding, dilation, groups, 1)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of conv2d."""
    return _conv_backward(dy, x, w, stride, padding, dilation, groups, 2)


def conv3d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: object = 1,
                    padding: object = 0, dilation: object = 1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of conv3d."""
    return _conv_backward(dy, x, w, stride, padding, dilation, groups, 3)


# -------------------------------------------------------------------- transposed convolution


def _conv_t(x, w, b, *, s, pads, d, groups, rank):
    """pads: the (before, after) padding of the zero-dilated input, d (k - 1) - p (+ extra)."""
    if groups == 1:
        y = lax.conv_transpose(x, w, strides=s, padding=pads, rhs_dilation=d,
                               dimension_numbers=_dims(rank), transpose_kernel=True,
                               precision=_HIGHEST)
    else:  # jax-conv-transpose-no-groups: conv_transpose's own lowering, with groups
        c, cog = w.shape[0], w.shape[1]
        wk = w.reshape(groups, c // groups, cog, *w.shape[2:])
        wk = jnp.swapaxes(wk, 1, 2).reshape(groups * cog, c // groups, *w.shape[2:])
        wk = jnp.flip(wk, axis=tuple(range(2, rank + 2)))
        y = lax.conv_general_dilated(x, wk, window_strides=(1,) * rank, padding=pads,
                                     lhs_dilation=s, rhs_dilation=d,
                                     dimension_numbers=_dims(rank), feature_group_count=groups,
                                     precision=_HIGHEST)
    return y + b.reshape(channel_shape(rank + 2))


def _conv_t_geometry(x, w, stride, padding, output_padding, groups, dilation, rank):
    geo = conv_transpose_args(x.shape, w.shape, rank, stride, padding, output_padding, groups,
                              dilation)
    pads = tuple((dd * (k - 1) - p, dd * (k - 1) - p + e) for k, p, e, dd in
                 zip(geo.kernel, geo.pads, geo.output_padding, geo.dilation, strict=True))
    return {"s": geo.stride, "pads": pads, "d": geo.dilation, "groups": geo.groups,
            "rank": rank}, w.shape[1] * geo.groups


@_x64
def _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, rank: int):
    x, w = float_input(x), float_input(w, "w")
    geo, co = _conv_t_geometry(x, w, stride, padding, output_padding, groups, dilation, rank)
    bias = np.zeros(co, x.dtype) if b is None else float_input(b, "b")
    return _np(_call(_conv_t, _j(x), _j(w), _j(bias), **geo), x.dtype)


@_x64
def _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, rank: int):
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    geo, co = _conv_t_geometry(x, w, stride, padding, output_padding, groups, dilation, rank)
    grads = _vjp(_conv_t, (_j(x), _j(w), jnp.zeros(co, x.dtype)), dy, **geo)
    return tuple(_np(g, x.dtype) for g in grads)


def conv_transpose1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """lax.conv_transpose(transpose_kernel=True) (grouped: see the module docstring)."""
    return _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """lax.conv_transpose(transpose_kernel=True) (grouped: see the module docstring)."""
    return _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: object = 1, padding: object = 0, output_padding: object = 0,
                     groups: int = 1, dilation: object = 1) -> np.ndarray:
    """lax.conv_transpose(transpose_kernel=True) (grouped: see the module docstring)."""
    return _conv_t_forward(x, w, b, stride, padding, output_padding, groups, dilation, 3)


def conv_transpose1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                              stride: object = 1, padding: object = 0,
                              output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of conv_transpose1d."""
    return _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                              stride: object = 1, padding: object = 0,
                              output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of conv_transpose2d."""
    return _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                              stride: object = 1, padding: object = 0,
                              output_padding: object = 0, groups: int = 1,
                              dilation: object = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of conv_transpose3d."""
    return _conv_t_backward(dy, x, w, stride, padding, output_padding, groups, dilation, 3)


# ------------------------------------------------------------------------------ max pooling


def _winner(a, b):
    """The contract's winner of two (value, flat index) pairs; index -1 marks a padded cell.

    A total order, so any reduction order gives the same result: an input cell beats a padded
    one; NaN beats a number and the later NaN beats an earlier one; otherwise the larger value,
    and of equal values (0.0 and -0.0 included) the earlier index.
    """
    (av, ai), (bv, bi) = a, b
    a_nan, b_nan = jnp.isnan(av), jnp.isnan(bv)
    b_better = jnp.where(b_nan, ~a_nan | (bi > ai),
                         ~a_nan & ((bv > av) | ((bv == av) & (bi < ai))))
    take_b = (bi >= 0) & ((ai < 0) | b_better)
    return jnp.where(take_b, bv, av), jnp.where(take_b, bi, ai)


def _plane_index(x) -> jax.Array:
    """The row-major flat offset of every cell inside its plane / volume, x's shape (int64)."""
    spatial = x.shape[2:]
    idx = jnp.arange(math.prod(spatial), dtype=jnp.int64).reshape(spatial)
    return jnp.broadcast_to(idx, x.shape)


def _window(geo) -> dict:
    return {"window_dimensions": (1, 1, *geo["k"]), "window_strides": (1, 1, *geo["s"]),
            "padding": ((0, 0), (0, 0), *geo["pads"]), "window_dilation": (1, 1, *geo["d"])}


def _max_values(x, *, k, s, pads, d):
    """JAX's own max pool: reduce_window(max) with -inf padding."""
    geo = {"k": k, "s": s, "pads": pads, "d": d}
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, **_window(geo))


def _max_with_indices(x, *, k, s, pads, d):
    """(value, index) winners by a variadic reduce_window with the contract's rule."""
    geo = {"k": k, "s": s, "pads": pads, "d": d}
    init = (jnp.array(-jnp.inf, x.dtype), jnp.array(-1, jnp.int64))
    return lax.reduce_window((x, _plane_index(x)), init, _winner, **_window(geo))


def _scatter_winners(dy, idx, *, x_shape):
    """dx: every dy added onto the input cell its window's index names (-1: nowhere)."""
    n, c = x_shape[:2]
    plane = math.prod(x_shape[2:])
    flat = idx.reshape(n, c, -1)
    keep = flat >= 0
    vals = jnp.where(keep, dy.reshape(n, c, -1), 0)
    dx = jnp.zeros((n, c, plane), dy.dtype)
    rows = jnp.arange(n)[:, None, None]
    chans = jnp.arange(c)[None, :, None]
    dx = dx.at[rows, chans, jnp.where(keep, flat, 0)].add(vals)
    return dx.reshape(x_shape)


def _pool_geo(x, rank, kernel_size, stride, padding, dilation, ceil_mode):
    geo = pool_geometry(x.shape, rank, kernel_size, stride, padding, dilation, ceil_mode)
    return geo, {"k": geo.kernel, "s": geo.stride, "pads": geo.floor_pads, "d": geo.dilation}


@_x64
def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, rank: int):
    x = float_input(x)
    _, geo = _pool_geo(x, rank, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices and not np.signbit(x[x == 0]).any():  # jax-maxpool-signed-zero
        return _np(_call(_max_values, _j(x), **geo), x.dtype)
    y, idx = _call(_max_with_indices, _j(x), **geo)
    y = _np(y, x.dtype)
    return (y, np.array(idx, dtype=np.int64)) if return_indices else y


def _native_gradient_differs(x: np.ndarray, geo) -> bool:
    """Where JAX's select_and_scatter gradient is not the contract's: window dilation (no
    VJP), NaN in x, or -inf in x with padding (a padded -inf can take the gradient)."""
    padded = any(b or a for b, a in geo["pads"])
    return (max(geo["d"]) > 1 or bool(np.isnan(x).any())
            or (padded and bool(np.isneginf(x).any())))


@_x64
def _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, rank: int):
    x, dy = float_input(x), float_input(dy, "dy")
    pool, geo = _pool_geo(x, rank, kernel_size, stride, padding, dilation, ceil_mode)
    if dy.shape != (*x.shape[:2], *pool.out):
        raise ValueError(f"dy must have shape {(*x.shape[:2], *pool.out)}, got {dy.shape}")
    if _native_gradient_differs(x, geo):
        _, idx = _call(_max_with_indices, _j(x), **geo)
        return _np(_call(_scatter_winners, _j(dy), idx, x_shape=x.shape), x.dtype)
    (dx,) = _vjp(_max_values, (_j(x),), dy, **geo)
    return _np(dx, x.dtype)


def max_pool1d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """lax.reduce_window(max); indices composed (variadic reduce_window)."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """lax.reduce_window(max); indices composed (variadic reduce_window)."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool3d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """lax.reduce_window(max); indices composed (variadic reduce_window)."""
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def max_pool1d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """jax.vjp of reduce_window(max) (composed where JAX's differs: module docstring)."""
    return _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """jax.vjp of reduce_window(max) (composed where JAX's differs: module docstring)."""
    return _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, 2)


def max_pool3d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, dilation: object = 1,
                        ceil_mode: bool = False) -> np.ndarray:
    """jax.vjp of reduce_window(max) (composed where JAX's differs: module docstring)."""
    return _max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode, 3)


# ---------------------------------------------------------------------- average, LP pooling


def _window_sums(x, *, k, s, pads):
    geo = {"k": k, "s": s, "pads": pads, "d": (1,) * len(k)}
    return lax.reduce_window(x, np.array(0, x.dtype), lax.add, **_window(geo))


def _averages(x, div, *, k, s, pads):
    return _window_sums(x, k=k, s=s, pads=pads) / div


def _avg_setup(x, rank, kernel_size, stride, padding, ceil_mode, count_include_pad,
               divisor_override):
    geo = avg_pool_geometry(x.shape, rank, kernel_size, stride, padding, ceil_mode)
    div = avg_divisors(geo, bool(count_include_pad), divisor_override)
    return {"k": geo.kernel, "s": geo.stride, "pads": geo.floor_pads}, div.astype(x.dtype)


@_x64
def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              rank: int) -> np.ndarray:
    x = float_input(x)
    geo, div = _avg_setup(x, rank, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)
    return _np(_call(_averages, _j(x), _j(div), **geo), x.dtype)


@_x64
def _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, rank: int) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    geo, div = _avg_setup(x, rank, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)
    (dx,) = _vjp(_averages, (_j(x),), dy, (_j(div),), **geo)
    return _np(dx, x.dtype)


def avg_pool1d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """reduce_window(add) window sums / the contract's divisor."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 1)


def avg_pool2d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """reduce_window(add) window sums / the contract's divisor."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def avg_pool3d(x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    """reduce_window(add) window sums / the contract's divisor."""
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3)


def avg_pool1d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """jax.vjp of avg_pool1d."""
    return _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, 1)


def avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """jax.vjp of avg_pool2d."""
    return _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, 2)


def avg_pool3d_backward(dy: np.ndarray, x: np.ndarray, kernel_size: object, stride: object = None,
                        padding: object = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    """jax.vjp of avg_pool3d."""
    return _avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, 3)


def _lp(v, scale, *, p, k, s, pads):
    a = _window_sums(jnp.power(v, jnp.asarray(p, v.dtype)), k=k, s=s, pads=pads) * scale
    dead = a == 0  # a zero-sum window gives 0 and passes no gradient
    return jnp.where(dead, 0, jnp.power(jnp.where(dead, 1, a), jnp.asarray(1 / p, v.dtype)))


def _lp_setup(x, rank, norm_type, kernel_size, stride, ceil_mode):
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(x.shape, rank, kernel_size, stride, ceil_mode)
    scale = (math.prod(geo.kernel) / avg_divisors(geo, True, None)).astype(x.dtype)
    return _j(scale), {"p": float(p), "k": geo.kernel, "s": geo.stride, "pads": geo.floor_pads}


@_x64
def _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, rank: int) -> np.ndarray:
    x = float_input(x)
    scale, static = _lp_setup(x, rank, norm_type, kernel_size, stride, ceil_mode)
    return _np(_call(_lp, _j(x), scale, **static), x.dtype)


@_x64
def _lp_pool_backward(dy, x, norm_type, kernel_size, stride, ceil_mode, rank: int) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    scale, static = _lp_setup(x, rank, norm_type, kernel_size, stride, ceil_mode)
    (dx,) = _vjp(_lp, (_j(x),), dy, (scale,), **static)
    return _np(dx, x.dtype)


def lp_pool1d(x: np.ndarray, norm_type: float, kernel_size: object, stride: object = None,
              ceil_mode: bool = False) -> np.ndarray:
    """(K / count * reduce_window(add) of x ** p) ** (1 / p)."""
    return _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(x: np.ndarray, norm_type: float, kernel_size: object, stride: object = None,
              ceil_mode: bool = False) -> np.ndarray:
    """(K / count * reduce_window(add) of x ** p) ** (1 / p)."""
    return _lp_pool(x, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool1d_backward(dy: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: object,
                       stride: object = None, ceil_mode: bool = False) -> np.ndarray:
    """jax.vjp of lp_pool1d."""
    return _lp_pool_backward(dy, x, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d_backward(dy: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: object,
                       stride: object = None, ceil_mode: bool = False) -> np.ndarray:
    """jax.vjp of lp_pool2d."""
    return _lp_pool_backward(dy, x, norm_type, kernel_size, stride, ceil_mode, 2)


# ------------------------------------------------------------------------- adaptive pooling


def _adaptive_avg(v, *, bins):
    for axis, axis_bins in enumerate(bins, start=2):
        v = jnp.stack([jnp.sum(lax.slice_in_dim(v, s, e, axis=axis), axis=axis) / (e - s)
                       for s, e in axis_bins], axis=axis)
    return v


def _adaptive_max_pairs(x, *, bins):
    """(value, index) winners of every bin, axis by axis (the winner order is total, so the
    per-axis reduction picks the contract's winner of the whole bin)."""
    v, i = x, _plane_index(x)
    init = (jnp.array(-jnp.inf, x.dtype), jnp.array(-1, jnp.int64))
    for axis, axis_bins in enumerate(bins, start=2):
        parts = [lax.reduce((lax.slice_in_dim(v, s, e, axis=axis),
                             lax.slice_in_dim(i, s, e, axis=axis)), init, _winner, (axis,))
                 for s, e in axis_bins]
        v = jnp.stack([p[0] for p in parts], axis=axis)
        i = jnp.stack([p[1] for p in parts], axis=axis)
    return v, i


def _adaptive_bins(x, rank, output_size):
    out, bins = adaptive_bins(x.shape, rank, output_size)
    return out, tuple(tuple((int(s), int(e)) for s, e in axis_bins) for axis_bins in bins)


@_x64
def _adaptive_forward(kind: str, x, output_size, rank: int, return_indices: object = False):
    x = float_input(x)
    _, bins = _adaptive_bins(x, rank, output_size)
    if kind == "avg":
        return _np(_call(_adaptive_avg, _j(x), bins=bins), x.dtype)
    y, idx = _call(_adaptive_max_pairs, _j(x), bins=bins)
    return (_np(y, x.dtype), np.array(idx, dtype=np.int64)) if return_indices else \
        _np(y, x.dtype)


@_x64
def _adaptive_backward(kind: str, dy, x, output_size, rank: int) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    out, bins = _adaptive_bins(x, rank, output_size)
    if dy.shape != (*x.shape[:2], *out):
        raise ValueError(f"dy must have shape {(*x.shape[:2], *out)}, got {dy.shape}")
    if kind == "avg":
        (dx,) = _vjp(_adaptive_avg, (_j(x),), dy, bins=bins)
        return _np(dx, x.dtype)
    _, idx = _call(_adaptive_max_pairs, _j(x), bins=bins)  # jax-reduce-max-splits-ties
    return _np(_call(_scatter_winners, _j(dy), idx, x_shape=x.shape), x.dtype)


def adaptive_avg_pool1d(x: np.ndarray, output_size: object) -> np.ndarray:
    """jnp.sum of every bin's slice / its length."""
    return _adaptive_forward("avg", x, output_size, 1)


def adaptive_avg_pool1d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """jax.vjp of adaptive_avg_pool1d."""
    return _adaptive_backward("avg", dy, x, output_size, 1)


def adaptive_max_pool1d(x: np.ndarray, output_size: object, return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Variadic lax.reduce of (value, index) over every bin."""
    return _adaptive_forward("max", x, output_size, 1, return_indices)


def adaptive_max_pool1d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """dy scattered onto the winners (.at[].add)."""
    return _adaptive_backward("max", dy, x, output_size, 1)


def adaptive_avg_pool2d(x: np.ndarray, output_size: object) -> np.ndarray:
    """jnp.sum of every bin's slice / its length, axis by axis."""
    return _adaptive_forward("avg", x, output_size, 2)


def adaptive_avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """jax.vjp of adaptive_avg_pool2d."""
    return _adaptive_backward("avg", dy, x, output_size, 2)


def adaptive_max_pool2d(x: np.ndarray, output_size: object, return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Variadic lax.reduce of (value, index) over every bin, axis by axis."""
    return _adaptive_forward("max", x, output_size, 2, return_indices)


def adaptive_max_pool2d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """dy scattered onto the winners (.at[].add)."""
    return _adaptive_backward("max", dy, x, output_size, 2)


def adaptive_avg_pool3d(x: np.ndarray, output_size: object) -> np.ndarray:
    """jnp.sum of every bin's slice / its length, axis by axis."""
    return _adaptive_forward("avg", x, output_size, 3)


def adaptive_avg_pool3d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """jax.vjp of adaptive_avg_pool3d."""
    return _adaptive_backward("avg", dy, x, output_size, 3)


def adaptive_max_pool3d(x: np.ndarray, output_size: object, return_indices: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Variadic lax.reduce of (value, index) over every bin, axis by axis."""
    return _adaptive_forward("max", x, output_size, 3, return_indices)


def adaptive_max_pool3d_backward(dy: np.ndarray, x: np.ndarray, output_size: object
                                 ) -> np.ndarray:
    """dy scattered onto the winners (.at[].add)."""
    return _adaptive_backward("max", dy, x, output_size, 3)


# ------------------------------------------------------------------------------- batch norm


def _bn(v, g, b, rm, rv, *, training: bool, eps: float, momentum: float, bessel: float):
    """(y, new running mean, new running var); eval mode normalises with rm, rv."""
    shape, axes = channel_shape(v.ndim), bn_axes(v.ndim)
    if training:  # two-pass biased variance (jnp.var centres first)
        mean, var = jnp.mean(v, axis=axes), jnp.var(v, axis=axes)
    else:
        mean, var = rm, rv
    inv = g.reshape(shape) / jnp.sqrt(var.reshape(shape) + jnp.asarray(eps, v.dtype))
    y = (v - mean.reshape(shape)) * inv + b.reshape(shape)
    mom = jnp.asarray(momentum, v.dtype)
    return (y, (1 - mom) * rm + mom * mean,
            (1 - mom) * rv + mom * var * jnp.asarray(bessel, v.dtype))


def _bn_y(v, g, b, rm, rv, **static):
    return _bn(v, g, b, rm, rv, **static)[0]


def _bn_params(x: np.ndarray, gamma, beta):
    c = x.shape[1]
    g = np.ones(c, x.dtype) if gamma is None else float_input(gamma, "gamma")
    b = np.zeros(c, x.dtype) if beta is None else float_input(beta, "beta")
    return _j(g), _j(b)


def _stats(x: np.ndarray, running_mean, running_var) -> tuple[jax.Array, jax.Array]:
    """The running statistics as arrays (placeholders when there are none: training only)."""
    c = x.shape[1]
    rm = np.zeros(c, x.dtype) if running_mean is None else running_mean
    rv = np.ones(c, x.dtype) if running_var is None else running_var
    return _j(np.asarray(rm, x.dtype)), _j(np.asarray(rv, x.dtype))


@_x64
def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
               training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """jnp.mean / jnp.var composition (JAX has no batch norm); running stats per contract."""
    x = float_input(x)
    m = bn_check(x, running_mean, running_var, training)
    g, b = _bn_params(x, gamma, beta)
    rm, rv = _stats(x, running_mean, running_var)
    y, new_mean, new_var = _call(_bn, _j(x), g, b, rm, rv, training=bool(training),
                                 eps=float(eps), momentum=float(momentum),
                                 bessel=m / (m - 1) if m > 1 else math.inf)
    if not training or running_mean is None:
        return _np(y, x.dtype)
    return _np(y, x.dtype), _np(new_mean, x.dtype), _np(new_var, x.dtype)


@_x64
def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None,
                        eps: float = 1e-5, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None,
                        training: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) by jax.vjp; eval mode treats the running stats as constants."""
    x, dy = float_input(x), float_input(dy, "dy")
    bn_check(x, running_mean, running_var, training)
    same_shape_dy(dy, x)
    g, b = _bn_params(x, gamma, None)
    grads = _vjp(_bn_y, (_j(x), g, b), dy, _stats(x, running_mean, running_var),
                 training=bool(training), eps=float(eps), momentum=0.0, bessel=1.0)
    return tuple(_np(t, x.dtype) for t in grads)


# ----------------------------------------------------------------- activations, dense layer


def _relu(v):
    return jnp.where(v == 0, v, jax.nn.relu(v))  # jax-relu-negative-zero


def _elu(v, *, alpha: float):
    return jax.nn.elu(v, alpha=jnp.asarray(alpha, v.dtype))


@_x64
def _activation(fn, x: np.ndarray, **static) -> np.ndarray:
    x = float_input(x)
    return _np(_call(fn, _j(x), **static), x.dtype)


@_x64
def _activation_backward(fn, dy: np.ndarray, x: np.ndarray, **static) -> np.ndarray:
    x, dy = float_input(x), float_input(dy, "dy")
    same_shape_dy(dy, x)
    (dx,) = _vjp(fn, (_j(x),), dy, **static)
    return _np(dx, x.dtype)


def relu(x: np.ndarray) -> np.ndarray:
    """jax.nn.relu (x kept where x == 0: the sign of -0.0)."""
    return _activation(_relu, x)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """jax.vjp of jax.nn.relu, NaN where x is NaN or a non-finite dy meets slope 0."""
    dx = _activation_backward(jax.nn.relu, dy, x)
    return product_nans(dx, np.asarray(dy), np.asarray(x), np.asarray(x) <= 0)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """jax.nn.elu(x, alpha)."""
    return _activation(_elu, x, alpha=check_alpha(alpha))


def elu_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """jax.vjp of jax.nn.elu, NaN where x is NaN."""
    dx = _activation_backward(_elu, dy, x, alpha=check_alpha(alpha))
    return product_nans(dx, np.asarray(dy), np.asarray(x))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """jax.nn.sigmoid."""
    return _activation(jax.nn.sigmoid, x)


def _saturated_sigmoid_grad(dy, x):
    e = jnp.exp(-jnp.abs(x))
    return dy * (e / (1 + e) ** 2)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """jax.vjp of jax.nn.sigmoid (dy * y * (1 - y)); where dy is infinite, dy * e / (1 + e)^2
    with e = jnp.exp(-|x|), the contract's sigmoid(x) * sigmoid(-x) (sigmoid-saturated-gradient:
    1 - y is exactly 0 once y rounds to 1, and inf * 0 is NaN)."""
    dx = _activation_backward(jax.nn.sigmoid, dy, x)
    infinite = np.isinf(np.asarray(dy))
    if infinite.any():
        with jax.enable_x64(True):
            composed = _call(_saturated_sigmoid_grad, _j(np.asarray(dy, dx.dtype)),
                             _j(np.asarray(x, dx.dtype)))
        dx = np.where(infinite, _np(composed, dx.dtype), dx)
    return dx


def _linear(v, k, *c):
    """v @ k.T, plus the bias c when one is given."""
    y = jnp.tensordot(v, k, axes=((v.ndim - 1,), (1,)), precision=_HIGHEST)
    return y + c[0] if c else y


@_x64
def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """jnp.tensordot(x, w, ((-1,), (1,))) + b (precision HIGHEST)."""
    x, w = float_input(x), float_input(w, "w")
    b = None if b is None else float_input(b, "b")
    linear_check(x, w, b)
    return _np(_call(_linear, _j(x), _j(w), *(() if b is None else (_j(b),))), x.dtype)


@_x64
def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by jax.vjp of the tensordot with a zero bias."""
    x, w, dy = float_input(x), float_input(w, "w"), float_input(dy, "dy")
    linear_check(x, w, dy=dy)
    grads = _vjp(_linear, (_j(x), _j(w), jnp.zeros(w.shape[0], x.dtype)), dy)
    return tuple(_np(t, x.dtype) for t in grads)

