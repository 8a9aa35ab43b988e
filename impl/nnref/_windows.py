"""Windowing shared by convolution and pooling, at any spatial rank r.

``tap_reads`` is the one primitive both ops build on: where each kernel tap reads the unpadded
input. Convolution scatters its column gradient back with it (col2im); pooling's wide layout
(``WideLayout``: stride phases stored flat so that each tap reads one contiguous run) places the
input cells in its phase planes with it and takes gradients back out the same way.
``window_view`` reads every window of a padded input at once, for conv's im2col.

Arrays are (N, C, *S) with r = len(S) spatial axes; every geometry argument (kernel, stride,
dilation, pads, sizes) holds one entry per spatial axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

Sizes = tuple[int, ...]
_ALL = slice(None)
_NO_PADS = {r: ((0, 0),) * r for r in (1, 2, 3)}


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

    The caller guarantees ``(So_a - 1) * s_a + (k_a - 1) * d_a < Sp_a`` on every axis; the
    output-size helper in ``_checks`` does so. No data is copied.
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
