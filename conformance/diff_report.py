"""Rendering of a ``conformance.diff`` report (``conformance.diff_model``): terminal table, JSON,
Markdown, heatmap PNG.

float32 / float64 rows have a column per backend pair (largest ULP distance, within the common
tolerance or not); float16 / bfloat16 rows a column per backend (its worst error as a multiple of
the bound of its own declared arithmetic, against nnref in float64 on the stored inputs), in a
table of their own. The heatmap draws the pairs only.
"""

from __future__ import annotations

import json
import math
import os
import platform
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import low_precision as lp
from . import registry
from .comparison import Worst, fmt_value
from .diff_model import (
    Backend,
    BackendCell,
    Cell,
    Item,
    Judgement,
    LowPrecisionRow,
    Report,
    Result,
    Row,
    storage_format,
)

SCHEMA = "nnref-diff/3"
REPRODUCER_WIDTH = 94

def reproducer(item: Item, direction: str, output: str, a: Backend, b: Backend,
               index: tuple[int, ...] | None, fallback: bool = False) -> str:
    """Python text (run from the repository root) that recomputes both sides of one element.

    Lines stay within REPRODUCER_WIDTH columns (the case's repr is wrapped inside its
    parentheses), so the text pastes unchanged from a 100-column terminal.
    """
    lines = ["import numpy as np", *_loader_imports((a, b)), *_case_lines(item)]
    lines.append(f"A, B = {_load(a)}, {_load(b)}  # {a.name}, {b.name}")
    if direction == "forward" and fallback:
        lines.append("case = case.values_only()  # one backend offers the values only")
    call = "forward" if direction == "forward" else "backward"
    lines.append(f"ya, yb = case.{call}(A, a)[{output!r}], case.{call}(B, a)[{output!r}]")
    if index is not None:
        lines.append(f"i = {index!r}")
        lines.append("print(ya[i], yb[i], abs(float(ya[i]) - float(yb[i])))")
    lines.append("print(np.abs(ya.astype(np.float64) - yb).max())")
    return "\n".join(lines)



def _loader_imports(backends: tuple[Backend, ...]) -> list[str]:
    """The imports :func:`_load` needs for these backends."""
    imports = [bk for bk in backends if bk.module_name]
    return ([] if len(imports) == len(backends) else
            ["from conformance.backends import load_backend"]) + (
        ["import importlib"] if imports else [])


def _load(bk: Backend) -> str:
    return (f"importlib.import_module({bk.module_name!r})" if bk.module_name
            else f"load_backend({bk.name!r})")


def _case_lines(item: Item) -> list[str]:
    """Reproducer lines that rebuild the item's case and its inputs ``a`` in its dtype: the
    stored fixture inputs, or the sampled arrays (in float16 / bfloat16: float32 arrays shaped
    by the item's value regime and rounded to the format, as ``low_precision`` does)."""
    cls = type(item.case).__name__
    lines = [f"from {type(item.case).__module__} import {cls}",
             textwrap.fill(f"case = {item.case.describe()}", width=REPRODUCER_WIDTH,
                           subsequent_indent=" " * (len(cls) + 8),
                           break_long_words=False, break_on_hyphens=False)]
    if item.source == "fixture" and item.origin:
        lines.append("from conformance import fixture_store as fs")
        lines.append(f"d, name = {item.fixture_dir!r}, {item.origin!r}")
        lines.append("entry = next(e for e in fs.load_manifest(d)['cases'] if e['name'] == name)")
        lines.append("a = fs.load_case(d, entry).inputs()  # the stored golden inputs")
    elif item.low_precision:
        lines.append(f"a = case.arrays(np.float32, seed={item.seed})")
        lines += lp.planting_code(storage_format(item.dtype), item.regime,
                                  item.amount).splitlines()
    else:
        lines.append(f"a = case.arrays(np.{item.dtype}, seed={item.seed})")
    return lines


def low_precision_reproducer(item: Item, direction: str, output: str, bk: Backend,
                             accumulation: str, index: tuple[int, ...] | None,
                             fallback: bool = False) -> str:
    """Python text (run from the repository root) that recomputes one backend's output in
    float16 / bfloat16, nnref's in float64 on the same stored inputs, and the bound of the
    backend's arithmetic: the worst element, then the largest error / bound."""
    call = "forward" if direction == "forward" else "backward"
    lines = ["import numpy as np", "import nnref", "from conformance import low_precision as lp",
             *_loader_imports((bk,)), *_case_lines(item),
             "a64 = {k: v.astype(np.float64) for k, v in a.items()}  # the same values, exactly",
             f"B = {_load(bk)}  # {bk.name}"]
    if direction == "forward" and fallback:
        lines.append("case = case.values_only()  # the backend offers the values only")
    lines.append(f"got = case.{call}(B, a)[{output!r}]")
    lines.append(f"want = case.{call}(nnref, a64)[{output!r}]  # nnref in float64: expected")
    if output == "indices":
        lines.append("print(np.array_equal(got, want))  # indices: exactly equal")
        return "\n".join(lines)
    lines.append(f"arithmetic = lp.Arithmetic(a['x'].dtype, {accumulation!r})  # "
                 f"{accumulation} accumulation")
    lines.append(f"bound = lp.allowed(case, a64, {call!r}, arithmetic, "
                 f"{{{output!r}: want}})[{output!r}]")
    if index is not None:
        lines.append(f"i = {index!r}")
        lines.append("print(got[i], want[i], abs(float(got[i]) - want[i]), bound[i])")
    lines.append("print(np.nanmax(np.abs(got.astype(np.float64) - want) / bound))  # <= 1: "
                 "within")
    return "\n".join(lines)


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


