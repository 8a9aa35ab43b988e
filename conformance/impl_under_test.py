"""Which implementation the suite checks: ``pytest --impl MODULE`` or ``NNREF_IMPL=MODULE``.

The module is wrapped in :class:`ImplUnderTest`, which

- records which contract functions each test calls (the per-op summary at the end of the run);
- turns a function the module lacks into a skip saying "MODULE does not implement X";
- turns ``NotImplementedError`` raised by one of its functions into "this configuration is not
  supported": inside a Hypothesis test the example is discarded and another configuration is
  drawn (:class:`NotSupported` is a Hypothesis rejection), elsewhere the test is reported as
  skipped; either way the call is counted per function and message for the summary;
- reads the limits the module declares up front (:data:`LIMITS_ATTR`), which the sampler
  honours (``sampler.set_limits``), so that only supported configurations are drawn.

A module declares limits as a dict from an op (a record name such as ``"conv"``, for every rank,
or a function name such as ``"conv2d"``) to ``{parameter: allowed}``; ``allowed`` is a value or a
list of values, and a per-axis parameter is allowed when every entry is::

    CONFORMANCE_LIMITS = {"conv": {"groups": 1, "dilation": 1},
                          "max_pool": {"return_indices": False}}

``rank`` limits the number of spatial axes, and a limit may be a function of the case giving the
one value the module takes (what a binding of a course API declares: conformance.bindings).
An exception raised by a contract function carries its name (:data:`FUNCTION_ATTR`), so that a
failure is charged to the function that raised it (conformance.verdicts).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest
from hypothesis.errors import UnsatisfiedAssumption

from .ops import RECORDS, contract_functions
from .sandbox import guarded_call

DEFAULT_IMPL = "nnref"
ENV_VAR = "NNREF_IMPL"
LIMITS_ATTR = "CONFORMANCE_LIMITS"

CONTRACT_FUNCTIONS = contract_functions()
# Set on an exception raised by a contract function of the implementation under test: its name.
FUNCTION_ATTR = "nnref_contract_function"


class NotSupported(UnsatisfiedAssumption):
    """The implementation under test raised NotImplementedError for this configuration.

    A Hypothesis rejection (the example is discarded, another one drawn); outside Hypothesis the
    plugin reports the test as skipped.
    """

    def __init__(self, function: str, message: str) -> None:
        super().__init__(f"{function}: not supported: {message}")
        self.function = function
        self.message = message


def impl_name(option: str | None = None) -> str:
    """The module name chosen by the option, else the environment variable, else nnref."""
    return option or os.environ.get(ENV_VAR) or DEFAULT_IMPL


def load_impl(name: str) -> ModuleType:
    """Import the implementation under test (the current directory is searched last)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(name)


def declared_limits(module: ModuleType) -> dict[str, dict[str, Any]]:
    """The module's declared limits, checked: ops and parameters the suite knows about."""
    raw = getattr(module, LIMITS_ATTR, None) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{LIMITS_ATTR} must be a dict of op -> {{parameter: allowed}}, "
                         f"got {type(raw).__name__}")
    known = {r.name for r in RECORDS} | set(CONTRACT_FUNCTIONS)
    out: dict[str, dict[str, Any]] = {}
    for op, params in raw.items():
        if op not in known:
            raise ValueError(f"{LIMITS_ATTR}: unknown op {op!r} (expected a record name such as "
                             f"'conv' or a function name such as 'conv2d')")
        if not isinstance(params, Mapping):
            raise ValueError(f"{LIMITS_ATTR}[{op!r}] must be a dict of parameter -> allowed")
        fields = {f.name for f in dataclasses.fields(record_of(op).case_type)} | {"rank"}
        unknown = sorted(set(params) - fields)
        if unknown:
            raise ValueError(f"{LIMITS_ATTR}[{op!r}]: unknown parameter(s) {unknown} "
                             f"(expected some of {sorted(fields)})")
        out[op] = dict(params)
    return out


def record_of(op: str) -> Any:
    """The record of an op given by record name or function name."""
    from .ops import record, record_of_function

    return record(op) if op in {r.name for r in RECORDS} else record_of_function(op)


class ImplUnderTest:
    """The module under test, with call recording, 'does not implement' skips and
    NotImplementedError turned into 'not supported'."""

    def __init__(self, module: ModuleType, name: str) -> None:
        self._module = module
        self._name = name
        self.called: set[str] = set()
        # (function, message) -> calls that raised NotImplementedError, in the current test
        self.unsupported: Counter[tuple[str, str]] = Counter()
        self._wrapped: dict[str, Callable[..., Any]] = {}

    @property
    def __name__(self) -> str:
        return self._name

    @property
    def module(self) -> ModuleType:
        return self._module

    def _guard(self, attr: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return guarded_call(attr, fn, args, kwargs)
            except NotImplementedError as exc:
                message = (str(exc).strip().splitlines() or ["(no message)"])[0][:200]
                self.unsupported[(attr, message)] += 1
                raise NotSupported(attr, message) from exc
            except Exception as exc:  # raised inside the implementation: it names its function
                if not hasattr(exc, FUNCTION_ATTR):
                    try:
                        setattr(exc, FUNCTION_ATTR, attr)
                    except (AttributeError, TypeError):  # a type without a __dict__
                        pass
                raise

        return call

    def __getattr__(self, attr: str) -> Any:
        if attr in CONTRACT_FUNCTIONS:
            fn = getattr(self._module, attr, None)
            if not callable(fn):
                bound = getattr(self._module, "binding", None) is not None
                absent = self._module.missing.get(attr) if bound else None  # the user's words
                pytest.skip(f"{self._name} does not implement {attr}"
                            + (f" (missing: {', '.join(absent)})" if absent else ""))
            self.called.add(attr)
            if attr not in self._wrapped:
                self._wrapped[attr] = self._guard(attr, fn)
            return self._wrapped[attr]
        return getattr(self._module, attr)
