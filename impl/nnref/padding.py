"""Padding of the two trailing axes: constant, reflect, replicate, circular."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import Pads, float_array, padding_pairs, real

PAD_MODES = ("constant", "reflect", "replicate", "circular")

# nnref's mode name -> np.pad's name for the same picture (see CONTRACT.md for the others).
_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _check_mode(mode: Any) -> str:
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}")
    return mode


def _check_pads_fit(pads: Pads, hw: tuple[int, int], mode: str, pad_arg: Any) -> None:
    """torch's limits: reflect needs pad < size, circular pad <= size (per side)."""
    for (before, after), size, axis in zip(pads, hw, ("height", "width"), strict=True):
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


def _source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each padded position along one axis, the input position it copies (non-constant)."""
    return np.pad(np.arange(size), (before, after), mode=_NUMPY_MODE[mode])


def pad(x: np.ndarray, pad_width: Any, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """Pad the two trailing axes of x.

    x: (N, C, H, W) -> (N, C, H + t + b, W + l + r), ``pad_width`` as p, (ph, pw) or
    ((t, b), (l, r)). ``value`` fills ``constant`` padding; other modes copy input cells.
    """
    x = float_array("x", x, ndim=4)
    mode = _check_mode(mode)
    pads = padding_pairs("pad_width", pad_width)
    _check_pads_fit(pads, x.shape[2:], mode, pad_width)
    value = real("value", value)
    if mode == "constant":
        return np.pad(x, ((0, 0), (0, 0), *pads), mode="constant", constant_values=value)
    rows = _source_index(x.shape[2], *pads[0], mode)
    cols = _source_index(x.shape[3], *pads[1], mode)
    return x[:, :, rows[:, None], cols[None, :]]


def pad_backward(dy: np.ndarray, pad_width: Any, mode: str = "constant") -> np.ndarray:
    """Adjoint of :func:`pad`: the gradient with respect to its input.

    dy: (N, C, Hp, Wp) -> dx: (N, C, Hp - t - b, Wp - l - r). Border gradients are added onto
    the cells they were copied from; constant padding passes nothing back.
    """
    dy = float_array("dy", dy, ndim=4)
    mode = _check_mode(mode)
    pads = padding_pairs("pad_width", pad_width)
    (top, bottom), (left, right) = pads
    height, width = dy.shape[2] - top - bottom, dy.shape[3] - left - right
    if height < 1 or width < 1:
        raise ValueError(
            f"pad_width {pad_width!r} leaves no input inside dy of shape {dy.shape}"
        )
    _check_pads_fit(pads, (height, width), mode, pad_width)
    if mode == "constant":
        return dy[:, :, top : top + height, left : left + width].copy()
    rows = _source_index(height, top, bottom, mode)
    cols = _source_index(width, left, right, mode)
    dx_rows = np.zeros((*dy.shape[:2], height, dy.shape[3]), dtype=dy.dtype)
    np.add.at(dx_rows, (slice(None), slice(None), rows), dy)
    dx = np.zeros((*dy.shape[:2], height, width), dtype=dy.dtype)
    np.add.at(dx, (slice(None), slice(None), slice(None), cols), dx_rows)
    return dx
