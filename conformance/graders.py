"""Grader output: the verdicts (conformance.verdicts) as Gradescope's and PrairieLearn's JSON.

- :func:`gradescope` - Gradescope's ``results.json`` (https://gradescope-autograders.
  readthedocs.io/en/latest/specs/): one test per user function and direction, with ``name``,
  ``score``, ``max_score``, ``status`` ("passed" | "failed"), ``output`` (the verdict, the
  failures and their reproducers) and ``visibility``; the top level ``score``,
  ``execution_time``, ``output``.
- :func:`prairielearn` - PrairieLearn's external-grading ``results.json``: ``score`` in [0, 1],
  ``gradable``, ``message``, ``output``, ``tests`` with ``points`` / ``max_points``; at most
  1 MB, so outputs are cut.
- :func:`score` - an in-process call for nbgrader and Otter cells: the points of a check, or
  an ``AssertionError`` naming what failed; it writes nothing to stdout or stderr.

A function scores its points when its values conform and its argument checks do not fail;
otherwise 0 (failed, missing, not supported, not checked). Points per function:
:func:`parse_points` (``--points 2 --points conv_forward_naive=5``).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
PRAIRIELEARN_LIMIT = 1_000_000  # bytes
GRADER_ARGS_ENV = "NNREF_GRADER_ARGS"  # replaces score()'s pytest arguments when set
_MEANING = {
    "conforms": "conforms to the contract",
    "fails": "fails (what failed, and how to reproduce it, below)",
    "missing": "missing: not defined",
    "unsupported": "not supported: raised NotImplementedError for every configuration",
    "untested": "not checked in this run",
}


def write_atomically(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_points(specs: Sequence[str]) -> dict[str, float]:
    """``["2", "conv_forward_naive=5"]`` -> ``{"*": 2.0, "conv_forward_naive": 5.0}``
    (``*``: every other function; default 1). A name may carry its direction:
    ``relu (backward)=0``."""
    points: dict[str, float] = {"*": 1.0}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--points {spec!r}: expected N or NAME=N") from None
        if number < 0:
            raise ValueError(f"--points {spec!r}: points cannot be negative")
        points[name.strip() if sep else "*"] = number
    return points


def grader_test_name(row: Mapping[str, Any]) -> str:
    return f"{row['function']} ({row['direction']})"


def _points_of(row: Mapping[str, Any], points: Mapping[str, float]) -> float:
    for key in (grader_test_name(row), row["function"], row["contract"]):
        if key in points:
            return points[key]
    return points.get("*", 1.0)


def passed(row: Mapping[str, Any]) -> bool:
    return row["values"] == "conforms" and row["arguments"] != "fails"


def row_output(row: Mapping[str, Any], max_failures: int = 3) -> str:
    """A test's text: the verdict in words, then each distinct failure with its reproducer."""
    lines = [f"{row['function']} ({row['direction']}, checked as {row['contract']}): "
             f"{_MEANING.get(row['values'], row['values'])}"]
    if row["arguments"] == "fails":
        lines.append("invalid arguments: not rejected as the contract requires")
    if row.get("missing"):
        lines.append(f"needs: {', '.join(row['missing'])}")
    seen: set[str] = set()
    for failure in row.get("failures", ()):
        key = f"{failure.get('output')}|{failure.get('message')}"
        if key in seen:
            continue
        seen.add(key)
        if len(seen) > max_failures:
            lines.append(f"(more failures: {len(row['failures']) - max_failures} not shown)")
            break
        what = f"{failure['output']} wrong: " if failure.get("output") else ""
        lines += ["", f"{what}{failure['message']}"]
        if failure.get("configuration"):
            lines.append(f"configuration: {failure['configuration']}")
        if failure.get("reproducer"):
            lines += ["reproducer (runs as printed):", failure["reproducer"].rstrip()]
    return "\n".join(lines)


def _problems(verdicts: Mapping[str, Any]) -> list[str]:
    lines = []
    if verdicts.get("problem"):
        lines.append(f"the check could not finish: {verdicts['problem']}")
    for function, why in (verdicts.get("broken") or {}).items():
        lines.append(f"{function}: not called again: {why}")
    lines += [f"notebook: {e}" for e in verdicts.get("notebook_cell_errors") or ()]
    for group in verdicts.get("unsupported") or ():
        lines.append(f"not supported: {group['calls']} calls: {group['cause']} "
                     f"({', '.join(group['functions'])})")
    return lines


