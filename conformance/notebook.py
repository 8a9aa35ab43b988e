"""Notebook targets: ``check homework.ipynb [--api NAME]``.

The notebook runs as Jupyter runs it: its code cells, top to bottom, in one IPython shell (the
shell ipykernel itself is built on), so magics, ``%%writefile`` cells and ``!`` lines work and a
function may read a global an earlier cell defined (its ``__globals__`` are the notebook's
namespace). Each cell has a wall-clock timeout; a cell that raises (or times out) is recorded
with its number and first lines, and the cells after it still run. The notebook's own output
(prints, tracebacks, ``!`` commands) goes to a scratch file, not into the verdict.

Grader cells can be left out (:data:`SETTINGS` ``skip_grader_cells``, ``check
--skip-grader-cells``): nbgrader test cells (metadata ``nbgrader.grade`` true and
``nbgrader.solution`` false) and cells Otter ignores (a first line ``# IGNORE`` or ``# otter:
ignore``, or metadata ``otter.ignore``).

:func:`load_notebook` returns the notebook's names as a module the suite checks like any other;
:data:`CELL_ERRORS` holds the failed cells of the last load (the plugin reports them). Needs
IPython and nbformat (the ``notebook`` extra); the notebook runs in the current process, which
``python -m conformance check`` makes a separate, bounded one (conformance.sandbox).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# check --skip-grader-cells / --cell-timeout set these (the loader's signature is fixed).
SETTINGS: dict[str, Any] = {"skip_grader_cells": False, "cell_timeout": 60.0}


@dataclass(frozen=True)
class CellError:
    """A code cell that raised or timed out while the notebook loaded."""

    number: int  # 1-based, among all cells of the notebook (markdown included), as Jupyter shows
    first_lines: str
    error: str

    def describe(self) -> str:
        return f"cell {self.number} ({self.first_lines!r}): {self.error}"


CELL_ERRORS: list[CellError] = []
# IPython's own names in the shell's namespace: not the user's.
_SHELL_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


class CellTimedOut(Exception):
    """A notebook cell ran longer than the cell timeout."""


def is_notebook(target: str) -> bool:
    return target.endswith(".ipynb") and Path(target).is_file()


def read_cells(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The notebook's cells (nbformat 4; older formats converted when nbformat is installed)."""
    try:
        import nbformat
    except ImportError:  # the JSON itself: enough for nbformat 4 files
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        if notebook.get("nbformat", 4) < 4:
            raise ImportError("reading an nbformat 3 notebook needs nbformat (pip install "
                              "'nnref[notebook]')") from None
        return list(notebook.get("cells", []))
    return [dict(c) for c in nbformat.read(str(path), as_version=4).cells]


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def is_grader_cell(cell: dict[str, Any]) -> bool:
    """An nbgrader test cell or a cell Otter ignores."""
    meta = cell.get("metadata", {}) or {}
    nbgrader = meta.get("nbgrader", {}) or {}
    if nbgrader.get("grade") and not nbgrader.get("solution"):
        return True
    if (meta.get("otter", {}) or {}).get("ignore"):
        return True
    first = (_source(cell).strip().splitlines() or [""])[0].strip().lower().replace(" ", "")
    return first in {"#ignore", "#otter:ignore"}


