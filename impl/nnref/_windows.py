"""The one window geometry of every sliding-window op, at any spatial rank r: conv, conv_transpose,
max_pool, avg_pool and lp_pool all describe their windows with :class:`Windows` and read them
through it.

Arrays are (N, C, *S) with r = len(S) spatial axes; every geometry argument (kernel k, stride
s, dilation d, pads (before, after), sizes) holds one entry per spatial axis. Along one axis,
window i reads, for kernel tap p, the padded cell ``i * s + p * d``, which is the input cell
``i * s + p * d - before``; and

    So = floor_or_ceil((S + before + after - d * (k - 1) - 1) / s) + 1,

where ceil_mode (pooling) rounds up and then drops a last window that would start at or beyond
S + before (inside the right padding only). Such a ceil_mode window may reach past the right
padding; :attr:`Windows.reach` is the padded extent that holds every window.

The module has four parts:

- padding forms: :func:`padding_pairs` (p, one entry per axis, (before, after) pairs),
  :func:`symmetric_pads` (p or one int per axis), :func:`conv_pads` (also "valid" and "same")
  and :func:`pool_pads` (the pools' forms and their pad <= k // 2 limit);
- output sizes: :func:`output_size` (one axis), :func:`sliding_windows` and
  :func:`pool_windows` (every axis, with the argument checks of the ops);
- :class:`Windows` and the ways to read windows: :meth:`Windows.tap_slices` (one strided slice
  of the padded input per tap, for every window at once), :meth:`Windows.view` (every window
  as a strided view, conv's im2col), :meth:`Windows.reads` (each tap clipped to the unpadded
  input: no padded buffer) and :meth:`Windows.wide` (the wide layout of max pooling);
- the wide layout (:class:`WideLayout`): stride phases stored flat so that each tap reads one
  contiguous run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._checks import AXIS_NAMES, flag, int_arg, int_tuple

Sizes = tuple[int, ...]
Pads = tuple[tuple[int, int], ...]  # one (before, after) pair per spatial axis
_ALL = slice(None)
_NO_PADS = {r: ((0, 0),) * r for r in (1, 2, 3)}


# ------------------------------------------------------------------------------ padding forms


def padding_pairs(name: str, value: Any, rank: int) -> Pads:
    """Normalise padding to one (before, after) pair per spatial axis, all >= 0.

    ``value`` is an int p (both sides of every axis) or exactly ``rank`` entries, each an int p
    (both sides of its axis) or a (before, after) pair: at rank 2 ``p``, ``(ph, pw)``,
    ``((t, b), (l, r))`` and ``(ph, (l, r))``; at rank 1 ``p``, ``(p,)`` and ``((b, a),)``.
    """
    if type(value) is int and value >= 0:  # the common case, cheaply
        return ((value, value),) * rank
    if isinstance(value, tuple | list):
        if len(value) != rank:
            hint = " (one axis padded by (b, a) is ((b, a),))" if rank == 1 else ""
            raise ValueError(
                f"{name} must be an int or exactly {rank} entr{'ies' if rank > 1 else 'y'} (one "
                f"per spatial axis, each p or (before, after)), got {value!r}{hint}"
            )
        pads = []
        for entry in value:
            if isinstance(entry, tuple | list):
                if len(entry) != 2:
                    raise ValueError(
                        f"{name}: each entry must be an int p or a (before, after) pair, got "
                        f"{entry!r} in {value!r}"
                    )
                pads.append((int_arg(name, entry[0]), int_arg(name, entry[1])))
            else:
                p = int_arg(name, entry)
                pads.append((p, p))
    else:
        p = int_arg(name, value)
        pads = [(p, p)] * rank
    if min(min(pair) for pair in pads) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return tuple(pads)


def symmetric_pads(padding: Any, rank: int, note: str, str_note: str | None = None) -> Pads:
    """``padding`` as an int p or one int per axis, both sides of an axis alike: ((p, p), ...).

    Pairs and strings are refused: ``"padding must be an int or one int per spatial
    axis{note}, got ..."`` (``str_note`` instead of ``note`` for a string, when given).
    """
    is_str = isinstance(padding, str)
    if is_str or (
        isinstance(padding, tuple | list) and any(isinstance(e, tuple | list) for e in padding)
    ):
        why = str_note if is_str and str_note is not None else note
        raise ValueError(
            f"padding must be an int or one int per spatial axis{why}, got {padding!r}"
        )
    return tuple((p, p) for p in int_tuple("padding", padding, rank, minimum=0))


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """"same" padding along one axis: output ceil(size / stride), total pad
    max((So - 1) * s + d * (k - 1) + 1 - size, 0), the odd extra pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_pads(padding: Any, in_sizes: Sizes, kernel: Sizes, stride: Sizes, dilation: Sizes
              ) -> Pads:
    """conv's padding: "valid" (none), "same" (:func:`same_pads`) or :func:`padding_pairs`."""
    if not isinstance(padding, str):
        return padding_pairs("padding", padding, len(in_sizes))
    if padding == "valid":
        return _NO_PADS[len(in_sizes)]
    if padding == "same":
        return tuple(same_pads(*axis) for axis in zip(in_sizes, kernel, stride, dilation,
                                                      strict=True))
    raise ValueError(f"padding must be an int, pairs, 'valid' or 'same', got {padding!r}")


