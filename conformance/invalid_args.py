"""Invalid calls of the contract functions, drawn by Hypothesis, and how frameworks answer them.

Every strategy draws a VALID case from :mod:`conformance.strategies`, turns it into the keyword
arguments of one contract function (``pad`` ... ``batch_norm_backward``) and breaks exactly one
thing: the result is an :class:`InvalidCall`. CONTRACT.md ("Errors") says the implementation must
raise ``ValueError`` whose message names the parameter; ``InvalidCall.names`` lists the words one
of which the message must contain.

    from conformance import invalid_args
    invalid_args.CATEGORIES                      # category id -> Category (functions it covers)
    invalid_args.invalid_calls()                 # one_of every category
    invalid_args.invalid_calls("negative_padding")
    invalid_args.call(impl, c)                   # impl.<function>(**c.args)

The framework side: :func:`run_torch` / :func:`run_tf` make the natively equivalent call
(``torch.nn.functional`` / ``tf.nn`` directly, NHWC and ``tf.constant`` for TF, autograd /
GradientTape with ``dy`` for the backward functions; never the adapters, which validate on their
own) and :func:`outcome` names what happened: the exception class name, ``"accepted"``,
``"empty result"``, ``"no gradient"`` (TF returned None for a gradient), ``"not expressible"``
(the broken argument has no native counterpart) or ``"abort"`` (known to kill the process: not
run). conformance/invalid_behaviour.toml records the expected outcomes; the table and notes of
docs/invalid-arguments.md are rendered from it by :func:`markdown_table` / :func:`markdown_notes`
(``python -m conformance.invalid_args``).
"""

from __future__ import annotations

import re
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from .cases import Case, _pads, _pair
from .strategies import DTYPES, batch_norm_cases, conv_cases, pad_cases, pool_cases, seeds

FUNCTIONS = (
    "pad", "pad_backward", "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
    "batch_norm", "batch_norm_backward",
)
ARRAY_ARGS = ("dy", "x", "w", "b", "gamma", "beta", "running_mean", "running_var")
FRAMEWORKS = ("torch", "tensorflow")
BEHAVIOUR_PATH = Path(__file__).with_name("invalid_behaviour.toml")
OUTCOME_WORDS = ("accepted", "empty result", "no gradient", "not expressible", "abort")

PAD = ("pad", "pad_backward")
CONV = ("conv2d", "conv2d_backward")
POOL = ("max_pool2d", "max_pool2d_backward")
BN = ("batch_norm", "batch_norm_backward")
BACKWARD = tuple(f for f in FUNCTIONS if f.endswith("_backward"))


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
    large, "kernel", "dilation" or "input"); the framework runners and the record use it.
    Its repr shows arrays as dtype[shape], so a Hypothesis falsifying example stays readable.
    """

    category: str
    function: str
    args: Mapping[str, Any]
    names: tuple[str, ...]
    broken: str

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
    """Run the call on an implementation (nnref, an adapter, any --impl module)."""
    return getattr(impl, invalid.function)(**invalid.args)


def names_in(message: str, names: tuple[str, ...]) -> bool:
    """Whether ``message`` contains one of ``names`` as a whole word (case-insensitive)."""
    return any(
        re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message, re.IGNORECASE)
        for n in names
    )


# ------------------------------------------------------------------------- valid starting point

_CASES = {"pad": pad_cases, "conv2d": conv_cases, "max_pool2d": pool_cases,
          "batch_norm": batch_norm_cases}


def _args(function: str, case: Any, a: dict[str, np.ndarray]) -> dict[str, Any]:
    """Keyword arguments of a valid call of ``function`` for ``case`` (CONTRACT.md names)."""
    if function == "pad":
        return {"x": a["x"], "pad_width": case.pad_width, "mode": case.mode, "value": case.value}
    if function == "pad_backward":
        return {"dy": a["dy"], "pad_width": case.pad_width, "mode": case.mode}
    if function == "conv2d":
        return {"x": a["x"], "w": a["w"], "b": a.get("b"), **case.params()}
    if function == "conv2d_backward":
        return {"dy": a["dy"], "x": a["x"], "w": a["w"], **case.params()}
    if function == "max_pool2d":
        return {"x": a["x"], **case.params()}
    if function == "max_pool2d_backward":
        return {"dy": a["dy"], "x": a["x"], **case.params()}
    running = {"running_mean": a.get("running_mean"), "running_var": a.get("running_var")}
    if function == "batch_norm":
        return {"x": a["x"], "gamma": a["gamma"], "beta": a["beta"], **running,
                **case.params()}
    return {"dy": a["dy"], "x": a["x"], "gamma": a["gamma"], "eps": case.eps, **running,
            "training": case.training}


def _normal(rng: np.random.Generator, shape: Any, dtype: Any) -> np.ndarray:
    return rng.standard_normal(tuple(shape)).astype(dtype)


def _copy(a: np.ndarray) -> np.ndarray:
    return np.array(a, copy=True, order="C")


def _explicit_padding(case: Any) -> Any:
    """A conv case's padding with "same" / "valid" replaced by its explicit pads."""
    return case.resolved_pads() if isinstance(case.padding, str) else case.padding


