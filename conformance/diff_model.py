"""The data of a ``python -m conformance diff`` run: its op rows, items, backends and results.

Two kinds of rows. In float32 and float64 every backend computes in the case's dtype with the
same error model, so backends are compared pair by pair (:class:`Row` of :class:`Cell`, one per
pair). In float16 and bfloat16 each backend is held to the bound of *its own* declared
arithmetic (float32 or storage-format accumulation, ``conformance.low_precision``), so a
difference between two backends has no common tolerance: each backend is judged on its own
against nnref in float64 on the inputs exactly as stored (:class:`LowPrecisionRow` of
:class:`BackendCell`, one per backend, worst error as a multiple of its bound).

``conformance.diff_run`` fills them in, ``conformance.diff_report`` renders them and
``conformance.diff`` (the command line) ties the two together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import low_precision as lp
from .cases import Case
from .comparison import Worst
from .ops import RECORDS, OpRecord
from .runner import NOT_IMPLEMENTED

# backends compared pair by pair, within the error model of the dtype (the default run)
PAIRWISE: tuple[str, ...] = ("float32", "float64")
# each backend judged against nnref in float64 within the bound of its declared arithmetic
LOW_PRECISION: tuple[str, ...] = ("float16", "bfloat16")
DTYPES: tuple[str, ...] = (*PAIRWISE, *LOW_PRECISION)
DEFAULT_DTYPES: tuple[str, ...] = PAIRWISE


def storage_format(name: str) -> np.dtype:
    """The NumPy dtype of a low-precision format (bfloat16: ml_dtypes'). Raises LookupError
    saying what to install when this installation cannot make it."""
    for dtype in lp.storage_dtypes():
        if dtype.name == name:
            return dtype
    if name in LOW_PRECISION:
        raise LookupError(f"{name} needs ml_dtypes, which is not installed (pip install "
                          "ml_dtypes)")
    raise LookupError(f"{name} is not a low-precision format ({', '.join(LOW_PRECISION)})")


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
    """One case in one dtype with one array seed; ``arrays`` preloaded for fixtures.

    In float16 / bfloat16 the inputs are the case's float32 arrays with x shaped by a value
    regime (``regime``, ``amount``: ``low_precision.shaped``), then rounded to the format."""

    id: str
    source: str  # "sampled" | "fixture"
    case: Case
    dtype: str
    seed: int
    arrays: dict[str, np.ndarray] | None = None
    origin: str = ""  # fixture case name (reproducers load its stored inputs)
    fixture_dir: str = ""
    index: int = -1  # the item's number within its op row and dtype, fixtures first
    regime: str = "as drawn"  # float16 / bfloat16 only
    amount: float = 1.0

    @property
    def low_precision(self) -> bool:
        return self.dtype in LOW_PRECISION

    def inputs(self) -> dict[str, np.ndarray]:
        """Fresh arrays in the item's dtype (a low-precision item's: exactly as stored)."""
        if self.arrays is not None:
            return {k: np.array(v, copy=True) for k, v in self.arrays.items()}
        if self.low_precision:
            a32 = lp.shaped(self.case.arrays(np.float32, self.seed), self.regime, self.amount)
            return lp.rounded_inputs(a32, storage_format(self.dtype))[0]
        return self.case.arrays(np.dtype(self.dtype), self.seed)


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
    # the dtypes it computes in (its registry row's; None: a NAME=MODULE module, asked about all)
    formats: tuple[str, ...] | None = None

    def takes(self, dtype: str) -> bool:
        return self.formats is None or dtype in self.formats

    def runs(self, item: Item) -> bool:
        return (self.available and self.takes(item.dtype)
                and (self.cases is None or item.index < self.cases))

    def accumulation(self, function: str, dtype: str) -> str:
        """The accumulation the module declares for ``function`` in a low-precision format:
        "storage", or "float32" (also when it declares nothing: the contract's default)."""
        return lp.declared_accumulation(self.module, function, storage_format(dtype)) or "float32"

    def departure(self, function: str, dtype: str) -> str:
        """The registry id the module gives for departing from the float32-accumulation
        contract in ``function`` and format (``LOW_PRECISION_DIVERGENCES``), or ""."""
        return str(getattr(self.module, "LOW_PRECISION_DIVERGENCES", {}).get(
            f"{function} {dtype}", ""))

    @property
    def available(self) -> bool:
        return self.status == "available" and self.module is not None

    @property
    def short(self) -> str:
        return {"tensorflow": "tf"}.get(self.name, self.name)


# --------------------------------------------------------------------------------------------
# Results


def _status(failures: Sequence[Any], compared: int, registered: Mapping[str, int]) -> str:
    """A cell's status over its items: any failure fails it; else any comparison makes it
    ok; else a registered divergence; else nothing was compared (n/a)."""
    if failures:
        return "fail"
    if compared:
        return "ok"
    return "registered" if registered else "n/a"


def _count_registered(cell: Cell | BackendCell, ids: Sequence[str]) -> None:
    for i in ids:
        if i == NOT_IMPLEMENTED:
            cell.not_implemented += 1
        else:
            cell.registered[i] = cell.registered.get(i, 0) + 1


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
        _count_registered(self, r.registered)
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
        self.status = _status(self.failures, self.compared, self.registered)


@dataclass
class Row:
    """One op x direction x dtype (float32 / float64): a cell per backend pair."""

    op: str
    direction: str
    dtype: str
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    items: int = 0


# --------------------------------------------------------------------------------------------
# Results in float16 / bfloat16: each backend against nnref in float64 on the stored inputs


@dataclass
class Judgement:
    """One low-precision item x direction x backend: its outputs against nnref in float64 on
    the inputs as stored, each within the bound of the backend's declared arithmetic."""

    item: str
    direction: str
    backend: str
    accumulation: str  # "float32" | "storage"
    status: str  # "ok" | "fail" | "registered" | "n/a"
    registered: tuple[str, ...] = ()
    ratio: float = 0.0  # the largest error as a multiple of its bound
    elements: int = 0
    compared: bool = False
    worst: lp.Assessment | None = None
    failures: tuple[str, ...] = ()


@dataclass
class BackendCell:
    """All items of one low-precision row (op, direction, format) for one backend: its worst
    error as a multiple of the bound of the arithmetic it declares for that function and
    format."""

    backend: str
    accumulation: str = "float32"  # "float32" | "storage"
    departure: str = ""  # the registry id the backend gives for a storage accumulation
    skipped: str = ""  # why the backend does not run this row (its registry row lacks the format)
    status: str = "n/a"  # "ok" | "fail" | "registered" | "n/a"
    compared: int = 0
    registered: dict[str, int] = field(default_factory=dict)
    not_implemented: int = 0
    max_ratio: float = 0.0
    worst: lp.Assessment | None = None
    worst_item: Item | None = None
    worst_fallback: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item id, message)

    def add(self, j: Judgement, item: Item, fallback: bool) -> None:
        _count_registered(self, j.registered)
        self.failures.extend((j.item, f) for f in j.failures)
        self.compared += j.compared
        self.max_ratio = max(self.max_ratio, j.ratio)
        if j.worst is not None and (self.worst is None or j.worst.ratio > self.worst.ratio):
            self.worst, self.worst_item, self.worst_fallback = j.worst, item, fallback
        self.status = _status(self.failures, self.compared, self.registered)


@dataclass
class LowPrecisionRow:
    """One op x direction x low-precision format: a cell per backend."""

    op: str
    direction: str
    dtype: str
    cells: dict[str, BackendCell] = field(default_factory=dict)
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
    low_rows: list[LowPrecisionRow] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)

    @property
    def failures(self) -> list[tuple[Row | LowPrecisionRow, Cell | BackendCell, str, str]]:
        """(row, cell, item id, message) of every failure: the pairwise rows, then the
        low-precision ones."""
        rows: list[Row | LowPrecisionRow] = [*self.rows, *self.low_rows]
        return [(row, cell, item, msg) for row in rows for cell in row.cells.values()
                for item, msg in cell.failures]

    @property
    def ok(self) -> bool:
        return not self.failures
