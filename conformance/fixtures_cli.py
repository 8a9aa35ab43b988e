"""``python -m conformance fixtures regenerate|verify``: write and check the golden fixtures.

    regenerate [--out DIR] [--allow-missing]   run nnref, torch, TensorFlow and SciPy on every
                                               stored case; replace DIR (default fixtures/) only
                                               if every framework agrees or the difference is a
                                               registered divergence
    verify [DIR]                               manifest schema, checksums, missing/extra files

Exit status: 0 success; 1 disagreement (regenerate) or problems found (verify); 2 usage error or
a framework missing without --allow-missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from . import fixture_generation as fg
from . import fixture_store as fs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance fixtures",
                                     description="golden fixtures: regenerate or verify")
    sub = parser.add_subparsers(dest="command", required=True)
    regen = sub.add_parser("regenerate", help="run nnref and every framework, write fixtures")
    regen.add_argument("--out", type=Path, default=fs.FIXTURES_DIR,
                       help=f"fixtures directory to replace (default {fs.FIXTURES_DIR})")
    regen.add_argument("--allow-missing", action="store_true",
                       help="record a framework that is not installed as 'absent' instead of "
                            "failing")
    regen.add_argument("-v", "--verbose", action="store_true", help="print each case's name")
    check = sub.add_parser("verify", help="check the manifest schema and every checksum")
    check.add_argument("directory", nargs="?", type=Path, default=fs.FIXTURES_DIR,
                       help=f"fixtures directory (default {fs.FIXTURES_DIR})")
    return parser


def _regenerate(out: Path, allow_missing: bool, verbose: bool) -> int:
    start = time.perf_counter()
    backends, missing = fg.load_backends()
    if missing and not allow_missing:
        print(f"regenerate: framework(s) not installed: {', '.join(missing)}. Regenerating "
              "needs every framework (pip install 'nnref[torch,tf]' scipy); pass "
              "--allow-missing to record them as absent.", file=sys.stderr)
        return 2
    fg.single_threaded(backends)
    progress = (lambda name: print(f"  {name}", flush=True)) if verbose else None
    result = fg.regenerate(out, backends, progress=progress)
    if result.disagreements:
        print(f"regenerate: {len(result.disagreements)} disagreement(s); nothing written, "
              f"{out} is unchanged:", file=sys.stderr)
        for d in result.disagreements:
            print(f"  {d}", file=sys.stderr)
        return 1
    assert result.manifest is not None
    cases = result.manifest["cases"]
    per_op = Counter(e["op"] for e in cases)
    versions = ", ".join(f"{k} {v}" for k, v in sorted(result.manifest["versions"].items()))
    print(f"regenerate: wrote {len(cases)} cases to {out} ({result.total_bytes} bytes) in "
          f"{time.perf_counter() - start:.1f} s")
    print("  per op: " + ", ".join(f"{op} {n}" for op, n in sorted(per_op.items())))
    print(f"  versions: {versions}")
    if missing:
        print(f"  absent (--allow-missing): {', '.join(missing)}")
    for label, names in (("changed", result.changed), ("added", result.added),
                         ("removed", result.removed)):
        if names:
            more = f", ... ({len(names) - 20} more)" if len(names) > 20 else ""
            print(f"  {label} ({len(names)}): {', '.join(names[:20])}{more}")
    return 0


def _verify(directory: Path) -> int:
    problems = fs.verify(directory)
    if problems:
        print(f"verify: {len(problems)} problem(s) in {directory}:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    manifest = fs.load_manifest(directory)
    print(f"verify: {directory}: {len(manifest['cases'])} cases, manifest and checksums OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m conformance fixtures``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "regenerate":
        return _regenerate(args.out, args.allow_missing, args.verbose)
    return _verify(args.directory)


if __name__ == "__main__":
    sys.exit(main())
