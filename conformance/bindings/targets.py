"""What ``check TARGET`` names, loaded as the user's namespace.

A target is an importable module name, a ``.py`` file, or a directory. :func:`load_namespace`
tries the loaders of :data:`LOADERS` in order; each is ``(accepts, load)``, where ``accepts(
target, binding)`` says whether it handles the target and ``load(target, binding)`` returns
``(namespace, origin)``: the names the user defines and where they come from (for messages).
A new kind of target (a notebook, say) is one more entry, added with :func:`add_loader`.

A directory is searched for the binding's ``entries`` (``cs231n/layers.py``, ``layers.py``), or
loaded by the binding's own ``load_directory`` (FAU: the ``Layers/`` package).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

Namespace = dict[str, Any]
Loader = tuple[Callable[[str, Any], bool], Callable[[str, Any], tuple[Namespace, str]]]


def module_namespace(module: ModuleType) -> Namespace:
    return {k: v for k, v in vars(module).items() if not k.startswith("__")}


def import_file(path: Path, name: str | None = None) -> ModuleType:
    """Import a .py file as a module; its directory joins sys.path (for its own imports)."""
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_file(target: str, binding: Any) -> bool:
    return target.endswith(".py") and Path(target).is_file()


def _load_file(target: str, binding: Any) -> tuple[Namespace, str]:
    return module_namespace(import_file(Path(target))), str(Path(target).resolve())


def _is_directory(target: str, binding: Any) -> bool:
    return Path(target).is_dir()


def _load_directory(target: str, binding: Any) -> tuple[Namespace, str]:
    folder = Path(target).resolve()
    custom = getattr(binding, "load_directory", None)
    if custom is not None:
        return custom(folder)
    entries = tuple(getattr(binding, "entries", ()) or ())
    for entry in entries:
        path = folder / entry
        if path.is_file():
            if str(folder) not in sys.path:  # a package inside: its own imports resolve
                sys.path.insert(0, str(folder))
            name = ".".join(Path(entry).with_suffix("").parts)
            module = importlib.import_module(name) if "." in name else import_file(path)
            return module_namespace(module), str(path)
    raise ImportError(f"{folder} holds none of {', '.join(entries) or 'the files expected'}")


def _is_module_name(target: str, binding: Any) -> bool:
    return True


def _load_module(target: str, binding: Any) -> tuple[Namespace, str]:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    module = importlib.import_module(target)
    return module_namespace(module), getattr(module, "__file__", None) or target


LOADERS: list[Loader] = [(_is_file, _load_file), (_is_directory, _load_directory),
                         (_is_module_name, _load_module)]


def add_loader(accepts: Callable[[str, Any], bool],
               load: Callable[[str, Any], tuple[Namespace, str]]) -> None:
    """Handle a new kind of target (tried before the built-in ones)."""
    LOADERS.insert(0, (accepts, load))


def load_namespace(target: str, binding: Any = None) -> tuple[Namespace, str]:
    """The user's names defined by ``target`` and where they come from."""
    for accepts, load in LOADERS:
        if accepts(target, binding):
            return load(target, binding)
    raise ImportError(f"no loader accepts {target!r}")  # pragma: no cover - the last accepts
