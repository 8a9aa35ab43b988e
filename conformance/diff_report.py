"""Rendering of a ``conformance.diff`` report (``conformance.diff_model``): terminal table, JSON,
Markdown, heatmap PNG."""

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

from . import registry
from .comparison import Worst, fmt_value
from .diff_model import Backend, Cell, Item, Report, Result, Row

SCHEMA = "nnref-diff/2"
REPRODUCER_WIDTH = 94

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
    lines.append(f"from {type(item.case).__module__} import {cls}")
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
    if direction == "forward" and fallback:
        lines.append("case = case.values_only()  # one backend offers the values only")
    call = "forward" if direction == "forward" else "backward"
    lines.append(f"ya, yb = case.{call}(A, a)[{output!r}], case.{call}(B, a)[{output!r}]")
    if index is not None:
        lines.append(f"i = {index!r}")
        lines.append("print(ya[i], yb[i], abs(float(ya[i]) - float(yb[i])))")
    lines.append("print(np.abs(ya.astype(np.float64) - yb).max())")
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
_DTYPE_SHORT = {"float32": "f32", "float64": "f64"}
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


def registered_ids(report: Report) -> list[str]:
    """Registered ids in order of first appearance (footnote numbers R1, R2, ...)."""
    seen: dict[str, None] = {}
    for row in report.rows:
        for cell in row.cells.values():
            for i in cell.registered:
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


def _summary_counts(report: Report) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "registered": 0, "n/a": 0}
    for row in report.rows:
        for cell in row.cells.values():
            counts[cell.status] += 1
    return counts


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


def _backend(report: Report, name: str) -> Backend:
    return next(b for b in report.backends if b.name == name)


def cell_reproducer(report: Report, cell: Cell) -> str:
    w, item = cell.worst, cell.worst_item
    assert w is not None and item is not None
    row_direction = "forward" if w.output in ("y", "indices", "running_mean",
                                              "running_var") else w.output
    return reproducer(item, row_direction, w.output, _backend(report, cell.pair[0]),
                      _backend(report, cell.pair[1]), w.index, cell.worst_fallback)


def _item_text(item: Item) -> str:
    seed = f", seed {item.seed}" if item.seed >= 0 else ""
    return f"{item.id} ({item.source}, {item.dtype}{seed}): {item.case.describe()}"


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


def render_text(report: Report, worst: int = 3) -> str:
    """The terminal report: header, table, legend, worst cases with reproducers, failures."""
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
    if len(report.pairs) == 0:
        out.append("fewer than two backends available: nothing to compare")
        return "\n".join(out)
    out += ["", *render_table(report), ""]
    footnotes = registered_ids(report)
    shown = sorted({b.name for b in report.backends if b.available} & set(SHORT_NAMES))
    columns = "; ".join(f"{_short(n)} = {n}" for n in shown)
    out += _wrap("cell: largest ULP distance over all cases; ok = every element within its "
                 "error-model tolerance; FAIL = beyond it; reg = not expressible by a backend "
                 f"(registered divergence){'; ' + columns if columns else ''}:", hanging=0)
    for n, i in enumerate(footnotes, 1):
        out += _wrap(f"R{n} {i}: {_registry_handling(i)}", indent=2, hanging=4)
    c = _summary_counts(report)
    out.append(f"{c['ok']} ok, {c['registered']} registered, {c['fail']} FAIL, {c['n/a']} n/a "
               f"({len(report.rows)} rows x {len(report.pairs)} pairs)")
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
    failures = failure_lines(report)
    if failures:
        out += ["", f"FAILURES ({len(failures)}):"]
        for line in failures:
            out += _wrap(line, indent=2, hanging=4)
        out += ["", "exit status 1: differences beyond tolerance that are not registered"]
    else:
        out += ["", "exit status 0: every difference is within tolerance or registered"]
    return "\n".join(out)


def failure_lines(report: Report) -> list[str]:
    return [f"{row.op} {row.direction} {row.dtype} {pair_label(cell.pair)} [{item}] {msg}"
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


def to_json(report: Report) -> dict[str, Any]:
    """The report as a ``nnref-diff/1`` document (docs/diff-schema.md)."""
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
                   "seed": i.seed, "params": i.case.to_dict(), "origin": i.origin or None}
                  for i in report.items],
        "rows": rows,
        "comparisons": {"columns": list(COMPARISON_COLUMNS),
                        "rows": [_comparison_row(r) for r in report.results
                                 if r.status in ("ok", "fail")]},
        "summary": {"status": "pass" if report.ok else "fail", "exit_status": 0 if report.ok
                    else 1, "cells": c, "failures": len(report.failures)},
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
        "## Largest ULP distance per op / direction / dtype and backend pair", "",
        "`ok`: every element within its error-model tolerance; `FAIL`: beyond it; "
        "`reg` / `R<n>`: not expressible by a backend, registered in `divergences.toml`.", "",
    ]
    if report.pairs:
        out.append("| op | direction | dtype | " + " | ".join(pair_label(p) for p in report.pairs)
                   + " |")
        out.append("|---|---|---|" + "---:|" * len(report.pairs))
        for row in report.rows:
            cells = [cell_text(row.cells[p], footnotes).replace("FAIL", "**FAIL**")
                     for p in report.pairs]
            out.append(f"| {row.op} | {row.direction} | {row.dtype} | " + " | ".join(cells)
                       + " |")
        out.append("")
    for n, i in enumerate(footnotes, 1):
        out.append(f"- **R{n}** `{i}`: {_registry_handling(i)}")
    c = _summary_counts(report)
    out += ["", f"**{'PASS' if report.ok else 'FAIL'}**: {c['ok']} ok, {c['registered']} "
                f"registered, {c['fail']} failing, {c['n/a']} n/a cells.", ""]
    if report.failures:
        out += ["## Failures", ""]
        out += [f"- {line}" for line in failure_lines(report)]
        out.append("")
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
