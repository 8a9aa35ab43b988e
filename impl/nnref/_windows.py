"""Windowing shared by convolution and pooling.

``tap_reads`` is the one primitive both ops build on: where each kernel tap reads the unpadded
input. Convolution scatters its column gradient back with it (col2im); pooling's wide layout
(``WideLayout``: stride phases stored flat so that each tap reads one contiguous run) places the
input cells in its phase planes with it and takes gradients back out the same way.
``window_view`` reads every window of a padded input at once, for conv's im2col.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided


def constant_pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """x (N, C, H, W) zero-padded to (N, C, H + t + b, W + l + r).

    Cheaper than ``np.pad`` at small sizes; returns x itself when no padding is needed (callers
    only read it).
    """
    (top, bottom), (left, right) = pads
    n, c, h, w = x.shape
    if top == bottom == left == right == 0:
        return x
    xp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    xp[:, :, top : top + h, left : left + w] = x
    return xp


def window_view(
    xp: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """Read-only strided view of the windows of an already padded input.

    xp: (N, C, Hp, Wp) -> view (N, C, kh, kw, Ho, Wo) with
    ``view[n, c, p, q, i, j] == xp[n, c, i*sh + p*dh, j*sw + q*dw]``.

    The caller guarantees ``(Ho - 1) * sh + (kh - 1) * dh < Hp`` (likewise for W); the output-size
    helper in ``_checks`` does so. No data is copied.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    if (ho - 1) * sh + (kh - 1) * dh >= xp.shape[2] or (wo - 1) * sw + (kw - 1) * dw >= xp.shape[3]:
        raise AssertionError("window_view: windows reach past the padded input")
    s_n, s_c, s_h, s_w = xp.strides
    shape = (xp.shape[0], xp.shape[1], kh, kw, ho, wo)
    strides = (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw)
    if not xp.flags.c_contiguous:
        return as_strided(xp, shape=shape, strides=strides, writeable=False)
    # Same view as as_strided, built directly: a few microseconds instead of tens, which
    # matters at small shapes.
    view = np.ndarray(shape, dtype=xp.dtype, buffer=xp, strides=strides)
    view.flags.writeable = False
    return view


TapSlices = tuple[tuple[slice, slice], tuple[slice, slice]]


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


def tap_reads(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    pads_before: tuple[int, int], in_hw: tuple[int, int], out_hw: tuple[int, int],
) -> Iterator[tuple[int, int, TapSlices]]:
    """Every kernel tap (p, q) that reads at least one cell of the *unpadded* input, with where.

    Output (i, j) reads input (i*sh + p*dh - top, j*sw + q*dw - left). Each entry is
    ``(p, q, ((in_rows, in_cols), (out_rows, out_cols)))`` such that ``x[..., in_rows, in_cols]``
    and ``y[..., out_rows, out_cols]`` are the same-shaped (input cell, output) pairs of that tap;
    taps that read only padding are left out. Used to gather windows and to scatter gradients
    back, one tap at a time; each axis is worked out once, so the cost is kh + kw, not kh * kw.
    """
    rows = [_axis_reads(p, stride[0], dilation[0], pads_before[0], in_hw[0], out_hw[0])
            for p in range(kernel[0])]
    cols = [_axis_reads(q, stride[1], dilation[1], pads_before[1], in_hw[1], out_hw[1])
            for q in range(kernel[1])]
    # A generator: one tap's slices alive at a time (at tiny shapes a list of them all was a
    # visible part of the peak memory).
    for p, row in enumerate(rows):
        for q, col in enumerate(cols):
            if row is not None and col is not None:
                yield p, q, ((row[0], col[0]), (row[1], col[1]))


class WideLayout(NamedTuple):
    """Where the windows of a strided, dilated, padded 2-D window op sit in the *wide* layout.

    The padded input is split into its stride phases (phase (a, b) holds padded rows a, a + sh,
    ... and columns b, b + sw, ...), each phase plane stored flat, ``rows`` x ``row_len``. A
    kernel tap then reads, for all outputs at once, one contiguous run of ``Ho * row_len``
    elements of one phase plane: ``planes[phase][..., offset : offset + Ho * row_len]``. Output
    (i, j) sits at i * row_len + j of that run; columns j >= Wo are junk, dropped by
    :func:`from_wide`. Every per-tap step is then a whole-array call over long contiguous runs,
    with no strided or clipped sub-blocks (NumPy's per-row overhead on those dominated).
    """

    n_phases: int
    rows: int  # per phase plane, including one spare row so the last tap's run stays inside
    row_len: int
    taps: list[tuple[int, int]]  # per tap t = p * kw + q: (phase, offset)
    phase_reads: list[tuple[int, TapSlices]]  # (phase, (x slices, phase-plane slices))
    out_hw: tuple[int, int]

    @property
    def run_len(self) -> int:
        """Length of one tap's run: Ho * row_len."""
        return self.out_hw[0] * self.row_len

    def tap(self, planes: np.ndarray, t: int) -> np.ndarray:
        """View (..., Ho * row_len) of what tap t reads for every output, from flat planes
        (phases, ..., rows * row_len)."""
        phase, offset = self.taps[t]
        return planes[phase, ..., offset : offset + self.run_len]


