"""The nnref contract on JAX (jax.lax, jax.numpy, jax.nn; CPU), at spatial ranks 1, 2 and 3.

The adapter is a table over the op records (``table.py``): :data:`TABLE` holds one
:class:`~conformance.backends.table.Row` per record, and ``contract_functions`` turns it into the
contract's module-level functions (``conv1d``, ..., ``pad_backward``) with nnref's signatures.
An op family's forward is a *prepare* function ``_prepare_<op>(rank, **contract arguments)``:
it checks the arguments and returns a :class:`_Prepared`, the rank-generic JAX function of the
family, its array arguments (NumPy, by contract name: the record's ``differentiable`` inputs
first, in their order, then constants such as divisors) and its static geometry. ``_run`` runs
it; ``_autodiff`` turns it into the ``_backward`` contract with ``jax.vjp`` (the forward call from
``record.case_type.gradient_call``: a missing bias or gamma is filled in; the first output is
y, which dy must match). A row has its own backward only where JAX's gradient needs the
contract's corrections (listed below).

Every call is one jitted XLA computation, the geometry as static arguments (one compilation per
shape and configuration, about 40 ms here: op by op eager dispatch compiles every primitive
separately and is several times slower), on the adapter's own copy of the inputs; a gradient is
``jax.vjp`` of the same function with the suite's upstream gradient, forward and pullback jitted
together. Compiled executables are dropped every _CACHE_LIMIT shapes (a suite run meets
thousands of shapes, each kept alive otherwise). float64 needs ``jax_enable_x64``: every call
runs inside ``jax.enable_x64(True)`` (a context manager), so the flag never leaks into the
caller or other tests; float32 inputs stay float32. Results are NumPy: floats in x's dtype,
indices int64.

Conventions handled here (see conformance/divergences.toml):
- Layouts are given to lax explicitly: ("NCW", "OIW", "NCW") and the 2-D / 3-D analogues, so
  the contract's (N, C, *S) and (Co, C / G, *k) go straight in. Padding is always explicit
  (before, after) pairs, asymmetric included ("same" resolved by the contract formula).
- Padding: jnp.pad with NumPy's mode names (reflect, edge, wrap); pad_backward, which has no x,
  differentiates jnp.pad at zeros of the unpadded shape.
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
  jax-standardize-one-pass-variance), running statistics with the contract's convention; in
  eval mode the gradient treats the running statistics as constants. Layer, group and instance
  norm, which JAX lacks as well, are composed the same way over their own statistics axes
  (the trailing normalized_shape axes; each sample's (N, G, -1) rows; each (n, c)); instance
  norm's running statistics take the mean over N of each instance's mean and unbiased variance.
- Activations: jax.nn.relu (x kept where x == 0: jnp.maximum(-0.0, 0) is +0.0,
  jax-relu-negative-zero), jax.nn.elu(alpha), jax.nn.sigmoid; linear is jnp.tensordot + b.
  JAX's relu gradient is 0 at NaN (activation-gradient-at-nan): product_nans puts the contract's
  NaN there; against an infinite dy the sigmoid derivative is composed from jnp.exp
  (sigmoid-saturated-gradient).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from conformance import ops
from conformance.backends import backend
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
    instance_norm_check,
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
    norm_affine,
    norm_groups,
    norm_real,
    normalized_axes,
    pad_pairs,
    pool_geometry,
    product_nans,
    spatial_rank,
    unpadded_shape,
)
from conformance.backends.table import LowPrecision, Row, contract_functions
from conformance.ops import OpRecord

NAME = "jax"


def device_report() -> str:
    """One line for the run summary: the device JAX computes on (its default; JAX_PLATFORMS
    chooses), and whether a GPU is present."""
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    return (f"jax device: {jax.devices()[0]} (gpu: "
            f"{f'{len(gpus)} device(s)' if gpus else 'absent'})")
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


# ------------------------------------------------------------------ running a prepared forward


@dataclass(frozen=True)
class _Prepared:
    """One forward call, ready to run as ``fn(*arrays.values(), **static)``.

    ``fn``: a module-level JAX function (part of the compilation cache key) returning y, or a
    tuple whose first entry is y; ``arrays``: its array arguments (NumPy) by contract name, the
    record's differentiable inputs first in their order, then constants; ``static``: hashable
    geometry; ``outputs``: how many of fn's outputs the contract call returns.
    """

    fn: Callable[..., Any]
    arrays: dict[str, np.ndarray]
    static: dict[str, Any] = field(default_factory=dict)
    outputs: int = 1


def _first(out: Any) -> Any:
    """y: the output itself, or the first of a tuple of outputs."""
    return out[0] if isinstance(out, tuple) else out


def _static_key(static: dict[str, Any]) -> tuple:
    return tuple(sorted(static.items()))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply_jit(fn, static: tuple, *arrays):
    return fn(*arrays, **dict(static))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _pullback_jit(fn, static: tuple, primals: tuple, consts: tuple, dy):
    def y_of(*p):
        return _first(fn(*p, *consts, **dict(static)))

    _, pullback = jax.vjp(y_of, *primals)
    return pullback(dy)


def _bound_cache() -> None:
    if _apply_jit._cache_size() + _pullback_jit._cache_size() > _CACHE_LIMIT:
        jax.clear_caches()


def _call(fn, *arrays, **static):
    """fn(*arrays, **static) as one jitted computation (static: hashable compile-time values)."""
    _bound_cache()
    return _apply_jit(fn, _static_key(static), *arrays)


def _j(a: np.ndarray) -> jax.Array:
    """A JAX copy of `a` in its own dtype (the adapter never shares or mutates inputs)."""
    return jnp.array(np.array(a, copy=True))


def _np(t: jax.Array, dtype: np.dtype) -> np.ndarray:
    """A NumPy copy of `t`: in `dtype` if it holds floats, int64 if it holds indices."""
    out = np.int64 if jnp.issubdtype(t.dtype, jnp.integer) else dtype
    return np.array(t, dtype=out, copy=True)


def _y_spec(prepared: _Prepared, dy: np.ndarray) -> jax.ShapeDtypeStruct:
    """y's shape and dtype (no computation); ValueError unless dy has y's shape."""
    out = jax.eval_shape(functools.partial(prepared.fn, **prepared.static),
                         *prepared.arrays.values())
    y = _first(out)
    if tuple(y.shape) != dy.shape:
        raise ValueError(f"dy must have shape {tuple(y.shape)}, got {dy.shape}")
    return y


@_x64
def _run(forward: Callable[..., _Prepared], rank: int | None,
         arguments: dict[str, Any]) -> np.ndarray | tuple[np.ndarray, ...]:
    """The contract's forward: ``forward(rank, **arguments)`` prepared, run as one jitted
    computation on private copies, its first ``outputs`` results as NumPy in x's dtype."""
    prepared = forward(rank, **arguments)
    out = _call(prepared.fn, *map(_j, prepared.arrays.values()), **prepared.static)
    outs = out if isinstance(out, tuple) else (out,)
    dtype = np.asarray(arguments["x"]).dtype
    results = tuple(_np(t, dtype) for t in outs[:prepared.outputs])
    return results[0] if prepared.outputs == 1 else results


