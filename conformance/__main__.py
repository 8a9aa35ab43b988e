"""``python -m conformance COMMAND``: ``check``, ``diff``, ``fixtures regenerate|verify``."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from typing import Any

USAGE = """usage: python -m conformance COMMAND [ARGS]

commands:
  check MODULE [PYTEST ARGS]        run the conformance suite against MODULE (any importable
                                    module; the current directory is searched), e.g.
                                    check mylayers -m values -n auto
  check TARGET --api API [ARGS]     the same through a binding of a course API (cs231n,
                                    deeplearning-ai, fau, or a .py file defining BINDING);
                                    TARGET a module, a .py file or a directory, e.g.
                                    check cs231n/layers.py --api cs231n -m values
                                    (--verdicts-json FILE: the verdicts as JSON)
  check TARGET --gradescope FILE    also Gradescope's results.json (--prairielearn FILE:
                                    PrairieLearn's; --points N or NAME=N; limits: --timeout,
                                    --memory-limit, --call-timeout; a notebook TARGET:
                                    --skip-grader-cells, --cell-timeout)
  class FOLDER --out DIR [ARGS]     check every submission in FOLDER, --jobs N at a time; one
                                    DIR/<submission>.json each and DIR/class.csv; resumable
  diff [OPTIONS]                    compare outputs across backends (see: diff --help)
  fixtures regenerate [--out DIR]   run nnref and every framework, write golden fixtures
  fixtures verify [DIR]             check the manifest schema and every checksum
  --version                         print the version of nnref and of the suite
"""


def version() -> str:
    try:
        return importlib.metadata.version("nnref")
    except importlib.metadata.PackageNotFoundError:  # a source checkout, not installed
        return "0+checkout"


# check's own options (the rest go to pytest): name -> (takes a value, repeatable)
CHECK_OPTIONS = {"--timeout": (True, False), "--memory-limit": (True, False),
                 "--call-timeout": (True, False), "--gradescope": (True, False),
                 "--prairielearn": (True, False), "--points": (True, True),
                 "--visibility": (True, False)}
CHECK_DEFAULTS = {"--timeout": "1800", "--memory-limit": "4096", "--call-timeout": "20",
                  "--visibility": "visible"}


class UsageError(Exception):
    """A mistake in the command line (one line, exit status 2)."""


def split_check_options(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(check's own options, the arguments passed on to pytest)."""
    own: dict[str, Any] = {"--points": []}
    rest: list[str] = []
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name not in CHECK_OPTIONS:
            rest.append(args[i])
            i += 1
            continue
        takes_value, repeatable = CHECK_OPTIONS[name]
        if takes_value and not eq:
            if i + 1 >= len(args):
                raise UsageError(f"{name} needs a value")
            value = args[i + 1]
            i += 1
        if repeatable:
            own[name].append(value)
        else:
            own[name] = value if takes_value else True
        i += 1
    for name, default in CHECK_DEFAULTS.items():
        own.setdefault(name, default)
    for name in ("--timeout", "--memory-limit", "--call-timeout"):
        try:
            if float(own[name]) < 0:
                raise ValueError
        except ValueError:
            raise UsageError(f"{name} {own[name]!r}: expected a number >= 0") from None
    return own, rest


def _run_pytest(module: str, rest: list[str]) -> int:
    import pytest

    # -p no:cacheprovider: the suite lives in site-packages, where no cache should be written.
    # The warning filter: this process imported the conformance package before pytest could
    # rewrite its asserts, which only affects the suite's own failure messages.
    # -p conformance.pytest_plugin: loaded even where the package is not installed (a checkout
    # on PYTHONPATH); installed, the pytest11 entry point has loaded it under that name already.
    return int(pytest.main(["--pyargs", "conformance", "--impl", module,
                            "-p", "conformance.pytest_plugin", "-p", "no:cacheprovider",
                            "-W", "ignore::pytest.PytestAssertRewriteWarning", *rest]))


