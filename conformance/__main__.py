"""``python -m conformance COMMAND``: ``check``, ``diff``, ``fixtures regenerate|verify``."""

from __future__ import annotations

import importlib.metadata
import sys

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


def check(args: list[str]) -> int:
    """``check MODULE [pytest args]``: pytest over the installed suite with ``--impl MODULE``."""
    if not args or args[0].startswith("-"):
        print("usage: python -m conformance check MODULE [PYTEST ARGS]  (MODULE: the module "
              "to check, e.g. mylayers)", file=sys.stderr)
        return 2
    import pytest

    module, rest = args[0], args[1:]
    # -p no:cacheprovider: the suite lives in site-packages, where no cache should be written.
    # The warning filter: this process imported the conformance package before pytest could
    # rewrite its asserts, which only affects the suite's own failure messages.
    # -p conformance.pytest_plugin: loaded even where the package is not installed (a checkout
    # on PYTHONPATH); installed, the pytest11 entry point has loaded it under that name already.
    return int(pytest.main(["--pyargs", "conformance", "--impl", module,
                            "-p", "conformance.pytest_plugin", "-p", "no:cacheprovider",
                            "-W", "ignore::pytest.PytestAssertRewriteWarning", *rest]))


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
    if command == "fixtures":
        from .fixtures_cli import main as fixtures_main

        return fixtures_main(rest)
    if command == "diff":
        from .diff import main as diff_main

        return diff_main(rest)
    print(f"unknown command {command!r} (commands: check, diff, fixtures, --version; see "
          "python -m conformance --help)", file=sys.stderr)
    return 2


def console_main() -> None:
    """The ``nnref-conformance`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