@_x64
def _autodiff(record: OpRecord, forward: Callable[..., _Prepared], rank: int | None,
              arguments: dict[str, Any]) -> np.ndarray | tuple[np.ndarray, ...]:
    """The contract's backward by jax.vjp: the cotangents of the record's differentiable inputs
    (in the order of its backward_outputs) of y = the first output of the forward call
    ``gradient_call(arguments)`` asks for, for the upstream gradient dy (y's shape, else
    ValueError). One array when the record has one gradient, else a tuple."""
    case = record.case_type
    dy = np.asarray(arguments["dy"])
    dtype = np.asarray(arguments["x" if "x" in arguments else "dy"]).dtype
    prepared = forward(rank, **case.gradient_call(arguments))
    y = _y_spec(prepared, dy)
    names = case.differentiable
    if tuple(prepared.arrays)[:len(names)] != names:
        raise TypeError(f"{forward.__name__} must list {names} first, got {tuple(prepared.arrays)}")
    arrays = tuple(map(_j, prepared.arrays.values()))
    _bound_cache()
    grads = _pullback_jit(prepared.fn, _static_key(prepared.static), arrays[:len(names)],
                          arrays[len(names):], _j(np.asarray(dy, y.dtype)))
    out = tuple(_np(g, dtype) for g in grads)
    return out[0] if len(case.backward_outputs) == 1 else out


