"""The data of a ``python -m conformance diff`` run: its op rows, items, backends and results.

``conformance.diff_run`` fills them in, ``conformance.diff_report`` renders them and
``conformance.diff`` (the command line) ties the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cases import Case
from .comparison import Worst
from .ops import RECORDS, OpRecord
from .runner import NOT_IMPLEMENTED

DTYPES: tuple[str, ...] = ("float32", "float64")


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


# --------------------------------------------------------------------------------------------
# Results


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