def pool_pads(padding: Any, kernel_size: Any, kernel: Sizes, symmetric: bool) -> Pads:
    """A pool's padding, each pad <= kernel // 2 (the kernel, not the dilated kernel).

    max_pool takes :func:`padding_pairs`' forms; avg_pool (``symmetric``) an int or one int per
    axis. Strings are refused.
    """
    rank = len(kernel)
    if symmetric:
        pads = symmetric_pads(padding, rank,
                              " (avg_pool pads both sides of an axis alike)", str_note="")
    elif isinstance(padding, str):
        raise ValueError(f"padding must be an int or pairs of ints, got {padding!r}")
    else:
        pads = padding_pairs("padding", padding, rank)
    for (before, after), k in zip(pads, kernel, strict=True):
        if max(before, after) > k // 2:
            raise ValueError(
                f"padding {padding!r} must be <= half the kernel_size {kernel_size!r} "
                f"(at most {k // 2}), got {max(before, after)}"
            )
    return pads


# ------------------------------------------------------------------------------- output sizes


def output_size(
    name: Callable[[], str], size: int, pad_before: int, pad_after: int, kernel: int, stride: int,
    dilation: int, ceil_mode: bool = False,
) -> int:
    """Windows along one axis: floor_or_ceil((size + pads - dilation*(kernel-1) - 1)/stride) + 1.

    With ``ceil_mode`` a last window that would start at or beyond ``size + pad_before`` (inside
    the right padding only) is dropped, as torch does. ``name()`` describes the axis for the
    error message; it is only called on error (formatting shapes costs microseconds).
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    if span < 0:
        raise ValueError(
            f"{name()}: the (dilated) kernel extent {dilation * (kernel - 1) + 1} is larger than "
            f"the padded input {size + pad_before + pad_after} (size {size}, padding "
            f"({pad_before}, {pad_after}))"
        )
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_before:
            out -= 1
    else:
        out = span // stride + 1
    return out


def sliding_windows(describe: Callable[[str], str], in_sizes: Sizes, kernel: Sizes,
                    stride: Sizes, dilation: Sizes, pads: Pads, ceil_mode: bool = False
                    ) -> Windows:
    """The windows over an input of spatial sizes S, with So from :func:`output_size` on every
    axis. ``describe(axis)`` names the axis in the error message (called on error only).

    Cached on the geometry (tuples of ints): working the sizes out cost microseconds per call.
    """
    try:
        return _cached_windows(in_sizes, kernel, stride, dilation, pads, ceil_mode)
    except ValueError:  # no window along some axis: again, for the message naming the op
        return _windows(describe, in_sizes, kernel, stride, dilation, pads, ceil_mode)


@lru_cache(maxsize=256)
def _cached_windows(in_sizes: Sizes, kernel: Sizes, stride: Sizes, dilation: Sizes, pads: Pads,
                    ceil_mode: bool) -> Windows:
    return _windows(str, in_sizes, kernel, stride, dilation, pads, ceil_mode)


def _windows(describe: Callable[[str], str], in_sizes: Sizes, kernel: Sizes, stride: Sizes,
             dilation: Sizes, pads: Pads, ceil_mode: bool) -> Windows:
    """:func:`sliding_windows`, uncached."""
    out = tuple(
        output_size(lambda axis=axis: describe(axis), size, before, after, k, s, d, ceil_mode)
        for axis, size, (before, after), k, s, d in zip(
            AXIS_NAMES[len(in_sizes)], in_sizes, pads, kernel, stride, dilation, strict=True
        )
    )
    return Windows(kernel, stride, dilation, pads, in_sizes, out)


def pool_windows(op: str, shape: Sizes, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: Any, symmetric: bool) -> Windows:
    """A pool's windows over x of ``shape`` (N, C, *S), its arguments checked: ``stride=None``
    is the kernel size; padding as :func:`pool_pads`; ceil_mode a bool."""
    rank = len(shape) - 2
    kernel = int_tuple("kernel_size", kernel_size, rank)
    strides = kernel if stride is None else int_tuple("stride", stride, rank)
    dilations = int_tuple("dilation", dilation, rank)
    pads = pool_pads(padding, kernel_size, kernel, symmetric)
    ceil = flag("ceil_mode", ceil_mode)
    return sliding_windows(lambda axis: f"{op} {axis} (x {shape})", shape[2:], kernel, strides,
                           dilations, pads, ceil)


# ------------------------------------------------------------------------------- the windows


class Windows(NamedTuple):
    """Where every window of a sliding-window op reads, over an input of spatial sizes S.

    Along each axis, window i (i < So) reads for kernel tap p (p < k) the padded cell
    ``i * s + p * d``, i.e. the input cell ``i * s + p * d - before``; padded cells are outside
    the input. All fields are tuples of ints, so a Windows is hashable and what it derives is
    cached.
    """

    kernel: Sizes
    stride: Sizes
    dilation: Sizes
    pads: Pads
    in_sizes: Sizes
    out: Sizes

    @property
    def before(self) -> Sizes:
        """The padding before each axis."""
        return tuple(b for b, _ in self.pads)

    @property
    def reach(self) -> Sizes:
        """The padded extent holding every window: max(S + before + after, (So - 1) * s +
        d * (k - 1) + 1) per axis (larger only for a ceil_mode window past the padding)."""
        return _buffer(self)[0]

    @property
    def interior(self) -> tuple[slice, ...]:
        """Where the input sits in a buffer of :attr:`reach`: (:, :, before : before + S, ...)."""
        return _buffer(self)[2]

    def padded(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, *S) zero-padded to (N, C, *reach); x itself when nothing is added (callers
        only read it)."""
        return constant_pad(x, _buffer(self)[1])

    def tap_slices(self) -> tuple[tuple[Sizes, tuple[slice, ...]], ...]:
        """Per kernel tap p, row-major: (p, index) with ``xp[index]`` (N, C, *So) the cells
        ``i * s + p * d`` of a buffer of :attr:`reach` that tap p reads for every window i at
        once (one strided slice per axis)."""
        return _tap_slices(self)

    def view(self, xp: np.ndarray) -> np.ndarray:
        """Every window of the padded xp (N, C, *reach) at once: :func:`window_view`."""
        return window_view(xp, self.kernel, self.stride, self.dilation, self.out)

    def reads(self) -> Iterator[TapRead]:
        """Each tap clipped to the unpadded input: :func:`tap_reads`."""
        return tap_reads(self.kernel, self.stride, self.dilation, self.before, self.in_sizes,
                         self.out)

    def wide(self) -> WideLayout:
        """These windows in the wide layout: :func:`wide_layout` (cached)."""
        return _wide(self)


