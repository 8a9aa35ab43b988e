"""The backends: one registry row per backend, and how to load one.

A backend is a module offering the nnref contract (CONTRACT.md): nnref itself, or a framework
adapter (``<name>_backend.py`` in this package) whose contract functions are generated from its
table over the op records (``table.py``). Everything the suite needs to know about a backend
(its name, the package it imports, its version, its pin and extra, its pytest marker and tox
environment, what it can do) is its row in :data:`BACKENDS`, defined in
``conformance/backend_registry.py`` (the suite's bottom layer) and re-exported here; the plugin,
``diff``, the fixtures, the bench and the report header read it. Adding a backend is its module
plus one row.

The contract's argument rules shared by the adapters are in ``arguments.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ..backend_registry import BACKEND_NAMES, BACKENDS, Backend, backend
from ..unsupported import Unsupported

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "Backend",
    "Unsupported",
    "backend",
    "load_backend",
]


def load_backend(name: str) -> ModuleType:
    """Import and return the backend module called `name` (a name or alias of BACKENDS).

    The framework is imported only now. A missing framework raises ImportError naming it.
    """
    row = backend(name)
    if importlib.util.find_spec(row.package) is None:
        raise ImportError(
            f"backend {row.name!r} needs the Python package {row.package!r}, which is not "
            f"installed ({row.install_hint})"
        )
    return importlib.import_module(row.module)