def gradescope(verdicts: Mapping[str, Any], points: Mapping[str, float] | None = None,
               visibility: str = "visible", execution_time: float | None = None
               ) -> dict[str, Any]:
    """Gradescope's results.json for one check (see the module docstring)."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r}: one of {', '.join(VISIBILITIES)}")
    points = points or {"*": 1.0}
    tests = []
    for number, row in enumerate(verdicts.get("functions") or (), start=1):
        max_score = _points_of(row, points)
        ok = passed(row) and not verdicts.get("problem")
        tests.append({"name": grader_test_name(row), "number": str(number),
                      "score": max_score if ok else 0.0, "max_score": max_score,
                      "status": "passed" if ok else "failed", "output": row_output(row),
                      "output_format": "text", "visibility": visibility,
                      "tags": [row["contract"], row["direction"]]})
    result: dict[str, Any] = {
        "score": sum(t["score"] for t in tests),
        "output": "\n".join(_problems(verdicts)) or "every function was checked",
        "output_format": "text", "visibility": visibility, "stdout_visibility": "hidden",
        "tests": tests,
    }
    if execution_time is not None:
        result["execution_time"] = round(execution_time, 1)
    return result


def prairielearn(verdicts: Mapping[str, Any], points: Mapping[str, float] | None = None
                 ) -> dict[str, Any]:
    """PrairieLearn's results.json for one check (see the module docstring)."""
    points = points or {"*": 1.0}
    tests = []
    for row in verdicts.get("functions") or ():
        max_points = _points_of(row, points)
        ok = passed(row) and not verdicts.get("problem")
        tests.append({"name": grader_test_name(row), "description": f"checked as {row['contract']}",
                      "points": max_points if ok else 0.0, "max_points": max_points,
                      "message": _MEANING.get(row["values"], row["values"]),
                      "output": row_output(row)})
    total = sum(t["max_points"] for t in tests)
    earned = sum(t["points"] for t in tests)
    problems = _problems(verdicts)
    result = {"gradable": not verdicts.get("problem") or bool(tests),
              "score": earned / total if total else 0.0,
              "message": problems[0] if problems else "",
              "output": "\n".join(problems), "tests": tests}
    budget = PRAIRIELEARN_LIMIT // max(1, 2 * len(tests) + 1)  # stay under 1 MB
    while len(json.dumps(result)) > PRAIRIELEARN_LIMIT and budget > 200:
        for t in tests:
            t["output"] = t["output"][:budget]
        budget //= 2
    return result


def score(target: str, api: str | None = None, points: Sequence[str] = (),
          pytest_args: Sequence[str] = ("-m", "values"),
          require: str = "all") -> float:
    """Check ``target`` (a module, .py file, directory or notebook) in a bounded child process
    and return the points earned; with ``require="all"`` raise ``AssertionError`` naming the
    failing functions unless every one passes. Nothing is written to stdout or stderr (an
    nbgrader cell with any stderr output scores 0), warnings included: the check's output goes
    to a file. A notebook is checked without its grader cells (the cell calling this one
    among them). :data:`GRADER_ARGS_ENV`, when set, replaces ``pytest_args``."""
    import subprocess
    import sys

    if os.environ.get(GRADER_ARGS_ENV):  # the grading image narrows or widens the check
        pytest_args = shlex.split(os.environ[GRADER_ARGS_ENV])
    if target.endswith(".ipynb"):  # the cell calling this must not run again in the check
        pytest_args = ["--skip-grader-cells", *pytest_args]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "verdicts.json"
        command = [sys.executable, "-W", "ignore", "-m", "conformance", "check", target,
                   *(["--api", api] if api else []), "--verdicts-json", str(out), *pytest_args]
        # its output goes to a file, not to this process's stdout or stderr
        with open(Path(tmp) / "log", "w+", encoding="utf-8") as log:
            status = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
            log.seek(0)
            tail = log.read()[-300:].strip()
        verdicts = json.loads(out.read_text()) if out.is_file() else {}
    if not verdicts.get("functions") or status not in (0, 1):
        raise AssertionError(f"the check of {target} could not run (exit status {status}): "
                             + (verdicts.get("problem") or tail))
    table = parse_points(points)
    rows = verdicts["functions"]
    earned = sum(_points_of(r, table) for r in rows if passed(r))
    failing = [grader_test_name(r) + ": " + r["values"] for r in rows if not passed(r)]
    if failing and require == "all":
        raise AssertionError("not conforming: " + "; ".join(failing))
    return earned
