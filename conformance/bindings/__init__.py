"""Bindings: layers as people write them (a course's API) checked against the contract.

    python -m conformance check TARGET --api cs231n -m values
    python -m conformance check Layers_dir --api fau -m values
    python -m conformance check homework.py --api my_binding.py -m values

Built in: ``cs231n`` (``conformance.bindings.cs231n``), ``deeplearning-ai``
(``conformance.bindings.dlai``), ``fau`` (``conformance.bindings.fau``). A custom binding is a
``.py`` file defining ``BINDING``, a :class:`~conformance.bindings.core.Binding` made of the
same building blocks (``conformance.bindings.core``; README: "Check layers as people write
them").

:func:`bind` gives the module the suite checks; :func:`run_check` runs a check in this process
and returns its verdicts (the structure ``--verdicts-json`` writes, conformance.verdicts).
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .core import Binding, BoundModule, UserCode
from .targets import load_namespace

BUILT_IN = {"cs231n": "conformance.bindings.cs231n",
            "deeplearning-ai": "conformance.bindings.dlai",
            "fau": "conformance.bindings.fau"}


def load_binding(api: str) -> Binding:
    """A built-in binding by name, or the ``BINDING`` of a .py file."""
    if api in BUILT_IN:
        return importlib.import_module(BUILT_IN[api]).BINDING
    if api.endswith(".py"):
        from .targets import import_file

        path = Path(api)
        if not path.is_file():
            raise FileNotFoundError(f"--api {api}: no such file")
        found = getattr(import_file(path, f"nnref_binding_{path.stem}"), "BINDING", None)
        if not isinstance(found, Binding):
            raise ValueError(f"--api {api}: the file defines no BINDING (a conformance."
                             f"bindings.core.Binding)")
        return found
    raise ValueError(f"--api {api!r}: expected one of {', '.join(BUILT_IN)} or a .py file "
                     f"defining BINDING")


def bind(target: str, api: str) -> BoundModule:
    """``target`` (a module name, a .py file, a directory) seen through the binding ``api``."""
    binding = load_binding(api)
    namespace, origin = load_namespace(target, binding)
    return BoundModule(binding, UserCode(namespace, origin), target)


def reproducer_loader(target: str, api: str) -> str:
    """The line a reproducer uses to build ``impl`` (absolute paths: it runs from anywhere)."""
    where = str(Path(target).resolve()) if Path(target).exists() else target
    spec = str(Path(api).resolve()) if api.endswith(".py") else api
    return f"from conformance.bindings import bind; impl = bind({where!r}, {spec!r})"


def run_check(target: str, api: str | None = None, pytest_args: Sequence[str] = (),
              verdicts_file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run the suite against ``target`` (through the binding ``api``, if given) in this process
    and return the verdicts: per user function and direction, the verdict, counts, failures
    (message, output, configuration, reproducer), unsupported causes (conformance.verdicts).

    ``pytest_args`` are passed on (e.g. ``["-m", "values", "-q"]``); ``exit_status`` in the
    result is pytest's. The verdicts are also written to ``verdicts_file`` when given.
    """
    from ..__main__ import check

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(verdicts_file) if verdicts_file else Path(tmp) / "verdicts.json"
        args = [target, *(["--api", api] if api else []), "--verdicts-json", str(out),
                *pytest_args]
        status = check(args)
        verdicts = json.loads(out.read_text()) if out.is_file() else {"functions": []}
    verdicts["exit_status"] = status
    return verdicts


__all__ = ["BUILT_IN", "Binding", "BoundModule", "bind", "load_binding", "reproducer_loader",
           "run_check"]
