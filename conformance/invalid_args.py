"""Invalid calls of the contract functions, drawn by Hypothesis, and how frameworks answer them.

Every strategy draws a VALID case of an op record (:func:`conformance.sampler.strategy`, at one
of the ranks of the function), takes the keyword arguments of its contract call
(``case.call_args``) and breaks exactly one thing: the result is an :class:`InvalidCall`.
CONTRACT.md ("Errors") says the implementation must raise ``ValueError`` whose message names the
parameter; ``InvalidCall.names`` lists the words one of which the message must contain.

    from conformance import invalid_args
    invalid_args.CATEGORIES                      # category id -> Category
    invalid_args.CATEGORIES["groups_not_dividing"].functions   # the functions it applies to
    invalid_args.invalid_calls()                 # one_of every category
    invalid_args.invalid_calls("negative_padding", ("conv3d",))
    invalid_args.call(impl, c)                   # impl.<function>(*positional, **rest)

No op is named here. A category says which calls it applies to by what the call has (a
``stride`` argument, a ``w``, a per-channel array, a ``dy``, a ``mode``, ...), judged on one valid
case of each record at each rank (:func:`_probe`); the functions it covers follow from the
records (``conformance.ops.contract_functions()``). Every breaker works at every rank: the axis
it breaks is one of the case's spatial axes, padding comes in every form the contract allows at
that rank, and a wrong ndim is one no rank of the function accepts.

The framework side lives in :mod:`conformance.backends.native_calls`: the natively equivalent
``torch.nn.functional`` / ``tf.nn`` call of an invalid call (never the adapters, which validate
on their own). Here, :func:`outcome` names what happened: the exception class name,
``"accepted"``, ``"empty result"``, ``"no gradient"`` (TF returned None for a gradient), ``"not
expressible"`` (the broken argument has no native counterpart) or ``"abort"`` (known to kill the
process: not run). conformance/invalid_behaviour.toml records the expected outcomes per function;
the table and notes of docs/invalid-arguments.md are rendered from it by :func:`markdown_table` /
:func:`markdown_notes` (``python -m conformance.invalid_args``).
"""

from __future__ import annotations

import inspect
import math
import re
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from . import sampler
from .cases import Case, pads_of, spatial
from .ops import RECORDS, contract_functions, op_and_direction, record_of_function
from .sampler import DTYPES, seeds, strategy

FRAMEWORKS = ("torch", "tensorflow")
BEHAVIOUR_PATH = Path(__file__).with_name("invalid_behaviour.toml")
OUTCOME_WORDS = ("accepted", "empty result", "no gradient", "not expressible", "abort")
# The data arrays of a call (CONTRACT.md): everything else that is an array is per channel
# (conv's w and b, batch norm's gamma, beta and running statistics).
DATA_ARRAYS = ("x", "dy")


# ------------------------------------------------------------------------------- functions


def direction_of(function: str) -> str:
    """'conv3d_backward' -> 'backward'; 'pad' -> 'forward'."""
    return op_and_direction(function)[1]


def ranks_of(function: str) -> tuple[int, ...]:
    """The spatial ranks a contract function is called at (pad: 1, 2, 3; conv1d: 1)."""
    rec = record_of_function(function)
    return tuple(r for r in rec.ranks if function in rec.functions(r))


def backward_functions() -> tuple[str, ...]:
    return tuple(f for f in contract_functions() if direction_of(f) == "backward")


# ------------------------------------------------------------------------------- the call


def show(value: Any) -> str:
    """Arrays as dtype[shape]; everything else by repr."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    return repr(value)


@dataclass(frozen=True, eq=False)
class InvalidCall:
    """One invalid call: ``<function>(**args)`` must raise ValueError naming one of ``names``.

    ``broken`` is the argument that was broken (for kernel_too_large: what made the kernel too
    large, "kernel", "dilation" or "input"); the native runners and the record use it. ``rank``
    is the spatial rank of the valid case it was made from. Its repr shows arrays as
    dtype[shape], so a Hypothesis falsifying example stays readable.
    """

    category: str
    function: str
    args: Mapping[str, Any]
    names: tuple[str, ...]
    broken: str
    rank: int

    @property
    def direction(self) -> str:
        return direction_of(self.function)

    @property
    def family(self) -> str:
        """The op record's name ("conv", "max_pool", ...): the native runners dispatch on it."""
        return record_of_function(self.function).name

    @property
    def positional(self) -> tuple[str, ...]:
        """The arguments the contract passes by position (the leading arrays)."""
        return record_of_function(self.function).case_type.positional[self.direction]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.args.items() if isinstance(v, np.ndarray)}

    @property
    def dtype(self) -> str:
        """The dtype name of x (of dy for pad_backward)."""
        return str(self.args["x" if "x" in self.args else "dy"].dtype)

    def record_keys(self) -> tuple[str, ...]:
        """Keys of invalid_behaviour.toml's per-call overrides, most specific first."""
        fn, broken, dtype = self.function, self.broken, self.dtype
        return (f"{fn}/{broken}/{dtype}", f"{fn}/{broken}", f"{fn}/{dtype}", fn)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={show(v)}" for k, v in self.args.items())
        return (f"InvalidCall[{self.category}] {self.function}({body}) "
                f"broken={self.broken!r} names={self.names!r}")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def call(impl: Any, invalid: InvalidCall) -> Any:
    """Run the call on an implementation (nnref, an adapter, any --impl module), the leading
    arrays by position as the suite calls every contract function."""
    args = dict(invalid.args)
    positional = [args.pop(k) for k in invalid.positional if k in args]
    return getattr(impl, invalid.function)(*positional, **args)


