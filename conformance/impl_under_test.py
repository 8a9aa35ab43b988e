"""Which implementation the suite checks: ``pytest --impl MODULE`` or ``NNREF_IMPL=MODULE``.

The module is wrapped in :class:`ImplUnderTest`, which records which contract functions each test
calls (for the per-op summary at the end of the run) and turns a function the module lacks into
a skip saying "MODULE does not implement X" instead of an AttributeError.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import pytest

from .ops import contract_functions

DEFAULT_IMPL = "nnref"
ENV_VAR = "NNREF_IMPL"

CONTRACT_FUNCTIONS = contract_functions()


def impl_name(option: str | None = None) -> str:
    """The module name chosen by the option, else the environment variable, else nnref."""
    return option or os.environ.get(ENV_VAR) or DEFAULT_IMPL


def load_impl(name: str) -> ModuleType:
    """Import the implementation under test; a clear error if it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"--impl {name}: cannot import {name!r} ({exc})") from exc


class ImplUnderTest:
    """The module under test, with call recording and 'does not implement' skips."""

    def __init__(self, module: ModuleType, name: str) -> None:
        self._module = module
        self._name = name
        self.called: set[str] = set()

    @property
    def __name__(self) -> str:
        return self._name

    def __getattr__(self, attr: str) -> Any:
        if attr in CONTRACT_FUNCTIONS:
            fn = getattr(self._module, attr, None)
            if not callable(fn):
                pytest.skip(f"{self._name} does not implement {attr}")
            self.called.add(attr)
            return fn
        return getattr(self._module, attr)