def _with(pair: tuple[int, int], axis: int, value: int) -> tuple[int, int]:
    out = list(pair)
    out[axis] = value
    return (out[0], out[1])


def _int_or_pair_with(draw: Any, current: tuple[int, int], value: int) -> Any:
    """``value`` as an int, or ``current`` with one axis replaced by ``value``."""
    form = draw(st.sampled_from(["int", "height", "width"]), label="form")
    return value if form == "int" else _with(current, ("height", "width").index(form), value)


def _pads_with(draw: Any, pads: Any, axis: int, value: int, grow: bool = True) -> Any:
    """Padding in a drawn form (int, pair, pairs) with ``value`` on ``axis``; the other entries
    stay valid: they keep at least their current size (``grow``: conv / pool, where less padding
    could make the kernel too large) or at most it (pad: where more could pass reflect's limit,
    or leave pad_backward's dy too small)."""
    (t, b), (l, r) = pads
    form = draw(st.sampled_from(["int", "pair", "pairs"]), label="padding form")
    if form == "int":
        return value
    pick = max if grow else min
    keep = (pick(t, b), pick(l, r))
    if form == "pair":
        return _with(keep, axis, value)
    rows, cols = [t, b], [l, r]
    side = draw(st.integers(0, 1), label="side")
    (rows if axis == 0 else cols)[side] = value
    return ((rows[0], rows[1]), (cols[0], cols[1]))


# ------------------------------------------------------------------------------- breakers
# Each breaker gets (draw, function, case, args, rng), edits args in place and returns
# (names, broken).

Broken = tuple[tuple[str, ...], str]


