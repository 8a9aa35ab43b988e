"""The conformance package's layers: no import circles, and no import that goes up.

    nnref <- cases and records <- engines <- backends <- commands and the pytest plugin <- tests

Below the cases and records sit the import-free basics (paths, frameworks, profiles, the
rounding-error primitives, the exception a backend raises). Every import counts: module-level,
inside functions, and under ``if TYPE_CHECKING:`` (an annotation that needs a higher module is a
type in the wrong place). A module this file does not place fails the test: a new module is
given its layer here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]  # conformance/
ROOT_NAME = PACKAGE.name

# Layer of each module (a package's name covers its __init__ and, with ".*", its modules).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("basics", ("conformance", "conformance.paths", "conformance.frameworks",
                "conformance.backend_registry",
                "conformance.profiles", "conformance.rounding", "conformance.unsupported")),
    ("cases and records", ("conformance.cases", "conformance.ops", "conformance.ops.*",
                           "conformance.invalid_category")),
    ("engines", ("conformance.sampler", "conformance.tolerance", "conformance.runner",
                 "conformance.comparison", "conformance.registry", "conformance.gradcheck",
                 "conformance.harness", "conformance.impl_under_test", "conformance.low_precision",
                 "conformance.invalid_call", "conformance.generic_categories",
                 "conformance.invalid_args", "conformance.invalid_outcomes",
                 "conformance.sandbox")),
    ("backends", ("conformance.backends", "conformance.backends.*", "conformance.bindings.*")),
    ("commands", ("conformance.__main__", "conformance.pytest_plugin", "conformance.diff",
                  "conformance.diff_model", "conformance.diff_run", "conformance.diff_report",
                  "conformance.fixture_store", "conformance.fixture_generation",
                  "conformance.fixtures_cli", "conformance.notebook", "conformance.graders",
                  "conformance.class_check", "conformance.bindings", "conformance.verdicts")),
    ("tests", ("conformance.tests", "conformance.tests.*")),
)


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """conformance/ops/conv.py -> conformance.ops.conv; conformance/ops/__init__.py ->
    conformance.ops."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package, by name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """The package's modules that ``path`` (module ``name``) imports, anywhere in its code."""
    known = set(known)
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # "conformance.ops.RECORDS" -> its module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports(path, name, found) for name, path in found.items()}


def layer_of(name: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> int | None:
    for index, (_, patterns) in enumerate(layers):
        for pattern in patterns:
            if name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
                return index
    return None


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: Mapping[str, set[str]],
           layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> list[str]:
    """Imports from a module into a higher layer, as "a (layer) -> b (layer)"."""
    out = []
    for name, targets in sorted(graph.items()):
        mine = layer_of(name, layers)
        for target in sorted(targets):
            theirs = layer_of(target, layers)
            if mine is not None and theirs is not None and theirs > mine:
                out.append(f"{name} ({layers[mine][0]}) -> {target} ({layers[theirs][0]})")
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """The package's import graph, parsed when a test here runs (not at collection: every
    pytest process and worker collects this module, in every tox environment)."""
    return import_graph()


def test_every_module_has_a_layer(graph):
    unplaced = sorted(n for n in graph if layer_of(n) is None)
    assert not unplaced, f"give these modules a layer in {Path(__file__).name}: {unplaced}"


def test_no_import_circles(graph):
    assert not circles(graph), f"import circles: {circles(graph)}"


def test_no_import_goes_up_a_layer(graph):
    assert not upward(graph), "imports into a higher layer:\n" + "\n".join(upward(graph))


# ------------------------------------------------------------------- the checks can fail


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / ROOT_NAME
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "cases.py": "def record():\n    from .ops import record\n    return record\n",
        "ops/__init__.py": "from ..cases import record\n",
    })
    graph = import_graph(root)
    assert graph["conformance.cases"] == {"conformance.ops"}
    assert circles(graph) == [["conformance.cases", "conformance.ops"]]


def test_an_upward_import_under_type_checking_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "sampler.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from .backends.native_calls import run_torch\n",
        "backends/__init__.py": "",
        "backends/native_calls.py": "from conformance import sampler\n",
    })
    graph = import_graph(root)
    assert graph["conformance.sampler"] == {"conformance.backends.native_calls"}
    assert graph["conformance.backends.native_calls"] == {"conformance.sampler"}
    assert upward(graph) == ["conformance.sampler (engines) -> "
                             "conformance.backends.native_calls (backends)"]


@pytest.mark.parametrize(("statement", "target"), [
    ("from . import ops", "conformance.ops"),
    ("from .ops import RECORDS", "conformance.ops"),
    ("from .ops.conv import ConvCase", "conformance.ops.conv"),
    ("import conformance.ops.conv", "conformance.ops.conv"),
    ("from conformance.backends import native_calls", "conformance.backends.native_calls"),
])
def test_import_forms_resolve_to_modules(tmp_path, statement, target):
    root = _package(tmp_path, {"__init__.py": "", "ops/__init__.py": "", "ops/conv.py": "",
                               "backends/__init__.py": "", "backends/native_calls.py": "",
                               "runner.py": f"def f():\n    {statement}\n"})
    assert import_graph(root)["conformance.runner"] == {target}
