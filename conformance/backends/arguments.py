"""The contract's argument rules, shared by the framework adapters (CONTRACT.md, no framework).

Rank-generic helpers that turn the contract's own argument conventions into explicit numbers and
raise the contract's ValueErrors (`per_axis`, `pad_pairs`, `conv_args`, `pool_geometry`,
`avg_divisors`, `bn_check`, ...). Every helper takes the spatial rank r (1, 2 or 3) explicitly or
from a shape; per-axis results are tuples with one entry per spatial axis, in the order of x's
axes 2, ..., r + 1.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np


def float_input(x: np.ndarray, name: str = "x", storage: tuple[str, ...] = ()) -> np.ndarray:
    """The adapters' own dtype check: float32/float64, and the low-precision storage formats
    (``storage``: "float16", "bfloat16") a backend computes in (ValueError naming the
    argument)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64) and x.dtype.name not in storage:
        allowed = ", ".join(("float32", "float64", *storage))
        raise ValueError(f"{name} must be one of {allowed}, got {x.dtype}")
    return x



# ---------------------------------------------------------------------------------------------

Pads = tuple[tuple[int, int], ...]
RANKS = (1, 2, 3)
LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
KERNEL_LAYOUTS = {1: "(Co, C / G, kl)", 2: "(Co, C / G, kh, kw)", 3: "(Co, C / G, kd, kh, kw)"}


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def check_rank(shape: tuple[int, ...], rank: int, name: str = "x",
               layout: dict[int, str] = LAYOUTS) -> None:
    """`shape` must have rank + 2 axes (the rank is fixed by the function: conv1d, ...)."""
    if len(shape) != rank + 2:
        raise ValueError(f"{name} must be {rank + 2}-D {layout[rank]}, got shape {tuple(shape)}")


def spatial_rank(shape: tuple[int, ...], name: str = "x") -> int:
    """The rank r of an (N, C, *S) array whose rank comes from its ndim (pad, pad_backward)."""
    rank = len(shape) - 2
    if rank not in RANKS:
        raise ValueError(
            f"{name} must be 3-D {LAYOUTS[1]}, 4-D {LAYOUTS[2]} or 5-D {LAYOUTS[3]}, "
            f"got shape {tuple(shape)}"
        )
    return rank


def per_axis(value: object, name: str, rank: int) -> tuple[int, ...]:
    """`k` -> (k,) * rank; a tuple/list of exactly `rank` ints as given. Values must be >= 1."""
    if _is_int(value):
        out = (int(value),) * rank  # type: ignore[call-overload]
    elif (isinstance(value, tuple | list) and len(value) == rank
          and all(_is_int(v) for v in value)):
        out = tuple(int(v) for v in value)
    else:
        raise ValueError(
            f"{name} must be an int or {rank} int(s), one per spatial axis, got {value!r}"
        )
    if min(out) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return out


def _pad_entry(v: object) -> tuple[int, int] | None:
    if _is_int(v):
        return (int(v), int(v))  # type: ignore[call-overload]
    if isinstance(v, tuple | list) and len(v) == 2 and all(_is_int(u) for u in v):
        return (int(v[0]), int(v[1]))
    return None


def pad_pairs(padding: object, rank: int, name: str = "padding") -> Pads:
    """Contract padding -> ((before, after),) per spatial axis, all >= 0.

    `p` pads both sides of every axis; otherwise exactly one entry per axis, each `p` or a
    `(before, after)` pair. At rank 1 a bare `(b, a)` has two entries for one axis: an error.
    """
    if _is_int(padding):
        out = ((int(padding), int(padding)),) * rank  # type: ignore[call-overload]
    else:
        entries = (
            [_pad_entry(v) for v in padding]
            if isinstance(padding, tuple | list) and len(padding) == rank else [None]
        )
        if any(e is None for e in entries):
            raise ValueError(
                f"{name} must be an int or {rank} entr{'y' if rank == 1 else 'ies'} (one per "
                f"spatial axis), each an int or a (before, after) pair, got {padding!r}"
            )
        out = tuple(entries)  # type: ignore[arg-type]
    if min(v for pair in out for v in pair) < 0:
        raise ValueError(f"{name} must be >= 0, got {padding!r}")
    return out


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def check_pad(shape: tuple[int, ...], pads: Pads, mode: str) -> None:
    """Contract limits of `pad` on x of `shape`: known mode, reflect pads < size, circular pads
    <= size."""
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}")
    check_rank(shape, len(pads))
    for axis, (before, after) in enumerate(pads, start=2):
        size = shape[axis]
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(
                f"pad_width {(before, after)} must be < the size {size} of axis {axis} "
                "in reflect mode"
            )
        if mode == "circular" and max(before, after) > size:
            raise ValueError(
                f"pad_width {(before, after)} must be <= the size {size} of axis {axis} "
                "in circular mode"
            )