@lru_cache(maxsize=256)
def _buffer(win: Windows) -> tuple[Sizes, Pads, tuple[slice, ...]]:
    """:attr:`Windows.reach`, the pads that make it, and :attr:`Windows.interior`, cached."""
    reach = tuple(max(size + before + after, (o - 1) * s + d * (k - 1) + 1)
                  for size, (before, after), o, s, d, k in zip(
                      win.in_sizes, win.pads, win.out, win.stride, win.dilation, win.kernel,
                      strict=True))
    pads = tuple((before, r - size - before)
                 for r, size, (before, _) in zip(reach, win.in_sizes, win.pads, strict=True))
    inside = (_ALL, _ALL, *(slice(b, b + size) for b, size in zip(win.before, win.in_sizes,
                                                                 strict=True)))
    return reach, pads, inside


@lru_cache(maxsize=128)
def _wide(win: Windows) -> WideLayout:
    """:meth:`Windows.wide`, cached on the windows themselves."""
    return wide_layout(win.in_sizes, win.kernel, win.stride, win.dilation, win.before, win.out)


@lru_cache(maxsize=256)
def _tap_slices(win: Windows) -> tuple[tuple[Sizes, tuple[slice, ...]], ...]:
    """:meth:`Windows.tap_slices`, cached."""
    return tuple(
        (tap, (_ALL, _ALL, *(slice(p * d, p * d + (o - 1) * s + 1, s)
                             for p, d, s, o in zip(tap, win.dilation, win.stride, win.out,
                                                   strict=True))))
        for tap in itertools.product(*(range(k) for k in win.kernel))
    )