def names_in(message: str, names: tuple[str, ...]) -> bool:
    """Whether ``message`` contains one of ``names`` as a whole word (case-insensitive)."""
    return any(
        re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message, re.IGNORECASE)
        for n in names
    )


# ------------------------------------------------------------------------- valid starting point


@cache
def _probe(function: str, rank: int) -> tuple[Case, dict[str, Any]]:
    """One valid case of ``function``'s record at ``rank`` and the arguments of its call: what
    a category's ``applies`` looks at (only the structure of the call, never drawn values)."""
    rec = record_of_function(function)
    case = sampler.sample(rec, 1, seed=0, rank=rank, small=True)[0][0]
    return case, case.call_args(direction_of(function), case.arrays(np.float64, 0))


@cache
def _valid_ndims(function: str, name: str) -> frozenset[int]:
    """The ndims array argument ``name`` of ``function`` has at the function's ranks."""
    out = set()
    for rank in ranks_of(function):
        value = _probe(function, rank)[1].get(name)
        if isinstance(value, np.ndarray):
            out.add(value.ndim)
    return frozenset(out)


def _normal(rng: np.random.Generator, shape: Any, dtype: Any) -> np.ndarray:
    return rng.standard_normal(tuple(shape)).astype(dtype)


def _copy(a: Any) -> np.ndarray:
    return np.array(a, copy=True, order="C")


def _sliced(a: np.ndarray, axis: int, stop: int) -> np.ndarray:
    """``a[..., :stop, ...]`` along ``axis``, as a fresh array."""
    return _copy(a[(slice(None),) * axis + (slice(0, stop),)])


