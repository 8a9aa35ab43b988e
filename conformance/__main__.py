"""``python -m conformance COMMAND``: ``fixtures regenerate|verify`` and ``diff``."""

from __future__ import annotations

import sys

USAGE = """usage: python -m conformance COMMAND [ARGS]

commands:
  fixtures regenerate [--out DIR]   run nnref and every framework, write golden fixtures
  fixtures verify [DIR]             check the manifest schema and every checksum
  diff [OPTIONS]                    compare outputs across backends (see: diff --help)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "fixtures":
        from .fixtures_cli import main as fixtures_main

        return fixtures_main(rest)
    if command == "diff":
        from .diff import main as diff_main

        return diff_main(rest)
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