def check(args: list[str]) -> int:
    """``check TARGET [options] [pytest args]``: pytest over the installed suite with ``--impl
    TARGET``, in a child process with a memory and a wall-clock limit (conformance.sandbox);
    then the grader files (conformance.graders)."""
    from . import sandbox

    if not args or args[0].startswith("-"):
        print("usage: python -m conformance check TARGET [PYTEST ARGS]  (TARGET: the module, "
              ".py file, directory or notebook to check, e.g. mylayers)", file=sys.stderr)
        return 2
    target = args[0]
    if os.environ.get(sandbox.SANDBOXED_ENV):  # the child: run the suite here
        return _run_pytest(target, args[1:])
    try:
        own, rest = split_check_options(args[1:])
        from .graders import parse_points

        points = parse_points(own["--points"])
        if own["--visibility"] not in ("hidden", "after_due_date", "after_published",
                                       "visible"):
            raise UsageError(f"--visibility {own['--visibility']!r}: one of hidden, "
                             "after_due_date, after_published, visible")
    except (UsageError, ValueError) as exc:
        print(f"check: {exc}", file=sys.stderr)
        return 2
    return _check_isolated(target, own, rest, points)


def _option_value(rest: list[str], name: str) -> str | None:
    for i, arg in enumerate(rest):
        if arg == name and i + 1 < len(rest):
            return rest[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _without_option(rest: list[str], name: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in rest:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def _check_isolated(target: str, own: dict[str, Any], rest: list[str],
                    points: dict[str, float]) -> int:
    import json
    import tempfile
    import time

    from . import graders, sandbox

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nnref-check-") as tmp:
        # the child writes into the scratch directory; the user's file is written here, whole
        wanted = _option_value(rest, "--verdicts-json")
        rest = _without_option(rest, "--verdicts-json")
        verdicts_file = os.path.join(tmp, "verdicts.json")
        rest = [*rest, "--verdicts-json", verdicts_file]
        env = dict(os.environ)
        env.update({sandbox.SANDBOXED_ENV: "1", sandbox.CALL_TIMEOUT_ENV: own["--call-timeout"],
                    "MPLBACKEND": "Agg"})
        command = [sys.executable, "-m", "conformance", "check", target, *rest]
        run = sandbox.run_isolated(command, env, float(own["--timeout"]) or 1e9,
                                   int(float(own["--memory-limit"])),
                                   os.path.join(tmp, "progress"), verdicts_file)
        try:
            with open(verdicts_file, encoding="utf-8") as f:
                verdicts = json.load(f)
        except (OSError, ValueError):
            verdicts = {"target": target, "api": _option_value(rest, "--api"), "functions": []}
            if not run.problem:  # pytest said why (a usage error: the target's import)
                verdicts["problem"] = (f"the check ended with exit status {run.status} before "
                                       "writing verdicts")
        status = run.status
        if (run.problem and status in (0, 1)) or status < 0:
            status = 3  # never 0 when part of the check could not run
        verdicts["exit_status"] = status
        verdicts["broken"] = run.broken
        verdicts["problem"] = run.problem or verdicts.get("problem", "")
        if wanted:
            graders.write_atomically(wanted, verdicts)
        elapsed = time.monotonic() - started
        if own.get("--gradescope"):
            graders.write_atomically(own["--gradescope"], graders.gradescope(
                verdicts, points, own["--visibility"], elapsed))
        if own.get("--prairielearn"):
            graders.write_atomically(own["--prairielearn"],
                                     graders.prairielearn(verdicts, points))
    if run.problem:
        print(f"check: {run.problem}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "--version":
        print(f"nnref conformance {version()}")
        return 0
    if command == "check":
        return check(rest)
    if command == "class":
        from .class_check import main as class_main

        return class_main(rest)
    if command == "fixtures":
        from .fixtures_cli import main as fixtures_main

        return fixtures_main(rest)
    if command == "diff":
        from .diff import main as diff_main

        return diff_main(rest)
    print(f"unknown command {command!r} (commands: check, class, diff, fixtures, --version; see "
          "python -m conformance --help)", file=sys.stderr)
    return 2


def console_main() -> None:
    """The ``nnref-conformance`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
