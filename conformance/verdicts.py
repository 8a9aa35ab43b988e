"""Verdicts in the user's words: what failed, in which function, and how to reproduce it.

For every failed test, :func:`failures_of` turns the exception (each of them, when Hypothesis
found several distinct failures) into a failure record: the contract function, the user's
function it charges (a binding's ``conv_backward_naive``, or the module's own function), the
output that differed (``dw``, in the user's words ``Conv.backward: gradient_weights``), the
message, the configuration and a reproducer that runs as printed. An exception raised inside the
user's code is charged to the function that raised it, not to every function the test called.

:func:`build` aggregates a run into one machine-readable structure (``--verdicts-json FILE``,
``conformance.bindings.run_check``)::

    {"target": ..., "api": ..., "exit_status": ...,
     "functions": [{"function": "conv_backward_naive", "contract": "conv2d_backward",
                    "direction": "backward", "values": "fails", "arguments": "untested",
                    "counts": {"passed": 3, "failed": 1, "skipped": 0, "missing": 0},
                    "failures": [{"message", "output", "configuration", "reproducer",
                                  "test", "function", "contract"}]}],
     "unsupported": [{"cause", "functions", "calls", "example"}],
     "limits": {op: {parameter: text}}, "notes": [...]}

:func:`cause` groups "not supported" messages by cause (their numbers left out).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .bindings.core import USER_FUNCTION_ATTR
from .cases import CALL_ATTR
from .impl_under_test import FUNCTION_ATTR

_FUNCTION = re.compile(r"\bfunction=(\w+)")
# The values in a message: after "=", and parenthesised or bracketed groups of numbers.
_VALUES = (re.compile(r"[(\[]\s*-?[\d.]+(?:e[-+]?\d+)?(?:\s*,\s*[-\d.(),\s]*)?[)\]]"),
           re.compile(r"(?<==)\s*[^\s,;)\]]+"))


def leaves(exc: BaseException) -> list[BaseException]:
    """The distinct failures an exception stands for (a group's members, flattened)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for member in exc.exceptions for leaf in leaves(member)]
    return [exc]


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def failure_of(exc: BaseException, module: Any, impl_name: str, test: str,
               judged: str | None = None, rerun: str = "") -> dict[str, Any]:
    """One failure record (see the module docstring). ``judged``: the one contract function the
    test judges, charged when the failure names none; ``rerun``: the command that runs the test
    again, the reproducer of a failure that has none of its own."""
    text = str(exc)
    found = _FUNCTION.search(text)
    contract = found.group(1) if found else getattr(exc, FUNCTION_ATTR, None)
    user = getattr(exc, USER_FUNCTION_ATTR, None)
    output = None
    configuration = ""
    reproducer = ""
    message = _first_line(text).split(" [op=")[0]
    if "\nreproducer:\n" in text:  # a comparison: harness.context's report
        output = message.split(":", 1)[0].strip() if ":" in message else None
        configuration = text.split("case: ", 1)[1].split("\n", 1)[0] if "case: " in text else ""
        reproducer = text.split("\nreproducer:\n", 1)[1].rstrip().rstrip("]").rstrip() + "\n"
    else:
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        call = getattr(exc, CALL_ATTR, None)
        if call is not None:
            case, direction, dtype_name, seed = call
            contract = contract or (case.op if direction == "forward" else case.backward_op)
            configuration = f"{case.describe()} dtype={dtype_name} seed={seed}"
            reproducer = case.reproducer(dtype_name, seed, impl_name, direction)
    if not reproducer and rerun:
        reproducer = f"# this test alone, on the same code:\n{rerun}\n"
    if contract is None and judged is not None:  # a test's own assertion about one function
        contract = judged
        label = getattr(module, "user_label", None)
        labels = (label(judged) if callable(label) else judged), output
    else:
        labels = _labels(module, contract, output, user)
    return {"test": test, "contract": contract, "function": labels[0], "output": labels[1],
            "message": message, "configuration": configuration, "reproducer": reproducer}


def _labels(module: Any, contract: str | None, output: str | None,
            user: str | None) -> tuple[str | None, str | None]:
    """(the user's function, the output in the user's words) of one failure."""
    bound = getattr(module, "binding", None) is not None
    if bound and contract and not output and not user:  # raised outside the user's code
        return f"the {module.binding.name} binding's {contract}", None
    if bound and contract:
        function = user or module.user_label(contract)
        if output:
            said = module.output_label(contract, output)
            head, _, name = said.partition(": ")
            return (function if user else head), name or output
        return function, None
    return user or contract, output


def failures_of(exc: BaseException, module: Any, impl_name: str, test: str,
                judged: str | None = None, rerun: str = "") -> list[dict[str, Any]]:
    """Every distinct failure ``exc`` stands for, as failure records."""
    return [failure_of(leaf, module, impl_name, test, judged, rerun) for leaf in leaves(exc)]


def report_failures(report: Any, exc: BaseException, module: Any, impl_name: str,
                    test: str, properties: list[tuple[str, Any]], judged: str | None = None,
                    rerun: str = "") -> list[dict[str, Any]]:
    """A failed test's failures, each its own entry in every report: a "verdicts in your words"
    section with its reproducer (terminal), a property each (appended to ``properties``, the
    test item's, which the junit file writes) and the failure message listing them (junit),
    the records returned (the summary, ``--verdicts-json``)."""
    found = failures_of(exc, module, impl_name, test, judged, rerun)
    text = []
    for number, failure in enumerate(found, start=1):
        said = headline(failure)
        text.append(f"{said}\n{failure['message']}\n{failure['configuration']}\n"
                    f"reproducer:\n{failure['reproducer'] or '(none: see the traceback)'}")
        detail = f": {failure['message']}" if failure.get("output") else ""
        properties.append((f"failure {number}", f"{said}{detail}"))
    if found:
        report.sections.append(("verdicts in your words", "\n".join(text)))
    crash = getattr(report.longrepr, "reprcrash", None)
    if len(found) > 1 and crash is not None:
        crash.message = f"{len(found)} distinct failures: " + "; ".join(
            headline(f) for f in found)
    return found


def headline(failure: Mapping[str, Any]) -> str:
    """``conv_backward_naive: dw wrong`` / ``Conv.forward: raised IndexError: ...``."""
    function = failure.get("function") or "?"
    if failure.get("output"):
        return f"{function}: {failure['output']} wrong"
    return f"{function}: {failure['message']}"


def cause(message: str) -> str:
    """A 'not supported' message without its values: the messages of one cause group."""
    for pattern in _VALUES:
        message = pattern.sub("…", message)
    return re.sub(r"\s+", " ", message).strip()


def build(results: Mapping[tuple[str, str], Mapping[str, Counter[str]]],
          unsupported: Mapping[tuple[str, str], int], failures: Iterable[Mapping[str, Any]],
          module: Any, target: str, api: str | None, limits: Mapping[str, Any],
          functions: Iterable[str], op_and_direction: Any, verdict: Any) -> dict[str, Any]:
    """The run's verdicts (see the module docstring). ``functions``: the contract functions in
    table order; ``verdict(counts)`` the plugin's verdict rule."""
    bound = getattr(module, "binding", None) is not None
    by_function: dict[str, list[Mapping[str, Any]]] = {}
    for failure in failures:
        by_function.setdefault(failure.get("contract") or "?", []).append(failure)
    rows = []
    for contract in functions:
        if bound and contract not in module.rows and contract not in module.missing:
            continue  # not part of the API
        key = op_and_direction(contract)
        by_category = results.get(key, {})
        values, arguments = (by_category.get(c, Counter()) for c in ("values", "arguments"))
        total = values + arguments
        if not bound and not total:
            continue
        rows.append({
            "function": module.user_label(contract) if bound else contract,
            "contract": contract, "direction": key[1],
            "values": verdict(values), "arguments": verdict(arguments),
            "counts": {k: total[k] for k in ("passed", "failed", "skipped", "missing")},
            "missing": list(module.missing.get(contract, ())) if bound else [],
            "failures": list(by_function.get(contract, [])),
        })
    groups: dict[str, dict[str, Any]] = {}
    for (function, message), calls in sorted(unsupported.items()):
        said = module.user_label(function) if bound else function
        group = groups.setdefault(cause(message), {"cause": cause(message), "functions": [],
                                                   "calls": 0, "example": message})
        group["calls"] += calls
        if said not in group["functions"]:
            group["functions"].append(said)
    return {
        "target": target, "api": api,
        "functions": rows,
        "unsupported": sorted(groups.values(), key=lambda g: -g["calls"]),
        "limits": {op: {k: repr(v) for k, v in params.items()} for op, params in limits.items()},
        "notes": list(module.binding.notes) if bound else [],
    }


def summary_lines(verdicts: Mapping[str, Any]) -> list[str]:
    """The verdicts as the terminal shows them: a table, the failures, what is unsupported."""
    rows = verdicts["functions"]
    width = max([24, *(len(r["function"]) + 1 for r in rows)])
    lines = [f"{'function':<{width}} {'checked as':<22} {'values':<11} {'arguments':<11} "
             f"{'passed':>7} {'failed':>7} {'missing':>8}"]
    for r in rows:
        c = r["counts"]
        lines.append(f"{r['function']:<{width}} {r['contract']:<22} {r['values']:<11} "
                     f"{r['arguments']:<11} {c['passed']:>7} {c['failed']:>7} {c['missing']:>8}")
    missing = [r for r in rows if r["missing"]]
    if missing:
        lines.append("missing: " + "; ".join(f"{r['contract']} needs {', '.join(r['missing'])}"
                                             for r in missing))
    failures = [f for r in rows for f in r["failures"]]
    if failures:
        lines.append("failures (each with its reproducer in the report above and in "
                     "--verdicts-json):")
        seen: Counter[str] = Counter()
        for f in failures:
            seen[headline(f)] += 1
            if seen[headline(f)] == 1:
                detail = f": {f['message'][:160]}" if f.get("output") else ""
                lines.append(f"  {headline(f)[:200]}{detail}")
                if f["configuration"]:
                    lines.append(f"      {f['configuration'][:200]}")
    if verdicts["unsupported"]:
        lines.append("not supported (NotImplementedError), calls per cause:")
        for g in verdicts["unsupported"]:
            lines.append(f"  {g['calls']:>5} x {g['cause']}  ({', '.join(g['functions'])})")
    for note in verdicts.get("notes", ()):
        lines.append(f"the API cannot say: {note}")
    return lines


def write(path: str | Path, verdicts: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(verdicts, indent=1, default=str) + "\n")
