"""The building blocks of a binding: how a course API is checked against the contract.

A :class:`Binding` is a table: one :class:`Row` per contract function the API can express. A
row names the user's functions it calls (``uses``; the last is the one judged: a backward row
calls the user's forward first and hands its cache to the user's backward), an ``adapter`` that
implements the contract function with them, and how the contract's outputs are called in the
user's words (``outputs``: ``dw`` -> ``Conv.backward: gradient_weights``). ``limits`` are the
binding's declared limits (``CONFORMANCE_LIMITS``): the sampler draws only what the API can say
(a limit may be a function of the case giving the one form the API can say), and the summary
lists the rest; ``ties`` is the binding's tie rule for max pooling (the contract's, "first",
or the sampler draws tie-free inputs); ``notes`` say what the API cannot express.

An adapter receives a :class:`UserCode` (``u``) and the contract call's arguments. ``u.NAME``
is the user's function or class, wrapped so that an exception raised inside it names it
(:func:`charge`); ``u.method(obj, "forward")`` does the same for a method (``Conv.forward``).
A configuration the API cannot express raises :class:`Inexpressible` (a ``NotImplementedError``
whose message is the cause, without values: the summary groups by it).

:func:`bind` turns a binding and the user's namespace into a :class:`BoundModule`, a module the
suite checks like any other: one contract function per row whose user functions all exist.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cases import pads_of, same_pads, spatial

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


def row(contract: str, uses: str | Sequence[str], adapter: Adapter,
        outputs: Mapping[str, str] | None = None, label: str = "") -> Row:
    """A :class:`Row`; ``uses`` may be one name or a list, ``outputs`` maps contract output
    names to the user's words, ``label`` names what the row judges (default: the last of
    ``uses``)."""
    names = (uses,) if isinstance(uses, str) else tuple(uses)
    return Row(contract, names, adapter, dict(outputs or {}), label)


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
        out = {op: dict(params) for op, params in self.limits.items()}
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
    def contract_function(*args: Any, **kwargs: Any) -> Any:
        if binding.finite_only:
            refuse_non_finite(args, kwargs)
        return r.adapter(user, *args, **kwargs)

    contract_function.__name__ = r.contract
    contract_function.__qualname__ = r.contract
    contract_function.__doc__ = f"{r.contract} through {binding.name}: {', '.join(r.uses)}"
    contract_function.user_label = r.judged  # type: ignore[attr-defined]
    return contract_function


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