# ------------------------------------------------------------------------ reading the windows


def constant_pad(x: np.ndarray, pads: tuple[tuple[int, int], ...]) -> np.ndarray:
    """x (N, C, *S) zero-padded to (N, C, S1 + b1 + a1, ..., Sr + br + ar).

    Cheaper than ``np.pad`` at small sizes; returns x itself when no padding is needed (callers
    only read it).
    """
    if pads == _NO_PADS[len(pads)]:
        return x
    shape, inside = _pad_geometry(x.shape, pads)
    xp = np.zeros(shape, dtype=x.dtype)
    xp[inside] = x
    return xp


@lru_cache(maxsize=256)
def _pad_geometry(shape: Sizes, pads: tuple[tuple[int, int], ...]
                  ) -> tuple[Sizes, tuple[slice, ...]]:
    """The padded shape and where x sits in it, cached (int tuples only)."""
    inside = [_ALL, _ALL]
    padded = list(shape)
    for axis, (before, after) in enumerate(pads, start=2):
        inside.append(slice(before, before + shape[axis]))
        padded[axis] += before + after
    return tuple(padded), tuple(inside)


def window_view(xp: np.ndarray, kernel: Sizes, stride: Sizes, dilation: Sizes,
                out: Sizes) -> np.ndarray:
    """Read-only strided view of the windows of an already padded input.

    xp: (N, C, *Sp) -> view (N, C, *k, *So) with, at r = 2,
    ``view[n, c, p, q, i, j] == xp[n, c, i*sh + p*dh, j*sw + q*dw]`` (likewise at every rank):
    along each axis the view steps by ``d`` cells over the taps and by ``s`` cells over the
    outputs.

    The caller guarantees ``(So_a - 1) * s_a + (k_a - 1) * d_a < Sp_a`` on every axis
    (:attr:`Windows.reach`). No data is copied.
    """
    shape, strides = _window_geometry(xp.shape, xp.strides, kernel, stride, dilation, out)
    if not xp.flags.c_contiguous:
        return as_strided(xp, shape=shape, strides=strides, writeable=False)
    # Same view as as_strided, built directly: a few microseconds instead of tens, which
    # matters at small shapes.
    view = np.ndarray(shape, dtype=xp.dtype, buffer=xp, strides=strides)
    view.flags.writeable = False
    return view


@lru_cache(maxsize=256)
def _window_geometry(shape: Sizes, strides: Sizes, kernel: Sizes, stride: Sizes,
                     dilation: Sizes, out: Sizes) -> tuple[Sizes, Sizes]:
    """Shape and strides of :func:`window_view`, cached (a few int tuples in, two out; working
    them out per call cost as much as the rest of a small convolution's bookkeeping)."""
    for o, s, k, d, size in zip(out, stride, kernel, dilation, shape[2:], strict=True):
        if (o - 1) * s + (k - 1) * d >= size:
            raise AssertionError("window_view: windows reach past the padded input")
    spatial = strides[2:]
    return ((*shape[:2], *kernel, *out),
            (*strides[:2], *(st * d for st, d in zip(spatial, dilation, strict=True)),
             *(st * s for st, s in zip(spatial, stride, strict=True))))


