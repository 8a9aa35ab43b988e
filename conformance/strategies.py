"""Hypothesis strategies that draw only *valid* configurations, as ``Case`` objects.

Draws are labelled (``note``-style, via the case's repr in the test's reproducer), favour the
shapes that expose axis and indexing bugs (N, C > 1, H != W, sizes not divisible by the stride)
and reach the edges: 1x1 kernels, kernels as large as the padded input, stride > kernel,
dilation, groups, asymmetric padding, "same" with strides, ceil_mode, ties, small-variance
channels. ``small=True`` keeps tensors small enough for element-wise finite differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from .cases import BatchNormCase, ConvCase, PadCase, PoolCase, every_window_sees_input

DTYPES = (np.float32, np.float64)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _batch_channels(draw: Any, small: bool) -> tuple[int, int]:
    return draw(st.integers(2, 3), label="N"), draw(st.integers(2, 3 if small else 5), label="C")


def _hw(draw: Any, small: bool, minimum: int = 1) -> tuple[int, int]:
    top = 7 if small else 11
    h = draw(st.integers(minimum, top), label="H")
    w = draw(st.integers(minimum, top).filter(lambda v: v != h or v == top), label="W")
    return h, w


def _pads(draw: Any, limit_h: int, limit_w: int) -> Any:
    """An int, a pair or a pair of pairs, each pad in [0, limit] for its axis."""
    form = draw(st.sampled_from(["int", "pair", "pairs"]), label="padding form")
    if form == "int":
        return draw(st.integers(0, min(limit_h, limit_w)))
    if form == "pair":
        return (draw(st.integers(0, limit_h)), draw(st.integers(0, limit_w)))
    return (
        (draw(st.integers(0, limit_h)), draw(st.integers(0, limit_h))),
        (draw(st.integers(0, limit_w)), draw(st.integers(0, limit_w))),
    )


def _int_or_pair(draw: Any, low: int, high: int, label: str) -> Any:
    a = draw(st.integers(low, high), label=label)
    if draw(st.booleans(), label=f"{label} is a pair"):
        return (a, draw(st.integers(low, high), label=f"{label} width"))
    return a


@st.composite
def pad_cases(draw: Any, small: bool = False, modes: tuple[str, ...] | None = None) -> PadCase:
    n, c = _batch_channels(draw, small)
    h, w = _hw(draw, small)
    mode = draw(st.sampled_from(modes or ("constant", "reflect", "replicate", "circular")))
    # torch's limits: reflect < size, circular <= size; others anything (kept small).
    limit = {"reflect": (h - 1, w - 1), "circular": (h, w)}.get(mode, (4, 4))
    pad_width = _pads(draw, min(limit[0], 4), min(limit[1], 4))
    value = draw(st.sampled_from([0.0, 1.5, -2.0])) if mode == "constant" else 0.0
    return PadCase((n, c, h, w), pad_width, mode, value)


@st.composite
def conv_cases(draw: Any, small: bool = False, kind: str = "normal") -> ConvCase:
    n = draw(st.integers(2, 3), label="N")
    groups = draw(st.sampled_from([1, 1, 2, 3]), label="groups")
    c = groups * draw(st.integers(1, 2 if small else 3), label="C per group")
    co = groups * draw(st.integers(1, 2 if small else 3), label="Co per group")
    h, w = _hw(draw, small)
    stride = _int_or_pair(draw, 1, 4, "stride")
    dilation = _int_or_pair(draw, 1, 3, "dilation")
    form = draw(st.sampled_from(["explicit", "explicit", "explicit", "same", "valid"]),
                label="padding kind")
    padding: Any = form if form != "explicit" else _pads(draw, 3, 3)
    kh = draw(st.integers(1, 4), label="kh")
    kw = draw(st.integers(1, 4), label="kw")
    case = ConvCase(
        (n, c, h, w), (co, c // groups, kh, kw), draw(st.booleans(), label="bias"),
        stride, padding, dilation, groups, kind,
    )
    assume(min(case.output_shape()[2:]) >= 1)
    if small:
        assume(np.prod(case.x_shape) <= 300)
    return case


@st.composite
def pool_cases(draw: Any, small: bool = False, kind: str | None = None) -> PoolCase:
    n, c = _batch_channels(draw, small)
    h, w = _hw(draw, small, minimum=2)
    kernel = _int_or_pair(draw, 1, 4, "kernel_size")
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    stride = None if draw(st.booleans(), label="default stride") else _int_or_pair(
        draw, 1, 5, "stride")
    padding = _pads(draw, kh // 2, kw // 2)
    dilation = _int_or_pair(draw, 1, 3, "dilation")
    ceil_mode = draw(st.booleans(), label="ceil_mode")
    kind = kind or draw(st.sampled_from(["ties", "normal", "unique"]), label="values")
    case = PoolCase((n, c, h, w), kernel, stride, padding, dilation, ceil_mode, kind)
    assume(min(case.output_shape()[2:]) >= 1)
    assume(every_window_sees_input(case))
    return case


@st.composite
def batch_norm_cases(draw: Any, small: bool = False, kind: str | None = None) -> BatchNormCase:
    n, c = _batch_channels(draw, small)
    h, w = _hw(draw, small)
    training = draw(st.booleans(), label="training")
    running = draw(st.booleans(), label="running stats") or not training
    momentum = draw(st.sampled_from([0.1, 0.0, 1.0, 0.37]), label="momentum")
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]), label="eps")
    kind = kind or draw(st.sampled_from(["normal", "small_var"]), label="values")
    return BatchNormCase((n, c, h, w), training, running, momentum, eps, kind)


def any_case(small: bool = False) -> st.SearchStrategy[Any]:
    return st.one_of(pad_cases(small), conv_cases(small), pool_cases(small),
                     batch_norm_cases(small))


CASE_STRATEGIES = {
    "pad": pad_cases,
    "conv2d": conv_cases,
    "max_pool2d": pool_cases,
    "batch_norm": batch_norm_cases,
}
