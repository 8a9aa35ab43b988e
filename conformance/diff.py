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
are listed), 2 on a usage error. Rendering (table, JSON, Markdown, heatmap) is in
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
import platform
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import registry
from . import tolerance as tol
from .backends import Unsupported
from .cases import (
    BatchNormCase,
    Case,
    ConvCase,
    PadCase,
    PoolCase,
    _pair,
    every_window_sees_input,
    zlib_crc,
)

SCHEMA = "nnref-diff/1"
OPS: tuple[str, ...] = ("pad", "conv2d", "max_pool2d", "batch_norm")
DTYPES: tuple[str, ...] = ("float32", "float64")
DEFAULT_BACKENDS: tuple[str, ...] = ("nnref", "torch", "tensorflow", "scipy")
DEFAULT_CASES = 100
DEFAULT_SEED = 0
DEFAULT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# The directions of each op: "forward" (all forward outputs), then one per gradient.
DIRECTIONS: dict[str, tuple[str, ...]] = {
    "pad": ("forward", "dx"),
    "conv2d": ("forward", "dx", "dw", "db"),
    "max_pool2d": ("forward", "dx"),
    "batch_norm": ("forward", "dx", "dgamma", "dbeta"),
}
_FRAMEWORK = {"nnref": "nnref", "torch": "torch", "tensorflow": "tensorflow", "scipy": "scipy"}
_ALIASES = {"tf": "tensorflow", "f32": "float32", "f64": "float64"}
NOT_IMPLEMENTED = "not-implemented"
REPRODUCER_WIDTH = 94


# --------------------------------------------------------------------------------------------
# ULP distance


def ulp_distance(a: Any, b: Any, dtype: Any = None) -> np.ndarray:
    """Elementwise number of representable ``dtype`` values between ``a`` and ``b``.

    Uses the monotone map of a float's bits onto unsigned integers (negative floats reversed), so
    adjacent floats are 1 apart, +0 and -0 are 0 apart and the count runs across zero. Both NaN:
    0; one NaN: inf. Returned as float64 (exact below 2**53).
    """
    dt = np.dtype(dtype) if dtype is not None else np.result_type(np.asarray(a), np.asarray(b))
    if dt.kind != "f":
        raise ValueError(f"ulp_distance needs a float dtype, got {dt}")
    uint = np.dtype(f"uint{8 * dt.itemsize}")
    top = uint.type(1) << uint.type(8 * dt.itemsize - 1)
    a = np.ascontiguousarray(a, dtype=dt)
    b = np.ascontiguousarray(b, dtype=dt)

    def key(x: np.ndarray) -> np.ndarray:
        bits = x.view(uint)
        negative = (bits & top) != 0
        return np.where(negative, ~bits + uint.type(1), bits | top)

    ka, kb = key(a), key(b)
    out = np.where(ka >= kb, ka - kb, kb - ka).astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    out = np.where(nan_a & nan_b, 0.0, out)
    return np.where(nan_a ^ nan_b, np.inf, out)


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

    def inputs(self) -> dict[str, np.ndarray]:
        if self.arrays is not None:
            return {k: np.array(v, copy=True) for k, v in self.arrays.items()}
        return self.case.arrays(np.dtype(self.dtype), self.seed)


def _int_or_pair(rng: np.random.Generator, low: int, high: int) -> Any:
    a = int(rng.integers(low, high + 1))
    return (a, int(rng.integers(low, high + 1))) if rng.random() < 0.5 else a


def _pad_arg(rng: np.random.Generator, limit_h: int, limit_w: int) -> Any:
    """An int, a pair or a pair of pairs, each pad in [0, limit] of its axis (as strategies)."""
    form = rng.choice(["int", "pair", "pairs"])
    h = lambda: int(rng.integers(0, limit_h + 1))  # noqa: E731
    w = lambda: int(rng.integers(0, limit_w + 1))  # noqa: E731
    if form == "int":
        return int(rng.integers(0, min(limit_h, limit_w) + 1))
    if form == "pair":
        return (h(), w())
    return ((h(), h()), (w(), w()))


