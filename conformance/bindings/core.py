"""The building blocks of a binding: how a course API is checked against the contract.

A :class:`Binding` is a table: one :class:`Row` per contract function the API can express. A
row names the user's functions it calls (``uses``; the last, or ``label``, is the one judged:
a backward row calls the user's forward first and hands its cache to the user's backward), an
``adapter`` that
implements the contract function with them, and how the contract's outputs are called in the
user's words (``outputs``: ``dw`` -> ``Conv.backward: gradient_weights``). ``limits`` are the
binding's declared limits (``CONFORMANCE_LIMITS``): the sampler draws only what the API can say
(a limit may be a function of the case giving the one form the API can say), and the summary
lists the rest; ``ties`` is the binding's tie rule for max pooling (the contract's, "first",
or the sampler draws tie-free inputs); ``notes`` say what the API cannot express.

An adapter receives a :class:`UserCode` (``u``) and the contract call's arguments. A *strict*
adapter (no ``*args`` / ``**kwargs``) names the contract parameters it can express, by their
CONTRACT.md names (``lambda u, x, w, stride: ...``); it is called with those, by name, and every
other parameter must have the value of an API without it (:func:`plain`: no bias, no padding,
dilation 1, ...), which also becomes a declared limit, so the sampler draws only such calls.
An adapter with ``**kwargs`` receives the call as made and checks the rest itself. ``u.NAME``
is the user's function or class, wrapped so that an exception raised inside it names it
(:func:`charge`); ``u.method(obj, "forward")`` does the same for a method (``Conv.forward``).
A configuration the API cannot express raises :class:`Inexpressible` (a ``NotImplementedError``
whose message is the cause, without values: the summary groups by it).

:class:`BoundModule` (``conformance.bindings.bind(target, api)``) is the user's namespace seen
through a binding, a module the suite checks like any other: one contract function per row
whose user functions all exist, each remembering the user's function it judges; the others
are listed as missing, in the user's names.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cases import pads_of, same_pads, spatial, window_count, window_taps

# Set on an exception raised inside the user's code: the user's function or method it came from.
USER_FUNCTION_ATTR = "nnref_user_function"


class Inexpressible(NotImplementedError):
    """The API under test cannot express this configuration (the message is the cause)."""


def charge(exc: BaseException, label: str) -> BaseException:
    """Mark ``exc`` as raised inside the user's ``label`` (the innermost label wins)."""
    if getattr(exc, USER_FUNCTION_ATTR, None) is None:
        try:
            setattr(exc, USER_FUNCTION_ATTR, label)
            exc.add_note(f"raised inside {label}")
        except (AttributeError, TypeError):  # an exception type without a __dict__
            pass
    return exc


