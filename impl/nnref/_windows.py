"""Windowing shared by convolution and pooling.

``window_view`` reads every window of a padded input at once (conv's im2col); ``tap_reads`` says
where one kernel tap reads the unpadded input, which pooling uses to gather windows and both ops
use to scatter gradients back.
"""

from __future__ import annotations

from collections.abc import Callable
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
) -> list[tuple[int, int, TapSlices]]:
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
    return [
        (p, q, ((row[0], col[0]), (row[1], col[1])))
        for p, row in enumerate(rows) if row is not None
        for q, col in enumerate(cols) if col is not None
    ]


class WideWindows(NamedTuple):
    """The windows of a strided, dilated, padded 2-D window op in the *wide* layout.

    The padded input is split into its stride phases (phase (a, b) holds padded rows a, a + sh,
    ... and columns b, b + sw, ...), each phase plane stored flat with ``row_len`` columns. A
    kernel tap then reads, for all outputs at once, one contiguous run of ``Ho * row_len``
    elements of one phase plane: ``planes[phase][..., offset : offset + Ho * row_len]``. Output
    (i, j) sits at i * row_len + j of that run; columns j >= Wo are junk, dropped by
    :func:`from_wide`. Every per-tap step is then a whole-array call over long contiguous runs,
    with no strided or clipped sub-blocks.
    """

    planes: np.ndarray  # (phases, N, C, plane_len), ``fill`` where no input cell is
    taps: list[tuple[int, int]]  # per tap t = p * kw + q: (phase, offset)
    phase_reads: list[tuple[int, TapSlices]]  # (phase, where the phase holds input cells)
    row_len: int
    out_hw: tuple[int, int]

    @property
    def run_len(self) -> int:
        """Length of one tap's run: Ho * row_len."""
        return self.out_hw[0] * self.row_len

    def tap(self, t: int) -> np.ndarray:
        """Read-only view (N, C, Ho * row_len) of what tap t reads for every output."""
        phase, offset = self.taps[t]
        return self.planes[phase, :, :, offset : offset + self.run_len]


def wide_windows(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    pads_before: tuple[int, int], out_hw: tuple[int, int], fill: float,
) -> WideWindows:
    """Build the wide layout of x (N, C, H, W) for windows with these parameters.

    Tap p reads padded row i*sh + p*dh = (i + p*dh // sh) * sh + (p*dh % sh): row
    i + p*dh // sh of phase p*dh % sh. Each phase therefore needs Ho + (kh - 1)*dh // sh rows
    (likewise columns: row_len = Wo + (kw - 1)*dw // sw) plus one spare row so that the last
    tap's run stays inside. Only the phases some tap reads are built; cells outside x are
    ``fill``. Cost: one pass over x (and the fill).
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
    planes = np.empty((len(phase_index), *x.shape[:2], rows + 1, row_len), dtype=x.dtype)
    phase_reads = []
    for (a, b), phase in phase_index.items():
        # Phase row u holds input row u*sh + a - top: the reads of a "tap" a at dilation 1.
        row_reads = _axis_reads(a, sh, 1, pads_before[0], x.shape[2], rows)
        col_reads = _axis_reads(b, sw, 1, pads_before[1], x.shape[3], row_len)
        plane = planes[phase]
        if row_reads is None or col_reads is None:
            plane[...] = fill
            continue
        (in_rows, u_rows), (in_cols, v_cols) = row_reads, col_reads
        plane[:, :, u_rows, v_cols] = x[:, :, in_rows, in_cols]
        # ``fill`` around the copied block only: the spare row and any padding or overhang.
        plane[:, :, : u_rows.start] = fill
        plane[:, :, u_rows.stop :] = fill
        plane[:, :, u_rows, : v_cols.start] = fill
        plane[:, :, u_rows, v_cols.stop :] = fill
        phase_reads.append((phase, ((in_rows, in_cols), (u_rows, v_cols))))
    planes = planes.reshape(*planes.shape[:3], -1)
    planes.flags.writeable = False
    return WideWindows(planes, taps, phase_reads, row_len, out_hw)


def valid_part(a: np.ndarray, ww: WideWindows) -> np.ndarray:
    """(..., Ho * row_len) wide -> view (..., Ho, Wo) without the junk columns (no copy)."""
    ho, wo = ww.out_hw
    return a.reshape(*a.shape[:-1], ho, ww.row_len)[..., :wo]


def from_wide(a: np.ndarray, ww: WideWindows) -> np.ndarray:
    """(..., Ho * row_len) wide -> (..., Ho, Wo), contiguous: the junk columns dropped."""
    return np.ascontiguousarray(valid_part(a, ww))


def to_wide(a: np.ndarray, ww: WideWindows) -> np.ndarray:
    """(..., Ho, Wo) -> (..., Ho * row_len) wide, zeros in the junk columns."""
    wide = np.zeros((*a.shape[:-1], ww.row_len), dtype=a.dtype)
    wide[..., : ww.out_hw[1]] = a
    return wide.reshape(*a.shape[:-2], -1)


def scatter_wide(tap_value: Callable[[int], np.ndarray], ww: WideWindows,
                 in_shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of reading the taps: add ``tap_value(t)`` (N, C, Ho * row_len), for every tap t,
    onto the cells tap t read -> (N, C, H, W). Junk columns must hold zeros."""
    n_phases, n, c, plane_len = ww.planes.shape
    acc = np.zeros((n_phases, n, c, plane_len), dtype=ww.planes.dtype)
    for t, (phase, offset) in enumerate(ww.taps):
        acc[phase, :, :, offset : offset + ww.run_len] += tap_value(t)
    acc = acc.reshape(n_phases, n, c, -1, ww.row_len)
    out = np.zeros(in_shape, dtype=ww.planes.dtype)
    for phase, ((in_rows, in_cols), (u_rows, v_cols)) in ww.phase_reads:
        out[:, :, in_rows, in_cols] = acc[phase][:, :, u_rows, v_cols]
    return out