def _hw(rng: np.random.Generator, minimum: int = 1, top: int = 11) -> tuple[int, int]:
    h = int(rng.integers(minimum, top + 1))
    w = h
    while w == h and h != top:
        w = int(rng.integers(minimum, top + 1))
    return h, w


def _nc(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(2, 4)), int(rng.integers(2, 6))


def _draw_pad(rng: np.random.Generator) -> PadCase:
    n, c = _nc(rng)
    h, w = _hw(rng)
    mode = str(rng.choice(["constant", "reflect", "replicate", "circular"]))
    limit = {"reflect": (h - 1, w - 1), "circular": (h, w)}.get(mode, (4, 4))
    pad_width = _pad_arg(rng, min(limit[0], 4), min(limit[1], 4))
    value = float(rng.choice([0.0, 1.5, -2.0])) if mode == "constant" else 0.0
    return PadCase((n, c, h, w), pad_width, mode, value)


def _draw_conv(rng: np.random.Generator) -> ConvCase:
    n = int(rng.integers(2, 4))
    groups = int(rng.choice([1, 1, 2, 3]))
    c = groups * int(rng.integers(1, 4))
    co = groups * int(rng.integers(1, 4))
    h, w = _hw(rng)
    stride = _int_or_pair(rng, 1, 4)
    dilation = _int_or_pair(rng, 1, 3)
    form = str(rng.choice(["explicit", "explicit", "explicit", "same", "valid"]))
    padding = form if form != "explicit" else _pad_arg(rng, 3, 3)
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    bias = bool(rng.random() < 0.5)
    return ConvCase((n, c, h, w), (co, c // groups, kh, kw), bias, stride, padding, dilation,
                    groups)


def _draw_pool(rng: np.random.Generator) -> PoolCase:
    n, c = _nc(rng)
    h, w = _hw(rng, minimum=2)
    kernel = _int_or_pair(rng, 1, 4)
    kh, kw = _pair(kernel)
    stride = None if rng.random() < 0.5 else _int_or_pair(rng, 1, 5)
    padding = _pad_arg(rng, kh // 2, kw // 2)
    dilation = _int_or_pair(rng, 1, 3)
    ceil_mode = bool(rng.random() < 0.5)
    kind = str(rng.choice(["ties", "normal", "unique"]))
    return PoolCase((n, c, h, w), kernel, stride, padding, dilation, ceil_mode, kind)


def _draw_batch_norm(rng: np.random.Generator) -> BatchNormCase:
    n, c = _nc(rng)
    h, w = _hw(rng)
    training = bool(rng.random() < 0.5)
    running = bool(rng.random() < 0.5) or not training
    momentum = float(rng.choice([0.1, 0.0, 1.0, 0.37]))
    eps = float(rng.choice([1e-5, 1e-3, 0.1]))
    kind = str(rng.choice(["normal", "small_var"]))
    return BatchNormCase((n, c, h, w), training, running, momentum, eps, kind)


_DRAW: dict[str, Callable[[np.random.Generator], Case]] = {
    "pad": _draw_pad, "conv2d": _draw_conv, "max_pool2d": _draw_pool,
    "batch_norm": _draw_batch_norm,
}


def is_valid(case: Case) -> bool:
    """The validity rules of conformance/strategies.py (outputs >= 1, pool windows see input)."""
    if min(case.output_shape()[2:]) < 1:
        return False
    if isinstance(case, BatchNormCase) and case.training:
        n, _, h, w = case.shape
        return n * h * w > 1
    return not isinstance(case, PoolCase) or every_window_sees_input(case)


def sample_cases(op: str, n: int, seed: int) -> list[tuple[Case, int]]:
    """``n`` valid configurations of ``op`` and their array seeds, determined by ``seed``."""
    rng = np.random.default_rng([seed, zlib_crc(op)])
    out: list[tuple[Case, int]] = []
    while len(out) < n:
        for _ in range(10_000):
            case = _DRAW[op](rng)
            if is_valid(case):
                break
        else:  # pragma: no cover - the families above are mostly valid
            raise RuntimeError(f"could not draw a valid {op} case")
        out.append((case, int(rng.integers(0, 2**32))))
    return out


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
            if entry["op"] not in ops or entry["dtype"] not in dtypes:
                continue
            stored = fixture_store.load_case(directory, entry)
            seed = entry.get("seed")
            items.append(Item(
                id=f"fixture:{stored.name}", source="fixture", case=stored.case,
                dtype=np.dtype(stored.dtype).name, seed=-1 if seed is None else int(seed),
                arrays=stored.inputs(), origin=stored.name, fixture_dir=_display_path(directory),
            ))
    except Exception as exc:  # a broken or changed store must not stop the comparison
        return [], f"fixtures in {directory} not loaded ({_one_line(exc)})"
    return items, f"{len(items)} fixture item(s) from {_display_path(directory)}"


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (for reproducers)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(path).resolve())


FIXTURE_SOURCE: FixtureSource = fixture_store_items


def build_items(ops: Sequence[str], dtypes: Sequence[str], n_cases: int, seed: int,
                fixtures: Path | None) -> tuple[list[Item], str]:
    """Fixture items first, then ``n_cases`` sampled configurations per op in every dtype."""
    items, note = ([], "fixtures disabled") if fixtures is None else FIXTURE_SOURCE(
        fixtures, ops, dtypes)
    for op in ops:
        for i, (case, array_seed) in enumerate(sample_cases(op, n_cases, seed)):
            for dtype in dtypes:
                items.append(Item(f"{op}#{i}", "sampled", case, dtype, array_seed))
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

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
            out.append(Backend(name, status="absent", reason=_one_line(exc),
                               module_name=module_name))
            continue
        version = (str(getattr(module, "__version__", "unknown")) if module_name
                   else _dist_version(_FRAMEWORK[name]))
        out.append(Backend(name, module, version, module_name=module_name))
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


@dataclass
class Outcome:
    """What one backend returned for one item and one pass (forward or backward)."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    registered: dict[str, str] = field(default_factory=dict)  # output ("*" = all) -> id
    error: str | None = None
    fallback: bool = False  # max_pool2d forward recomputed without indices


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def run_pass(module: Any, case: Case, arrays: dict[str, np.ndarray], backward: bool) -> Outcome:
    """Call ``case.forward`` / ``case.backward`` on a backend; Unsupported becomes registered.

    A max_pool2d forward refused only for its indices is run again without them, so its values
    are still compared (the indices stay registered).
    """
    fname = case.op + ("_backward" if backward else "")
    if not hasattr(module, fname):
        return Outcome(registered={"*": NOT_IMPLEMENTED})
    call = case.backward if backward else case.forward
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return Outcome(outputs=call(module, arrays))
    except Unsupported as exc:
        refused = Outcome(registered={"*": exc.divergence_id})
        if backward or not isinstance(case, PoolCase):
            return refused
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                y = module.max_pool2d(arrays["x"], **case.params())
        except Unsupported:
            return refused
        except Exception as exc2:
            return Outcome(error=_one_line(exc2))
        return Outcome(outputs={"y": y}, registered={"indices": exc.divergence_id},
                       fallback=True)
    except Exception as exc:
        return Outcome(error=_one_line(exc))


# --------------------------------------------------------------------------------------------
# Comparing two backends


@dataclass
class Worst:
    """The element of one comparison closest to (or furthest beyond) its tolerance."""

    item: str
    output: str
    index: tuple[int, ...]
    a: float
    b: float
    abs_err: float
    atol: float
    ulp: float
    ratio: float  # abs_err / atol (inf when atol is 0 and the values differ)


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


def fmt_value(v: float, dtype: str) -> str:
    """Shortest text that round-trips ``v`` in ``dtype`` (so 1-ulp differences show)."""
    if dtype not in ("float32", "float64"):
        return str(v)
    return str(np.dtype(dtype).type(v))


def compare_output(name: str, va: Any, vb: Any, atol: Any, dtype: str) -> dict[str, Any]:
    """Statistics of one output pair; ``failures`` lists what is out of tolerance."""
    va, vb = np.asarray(va), np.asarray(vb)
    stats: dict[str, Any] = {"max_abs": 0.0, "max_rel": 0.0, "max_ulp": 0.0, "max_ratio": 0.0,
                             "index_mismatches": 0, "elements": int(va.size), "worst": None,
                             "failures": []}
    if va.shape != vb.shape:
        stats["failures"].append(f"{name}: shapes differ, {va.shape} vs {vb.shape}")
        stats["max_ratio"] = math.inf
        return stats
    if va.size == 0:
        return stats
    if va.dtype.kind in "iu" or vb.dtype.kind in "iu":
        bad = va != vb
        stats["index_mismatches"] = int(bad.sum())
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            stats["max_ratio"] = math.inf
            stats["worst"] = Worst("", name, idx, float(va[idx]), float(vb[idx]),
                                   abs(float(va[idx]) - float(vb[idx])), 0.0, math.nan, math.inf)
            stats["failures"].append(
                f"{name}: {int(bad.sum())} of {bad.size} indices differ; first at {idx}: "
                f"{va[idx]} vs {vb[idx]}")
        return stats
    for side, v in (("a", va), ("b", vb)):
        if v.dtype != np.dtype(dtype):
            stats["failures"].append(f"{name}: backend {side} returned {v.dtype}, not {dtype}")
    a64, b64 = va.astype(np.float64), vb.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where((nan_a & nan_b) | (np.isinf(a64) & (a64 == b64)), 0.0, np.abs(a64 - b64))
    err = np.nan_to_num(np.where(nan_a ^ nan_b, np.inf, err), nan=np.inf)
    scale = np.maximum(np.abs(a64), np.abs(b64))
    atol_b = np.broadcast_to(np.asarray(atol, dtype=np.float64), err.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(err == 0, 0.0, err / scale)
        ratio = np.where(err == 0, 0.0, err / atol_b)
    rel = np.nan_to_num(rel, nan=np.inf)
    ratio = np.nan_to_num(ratio, nan=np.inf)
    ulp = ulp_distance(va.astype(dtype), vb.astype(dtype), dtype)
    stats.update(max_abs=float(err.max()), max_rel=float(rel.max()), max_ulp=float(ulp.max()),
                 max_ratio=float(ratio.max()))
    if stats["max_ratio"] > 0:
        # The worst element: largest |error| / tolerance, ties broken by ULP distance.
        flat = int(np.lexsort((ulp.ravel(), ratio.ravel()))[-1])
        idx = tuple(int(i) for i in np.unravel_index(flat, err.shape))
        stats["worst"] = Worst("", name, idx, float(a64[idx]), float(b64[idx]), float(err[idx]),
                               float(atol_b[idx]), float(ulp[idx]), float(ratio[idx]))
    if stats["max_ratio"] > 1.0:
        n_bad = int((ratio > 1.0).sum())
        w = stats["worst"]
        stats["failures"].append(
            f"{name}: {n_bad} of {ratio.size} elements outside tolerance; worst at {w.index}: "
            f"{fmt_value(w.a, dtype)} vs {fmt_value(w.b, dtype)}, |diff| {w.abs_err:.3g} > tol "
            f"{w.atol:.3g} ({w.ulp:.0f} ulp)")
    return stats


def _direction_outputs(direction: str, outcome: Outcome) -> tuple[dict[str, Any], dict[str, str]]:
    """The outputs of one direction ("forward" = all forward outputs, else one gradient)."""
    if direction == "forward":
        return outcome.outputs, {k: v for k, v in outcome.registered.items() if k != "*"}
    out = {direction: outcome.outputs[direction]} if direction in outcome.outputs else {}
    reg = {k: v for k, v in outcome.registered.items() if k == direction}
    return out, reg


def compare_pair(item: Item, direction: str, pair: tuple[str, str], oa: Outcome, ob: Outcome,
                 bounds: dict[str, Any], known_ids: Iterable[str]) -> Result:
    """One item x direction x pair of backends."""
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
        s = compare_output(name, va, vb, tol.comparison_atol(bound, bound), item.dtype)
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
        ops: Sequence[str] = OPS, dtypes: Sequence[str] = DTYPES) -> tuple[list[Row],
                                                                            list[Result]]:
    """Run every available backend on every item and compare every pair."""
    live = [b for b in backends if b.available]
    pairs = make_pairs(backends)
    known = registry.ids()
    rows = {(op, d, dt): Row(op, d, dt, {p: Cell(p) for p in pairs})
            for op in ops for d in DIRECTIONS[op] for dt in dtypes}
    results: list[Result] = []
    for item in items:
        arrays = item.inputs()
        a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
        with np.errstate(all="ignore"):
            bounds = {**tol.forward_bounds(item.case, a64, np.dtype(item.dtype)),
                      **tol.backward_bounds(item.case, a64, np.dtype(item.dtype))}
        outcomes: dict[str, tuple[Outcome, Outcome]] = {}
        for b in live:
            outcomes[b.name] = (run_pass(b.module, item.case, arrays, backward=False),
                                run_pass(b.module, item.case, arrays, backward=True))
            if progress:
                progress.advance(f"{item.id} {item.dtype} {b.name}")
        for direction in DIRECTIONS[item.case.op]:
            row = rows[(item.case.op, direction, item.dtype)]
            row.items += 1
            k = 0 if direction == "forward" else 1
            for pair in pairs:
                oa, ob = outcomes[pair[0]][k], outcomes[pair[1]][k]
                r = compare_pair(item, direction, pair, oa, ob, bounds, known)
                results.append(r)
                row.cells[pair].add(r, item, oa.fallback or ob.fallback)
    return list(rows.values()), results


# --------------------------------------------------------------------------------------------
# Reproducers


def reproducer(item: Item, direction: str, output: str, a: Backend, b: Backend,
               index: tuple[int, ...] | None, fallback: bool = False) -> str:
    """Python text (run from the repository root) that recomputes both sides of one element.

    Lines stay within REPRODUCER_WIDTH columns (the case's repr is wrapped inside its
    parentheses), so the text pastes unchanged from a 100-column terminal.
    """
    cls = type(item.case).__name__
    lines = ["import numpy as np"]
    imports = [bk for bk in (a, b) if bk.module_name]
    if len(imports) < 2:
        lines.append("from conformance.backends import load_backend")
    if imports:
        lines.append("import importlib")
    lines.append(f"from conformance.cases import {cls}")
    lines.append(textwrap.fill(f"case = {item.case.describe()}", width=REPRODUCER_WIDTH,
                               subsequent_indent=" " * (len(cls) + 8),
                               break_long_words=False, break_on_hyphens=False))
    if item.source == "fixture" and item.origin:
        lines.append("from conformance import fixture_store as fs")
        lines.append(f"d, name = {item.fixture_dir!r}, {item.origin!r}")
        lines.append("entry = next(e for e in fs.load_manifest(d)['cases'] if e['name'] == name)")
        lines.append("a = fs.load_case(d, entry).inputs()  # the stored golden inputs")
    else:
        lines.append(f"a = case.arrays(np.{item.dtype}, seed={item.seed})")

    def load(bk: Backend) -> str:
        return (f"importlib.import_module({bk.module_name!r})" if bk.module_name
                else f"load_backend({bk.name!r})")

    lines.append(f"A, B = {load(a)}, {load(b)}  # {a.name}, {b.name}")
    if direction == "forward" and fallback and output == "y":
        lines.append("ya = A.max_pool2d(a['x'], **case.params())")
        lines.append("yb = B.max_pool2d(a['x'], **case.params())")
    else:
        call = "forward" if direction == "forward" else "backward"
        lines.append(f"ya, yb = case.{call}(A, a)[{output!r}], case.{call}(B, a)[{output!r}]")
    if index is not None:
        lines.append(f"i = {index!r}")
        lines.append("print(ya[i], yb[i], abs(float(ya[i]) - float(yb[i])))")
    lines.append("print(np.abs(ya.astype(np.float64) - yb).max())")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line


def _split(values: Sequence[str] | None) -> list[str]:
    return [v.strip() for vs in values or [] for v in vs.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m conformance diff",
        description="Compare every op's outputs and gradients across the installed backends.",
        epilog="Exit status: 0 all differences within tolerance or registered, 1 failures, "
               "2 usage error. JSON schema: docs/diff-schema.md.",
    )
    p.add_argument("--cases", type=int, default=DEFAULT_CASES, metavar="N",
                   help=f"fresh configurations sampled per op (default {DEFAULT_CASES})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the sampled configurations (default {DEFAULT_SEED})")
    p.add_argument("--op", action="append", metavar="OP",
                   help=f"op(s) to compare, repeatable or comma-separated: {', '.join(OPS)}")
    p.add_argument("--dtype", action="append", metavar="DTYPE",
                   help="float32 and/or float64 (default both)")
    p.add_argument("--backends", action="append", metavar="NAMES",
                   help="comma-separated: nnref, torch, tensorflow (tf), scipy, or NAME=MODULE "
                        "for any module implementing CONTRACT.md (default all four)")
    p.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), metavar="DIR",
                   help="golden fixture directory to include ('none' to skip)")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    p.add_argument("--plot", metavar="FILE.png", help="write a ULP heatmap (needs matplotlib)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="intra-op threads for torch and TF (default 1: deterministic order)")
    p.add_argument("--worst", type=int, default=3, metavar="K",
                   help="worst cases printed with reproducers (default 3; all go to the files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _usage_error(message: str) -> int:
    print(f"python -m conformance diff: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m conformance diff``; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    ops = [_ALIASES.get(o, o) for o in _split(args.op)] or list(OPS)
    dtypes = [_ALIASES.get(d, d) for d in _split(args.dtype)] or list(DTYPES)
    specs = _split(args.backends) or list(DEFAULT_BACKENDS)
    if bad := [o for o in ops if o not in OPS]:
        return _usage_error(f"unknown op(s) {bad}; expected {', '.join(OPS)}")
    if bad := [d for d in dtypes if d not in DTYPES]:
        return _usage_error(f"unknown dtype(s) {bad}; expected float32, float64")
    names = [_ALIASES.get(s.partition("=")[0], s.partition("=")[0]) for s in specs]
    if bad := [s for s in specs if "=" not in s and _ALIASES.get(s, s) not in DEFAULT_BACKENDS]:
        return _usage_error(f"unknown backend(s) {bad}; expected {', '.join(DEFAULT_BACKENDS)} "
                            "or NAME=MODULE")
    if len(set(names)) != len(names):
        return _usage_error(f"backend names must be unique, got {names}")
    if args.cases < 0:
        return _usage_error("--cases must be >= 0")
    if args.threads < 1:
        return _usage_error("--threads must be >= 1")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return _usage_error("--plot needs matplotlib, which is not installed "
                            "(pip install matplotlib)")
    ops = list(dict.fromkeys(ops))
    dtypes = list(dict.fromkeys(dtypes))
    fixtures = None if args.fixtures.lower() == "none" else Path(args.fixtures)

    from . import diff_report

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.monotonic()
    show = not args.no_progress and sys.stderr.isatty()
    if show:
        sys.stderr.write(f"loading backends {', '.join(specs)} ...\r")
        sys.stderr.flush()
    backends = load_backends(specs)
    threads = set_threads(backends, args.threads)
    items, note = build_items(ops, dtypes, args.cases, args.seed, fixtures)
    live = [b for b in backends if b.available]
    progress = Progress(len(items) * len(live), show)
    rows, results = run(items, backends, progress, ops, dtypes)
    progress.close()
    report = Report(
        settings={"cases": args.cases, "seed": args.seed, "ops": ops, "dtypes": dtypes,
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
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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


def platform_info() -> dict[str, Any]:
    """Where the run happened (for the JSON report)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