def user_function(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (the user's), so that an exception raised inside it is charged to ``label``."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Inexpressible:
            raise
        except Exception as exc:
            charge(exc, label)
            raise

    call.user_label = label  # type: ignore[attr-defined]
    return call


class UserCode:
    """The user's namespace (a module, a package's names, a dict) as an adapter sees it."""

    def __init__(self, namespace: Mapping[str, Any], origin: str) -> None:
        self._namespace = dict(namespace)
        self.origin = origin

    def has(self, name: str) -> bool:
        """Whether the user defines ``name`` (``Class.method``: the class has the method)."""
        head, _, method = name.partition(".")
        found = self._namespace.get(head)
        if found is None or not callable(found):
            return False
        return not method or callable(getattr(found, method, None))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            found = self._namespace[name]
        except KeyError:
            raise AttributeError(f"{self.origin} defines no {name}") from None
        return user_function(name, found)

    def raw(self, name: str) -> Any:
        """The user's object itself (not wrapped)."""
        return self._namespace[name]

    def method(self, obj: Any, name: str) -> Callable[..., Any]:
        """A method of a user's object, charged as ``Class.name``."""
        return user_function(f"{type(obj).__name__}.{name}", getattr(obj, name))

    def set(self, obj: Any, attribute: str, value: Any) -> None:
        """Set an attribute (a property setter is the user's code: charged to it)."""
        try:
            setattr(obj, attribute, value)
        except Exception as exc:
            charge(exc, f"{type(obj).__name__}.{attribute} (set)")
            raise

    def get(self, obj: Any, attribute: str) -> Any:
        """Read an attribute the user's code set (a missing one is charged to the class)."""
        try:
            return getattr(obj, attribute)
        except Exception as exc:
            charge(exc, f"{type(obj).__name__}.{attribute}")
            raise


Adapter = Callable[..., Any]


@dataclass(frozen=True)
class Row:
    """One contract function expressed with the user's functions (see the module docstring)."""

    contract: str
    uses: tuple[str, ...]
    adapter: Adapter
    # contract output name -> the user's words for it ("conv_backward_naive: dw",
    # "Conv.backward: gradient_weights"); default: "<judged function>: <output>"
    outputs: Mapping[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def judged(self) -> str:
        """The user's function this row judges: its label, else the last one it calls."""
        return self.label or self.uses[-1]

    def output_label(self, output: str) -> str:
        return self.outputs.get(output, f"{self.judged}: {output}")

    @functools.cached_property
    def expressed(self) -> tuple[str, ...] | None:
        """A strict adapter's contract parameters (None: it takes the call as made)."""
        return adapter_parameters(self.contract, self.adapter)

    @property
    def derived_limits(self) -> dict[str, Any]:
        """What a strict adapter's absent parameters imply for the sampler (its case fields)."""
        if self.expressed is None:
            return {}
        out: dict[str, Any] = {}
        for name in contract_signature(self.contract).parameters:
            if name not in self.expressed:
                out.update(_PLAIN_LIMITS.get(name, {}))
        return out


def row(contract: str, uses: str | Sequence[str], adapter: Adapter,
        outputs: Mapping[str, str] | None = None, label: str = "") -> Row:
    """A :class:`Row`; ``uses`` may be one name or a list, ``outputs`` maps contract output
    names to the user's words, ``label`` names what the row judges (default: the last of
    ``uses``)."""
    names = (uses,) if isinstance(uses, str) else tuple(uses)
    made = Row(contract, names, adapter, dict(outputs or {}), label)
    made.expressed  # noqa: B018  (a strict adapter's parameters are checked here)
    return made


def contract_signature(contract: str) -> inspect.Signature:
    """The contract function's signature (nnref's)."""
    import nnref

    found = getattr(nnref, contract, None)
    if found is None:
        raise ValueError(f"row {contract!r}: no such contract function (CONTRACT.md)")
    return inspect.signature(found)


def adapter_parameters(contract: str, adapter: Adapter) -> tuple[str, ...] | None:
    """The contract parameters a strict adapter takes (after ``u``), checked: each is one of
    the contract's, and each it leaves out has an API-less value (:func:`plain`). None for an
    adapter with ``*args`` or ``**kwargs``."""
    params = list(inspect.signature(adapter).parameters.values())[1:]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    contract_params = contract_signature(contract).parameters
    names = tuple(p.name for p in params)
    unknown = [n for n in names if n not in contract_params]
    if unknown:
        raise ValueError(f"row {contract!r}: the adapter takes {unknown}, not parameters of "
                         f"{contract}{contract_signature(contract)}")
    left_out = [n for n, p in contract_params.items() if n not in names and n not in _PLAIN]
    if left_out:
        raise ValueError(f"row {contract!r}: the adapter must take {left_out} (an API without "
                         f"them has no value the contract can stand for)")
    return names


# The tie rules a binding may state for max pooling.
TIE_RULES = ("first", "every", "split")


@dataclass(frozen=True)
class Binding:
    """A course API mapped onto the contract: rows, limits, the tie rule and what it cannot say.

    ``finite_only``: the API defines no behaviour for NaN, infinities and signed zeros, so the
    contract's rules for them are not asked (such inputs are reported as not supported).
    """

    name: str
    rows: tuple[Row, ...]
    limits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ties: str | None = None
    notes: tuple[str, ...] = ()
    finite_only: bool = True
    # a directory target: the files to import, first found (``cs231n/layers.py``), or a loader
    # of its own: folder -> (namespace, origin) (conformance.bindings.targets)
    entries: tuple[str, ...] = ()
    load_directory: Callable[[Any], tuple[dict[str, Any], str]] | None = None
    # limits that depend on the user's code (FAU: the eps a layer keeps): user -> limits
    limits_for: Callable[[UserCode], Mapping[str, Mapping[str, Any]]] | None = None

    def __post_init__(self) -> None:
        if self.ties is not None and self.ties not in TIE_RULES:
            raise ValueError(f"binding {self.name}: ties must be one of {TIE_RULES} or None, "
                             f"got {self.ties!r}")

    def declared_limits(self, user: UserCode | None = None) -> dict[str, dict[str, Any]]:
        """The limits the sampler honours: the binding's (and those it derives from the user's
        code), plus tie-free max-pool inputs unless the binding states the contract's tie
        rule."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            if r.derived_limits:
                out.setdefault(r.contract, {}).update(r.derived_limits)
        for op, params in self.limits.items():
            out.setdefault(op, {}).update(params)
        if self.limits_for is not None and user is not None:
            for op, params in self.limits_for(user).items():
                out.setdefault(op, {}).update(params)
        if self.ties != "first":
            for r in self.rows:
                if r.contract.startswith(("max_pool", "adaptive_max_pool")) \
                        and not r.contract.endswith("_backward"):
                    out.setdefault(r.contract, {})["kind"] = ["normal", "unique"]
        return out


class BoundModule(types.ModuleType):
    """The user's code seen through a binding: a module of contract functions.

    ``CONFORMANCE_LIMITS`` holds the binding's limits; ``rows`` the rows whose user functions
    exist, by contract function; ``missing`` the user functions each absent row needs.
    """

    def __init__(self, binding: Binding, user: UserCode, target: str) -> None:
        super().__init__(f"{binding.name}:{target}")
        self.binding = binding
        self.user = user
        self.target = target
        self.__file__ = user.origin
        self.CONFORMANCE_LIMITS = binding.declared_limits(user)
        self.CONFORMANCE_FINITE_ONLY = binding.finite_only
        self.rows: dict[str, Row] = {}
        self.missing: dict[str, tuple[str, ...]] = {}
        for r in binding.rows:
            absent = tuple(n for n in r.uses if not user.has(n))
            if absent:
                self.missing[r.contract] = absent
                continue
            self.rows[r.contract] = r
            setattr(self, r.contract, _contract_function(binding, r, user))

    def user_label(self, contract: str) -> str:
        """The user's function a contract function judges (itself when the binding lacks it)."""
        found = self.rows.get(contract)
        if found is not None:
            return found.judged
        absent = self.missing.get(contract)
        return absent[-1] if absent else contract

    def output_label(self, contract: str, output: str) -> str:
        found = self.rows.get(contract)
        return found.output_label(output) if found else f"{contract}: {output}"


def _contract_function(binding: Binding, r: Row, user: UserCode) -> Callable[..., Any]:
    from ..ops import record_of_function

    record = record_of_function(r.contract)
    signature = contract_signature(r.contract)
    ranks = [params["rank"] for op, params in binding.limits.items()
             if "rank" in params and op in {record.name, *record.all_functions()}]

    # the gradient of a max-pool window goes by the tie rule: a binding with another rule is
    # asked about windows with one maximum only
    tie_rule_matters = binding.ties != "first" and record.name == "max_pool" \
        and r.contract.endswith("_backward")

    def contract_function(*args: Any, **kwargs: Any) -> Any:
        if ranks and args and isinstance(args[0], np.ndarray):
            rank = args[0].ndim - record.case_type.leading_axes
            if not all(rank in (limit if isinstance(limit, list) else [limit])
                       for limit in ranks):
                raise Inexpressible("inputs of a rank outside the declared limits")
        if binding.finite_only:
            refuse_non_finite(args, kwargs)
        if tie_rule_matters and has_tied_maximum(*args[1:], **kwargs):
            raise Inexpressible("tied maxima (the binding's tie rule is not the contract's)")
        if r.expressed is None:
            return r.adapter(user, *args, **kwargs)
        # a strict adapter: the contract's arguments by name; the rest must be API-less
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        plain(**{n: v for n, v in bound.arguments.items() if n not in r.expressed})
        return r.adapter(user, **{n: bound.arguments[n] for n in r.expressed})

    contract_function.__name__ = r.contract
    contract_function.__qualname__ = r.contract
    contract_function.__doc__ = f"{r.contract} through {binding.name}: {', '.join(r.uses)}"
    contract_function.user_label = r.judged  # type: ignore[attr-defined]
    return contract_function


def has_tied_maximum(x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0,
                     dilation: Any = 1, *rest: Any, **options: Any) -> bool:
    """Whether a max-pool window of ``x`` (the contract's geometry) holds its maximum twice."""
    rank = x.ndim - 2
    kernel, dil = spatial(kernel_size, rank), spatial(dilation, rank)
    steps = spatial(kernel_size if stride is None else stride, rank)
    pads = pads_of(padding, rank)
    padded = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), *pads),
                    constant_values=-np.inf)
    index: list[np.ndarray] = []
    for axis in range(rank):
        out = window_count(x.shape[2 + axis], *pads[axis], kernel[axis], steps[axis], dil[axis])
        taps = window_taps(max(out, 0), steps[axis], kernel[axis], dil[axis], 0)
        shape = [1] * (2 * rank)
        shape[2 * axis], shape[2 * axis + 1] = taps.shape
        index.append(taps.reshape(shape))
    windows = padded[(slice(None), slice(None), *index)]  # (N, C, o1, k1, o2, k2, ...)
    order = [0, 1, *range(2, 2 + 2 * rank, 2), *range(3, 3 + 2 * rank, 2)]
    flat = windows.transpose(order).reshape(*windows.shape[:2], -1, int(np.prod(kernel)))
    return bool(((flat == flat.max(axis=-1, keepdims=True)).sum(axis=-1) > 1).any())


