"""``python -m conformance diff``: compare every op's outputs and gradients across backends.

For each op x dtype x direction (the forward outputs, then each gradient) and every pair of
available backends, over the golden fixture cases plus ``--cases N`` freshly sampled valid
configurations per op, this records the largest absolute, relative and ULP differences, the worst
element (the one closest to, or furthest beyond, its tolerance) with both values, and a
copy-paste reproducer. A difference is *within tolerance* when
``|a - b| <= tolerance.comparison_atol(bound, bound)`` elementwise, ``bound`` being the
error-model bound of one implementation computing in the case's dtype (both backends compute in
it). Configurations a backend cannot express (``backends.Unsupported``) are *registered*: shown
with their id from ``divergences.toml``, never as failures.

Exit status: 0 when every difference is within tolerance or registered, 1 otherwise (the failures
are listed), 2 on a usage error: one line on stderr, found before the comparison starts. A
backend named with ``--backends`` that cannot be loaded is a usage error; of the default
backends, absent ones are only listed. Rendering (table, JSON, Markdown, heatmap) is in
``diff_report.py``; the JSON schema is documented in ``docs/diff-schema.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import itertools
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from . import diff_report, registry, sampler
from . import tolerance as tol
from .cases import Case
from .comparison import Worst, compare_output
from .frameworks import ENV_VAR as REQUIRE_VAR
from .frameworks import required as required_frameworks
from .ops import RECORDS, OpRecord
from .paths import fixtures_dir
from .runner import NOT_IMPLEMENTED, Outcome, one_line, run_pass

DTYPES: tuple[str, ...] = ("float32", "float64")
DEFAULT_BACKENDS: tuple[str, ...] = (
    "nnref", "torch", "tensorflow", "scipy", "jax", "onnx-ref", "onnxruntime")
DEFAULT_CASES = 40
DEFAULT_SEED = 0
DEFAULT_FIXTURES = fixtures_dir()
# backend -> the distribution whose version the report prints
_FRAMEWORK = {"nnref": "nnref", "torch": "torch", "tensorflow": "tensorflow", "scipy": "scipy",
              "jax": "jax", "onnx-ref": "onnx", "onnxruntime": "onnxruntime"}
_ALIASES = {"tf": "tensorflow", "f32": "float32", "f64": "float64"}


@dataclass(frozen=True)
class OpRow:
    """One op at one rank: a block of rows of the report (``label``: conv3d, pad1d, ...)."""

    label: str
    record: OpRecord
    rank: int

    @property
    def directions(self) -> tuple[str, ...]:
        """'forward' (all forward outputs), then one per gradient."""
        return self.record.directions()


def op_rows() -> list[OpRow]:
    """Every op at every rank, in record order."""
    return [OpRow(rec.label(rank), rec, rank) for rec in RECORDS for rank in rec.ranks]


def select_rows(names: Sequence[str]) -> list[OpRow]:
    """The rows named by labels (conv3d, pad1d), forward functions (pad, batch_norm: every
    rank) or record names (max_pool: every rank); every row when ``names`` is empty."""
    rows = op_rows()
    if not names:
        return rows
    return [r for r in rows if {r.label, r.record.name, r.record.functions(r.rank)[0]}
            & set(names)]


# --------------------------------------------------------------------------------------------
# Cases: fresh samples and fixtures


@dataclass
class Item:
    """One case in one dtype with one array seed; ``arrays`` preloaded for fixtures."""

    id: str
    source: str  # "sampled" | "fixture"
    case: Case
    dtype: str
    seed: int
    arrays: dict[str, np.ndarray] | None = None
    origin: str = ""  # fixture case name (reproducers load its stored inputs)
    fixture_dir: str = ""
    index: int = -1  # the item's number within its op row and dtype, fixtures first

    def inputs(self) -> dict[str, np.ndarray]:
        if self.arrays is not None:
            return {k: np.array(v, copy=True) for k, v in self.arrays.items()}
        return self.case.arrays(np.dtype(self.dtype), self.seed)


# A fixture source turns (directory, ops, dtypes) into Items with preloaded arrays, plus a note
# for the report. The default reads conformance/fixture_store.py's manifest; tests and other
# stores can replace it (FIXTURE_SOURCE = my_loader).
FixtureSource = Callable[[Path, Sequence[str], Sequence[str]], tuple[list[Item], str]]


def fixture_store_items(directory: Path, ops: Sequence[str],
                        dtypes: Sequence[str]) -> tuple[list[Item], str]:
    """Golden fixture cases (their stored inputs) through ``conformance.fixture_store``."""
    try:
        from . import fixture_store
    except ImportError as exc:
        return [], f"fixture store not available ({exc})"
    directory = Path(directory)
    if not (directory / "manifest.json").exists():
        return [], f"no fixtures in {directory} (manifest.json missing)"
    try:
        entries = fixture_store.load_manifest(directory)["cases"]
        items: list[Item] = []
        for entry in entries:
            if entry["dtype"] not in dtypes:
                continue
            stored = fixture_store.load_case(directory, entry)
            if stored.case.label not in ops:
                continue
            seed = entry.get("seed")
            items.append(Item(
                id=f"fixture:{stored.name}", source="fixture", case=stored.case,
                dtype=np.dtype(stored.dtype).name, seed=-1 if seed is None else int(seed),
                arrays=stored.inputs(), origin=stored.name, fixture_dir=_display_path(directory),
            ))
    except Exception as exc:  # a broken or changed store must not stop the comparison
        return [], f"fixtures in {directory} not loaded ({one_line(exc)})"
    return items, f"{len(items)} fixture item(s) from {_display_path(directory)}"


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (for reproducers)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(path).resolve())


FIXTURE_SOURCE: FixtureSource = fixture_store_items


def build_items(rows: Sequence[OpRow], dtypes: Sequence[str], n_cases: int, seed: int,
                fixtures: Path | None) -> tuple[list[Item], str]:
    """Fixture items first, then ``n_cases`` sampled configurations per op and rank (the
    records' own sampler, seeded) in every dtype."""
    labels = [r.label for r in rows]
    items, note = ([], "fixtures disabled") if fixtures is None else FIXTURE_SOURCE(
        fixtures, labels, dtypes)
    for row in rows:
        for i, (case, array_seed) in enumerate(
                sampler.sample(row.record, n_cases, seed + row.rank, rank=row.rank)):
            for dtype in dtypes:
                items.append(Item(f"{row.label}#{i}", "sampled", case, dtype, array_seed))
    seen: dict[tuple[str, str], int] = {}
    for item in items:  # numbered per op row and dtype, for backends with DIFF_CASES
        key = (item.case.label, item.dtype)
        item.index = seen[key] = seen.get(key, -1) + 1
    return items, note


# --------------------------------------------------------------------------------------------
# Backends


@dataclass
class Backend:
    """A named implementation of the contract (a backend adapter or any module)."""

    name: str
    module: Any = None
    version: str = ""
    status: str = "available"  # "available" | "absent"
    reason: str = ""
    module_name: str = ""  # importable name, for reproducers ("" = conformance.backends)
    # cases per op row and dtype this backend runs, fixtures first (None: all); a module sets
    # DIFF_CASES when every new shape costs a compilation (JAX)
    cases: int | None = None

    def runs(self, item: Item) -> bool:
        return self.available and (self.cases is None or item.index < self.cases)

    @property
    def available(self) -> bool:
        return self.status == "available" and self.module is not None

    @property
    def short(self) -> str:
        return {"tensorflow": "tf"}.get(self.name, self.name)


def _dist_version(package: str) -> str:
    module = sys.modules.get(package)
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    for dist in (package, f"{package}-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def load_backends(specs: Sequence[str]) -> list[Backend]:
    """Load ``name`` (nnref, torch, tensorflow/tf, scipy) or ``name=module`` specs.

    A backend that cannot be imported is returned with status "absent" and the reason.
    """
    from .backends import load_backend
    from .frameworks import tf_environment

    tf_environment()
    out: list[Backend] = []
    for spec in specs:
        name, _, module_name = spec.partition("=")
        name = _ALIASES.get(name, name)
        try:
            with warnings.catch_warnings(), _native_stderr_captured():
                warnings.simplefilter("ignore")
                module = (importlib.import_module(module_name) if module_name
                          else load_backend(name))
        except Exception as exc:  # an absent or broken framework is reported, not fatal
            out.append(Backend(name, status="absent", reason=one_line(exc),
                               module_name=module_name))
            continue
        version = (str(getattr(module, "__version__", "unknown")) if module_name
                   else _dist_version(_FRAMEWORK[name]))
        cases = getattr(module, "DIFF_CASES", None)
        out.append(Backend(name, module, version, module_name=module_name,
                           cases=int(cases) if cases is not None else None))
    return out


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Silence file descriptor 2 while a framework imports (TF's C++ start-up log lines ignore
    TF_CPP_MIN_LOG_LEVEL); the captured text is re-emitted if the import fails."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor (e.g. captured by a test runner)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


# --------------------------------------------------------------------------------------------
# Running one backend on one item


# --------------------------------------------------------------------------------------------
# Comparing two backends


@dataclass
class Result:
    """One item x direction x pair."""

    item: str
    direction: str
    pair: tuple[str, str]
    status: str  # "ok" | "fail" | "registered" | "n/a"
    registered: tuple[str, ...] = ()
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    max_ratio: float = 0.0
    index_mismatches: int = 0
    elements: int = 0
    compared: bool = False  # outputs were actually compared (not only registered or errors)
    worst: Worst | None = None
    failures: tuple[str, ...] = ()


def _direction_outputs(direction: str, outcome: Outcome) -> tuple[dict[str, Any], dict[str, str]]:
    """The outputs of one direction ("forward" = all forward outputs, else one gradient)."""
    if direction == "forward":
        return outcome.outputs, {k: v for k, v in outcome.registered.items() if k != "*"}
    out = {direction: outcome.outputs[direction]} if direction in outcome.outputs else {}
    reg = {k: v for k, v in outcome.registered.items() if k == direction}
    return out, reg


def compare_pair(item: Item, direction: str, pair: tuple[str, str], oa: Outcome, ob: Outcome,
                 bounds: dict[str, Any], known_ids: Iterable[str],
                 stored: Sequence[dict[str, Any]] = ()) -> Result:
    """One item x direction x pair of backends. ``stored``: each backend's term for parameters
    it stores narrower than the data (tolerance.attribute_rounding), added to the tolerance."""
    known = set(known_ids) | {NOT_IMPLEMENTED}
    errors = [f"{name} raised {o.error}" for name, o in zip(pair, (oa, ob), strict=True)
              if o.error]
    if errors:
        return Result(item.id, direction, pair, "fail", failures=tuple(errors),
                      max_ratio=math.inf)
    whole = [o.registered["*"] for o in (oa, ob) if "*" in o.registered]
    if whole:
        ids = tuple(dict.fromkeys(whole))
        bad = [f"Unsupported id {i!r} is not in divergences.toml" for i in ids if i not in known]
        status = "fail" if bad else ("n/a" if set(ids) == {NOT_IMPLEMENTED} else "registered")
        return Result(item.id, direction, pair, status, registered=ids, failures=tuple(bad))
    outs_a, reg_a = _direction_outputs(direction, oa)
    outs_b, reg_b = _direction_outputs(direction, ob)
    registered = {**reg_a, **reg_b}
    result = Result(item.id, direction, pair, "ok", registered=tuple(dict.fromkeys(
        registered.values())))
    failures = [f"Unsupported id {i!r} is not in divergences.toml" for i in result.registered
                if i not in known]
    names = [n for n in dict.fromkeys([*outs_a, *outs_b]) if n not in registered]
    result.compared = bool(names)
    for name in names:
        if name not in outs_a or name not in outs_b:
            missing = pair[0] if name not in outs_a else pair[1]
            failures.append(f"{name}: not returned by {missing}")
            continue
        va, vb = outs_a[name], outs_b[name]
        if va is None or vb is None:
            if (va is None) != (vb is None):
                failures.append(f"{name}: None from one backend only")
            continue
        bound = bounds.get(name, 0.0)
        atol = tol.comparison_atol(bound, bound) + sum(t.get(name, 0.0) for t in stored)
        s = compare_output(name, va, vb, atol, item.dtype)
        failures.extend(s["failures"])
        result.max_abs = max(result.max_abs, s["max_abs"])
        result.max_rel = max(result.max_rel, s["max_rel"])
        result.max_ulp = max(result.max_ulp, s["max_ulp"])
        result.index_mismatches += s["index_mismatches"]
        result.elements += s["elements"]
        worst = s["worst"]
        if worst is not None and (result.worst is None or
                                  (worst.ratio, worst.ulp) > (result.worst.ratio,
                                                              result.worst.ulp)):
            worst.item = item.id
            result.worst = worst
        result.max_ratio = max(result.max_ratio, s["max_ratio"])
    if not names and registered:
        result.status = "registered"
    if failures:
        result.status = "fail"
        result.failures = tuple(failures)
    return result


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Cell:
    """All items of one row (op, direction, dtype) for one backend pair."""

    pair: tuple[str, str]
    status: str = "n/a"  # "ok" | "fail" | "registered" | "n/a"
    compared: int = 0
    registered: dict[str, int] = field(default_factory=dict)  # id -> number of items
    not_implemented: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    max_ratio: float = 0.0
    index_mismatches: int = 0
    worst: Worst | None = None
    worst_item: Item | None = None
    worst_fallback: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item id, message)

    def add(self, r: Result, item: Item, fallback: bool) -> None:
        for i in r.registered:
            if i == NOT_IMPLEMENTED:
                self.not_implemented += 1
            else:
                self.registered[i] = self.registered.get(i, 0) + 1
        self.failures.extend((r.item, f) for f in r.failures)
        if r.compared:
            self.compared += 1
        self.max_abs = max(self.max_abs, r.max_abs)
        self.max_rel = max(self.max_rel, r.max_rel)
        self.max_ulp = max(self.max_ulp, r.max_ulp)
        self.max_ratio = max(self.max_ratio, r.max_ratio)
        self.index_mismatches += r.index_mismatches
        if r.worst is not None and (self.worst is None or (r.worst.ratio, r.worst.ulp) >
                                    (self.worst.ratio, self.worst.ulp)):
            self.worst, self.worst_item, self.worst_fallback = r.worst, item, fallback
        if self.failures:
            self.status = "fail"
        elif self.compared:
            self.status = "ok"
        elif self.registered:
            self.status = "registered"


@dataclass
class Row:
    op: str
    direction: str
    dtype: str
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    items: int = 0


@dataclass
class Report:
    """Everything a run produced; rendered by diff_report."""

    settings: dict[str, Any]
    backends: list[Backend]
    pairs: list[tuple[str, str]]
    rows: list[Row]
    items: list[Item]
    results: list[Result]
    fixtures_note: str
    elapsed: float = 0.0
    started: str = ""

    @property
    def failures(self) -> list[tuple[Row, Cell, str, str]]:
        return [(row, cell, item, msg) for row in self.rows for cell in row.cells.values()
                for item, msg in cell.failures]

    @property
    def ok(self) -> bool:
        return not self.failures


class Progress:
    """A one-line stderr progress bar (no dependency); silent when disabled."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total, self.enabled = max(total, 1), enabled
        self.stream = stream or sys.stderr
        self.done, self.start = 0, time.monotonic()

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.start
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{elapsed:5.1f}s  {label}")
        self.stream.write(f"{line[:99]:<99}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 99 + "\r")
            self.stream.flush()


def make_pairs(backends: Sequence[Backend]) -> list[tuple[str, str]]:
    names = [b.name for b in backends if b.available]
    return list(itertools.combinations(names, 2))


def run(items: Sequence[Item], backends: Sequence[Backend], progress: Progress | None = None,
        ops: Sequence[OpRow] | None = None,
        dtypes: Sequence[str] = DTYPES) -> tuple[list[Row], list[Result]]:
    """Run every available backend on every item and compare every pair."""
    live = [b for b in backends if b.available]
    pairs = make_pairs(backends)
    known = registry.ids()
    rows = {(op.label, d, dt): Row(op.label, d, dt, {p: Cell(p) for p in pairs})
            for op in (op_rows() if ops is None else ops) for d in op.directions
            for dt in dtypes}
    results: list[Result] = []
    for item in items:
        arrays = item.inputs()
        a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
        with np.errstate(all="ignore"):
            bounds = {**tol.forward_bounds(item.case, a64, np.dtype(item.dtype)),
                      **tol.backward_bounds(item.case, a64, np.dtype(item.dtype))}
        running = [b for b in live if b.runs(item)]
        stored = {(b.name, d): tol.attribute_rounding(item.case, a64, d, b.module)
                  for b in running for d in ("forward", "backward")
                  if item.case.record.float_attributes}
        outcomes: dict[str, tuple[Outcome, Outcome]] = {}
        for b in running:
            outcomes[b.name] = (run_pass(b.module, item.case, arrays, "forward"),
                                run_pass(b.module, item.case, arrays, "backward"))
            if progress:
                progress.advance(f"{item.id} {item.dtype} {b.name}")
        for direction in item.case.record.directions():
            row = rows[(item.case.label, direction, item.dtype)]
            row.items += 1
            k = 0 if direction == "forward" else 1
            for pair in pairs:
                if pair[0] not in outcomes or pair[1] not in outcomes:
                    continue  # a backend with a smaller case budget (DIFF_CASES)
                oa, ob = outcomes[pair[0]][k], outcomes[pair[1]][k]
                d = "forward" if k == 0 else "backward"
                extra = [stored.get((name, d), {}) for name in pair]
                r = compare_pair(item, direction, pair, oa, ob, bounds, known, extra)
                results.append(r)
                row.cells[pair].add(r, item, oa.fallback or ob.fallback)
    return list(rows.values()), results


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
                   help="float32 and/or float64 (default both)")
    p.add_argument("--backends", action="append", metavar="NAMES",
                   help="comma-separated: nnref, torch, tensorflow (tf), scipy, or NAME=MODULE "
                        "for any module implementing CONTRACT.md; each must load "
                        "(default: all four, absent ones listed)")
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
    if FIXTURE_SOURCE is fixture_store_items and not (path / "manifest.json").is_file():
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
        return f"--dtype: unknown dtype(s) {bad}; expected float32, float64"
    names = [_ALIASES.get(s.partition("=")[0], s.partition("=")[0]) for s in specs]
    if bad := [s for s in specs if "=" not in s and _ALIASES.get(s, s) not in DEFAULT_BACKENDS]:
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
    dtypes = [_ALIASES.get(d, d) for d in _split(args.dtype)] or list(DTYPES)
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
               if not b.available and _FRAMEWORK.get(b.name) in required_frameworks()]:
        return _usage_error(f"{REQUIRE_VAR} names a missing framework: {'; '.join(bad)}")
    threads = set_threads(backends, args.threads)
    items, note = build_items(ops, dtypes, args.cases, args.seed, fixtures)
    live = [b for b in backends if b.available]
    progress = Progress(sum(b.runs(item) for item in items for b in live), show)
    rows, results = run(items, backends, progress, ops, dtypes)
    progress.close()
    report = Report(
        settings={"cases": args.cases, "seed": args.seed, "ops": [r.label for r in ops],
                  "dtypes": dtypes,
                  "backends": specs, "fixtures": _display_path(fixtures) if fixtures else None,
                  "threads": threads, "plot": args.plot,
                  "argv": ["python", "-m", "conformance", "diff",
                           *(sys.argv[1:] if argv is None else argv)]},
        backends=backends, pairs=make_pairs(backends), rows=rows, items=list(items),
        results=results, fixtures_note=note, elapsed=time.monotonic() - t0, started=started,
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


def set_threads(backends: Sequence[Backend], threads: int) -> dict[str, str]:
    """Intra-op threads of torch and TF (what was set, per framework).

    One thread (the default) makes summation order independent of the machine and is much
    faster for these small tensors: idle TF/OpenMP worker threads otherwise spin and starve
    torch on a 2-core machine.
    """
    names = {b.name for b in backends if b.available and not b.module_name}
    done: dict[str, str] = {}
    if "torch" in names and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
        done["torch"] = str(threads)
    if "tensorflow" in names and "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            done["tensorflow"] = str(threads)
        except RuntimeError:  # already initialised in this process: its setting stays
            done["tensorflow"] = "unchanged (TF already initialised)"
    return done
