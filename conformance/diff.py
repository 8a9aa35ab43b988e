"""``python -m conformance diff``: compare every op's outputs and gradients across backends.

For each op x dtype x direction (the forward outputs, then each gradient), over the golden
fixture cases plus ``--cases N`` freshly sampled valid configurations per op:

- float32 and float64 (the default): every pair of available backends is compared. This records
  the largest absolute, relative and ULP differences, the worst element (the one closest to, or
  furthest beyond, its tolerance) with both values, and a copy-paste reproducer. A difference is
  *within tolerance* when ``|a - b| <= tolerance.comparison_atol(bound, bound)`` elementwise,
  ``bound`` being the error-model bound of one implementation computing in the case's dtype
  (both backends compute in it).
- float16 and bfloat16 (``--dtype f16,bf16``): backends are not compared with each other, since
  each is allowed the error of its own declared arithmetic (``CONFORMANCE_ACCUMULATION``: float32
  accumulation by default, or accumulation in the storage format) and two arithmetics share no
  tolerance. Each backend is judged on its own, as the low-precision tests judge it
  (``conformance.low_precision``): against nnref in float64 on the inputs exactly as the format
  stores them (the golden fixtures' cases in the format, and the sampled float32 arrays with x
  shaped by the value regimes in turn, rounded to the format), its worst error reported as a
  multiple of its own bound, with the arithmetic named and a reproducer. Beyond 1 is a
  failure, whose message says which bound it broke and what the error is consistent with.

Configurations a backend cannot express (``backends.Unsupported``) are *registered*: shown with
their id from ``divergences.toml``, never as failures.

Exit status: 0 when every difference is within tolerance, every low-precision error within its
bound, or registered; 1 otherwise (the failures are listed); 2 on a usage error: one line on
stderr, found before the comparison starts. A backend named with ``--backends`` that cannot be
loaded is a usage error; of the default backends, absent ones are only listed. Running and
comparing is in ``diff_run.py`` (its data in ``diff_model.py``), rendering (table, JSON,
Markdown, heatmap) in ``diff_report.py``; the JSON schema is documented in
``docs/diff-schema.md``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from . import diff_report, diff_run
from .diff_model import (
    DEFAULT_DTYPES,
    DTYPES,
    LOW_PRECISION,
    PAIRWISE,
    Report,
    op_rows,
    select_rows,
    storage_format,
)
from .diff_run import (
    ALIASES,
    FRAMEWORK,
    Progress,
    build_items,
    declaration_problems,
    display_path,
    judge_low_precision,
    load_backends,
    make_pairs,
    run,
    set_threads,
)
from .frameworks import ENV_VAR as REQUIRE_VAR
from .frameworks import required as required_frameworks
from .ops import RECORDS
from .paths import fixtures_dir

DEFAULT_BACKENDS: tuple[str, ...] = (
    "nnref", "torch", "tensorflow", "scipy", "jax", "onnx-ref", "onnxruntime")
DEFAULT_CASES = 40
DEFAULT_SEED = 0
DEFAULT_FIXTURES = fixtures_dir()


# --------------------------------------------------------------------------------------------
# Command line


def _split(values: Sequence[str] | None) -> list[str]:
    return [v.strip() for vs in values or [] for v in vs.split(",") if v.strip()]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``; argparse names the option in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m conformance diff",
        description="Compare every op's outputs and gradients across the installed backends.",
        epilog="Exit status: 0 all differences within tolerance or registered, 1 failures, "
               "2 usage error. JSON schema: docs/diff-schema.md.",
    )
    p.add_argument("--cases", type=_int_at_least(0), default=DEFAULT_CASES, metavar="N",
                   help=f"fresh configurations sampled per op (default {DEFAULT_CASES})")
    p.add_argument("--seed", type=_int_at_least(0), default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the sampled configurations (default {DEFAULT_SEED})")
    p.add_argument("--op", action="append", metavar="OP",
                   help="op(s) to compare, repeatable or comma-separated: an op at one rank "
                        f"({', '.join(r.label for r in op_rows())}) or every rank of one "
                        f"({', '.join(r.name for r in RECORDS)})")
    p.add_argument("--dtype", action="append", metavar="DTYPE",
                   help="repeatable or comma-separated: float32 (f32), float64 (f64), float16 "
                        "(f16), bfloat16 (bf16); default float32,float64. In float16 and "
                        "bfloat16 each backend is judged against nnref in float64 within the "
                        "bound of its declared arithmetic")
    p.add_argument("--backends", action="append", metavar="NAMES",
                   help=f"comma-separated: {', '.join(DEFAULT_BACKENDS)} (tf: tensorflow), or "
                        "NAME=MODULE for any module implementing CONTRACT.md; each must load "
                        "(default: all of them, absent ones listed)")
    p.add_argument("--fixtures", metavar="DIR",
                   help="golden fixture directory to include ('none' to skip; default: the "
                        "suite's golden fixtures)")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    p.add_argument("--plot", metavar="FILE.png", help="write a ULP heatmap (needs matplotlib)")
    p.add_argument("--threads", type=_int_at_least(1), default=1, metavar="N",
                   help="intra-op threads for torch and TF (default 1: deterministic order)")
    p.add_argument("--worst", type=_int_at_least(0), default=3, metavar="K",
                   help="worst cases printed with reproducers (default 3; all go to the files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _usage_error(message: str) -> int:
    print(f"python -m conformance diff: error: {message}", file=sys.stderr)
    return 2


def _output_problem(option: str, value: str) -> str | None:
    """Why the report file ``value`` could not be written at the end of the run, or None.

    Its directory must exist or be one new directory inside an existing one (created when
    writing, so ``--json out/diff.json`` works in a fresh checkout).
    """
    path = Path(value)
    if path.is_dir():
        return f"{option} {value}: is a directory"
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        return f"{option} {value}: {parent} is not a directory"
    if not parent.exists() and not parent.parent.is_dir():
        return f"{option} {value}: directory {parent} does not exist"
    writable = parent if parent.exists() else parent.parent
    if not os.access(writable, os.W_OK | os.X_OK):
        return f"{option} {value}: directory {writable} is not writable"
    return None


def _fixtures_problem(value: str) -> str | None:
    """Why ``--fixtures value`` names no fixture directory, or None. The manifest is required
    only of the default store (a replaced ``FIXTURE_SOURCE`` has its own layout)."""
    path = Path(value)
    if not path.is_dir():
        return f"--fixtures {value}: no such directory ('none' skips the fixtures)"
    default_store = diff_run.FIXTURE_SOURCE is diff_run.fixture_store_items
    if default_store and not (path / "manifest.json").is_file():
        return f"--fixtures {value}: holds no manifest.json ('none' skips the fixtures)"
    return None


def _argument_problem(args: argparse.Namespace, op_names: Sequence[str],
                      dtypes: Sequence[str], specs: Sequence[str]) -> str | None:
    """The first usage error that needs no backend loaded, or None."""
    known_ops = {n for r in op_rows() for n in (r.label, r.record.name,
                                                 r.record.functions(r.rank)[0])}
    if bad := [o for o in op_names if o not in known_ops]:
        return f"--op: unknown op(s) {bad}; expected one of {', '.join(sorted(known_ops))}"
    if bad := [d for d in dtypes if d not in DTYPES]:
        short = {v: k for k, v in ALIASES.items()}
        return (f"--dtype: unknown dtype(s) {bad}; expected "
                f"{', '.join(f'{d} ({short[d]})' for d in DTYPES)}")
    for d in dtypes:
        if d in LOW_PRECISION:
            try:
                storage_format(d)
            except LookupError as exc:
                return f"--dtype {d}: {exc}"
    names = [ALIASES.get(s.partition("=")[0], s.partition("=")[0]) for s in specs]
    if bad := [s for s in specs if "=" not in s and ALIASES.get(s, s) not in DEFAULT_BACKENDS]:
        return (f"--backends: unknown backend(s) {bad}; expected "
                f"{', '.join(DEFAULT_BACKENDS)} or NAME=MODULE")
    if len(set(names)) != len(names):
        return f"--backends: names must be unique, got {names}"
    if args.fixtures is not None and args.fixtures.lower() != "none":
        if problem := _fixtures_problem(args.fixtures):
            return problem
    for option in ("json", "markdown", "plot"):
        value = getattr(args, option)
        if value and (problem := _output_problem(f"--{option}", value)):
            return problem
    if args.plot and not set(dtypes) & set(PAIRWISE):
        return (f"--plot draws the backend pairs of float32 / float64 rows, and --dtype "
                f"{','.join(dtypes)} has none")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return "--plot needs matplotlib, which is not installed (pip install matplotlib)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m conformance diff``; returns the exit status.

    Usage errors (exit 2, one line on stderr) are found before the comparison starts: the
    arguments first, then backends named with ``--backends`` that cannot be loaded.
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    op_names = _split(args.op)
    dtypes = [ALIASES.get(d, d) for d in _split(args.dtype)] or list(DEFAULT_DTYPES)
    named = _split(args.backends)
    specs = named or list(DEFAULT_BACKENDS)
    if problem := _argument_problem(args, op_names, dtypes, specs):
        return _usage_error(problem)
    ops = select_rows(op_names)
    dtypes = list(dict.fromkeys(dtypes))
    fixture_arg = str(DEFAULT_FIXTURES) if args.fixtures is None else args.fixtures
    fixtures = None if fixture_arg.lower() == "none" else Path(fixture_arg)

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.monotonic()
    show = not args.no_progress and sys.stderr.isatty()
    if show:
        sys.stderr.write(f"loading backends {', '.join(specs)} ...\r")
        sys.stderr.flush()
    backends = load_backends(specs)
    if show:
        sys.stderr.write(" " * 99 + "\r")
    # a backend the user named must run; absent default backends are only listed, unless
    # NNREF_REQUIRE_FRAMEWORKS names their framework
    if named and (bad := [f"{spec} cannot be loaded ({b.reason})"
                          for spec, b in zip(specs, backends, strict=True) if not b.available]):
        return _usage_error(f"--backends: {'; '.join(bad)}")
    if bad := [f"{b.name} cannot be loaded ({b.reason})" for b in backends
               if not b.available and FRAMEWORK.get(b.name) in required_frameworks()]:
        return _usage_error(f"{REQUIRE_VAR} names a missing framework: {'; '.join(bad)}")
    pairwise = [d for d in dtypes if d in PAIRWISE]
    low = [d for d in dtypes if d in LOW_PRECISION]
    if low and (bad := declaration_problems(backends)):
        return _usage_error(f"--backends: {'; '.join(bad)}")
    threads = set_threads(backends, args.threads)
    items, note = build_items(ops, dtypes, args.cases, args.seed, fixtures)
    live = [b for b in backends if b.available]
    progress = Progress(sum(b.runs(item) for item in items for b in live), show)
    rows, results = run(items, backends, progress, ops, pairwise)
    low_rows, judgements = judge_low_precision(items, backends, progress, ops, low)
    progress.close()
    report = Report(
        settings={"cases": args.cases, "seed": args.seed, "ops": [r.label for r in ops],
                  "dtypes": dtypes,
                  "backends": specs, "fixtures": display_path(fixtures) if fixtures else None,
                  "threads": threads, "plot": args.plot,
                  "argv": ["python", "-m", "conformance", "diff",
                           *(sys.argv[1:] if argv is None else argv)]},
        backends=backends, pairs=make_pairs(backends), rows=rows, items=list(items),
        results=results, fixtures_note=note, elapsed=time.monotonic() - t0, started=started,
        low_rows=low_rows, judgements=judgements,
    )
    print(diff_report.render_text(report, worst=args.worst))
    for path, writer in ((args.json, diff_report.write_json),
                         (args.markdown, diff_report.write_markdown),
                         (args.plot, diff_report.write_plot)):
        if path:
            Path(path).parent.mkdir(exist_ok=True)  # at most one new level (_output_problem)
            writer(report, Path(path))
            print(f"wrote {path}")
    return 0 if report.ok else 1