def refuse_non_finite(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Inexpressible when an array argument holds NaN, an infinity or -0.0."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if not np.isfinite(value).all():
                raise Inexpressible("non-finite values (the API does not define them)")
            if np.any((value == 0) & np.signbit(value)):
                raise Inexpressible("signed zeros (the API does not define them)")


# --------------------------------------------------------------------------------------------
# argument forms: the contract's arguments in the forms course APIs take


def one_int(value: Any, rank: int, what: str) -> int:
    """A spatial argument as one int for every axis (Inexpressible when the axes differ)."""
    entries = set(spatial(value, rank))
    if len(entries) != 1:
        raise Inexpressible(f"one {what} for every axis")
    return entries.pop()


def resolved_pads(padding: Any, x_shape: Sequence[int], kernel: Sequence[int], stride: Any,
                  dilation: Any) -> tuple[tuple[int, int], ...]:
    """Contract padding (int, per-axis forms, "valid", "same") as (before, after) per axis."""
    rank = len(kernel)
    if padding == "valid":
        return ((0, 0),) * rank
    if padding == "same":
        s, d = spatial(stride, rank), spatial(dilation, rank)
        return tuple(same_pads(x_shape[2 + i], kernel[i], s[i], d[i]) for i in range(rank))
    return pads_of(padding, rank)


def symmetric_pad(pads: Sequence[tuple[int, int]]) -> int:
    """(before, after) per axis as one int for every side (Inexpressible otherwise)."""
    sides = {p for pair in pads for p in pair}
    if len(sides) != 1:
        raise Inexpressible("one padding for every side")
    return sides.pop()


def require(condition: bool, cause: str) -> None:
    """Inexpressible(cause) unless ``condition``."""
    if not condition:
        raise Inexpressible(cause)


# What ``plain`` accepts per argument: the value an API without that argument stands for.
_PLAIN: dict[str, tuple[Callable[[Any], bool], str]] = {
    "b": (lambda v: v is None, "a bias"),
    "padding": (lambda v: v == "valid" or set(np.ravel(v)) <= {0}, "padding"),
    "dilation": (lambda v: set(np.ravel(v)) == {1}, "dilation"),
    "groups": (lambda v: v == 1, "groups"),
    "ceil_mode": (lambda v: not v, "ceil_mode"),
    "return_indices": (lambda v: not v, "indices"),
    "training": (lambda v: bool(v), "test mode"),
    "running_mean": (lambda v: v is None, "running statistics"),
    "running_var": (lambda v: v is None, "running statistics"),
    "eps": (lambda v: v == 0, "eps"),
    "momentum": (lambda v: True, "momentum"),
}


def _plain_limits() -> dict[str, dict[str, Any]]:
    # contract parameter -> the limits (case fields) that make every call take its API-less value
    return {"b": {"bias": False}, "padding": {"padding": fixed(0, "no padding")},
            "dilation": {"dilation": fixed(1, "no dilation")}, "groups": ungrouped(),
            "ceil_mode": {"ceil_mode": False}, "return_indices": {"return_indices": False},
            "training": {"training": True}, "running_mean": {"running": False},
            "running_var": {"running": False}, "eps": {"eps": fixed(0.0, "no eps")},
            "momentum": {}}


def plain(**arguments: Any) -> None:
    """Inexpressible unless every argument has the value of an API without it: no bias, no
    padding, dilation 1, groups 1, no ceil_mode, no indices, training mode, no running
    statistics, eps 0 (momentum is then unused). Returns None, so that an adapter can be one
    expression: ``lambda u, x, w, b=None, stride=1, **kw: plain(b=b, **kw) or u.f(x, w)``."""
    for name, value in arguments.items():
        accepts, cause = _PLAIN[name]
        if not accepts(value):
            raise Inexpressible(f"{cause} (the API has none)")


class Coercion:
    """A limit that is a function of the case: the one form the API can say (its repr is what
    the summary shows)."""

    def __init__(self, description: str, function: Callable[[Any], Any]) -> None:
        self.description = description
        self.function = function

    def __call__(self, case: Any) -> Any:
        return self.function(case)

    def __repr__(self) -> str:
        return self.description


def first_axis(param: str) -> Coercion:
    """A limit: the parameter's first entry on every axis (for an API with one int)."""

    def limit(case: Any) -> Any:
        value = getattr(case, param)
        return None if value is None else spatial(value, case.rank)[0]

    return Coercion(f"one {param} for every axis", limit)


def fixed(value: Any, description: str | None = None) -> Coercion:
    """A limit: the parameter always takes ``value``."""
    return Coercion(description or repr(value), lambda case: value)


def one_padding(param: str = "padding") -> Coercion:
    """A limit: one zero padding for every side (the first one drawn; "same" and "valid"
    stay: the adapter says whether they come out symmetric)."""

    def limit(case: Any) -> Any:
        value = getattr(case, param)
        return value if isinstance(value, str) else pads_of(value, case.rank)[0][0]

    return Coercion("one padding for every side", limit)


def ungrouped(square: bool = False) -> dict[str, Coercion]:
    """Limits for an API without groups: groups 1, the weights taking every input channel
    (and, with ``square``, square kernels: every spatial axis the size of the first)."""

    def weights(case: Any) -> tuple[int, ...]:
        kernel = case.w_shape[2:]
        return (case.w_shape[0], case.x_shape[1],
                *((kernel[0],) * len(kernel) if square else kernel))

    return {"groups": fixed(1, "no groups"),
            "w_shape": Coercion("weights over every input channel"
                                + (", square kernels" if square else ""), weights)}


def scale_and_shift(x: np.ndarray, gamma: np.ndarray | None,
                    beta: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A normalisation's gamma and beta, None meaning ones and zeros (the contract's rule)."""
    c = x.shape[1]
    return ones_if_none(gamma, c, x), zeros_if_none(beta, c, x)


def zeros_if_none(value: np.ndarray | None, size: int, like: np.ndarray) -> np.ndarray:
    return np.zeros(size, dtype=like.dtype) if value is None else value


def ones_if_none(value: np.ndarray | None, size: int, like: np.ndarray) -> np.ndarray:
    return np.ones(size, dtype=like.dtype) if value is None else value


def channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> (N, *S, C), contiguous."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def channels_first(x: np.ndarray) -> np.ndarray:
    """(N, *S, C) -> (N, C, *S), contiguous."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(x), -1, 1))


def one_int_axes(*params: str) -> dict[str, Coercion]:
    """Limits for an API taking one int for each of ``params`` (the first axis's entry)."""
    return {p: first_axis(p) for p in params}


def square_window(kernel_size: Any, stride: Any, rank: int = 2) -> tuple[int, int]:
    """A pool's window as an API with one int each takes it: (size, stride), the stride
    defaulting to the size (the contract's rule)."""
    return (one_int(kernel_size, rank, "window size"),
            one_int(kernel_size if stride is None else stride, rank, "stride"))


_PLAIN_LIMITS = _plain_limits()


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """A bias's gradient from the output's (N, C, *S): the sum over every axis but C (for an
    API whose backward does not return it)."""
    return dy.sum(axis=(0, *range(2, dy.ndim)))