def _dims(rank: int) -> tuple[str, str, str]:
    s = _SPATIAL[rank]
    return (f"NC{s}", f"OI{s}", f"NC{s}")


# ----------------------------------------------------------------------------------- padding


def _jnp_pad(x: jax.Array, *, pads, mode: str, value: float) -> jax.Array:
    widths = ((0, 0), (0, 0), *pads)
    if mode == "constant":
        return jnp.pad(x, widths, mode="constant", constant_values=jnp.asarray(value, x.dtype))
    return jnp.pad(x, widths, mode=_JNP_MODES[mode])


def _prepare_pad(rank: int | None, x: np.ndarray, pad_width: object, mode: str = "constant",
                 value: float = 0.0) -> _Prepared:
    pads = pad_pairs(pad_width, spatial_rank(x.shape), "pad_width")
    check_pad(x.shape, pads, mode)
    return _Prepared(_jnp_pad, {"x": x}, {"pads": pads, "mode": mode, "value": float(value)})


def _pad_backward(rank: int | None, dy: np.ndarray, pad_width: object,
                  mode: str = "constant") -> np.ndarray:
    """jax.vjp of jnp.pad at zeros of x's shape (x's shape comes from dy's)."""
    pads = pad_pairs(pad_width, spatial_rank(dy.shape, "dy"), "pad_width")
    x = np.zeros(unpadded_shape(dy.shape, pads, pad_width), dy.dtype)
    return _autodiff(ops.record("pad"), _prepare_pad, rank,
                     {"dy": dy, "x": x, "pad_width": pad_width, "mode": mode})


# ------------------------------------------------------------------------------- convolution


def _conv(x, w, b, *, s, pads, d, groups, rank):
    reach = [di * (k - 1) for di, k in zip(d, w.shape[2:], strict=True)]
    if any(max(p) > r for p, r in zip(pads, reach, strict=True)):
        # jax-cpu-conv-overpadded-gradient-garbage: a padding beyond the dilated kernel's reach
        # gives a float32 input gradient of garbage; padded by jnp.pad, the conv is VALID.
        x = jnp.pad(x, [(0, 0), (0, 0), *pads])
        pads = [(0, 0)] * rank
    y = lax.conv_general_dilated(x, w, window_strides=s, padding=pads, rhs_dilation=d,
                                 dimension_numbers=_dims(rank), feature_group_count=groups,
                                 precision=_HIGHEST)
    return y + b.reshape(channel_shape(rank + 2))


def _prepare_conv(rank: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                  stride: object = 1, padding: object = 0, dilation: object = 1,
                  groups: int = 1) -> _Prepared:
    _, s, pads, d = conv_args(x.shape, w.shape, rank, stride, padding, dilation, groups)
    bias = np.zeros(w.shape[0], x.dtype) if b is None else b
    return _Prepared(_conv, {"x": x, "w": w, "b": bias},
                     {"s": s, "pads": pads, "d": d, "groups": int(groups), "rank": rank})


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