def _kernel_too_large(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    conv = function in CONV
    x = args["x"]
    if conv:
        pads = case.resolved_pads()
        args["padding"] = _explicit_padding(case)
        kernel = args["w"].shape[2:]
    else:
        pads = _pads(case.padding)
        kernel = _pair(case.kernel_size)
    dilation = _pair(args["dilation"])
    axis = draw(st.integers(0, 1), label="axis")
    size, (before, after) = x.shape[2 + axis], pads[axis]
    padded = size + before + after
    k, d = kernel[axis], dilation[axis]
    extent = d * (k - 1) + 1
    ways = ["kernel"] + (["dilation"] if k >= 2 else [])
    ways += ["input"] if extent - before - after - 1 >= 1 else []
    way = draw(st.sampled_from(ways), label="made too large by")
    if way == "kernel":
        k_new = (padded - 1) // d + 2 + draw(st.integers(0, 1), label="kernel extra")
        if conv:
            shape = list(args["w"].shape)
            shape[2 + axis] = k_new
            args["w"] = _normal(rng, shape, args["w"].dtype)
        else:
            args["kernel_size"] = _with(kernel, axis, k_new)
    elif way == "dilation":
        d_new = (padded - 1) // (k - 1) + 1 + draw(st.integers(0, 1), label="dilation extra")
        args["dilation"] = _with(dilation, axis, d_new)
    else:
        size_new = draw(st.integers(1, extent - before - after - 1), label="input size")
        args["x"] = _copy(x[:, :, :size_new] if axis == 0 else x[..., :size_new])
    return (("kernel", "w") if conv else ("kernel", "kernel_size")), way


def _nonpositive(param: str) -> Callable[..., Broken]:
    def breaker(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
        if function in CONV:
            args["padding"] = _explicit_padding(case)  # "same" depends on stride / dilation
        current = args[param]
        if current is None:  # max-pool stride=None means stride = kernel_size
            current = args["kernel_size"]
        bad = draw(st.sampled_from([0, -1, -2]), label=f"bad {param}")
        args[param] = _int_or_pair_with(draw, _pair(current), bad)
        return (param,), param

    return breaker


def _nonpositive_kernel(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    axis = draw(st.integers(0, 1), label="axis")
    if function in CONV:
        w = args["w"]
        args["w"] = _copy(w[:, :, :0] if axis == 0 else w[..., :0])
        return ("w", "kernel"), "w"
    kernel = _pair(case.kernel_size)
    if args["stride"] is None:  # keep the stride valid: it defaults to the kernel
        args["stride"] = kernel
    args["padding"] = 0  # a pad is only valid up to half the kernel
    bad = draw(st.sampled_from([0, -1, -2]), label="bad kernel_size")
    args["kernel_size"] = _int_or_pair_with(draw, kernel, bad)
    return ("kernel_size", "kernel"), "kernel_size"


def _negative_padding(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    key = "pad_width" if function in PAD else "padding"
    if function in CONV:
        pads = case.resolved_pads()
    else:
        pads = _pads(args[key])
    axis = draw(st.integers(0, 1), label="axis")
    bad = draw(st.sampled_from([-1, -2, -3]), label="bad pad")
    args[key] = _pads_with(draw, pads, axis, bad, grow=function not in PAD)
    return (key,), key


def _pool_padding_above_half(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    kernel = _pair(case.kernel_size)
    axis = draw(st.integers(0, 1), label="axis")
    bad = kernel[axis] // 2 + draw(st.integers(1, 2), label="pad above half")
    args["padding"] = _pads_with(draw, _pads(case.padding), axis, bad)
    return ("padding",), "padding"


def _groups_not_dividing(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    c, (co, _, kh, kw) = args["x"].shape[1], args["w"].shape
    options = [g for g in range(2, max(c, co) + 2) if c % g or co % g]
    groups = draw(st.sampled_from(options), label="groups")
    args["groups"] = groups
    args["w"] = _normal(rng, (co, max(c // groups, 1), kh, kw), args["w"].dtype)
    return ("groups",), "groups"


def _nonpositive_groups(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    args["groups"] = draw(st.sampled_from([0, -1, -2]), label="groups")
    return ("groups",), "groups"


def _channel_mismatch(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    if function in CONV:
        options = ["w"] + (["b"] if args.get("b") is not None else [])
    else:
        options = [k for k in ("gamma", "beta", "running_mean", "running_var")
                   if args.get(k) is not None]
    name = draw(st.sampled_from(options), label="mismatched")
    old = args[name]
    axis = 1 if name == "w" else 0
    sizes = [n for n in (old.shape[axis] - 1, old.shape[axis] + 1) if n >= 1]
    shape = list(old.shape)
    shape[axis] = draw(st.sampled_from(sizes), label="size")
    args[name] = _normal(rng, shape, old.dtype)
    if name == "running_var":
        args[name] = np.abs(args[name])
    return (("w", "x") if name == "w" else (name,)), name


def _pick_array(draw: Any, args: dict, exclude: tuple[str, ...] = ()) -> str:
    present = [k for k in ARRAY_ARGS if args.get(k) is not None and k not in exclude]
    return draw(st.sampled_from(present), label="broken array")


def _wrong_ndim(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    name = _pick_array(draw, args)
    a = args[name]
    if a.ndim == 4:
        how = draw(st.sampled_from(["3-D", "5-D", "2-D"]), label="ndim")
        args[name] = _copy({"3-D": a[0], "5-D": a[None], "2-D": a[0, 0]}[how])
    else:
        how = draw(st.sampled_from(["0-D", "2-D"]), label="ndim")
        args[name] = _copy(a[0, ...] if how == "0-D" else a[None])
    return (name,), name


def _integer_dtype(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    name = _pick_array(draw, args)
    dtype = draw(st.sampled_from([np.int64, np.int32]), label="integer dtype")
    args[name] = np.rint(args[name]).astype(dtype)
    return (name,), name


def _bool_dtype(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    name = _pick_array(draw, args)
    args[name] = args[name] > 0
    return (name,), name


def _mixed_dtype(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    name = _pick_array(draw, args)
    other = np.float32 if args[name].dtype == np.float64 else np.float64
    args[name] = args[name].astype(other)
    return (name,), name


def _pad_too_large(mode: str) -> Callable[..., Broken]:
    """reflect: a pad >= the size of its axis; circular: a pad > the size."""
    def breaker(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
        n, c, h, w = case.shape
        axis = draw(st.integers(0, 1), label="axis")
        size = (h, w)[axis]
        low = size if mode == "reflect" else size + 1
        args["pad_width"] = _pads_with(draw, _pads(case.pad_width), axis,
                                       low + draw(st.integers(0, 2), label="beyond"), grow=False)
        if function == "pad_backward":
            (t, b), (l, r) = _pads(args["pad_width"])
            args["dy"] = _normal(rng, (n, c, h + t + b, w + l + r), args["dy"].dtype)
        return ("pad_width",), "pad_width"

    return breaker


_UNKNOWN_MODES = ("symmetric", "edge", "wrap", "zeros", "REFLECT", "Constant", "")
_UNKNOWN_PADDINGS = ("full", "causal", "SAME", "Valid", "same ", "")


def _unknown_mode(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    if function in PAD:
        args["mode"] = draw(st.sampled_from(_UNKNOWN_MODES), label="mode")
        return ("mode",), "mode"
    args["padding"] = draw(st.sampled_from(_UNKNOWN_PADDINGS), label="padding")
    return ("padding",), "padding"


def _wrong_dy_shape(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    dy = args["dy"]
    shape = list(dy.shape)
    if function == "pad_backward":
        # dy smaller than (or as small as) the pads along one axis: no input left inside.
        pads = _pads(args["pad_width"])
        axes = [i for i in (0, 1) if sum(pads[i]) >= 1]
        assume(axes)
        axis = draw(st.sampled_from(axes), label="axis")
        shape[2 + axis] = draw(st.integers(1, sum(pads[axis])), label="dy size")
        args["dy"] = _normal(rng, shape, dy.dtype)
        return ("dy", "pad_width"), "dy"
    axis = draw(st.integers(0, 3), label="dy axis")
    shape[axis] = draw(st.sampled_from([n for n in (shape[axis] - 1, shape[axis] + 1,
                                                     shape[axis] + 2) if n >= 1]), label="size")
    args["dy"] = _normal(rng, shape, dy.dtype)
    return ("dy",), "dy"


def _bn_eval_without_running(draw: Any, function: str, case: Any, args: dict,
                             rng: Any) -> Broken:
    args.update(training=False, running_mean=None, running_var=None)
    return ("running_mean", "running_var", "training"), "running_mean"


def _bn_running_unpaired(draw: Any, function: str, case: Any, args: dict, rng: Any) -> Broken:
    assume(args["running_mean"] is not None)
    dropped = draw(st.sampled_from(["running_mean", "running_var"]), label="dropped")
    args[dropped] = None
    kept = "running_var" if dropped == "running_mean" else "running_mean"
    return ("running_mean", "running_var"), kept


def _bn_one_value_per_channel(draw: Any, function: str, case: Any, args: dict,
                              rng: Any) -> Broken:
    args["training"] = True
    for name in ("x", "dy"):
        if name in args:
            args[name] = _copy(args[name][:1, :, :1, :1])
    return ("x", "training"), "x"


def _bn_scalar_out_of_range(draw: Any, function: str, case: Any, args: dict,
                            rng: Any) -> Broken:
    names = ["eps"] + (["momentum"] if function == "batch_norm" else [])
    name = draw(st.sampled_from(names), label="scalar")
    bad = [-0.5, 1.5, 2.0] if name == "momentum" else [-1e-5, -0.1]
    args[name] = draw(st.sampled_from(bad), label=name)
    return (name,), name


# ------------------------------------------------------------------------------- categories


@dataclass(frozen=True)
class Category:
    """One way of being invalid, the functions it applies to, what nnref must do."""

    id: str
    summary: str
    functions: tuple[str, ...]
    breaker: Callable[..., Broken]
    nnref: str
    case_options: Mapping[str, Mapping[str, Any]] | None = None


_ALL = FUNCTIONS
_TWO_OR_MORE_ARRAYS = ("conv2d", "conv2d_backward", "max_pool2d_backward", *BN)

CATEGORIES: dict[str, Category] = {c.id: c for c in (
    Category("kernel_too_large", "kernel (dilated) larger than the padded input",
             CONV + POOL, _kernel_too_large, "ValueError naming the kernel"),
    Category("nonpositive_stride", "a stride <= 0", CONV + POOL, _nonpositive("stride"),
             "ValueError naming stride"),
    Category("nonpositive_dilation", "a dilation <= 0", CONV + POOL,
             _nonpositive("dilation"), "ValueError naming dilation"),
    Category("nonpositive_kernel", "a kernel size <= 0 (pool kernel_size; conv w with an "
             "empty kernel axis)", CONV + POOL, _nonpositive_kernel,
             "ValueError naming kernel_size / w"),
    Category("negative_padding", "a pad below 0", PAD + CONV + POOL, _negative_padding,
             "ValueError naming pad_width / padding"),
    Category("pool_padding_above_half", "max-pool pad above half the kernel", POOL,
             _pool_padding_above_half, "ValueError naming padding"),
    Category("groups_not_dividing", "groups not dividing the input or output channels (w "
             "sized C // groups)", CONV, _groups_not_dividing, "ValueError naming groups"),
    Category("nonpositive_groups", "groups <= 0", CONV, _nonpositive_groups,
             "ValueError naming groups"),
    Category("channel_mismatch", "w, b, gamma, beta or a running statistic does not fit the "
             "channels", CONV + BN, _channel_mismatch, "ValueError naming the array"),
    Category("wrong_ndim", "an array with the wrong number of dimensions", _ALL, _wrong_ndim,
             "ValueError naming the array"),
    Category("integer_dtype", "an int64 / int32 array", _ALL, _integer_dtype,
             "ValueError naming the array"),
    Category("bool_dtype", "a bool array", _ALL, _bool_dtype, "ValueError naming the array"),
    Category("mixed_dtype", "one float array in the other float dtype", _TWO_OR_MORE_ARRAYS,
             _mixed_dtype, "ValueError naming the array"),
    Category("reflect_pad_too_large", "reflect pad >= the size of its axis", PAD,
             _pad_too_large("reflect"), "ValueError naming pad_width",
             {"pad": {"modes": ("reflect",)}}),
    Category("circular_pad_too_large", "circular pad > the size of its axis", PAD,
             _pad_too_large("circular"), "ValueError naming pad_width",
             {"pad": {"modes": ("circular",)}}),
    Category("unknown_mode", "an unknown pad mode or conv padding string", PAD + CONV,
             _unknown_mode, "ValueError naming mode / padding"),
    Category("wrong_dy_shape", "upstream gradient of the wrong shape (pad_backward: smaller "
             "than the pads)", BACKWARD, _wrong_dy_shape, "ValueError naming dy"),
    Category("bn_eval_without_running", "eval-mode batch norm without running statistics", BN,
             _bn_eval_without_running, "ValueError naming running_mean / running_var"),
    Category("bn_running_unpaired", "only one of running_mean / running_var", BN,
             _bn_running_unpaired, "ValueError naming running_mean / running_var"),
    Category("bn_one_value_per_channel", "training batch norm with N * H * W == 1", BN,
             _bn_one_value_per_channel, "ValueError naming x / training"),
    Category("bn_scalar_out_of_range", "momentum outside [0, 1] or eps < 0", BN,
             _bn_scalar_out_of_range, "ValueError naming momentum / eps"),
)}


def _valid(draw: Any, function: str, options: Mapping[str, Any]) -> tuple[Case, dict, int]:
    op = function.removesuffix("_backward")
    case: Case = draw(_CASES[op](small=True, **options), label="valid case")
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    seed = draw(seeds, label="seed")
    return case, _args(function, case, case.arrays(dtype, seed)), seed


@st.composite
def _invalid(draw: Any, category: Category, functions: tuple[str, ...]) -> InvalidCall:
    function = draw(st.sampled_from(functions), label="function")
    options = (category.case_options or {}).get(function.removesuffix("_backward"), {})
    case, args, seed = _valid(draw, function, options)
    names, broken = category.breaker(draw, function, case, args, np.random.default_rng(seed))
    return InvalidCall(category.id, function, args, names, broken)


@st.composite
def valid_calls(draw: Any, function: str) -> InvalidCall:
    """The starting points: valid calls of ``function`` (category "valid", nothing broken)."""
    _, args, _ = _valid(draw, function, {})
    return InvalidCall("valid", function, args, (), "")


def invalid_calls(category: str | None = None,
                  functions: tuple[str, ...] | None = None) -> st.SearchStrategy[InvalidCall]:
    """Invalid calls of one category (all of them if None), optionally only some functions."""
    chosen = [CATEGORIES[category]] if category else list(CATEGORIES.values())
    strategies = []
    for cat in chosen:
        fns = tuple(f for f in cat.functions if functions is None or f in functions)
        if fns:
            strategies.append(_invalid(cat, fns))
    if not strategies:
        raise ValueError(f"no function of {functions} in category {category!r}")
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


def _loose_pads(p: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Contract padding forms to ((t, b), (l, r)) without any validation (negatives kept)."""
    if isinstance(p, tuple | list) and isinstance(p[0], tuple | list):
        return ((int(p[0][0]), int(p[0][1])), (int(p[1][0]), int(p[1][1])))
    if isinstance(p, tuple | list):
        return ((int(p[0]), int(p[0])), (int(p[1]), int(p[1])))
    return ((int(p), int(p)), (int(p), int(p)))


def _strided(args: Mapping[str, Any]) -> bool:
    stride = args.get("stride")
    return stride is not None and _pair(stride) != (1, 1)


def _pad_input_shape(dy: np.ndarray, pad_width: Any) -> tuple[int, ...]:
    """The x whose padding has dy's shape: no native pad_backward exists, so autograd of the
    native pad over an x of this shape is the natively equivalent call."""
    (t, b), (l, r) = _loose_pads(pad_width)
    shape = (*dy.shape[:-2], dy.shape[-2] - t - b, dy.shape[-1] - l - r)
    if min(shape) < 0:
        raise NotExpressible(f"x would have shape {shape}: dy is smaller than the pads")
    return shape


# torch ----------------------------------------------------------------------------------


def _torch_symmetric(padding: Any) -> Any:
    """Padding as F.conv2d / F.max_pool2d take it (symmetric only); strings unchanged."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, tuple | list) and isinstance(padding[0], tuple | list):
        (t, b), (l, r) = _loose_pads(padding)
        if t != b or l != r:
            raise NotExpressible("torch pads conv / pool symmetrically only", incidental=True)
        return (t, l)
    return padding


def run_torch(torch: Any, invalid: InvalidCall) -> Any:
    """The natively equivalent torch.nn.functional call (autograd for the backward ones).

    Returns the output, or the gradients for a backward function.
    """
    F = torch.nn.functional
    a, fn = invalid.args, invalid.function
    backward = fn.endswith("_backward")

    def t(name: str, grad: bool = False) -> Any:
        if a.get(name) is None:
            return None
        tensor = torch.from_numpy(_copy(a[name]))
        return tensor.requires_grad_(True) if grad else tensor

    def grads(y: Any, sources: list) -> Any:
        return torch.autograd.grad(y, [s for s in sources if s is not None],
                                   grad_outputs=t("dy"))

    if fn in PAD:
        (pt, pb), (pl, pr) = _loose_pads(a["pad_width"])
        if fn == "pad":
            value = {"value": float(a["value"])} if a["mode"] == "constant" else {}
            return F.pad(t("x"), (pl, pr, pt, pb), mode=a["mode"], **value)
        x = torch.zeros(_pad_input_shape(a["dy"], a["pad_width"]), dtype=t("dy").dtype,
                        requires_grad=True)
        return grads(F.pad(x, (pl, pr, pt, pb), mode=a["mode"]), [x])
    if fn in CONV:
        if a["padding"] == "same" and _strided(a):
            raise NotExpressible("torch refuses padding='same' with a stride > 1",
                                 incidental=True)
        x, w = t("x", backward), t("w", backward)
        y = F.conv2d(x, w, None if backward else t("b"), stride=a["stride"],
                     padding=_torch_symmetric(a["padding"]), dilation=a["dilation"],
                     groups=a["groups"])
        return grads(y, [x, w]) if backward else y
    if fn in POOL:
        x = t("x", backward)
        y = F.max_pool2d(x, a["kernel_size"], a["stride"], _torch_symmetric(a["padding"]),
                         a["dilation"], ceil_mode=a["ceil_mode"])
        return grads(y, [x]) if backward else y
    x, gamma = t("x", backward), t("gamma", backward)
    y = F.batch_norm(x, t("running_mean"), t("running_var"), gamma, t("beta"),
                     training=a["training"], momentum=a.get("momentum", 0.1), eps=a["eps"])
    return grads(y, [x, gamma]) if backward else y


# tensorflow -----------------------------------------------------------------------------


def _nhwc(a: np.ndarray) -> np.ndarray:
    return _copy(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else _copy(a)


def _hwio(w: np.ndarray) -> np.ndarray:
    return _copy(w.transpose(2, 3, 1, 0)) if w.ndim == 4 else _copy(w)


def _tf_padding(padding: Any) -> Any:
    """Contract conv / pool padding -> tf.nn's (NHWC explicit lists; strings as TF names)."""
    if isinstance(padding, str):
        return {"same": "SAME", "valid": "VALID"}.get(padding, padding)
    (t, b), (l, r) = _loose_pads(padding)
    return [[0, 0], [t, b], [l, r], [0, 0]]


def _tf_ints(v: Any) -> Any:
    return list(v) if isinstance(v, tuple | list) else v


_TF_PAD_MODES = {"constant": "CONSTANT", "reflect": "REFLECT"}


def _tf_pad(tf: Any, x: Any, invalid: InvalidCall) -> Any:
    a = invalid.args
    (t, b), (l, r) = _loose_pads(a["pad_width"])
    paddings = [[0, 0]] * (len(x.shape) - 2) + [[t, b], [l, r]]
    mode = a["mode"]
    if mode in ("replicate", "circular"):
        try:  # the claim: tf.pad has no such mode
            tf.pad(x, paddings, mode=mode.upper())
        except ValueError:
            raise NotExpressible(f"tf.pad has no {mode} mode",
                                 incidental=invalid.category != f"{mode}_pad_too_large") from None
        raise AssertionError(f"tf.pad accepted mode {mode.upper()!r}: update the record")
    if mode == "constant" and invalid.function == "pad":
        return tf.pad(x, paddings, mode="CONSTANT", constant_values=a["value"])
    return tf.pad(x, paddings, mode=_TF_PAD_MODES.get(mode, mode))


def tf_conv_aborts(invalid: InvalidCall) -> bool:
    """tensorflow-cpu 2.21 (oneDNN) float32 tf.nn.conv2d with an input of fewer than 4 dims
    aborts the process ("Check failed: index >= 0 && index < num_total_dims" in
    tensor_format.h); float64 (no oneDNN kernel) raises InvalidArgumentError instead."""
    x = invalid.args.get("x")
    return (invalid.function in CONV and isinstance(x, np.ndarray) and x.ndim < 4
            and x.dtype == np.float32)


def _tf_conv_gradient_limits(invalid: InvalidCall) -> None:
    """TF's CPU conv gradients refuse dilation > 1 and (float64) grouped convolutions
    (divergences tf-dilated-conv-gradient, tf-grouped-conv-gradient-cpu): such a draw would
    record the limitation, not the category."""
    a = invalid.args
    if invalid.category != "nonpositive_dilation" and max(_pair(a["dilation"])) > 1:
        raise NotExpressible("TF CPU conv gradients support dilation 1 only", incidental=True)
    x, w = a["x"], a["w"]
    if x.ndim == 4 and w.ndim == 4 and x.dtype == np.float64 and w.shape[1] >= 1:
        c, depth, co = x.shape[1], w.shape[1], w.shape[0]
        if depth != c and c % depth == 0 and co % (c // depth) == 0:
            raise NotExpressible("TF CPU float64 grouped conv gradients are unimplemented",
                                 incidental=True)


def run_tf(tf: Any, invalid: InvalidCall) -> Any:
    """The natively equivalent tf.nn call (NHWC, tf.constant, GradientTape for gradients).

    Returns the output, or the gradients for a backward function.
    """
    a, fn, cat = invalid.args, invalid.function, invalid.category
    backward = fn.endswith("_backward")

    def c(name: str, layout: Callable[[np.ndarray], np.ndarray] = _copy) -> Any:
        return None if a.get(name) is None else tf.constant(layout(a[name]))

    def grads(tape: Any, y: Any, sources: list, dy: Any) -> Any:
        return tape.gradient(y, [s for s in sources if s is not None], output_gradients=dy)

    if fn in PAD:
        if fn == "pad":
            return _tf_pad(tf, c("x"), invalid)
        dy = c("dy")
        x = tf.zeros(_pad_input_shape(a["dy"], a["pad_width"]), dtype=dy.dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = _tf_pad(tf, x, invalid)
        return grads(tape, y, [x], dy)
    if fn in CONV:
        if cat in ("groups_not_dividing", "nonpositive_groups"):
            raise NotExpressible("tf.nn.conv2d has no groups argument: groups is C / the "
                                 "filter's in-depth")
        if tf_conv_aborts(invalid):
            raise WouldAbort("oneDNN float32 Conv2D: CHECK failure on an input of < 4 dims")
        if backward:
            _tf_conv_gradient_limits(invalid)
        x, w = c("x", _nhwc), c("w", _hwio)
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = tf.nn.conv2d(x, w, strides=_tf_ints(a["stride"]),
                             padding=_tf_padding(a["padding"]),
                             dilations=_tf_ints(a["dilation"]))
            if not backward and a.get("b") is not None:
                y = tf.nn.bias_add(y, c("b"))
        return grads(tape, y, [x, w], c("dy", _nhwc)) if backward else y
    if fn in POOL:
        if a["ceil_mode"]:
            raise NotExpressible("tf.nn pooling has no ceil_mode", incidental=True)
        dilation = a["dilation"]
        if dilation != 1 and dilation != (1, 1) and cat != "nonpositive_dilation":
            raise NotExpressible("tf.nn.max_pool2d has no dilation", incidental=True)
        x = c("x", _nhwc)
        stride = a["kernel_size"] if a["stride"] is None else a["stride"]
        with tf.GradientTape() as tape:
            tape.watch(x)
            if cat == "nonpositive_dilation":
                if _loose_pads(a["padding"]) != ((0, 0), (0, 0)):
                    raise NotExpressible("tf.nn.pool (the one with dilations) has no explicit "
                                         "padding", incidental=True)
                y = tf.nn.pool(x, window_shape=list(_pair(a["kernel_size"])),
                               pooling_type="MAX", strides=list(_pair(stride)),
                               padding="VALID", dilations=list(_pair(dilation)))
            else:
                y = tf.nn.max_pool2d(x, ksize=_tf_ints(a["kernel_size"]),
                                     strides=_tf_ints(stride), padding=_tf_padding(a["padding"]))
        return grads(tape, y, [x], c("dy", _nhwc)) if backward else y
    # batch norm: tf.nn.moments (training) + tf.nn.batch_normalization; tf.nn keeps no running
    # statistics, so in training they (and momentum) are not part of the native call.
    training = a["training"]
    running_broken = invalid.broken in ("running_mean", "running_var")
    if cat == "bn_eval_without_running" or (cat == "bn_running_unpaired" and not training):
        raise NotExpressible("tf.nn.batch_normalization takes mean and variance as required "
                             "arguments: there is no eval mode that finds them")
    if training and (running_broken or cat == "bn_running_unpaired"):
        raise NotExpressible("tf.nn keeps no running statistics: in training they are not "
                             "arguments of any tf.nn call")
    if invalid.broken == "momentum":
        raise NotExpressible("tf.nn has no momentum: no tf.nn call updates running statistics")
    x, gamma = c("x", _nhwc), c("gamma")
    with tf.GradientTape() as tape:
        tape.watch([s for s in (x, gamma) if s is not None])
        if training:
            mean, var = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
        else:
            mean, var = c("running_mean"), c("running_var")
        y = tf.nn.batch_normalization(x, mean, var, offset=None if backward else c("beta"),
                                      scale=gamma, variance_epsilon=a["eps"])
    return grads(tape, y, [x, gamma], c("dy", _nhwc)) if backward else y


RUNNERS: dict[str, Callable[[Any, InvalidCall], Any]] = {"torch": run_torch,
                                                         "tensorflow": run_tf}


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


def markdown_table(record: Mapping[str, Any] | None = None) -> str:
    """The category x {nnref, torch, TF} table of docs/invalid-arguments.md."""
    record = load_behaviour() if record is None else record
    lines = ["| category | functions | nnref | torch | TF |", "|---|---|---|---|---|"]
    for cat in CATEGORIES.values():
        cells = [_outcomes(record[cat.id][fw]["outcomes"]) for fw in FRAMEWORKS]
        lines.append(f"| `{cat.id}`: {cat.summary} | {', '.join(cat.functions)} | "
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