def wide_layout(
    in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], pads_before: tuple[int, int], out_hw: tuple[int, int],
) -> WideLayout:
    """The wide layout for windows with these parameters over an (H, W) input.

    Tap p reads padded row i*sh + p*dh = (i + p*dh // sh) * sh + (p*dh % sh): row
    i + p*dh // sh of phase p*dh % sh. Each phase therefore needs Ho + (kh - 1)*dh // sh rows
    (likewise columns: row_len = Wo + (kw - 1)*dw // sw) plus one spare row. Only the phases
    some tap reads exist.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    rows = ho + (kh - 1) * dh // sh
    row_len = wo + (kw - 1) * dw // sw
    phase_index: dict[tuple[int, int], int] = {}
    taps = []
    for p in range(kh):
        for q in range(kw):
            key = (p * dh % sh, q * dw % sw)
            phase = phase_index.setdefault(key, len(phase_index))
            taps.append((phase, (p * dh // sh) * row_len + q * dw // sw))
    # Phase (a, b) row u, column v holds input cell (u*sh + a - top, v*sw + b - left): phases
    # read the input like the taps (a, b) of a (sh, sw) kernel at dilation 1 and stride (sh, sw).
    phase_reads = [
        (phase_index[a, b], where)
        for a, b, where in tap_reads(stride, stride, (1, 1), pads_before, in_hw, (rows, row_len))
        if (a, b) in phase_index
    ]
    return WideLayout(len(phase_index), rows + 1, row_len, taps, phase_reads, out_hw)


def wide_planes(x: np.ndarray, layout: WideLayout, fill: float) -> np.ndarray:
    """x (N, C, H, W) as read-only flat phase planes (phases, N, C, rows * row_len), ``fill``
    where no input cell is (padding, overhang, the spare row). One pass over x."""
    planes = np.full((layout.n_phases, *x.shape[:2], layout.rows, layout.row_len), fill,
                     dtype=x.dtype)
    for phase, ((in_rows, in_cols), (u_rows, v_cols)) in layout.phase_reads:
        planes[phase][:, :, u_rows, v_cols] = x[:, :, in_rows, in_cols]
    planes = planes.reshape(*planes.shape[:3], -1)
    planes.flags.writeable = False
    return planes


def valid_part(a: np.ndarray, layout: WideLayout) -> np.ndarray:
    """(..., Ho * row_len) wide -> view (..., Ho, Wo) without the junk columns (no copy)."""
    ho, wo = layout.out_hw
    return a.reshape(*a.shape[:-1], ho, layout.row_len)[..., :wo]


def from_wide(a: np.ndarray, layout: WideLayout) -> np.ndarray:
    """(..., Ho * row_len) wide -> (..., Ho, Wo), contiguous: the junk columns dropped."""
    return np.ascontiguousarray(valid_part(a, layout))


def to_wide(a: np.ndarray, layout: WideLayout) -> np.ndarray:
    """(..., Ho, Wo) -> (..., Ho * row_len) wide, zeros in the junk columns."""
    wide = np.zeros((*a.shape[:-1], layout.row_len), dtype=a.dtype)
    wide[..., : layout.out_hw[1]] = a
    return wide.reshape(*a.shape[:-2], -1)


def add_tap(acc: np.ndarray, layout: WideLayout, t: int, values: np.ndarray) -> None:
    """acc (phases, N, C, rows * row_len) += values (N, C, Ho * row_len) on the cells tap t
    reads: the adjoint of :meth:`WideLayout.tap`. Junk columns of values must be zero."""
    phase, offset = layout.taps[t]
    acc[phase, :, :, offset : offset + layout.run_len] += values


def from_planes(acc: np.ndarray, layout: WideLayout, in_shape: tuple[int, ...]) -> np.ndarray:
    """Flat phase planes (phases, N, C, rows * row_len) -> (N, C, H, W): the input cells only
    (the adjoint of :func:`wide_planes`, padding dropped); cells no phase holds are 0."""
    planes = acc.reshape(*acc.shape[:3], layout.rows, layout.row_len)
    out = np.zeros(in_shape, dtype=acc.dtype)
    for phase, ((in_rows, in_cols), (u_rows, v_cols)) in layout.phase_reads:
        out[:, :, in_rows, in_cols] = planes[phase][:, :, u_rows, v_cols]
    return out
