"""The link from a divergence test to its registry entry (conformance/divergences.toml).

Each test in test_divergences.py and test_divergences_onnx.py is decorated with
``@demonstrates("entry-id")``; test_divergences.py derives the map from entry id to tests from
these marks and checks it against the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TypeVar

T = TypeVar("T", bound=Callable)


def demonstrates(divergence_id: str) -> Callable[[T], T]:
    """Mark a test as demonstrating the registry entry ``divergence_id`` (one entry per test)."""
    if not isinstance(divergence_id, str) or not divergence_id:
        raise TypeError(f"demonstrates: divergence_id must be a non-empty str, got "
                        f"{divergence_id!r}")

    def mark(test: T) -> T:
        if hasattr(test, "divergence_id"):
            raise TypeError(f"{test.__name__} already demonstrates {test.divergence_id!r}; "
                            f"a test demonstrates one entry, not also {divergence_id!r}")
        test.divergence_id = divergence_id
        return test

    return mark


def defined_tests(modules: Iterable[ModuleType]) -> dict[str, Callable]:
    """Every test function defined in ``modules`` (name -> function)."""
    return {name: obj for module in modules for name, obj in vars(module).items()
            if name.startswith("test_") and callable(obj)
            and getattr(obj, "__module__", None) == module.__name__}


def divergence_tests(modules: Iterable[ModuleType]) -> dict[str, tuple[Callable, ...]]:
    """Entry id -> the tests in ``modules`` that demonstrate it, in definition order."""
    out: dict[str, list[Callable]] = {}
    for test in defined_tests(modules).values():
        if hasattr(test, "divergence_id"):
            out.setdefault(test.divergence_id, []).append(test)
    return {ident: tuple(tests) for ident, tests in out.items()}
