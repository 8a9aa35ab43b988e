"""Sampling helpers shared by the window ops' records (conv, pooling): shapes, regimes of stride
and padding, the forms a spatial or padding argument can take, and the corners a window
configuration reaches. Nothing here names an op.
"""

from __future__ import annotations

from typing import Any

from ..cases import Pads, window_count

# Largest spatial size per axis by rank: (small, normal). Small keeps element-wise finite
# differences cheap; rank 3 stays small so that a case runs in milliseconds.
TOP_SIZE = {0: (1, 1), 1: (9, 16), 2: (6, 11), 3: (4, 6)}

# How windows are laid out along each axis:
#   dense    stride 1, kernel > 1, dilation 1: every cell in several windows (index bugs)
#   overlap  1 < stride < kernel
#   tiling   stride == kernel
#   gap      stride > kernel: cells no window reads
#   free     stride, kernel and dilation drawn independently
WINDOW_REGIMES = ("dense", "overlap", "tiling", "gap", "free")

# Padding: none; pad = kernel // 2 on every side ("half", the usual "keep the size"); a random
# pad per side ("asymmetric"); one random pad for every side ("uniform").
PAD_REGIMES = ("none", "half", "asymmetric", "uniform")


def batch_channels(d: Any, small: bool) -> tuple[int, int]:
    return d.integer(2, 3, "N"), d.integer(2, 3 if small else 5, "C")


def sizes(d: Any, rank: int, small: bool, minimum: int = 1) -> tuple[int, ...]:
    top = TOP_SIZE[rank][0 if small else 1]
    return tuple(d.integer(minimum, max(top, minimum), f"S{a}") for a in range(rank))


def rank_of(d: Any, ranks: tuple[int, ...], rank: int | None) -> int:
    return rank if rank is not None else d.choice(ranks, "rank")


def windows(d: Any, rank: int, max_kernel: int = 4, max_dilation: int = 3
            ) -> tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(regime, kernel, stride, dilation), one entry per axis."""
    regime = d.choice(WINDOW_REGIMES, "window regime")
    kernel, stride, dilation = [], [], []
    for a in range(rank):
        if regime == "dense":
            k, s, dl = d.integer(2, max_kernel, f"k{a}"), 1, 1
        elif regime == "overlap":
            k = d.integer(3, max_kernel, f"k{a}")
            s, dl = d.integer(2, k - 1, f"s{a}"), 1
        elif regime == "tiling":
            k = d.integer(1, max_kernel, f"k{a}")
            s, dl = k, d.choice([1, 1, 2], f"d{a}")
        elif regime == "gap":
            k = d.integer(1, max_kernel - 1, f"k{a}")
            s, dl = d.integer(k + 1, max_kernel + 1, f"s{a}"), 1
        else:
            k, s = d.integer(1, max_kernel, f"k{a}"), d.integer(1, max_kernel + 1, f"s{a}")
            dl = d.integer(1, max_dilation, f"d{a}")
        kernel.append(k)
        stride.append(s)
        dilation.append(dl)
    return regime, tuple(kernel), tuple(stride), tuple(dilation)


def pads(d: Any, kernel: tuple[int, ...], limit: int | None = None) -> Pads:
    """(before, after) per axis by a drawn padding regime; ``limit`` caps each pad (pooling:
    kernel // 2, then ``limit`` is ignored and the cap is per axis)."""
    regime = d.choice(PAD_REGIMES, "padding regime")
    out = []
    uniform = None
    for a, k in enumerate(kernel):
        cap = k // 2 if limit is None else limit
        if regime == "none":
            out.append((0, 0))
        elif regime == "half":
            out.append((k // 2, k // 2))
        elif regime == "uniform":
            if uniform is None:
                uniform = d.integer(0, cap, "pad size")
            p = min(uniform, cap)
            out.append((p, p))
        else:
            out.append((d.integer(0, cap, f"pad{a} before"), d.integer(0, cap, f"pad{a} after")))
    return tuple(out)


def spatial_form(d: Any, values: tuple[int, ...], label: str) -> Any:
    """A spatial argument as the contract allows: an int (when all axes agree) or a tuple."""
    if len(set(values)) == 1 and d.boolean(f"{label} as an int"):
        return values[0]
    return tuple(values)


def padding_form(d: Any, p: Pads) -> Any:
    """Padding as the contract allows: an int, one int per axis, or (before, after) pairs,
    mixed per axis (an int where the axis is symmetric)."""
    symmetric = all(b == a for b, a in p)
    if symmetric and len({b for b, _ in p}) == 1 and d.boolean("padding as an int"):
        return p[0][0]
    if symmetric and d.boolean("padding as one int per axis"):
        return tuple(b for b, _ in p)
    if d.boolean("padding as pairs"):
        return tuple((b, a) for b, a in p)
    return tuple(b if b == a else (b, a) for b, a in p)


def window_corners(shape: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                   dilation: tuple[int, ...], p: Pads, ceil_mode: bool = False) -> list[str]:
    """Corner labels of a window configuration over an input of ``shape`` (N, C, *S)."""
    n, c, *size = shape
    out = []
    if any(s == 1 and k > 1 and d == 1 for k, s, d in zip(kernel, stride, dilation,
                                                           strict=True)):
        out.append("stride 1, kernel > 1, dilation 1")
    if any(s > d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation, strict=True)):
        out.append("stride > kernel extent")
    if any(1 < s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation, strict=True)):
        out.append("overlapping strided windows")
    if any(d > 1 for d in dilation):
        out.append("dilation > 1")
    if any(b == a == k // 2 > 0 for (b, a), k in zip(p, kernel, strict=True)):
        out.append("pad = kernel // 2")
    if any(b > 0 for b, _ in p):
        out.append("window starts in padding")
    if any(b != a for b, a in p):
        out.append("asymmetric padding")
    if ceil_mode and any(
        window_count(sz, b, a, k, s, d, True) > window_count(sz, b, a, k, s, d, False)
        for sz, (b, a), k, s, d in zip(size, p, kernel, stride, dilation, strict=True)
    ):
        out.append("ceil_mode extra window")
    if len(set(size)) > 1:
        out.append("non-square input")
    if 1 in size:
        out.append("an axis of size 1")
    if n > 1 and c > 1:
        out.append("N, C > 1")
    out.append(f"rank {len(size)}")
    return out