def _prepare_conv_transpose(rank: int, x: np.ndarray, w: np.ndarray,
                            b: np.ndarray | None = None, stride: object = 1,
                            padding: object = 0, output_padding: object = 0, groups: int = 1,
                            dilation: object = 1) -> _Prepared:
    geo = conv_transpose_args(x.shape, w.shape, rank, stride, padding, output_padding, groups,
                              dilation)
    pads = tuple((dd * (k - 1) - p, dd * (k - 1) - p + e) for k, p, e, dd in
                 zip(geo.kernel, geo.pads, geo.output_padding, geo.dilation, strict=True))
    bias = np.zeros(w.shape[1] * geo.groups, x.dtype) if b is None else b
    return _Prepared(_conv_t, {"x": x, "w": w, "b": bias},
                     {"s": geo.stride, "pads": pads, "d": geo.dilation, "groups": geo.groups,
                      "rank": rank})


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


def _prepare_max_pool_values(rank: int, x: np.ndarray, kernel_size: object,
                             stride: object = None, padding: object = 0, dilation: object = 1,
                             ceil_mode: bool = False) -> _Prepared:
    """JAX's own max pool (reduce_window max): the function its gradient is taken of."""
    geo = pool_geometry(x.shape, rank, kernel_size, stride, padding, dilation, ceil_mode)
    return _Prepared(_max_values, {"x": x},
                     {"k": geo.kernel, "s": geo.stride, "pads": geo.floor_pads,
                      "d": geo.dilation})