def _with(values: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    out = list(values)
    out[axis] = value
    return tuple(out)


def _sampler_options(record: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The category's sampler options that this record's sampler takes."""
    params = inspect.signature(record.sample).parameters
    return {k: v for k, v in options.items() if k in params}


# ------------------------------------------------------------------------------- breakers
# Each breaker gets a Ctx, edits ctx.args in place and returns (names, broken).

Broken = tuple[tuple[str, ...], str]


@dataclass
class Ctx:
    """What a breaker works on: the valid case, its arrays, the call's arguments (edited in
    place), Hypothesis's draw and a generator for new arrays."""

    draw: Any
    case: Case
    direction: str
    arrays: dict[str, np.ndarray]
    args: dict[str, Any]
    rng: np.random.Generator

    @property
    def rank(self) -> int:
        return self.case.rank

    def axis(self) -> int:
        """One of the case's spatial axes (0 = the first spatial axis, x's axis 2)."""
        return self.draw(st.integers(0, self.rank - 1), label="axis")

    def container(self, entries: list) -> Any:
        """A per-axis argument as a tuple or a list (the contract takes both)."""
        return list(entries) if self.draw(st.booleans(), label="as a list") else tuple(entries)

    def spatial_with(self, current: tuple[int, ...], value: int) -> Any:
        """``value`` as an int, or ``current`` (one entry per axis) with one axis ``value``."""
        if self.draw(st.booleans(), label="as an int"):
            return value
        return self.container(list(_with(current, self.axis(), value)))

    def pads_with(self, pads: tuple[tuple[int, int], ...], axis: int, value: int,
                  grow: bool = True) -> Any:
        """Padding in a drawn contract form (an int; one int per axis; (before, after) pairs;
        ints and pairs mixed) with ``value`` on ``axis``. The other entries stay valid: they
        keep at least their current size (``grow``: conv / pool, where less padding could make
        the kernel too large) or at most it (pad: where more could pass reflect's limit, or
        leave pad_backward's dy too small)."""
        form = self.draw(st.sampled_from(["int", "per axis", "pairs", "mixed"]),
                         label="padding form")
        if form == "int":
            return value
        pick = max if grow else min
        if form == "per axis":
            return self.container([value if i == axis else pick(b, a)
                                   for i, (b, a) in enumerate(pads)])
        pairs = [list(p) for p in pads]
        pairs[axis][self.draw(st.integers(0, 1), label="side")] = value
        if form == "pairs":
            return self.container([tuple(p) for p in pairs])
        return self.container([p[0] if p[0] == p[1] else tuple(p) for p in pairs])

    def explicit_pads(self, key: str = "padding") -> tuple[tuple[int, int], ...]:
        """The case's padding as (before, after) per axis; a padding string ("same",
        "valid") is replaced in the call by its explicit pads (they depend on the kernel, the
        stride and the dilation, which a breaker may change)."""
        if key not in self.args:  # an op without padding (LP pooling): none
            return ((0, 0),) * self.rank
        resolve = getattr(self.case, "resolved_pads", None)
        if isinstance(self.args.get(key), str) and resolve is not None:
            self.args[key] = resolve()
        return pads_of(self.args[key], self.rank)

    def pick_array(self, exclude: tuple[str, ...] = ()) -> str:
        present = [k for k, v in self.args.items()
                   if isinstance(v, np.ndarray) and k not in exclude]
        return self.draw(st.sampled_from(present), label="broken array")


def _kernel_name(args: Mapping[str, Any]) -> str:
    """Where the call's kernel size comes from: conv's ``w`` or pooling's ``kernel_size``."""
    return "w" if "w" in args else "kernel_size"


def _kernel_too_large(k: Ctx) -> Broken:
    a = k.args
    conv = _kernel_name(a) == "w"
    pads = k.explicit_pads()
    kernel = a["w"].shape[2:] if conv else spatial(a["kernel_size"], k.rank)
    dilated = "dilation" in a  # average pooling has none
    dilation = spatial(a["dilation"] if dilated else 1, k.rank)
    axis = k.axis()
    size, (before, after) = a["x"].shape[2 + axis], pads[axis]
    padded = size + before + after
    kk, d = kernel[axis], dilation[axis]
    extent = d * (kk - 1) + 1
    ways = ["kernel"] + (["dilation"] if kk >= 2 and dilated else [])
    ways += ["input"] if extent - before - after - 1 >= 1 else []
    way = k.draw(st.sampled_from(ways), label="made too large by")
    if way == "kernel":
        k_new = (padded - 1) // d + 2 + k.draw(st.integers(0, 1), label="kernel extra")
        if conv:
            shape = list(a["w"].shape)
            shape[2 + axis] = k_new
            a["w"] = _normal(k.rng, shape, a["w"].dtype)
        else:
            a["kernel_size"] = k.container(list(_with(kernel, axis, k_new)))
    elif way == "dilation":
        d_new = (padded - 1) // (kk - 1) + 1 + k.draw(st.integers(0, 1), label="dilation extra")
        a["dilation"] = k.container(list(_with(dilation, axis, d_new)))
    else:
        size_new = k.draw(st.integers(1, extent - before - after - 1), label="input size")
        a["x"] = _sliced(a["x"], 2 + axis, size_new)
    return (("kernel", "w") if conv else ("kernel", "kernel_size")), way


def _nonpositive(param: str) -> Callable[[Ctx], Broken]:
    def breaker(k: Ctx) -> Broken:
        if isinstance(k.args.get("padding"), str):
            k.explicit_pads()  # "same" depends on stride / dilation
        current = k.args[param]
        if current is None:  # max-pool stride=None means stride = kernel_size
            current = k.args["kernel_size"]
        bad = k.draw(st.sampled_from([0, -1, -2]), label=f"bad {param}")
        k.args[param] = k.spatial_with(spatial(current, k.rank), bad)
        return (param,), param

    return breaker


def _nonpositive_kernel(k: Ctx) -> Broken:
    a = k.args
    if _kernel_name(a) == "w":
        a["w"] = _sliced(a["w"], 2 + k.axis(), 0)
        return ("w", "kernel"), "w"
    kernel = spatial(a["kernel_size"], k.rank)
    if a["stride"] is None:  # keep the stride valid: it defaults to the kernel
        a["stride"] = kernel
    bad = k.draw(st.sampled_from([0, -1, -2]), label="bad kernel_size")
    # A pad is only valid up to half the kernel: none where the kernel is broken, the others
    # kept (so that no other axis becomes too small for its kernel).
    padded = "padding" in a  # LP pooling has none
    if k.draw(st.booleans(), label="as an int"):
        a["kernel_size"] = bad
        if padded:
            a["padding"] = 0
    else:
        axis = k.axis()
        a["kernel_size"] = k.container(list(_with(kernel, axis, bad)))
        if padded:
            pads = list(k.explicit_pads())
            pads[axis] = (0, 0)
            a["padding"] = k.container(pads)
    return ("kernel_size", "kernel"), "kernel_size"


def _padding_key(args: Mapping[str, Any]) -> str:
    return "pad_width" if "pad_width" in args else "padding"


def _negative_padding(k: Ctx) -> Broken:
    key = _padding_key(k.args)
    pads = k.explicit_pads(key)
    bad = k.draw(st.sampled_from([-1, -2, -3]), label="bad pad")
    k.args[key] = k.pads_with(pads, k.axis(), bad, grow=key == "padding")
    return (key,), key


def _pool_padding_above_half(k: Ctx) -> Broken:
    kernel = spatial(k.args["kernel_size"], k.rank)
    axis = k.axis()
    bad = kernel[axis] // 2 + k.draw(st.integers(1, 2), label="pad above half")
    k.args["padding"] = k.pads_with(k.explicit_pads(), axis, bad)
    return ("padding",), "padding"


def _bad_divisor_override(k: Ctx) -> Broken:
    k.args["divisor_override"] = k.draw(st.sampled_from([0, 1.5, True, "2"]),
                                        label="bad divisor_override")
    return ("divisor_override",), "divisor_override"


def _bad_norm_type(k: Ctx) -> Broken:
    k.args["norm_type"] = k.draw(st.sampled_from([0, 0.0, -1, -2.5, math.inf, math.nan, True,
                                                  "2"]), label="bad norm_type")
    return ("norm_type",), "norm_type"
def _bad_output_size(k: Ctx) -> Broken:
    """An adaptive output_size entry <= 0, not an int (1.5, True, "2") or the wrong number of
    entries."""
    sizes = list(k.case.output_shape()[2:])
    way = k.draw(st.sampled_from(["zero", "negative", "not an int", "wrong length", "scalar"]),
                 label="output_size broken by")
    if way == "wrong length":
        k.args["output_size"] = k.container([*sizes, 2] if k.rank == 1 or k.draw(
            st.booleans(), label="one entry too many") else sizes[:-1])
        return ("output_size",), "output_size"
    if way == "scalar":
        k.args["output_size"] = k.draw(st.sampled_from([0, -1, 1.5, True]),
                                       label="bad output_size")
        return ("output_size",), "output_size"
    bad = {"zero": [0], "negative": [-1, -3], "not an int": [1.5, True, "2"]}[way]
    sizes[k.axis()] = k.draw(st.sampled_from(bad), label="bad entry")
    k.args["output_size"] = k.container(sizes)
    return ("output_size",), "output_size"


def _groups_not_dividing(k: Ctx) -> Broken:
    a = k.args
    if getattr(k.case, "w_channels_axis", 1) == 0:  # w (C, Co/G, *k): Co follows from groups
        c, (_, co_g, *kernel) = a["x"].shape[1], a["w"].shape
        groups = k.draw(st.sampled_from([g for g in range(2, c + 2) if c % g]), label="groups")
        a["groups"] = groups
        a["w"] = _normal(k.rng, (c, co_g, *kernel), a["w"].dtype)
        return ("groups",), "groups"
    c, (co, _, *kernel) = a["x"].shape[1], a["w"].shape
    options = [g for g in range(2, max(c, co) + 2) if c % g or co % g]
    groups = k.draw(st.sampled_from(options), label="groups")
    a["groups"] = groups
    a["w"] = _normal(k.rng, (co, max(c // groups, 1), *kernel), a["w"].dtype)
    return ("groups",), "groups"


def _nonpositive_groups(k: Ctx) -> Broken:
    k.args["groups"] = k.draw(st.sampled_from([0, -1, -2]), label="groups")
    return ("groups",), "groups"


def _output_padding_too_large(k: Ctx) -> Broken:
    """output_padding >= max(stride, dilation) along one axis (transposed convolution)."""
    stride, dilation = spatial(k.args["stride"], k.rank), spatial(k.args["dilation"], k.rank)
    axis = k.axis()
    bad = max(stride[axis], dilation[axis]) + k.draw(st.integers(0, 1), label="beyond")
    current = list(spatial(k.args["output_padding"], k.rank))
    current[axis] = bad
    k.args["output_padding"] = k.container(current)
    return ("output_padding",), "output_padding"


def _transposed_output_too_small(k: Ctx) -> Broken:
    """padding cropping an axis of a transposed convolution's output to <= 0 cells."""
    a = k.args
    kernel = a["w"].shape[2:]
    s, d = spatial(a["stride"], k.rank), spatial(a["dilation"], k.rank)
    e, p = spatial(a["output_padding"], k.rank), list(spatial(a["padding"], k.rank))
    axis = k.axis()
    full = (a["x"].shape[2 + axis] - 1) * s[axis] + d[axis] * (kernel[axis] - 1) + 1 + e[axis]
    p[axis] = -(-full // 2) + k.draw(st.integers(0, 1), label="beyond")
    a["padding"] = k.container(p)
    return ("padding",), "padding"


def _channel_arrays(args: Mapping[str, Any]) -> list[str]:
    """The per-channel arrays of a call: every array but x and dy (w, b, gamma, ...)."""
    return [k for k, v in args.items() if isinstance(v, np.ndarray) and k not in DATA_ARRAYS]


def _channel_mismatch(k: Ctx) -> Broken:
    name = k.draw(st.sampled_from(_channel_arrays(k.args)), label="mismatched")
    old = k.args[name]
    axis = 1 if old.ndim >= 2 else 0  # w: (Co, C / G, *k) against x's C; else (C,) or (Co,)
    if old.ndim >= 2:  # a case type may hold C on another axis of w (transposed: (C, Co/G, *k))
        axis = getattr(k.case, "w_channels_axis", axis)
    sizes = [n for n in (old.shape[axis] - 1, old.shape[axis] + 1) if n >= 1]
    shape = list(old.shape)
    shape[axis] = k.draw(st.sampled_from(sizes), label="size")
    new = _normal(k.rng, shape, old.dtype)
    k.args[name] = np.abs(new) if (old >= 0).all() else new  # a variance stays >= 0
    return ((name, "x") if old.ndim >= 2 else (name,)), name


def _wrong_ndims(case: Case, direction: str, name: str, ndim: int) -> list[int]:
    """The ndims array ``name`` of the call must not have: near the valid ones, or below the
    minimum of an array that takes any ndim from a minimum up (the case's ``min_ndim``:
    activations, linear's leading axes)."""
    function = case.op if direction == "forward" else case.backward_op
    free = getattr(case, "min_ndim", {})
    if name in free:
        return list(range(free[name]))
    valid = _valid_ndims(function, name) | {ndim}
    return [n for n in range(max(0, min(valid) - 2), max(valid) + 2) if n not in valid]


def _has_bounded_ndim(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    """Some array of the call has an ndim it must not have."""
    return any(_wrong_ndims(case, direction, k, v.ndim) for k, v in args.items()
               if isinstance(v, np.ndarray))


def _wrong_ndim(k: Ctx) -> Broken:
    arrays = [n for n, v in k.args.items() if isinstance(v, np.ndarray)
              and _wrong_ndims(k.case, k.direction, n, v.ndim)]
    name = k.draw(st.sampled_from(arrays), label="broken array")
    a = k.args[name]
    options = _wrong_ndims(k.case, k.direction, name, a.ndim)
    ndim = k.draw(st.sampled_from(options), label="ndim")
    if ndim < a.ndim:  # drop leading axes (N, then C)
        k.args[name] = _copy(a[(0,) * (a.ndim - ndim)])
    else:
        k.args[name] = _copy(a[(None,) * (ndim - a.ndim)])
    return (name,), name


def _integer_dtype(k: Ctx) -> Broken:
    name = k.pick_array()
    dtype = k.draw(st.sampled_from([np.int64, np.int32]), label="integer dtype")
    k.args[name] = np.rint(k.args[name]).astype(dtype)
    return (name,), name


def _bool_dtype(k: Ctx) -> Broken:
    name = k.pick_array()
    k.args[name] = k.args[name] > 0
    return (name,), name


def _mixed_dtype(k: Ctx) -> Broken:
    name = k.pick_array()
    other = np.float32 if k.args[name].dtype == np.float64 else np.float64
    k.args[name] = k.args[name].astype(other)
    return (name,), name


def _pad_too_large(mode: str) -> Callable[[Ctx], Broken]:
    """reflect: a pad >= the size of its axis; circular: a pad > the size."""
    def breaker(k: Ctx) -> Broken:
        n, c, *sizes = k.arrays["x"].shape
        axis = k.axis()
        low = sizes[axis] if mode == "reflect" else sizes[axis] + 1
        k.args["pad_width"] = k.pads_with(pads_of(k.args["pad_width"], k.rank), axis,
                                          low + k.draw(st.integers(0, 2), label="beyond"),
                                          grow=False)
        if "dy" in k.args:  # the backward: dy as large as the new padding makes the output
            pads = pads_of(k.args["pad_width"], k.rank)
            shape = (n, c, *(s + b + a for s, (b, a) in zip(sizes, pads, strict=True)))
            k.args["dy"] = _normal(k.rng, shape, k.args["dy"].dtype)
        return ("pad_width",), "pad_width"

    return breaker


_UNKNOWN_MODES = ("symmetric", "edge", "wrap", "zeros", "REFLECT", "Constant", "")
_UNKNOWN_PADDINGS = ("full", "causal", "SAME", "Valid", "same ", "")


def _padding_strings(case: Case) -> bool:
    """Whether the case's padding takes strings ("same" / "valid"): its type resolves them."""
    return callable(getattr(case, "resolved_pads", None))


def _unknown_mode(k: Ctx) -> Broken:
    if "mode" in k.args:
        k.args["mode"] = k.draw(st.sampled_from(_UNKNOWN_MODES), label="mode")
        return ("mode",), "mode"
    k.args["padding"] = k.draw(st.sampled_from(_UNKNOWN_PADDINGS), label="padding")
    return ("padding",), "padding"


def _wrong_dy_shape(k: Ctx) -> Broken:
    dy = k.args["dy"]
    shape = list(dy.shape)
    if "x" not in k.args:
        # The input's shape comes from dy and the pads (pad_backward): a dy smaller than (or as
        # small as) the pads along one axis leaves no input inside.
        pads = pads_of(k.args["pad_width"], k.rank)
        axes = [i for i in range(k.rank) if sum(pads[i]) >= 1]
        assume(axes)
        axis = k.draw(st.sampled_from(axes), label="axis")
        shape[2 + axis] = k.draw(st.integers(1, sum(pads[axis])), label="dy size")
        k.args["dy"] = _normal(k.rng, shape, dy.dtype)
        return ("dy", "pad_width"), "dy"
    axis = k.draw(st.integers(0, dy.ndim - 1), label="dy axis")
    shape[axis] = k.draw(st.sampled_from([n for n in (shape[axis] - 1, shape[axis] + 1,
                                                       shape[axis] + 2) if n >= 1]), label="size")
    k.args["dy"] = _normal(k.rng, shape, dy.dtype)
    return ("dy",), "dy"


def _bn_eval_without_running(k: Ctx) -> Broken:
    k.args.update(training=False, running_mean=None, running_var=None)
    return ("running_mean", "running_var", "training"), "running_mean"


def _bn_running_unpaired(k: Ctx) -> Broken:
    a = k.args
    if a.get("running_mean") is None:  # a case without them, or a training backward call
        c, dtype = a["x"].shape[1], a["x"].dtype
        a["running_mean"] = _normal(k.rng, (c,), dtype)
        a["running_var"] = np.abs(_normal(k.rng, (c,), dtype))
    dropped = k.draw(st.sampled_from(["running_mean", "running_var"]), label="dropped")
    a[dropped] = None
    kept = "running_var" if dropped == "running_mean" else "running_mean"
    return ("running_mean", "running_var"), kept


def _bn_one_value_per_channel(k: Ctx) -> Broken:
    k.args["training"] = True
    one = (slice(0, 1), slice(None)) + (slice(0, 1),) * k.rank
    for name in DATA_ARRAYS:
        if name in k.args:
            k.args[name] = _copy(k.args[name][one])
    return ("x", "training"), "x"


def _bn_scalar_out_of_range(k: Ctx) -> Broken:
    names = [n for n in ("eps", "momentum") if n in k.args]
    name = k.draw(st.sampled_from(names), label="scalar")
    bad = [-0.5, 1.5, 2.0] if name == "momentum" else [-1e-5, -0.1]
    k.args[name] = k.draw(st.sampled_from(bad), label=name)
    return (name,), name


def _bad_alpha(k: Ctx) -> Broken:
    k.args["alpha"] = k.draw(st.sampled_from([np.nan, np.inf, -np.inf, True, "1.0", None]),
                             label="bad alpha")
    return ("alpha",), "alpha"


# ------------------------------------------------------------------------------- categories

# applies(case, direction, args): whether a category can break a call. ``case`` is a valid case
# of the call's record at one rank, ``args`` its call's arguments; only their structure counts.
Applies = Callable[[Case, str, Mapping[str, Any]], bool]


def _has(*names: str) -> Applies:
    """The call takes one of ``names``."""
    return lambda case, direction, args: any(n in args for n in names)


def _has_all(*names: str) -> Applies:
    return lambda case, direction, args: all(n in args for n in names)


def _has_kernel(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    """Conv's w (Co, C / G, *k: 3 axes or more; linear's 2-D w has no kernel) or pooling's
    kernel_size."""
    w = args.get("w")
    return "kernel_size" in args or (isinstance(w, np.ndarray) and w.ndim >= 3)


def _has_kernel_and_padding(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    # LP pooling has a kernel_size and no padding (explicit_pads: none); a case type whose output
    # grows with the kernel (transposed conv) has no kernel limit.
    return (("padding" in args or "kernel_size" in args) and _has_kernel(case, direction, args)
            and not getattr(case, "output_grows_with_kernel", False))


def _has_arrays(count: int) -> Applies:
    """The call takes at least ``count`` arrays."""
    return lambda case, direction, args: sum(isinstance(v, np.ndarray)
                                             for v in args.values()) >= count


def _has_channel_arrays(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    return bool(_channel_arrays(args))


def _has_mode_or_padding_strings(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    return "mode" in args or _padding_strings(case)


def _always(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Category:
    """One way of being invalid, which calls it applies to, what nnref must do.

    ``options`` are sampler options for the valid case (passed to the records whose sampler
    takes them, e.g. ``modes`` for a pad-mode limit).
    """

    id: str
    summary: str
    applies: Applies
    breaker: Callable[[Ctx], Broken]
    nnref: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def ranks(self, function: str) -> tuple[int, ...]:
        """The ranks of ``function`` this category applies to (none: it does not apply)."""
        return _ranks(self.id, function)

    @property
    def functions(self) -> tuple[str, ...]:
        """The contract functions this category applies to, in the records' order."""
        return tuple(f for f in contract_functions() if self.ranks(f))


CATEGORIES: dict[str, Category] = {c.id: c for c in (
    Category("kernel_too_large", "kernel (dilated) larger than the padded input",
             _has_kernel_and_padding, _kernel_too_large, "ValueError naming the kernel"),
    Category("nonpositive_stride", "a stride <= 0", _has("stride"), _nonpositive("stride"),
             "ValueError naming stride"),
    Category("nonpositive_dilation", "a dilation <= 0", _has("dilation"),
             _nonpositive("dilation"), "ValueError naming dilation"),
    Category("nonpositive_kernel", "a kernel size <= 0 (pool kernel_size; conv w with an "
             "empty kernel axis)", _has_kernel, _nonpositive_kernel,
             "ValueError naming kernel_size / w"),
    Category("negative_padding", "a pad below 0", _has("padding", "pad_width"),
             _negative_padding, "ValueError naming pad_width / padding"),
    Category("pool_padding_above_half", "pooling pad above half the kernel",
             _has_all("kernel_size", "padding"), _pool_padding_above_half,
             "ValueError naming padding"),
    Category("bad_divisor_override", "a divisor_override that is not None or a non-zero int "
             "(0, 1.5, True, '2')", _has("divisor_override"), _bad_divisor_override,
             "ValueError naming divisor_override"),
    Category("bad_norm_type", "an LP-pool norm_type that is not a finite real number > 0 "
             "(0, negative, inf, NaN, a bool, a string)", _has("norm_type"), _bad_norm_type,
             "ValueError naming norm_type"),
    Category("bad_output_size", "an adaptive output_size entry <= 0 or not an int (0, -1, 1.5, "
             "True, '2'), or the wrong number of entries", _has("output_size"),
             _bad_output_size, "ValueError naming output_size"),
    Category("groups_not_dividing", "groups not dividing the input or output channels (w "
             "sized C // groups)", _has("groups"), _groups_not_dividing,
             "ValueError naming groups"),
    Category("nonpositive_groups", "groups <= 0", _has("groups"), _nonpositive_groups,
             "ValueError naming groups"),
    Category("output_padding_too_large", "a transposed convolution's output_padding >= "
             "max(stride, dilation) along an axis", _has("output_padding"),
             _output_padding_too_large, "ValueError naming output_padding"),
    Category("transposed_output_too_small", "padding cropping a transposed convolution's "
             "output to < 1 cell along an axis", _has("output_padding"),
             _transposed_output_too_small, "ValueError naming padding"),
    Category("channel_mismatch", "w, b, gamma, beta or a running statistic does not fit the "
             "channels", _has_channel_arrays, _channel_mismatch, "ValueError naming the array"),
    Category("wrong_ndim", "an array with the wrong number of dimensions", _has_bounded_ndim,
             _wrong_ndim, "ValueError naming the array"),
    Category("integer_dtype", "an int64 / int32 array", _always, _integer_dtype,
             "ValueError naming the array"),
    Category("bool_dtype", "a bool array", _always, _bool_dtype, "ValueError naming the array"),
    Category("mixed_dtype", "one float array in the other float dtype",
             _has_arrays(2), _mixed_dtype, "ValueError naming the array"),
    Category("reflect_pad_too_large", "reflect pad >= the size of its axis",
             _has_all("pad_width", "mode"), _pad_too_large("reflect"),
             "ValueError naming pad_width", {"modes": ("reflect",)}),
    Category("circular_pad_too_large", "circular pad > the size of its axis",
             _has_all("pad_width", "mode"), _pad_too_large("circular"),
             "ValueError naming pad_width", {"modes": ("circular",)}),
    Category("unknown_mode", "an unknown pad mode or conv padding string",
             _has_mode_or_padding_strings, _unknown_mode, "ValueError naming mode / padding"),
    Category("wrong_dy_shape", "upstream gradient of the wrong shape (pad_backward: smaller "
             "than the pads)", _has("dy"), _wrong_dy_shape, "ValueError naming dy"),
    Category("bn_eval_without_running", "eval-mode batch norm without running statistics",
             _has("training"), _bn_eval_without_running,
             "ValueError naming running_mean / running_var"),
    Category("bn_running_unpaired", "only one of running_mean / running_var",
             _has("training"), _bn_running_unpaired,
             "ValueError naming running_mean / running_var"),
    Category("bn_one_value_per_channel", "training batch norm with N * prod(S) == 1",
             _has("training"), _bn_one_value_per_channel, "ValueError naming x / training"),
    Category("bn_scalar_out_of_range", "momentum outside [0, 1] or eps < 0", _has("eps"),
             _bn_scalar_out_of_range, "ValueError naming momentum / eps"),
    # activations
    Category("bad_alpha", "an elu alpha that is not a finite real number (nan, inf, a bool, "
             "a string, None)", _has("alpha"), _bad_alpha, "ValueError naming alpha"),
)}


@cache
def _ranks(category: str, function: str) -> tuple[int, ...]:
    applies = CATEGORIES[category].applies
    return tuple(r for r in ranks_of(function)
                 if applies(_probe(function, r)[0], direction_of(function),
                            _probe(function, r)[1]))


def _valid(draw: Any, function: str, ranks: tuple[int, ...],
           options: Mapping[str, Any]) -> tuple[Case, dict, dict, int]:
    rec = record_of_function(function)
    rank = draw(st.sampled_from(ranks), label="rank")
    case: Case = draw(strategy(rec, rank=rank, small=True, **_sampler_options(rec, options)),
                      label="valid case")
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    seed = draw(seeds, label="seed")
    arrays = case.arrays(dtype, seed)
    return case, arrays, case.call_args(direction_of(function), arrays), seed


@st.composite
def _invalid(draw: Any, category: Category, functions: tuple[str, ...],
             rank: int | None) -> InvalidCall:
    function = draw(st.sampled_from(functions), label="function")
    ranks = tuple(r for r in category.ranks(function) if rank is None or r == rank)
    case, arrays, args, seed = _valid(draw, function, ranks, category.options)
    ctx = Ctx(draw, case, direction_of(function), arrays, args, np.random.default_rng(seed))
    names, broken = category.breaker(ctx)
    return InvalidCall(category.id, function, args, names, broken, case.rank)


@st.composite
def valid_calls(draw: Any, function: str) -> InvalidCall:
    """The starting points: valid calls of ``function`` (category "valid", nothing broken)."""
    case, _, args, _ = _valid(draw, function, ranks_of(function), {})
    return InvalidCall("valid", function, args, (), "", case.rank)


def invalid_calls(category: str | None = None, functions: tuple[str, ...] | None = None,
                  rank: int | None = None) -> st.SearchStrategy[InvalidCall]:
    """Invalid calls of one category (all of them if None), optionally only some functions,
    optionally only at one spatial rank."""
    chosen = [CATEGORIES[category]] if category else list(CATEGORIES.values())
    strategies = []
    for cat in chosen:
        fns = tuple(f for f in cat.functions if (functions is None or f in functions)
                    and (rank is None or rank in cat.ranks(f)))
        if fns:
            strategies.append(_invalid(cat, fns, rank))
    if not strategies:
        raise ValueError(f"no function of {functions} at rank {rank} in category {category!r}")
    return st.one_of(strategies)


# ------------------------------------------------------------------------------- frameworks


class NotExpressible(Exception):
    """The call cannot be stated with the native API.

    ``incidental``: what cannot be stated is NOT the broken argument (e.g. asymmetric padding
    in torch, ceil_mode in TF): the draw says nothing about the category and is discarded.
    """

    def __init__(self, reason: str, incidental: bool = False) -> None:
        super().__init__(reason)
        self.incidental = incidental


class WouldAbort(Exception):
    """The native call is known to abort the whole process (a C++ CHECK failure): not run.

    The claim is checked in a subprocess by conformance/tests/test_invalid_args.py.
    """


def runner(framework: str) -> Callable[[Any, InvalidCall], Any]:
    """The native runner of ``framework`` ("torch", "tensorflow"):
    conformance.backends.native_calls.run_torch / run_tf (imported only now)."""
    from .backends import native_calls

    return native_calls.RUNNERS[framework]


def classify(result: Any) -> str:
    """A native result: "no gradient" (a None gradient), "empty result" (an output with a
    zero-size axis) or "accepted"."""
    items = list(result) if isinstance(result, tuple | list) else [result]
    if any(r is None for r in items):
        return "no gradient"
    if any(0 in tuple(r.shape) for r in items):
        return "empty result"
    return "accepted"


def outcome(run: Callable[[Any, InvalidCall], Any], module: Any, invalid: InvalidCall) -> str:
    """What the native call did: an exception class name, or one of OUTCOME_WORDS.

    Raises NotExpressible when it is incidental (the caller discards the draw).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's "same" padding copy notice
            result = run(module, invalid)
    except NotExpressible as exc:
        if exc.incidental:
            raise
        return "not expressible"
    except WouldAbort:
        return "abort"
    except Exception as exc:
        return type(exc).__name__
    return classify(result)


# ------------------------------------------------------------------------------- the record


def load_behaviour(path: Path = BEHAVIOUR_PATH) -> dict[str, Any]:
    """conformance/invalid_behaviour.toml: category -> framework -> {outcomes, note, ops}."""
    with path.open("rb") as f:
        return tomllib.load(f)


def expected_outcomes(record: Mapping[str, Any], framework: str, invalid: InvalidCall) -> list[str]:
    """The recorded outcomes for one call: the most specific override in ``ops``
    ("fn/broken/dtype", "fn/broken", "fn/dtype", "fn"), else the category's ``outcomes``."""
    entry = record[invalid.category][framework]
    ops = entry.get("ops", {})
    for key in invalid.record_keys():
        if key in ops:
            return list(ops[key])
    return list(entry["outcomes"])


def _outcomes(outs: Any) -> str:
    return ", ".join(f"`{o}`" for o in outs)


def compact_functions(functions: tuple[str, ...]) -> str:
    """Function names for the table, the ranks of one op folded: ``conv{1,2,3}d_backward``."""
    out = []
    for rec in RECORDS:
        for i in (0, 1):
            ranks = [r for r in rec.ranks if rec.functions(r)[i] in functions]
            names = list(dict.fromkeys(rec.functions(r)[i] for r in ranks))
            if len(names) <= 1:
                out += names
                continue
            template = rec.functions(ranks[0])[i].replace(f"{ranks[0]}d", "{}d", 1)
            if all(template.format(r) == rec.functions(r)[i] for r in ranks):
                out.append(template.format("{" + ",".join(str(r) for r in ranks) + "}"))
            else:
                out += names
    return ", ".join(out)


def markdown_table(record: Mapping[str, Any] | None = None) -> str:
    """The category x {nnref, torch, TF} table of docs/invalid-arguments.md."""
    record = load_behaviour() if record is None else record
    lines = ["| category | functions | nnref | torch | TF |", "|---|---|---|---|---|"]
    for cat in CATEGORIES.values():
        cells = [_outcomes(record[cat.id][fw]["outcomes"]) for fw in FRAMEWORKS]
        lines.append(f"| `{cat.id}`: {cat.summary} | {compact_functions(cat.functions)} | "
                     f"{cat.nnref} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def markdown_notes(record: Mapping[str, Any] | None = None) -> str:
    """Per category and framework: the note and the per-call outcomes, as a nested list."""
    record = load_behaviour() if record is None else record
    lines = []
    for cat in CATEGORIES.values():
        lines.append(f"- `{cat.id}`")
        for fw, label in zip(FRAMEWORKS, ("torch", "TF"), strict=True):
            entry = record[cat.id][fw]
            lines.append(f"  - {label}: {entry['note']}")
            for key, outs in entry.get("ops", {}).items():
                lines.append(f"    - `{key}`: {_outcomes(outs)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
    print()
    print(markdown_notes(), end="")
