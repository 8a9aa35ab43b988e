"""``python -m conformance class SUBMISSIONS --out DIR [--jobs N] [CHECK ARGS]``: a whole class.

Every entry of the folder ``SUBMISSIONS`` (a ``.py`` file, a notebook or a directory; hidden
entries left out) is checked by its own ``python -m conformance check`` process (bounded as
every check is, conformance.sandbox), ``--jobs`` at a time (default 2). Each submission's
verdicts go to ``DIR/<submission>.json`` (written whole), then the class table
``DIR/class.csv``: one row per submission, function and direction with the verdict and the
score (``--points`` as for check). A submission whose result file exists is not checked again,
so an interrupted run resumes where it stopped; delete a file to check that submission again.
Exit status: 0 every submission checked, 1 some could not be (the table's ``problem``), 2 a
usage error, 3 a check wrote no verdicts at all.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import graders

USAGE = ("usage: python -m conformance class SUBMISSIONS --out DIR [--jobs N] "
         "[CHECK ARGS, e.g. --api cs231n -m values]")
TABLE_COLUMNS = ["submission", "function", "direction", "checked_as", "values", "arguments",
                 "score", "max_score", "problem"]


def submissions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_"))
                  and (p.is_dir() or p.suffix in {".py", ".ipynb"}))


def _check_one(submission: Path, result: Path, check_args: list[str]) -> int:
    """Check one submission; its output goes to DIR/<submission>.log."""
    with open(result.with_suffix(".log"), "w", encoding="utf-8") as log:
        return subprocess.run([sys.executable, "-m", "conformance", "check", str(submission),
                               "--verdicts-json", str(result), *check_args],
                              stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT).returncode


def table_rows(name: str, verdicts: dict[str, Any],
               points: dict[str, float]) -> list[dict[str, Any]]:
    scored = {t["name"]: t for t in graders.gradescope(verdicts, points)["tests"]}
    problem = verdicts.get("problem") or ""
    rows = [{"submission": name, "function": r["function"], "direction": r["direction"],
             "checked_as": r["contract"], "values": r["values"], "arguments": r["arguments"],
             "score": scored[graders.grader_test_name(r)]["score"],
             "max_score": scored[graders.grader_test_name(r)]["max_score"], "problem": problem}
            for r in verdicts.get("functions") or ()]
    return rows or [{"submission": name, "function": "", "direction": "", "checked_as": "",
                     "values": "", "arguments": "", "score": 0, "max_score": 0,
                     "problem": problem or f"no verdicts (exit status "
                                           f"{verdicts.get('exit_status')})"}]


def main(args: list[str]) -> int:
    if not args or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    folder, rest = Path(args[0]), args[1:]
    out: Path | None = None
    jobs = 2
    points_specs: list[str] = []
    check_args: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        value = rest[i + 1] if i + 1 < len(rest) else None
        if arg in {"--out", "--jobs"} and value is None:
            print(f"class: {arg} needs a value", file=sys.stderr)
            return 2
        if arg == "--out":
            out, i = Path(value), i + 2
            continue
        if arg == "--jobs":
            if not value.isdigit() or int(value) < 1:
                print(f"class: --jobs {value!r}: expected a whole number >= 1", file=sys.stderr)
                return 2
            jobs, i = int(value), i + 2
            continue
        if arg == "--points" and value is not None:
            points_specs.append(value)
        check_args.append(arg)
        i += 1
    if out is None or not folder.is_dir():
        print(f"class: {'--out DIR is required' if out is None else f'{folder}: no such folder'}"
              f" ({USAGE})", file=sys.stderr)
        return 2
    try:
        points = graders.parse_points(points_specs)
    except ValueError as exc:
        print(f"class: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    entries = submissions(folder)
    todo = [s for s in entries if not (out / f"{s.name}.json").is_file()]
    print(f"class: {len(entries)} submissions, {len(entries) - len(todo)} already checked, "
          f"{len(todo)} to check, {jobs} at a time", flush=True)

    def one(submission: Path) -> None:
        status = _check_one(submission, out / f"{submission.name}.json", check_args)
        print(f"class: {submission.name}: exit status {status}", flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, todo))
    rows: list[dict[str, Any]] = []
    unfinished = []
    for submission in entries:
        path = out / f"{submission.name}.json"
        try:
            verdicts = json.loads(path.read_text())
        except (OSError, ValueError):
            unfinished.append(submission.name)
            verdicts = {"functions": [], "problem": "the check wrote no verdicts (see "
                                                    f"{path.with_suffix('.log').name})"}
        rows += table_rows(submission.name, verdicts, points)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TABLE_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    table = out / "class.csv"
    tmp = table.with_name(f".{table.name}.tmp")
    tmp.write_text(text.getvalue(), encoding="utf-8")
    os.replace(tmp, table)
    print(f"class: table of {len(entries)} submissions in {table}", flush=True)
    if unfinished:
        print(f"class: no verdicts for {', '.join(unfinished)}", file=sys.stderr)
        return 3
    unchecked = sorted({r["submission"] for r in rows if r["problem"]})
    if unchecked:
        print(f"class: could not check all of {', '.join(unchecked)} (the table's problem "
              "column says why)", file=sys.stderr)
        return 1
    return 0
