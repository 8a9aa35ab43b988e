"""Importing optional frameworks in tests: skip when absent, unless they are required.

`NNREF_REQUIRE_FRAMEWORKS` (comma- or space-separated, e.g. "torch,tensorflow") lists frameworks
that must be importable; for those a missing import is an error, never a skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

ENV_VAR = "NNREF_REQUIRE_FRAMEWORKS"
_CANONICAL = {"tf": "tensorflow", "tensorflow": "tensorflow", "torch": "torch",
              "pytorch": "torch", "scipy": "scipy", "nnref": "nnref"}


def canonical(name: str) -> str:
    """Canonical import name of a framework ("tf" -> "tensorflow")."""
    key = name.strip().lower()
    return _CANONICAL.get(key, key)


def required() -> frozenset[str]:
    """Frameworks listed in NNREF_REQUIRE_FRAMEWORKS (canonical names)."""
    raw = os.environ.get(ENV_VAR, "")
    return frozenset(canonical(p) for p in raw.replace(",", " ").split() if p)


def require(name: str) -> ModuleType:
    """Import framework `name`; skip the test if it is missing and not required."""
    module = canonical(name)
    if module == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if module in required():
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"{module} is listed in {ENV_VAR}={os.environ.get(ENV_VAR)!r} but cannot be "
                f"imported: {exc}"
            ) from exc
    return pytest.importorskip(module, reason=f"{module} is not installed", exc_type=ImportError)