WIDTH = 100
_DTYPE_SHORT = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}
# Environment variables that change framework numerics or threading; recorded in the JSON.
NUMERIC_ENV = ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "TF_CPP_MIN_LOG_LEVEL", "NNREF_IMPL")


# --------------------------------------------------------------------------------------------
# shared helpers


def fmt_ulp(v: float) -> str:
    """Compact ULP count: 0, 12, 3.4k, 5.6M, 7.8G, 1.2e+13, inf."""
    if math.isinf(v) or math.isnan(v):
        return "inf"
    if v < 1000:
        return f"{v:.0f}"
    for div, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
        if v < div * 999.5:
            return f"{v / div:.3g}{unit}"
    return f"{v:.1e}"


# column labels: 21 pairs of seven backends must fit a wide terminal
SHORT_NAMES = {"tensorflow": "tf", "onnx-ref": "oref", "onnxruntime": "ort"}


def _short(name: str) -> str:
    return SHORT_NAMES.get(name, name)


def pair_label(pair: tuple[str, str]) -> str:
    return f"{_short(pair[0])}/{_short(pair[1])}"


def fmt_ratio(v: float) -> str:
    """An error as a multiple of its bound: 0.00, 0.61, 3.40, 13, 1.2k, inf."""
    if math.isinf(v) or math.isnan(v):
        return "inf"
    return f"{v:.2f}" if v < 10 else fmt_ulp(v)


def registered_ids(report: Report) -> list[str]:
    """Registered ids in order of first appearance (footnote numbers R1, R2, ...): those of
    the pairwise rows, then the low-precision rows' (refusals, and the divergence a backend
    gives for accumulating in the storage format)."""
    seen: dict[str, None] = {}
    for row in report.rows:
        for cell in row.cells.values():
            for i in cell.registered:
                seen.setdefault(i, None)
    for low in report.low_rows:
        for bc in low.cells.values():
            for i in (*bc.registered, *([bc.departure] if bc.departure else [])):
                seen.setdefault(i, None)
    return list(seen)


def cell_text(cell: Cell, footnotes: list[str]) -> str:
    """'12 ok', '3.4k FAIL', 'reg R1', '0 ok R2', 'n/a'."""
    marks = " ".join(f"R{footnotes.index(i) + 1}" for i in cell.registered)
    if cell.status == "fail":
        text = f"{fmt_ulp(cell.max_ulp)} FAIL" if cell.compared else "FAIL"
    elif cell.status == "ok":
        text = f"{fmt_ulp(cell.max_ulp)} ok"
    elif cell.status == "registered":
        text = "reg"
    else:
        return "n/a"
    return f"{text} {marks}".strip()


def backend_cell_text(cell: BackendCell, footnotes: list[str]) -> str:
    """A low-precision cell: '0.61 ok', '13 FAIL', '0.30 ok S R4' (S: held to the
    storage-accumulation bound it declares, R4 the registered reason), 'reg R2', 'n/a'."""
    marks = " ".join(f"R{footnotes.index(i) + 1}" for i in (
        *([cell.departure] if cell.departure else []), *cell.registered))
    storage = " S" if cell.accumulation == "storage" else ""
    if cell.status == "fail":
        text = f"{fmt_ratio(cell.max_ratio)} FAIL{storage}" if cell.compared else "FAIL"
    elif cell.status == "ok":
        text = f"{fmt_ratio(cell.max_ratio)} ok{storage}"
    elif cell.status == "registered":
        return f"reg {' '.join(f'R{footnotes.index(i) + 1}' for i in cell.registered)}"
    else:
        return "n/a"
    return f"{text} {marks}".strip()


def _summary_counts(report: Report, low_precision: bool = False) -> dict[str, int]:
    """Cells per status: of the pairwise rows, or of the low-precision rows."""
    counts = {"ok": 0, "fail": 0, "registered": 0, "n/a": 0}
    rows: list[Row] | list[LowPrecisionRow] = report.low_rows if low_precision else report.rows
    for row in rows:
        for cell in row.cells.values():
            counts[cell.status] += 1
    return counts


def _live(report: Report) -> list[Backend]:
    return [b for b in report.backends if b.available]


def _backend_line(backends: list[Backend]) -> str:
    live = [f"{b.name} {b.version}" + (f" (first {b.cases} cases per row)"
                                       if b.cases is not None else "")
            for b in backends if b.available]
    absent = [b.name for b in backends if not b.available]
    return (f"backends: {', '.join(live) or 'none'}; "
            f"absent: {', '.join(absent) if absent else 'none'}")


def worst_cells(report: Report, limit: int | None = None,
                failing_first: bool = True) -> list[tuple[Row, Cell, list[tuple[str, str]]]]:
    """Cells with a worst element, worst first; cells sharing it (same case, output, element)
    are merged, the other pairs listed."""
    cells = [(row, cell) for row in report.rows for cell in row.cells.values()
             if cell.worst is not None]
    cells.sort(key=lambda rc: (failing_first and rc[1].status == "fail", rc[1].worst.ratio,
                               rc[1].worst.ulp), reverse=True)
    out: list[tuple[Row, Cell, list[tuple[str, str]]]] = []
    keys: dict[tuple, int] = {}
    for row, cell in cells:
        w = cell.worst
        assert w is not None
        a_name, b_name = cell.pair
        shared = {a_name, b_name}
        key = (row.op, row.direction, row.dtype, w.item, w.output, w.index)
        if key in keys:
            first = out[keys[key]]
            if set(first[1].pair) & shared:
                first[2].append(cell.pair)
                continue
        keys.setdefault(key, len(out))
        out.append((row, cell, []))
    return out[:limit] if limit is not None else out


