"""Running ``python -m conformance diff``: load the backends, build the items, run and compare.

For each item every available backend runs both directions (``conformance.runner.run_pass``).
In float32 and float64 (:func:`run`) every pair of backends is compared output by output
against the tolerance (``|a - b| <= tolerance.comparison_atol(bound, bound)``, plus the term of
parameters a backend stores narrower than its data). In float16 and bfloat16
(:func:`judge_low_precision`) there is no common tolerance for a pair: two backends may declare
different arithmetics. Each backend is judged on its own, as the low-precision tests judge it
(``conformance.low_precision.assess``): against nnref in float64 on the inputs exactly as
stored, within the bound of the accumulation it declares for that function and format, its
worst error reported as a multiple of that bound. The results fill the data model of
``conformance.diff_model``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import itertools
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import nnref
import numpy as np

from . import low_precision as lp
from . import registry, sampler
from . import tolerance as tol
from .comparison import compare_output
from .diff_model import (
    LOW_PRECISION,
    PAIRWISE,
    Backend,
    BackendCell,
    Cell,
    Item,
    Judgement,
    LowPrecisionRow,
    OpRow,
    Result,
    Row,
    op_rows,
    storage_format,
)
from .harness import upcast
from .runner import NOT_IMPLEMENTED, Outcome, one_line, run_pass

# backend -> the distribution whose version the report prints
FRAMEWORK = {"nnref": "nnref", "torch": "torch", "tensorflow": "tensorflow", "scipy": "scipy",
             "jax": "jax", "onnx-ref": "onnx", "onnxruntime": "onnxruntime"}
ALIASES = {"tf": "tensorflow", "f32": "float32", "f64": "float64", "f16": "float16",
           "bf16": "bfloat16"}


# --------------------------------------------------------------------------------------------
# Cases: fresh samples and fixtures


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
            values = entry.get("values") or {}  # float16 / bfloat16: how x was shaped
            items.append(Item(
                id=f"fixture:{stored.name}", source="fixture", case=stored.case,
                dtype=np.dtype(stored.dtype).name, seed=-1 if seed is None else int(seed),
                arrays=stored.inputs(), origin=stored.name, fixture_dir=display_path(directory),
                regime=values.get("regime", "as drawn"), amount=values.get("amount", 1.0),
            ))
    except Exception as exc:  # a broken or changed store must not stop the comparison
        return [], f"fixtures in {directory} not loaded ({one_line(exc)})"
    return items, f"{len(items)} fixture item(s) from {display_path(directory)}"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (for reproducers)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(path).resolve())


FIXTURE_SOURCE: FixtureSource = fixture_store_items


def build_items(rows: Sequence[OpRow], dtypes: Sequence[str], n_cases: int, seed: int,
                fixtures: Path | None) -> tuple[list[Item], str]:
    """Fixture items first, then ``n_cases`` sampled configurations per op and rank (the
    records' own sampler, seeded) in every dtype.

    In float16 / bfloat16 a sampled configuration's float32 arrays have x shaped by a value
    regime before they are rounded to the format: the regimes in turn over the configurations
    (``low_precision.cycled_values(seed + i)``), so any four consecutive ones cover as drawn,
    offset, near zero and saturating, deterministically for a seed."""
    labels = [r.label for r in rows]
    items, note = ([], "fixtures disabled") if fixtures is None else FIXTURE_SOURCE(
        fixtures, labels, dtypes)
    for row in rows:
        for i, (case, array_seed) in enumerate(
                sampler.sample(row.record, n_cases, seed + row.rank, rank=row.rank)):
            regime, amount = lp.cycled_values(seed + i)
            for dtype in dtypes:
                item = Item(f"{row.label}#{i}", "sampled", case, dtype, array_seed)
                if item.low_precision:
                    item.regime, item.amount = regime, amount
                items.append(item)
    seen: dict[tuple[str, str], int] = {}
    for item in items:  # numbered per op row and dtype, for backends with DIFF_CASES
        key = (item.case.label, item.dtype)
        item.index = seen[key] = seen.get(key, -1) + 1
    return items, note


# --------------------------------------------------------------------------------------------
# Backends


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
    from .backends import backend, load_backend
    from .frameworks import tf_environment

    tf_environment()
    out: list[Backend] = []
    for spec in specs:
        name, _, module_name = spec.partition("=")
        name = ALIASES.get(name, name)
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
                   else _dist_version(FRAMEWORK[name]))
        cases = getattr(module, "DIFF_CASES", None)
        out.append(Backend(name, module, version, module_name=module_name,
                           cases=int(cases) if cases is not None else None,
                           formats=None if module_name else backend(name).dtypes))
    return out


def declaration_problems(backends: Sequence[Backend]) -> list[str]:
    """What is wrong with the available backends' ``CONFORMANCE_ACCUMULATION`` declarations
    (a value other than "float32" / "storage"), one line per backend."""
    problems = []
    for b in backends:
        if b.available:
            try:
                lp.declared_accumulation(b.module)
            except ValueError as exc:
                problems.append(f"{b.name}: {exc}")
    return problems


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
# Comparing two backends


def _direction_outputs(direction: str, outcome: Outcome) -> tuple[dict[str, Any], dict[str, str]]:
    """The outputs of one direction ("forward" = all forward outputs, else one gradient)."""
    if direction == "forward":
        return outcome.outputs, {k: v for k, v in outcome.registered.items() if k != "*"}
    out = {direction: outcome.outputs[direction]} if direction in outcome.outputs else {}
    reg = {k: v for k, v in outcome.registered.items() if k == direction}
    return out, reg


def _unknown(divergence_id: str) -> str:
    return f"Unsupported id {divergence_id!r} is not in divergences.toml"


def _refused(ids: Sequence[str], known: set[str]) -> tuple[str, tuple[str, ...]]:
    """Status and failures of a call refused whole: registered when every id is in the
    registry, n/a when only functions were missing, a failure for an unknown id."""
    bad = tuple(_unknown(i) for i in ids if i not in known)
    return ("fail" if bad else "n/a" if set(ids) == {NOT_IMPLEMENTED} else "registered"), bad


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
        status, bad = _refused(ids, known)
        return Result(item.id, direction, pair, status, registered=ids, failures=bad)
    outs_a, reg_a = _direction_outputs(direction, oa)
    outs_b, reg_b = _direction_outputs(direction, ob)
    registered = {**reg_a, **reg_b}
    result = Result(item.id, direction, pair, "ok", registered=tuple(dict.fromkeys(
        registered.values())))
    failures = [_unknown(i) for i in result.registered if i not in known]
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
        dtypes: Sequence[str] = PAIRWISE) -> tuple[list[Row], list[Result]]:
    """Run every available backend on every item in ``dtypes`` (float32 / float64) and
    compare every pair."""
    live = [b for b in backends if b.available]
    pairs = make_pairs(backends)
    known = registry.ids()
    rows = {(op.label, d, dt): Row(op.label, d, dt, {p: Cell(p) for p in pairs})
            for op in (op_rows() if ops is None else ops) for d in op.directions
            for dt in dtypes}
    results: list[Result] = []
    for item in items:
        if item.dtype not in dtypes:
            continue
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
# Float16 and bfloat16: each backend on its own, within the bound of its declared arithmetic


def judge_outcome(item: Item, direction: str, backend: str, outcome: Outcome,
                  reference: Outcome, a64: dict[str, np.ndarray], arithmetic: lp.Arithmetic,
                  known_ids: Iterable[str]) -> Judgement:
    """One low-precision item x direction x backend: every output the backend returned
    against the reference's (nnref in float64 on the stored inputs ``a64``), within the bound
    of ``arithmetic`` (``low_precision.assess``: the same verdict and message as the tests)."""
    known = set(known_ids) | {NOT_IMPLEMENTED}

    def judgement(status: str, **fields: Any) -> Judgement:
        return Judgement(item.id, direction, backend, arithmetic.accumulation, status, **fields)

    if reference.error:
        return judgement("fail", ratio=math.inf, failures=(
            f"the reference (nnref in float64) raised {reference.error}",))
    if outcome.error:
        return judgement("fail", ratio=math.inf, failures=(f"{backend} raised {outcome.error}",))
    if "*" in outcome.registered:
        ids = (outcome.registered["*"],)
        status, bad = _refused(ids, known)
        return judgement(status, registered=ids, failures=bad)
    got, registered = _direction_outputs(direction, outcome)
    want, _ = _direction_outputs(direction, reference)
    failures = [_unknown(i) for i in dict.fromkeys(registered.values()) if i not in known]
    checked: dict[str, np.ndarray] = {}
    for name in (n for n in want if n not in registered):
        if name not in got:
            failures.append(f"{name}: not returned by {backend}")
        elif want[name] is None or got[name] is None:
            if (want[name] is None) != (got[name] is None):
                failures.append(f"{name}: None from "
                                f"{'the reference' if want[name] is None else backend} only")
        elif np.shape(got[name]) != np.shape(want[name]):
            failures.append(f"{name}: shape {np.shape(got[name])}, expected "
                            f"{np.shape(want[name])}")
        else:
            checked[name] = want[name]
    with np.errstate(all="ignore"):
        verdicts = list(lp.assess(item.case, got, checked, a64,
                                  "forward" if direction == "forward" else "backward",
                                  arithmetic))
    failures += [v.problem for v in verdicts if v.problem is not None]
    located = [v for v in verdicts if v.index is not None or v.problem is not None]
    status = "fail" if failures else "ok" if checked else (
        "registered" if registered else "n/a")
    return judgement(status, registered=tuple(dict.fromkeys(registered.values())),
                     ratio=max((v.ratio for v in verdicts), default=0.0),
                     elements=sum(int(np.size(v)) for v in checked.values()),
                     compared=bool(checked),
                     worst=max(located, key=lambda v: v.ratio, default=None),
                     failures=tuple(failures))


def _backend_cell(b: Backend, function: str, dtype: str) -> BackendCell:
    if not b.takes(dtype):
        return BackendCell(b.name, skipped=f"its registry row lists no {dtype}")
    accumulation = b.accumulation(function, dtype)
    return BackendCell(b.name, accumulation,
                       b.departure(function, dtype) if accumulation == "storage" else "")


def judge_low_precision(items: Sequence[Item], backends: Sequence[Backend],
                        progress: Progress | None = None, ops: Sequence[OpRow] | None = None,
                        dtypes: Sequence[str] = LOW_PRECISION
                        ) -> tuple[list[LowPrecisionRow], list[Judgement]]:
    """Run every available backend on every item in ``dtypes`` (float16 / bfloat16) and judge
    each on its own against nnref in float64 on the stored inputs (module docstring)."""
    live = [b for b in backends if b.available]
    known = registry.ids()
    rows: dict[tuple[str, str, str], LowPrecisionRow] = {}
    for op in op_rows() if ops is None else ops:
        functions = op.record.functions(op.rank)
        for direction in op.directions:
            function = functions[0] if direction == "forward" else functions[1]
            for dt in dtypes:
                rows[(op.label, direction, dt)] = LowPrecisionRow(
                    op.label, direction, dt, {b.name: _backend_cell(b, function, dt)
                                              for b in live})
    judgements: list[Judgement] = []
    passes = ("forward", "backward")
    for item in items:
        if item.dtype not in dtypes:
            continue
        low = item.inputs()
        a64 = upcast(low)
        reference = {d: run_pass(nnref, item.case, {k: v.copy() for k, v in a64.items()}, d)
                     for d in passes}
        storage = storage_format(item.dtype)
        directions = item.case.record.directions()
        for direction in directions:
            rows[(item.case.label, direction, item.dtype)].items += 1
        for b in (b for b in live if b.runs(item)):
            outcomes = {d: run_pass(b.module, item.case, {k: v.copy() for k, v in low.items()},
                                    d) for d in passes}
            if progress:
                progress.advance(f"{item.id} {item.dtype} {b.name}")
            for direction in directions:
                d = "forward" if direction == "forward" else "backward"
                cell = rows[(item.case.label, direction, item.dtype)].cells[b.name]
                j = judge_outcome(item, direction, b.name, outcomes[d], reference[d], a64,
                                  lp.Arithmetic(storage, cell.accumulation), known)
                judgements.append(j)
                cell.add(j, item, outcomes[d].fallback)
    return list(rows.values()), judgements


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