def _first_lines(source: str, count: int = 2) -> str:
    lines = [line for line in source.strip().splitlines() if line.strip()][:count]
    return " | ".join(lines)[:120]


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise CellTimedOut in this (main) thread after ``seconds`` of wall-clock time."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CellTimedOut(f"did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _output_to(scratch: Any) -> Iterator[None]:
    """Send this process's stdout and stderr (Python and file descriptors) to ``scratch``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    text = io.TextIOWrapper(scratch, encoding="utf-8", errors="replace", write_through=True)
    try:
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield
    finally:
        text.flush()
        text.detach()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # no history database written
    shell = InteractiveShell.instance(config=config)
    shell.colors = "NoColor"
    # `%matplotlib inline` (every course notebook has it) asks the shell for a GUI event loop;
    # ipykernel's shell has one, the plain shell raises NotImplementedError. A check draws
    # nothing on screen: no loop, the inline backend as Jupyter sets it.
    shell.enable_gui = lambda gui=None: None
    return shell


def run_notebook(path: str | os.PathLike[str], skip_grader_cells: bool | None = None,
                 cell_timeout: float | None = None) -> tuple[dict[str, Any], list[CellError]]:
    """Run the notebook's code cells in order; (the namespace they built, the failed cells).

    Runs in the notebook's directory (``%%writefile`` and relative imports land there)."""
    skip = SETTINGS["skip_grader_cells"] if skip_grader_cells is None else skip_grader_cells
    timeout = SETTINGS["cell_timeout"] if cell_timeout is None else cell_timeout
    path = Path(path).resolve()
    cells = read_cells(path)
    os.environ.setdefault("MPLBACKEND", "Agg")  # plots drawn off screen
    shell = _shell()
    shell.reset(new_session=False)
    shell.user_ns["__file__"] = str(path)  # not set by Jupyter; harmless, helps relative paths
    errors: list[CellError] = []
    cwd = os.getcwd()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    os.chdir(folder)
    try:
        with tempfile.TemporaryFile() as scratch, _output_to(scratch):
            for number, cell in enumerate(cells, start=1):
                if cell.get("cell_type") != "code" or (skip and is_grader_cell(cell)):
                    continue
                source = _source(cell)
                try:
                    with _alarm(timeout):
                        result = shell.run_cell(source, store_history=False, silent=False)
                except CellTimedOut as exc:  # raised outside the cell's own code
                    errors.append(CellError(number, _first_lines(source), f"timed out: {exc}"))
                    continue
                failure = result.error_before_exec or result.error_in_exec
                if failure is not None:
                    what = "timed out: " if isinstance(failure, CellTimedOut) else ""
                    text = (str(failure).strip().splitlines() or [""])[0][:200]
                    errors.append(CellError(number, _first_lines(source),
                                            f"{what}{type(failure).__name__}: {text}"
                                            if not what else f"{what}{text}"))
    finally:
        os.chdir(cwd)
    namespace = {k: v for k, v in shell.user_ns.items()
                 if not k.startswith("_") and k not in _SHELL_NAMES}
    return namespace, errors


def load_notebook(path: str | os.PathLike[str], skip_grader_cells: bool | None = None,
                  cell_timeout: float | None = None) -> types.ModuleType:
    """The notebook's names as a module (``__file__`` the notebook); failed cells in
    :data:`CELL_ERRORS` and the module's ``NOTEBOOK_CELL_ERRORS``."""
    namespace, errors = run_notebook(path, skip_grader_cells, cell_timeout)
    CELL_ERRORS[:] = errors
    module = types.ModuleType(Path(path).stem)
    module.__dict__.update(namespace)
    module.__file__ = str(Path(path).resolve())
    module.NOTEBOOK_CELL_ERRORS = list(errors)  # type: ignore[attr-defined]
    return module


def reproducer_loader(path: str) -> str:
    """The line a reproducer uses to build ``impl`` from the notebook."""
    skip = SETTINGS["skip_grader_cells"]
    return (f"from conformance.notebook import load_notebook; "
            f"impl = load_notebook({str(Path(path).resolve())!r}, skip_grader_cells={skip!r})")


def _load_for_binding(target: str, binding: Any) -> tuple[dict[str, Any], str]:
    module = load_notebook(target)
    return ({k: v for k, v in vars(module).items() if not k.startswith("__")
             and k != "NOTEBOOK_CELL_ERRORS"}, module.__file__ or target)


def register() -> None:
    """Make ``.ipynb`` files targets of the bindings' loaders (conformance.bindings.targets)."""
    from .bindings import targets

    if not any(load is _load_for_binding for _, load in targets.LOADERS):
        targets.add_loader(lambda target, binding: is_notebook(target), _load_for_binding)