def unpadded_shape(dy_shape: tuple[int, ...], pads: Pads, pad_width: object) -> tuple[int, ...]:
    """x's shape for pad_backward: dy's spatial sizes minus the pads (ValueError if negative)."""
    shape = (*dy_shape[:2], *(n - b - a for n, (b, a) in zip(dy_shape[2:], pads, strict=True)))
    if min(shape) < 0:
        raise ValueError(f"pad_width {pad_width!r} is larger than dy of shape {tuple(dy_shape)}")
    return shape


def same_pads(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
              dilation: tuple[int, ...]) -> Pads:
    """Contract "same": So = ceil(S / s) per axis, the odd extra pad at the end of the axis."""
    out = []
    for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        o = math.ceil(n / s)
        total = max((o - 1) * s + d * (k - 1) + 1 - n, 0)
        out.append((total // 2, total - total // 2))
    return tuple(out)


def conv_pads(padding: object, size: tuple[int, ...], kernel: tuple[int, ...],
              stride: tuple[int, ...], dilation: tuple[int, ...]) -> Pads:
    """Resolve conv padding (contract numbers, "valid", "same") to ((before, after),) per axis."""
    rank = len(size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding == "same":
            return same_pads(size, kernel, stride, dilation)
        raise ValueError(f"padding must be 'valid', 'same' or numbers, got {padding!r}")
    return pad_pairs(padding, rank)


def conv_args(x_shape: tuple[int, ...], w_shape: tuple[int, ...], rank: int, stride: object,
              padding: object, dilation: object, groups: object
              ) -> tuple[tuple[int, ...], tuple[int, ...], Pads, tuple[int, ...]]:
    """Normalise conv arguments to (kernel, stride, pads, dilation), one entry per spatial axis.

    Checks the ranks of x (N, C, *S) and w (Co, C / G, *k) and that groups divide C and Co.
    """
    check_rank(x_shape, rank)
    check_rank(w_shape, rank, "w", KERNEL_LAYOUTS)
    c, co, cg = x_shape[1], w_shape[0], w_shape[1]
    if not _is_int(groups) or groups < 1 or c % groups or co % groups or cg * groups != c:
        raise ValueError(f"groups={groups!r} does not fit x channels {c} and w of shape "
                         f"{tuple(w_shape)}")
    kernel = tuple(int(k) for k in w_shape[2:])
    s, d = per_axis(stride, "stride", rank), per_axis(dilation, "dilation", rank)
    return kernel, s, conv_pads(padding, tuple(x_shape[2:]), kernel, s, d), d


KERNEL_T_LAYOUTS = {1: "(C, Co / G, kl)", 2: "(C, Co / G, kh, kw)",
                    3: "(C, Co / G, kd, kh, kw)"}


@dataclass(frozen=True)
class ConvTransposeGeometry:
    """Contract transposed-conv arguments as numbers, one entry per spatial axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: tuple[int, ...]  # cropped from both ends
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    full: tuple[int, ...]  # (S - 1) * s + d * (k - 1) + 1 + output_padding (before the crop)
    out: tuple[int, ...]  # full - 2 * pads


def conv_transpose_args(x_shape: tuple[int, ...], w_shape: tuple[int, ...], rank: int,
                        stride: object, padding: object, output_padding: object,
                        groups: object, dilation: object) -> ConvTransposeGeometry:
    """Normalise transposed-conv arguments (x (N, C, *S), w (C, Co / G, *k)) and check them:
    groups divide C, w.shape[0] == C, symmetric int padding, output_padding < max(s, d), So >= 1.
    """
    check_rank(x_shape, rank)
    check_rank(w_shape, rank, "w", KERNEL_T_LAYOUTS)
    c = x_shape[1]
    if not _is_int(groups) or groups < 1 or c % groups or w_shape[0] != c:
        raise ValueError(f"groups={groups!r} does not fit x channels {c} and w of shape "
                         f"{tuple(w_shape)} (w is (C, Co / G, *k))")
    kernel = tuple(int(k) for k in w_shape[2:])
    s, d = per_axis(stride, "stride", rank), per_axis(dilation, "dilation", rank)
    pairs = pad_pairs(padding, rank)
    if any(b != a for b, a in pairs) or (
        isinstance(padding, tuple | list) and any(isinstance(e, tuple | list) for e in padding)
    ):
        raise ValueError(f"padding must be an int or one int per spatial axis, got {padding!r}")
    pads = tuple(b for b, _ in pairs)
    extra = tuple(b for b, _ in pad_pairs(output_padding, rank, "output_padding"))
    if any(e >= max(si, di) for e, si, di in zip(extra, s, d, strict=True)):
        raise ValueError(f"output_padding={output_padding!r} must be smaller than the stride "
                         f"{s} or the dilation {d} along every axis")
    full = tuple((n - 1) * si + di * (k - 1) + 1 + e
                 for n, k, si, di, e in zip(x_shape[2:], kernel, s, d, extra, strict=True))
    out = tuple(f - 2 * p for f, p in zip(full, pads, strict=True))
    if min(out) < 1:
        raise ValueError(f"padding={padding!r} leaves an output of size {out} (< 1)")
    return ConvTransposeGeometry(kernel, s, pads, extra, d, int(groups), full, out)


def pool_out_len(n: int, before: int, after: int, k: int, s: int, d: int, ceil_mode: bool) -> int:
    """Contract max-pool output length along one axis (torch's ceil_mode drop rule included)."""
    span = n + before + after - d * (k - 1) - 1
    if span < 0:
        raise ValueError(
            f"kernel_size {k} (dilation {d}) is larger than the padded input {n + before + after}"
        )
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + before:
        out -= 1
    return out


def window_hits(n: int, before: int, k: int, s: int, d: int, out: int) -> np.ndarray:
    """Per output position along one axis: does its window cover at least one input cell?"""
    starts = np.arange(out)[:, None] * s + np.arange(k)[None, :] * d - before
    return ((starts >= 0) & (starts < n)).any(axis=1)


def pool_extra_end(n: int, before: int, after: int, k: int, s: int, d: int, out: int) -> int:
    """Cells to add after the contract padding so that a floor-mode pool yields `out` windows."""
    return max((out - 1) * s + d * (k - 1) + 1 - (n + before + after), 0)


def pool_args(x_shape: tuple[int, ...], rank: int, kernel_size: object, stride: object,
              padding: object, dilation: object
              ) -> tuple[tuple[int, ...], tuple[int, ...], Pads, tuple[int, ...]]:
    """Normalise max-pool arguments to (kernel, stride, pads, dilation); pads <= kernel // 2."""
    check_rank(x_shape, rank)
    k = per_axis(kernel_size, "kernel_size", rank)
    s = k if stride is None else per_axis(stride, "stride", rank)
    d = per_axis(dilation, "dilation", rank)
    p = pad_pairs(padding, rank)
    for kk, (before, after) in zip(k, p, strict=True):
        if max(before, after) > kk // 2:
            raise ValueError(f"padding {padding!r} must be <= kernel_size / 2 ({kk // 2})")
    return k, s, p, d


@dataclass(frozen=True)
class PoolGeometry:
    """A max pool's numbers, one entry per spatial axis (see `pool_geometry`)."""

    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads
    dilation: tuple[int, ...]
    out: tuple[int, ...]
    extra: tuple[int, ...]  # cells to add after `pads` so that a floor-mode pool gives `out`

    @property
    def symmetric(self) -> bool:
        return all(before == after for before, after in self.pads)

    @property
    def floor_pads(self) -> Pads:
        """The contract pads plus `extra` at the end: a floor-mode pool of these gives `out`."""
        return tuple((b, a + e) for (b, a), e in zip(self.pads, self.extra, strict=True))

    @property
    def hit(self) -> np.ndarray:
        """Boolean array of shape `out`: does the window cover at least one input cell?"""
        per_axis_hits = [
            window_hits(n, b, k, s, d, o) for n, (b, _), k, s, d, o in
            zip(self.size, self.pads, self.kernel, self.stride, self.dilation, self.out,
                strict=True)
        ]
        rank = len(per_axis_hits)
        shaped = [h.reshape((1,) * i + (-1,) + (1,) * (rank - 1 - i))
                  for i, h in enumerate(per_axis_hits)]
        return functools.reduce(np.logical_and, shaped)

    def flat_index(self, padded: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates in the padded frame (one array per axis) -> (row-major flat index inside
        the unpadded plane / volume, -1 where outside; mask of the coordinates inside)."""
        inside = np.ones(np.shape(padded[0]), bool)
        flat = np.zeros(np.shape(padded[0]), np.int64)
        for coord, n, (before, _) in zip(padded, self.size, self.pads, strict=True):
            c = np.asarray(coord, np.int64) - before
            inside &= (c >= 0) & (c < n)
            flat = flat * n + c
        return np.where(inside, flat, -1), inside


def pool_geometry(x_shape: tuple[int, ...], rank: int, kernel_size: object, stride: object,
                  padding: object, dilation: object, ceil_mode: bool) -> PoolGeometry:
    """Everything an adapter needs to pool x of `x_shape` (N, C, *S) as the contract says."""
    k, s, p, d = pool_args(x_shape, rank, kernel_size, stride, padding, dilation)
    size = tuple(int(n) for n in x_shape[2:])
    out = tuple(pool_out_len(n, b, a, kk, ss, dd, bool(ceil_mode))
                for n, (b, a), kk, ss, dd in zip(size, p, k, s, d, strict=True))
    extra = tuple(pool_extra_end(n, b, a, kk, ss, dd, o)
                  for n, (b, a), kk, ss, dd, o in zip(size, p, k, s, d, out, strict=True))
    return PoolGeometry(size, k, s, p, d, out, extra)


def avg_pool_geometry(x_shape: tuple[int, ...], rank: int, kernel_size: object, stride: object,
                      padding: object, ceil_mode: bool) -> PoolGeometry:
    """An average pool's numbers (dilation 1; the contract's padding is symmetric only)."""
    geo = pool_geometry(x_shape, rank, kernel_size, stride, padding, 1, ceil_mode)
    if not geo.symmetric:
        raise ValueError(f"padding must be an int or one int per spatial axis, got {padding!r}")
    return geo


def avg_divisors(geo: PoolGeometry, count_include_pad: bool,
                 divisor_override: object) -> np.ndarray:
    """The contract's divisor of every window, float64 of shape `geo.out`: `divisor_override`,
    or per axis min(start + k, S + p) - start (count_include_pad) or the input cells only."""
    if divisor_override is not None:
        if not _is_int(divisor_override) or divisor_override == 0:
            raise ValueError(f"divisor_override must be None or a non-zero int, "
                             f"got {divisor_override!r}")
        return np.full(geo.out, float(divisor_override))
    div = np.ones(geo.out)
    rank = len(geo.out)
    for a, (n, (p, _), k, s, o) in enumerate(zip(geo.size, geo.pads, geo.kernel, geo.stride,
                                                  geo.out, strict=True)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        count = end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        div = div * count.reshape((1,) * a + (-1,) + (1,) * (rank - 1 - a))
    return div


def lp_norm_type(value: object) -> float:
    """The contract's LP-pool norm_type p: a finite real number > 0 (not a bool; inf refused)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"norm_type must be a finite real number > 0, got {value!r}")
    return float(value)


def lp_pool_geometry(x_shape: tuple[int, ...], rank: int, kernel_size: object, stride: object,
                     ceil_mode: bool) -> PoolGeometry:
    """An LP pool's numbers: no padding, dilation 1. Its window counts (the input cells of
    each window, torch's avg_pool divisor) are ``avg_divisors(geo, True, None)``."""
    return pool_geometry(x_shape, rank, kernel_size, stride, 0, 1, ceil_mode)
def adaptive_bins(x_shape: tuple[int, ...], rank: int, output_size: object
                  ) -> tuple[tuple[int, ...], list[list[tuple[int, int]]]]:
    """An adaptive pool's output sizes (None -> the input's size) and, per axis, each bin's
    (start, end): start = floor(i S / O), end = ceil((i + 1) S / O). ValueError for an
    output_size that is not an int >= 1 or one int >= 1 / None per axis, or an empty input."""
    check_rank(x_shape, rank)
    if 0 in x_shape:
        raise ValueError(f"x must not be empty, got shape {x_shape}")
    size = x_shape[2:]
    entries = output_size if isinstance(output_size, tuple | list) else (output_size,) * rank
    if len(entries) != rank or (not isinstance(output_size, tuple | list)
                                and output_size is None):
        raise ValueError(f"output_size must be an int or exactly {rank} entries, "
                         f"got {output_size!r}")
    out = []
    for e, n in zip(entries, size, strict=True):
        if e is None:
            out.append(n)
        elif not _is_int(e) or e < 1:
            raise ValueError(f"output_size must be ints >= 1 or None, got {output_size!r}")
        else:
            out.append(int(e))
    bins = [[(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]
            for n, o in zip(size, out, strict=True)]
    return tuple(out), bins


BN_LAYOUTS = "(N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)"


def bn_axes(ndim: int) -> tuple[int, ...]:
    """The axes batch norm reduces over: N and every spatial axis."""
    return (0, *range(2, ndim))


def channel_shape(ndim: int) -> tuple[int, ...]:
    """Shape that broadcasts a (C,) vector against an (N, C, *S) array of `ndim` axes."""
    return (1, -1) + (1,) * (ndim - 2)


def bn_check(x: np.ndarray, running_mean: object, running_var: object, training: bool) -> int:
    """Contract checks shared by the batch-norm adapters; returns m = N * prod(S)."""
    if not 2 <= x.ndim <= 5:
        raise ValueError(f"x must be {BN_LAYOUTS}, got shape {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (both or neither)")
    if not training and running_mean is None:
        raise ValueError("training=False needs running_mean and running_var")
    m = x.size // x.shape[1] if x.shape[1] else 0
    if training and m <= 1:
        raise ValueError(
            f"training needs more than one value per channel, got x of shape {x.shape}"
        )
    return m


# ---------------------------------------------------------------------------------------------
# Activations and the dense layer: the contract's shape checks and its NaN rule for gradients.
# ---------------------------------------------------------------------------------------------


def same_shape_dy(dy: np.ndarray, x: np.ndarray) -> None:
    """An activation's dy must have x's shape."""
    if dy.shape != x.shape:
        raise ValueError(f"dy must have shape {x.shape}, got {dy.shape}")


def check_alpha(alpha: object) -> float:
    """elu's alpha: a finite real number (not a bool)."""
    if isinstance(alpha, bool | np.bool_) or not isinstance(alpha, int | float | np.number):
        raise ValueError(f"alpha must be a finite real number, got {alpha!r}")
    if not math.isfinite(float(alpha)):  # type: ignore[arg-type]
        raise ValueError(f"alpha must be a finite real number, got {alpha!r}")
    return float(alpha)  # type: ignore[arg-type]


def product_nans(dx: np.ndarray, dy: np.ndarray, x: np.ndarray,
                 zero_slope: np.ndarray | None = None) -> np.ndarray:
    """The contract's dx = dy * f'(x) as an IEEE product, from a framework's dx: NaN where x
    is NaN (f'(NaN) is NaN) and, where f'(x) is 0 (``zero_slope``), NaN for a non-finite dy
    (inf * 0). Elsewhere the framework's own values."""
    bad = np.isnan(x)
    if zero_slope is not None:
        bad = bad | (zero_slope & ~np.isfinite(dy))
    return np.where(bad, np.array(np.nan, dx.dtype), dx)


def linear_check(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                 dy: np.ndarray | None = None) -> None:
    """linear's shapes: x (..., in) with at least one axis, w (out, in), b (out,), dy
    (..., out)."""
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension (..., in), got a 0-d array")
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (out, in), got shape {w.shape}")
    if w.shape[1] != x.shape[-1]:
        raise ValueError(f"w of shape {w.shape} does not fit x of shape {x.shape}: in-features "
                         f"{w.shape[1]} != {x.shape[-1]}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},), got {b.shape}")
    if dy is not None and dy.shape != (*x.shape[:-1], w.shape[0]):
        raise ValueError(f"dy must have shape {(*x.shape[:-1], w.shape[0])}, got {dy.shape}")


# ---------------------------------------------------------------------------------------------
# Per-sample normalisation (layer, group and instance norm): the contract's argument checks.
# ---------------------------------------------------------------------------------------------


def norm_real(value: object, name: str, low: float, high: float = math.inf) -> float:
    """eps (>= 0) and momentum (in [0, 1]): a real number, not a bool, in [low, high]."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real) \
            or not low <= float(value) <= high:
        raise ValueError(f"{name} must be a real number in [{low}, {high}], got {value!r}")
    return float(value)


def norm_affine(value: np.ndarray | None, name: str, shape: tuple[int, ...],
                x: np.ndarray) -> None:
    """gamma / beta / running statistics: None, or x's dtype and the given shape."""
    if value is None:
        return
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
    if value.dtype != x.dtype:
        raise ValueError(f"{name} must have x's dtype {x.dtype}, got {value.dtype}")


def normalized_axes(x_shape: tuple[int, ...], normalized_shape: object) -> tuple[int, ...]:
    """layer_norm's normalized_shape as a tuple of ints: an int (one axis) or a non-empty
    tuple / list of ints equal to x's trailing shape (1 to x.ndim axes)."""
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(
            normalized_shape, bool | np.bool_):
        shape: tuple[object, ...] = (normalized_shape,)
    elif isinstance(normalized_shape, tuple | list):
        shape = tuple(normalized_shape)
    else:
        shape = ()
    if not shape or not all(_is_int(s) for s in shape):
        raise ValueError(f"normalized_shape must be an int or a non-empty tuple of ints, got "
                         f"{normalized_shape!r}")
    axes = tuple(int(s) for s in shape)  # type: ignore[call-overload]
    if len(axes) > len(x_shape) or tuple(x_shape[len(x_shape) - len(axes):]) != axes:
        raise ValueError(f"normalized_shape must be the trailing shape of x, got "
                         f"normalized_shape={normalized_shape!r} for x of shape {tuple(x_shape)}")
    return axes


def norm_layout(x: np.ndarray) -> None:
    """group_norm / instance_norm's x: (N, C, *S) with 0 to 3 spatial axes."""
    if not 2 <= x.ndim <= 5:
        raise ValueError(f"x must be {BN_LAYOUTS}, got shape {x.shape}")


def norm_groups(x: np.ndarray, num_groups: object) -> int:
    """group_norm's num_groups: an int >= 1 dividing C."""
    norm_layout(x)
    if not _is_int(num_groups) or int(num_groups) < 1:  # type: ignore[call-overload]
        raise ValueError(f"num_groups must be an int >= 1, got {num_groups!r}")
    if x.shape[1] % int(num_groups):  # type: ignore[call-overload]
        raise ValueError(f"num_groups must divide the number of channels C = {x.shape[1]}, "
                         f"got num_groups={num_groups}")
    return int(num_groups)  # type: ignore[call-overload]


def instance_norm_check(x: np.ndarray, running_mean: np.ndarray | None,
                        running_var: np.ndarray | None, training: object) -> int:
    """instance_norm's rules; returns m = prod(S), the values per instance."""
    norm_layout(x)
    if not isinstance(training, bool | np.bool_):
        raise ValueError(f"training must be a bool, got {training!r}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (both or neither)")
    if not training and running_mean is None:
        raise ValueError("training=False needs running_mean and running_var")
    m = math.prod(x.shape[2:])
    if training and m <= 1:
        raise ValueError(f"training needs more than one value per instance (prod(S) > 1), got x "
                         f"of shape {x.shape}")
    return m