def worst_backend_cells(report: Report, limit: int | None = None
                        ) -> list[tuple[LowPrecisionRow, BackendCell, list[str]]]:
    """Low-precision cells with a worst element, failing first, then by error / bound; cells
    whose worst element is the same (case, output, element, value and arithmetic: backends
    returning the same bits) are merged, the other backends listed."""
    cells = [(row, cell) for row in report.low_rows for cell in row.cells.values()
             if cell.worst is not None]
    cells.sort(key=lambda rc: (rc[1].status == "fail", rc[1].worst.ratio), reverse=True)
    out: list[tuple[LowPrecisionRow, BackendCell, list[str]]] = []
    keys: dict[tuple, int] = {}
    for row, cell in cells:
        w, item = cell.worst, cell.worst_item
        assert w is not None and item is not None
        key = (row.op, row.direction, row.dtype, item.id, item.source, w.output, w.index,
               w.got, w.problem, cell.accumulation, cell.status)
        if key in keys:
            out[keys[key]][2].append(cell.backend)
            continue
        keys[key] = len(out)
        out.append((row, cell, []))
    return out[:limit] if limit is not None else out


def _backend(report: Report, name: str) -> Backend:
    return next(b for b in report.backends if b.name == name)


def backend_cell_reproducer(report: Report, row: LowPrecisionRow, cell: BackendCell) -> str:
    w, item = cell.worst, cell.worst_item
    assert w is not None and item is not None
    return low_precision_reproducer(item, row.direction, w.output, _backend(report, cell.backend),
                                    cell.accumulation, w.index, cell.worst_fallback)


def arithmetic_text(cell: BackendCell, dtype: str) -> str:
    """'bfloat16 storage, float32 accumulation', with the registered reason of a storage one."""
    text = lp.Arithmetic(storage_format(dtype), cell.accumulation).describe()
    return f"{text}, {cell.departure}" if cell.departure else text


def _low_worst_line(cell: BackendCell, dtype: str) -> str:
    w = cell.worst
    assert w is not None
    name = _short(cell.backend)
    if w.index is None:
        return f"{w.output}: {w.problem}"
    idx = ", ".join(str(i) for i in w.index)
    if w.exact:
        return f"{w.output}[{idx}]: {name} {w.got:g} vs nnref {w.expected:g} (exact output)"
    return (f"{w.output}[{idx}]: {name} {fmt_value(w.got, dtype)} vs {w.expected!r} (nnref in "
            f"float64), |error| {w.error:.3g} = {fmt_ratio(w.ratio)} x its bound {w.bound:.3g}")


def cell_reproducer(report: Report, cell: Cell) -> str:
    w, item = cell.worst, cell.worst_item
    assert w is not None and item is not None
    row_direction = "forward" if w.output in ("y", "indices", "running_mean",
                                              "running_var") else w.output
    return reproducer(item, row_direction, w.output, _backend(report, cell.pair[0]),
                      _backend(report, cell.pair[1]), w.index, cell.worst_fallback)


def _item_text(item: Item) -> str:
    seed = f", seed {item.seed}" if item.seed >= 0 else ""
    return f"{item.id} ({item.source}, {item.dtype}{seed}{_regime_text(item)}): " \
           f"{item.case.describe()}"


def _regime_text(item: Item) -> str:
    """', x + 4.0 (offset)' for a low-precision item whose x was shaped, else ''."""
    if not item.low_precision or item.regime == "as drawn":
        return ""
    op = "+" if item.regime == "offset" else "*"
    return f", x {op} {item.amount:g} ({item.regime})"


def _worst_line(cell: Cell) -> str:
    w = cell.worst
    assert w is not None
    a, b = cell.pair
    idx = ", ".join(str(i) for i in w.index)
    ulp = "" if math.isnan(w.ulp) else f", {fmt_ulp(w.ulp)} ulp"
    dt = cell.worst_item.dtype if cell.worst_item is not None else ""
    return (f"{w.output}[{idx}]: {_short(a)} {fmt_value(w.a, dt)} vs {_short(b)} "
            f"{fmt_value(w.b, dt)}, "
            f"|diff| {w.abs_err:.3g}{ulp} ({tolerance_use(w.ratio)} tolerance {w.atol:.3g})")


def tolerance_use(ratio: float) -> str:
    """'12% of', '3.4x', 'beyond' (|diff| / tolerance, as words)."""
    if math.isinf(ratio) or math.isnan(ratio):
        return "beyond"
    return f"{100 * ratio:.3g}% of" if ratio <= 1 else f"{ratio:.3g}x"


# --------------------------------------------------------------------------------------------
# terminal