def _prepare_max_pool(rank: int, x: np.ndarray, kernel_size: object, stride: object = None,
                      padding: object = 0, dilation: object = 1, ceil_mode: bool = False,
                      return_indices: bool = False) -> _Prepared:
    values = _prepare_max_pool_values(rank, x, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices and not np.signbit(x[x == 0]).any():  # jax-maxpool-signed-zero
        return values
    return _Prepared(_max_with_indices, values.arrays, values.static,
                     outputs=2 if return_indices else 1)


def _native_gradient_differs(x: np.ndarray, geo: dict[str, Any]) -> bool:
    """Where JAX's select_and_scatter gradient is not the contract's: window dilation (no
    VJP), NaN in x, or -inf in x with padding (a padded -inf can take the gradient)."""
    padded = any(b or a for b, a in geo["pads"])
    return (max(geo["d"]) > 1 or bool(np.isnan(x).any())
            or (padded and bool(np.isneginf(x).any())))


@_x64
def _max_pool_backward(rank: int, dy: np.ndarray, x: np.ndarray,
                       **params: Any) -> np.ndarray:
    """jax.vjp of reduce_window(max); dy scattered onto the composed winners where JAX's
    gradient is not the contract's (module docstring)."""
    values = _prepare_max_pool_values(rank, x, **params)
    if not _native_gradient_differs(x, values.static):
        return _autodiff(ops.record("max_pool"), _prepare_max_pool_values, rank,
                         {"dy": dy, "x": x, **params})
    _y_spec(values, dy)
    _, idx = _call(_max_with_indices, _j(x), **values.static)
    return _np(_call(_scatter_winners, _j(dy), idx, x_shape=x.shape), x.dtype)


# ---------------------------------------------------------------------- average, LP pooling


def _window_sums(x, *, k, s, pads):
    geo = {"k": k, "s": s, "pads": pads, "d": (1,) * len(k)}
    return lax.reduce_window(x, np.array(0, x.dtype), lax.add, **_window(geo))


def _averages(x, div, *, k, s, pads):
    return _window_sums(x, k=k, s=s, pads=pads) / div


def _prepare_avg_pool(rank: int, x: np.ndarray, kernel_size: object, stride: object = None,
                      padding: object = 0, ceil_mode: bool = False,
                      count_include_pad: bool = True,
                      divisor_override: int | None = None) -> _Prepared:
    geo = avg_pool_geometry(x.shape, rank, kernel_size, stride, padding, ceil_mode)
    div = avg_divisors(geo, bool(count_include_pad), divisor_override)
    return _Prepared(_averages, {"x": x, "divisor": div.astype(x.dtype)},
                     {"k": geo.kernel, "s": geo.stride, "pads": geo.floor_pads})


def _lp(v, scale, *, p, k, s, pads):
    a = _window_sums(jnp.power(v, jnp.asarray(p, v.dtype)), k=k, s=s, pads=pads) * scale
    dead = a == 0  # a zero-sum window gives 0 and passes no gradient
    return jnp.where(dead, 0, jnp.power(jnp.where(dead, 1, a), jnp.asarray(1 / p, v.dtype)))


def _prepare_lp_pool(rank: int, x: np.ndarray, norm_type: float, kernel_size: object,
                     stride: object = None, ceil_mode: bool = False) -> _Prepared:
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(x.shape, rank, kernel_size, stride, ceil_mode)
    scale = (math.prod(geo.kernel) / avg_divisors(geo, True, None)).astype(x.dtype)
    return _Prepared(_lp, {"x": x, "scale": scale},
                     {"p": float(p), "k": geo.kernel, "s": geo.stride, "pads": geo.floor_pads})


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


def _adaptive_bins(x: np.ndarray, rank: int, output_size: object) -> tuple:
    _, bins = adaptive_bins(x.shape, rank, output_size)
    return tuple(tuple((int(s), int(e)) for s, e in axis_bins) for axis_bins in bins)


def _prepare_adaptive_avg_pool(rank: int, x: np.ndarray, output_size: object) -> _Prepared:
    return _Prepared(_adaptive_avg, {"x": x}, {"bins": _adaptive_bins(x, rank, output_size)})


def _prepare_adaptive_max_pool(rank: int, x: np.ndarray, output_size: object,
                               return_indices: bool = False) -> _Prepared:
    return _Prepared(_adaptive_max_pairs, {"x": x},
                     {"bins": _adaptive_bins(x, rank, output_size)},
                     outputs=2 if return_indices else 1)


@_x64
def _adaptive_max_pool_backward(rank: int, dy: np.ndarray, x: np.ndarray,
                                output_size: object) -> np.ndarray:
    """dy scattered onto the composed winners (jax-reduce-max-splits-ties)."""
    prepared = _prepare_adaptive_max_pool(rank, x, output_size)
    _y_spec(prepared, dy)
    _, idx = _call(prepared.fn, _j(x), **prepared.static)
    return _np(_call(_scatter_winners, _j(dy), idx, x_shape=x.shape), x.dtype)


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


def _prepare_batch_norm(rank: int | None, x: np.ndarray, gamma: np.ndarray | None,
                        beta: np.ndarray | None, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None, training: bool = True,
                        momentum: float = 0.1, eps: float = 1e-5) -> _Prepared:
    """The running statistics are placeholders when there are none (training only)."""
    m = bn_check(x, running_mean, running_var, training)
    c = x.shape[1]
    arrays = {
        "x": x,
        "gamma": np.ones(c, x.dtype) if gamma is None else gamma,
        "beta": np.zeros(c, x.dtype) if beta is None else beta,
        "running_mean": np.asarray(np.zeros(c) if running_mean is None else running_mean,
                                   x.dtype),
        "running_var": np.asarray(np.ones(c) if running_var is None else running_var, x.dtype),
    }
    static = {"training": bool(training), "eps": float(eps), "momentum": float(momentum),
              "bessel": m / (m - 1) if m > 1 else math.inf}
    return _Prepared(_bn, arrays, static,
                     outputs=3 if training and running_mean is not None else 1)


# ------------------------------------------------------------- layer, group, instance norm
# JAX has none of them (jax-no-batch-norm): each is composed from jnp.mean and jnp.var,
# two-pass (jax-standardize-one-pass-variance), gradients by jax.vjp of the composition.


def _standardise(v, eps: float, axes: tuple[int, ...]):
    """(v - mean) / sqrt(var + eps) over `axes`, the biased variance centred first."""
    mean = jnp.mean(v, axis=axes, keepdims=True)
    var = jnp.var(v, axis=axes, keepdims=True)
    return (v - mean) / jnp.sqrt(var + jnp.asarray(eps, v.dtype))


def _ln(v, g, b, *, axes: tuple[int, ...], eps: float):
    """Layer norm over the trailing `axes`; g, b have their shape (broadcast from the end)."""
    return _standardise(v, eps, axes) * g + b


def _prepare_layer_norm(rank: int | None, x: np.ndarray, normalized_shape: object,
                        gamma: np.ndarray | None = None, beta: np.ndarray | None = None,
                        eps: float = 1e-5) -> _Prepared:
    shape = normalized_axes(x.shape, normalized_shape)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    norm_affine(gamma, "gamma", shape, x)
    norm_affine(beta, "beta", shape, x)
    return _Prepared(_ln, {"x": x,
                           "gamma": np.ones(shape, x.dtype) if gamma is None else gamma,
                           "beta": np.zeros(shape, x.dtype) if beta is None else beta},
                     {"axes": axes, "eps": norm_real(eps, "eps", 0.0, math.inf)})


def _gn(v, g, b, *, groups: int, eps: float):
    """Group norm: the (N, groups, C / groups * prod(S)) rows standardised, then per channel."""
    rows = v.reshape(v.shape[0], groups, -1)
    xhat = _standardise(rows, eps, (2,)).reshape(v.shape)
    shape = channel_shape(v.ndim)
    return xhat * g.reshape(shape) + b.reshape(shape)


def _prepare_group_norm(rank: int | None, x: np.ndarray, num_groups: object,
                        gamma: np.ndarray | None = None, beta: np.ndarray | None = None,
                        eps: float = 1e-5) -> _Prepared:
    groups = norm_groups(x, num_groups)
    c = x.shape[1]
    norm_affine(gamma, "gamma", (c,), x)
    norm_affine(beta, "beta", (c,), x)
    return _Prepared(_gn, {"x": x,
                           "gamma": np.ones(c, x.dtype) if gamma is None else gamma,
                           "beta": np.zeros(c, x.dtype) if beta is None else beta},
                     {"groups": groups, "eps": norm_real(eps, "eps", 0.0, math.inf)})


def _in(v, g, b, rm, rv, *, training: bool, eps: float, momentum: float, bessel: float):
    """(y, new running mean, new running var) of instance norm; eval mode normalises with rm,
    rv. The running statistics take the mean over N of each instance's mean and unbiased
    variance (var * bessel)."""
    shape, axes = channel_shape(v.ndim), tuple(range(2, v.ndim))
    if training:  # two-pass biased variance per instance, (N, C, 1, ...)
        mean, var = jnp.mean(v, axis=axes, keepdims=True), jnp.var(v, axis=axes, keepdims=True)
    else:
        mean, var = rm.reshape(shape), rv.reshape(shape)
    inv = g.reshape(shape) / jnp.sqrt(var + jnp.asarray(eps, v.dtype))
    y = (v - mean) * inv + b.reshape(shape)
    if not training:
        return y, rm, rv
    mom = jnp.asarray(momentum, v.dtype)
    batch_mean = jnp.mean(mean.reshape(v.shape[:2]), axis=0)
    batch_var = jnp.mean(var.reshape(v.shape[:2]) * jnp.asarray(bessel, v.dtype), axis=0)
    return y, (1 - mom) * rm + mom * batch_mean, (1 - mom) * rv + mom * batch_var


def _prepare_instance_norm(rank: int | None, x: np.ndarray, gamma: np.ndarray | None = None,
                           beta: np.ndarray | None = None,
                           running_mean: np.ndarray | None = None,
                           running_var: np.ndarray | None = None, training: bool = True,
                           momentum: float = 0.1, eps: float = 1e-5) -> _Prepared:
    """The running statistics are placeholders when there are none (training only)."""
    m = instance_norm_check(x, running_mean, running_var, training)
    c = x.shape[1]
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        norm_affine(value, name, (c,), x)
    arrays = {
        "x": x,
        "gamma": np.ones(c, x.dtype) if gamma is None else gamma,
        "beta": np.zeros(c, x.dtype) if beta is None else beta,
        "running_mean": np.asarray(np.zeros(c) if running_mean is None else running_mean,
                                   x.dtype),
        "running_var": np.asarray(np.ones(c) if running_var is None else running_var, x.dtype),
    }
    static = {"training": bool(training), "eps": norm_real(eps, "eps", 0.0, math.inf),
              "momentum": norm_real(momentum, "momentum", 0.0, 1.0),
              "bessel": m / (m - 1) if m > 1 else math.inf}
    return _Prepared(_in, arrays, static,
                     outputs=3 if training and running_mean is not None else 1)


# ----------------------------------------------------------------- activations, dense layer


def _relu(v):
    return jnp.where(v == 0, v, jax.nn.relu(v))  # jax-relu-negative-zero


def _prepare_relu(rank: int | None, x: np.ndarray) -> _Prepared:
    return _Prepared(_relu, {"x": x})


def _prepare_native_relu(rank: int | None, x: np.ndarray) -> _Prepared:
    """jax.nn.relu itself: its gradient is the contract's slope (0 at x == 0)."""
    return _Prepared(jax.nn.relu, {"x": x})


def _relu_backward(rank: int | None, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """jax.vjp of jax.nn.relu, NaN where x is NaN or a non-finite dy meets slope 0."""
    dx = _autodiff(ops.record("relu"), _prepare_native_relu, rank, {"dy": dy, "x": x})
    return product_nans(dx, dy, x, x <= 0)


def _elu(v, *, alpha: float):
    return jax.nn.elu(v, alpha=jnp.asarray(alpha, v.dtype))


def _prepare_elu(rank: int | None, x: np.ndarray, alpha: float = 1.0) -> _Prepared:
    return _Prepared(_elu, {"x": x}, {"alpha": check_alpha(alpha)})


def _elu_backward(rank: int | None, dy: np.ndarray, x: np.ndarray,
                  alpha: float = 1.0) -> np.ndarray:
    """jax.vjp of jax.nn.elu, NaN where x is NaN."""
    dx = _autodiff(ops.record("elu"), _prepare_elu, rank, {"dy": dy, "x": x, "alpha": alpha})
    return product_nans(dx, dy, x)


def _prepare_sigmoid(rank: int | None, x: np.ndarray) -> _Prepared:
    return _Prepared(jax.nn.sigmoid, {"x": x})


def _saturated_sigmoid_grad(dy, x):
    e = jnp.exp(-jnp.abs(x))
    return dy * (e / (1 + e) ** 2)


@_x64
def _sigmoid_backward(rank: int | None, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """jax.vjp of jax.nn.sigmoid (dy * y * (1 - y)); where dy is infinite, dy * e / (1 + e)^2
    with e = jnp.exp(-|x|), the contract's sigmoid(x) * sigmoid(-x) (sigmoid-saturated-gradient:
    1 - y is exactly 0 once y rounds to 1, and inf * 0 is NaN)."""
    dx = _autodiff(ops.record("sigmoid"), _prepare_sigmoid, rank, {"dy": dy, "x": x})
    infinite = np.isinf(dy)
    if infinite.any():
        composed = _call(_saturated_sigmoid_grad, _j(dy.astype(dx.dtype)),
                         _j(x.astype(dx.dtype)))
        dx = np.where(infinite, _np(composed, dx.dtype), dx)
    return dx


def _linear(v, k, *c):
    """v @ k.T, plus the bias c when one is given."""
    y = jnp.tensordot(v, k, axes=((v.ndim - 1,), (1,)), precision=_HIGHEST)
    return y + c[0] if c else y


def _prepare_linear(rank: int | None, x: np.ndarray, w: np.ndarray,
                    b: np.ndarray | None = None) -> _Prepared:
    linear_check(x, w, b)
    return _Prepared(_linear, {"x": x, "w": w, **({} if b is None else {"b": b})})


# ------------------------------------------------------------------------------------ table

# The norms' gradients through jnp.var in float16: d/dx of (var + eps) ** -1/2 is of order
# eps ** -3/2 = 3e7 for a constant group, beyond float16's range: NaN where the contract's
# gradient is finite (jax-float16-norm-backward-nan); not computed there.
NORM_FLOAT16 = LowPrecision("jax-float16-norm-backward-nan", accumulation=None)
# x ** p in float16 overflows where the window's p-norm does not (256 ** 2 > 65504): not computed
# in float16 (jax-float16-lp-pool-overflow).
LP_POOL_FLOAT16 = LowPrecision("jax-float16-lp-pool-overflow", accumulation=None)

TABLE: dict[str, Row] = {
    "pad": Row(_prepare_pad, backward=_pad_backward,
               doc="jnp.pad with NumPy's mode names (reflect, edge, wrap)."),
    "conv": Row(_prepare_conv,
                doc="lax.conv_general_dilated with explicit (before, after) padding."),
    "conv_transpose": Row(_prepare_conv_transpose,
                          doc="lax.conv_transpose(transpose_kernel=True); grouped: "
                              "conv_general_dilated with lhs_dilation."),
    "max_pool": Row(_prepare_max_pool, backward=_max_pool_backward,
                    doc="lax.reduce_window(max); indices composed (variadic reduce_window)."),
    "avg_pool": Row(_prepare_avg_pool,
                    doc="reduce_window(add) window sums / the contract's divisor."),
    "lp_pool": Row(_prepare_lp_pool,
                   doc="(K / count * reduce_window(add) of x ** p) ** (1 / p).",
                   low_precision={"float16": LP_POOL_FLOAT16}),
    "adaptive_avg_pool": Row(_prepare_adaptive_avg_pool,
                             doc="jnp.sum of every bin's slice / its length, axis by axis."),
    "adaptive_max_pool": Row(_prepare_adaptive_max_pool, backward=_adaptive_max_pool_backward,
                             doc="variadic lax.reduce of (value, index) over every bin, axis by "
                                 "axis."),
    "batch_norm": Row(_prepare_batch_norm,
                      doc="jnp.mean / jnp.var composition (JAX has no batch norm); running "
                          "stats per contract.",
                      low_precision={"backward float16": NORM_FLOAT16}),
    "layer_norm": Row(_prepare_layer_norm,
                      doc="jnp.mean / jnp.var (two-pass) over the trailing normalized_shape "
                          "axes; JAX has no layer norm.",
                      low_precision={"backward float16": NORM_FLOAT16}),
    "group_norm": Row(_prepare_group_norm,
                      doc="jnp.mean / jnp.var (two-pass) over each (sample, group) of the "
                          "(N, G, -1) view; JAX has no group norm.",
                      low_precision={"backward float16": NORM_FLOAT16}),
    "instance_norm": Row(_prepare_instance_norm,
                         doc="jnp.mean / jnp.var (two-pass) over each instance's spatial axes; "
                             "running stats per contract.",
                         low_precision={"backward float16": NORM_FLOAT16}),
    "relu": Row(_prepare_relu, backward=_relu_backward,
                doc="jax.nn.relu (x kept where x == 0: the sign of -0.0)."),
    "elu": Row(_prepare_elu, backward=_elu_backward, doc="jax.nn.elu(x, alpha)."),
    "sigmoid": Row(_prepare_sigmoid, backward=_sigmoid_backward, doc="jax.nn.sigmoid."),
    "linear": Row(_prepare_linear,
                  doc="jnp.tensordot(x, w, ((-1,), (1,))) + b (precision HIGHEST)."),
}

# float16 / bfloat16: the table's jax.numpy / lax compositions compute in the inputs' format,
# each step rounded to it (no preferred_element_type): judged by the storage-accumulation bound
# throughout (jax-low-precision-storage-arithmetic).
globals().update(contract_functions(
    TABLE, NAME, run=_run, autodiff=_autodiff, module=__name__,
    storage=backend(NAME).storage_formats,
    low_precision=LowPrecision("jax-low-precision-storage-arithmetic")))
