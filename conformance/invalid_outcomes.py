"""How frameworks answer invalid calls, and the record of their answers.

:func:`outcome` names what a native call (``conformance.backends.native_calls``) did with an
:class:`~conformance.invalid_call.InvalidCall`: the exception class name, ``"accepted"``,
``"empty result"``, ``"no gradient"`` (TF returned None for a gradient), ``"not expressible"``
(the broken argument has no native counterpart) or ``"abort"`` (known to kill the process: not
run). conformance/invalid_behaviour.toml records the expected outcomes per function; the table
and notes of docs/invalid-arguments.md are rendered from it by :func:`markdown_table` /
:func:`markdown_notes` (``python -m conformance.invalid_outcomes``).
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .invalid_args import CATEGORIES
from .invalid_call import InvalidCall, NotExpressible, WouldAbort
from .ops import RECORDS

FRAMEWORKS = ("torch", "tensorflow")
BEHAVIOUR_PATH = Path(__file__).with_name("invalid_behaviour.toml")
OUTCOME_WORDS = ("accepted", "empty result", "no gradient", "not expressible", "abort")


def classify(result: Any) -> str:
    """A native result: "no gradient" (a None gradient), "empty result" (an output with a
    zero-size axis) or "accepted"."""
    items = list(result) if isinstance(result, tuple | list) else [result]
    if any(r is None for r in items):
        return "no gradient"
    if any(0 in tuple(r.shape) for r in items):
        return "empty result"
    return "accepted"


def outcome(run: Callable[[Any, InvalidCall], Any], module: Any, invalid: InvalidCall) -> str:
    """What the native call did: an exception class name, or one of OUTCOME_WORDS.

    Raises NotExpressible when it is incidental (the caller discards the draw).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's "same" padding copy notice
            result = run(module, invalid)
    except NotExpressible as exc:
        if exc.incidental:
            raise
        return "not expressible"
    except WouldAbort:
        return "abort"
    except Exception as exc:
        return type(exc).__name__
    return classify(result)


def load_behaviour(path: Path = BEHAVIOUR_PATH) -> dict[str, Any]:
    """conformance/invalid_behaviour.toml: category -> framework -> {outcomes, note, ops}."""
    with path.open("rb") as f:
        return tomllib.load(f)


def expected_outcomes(record: Mapping[str, Any], framework: str, invalid: InvalidCall) -> list[str]:
    """The recorded outcomes for one call: the most specific override in ``ops``
    ("fn/broken/dtype", "fn/broken", "fn/dtype", "fn"), else the category's ``outcomes``."""
    entry = record[invalid.category][framework]
    ops = entry.get("ops", {})
    for key in invalid.record_keys():
        if key in ops:
            return list(ops[key])
    return list(entry["outcomes"])


def _outcomes(outs: Any) -> str:
    return ", ".join(f"`{o}`" for o in outs)


def compact_functions(functions: tuple[str, ...]) -> str:
    """Function names for the table, the ranks of one op folded: ``conv{1,2,3}d_backward``."""
    out = []
    for rec in RECORDS:
        for i in (0, 1):
            ranks = [r for r in rec.ranks if rec.functions(r)[i] in functions]
            names = list(dict.fromkeys(rec.functions(r)[i] for r in ranks))
            if len(names) <= 1:
                out += names
                continue
            template = rec.functions(ranks[0])[i].replace(f"{ranks[0]}d", "{}d", 1)
            if all(template.format(r) == rec.functions(r)[i] for r in ranks):
                out.append(template.format("{" + ",".join(str(r) for r in ranks) + "}"))
            else:
                out += names
    return ", ".join(out)


def markdown_table(record: Mapping[str, Any] | None = None) -> str:
    """The category x {nnref, torch, TF} table of docs/invalid-arguments.md."""
    record = load_behaviour() if record is None else record
    lines = ["| category | functions | nnref | torch | TF |", "|---|---|---|---|---|"]
    for cat in CATEGORIES.values():
        cells = [_outcomes(record[cat.id][fw]["outcomes"]) for fw in FRAMEWORKS]
        lines.append(f"| `{cat.id}`: {cat.summary} | {compact_functions(cat.functions)} | "
                     f"{cat.nnref} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def markdown_notes(record: Mapping[str, Any] | None = None) -> str:
    """Per category and framework: the note and the per-call outcomes, as a nested list."""
    record = load_behaviour() if record is None else record
    lines = []
    for cat in CATEGORIES.values():
        lines.append(f"- `{cat.id}`")
        for fw, label in zip(FRAMEWORKS, ("torch", "TF"), strict=True):
            entry = record[cat.id][fw]
            lines.append(f"  - {label}: {entry['note']}")
            for key, outs in entry.get("ops", {}).items():
                lines.append(f"    - `{key}`: {_outcomes(outs)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
    print()
    print(markdown_notes(), end="")