def _axis_reads(
    tap: int, stride: int, dilation: int, before: int, size: int, n_out: int
) -> tuple[slice, slice] | None:
    """Along one axis: (input slice, output slice) of the cells tap ``tap`` reads inside the input.

    Output i reads input i*s + tap*d - before; the valid outputs are
    ceil((before - tap*d) / s) <= i <= floor((size - 1 + before - tap*d) / s), clipped to
    [0, n_out). None if there are none.
    """
    offset = tap * dilation - before  # input index read by output 0
    first = max(0, -(offset // stride))
    last = min(n_out - 1, (size - 1 - offset) // stride)
    if last < first:
        return None
    in_cells = slice(first * stride + offset, last * stride + offset + 1, stride)
    return in_cells, slice(first, last + 1)


TapRead = tuple[Sizes, tuple[slice, ...], tuple[slice, ...]]


def tap_reads(kernel: Sizes, stride: Sizes, dilation: Sizes, pads_before: Sizes,
              in_sizes: Sizes, out_sizes: Sizes) -> Iterator[TapRead]:
    """Every kernel tap that reads at least one cell of the *unpadded* input, with where.

    Output i = (i_1, ..., i_r) reads input (i_a * s_a + p_a * d_a - before_a)_a for tap
    p = (p_1, ..., p_r). Each entry is ``(p, in_slices, out_slices)``, in row-major tap order,
    such that ``x[:, :, *in_slices]`` and ``y[:, :, *out_slices]`` are the same-shaped (input
    cell, output) pairs of that tap; taps that read only padding are left out. Used to gather
    windows and to scatter gradients back, one tap at a time; each axis is worked out once, so
    the cost is k_1 + ... + k_r, not k_1 * ... * k_r. All arguments are tuples of ints.
    """
    return iter(_tap_reads(kernel, stride, dilation, pads_before, in_sizes, out_sizes))


@lru_cache(maxsize=128)
def _tap_reads(kernel: Sizes, stride: Sizes, dilation: Sizes, pads_before: Sizes,
               in_sizes: Sizes, out_sizes: Sizes) -> tuple[TapRead, ...]:
    """:func:`tap_reads` as a tuple, cached: it depends on a few small ints only, and building
    it (a few microseconds per tap) was a visible part of a call at small shapes."""
    per_axis = []
    for k, s, d, before, size, n_out in zip(kernel, stride, dilation, pads_before, in_sizes,
                                             out_sizes, strict=True):
        reads = []
        for p in range(k):
            where = _axis_reads(p, s, d, before, size, n_out)
            if where is not None:
                reads.append((p, where))
        per_axis.append(reads)
    return tuple(
        (tuple(p for p, _ in combo), tuple(w[0] for _, w in combo),
         tuple(w[1] for _, w in combo))
        for combo in itertools.product(*per_axis)
    )


class WideLayout(NamedTuple):
    """Where the windows of a strided, dilated, padded window op sit in the *wide* layout.

    The padded input is split into its stride phases (phase (a_1, ..., a_r) holds the padded
    cells a_1 + s_1 * u_1, ..., a_r + s_r * u_r), each phase plane stored flat in row-major
    order with dimensions ``dims``. A kernel tap then reads, for all outputs at once, one
    contiguous run of ``run_len`` elements of one phase plane:
    ``planes[phase][..., offset : offset + run_len]``. Output i = (i_1, ..., i_r) sits at
    ``sum_a i_a * plane_strides[a]`` of that run (the run, reshaped to ``run_shape``, is the
    output grid with junk along the inner axes); positions with i_a >= So_a along an inner axis
    (a > 1) are junk, dropped by :func:`from_wide`. Every per-tap step is then a whole-array call
    over long contiguous runs, with no strided or clipped sub-blocks (NumPy's per-row overhead on
    those dominated).
    """

    n_phases: int
    dims: Sizes  # per phase plane, including one spare row along the first axis
    taps: tuple[tuple[int, int], ...]  # per flat tap t (row-major over the kernel): (phase, offset)
    # (phase, index of its input cells in x, index of those cells in the phase plane), both
    # with the leading (N, C) slices
    phase_reads: tuple[tuple[int, tuple[slice, ...], tuple[slice, ...]], ...]
    out: Sizes
    run_len: int  # So_1 * dims[1] * ... * dims[r - 1]
    run_shape: Sizes  # (So_1, dims[1], ..., dims[r - 1]): a run as a grid
    valid: tuple[Any, ...]  # index of the valid outputs in a run_shape grid: (..., :So_2, ...)

    def tap(self, planes: np.ndarray, t: int) -> np.ndarray:
        """View (..., run_len) of what tap t reads for every output, from flat planes
        (phases, ..., prod(dims))."""
        phase, offset = self.taps[t]
        return planes[phase, ..., offset : offset + self.run_len]


@lru_cache(maxsize=128)
def wide_layout(in_sizes: Sizes, kernel: Sizes, stride: Sizes, dilation: Sizes,
                pads_before: Sizes, out: Sizes) -> WideLayout:
    """The wide layout for windows with these parameters over an input of spatial size S.

    Along axis a, tap p reads padded cell i*s + p*d = (i + p*d // s) * s + (p*d % s): cell
    i + p*d // s of phase p*d % s. Each phase therefore needs So_a + (k_a - 1)*d_a // s_a cells
    along axis a, plus one spare row along the first axis so that the last tap's run (whose
    junk tail reaches past the last valid output) stays inside. Only the phases some tap reads
    exist. All arguments are tuples of ints; the result is cached (it depends on these small
    ints only, and building it cost more than a small pooling call itself).
    """
    extent = tuple(o + (k - 1) * d // s
                   for o, k, s, d in zip(out, kernel, stride, dilation, strict=True))
    dims = (extent[0] + 1, *extent[1:])
    plane_strides = [1] * len(dims)
    for a in range(len(dims) - 2, -1, -1):
        plane_strides[a] = plane_strides[a + 1] * dims[a + 1]
    phase_index: dict[Sizes, int] = {}
    taps = []
    for tap in itertools.product(*(range(k) for k in kernel)):
        key = tuple(p * d % s for p, d, s in zip(tap, dilation, stride, strict=True))
        phase = phase_index.setdefault(key, len(phase_index))
        offset = sum((p * d // s) * ps
                     for p, d, s, ps in zip(tap, dilation, stride, plane_strides, strict=True))
        taps.append((phase, offset))
    # Phase a, cell u holds input cell u*s + a - before: the phases read the input like the taps
    # a of a kernel of size s at dilation 1 and stride s.
    phase_reads = tuple(
        (phase_index[key], (_ALL, _ALL, *in_cells), (_ALL, _ALL, *plane_cells))
        for key, in_cells, plane_cells in tap_reads(stride, stride, (1,) * len(stride),
                                                    pads_before, in_sizes, extent)
        if key in phase_index
    )
    return WideLayout(len(phase_index), dims, tuple(taps), phase_reads, tuple(out),
                      out[0] * plane_strides[0], (out[0], *dims[1:]),
                      (Ellipsis, *(slice(0, o) for o in out[1:])))


def wide_planes(x: np.ndarray, layout: WideLayout, fill: float) -> np.ndarray:
    """x (N, C, *S) as read-only flat phase planes (phases, N, C, prod(dims)), ``fill`` where
    no input cell is (padding, overhang, the spare row). One pass over x."""
    planes = np.full((layout.n_phases, *x.shape[:2], *layout.dims), fill, dtype=x.dtype)
    for phase, in_cells, plane_cells in layout.phase_reads:
        planes[phase][plane_cells] = x[in_cells]
    planes = planes.reshape(*planes.shape[:3], -1)
    planes.flags.writeable = False
    return planes


def valid_part(a: np.ndarray, layout: WideLayout) -> np.ndarray:
    """(..., run_len) wide -> view (..., *So) without the junk (no copy)."""
    return a.reshape(*a.shape[:-1], *layout.run_shape)[layout.valid]


def from_wide(a: np.ndarray, layout: WideLayout) -> np.ndarray:
    """(..., run_len) wide -> (..., *So), contiguous: the junk dropped."""
    return np.ascontiguousarray(valid_part(a, layout))


def to_wide(a: np.ndarray, layout: WideLayout) -> np.ndarray:
    """(..., *So) -> (..., run_len) wide, zeros in the junk."""
    lead = a.shape[: a.ndim - len(layout.out)]
    wide = np.zeros((*lead, *layout.run_shape), dtype=a.dtype)
    wide[layout.valid] = a
    return wide.reshape(*lead, -1)


def add_tap(acc: np.ndarray, layout: WideLayout, t: int, values: np.ndarray) -> None:
    """acc (phases, N, C, prod(dims)) += values (N, C, run_len) on the cells tap t reads: the
    adjoint of :meth:`WideLayout.tap`. The junk of values must be zero."""
    phase, offset = layout.taps[t]
    acc[phase, :, :, offset : offset + layout.run_len] += values


def from_planes(acc: np.ndarray, layout: WideLayout, in_shape: tuple[int, ...]) -> np.ndarray:
    """Flat phase planes (phases, N, C, prod(dims)) -> (N, C, *S): the input cells only (the
    adjoint of :func:`wide_planes`, padding dropped); cells no phase holds are 0."""
    planes = acc.reshape(*acc.shape[:3], *layout.dims)
    out = np.zeros(in_shape, dtype=acc.dtype)
    for phase, in_cells, plane_cells in layout.phase_reads:
        out[in_cells] = planes[phase][plane_cells]
    return out
