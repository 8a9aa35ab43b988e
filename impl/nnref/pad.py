"""Padding of the spatial axes of (N, C, *S), r = len(S) = 1, 2 or 3: constant, reflect,
replicate, circular. The rank comes from the input's ndim.

    pad: (N, C, S1, ..., Sr) -> (N, C, S1 + b1 + a1, ..., Sr + br + ar)

Every padded cell copies one input cell (or holds ``value`` for constant padding); along each
axis, with j = i - before the position in input coordinates, y[..., i] = x[..., src(j)] with

    reflect:   src(j) = -j for j < 0, 2 * (S - 1) - j for j >= S   (pads < S)
    replicate: src(j) = min(max(j, 0), S - 1)
    circular:  src(j) = j mod S                                    (pads <= S)

(np.pad's reflect / edge / wrap), taken axis by axis. ``pad_width`` is p, one entry per axis,
or (before, after) pairs. ``pad_backward`` is the
adjoint: each padded cell's gradient is added onto the cell it was copied from.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ._checks import AXIS_NAMES, float_array, real
from ._windows import Pads, padding_pairs

PAD_MODES = ("constant", "reflect", "replicate", "circular")

# nnref's mode name -> np.pad's name for the same picture (see CONTRACT.md for the others).
_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}

_RANKS = (3, 4, 5)
_ALL = slice(None)
# Per rank, per axis: the shape an index array along that axis takes to broadcast over the grid.
_BROADCAST = {r: [tuple(-1 if b == a else 1 for b in range(r)) for a in range(r)]
              for r in (1, 2, 3)}


def _check_mode(mode: Any) -> str:
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}")
    return mode


def _check_pads_fit(pads: Pads, sizes: tuple[int, ...], mode: str, pad_arg: Any) -> None:
    """torch's limits: reflect needs pad < size, circular pad <= size (per side)."""
    for (before, after), size, axis in zip(pads, sizes, AXIS_NAMES[len(sizes)], strict=True):
        largest = max(before, after)
        if mode == "reflect" and largest >= size:
            raise ValueError(
                f"pad_width {pad_arg!r}: reflect padding must be < the {axis} {size}, got {largest}"
            )
        if mode == "circular" and largest > size:
            raise ValueError(
                f"pad_width {pad_arg!r}: circular padding must be <= the {axis} {size}, "
                f"got {largest}"
            )


@lru_cache(maxsize=256)
def _source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each padded position along one axis, the input position it copies (non-constant).
    Cached (np.pad costs microseconds even on a short arange), hence read-only."""
    index = np.pad(np.arange(size), (before, after), mode=_NUMPY_MODE[mode])
    index.flags.writeable = False
    return index


@lru_cache(maxsize=256)
def _interior(padded_shape: tuple[int, ...], pads: Pads
              ) -> tuple[tuple[int, ...], tuple[slice, ...]]:
    """The unpadded spatial sizes inside a padded shape, and the index of that interior."""
    sizes = tuple(s - b - a for s, (b, a) in zip(padded_shape[2:], pads, strict=True))
    return sizes, (_ALL, _ALL, *(slice(b, b + s) for s, (b, _) in zip(sizes, pads, strict=True)))


def pad(x: np.ndarray, pad_width: Any, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of x.

    x: (N, C, *S) with 1 to 3 spatial axes -> (N, C, S1 + b1 + a1, ..., Sr + br + ar);
    ``pad_width`` is p or one entry per spatial axis, each p or (before, after) (at r = 2: p,
    (ph, pw) or ((t, b), (l, r))). ``value`` fills ``constant`` padding; other modes copy input
    cells.
    """
    x = float_array("x", x, _RANKS, "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
    mode = _check_mode(mode)
    rank = x.ndim - 2
    pads = padding_pairs("pad_width", pad_width, rank)
    if mode != "constant":
        _check_pads_fit(pads, x.shape[2:], mode, pad_width)
    value = real("value", value)
    if mode == "constant":
        return np.pad(x, ((0, 0), (0, 0), *pads), mode="constant", constant_values=value)
    # Gather with one index array per spatial axis, shaped to broadcast into the output grid
    # (what np.ix_ builds): y[..., i1, ..., ir] = x[..., src1[i1], ..., srcr[ir]].
    grid = [_ALL, _ALL]
    for a, (size, (before, after)) in enumerate(zip(x.shape[2:], pads, strict=True)):
        grid.append(_source_index(size, before, after, mode).reshape(_BROADCAST[rank][a]))
    return x[tuple(grid)]


def pad_backward(dy: np.ndarray, pad_width: Any, mode: str = "constant") -> np.ndarray:
    """Adjoint of :func:`pad`: the gradient with respect to its input.

    dy: (N, C, *Sp) -> dx: (N, C, Sp1 - b1 - a1, ..., Spr - br - ar). Axis by axis, the interior
    of dy is copied (bit for bit: a cell that receives no border gradient keeps its -0.0) and
    each border cell's gradient is added onto the cell it was copied from; constant padding
    passes nothing back.
    """
    dy = float_array("dy", dy, _RANKS, "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
    mode = _check_mode(mode)
    pads = padding_pairs("pad_width", pad_width, dy.ndim - 2)
    sizes, interior = _interior(dy.shape, pads)
    if min(sizes) < 1:
        raise ValueError(
            f"pad_width {pad_width!r} leaves no input inside dy of shape {dy.shape}"
        )
    if mode == "constant":
        return dy[interior].copy()
    _check_pads_fit(pads, sizes, mode, pad_width)
    grad = dy
    for axis, (size, (before, after)) in enumerate(zip(sizes, pads, strict=True), start=2):
        if before == after == 0:
            continue
        lead = (_ALL,) * axis
        interior = grad[(*lead, slice(before, before + size))].copy()
        border = np.r_[0:before, before + size : before + size + after]
        sources = _source_index(size, before, after, mode)[border]
        np.add.at(interior, (*lead, sources), np.take(grad, border, axis=axis))
        grad = interior
    return grad.copy() if grad is dy else grad