def render_table(report: Report) -> list[str]:
    footnotes = registered_ids(report)
    pairs = report.pairs
    op_w = max([10, *(len(row.op) for row in report.rows)])
    label_w = op_w + 12  # op, direction (7), dtype (3) and their separators
    # at least one space before the longest pair label, even when that passes the width
    cell_w = max(10, 1 + max((len(pair_label(p)) for p in pairs), default=0),
                 min(13, (WIDTH - label_w) // max(len(pairs), 1)))
    lines = [f"{'op':<{op_w}} {'dir':<7} {'dt':<3}" + "".join(
        f"{pair_label(p):>{cell_w}}" for p in pairs)]
    lines.append("-" * min(WIDTH, len(lines[0])))
    previous = None
    for row in report.rows:
        if previous is not None and row.op != previous:
            lines.append("")
        previous = row.op
        text = (f"{row.op:<{op_w}} {row.direction:<7} "
                f"{_DTYPE_SHORT.get(row.dtype, row.dtype):<3}")
        for p in pairs:
            text += f"{cell_text(row.cells[p], footnotes):>{cell_w}}"
        lines.append(text)
    return lines


def _wrap(text: str, indent: int = 0, hanging: int = 2) -> list[str]:
    """Prose wrapped to the terminal width (never inside a word)."""
    return textwrap.wrap(text, width=WIDTH, initial_indent=" " * indent,
                         subsequent_indent=" " * (indent + hanging), break_long_words=False,
                         break_on_hyphens=False) or [""]


def render_low_table(report: Report) -> list[str]:
    """The float16 / bfloat16 rows: a column per backend, its worst error / own bound."""
    footnotes = registered_ids(report)
    names = [b.name for b in _live(report)]
    op_w = max([10, *(len(row.op) for row in report.low_rows)])
    texts = {(row.op, row.direction, row.dtype, n): backend_cell_text(row.cells[n], footnotes)
             for row in report.low_rows for n in names}
    # every cell at least one space from its neighbour, even when that passes the width
    cell_w = 1 + max([9, *(len(_short(n)) for n in names), *(len(t) for t in texts.values())])
    lines = [f"{'op':<{op_w}} {'dir':<7} {'dt':<4}" + "".join(
        f"{_short(n):>{cell_w}}" for n in names)]
    lines.append("-" * min(WIDTH, len(lines[0])))
    previous = None
    for row in report.low_rows:
        if previous is not None and row.op != previous:
            lines.append("")
        previous = row.op
        lines.append(f"{row.op:<{op_w}} {row.direction:<7} "
                     f"{_DTYPE_SHORT.get(row.dtype, row.dtype):<4}" + "".join(
                         f"{texts[(row.op, row.direction, row.dtype, n)]:>{cell_w}}"
                         for n in names))
    return lines


def _sections(report: Report) -> list[tuple[list[str], str, str]]:
    """(table, legend, counts) of the pairwise rows and of the low-precision rows present."""
    out = []
    shown = sorted({b.name for b in _live(report)} & set(SHORT_NAMES))
    columns = "; ".join(f"{_short(n)} = {n}" for n in shown)
    names = f"{'; ' + columns if columns else ''}"
    if report.rows and report.pairs:
        c = _summary_counts(report)
        out.append((render_table(report),
                    "cell: largest ULP distance over all cases; ok = every element within its "
                    "error-model tolerance; FAIL = beyond it; reg = not expressible by a backend "
                    f"(registered divergence){names}",
                    f"{c['ok']} ok, {c['registered']} registered, {c['fail']} FAIL, {c['n/a']} "
                    f"n/a ({len(report.rows)} rows x {len(report.pairs)} pairs)"))
    if report.low_rows and _live(report):
        c = _summary_counts(report, low_precision=True)
        table = render_low_table(report)
        heading = ("float16 / bfloat16: each backend against nnref in float64 on the inputs as "
                   "stored, within the bound of its own arithmetic")
        out.append(([*_wrap(heading, hanging=0), "", *table],
                    "cell: largest |error| over all cases as a multiple of the backend's own "
                    "bound, the bound of the accumulation it declares for that function and "
                    "format (CONFORMANCE_ACCUMULATION): float32, or S = the storage format; ok "
                    "= within it (<= 1); FAIL = beyond it; reg = not expressible by the backend "
                    "(registered divergence); n/a = its registry row lists no such format, or "
                    "it lacks the function; x is shaped by the value regimes in turn (as drawn, "
                    f"offset, near zero, saturating) before rounding{names}",
                    f"{c['ok']} ok, {c['registered']} registered, {c['fail']} FAIL, {c['n/a']} "
                    f"n/a ({len(report.low_rows)} rows x {len(_live(report))} backends)"))
    return out


def render_text(report: Report, worst: int = 3) -> str:
    """The terminal report: header, tables, legends, worst cases with reproducers, failures."""
    s = report.settings
    n_fixture = sum(1 for i in report.items if i.source == "fixture")
    out = [
        *_wrap(f"nnref diff ({SCHEMA}): {', '.join(s['ops'])} x {', '.join(s['dtypes'])}; "
               f"{s['cases']} sampled case(s) per op (seed {s['seed']}) + {n_fixture} fixture "
               f"item(s); {report.elapsed:.1f} s"),
        *_wrap(_backend_line(report.backends)),
        *_wrap(f"fixtures: {report.fixtures_note}"),
    ]
    for b in report.backends:
        if not b.available:
            out += _wrap(f"absent {b.name}: {b.reason}", indent=2)
    if report.rows and len(report.pairs) == 0:
        out.append("fewer than two backends available: nothing to compare")
        if not report.low_rows:
            return "\n".join(out)
    sections = _sections(report)
    footnotes = registered_ids(report)
    # one table: its legend leads into the footnotes; two: the footnotes follow both
    for table, legend, counts in sections:
        out += ["", *table, ""]
        out += _wrap(legend + (":" if len(sections) == 1 else "."), hanging=0)
        if len(sections) == 1:
            out += _footnote_lines(footnotes)
        out.append(counts)
    if len(sections) > 1 and footnotes:
        out += ["", "registered divergences (R<n> in the tables):", *_footnote_lines(footnotes)]
    chosen = worst_cells(report, worst)
    if chosen:
        out += ["", *_wrap(f"WORST CASES (largest |diff| / tolerance; {len(chosen)} shown, "
                           "all in --json / --markdown)")]
    for n, (row, cell, also) in enumerate(chosen, 1):
        assert cell.worst_item is not None
        status = "FAIL" if cell.status == "fail" else "within tolerance"
        extra = f" (same element also: {', '.join(pair_label(p) for p in also)})" if also else ""
        out += _wrap(f"{n}. {row.op} {row.direction} {row.dtype}, {pair_label(cell.pair)}: "
                     f"{status}{extra}", hanging=3)
        out += _wrap(f"case {_item_text(cell.worst_item)}", indent=3)
        out += _wrap(_worst_line(cell), indent=3)
        out += _wrap(f"over {cell.compared} case(s): max |diff| {cell.max_abs:.3g}, max rel "
                     f"{cell.max_rel:.3g}, max {fmt_ulp(cell.max_ulp)} ulp", indent=3)
        out.append("   reproducer:")
        out += [f"     {line}" for line in cell_reproducer(report, cell).splitlines()]
    low = worst_backend_cells(report, worst)
    if low:
        out += ["", *_wrap(f"WORST FLOAT16 / BFLOAT16 CASES (largest error / own bound; "
                           f"{len(low)} shown, all in --json / --markdown)")]
    for n, (row, bc, also) in enumerate(low, 1):
        assert bc.worst_item is not None
        status = "FAIL" if bc.status == "fail" else "within its bound"
        extra = f" (same element and value also: {', '.join(also)})" if also else ""
        out += _wrap(f"{n}. {row.op} {row.direction} {row.dtype}, {bc.backend}: {status} "
                     f"({fmt_ratio(bc.max_ratio)} x the bound of "
                     f"{arithmetic_text(bc, row.dtype)}){extra}", hanging=3)
        out += _wrap(f"case {_item_text(bc.worst_item)}", indent=3)
        out += _wrap(_low_worst_line(bc, row.dtype), indent=3)
        out.append("   reproducer:")
        out += [f"     {line}" for line in backend_cell_reproducer(report, row, bc).splitlines()]
    failures = failure_lines(report)
    judged = " or errors beyond their bound" if report.low_rows else ""
    if failures:
        out += ["", f"FAILURES ({len(failures)}):"]
        for line in failures:
            out += _wrap(line, indent=2, hanging=4)
        out += ["", *_wrap(f"exit status 1: differences beyond tolerance{judged} that are "
                           "not registered")]
    elif report.low_rows:
        out += ["", *_wrap("exit status 0: every difference is within tolerance, every float16 "
                           "/ bfloat16 error within its bound, or registered")]
    else:
        out += ["", "exit status 0: every difference is within tolerance or registered"]
    return "\n".join(out)


def _footnote_lines(footnotes: list[str]) -> list[str]:
    return [line for k, i in enumerate(footnotes, 1)
            for line in _wrap(f"R{k} {i}: {_registry_handling(i)}", indent=2, hanging=4)]


def column_label(cell: Cell | BackendCell) -> str:
    """A cell's column: the backend pair ('nnref/torch') or the backend ('torch')."""
    return pair_label(cell.pair) if isinstance(cell, Cell) else _short(cell.backend)


def failure_lines(report: Report) -> list[str]:
    return [f"{row.op} {row.direction} {row.dtype} {column_label(cell)} [{item}] {msg}"
            for row, cell, item, msg in report.failures]


def _registry_handling(divergence_id: str) -> str:
    try:
        d = registry.get(divergence_id)
    except KeyError:
        return "NOT IN THE REGISTRY"
    return d.condition


# --------------------------------------------------------------------------------------------
# JSON


def _num(v: float | None) -> float | str | None:
    """JSON-safe float: non-finite values become the strings 'inf', '-inf', 'nan'."""
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _worst_json(w: Worst | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {"case": w.item, "output": w.output, "index": list(w.index), "a": _num(w.a),
            "b": _num(w.b), "abs_err": _num(w.abs_err), "tolerance": _num(w.atol),
            "ulp": _num(w.ulp), "tol_ratio": _num(w.ratio)}


COMPARISON_COLUMNS = (
    "case", "direction", "a", "b", "status", "max_abs_err", "max_rel_err", "max_ulp",
    "max_tol_ratio", "index_mismatches", "elements", "worst_output", "worst_index", "worst_a",
    "worst_b", "registered", "failures",
)


def _g(v: float) -> float | str | None:
    """A statistic to 6 significant digits (JSON-safe)."""
    out = _num(v)
    return float(f"{out:.6g}") if isinstance(out, float) else out


def _comparison_row(r: Result) -> list[Any]:
    w = r.worst
    return [r.item, r.direction, r.pair[0], r.pair[1], r.status, _g(r.max_abs), _g(r.max_rel),
            _g(r.max_ulp), _g(r.max_ratio), r.index_mismatches, r.elements,
            w.output if w else None, list(w.index) if w else None, _num(w.a) if w else None,
            _num(w.b) if w else None, list(r.registered), list(r.failures)]


JUDGEMENT_COLUMNS = (
    "case", "direction", "backend", "accumulation", "status", "max_bound_ratio", "elements",
    "worst_output", "worst_index", "worst_got", "worst_expected", "worst_bound", "registered",
    "failures",
)


def _judgement_row(j: Judgement) -> list[Any]:
    w = j.worst
    located = w is not None and w.index is not None
    return [j.item, j.direction, j.backend, j.accumulation, j.status, _g(j.ratio), j.elements,
            w.output if w else None, list(w.index) if located else None,
            _num(w.got) if located else None, _num(w.expected) if located else None,
            _num(w.bound) if located else None, list(j.registered), list(j.failures)]


def _assessment_json(w: lp.Assessment | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {"output": w.output, "index": None if w.index is None else list(w.index),
            "got": _num(w.got), "expected": _num(w.expected), "abs_err": _num(w.error),
            "bound": _num(w.bound), "bound_ratio": _num(w.ratio)}


def _low_precision_json(report: Report, footnotes: list[str]) -> dict[str, Any]:
    """The float16 / bfloat16 rows: a cell per backend (docs/diff-schema.md)."""
    rows = []
    for row in report.low_rows:
        cells = []
        for bc in row.cells.values():
            worst = _assessment_json(bc.worst)
            if worst is not None and bc.worst_item is not None:
                worst = {"case": bc.worst_item.id, **worst}
            cells.append({
                "backend": bc.backend, "status": bc.status,
                "text": backend_cell_text(bc, footnotes),
                "accumulation": bc.accumulation, "arithmetic": arithmetic_text(bc, row.dtype),
                "departure": bc.departure or None, "skipped": bc.skipped or None,
                "cases_judged": bc.compared, "registered": dict(bc.registered),
                "not_implemented": bc.not_implemented, "max_bound_ratio": _num(bc.max_ratio),
                "worst": worst,
                "reproducer": (backend_cell_reproducer(report, row, bc) if bc.worst else None),
                "failures": [{"case": i, "message": m} for i, m in bc.failures],
            })
        rows.append({"op": row.op, "direction": row.direction, "dtype": row.dtype,
                     "cases": row.items, "cells": cells})
    return {
        "reference": "nnref in float64 on the inputs as stored in the format",
        "rows": rows,
        "judgements": {"columns": list(JUDGEMENT_COLUMNS),
                       "rows": [_judgement_row(j) for j in report.judgements
                                if j.status in ("ok", "fail")]},
    }


def to_json(report: Report) -> dict[str, Any]:
    """The report as a ``nnref-diff/3`` document (docs/diff-schema.md)."""
    footnotes = registered_ids(report)
    rows = []
    for row in report.rows:
        cells = []
        for cell in row.cells.values():
            entry = {
                "pair": list(cell.pair), "status": cell.status, "text": cell_text(cell, footnotes),
                "cases_compared": cell.compared, "registered": dict(cell.registered),
                "not_implemented": cell.not_implemented, "max_abs_err": _num(cell.max_abs),
                "max_rel_err": _num(cell.max_rel), "max_ulp": _num(cell.max_ulp),
                "max_tol_ratio": _num(cell.max_ratio),
                "index_mismatches": cell.index_mismatches, "worst": _worst_json(cell.worst),
                "reproducer": cell_reproducer(report, cell) if cell.worst else None,
                "failures": [{"case": i, "message": m} for i, m in cell.failures],
            }
            cells.append(entry)
        rows.append({"op": row.op, "direction": row.direction, "dtype": row.dtype,
                     "cases": row.items, "cells": cells})
    c = _summary_counts(report)
    return {
        "schema": SCHEMA,
        "created": report.started,
        "elapsed_s": round(report.elapsed, 3),
        "command": report.settings.get("argv"),
        "settings": {k: v for k, v in report.settings.items() if k != "argv"},
        "platform": platform_info(),
        "environment": {k: os.environ[k] for k in NUMERIC_ENV if k in os.environ},
        "backends": [{"name": b.name, "status": b.status, "version": b.version or None,
                      "cases_per_row": b.cases,
                      "module": b.module_name or getattr(b.module, "__name__", None),
                      "reason": b.reason or None} for b in report.backends],
        "pairs": [list(p) for p in report.pairs],
        "fixtures": report.fixtures_note,
        "registered": [{"id": i, "condition": _registry_handling(i)} for i in footnotes],
        "cases": [{"id": i.id, "source": i.source, "op": i.case.label, "dtype": i.dtype,
                   "seed": i.seed, "params": i.case.to_dict(), "origin": i.origin or None,
                   "values": ({"regime": i.regime, "amount": i.amount} if i.low_precision
                              else None)}
                  for i in report.items],
        "rows": rows,
        "comparisons": {"columns": list(COMPARISON_COLUMNS),
                        "rows": [_comparison_row(r) for r in report.results
                                 if r.status in ("ok", "fail")]},
        "low_precision": _low_precision_json(report, footnotes),
        "summary": {"status": "pass" if report.ok else "fail", "exit_status": 0 if report.ok
                    else 1, "cells": c,
                    "low_precision_cells": _summary_counts(report, low_precision=True),
                    "failures": len(report.failures)},
    }


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(to_json(report), separators=(",", ":"), allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------------
# Markdown


def render_markdown(report: Report) -> str:
    s = report.settings
    footnotes = registered_ids(report)
    n_fixture = sum(1 for i in report.items if i.source == "fixture")
    out = [
        "# nnref diff: outputs across frameworks", "",
        f"`{' '.join(s.get('argv') or [])}` — {report.started}, {report.elapsed:.1f} s, "
        f"schema `{SCHEMA}`", "",
        f"- ops: {', '.join(s['ops'])}; dtypes: {', '.join(s['dtypes'])}",
        f"- cases: {s['cases']} sampled per op (seed {s['seed']}) + {n_fixture} fixture "
        f"item(s)" + ("" if n_fixture else f" ({report.fixtures_note})"),
        f"- {_backend_line(report.backends)}", "",
        "| backend | status | version | cases per row |", "|---|---|---|---|",
        *[f"| {b.name} | {b.status} | {b.version or b.reason} | "
          f"{'all' if b.cases is None else b.cases} |" for b in report.backends], "",
    ]
    if report.rows:
        out += [
            "## Largest ULP distance per op / direction / dtype and backend pair", "",
            "`ok`: every element within its error-model tolerance; `FAIL`: beyond it; "
            "`reg` / `R<n>`: not expressible by a backend, registered in `divergences.toml`.", "",
        ]
    if report.rows and report.pairs:
        out.append("| op | direction | dtype | " + " | ".join(pair_label(p) for p in report.pairs)
                   + " |")
        out.append("|---|---|---|" + "---:|" * len(report.pairs))
        for row in report.rows:
            cells = [cell_text(row.cells[p], footnotes).replace("FAIL", "**FAIL**")
                     for p in report.pairs]
            out.append(f"| {row.op} | {row.direction} | {row.dtype} | " + " | ".join(cells)
                       + " |")
        out.append("")
    live = [b.name for b in _live(report)]
    if report.low_rows:
        out += [
            "## float16 / bfloat16: worst error / own bound per op / direction / format and "
            "backend", "",
            "Each backend against nnref in float64 on the inputs exactly as stored (x shaped by "
            "the value regimes in turn: as drawn, offset, near zero, saturating), its largest "
            "|error| as a multiple of the bound of the accumulation it declares for that "
            "function and format: float32, or `S` the storage format. Backends are not "
            "compared with each other: their arithmetics differ. `ok`: within (<= 1); `FAIL`: "
            "beyond; `reg` / `R<n>`: registered in `divergences.toml` (after `S`: why it "
            "accumulates in the storage format); `n/a`: its registry row lists no such format "
            "or it lacks the function.", "",
        ]
    if report.low_rows and live:
        out.append("| op | direction | dtype | " + " | ".join(live) + " |")
        out.append("|---|---|---|" + "---:|" * len(live))
        for low in report.low_rows:
            cells = [backend_cell_text(low.cells[n], footnotes).replace("FAIL", "**FAIL**")
                     for n in live]
            out.append(f"| {low.op} | {low.direction} | {low.dtype} | " + " | ".join(cells)
                       + " |")
        out.append("")
    for n, i in enumerate(footnotes, 1):
        out.append(f"- **R{n}** `{i}`: {_registry_handling(i)}")
    counts = [_summary_counts(report)]
    if report.low_rows:
        counts.append(_summary_counts(report, low_precision=True))
    c = {k: sum(n[k] for n in counts) for k in counts[0]}
    out += ["", f"**{'PASS' if report.ok else 'FAIL'}**: {c['ok']} ok, {c['registered']} "
                f"registered, {c['fail']} failing, {c['n/a']} n/a cells.", ""]
    if report.failures:
        out += ["## Failures", ""]
        out += [f"- {line}" for line in failure_lines(report)]
        out.append("")
    if report.rows:
        out += ["## Worst element of every cell", "",
                "Sorted by |diff| / tolerance (failures first). Each reproducer runs from the "
                "repository root.", ""]
    for row, cell, also in worst_cells(report):
        assert cell.worst_item is not None
        extra = f" (same element: {', '.join(pair_label(p) for p in also)})" if also else ""
        out += [
            f"### {row.op} {row.direction} {row.dtype} — {pair_label(cell.pair)}: "
            f"{cell.status.upper()}{extra}", "",
            f"- case `{cell.worst_item.id}`: `{cell.worst_item.case.describe()}`",
            f"- {_worst_line(cell)}",
            f"- over {cell.compared} case(s): max abs {cell.max_abs:.3g}, max rel "
            f"{cell.max_rel:.3g}, max {fmt_ulp(cell.max_ulp)} ulp", "",
            "```python", cell_reproducer(report, cell), "```", "",
        ]
    if report.low_rows:
        out += ["## Worst float16 / bfloat16 element of every backend", "",
                "Sorted by error / own bound (failures first). Each reproducer runs from the "
                "repository root.", ""]
    for low, bc, also in worst_backend_cells(report):
        assert bc.worst_item is not None
        extra = f" (same element and value: {', '.join(also)})" if also else ""
        out += [
            f"### {low.op} {low.direction} {low.dtype} — {bc.backend}: {bc.status.upper()}, "
            f"{fmt_ratio(bc.max_ratio)} x its bound{extra}", "",
            f"- arithmetic: {arithmetic_text(bc, low.dtype)}",
            f"- case `{bc.worst_item.id}`{_regime_text(bc.worst_item)}: "
            f"`{bc.worst_item.case.describe()}`",
            f"- {_low_worst_line(bc, low.dtype)}",
            f"- over {bc.compared} case(s)", "",
            "```python", backend_cell_reproducer(report, low, bc), "```", "",
        ]
    return "\n".join(out)


def write_markdown(report: Report, path: Path) -> None:
    text = render_markdown(report)
    plot = report.settings.get("plot")
    if plot:  # link the heatmap of the same run, relative to the Markdown file
        target = os.path.relpath(Path(plot).resolve(), path.resolve().parent)
        heading = "## Largest ULP distance per op"
        text = text.replace(heading, f"![ULP heatmap]({target})\n\n{heading}", 1)
    path.write_text(text)


# --------------------------------------------------------------------------------------------
# heatmap


def write_plot(report: Report, path: Path) -> None:
    """Heatmap of the largest ULP distance, rows op/direction/dtype x columns backend pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import SymLogNorm
    from matplotlib.patches import Rectangle

    rows, pairs = report.rows, report.pairs
    footnotes = registered_ids(report)
    data = np.full((len(rows), max(len(pairs), 1)), np.nan)
    for i, row in enumerate(rows):
        for j, p in enumerate(pairs):
            cell = row.cells[p]
            if cell.compared:
                data[i, j] = min(cell.max_ulp, 1e19)
    finite = data[np.isfinite(data)]
    vmax = max(10.0, float(finite.max()) if finite.size else 10.0)
    fig_w = 3.2 + 1.55 * max(len(pairs), 1)
    fig_h = 1.9 + 0.34 * len(rows)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=110)
    cmap = matplotlib.colormaps["YlOrRd"].with_extremes(bad="#e8e8e8")
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto",
                      norm=SymLogNorm(linthresh=1.0, vmin=0.0, vmax=vmax, base=10))
    for i, row in enumerate(rows):
        for j, p in enumerate(pairs):
            cell = row.cells[p]
            if cell.status == "registered":
                ids = ", ".join(cell.registered)
                ax.text(j, i, f"registered\n{ids}", ha="center", va="center", fontsize=5.2,
                        color="#555555", style="italic")
                continue
            if not cell.compared:
                ax.text(j, i, "FAIL" if cell.status == "fail" else "n/a", ha="center",
                        va="center", fontsize=7, color="#b00000" if cell.status == "fail"
                        else "#777777", weight="bold" if cell.status == "fail" else "normal")
                if cell.status == "fail":
                    ax.add_patch(Rectangle((j - 0.48, i - 0.46), 0.96, 0.92, fill=False,
                                           edgecolor="#0050d0", linewidth=2.6))
                continue
            if cell.status == "ok":  # within tolerance: washed out, so failures stand out
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, facecolor="white",
                                       alpha=0.55, edgecolor="none"))
            dark = cell.status == "fail"
            label = fmt_ulp(cell.max_ulp)
            if cell.registered:
                label += " +R" + ",".join(str(footnotes.index(r) + 1) for r in cell.registered)
            pct = ("" if math.isinf(cell.max_ratio) else
                   f"\n{100 * cell.max_ratio:.2g}% tol")
            if cell.status == "fail":
                ax.add_patch(Rectangle((j - 0.48, i - 0.46), 0.96, 0.92, fill=False,
                                       edgecolor="#0050d0", linewidth=2.6))
                label = f"FAIL {label}"
                pct = "\nbeyond tol" if math.isinf(cell.max_ratio) else (
                    f"\n{cell.max_ratio:.2g}x tol")
            ax.text(j, i, label + pct, ha="center", va="center", fontsize=6.3,
                    color="white" if dark else "black",
                    weight="bold" if cell.status == "fail" else "normal")
    ax.set_xticks(range(len(pairs)), [f"{a}\nvs {b}" for a, b in pairs], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(rows)), [f"{r.op} {r.direction} {_DTYPE_SHORT.get(r.dtype, r.dtype)}"
                                     for r in rows], fontsize=8)
    previous = None
    for i, row in enumerate(rows):
        if previous is not None and row.op != previous:
            ax.axhline(i - 0.5, color="black", linewidth=1.0)
        previous = row.op
    ax.set_xticks(np.arange(-0.5, len(pairs)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("largest ULP distance (symlog)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    versions = ", ".join(f"{_short(b.name)} {b.version}" for b in report.backends
                         if b.available)
    s = report.settings
    c = _summary_counts(report)
    fig.suptitle("Where do the frameworks disagree? Largest ULP distance between backends",
                 fontsize=10.5, weight="bold", y=0.995)
    n_fixture = sum(1 for i in report.items if i.source == "fixture")
    ax.set_title(
        f"{versions} | {s['cases']} sampled cases/op (seed {s['seed']}) + {n_fixture} fixture "
        f"items | {time.strftime('%Y-%m-%d')}\n"
        f"{c['fail']} FAIL (blue frame: beyond the error-model tolerance), {c['ok']} within "
        f"tolerance (pale; '% tol' = worst |diff| / tolerance), {c['registered']} registered "
        "(grey).\nULP counts are largest where outputs cancel to near zero; the tolerance "
        "decides.", fontsize=7, pad=28)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
