"""The invalid-argument categories every op shares, judged on the structure of the call.

A category here says which calls it applies to by what the call has (a ``stride`` argument, a
``w``, a per-channel array, a ``dy``, a ``mode``, ...) and by what the case type declares
(``Case.min_ndim``, ``fixed_ndim``, ``w_channels_axis``, ``output_grows_with_kernel``,
``padding_strings``) and by the sampler options it asks for (``affine``: gamma and beta given);
no op is named. Every breaker works at every rank: the axis it breaks is one of the case's
spatial axes, padding comes in every form the contract allows at that rank, and a wrong ndim is
one no rank of the function accepts. A category that belongs to one op is declared on its record
(``OpRecord.invalid_categories``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from .cases import Case, pads_of, spatial
from .invalid_call import valid_ndims
from .invalid_category import (
    DATA_ARRAYS,
    Applies,
    Broken,
    Ctx,
    InvalidCategory,
    fresh,
    has,
    has_all,
    normal,
    sliced,
    with_entry,
)

# ------------------------------------------------------------------------------- breakers
# Each breaker gets a Ctx, edits ctx.args in place and returns (names, broken).


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
            a["w"] = normal(k.rng, shape, a["w"].dtype)
        else:
            a["kernel_size"] = k.container(list(with_entry(kernel, axis, k_new)))
    elif way == "dilation":
        d_new = (padded - 1) // (kk - 1) + 1 + k.draw(st.integers(0, 1), label="dilation extra")
        a["dilation"] = k.container(list(with_entry(dilation, axis, d_new)))
    else:
        size_new = k.draw(st.integers(1, extent - before - after - 1), label="input size")
        a["x"] = sliced(a["x"], 2 + axis, size_new)
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
        a["w"] = sliced(a["w"], 2 + k.axis(), 0)
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
        a["kernel_size"] = k.container(list(with_entry(kernel, axis, bad)))
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
    if k.case.w_channels_axis == 0:  # w (C, Co/G, *k): Co follows from groups
        c, (_, co_g, *kernel) = a["x"].shape[1], a["w"].shape
        groups = k.draw(st.sampled_from([g for g in range(2, c + 2) if c % g]), label="groups")
        a["groups"] = groups
        a["w"] = normal(k.rng, (c, co_g, *kernel), a["w"].dtype)
        return ("groups",), "groups"
    c, (co, _, *kernel) = a["x"].shape[1], a["w"].shape
    options = [g for g in range(2, max(c, co) + 2) if c % g or co % g]
    groups = k.draw(st.sampled_from(options), label="groups")
    a["groups"] = groups
    a["w"] = normal(k.rng, (co, max(c // groups, 1), *kernel), a["w"].dtype)
    return ("groups",), "groups"


def _nonpositive_groups(k: Ctx) -> Broken:
    k.args["groups"] = k.draw(st.sampled_from([0, -1, -2]), label="groups")
    return ("groups",), "groups"


def _channel_arrays(args: Mapping[str, Any]) -> list[str]:
    """The per-channel arrays of a call: every array but x and dy (w, b, gamma, ...)."""
    return [k for k, v in args.items() if isinstance(v, np.ndarray) and k not in DATA_ARRAYS]


def _channel_mismatch(k: Ctx) -> Broken:
    name = k.draw(st.sampled_from(_channel_arrays(k.args)), label="mismatched")
    old = k.args[name]
    axis = 1 if old.ndim >= 2 else 0  # w: (Co, C / G, *k) against x's C; else (C,) or (Co,)
    if old.ndim >= 2:  # a case type may hold C on another axis of w (transposed: (C, Co/G, *k))
        axis = k.case.w_channels_axis
    sizes = [n for n in (old.shape[axis] - 1, old.shape[axis] + 1) if n >= 1]
    shape = list(old.shape)
    shape[axis] = k.draw(st.sampled_from(sizes), label="size")
    new = normal(k.rng, shape, old.dtype)
    k.args[name] = np.abs(new) if (old >= 0).all() else new  # a variance stays >= 0
    return ((name, "x") if old.ndim >= 2 else (name,)), name


def _wrong_ndims(case: Case, direction: str, name: str, ndim: int) -> list[int]:
    """The ndims array ``name`` of the call must not have: near the valid ones, or below the
    minimum of an array that takes any ndim from a minimum up (the case's ``min_ndim``:
    activations, linear's leading axes), or near the one ndim the case fixes (``fixed_ndim``)."""
    function = case.op if direction == "forward" else case.backward_op
    free = case.min_ndim
    if name in free:
        return list(range(free[name]))
    fixed = case.fixed_ndim()
    valid = {fixed[name]} if name in fixed else valid_ndims(function, name) | {ndim}
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
        k.args[name] = fresh(a[(0,) * (a.ndim - ndim)])
    else:
        k.args[name] = fresh(a[(None,) * (ndim - a.ndim)])
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


_UNKNOWN_MODES = ("symmetric", "edge", "wrap", "zeros", "REFLECT", "Constant", "")
_UNKNOWN_PADDINGS = ("full", "causal", "SAME", "Valid", "same ", "")


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
        k.args["dy"] = normal(k.rng, shape, dy.dtype)
        return ("dy", "pad_width"), "dy"
    axis = k.draw(st.integers(0, dy.ndim - 1), label="dy axis")
    shape[axis] = k.draw(st.sampled_from([n for n in (shape[axis] - 1, shape[axis] + 1,
                                                       shape[axis] + 2) if n >= 1]), label="size")
    k.args["dy"] = normal(k.rng, shape, dy.dtype)
    return ("dy",), "dy"


def _has_kernel(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    """Conv's w (Co, C / G, *k: 3 axes or more; linear's 2-D w has no kernel) or pooling's
    kernel_size."""
    w = args.get("w")
    return "kernel_size" in args or (isinstance(w, np.ndarray) and w.ndim >= 3)


def _has_kernel_and_padding(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    # LP pooling has a kernel_size and no padding (explicit_pads: none); a case type whose output
    # grows with the kernel (transposed conv) has no kernel limit.
    return (("padding" in args or "kernel_size" in args) and _has_kernel(case, direction, args)
            and not case.output_grows_with_kernel)


def _has_arrays(count: int) -> Applies:
    """The call takes at least ``count`` arrays."""
    return lambda case, direction, args: sum(isinstance(v, np.ndarray)
                                             for v in args.values()) >= count


def _has_channel_arrays(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    return bool(_channel_arrays(args))


def _has_mode_or_padding_strings(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    return "mode" in args or case.padding_strings


def _always(case: Case, direction: str, args: Mapping[str, Any]) -> bool:
    return True


# Sampler option of the records whose gamma and beta are optional: the valid case has them, so
# that a category breaking a per-channel array (or a second array) always finds one.
_WITH_OPTIONAL_ARRAYS = {"affine": True}


GENERIC: tuple[InvalidCategory, ...] = (
    InvalidCategory("kernel_too_large", "kernel (dilated) larger than the padded input",
                    _has_kernel_and_padding, _kernel_too_large, "ValueError naming the kernel"),
    InvalidCategory("nonpositive_stride", "a stride <= 0", has("stride"), _nonpositive("stride"),
                    "ValueError naming stride"),
    InvalidCategory("nonpositive_dilation", "a dilation <= 0", has("dilation"),
                    _nonpositive("dilation"), "ValueError naming dilation"),
    InvalidCategory("nonpositive_kernel", "a kernel size <= 0 (pool kernel_size; conv w with an "
                    "empty kernel axis)", _has_kernel, _nonpositive_kernel,
                    "ValueError naming kernel_size / w"),
    InvalidCategory("negative_padding", "a pad below 0", has("padding", "pad_width"),
                    _negative_padding, "ValueError naming pad_width / padding"),
    InvalidCategory("pool_padding_above_half", "pooling pad above half the kernel",
                    has_all("kernel_size", "padding"), _pool_padding_above_half,
                    "ValueError naming padding"),
    InvalidCategory("bad_output_size", "an adaptive output_size entry <= 0 or not an int (0, -1, "
                    "1.5, True, '2'), or the wrong number of entries", has("output_size"),
                    _bad_output_size, "ValueError naming output_size"),
    InvalidCategory("groups_not_dividing", "groups not dividing the input or output channels (w "
                    "sized C // groups)", has("groups"), _groups_not_dividing,
                    "ValueError naming groups"),
    InvalidCategory("nonpositive_groups", "groups <= 0", has("groups"), _nonpositive_groups,
                    "ValueError naming groups"),
    InvalidCategory("channel_mismatch", "w, b, gamma, beta or a running statistic does not fit "
                    "the channels", _has_channel_arrays, _channel_mismatch,
                    "ValueError naming the array", _WITH_OPTIONAL_ARRAYS),
    InvalidCategory("wrong_ndim", "an array with the wrong number of dimensions",
                    _has_bounded_ndim, _wrong_ndim, "ValueError naming the array"),
    InvalidCategory("integer_dtype", "an int64 / int32 array", _always, _integer_dtype,
                    "ValueError naming the array"),
    InvalidCategory("bool_dtype", "a bool array", _always, _bool_dtype,
                    "ValueError naming the array"),
    InvalidCategory("mixed_dtype", "one float array in the other float dtype",
                    _has_arrays(2), _mixed_dtype, "ValueError naming the array",
                    _WITH_OPTIONAL_ARRAYS),
    InvalidCategory("unknown_mode", "an unknown pad mode or conv padding string",
                    _has_mode_or_padding_strings, _unknown_mode,
                    "ValueError naming mode / padding"),
    InvalidCategory("wrong_dy_shape", "upstream gradient of the wrong shape (pad_backward: "
                    "smaller than the pads)", has("dy"), _wrong_dy_shape,
                    "ValueError naming dy"),
)
