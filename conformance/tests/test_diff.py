"""``python -m conformance diff``: ULP arithmetic, sampling, statuses, exit codes and outputs,
and the float16 / bfloat16 rows (each backend within the bound of its declared arithmetic).

Core tests: only nnref and SciPy run (plus fake backends built here), so they need no framework;
those marked ``torch`` run torch's adapter.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import nnref
import numpy as np
import pytest

from .. import backends, diff, diff_model, diff_report, diff_run, registry
from .. import low_precision as lp
from ..backends import Unsupported
from ..comparison import compare_output, ulp_distance
from ..ops import contract_functions
from ..ops.conv import ConvCase
from ..ops.linear import LinearCase
from ..ops.max_pool import PoolCase
from ..sampler import sample

FAST = ["--cases", "2", "--fixtures", "none", "--no-progress"]


# --------------------------------------------------------------------------------------------
# ULP distance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjacent_floats_are_one_ulp_apart(dtype):
    x = np.array([1.0, -1.0, 1e-30, 3.5e5, np.finfo(dtype).tiny], dtype=dtype)
    up = np.nextafter(x, dtype(np.inf))
    down = np.nextafter(x, dtype(-np.inf))
    assert ulp_distance(x, up, dtype).tolist() == [1.0] * x.size
    assert ulp_distance(down, x, dtype).tolist() == [1.0] * x.size
    assert ulp_distance(x, x, dtype).tolist() == [0.0] * x.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_signed_zeros_are_equal_and_distances_run_across_zero(dtype):
    tiny = np.nextafter(dtype(0), dtype(1))  # smallest subnormal
    assert ulp_distance(dtype(0.0), dtype(-0.0), dtype) == 0
    assert ulp_distance(-tiny, dtype(0.0), dtype) == 1
    assert ulp_distance(-tiny, tiny, dtype) == 2
    assert ulp_distance(dtype(-1.0), dtype(1.0), dtype) == 2 * ulp_distance(
        dtype(0.0), dtype(1.0), dtype)


def test_ulps_are_counted_in_the_given_dtype():
    a, b = np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))
    assert ulp_distance(a, b, np.float32) == 1
    assert ulp_distance(np.float64(a), np.float64(b), np.float64) == 2.0**29
    # float64 values 1 ulp apart round to the same float32
    c = np.nextafter(1.0, 2.0)
    assert ulp_distance(1.0, c, np.float64) == 1
    assert ulp_distance(1.0, c, np.float32) == 0


def test_ulp_distance_nan_and_inf():
    d = ulp_distance(np.array([np.nan, np.nan, 1.0, np.inf]),
                          np.array([np.nan, 1.0, np.nan, np.inf]), np.float64)
    assert d.tolist() == [0.0, np.inf, np.inf, 0.0]
    big = np.finfo(np.float32).max
    assert ulp_distance(big, np.float32(np.inf), np.float32) == 1


# --------------------------------------------------------------------------------------------
# sampling and comparison


@pytest.mark.parametrize("row", diff_model.op_rows(), ids=lambda r: r.label)
def test_sampled_cases_are_valid_and_reproducible(row):
    cases = sample(row.record, 25, seed=7, rank=row.rank)
    assert cases == sample(row.record, 25, seed=7, rank=row.rank)
    assert cases != sample(row.record, 25, seed=8, rank=row.rank)
    assert cases[:5] == sample(row.record, 5, seed=7, rank=row.rank)  # --cases only adds
    for case, seed in cases:
        assert case.label == row.label
        out = case.forward(nnref, case.arrays(np.float64, seed))
        assert out["y"].shape == case.output_shape()


def test_compare_output_counts_index_mismatches_and_nan_placement():
    s = compare_output("indices", np.array([1, 2, 3]), np.array([1, 5, 4]), 0.0, "float32")
    assert s["index_mismatches"] == 2 and s["failures"]
    a = np.array([1.0, np.nan], np.float32)
    s = compare_output("y", a, np.array([1.0, 2.0], np.float32), 1e-3, "float32")
    assert s["max_ulp"] == np.inf and s["failures"]
    s = compare_output("y", a, a.copy(), 0.0, "float32")
    assert s["max_ulp"] == 0 and not s["failures"] and s["worst"] is None


def test_compare_output_within_and_beyond_tolerance():
    a = np.array([1.0, 2.0, 3.0])
    b = a + np.array([0.0, 1e-9, -4e-9])
    s = compare_output("y", a, b, 5e-9, "float64")
    assert not s["failures"] and s["worst"].index == (2,) and s["max_ratio"] == pytest.approx(0.8)
    s = compare_output("y", a, b, 2e-9, "float64")
    assert "1 of 3 elements outside tolerance" in s["failures"][0]
    assert "3.0 vs 2.999999996" in s["failures"][0]


# --------------------------------------------------------------------------------------------
# fake backends


def _module(name: str, **overrides) -> types.ModuleType:
    """A module exposing nnref's contract functions, some replaced."""
    mod = types.ModuleType(name)
    for fn in contract_functions():
        setattr(mod, fn, overrides.get(fn, getattr(nnref, fn)))
    mod.__version__ = "0.0-test"
    return mod


def _wrong_conv2d(x, w, b=None, **kwargs):
    """nnref's conv2d with one element nudged far beyond any tolerance."""
    y = nnref.conv2d(x, w, b, **kwargs)
    y.flat[0] += y.dtype.type(0.5)
    return y


def _refusing_pool(*args, **kwargs):
    raise Unsupported("no-such-divergence", "an id that is not in divergences.toml")


@pytest.fixture
def fake_backends(monkeypatch):
    monkeypatch.setitem(sys.modules, "fake_wrong", _module("fake_wrong",
                                                           conv2d=_wrong_conv2d))
    monkeypatch.setitem(sys.modules, "fake_refuses", _module("fake_refuses",
                                                             max_pool2d=_refusing_pool))
    monkeypatch.setitem(sys.modules, "fake_forward_only",
                        _module("fake_forward_only", conv2d_backward=None))
    delattr(sys.modules["fake_forward_only"], "conv2d_backward")


# --------------------------------------------------------------------------------------------
# the command


def test_nnref_and_scipy_agree_and_scipy_gaps_are_registered(tmp_path, capsys):
    out_json, out_md = tmp_path / "d.json", tmp_path / "sub" / "d.md"
    code = diff.main(["--backends", "nnref,scipy", *FAST, "--json", str(out_json),
                      "--markdown", str(out_md)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "nnref/scipy" in text and "reg R1" in text and "scipy-no-autodiff" in text
    assert "exit status 0" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    doc = json.loads(out_json.read_text())
    rows = {(r["op"], r["direction"], r["dtype"]): r for r in doc["rows"]}
    # max_pool2d forward: values compared, SciPy's missing indices registered
    pools = [r["cells"][0] for (op, direction, _), r in rows.items()
             if op.startswith("max_pool") and direction == "forward"]
    assert {p["status"] for p in pools} == {"ok"}
    assert set().union(*(p["registered"] for p in pools)) == {"scipy-max-filter-no-indices"}
    conv_dx = rows[("conv2d", "dx", "float64")]["cells"][0]
    assert conv_dx["status"] == "registered" and "scipy-no-autodiff" in conv_dx["registered"]
    assert out_md.read_text().startswith("# nnref diff")


def test_json_schema_fields(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert diff.main(["--backends", "nnref,scipy", "--op", "conv2d", "--dtype", "float32",
                      *FAST, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == diff_report.SCHEMA == "nnref-diff/3"
    for key in ("created", "elapsed_s", "command", "settings", "platform", "environment",
                "backends", "pairs", "fixtures", "registered", "cases", "rows", "comparisons",
                "low_precision", "summary"):
        assert key in doc, key
    assert doc["low_precision"]["rows"] == [] and doc["cases"][0]["values"] is None
    assert {"python", "platform", "machine", "numpy"} <= set(doc["platform"])
    assert [b["name"] for b in doc["backends"]] == ["nnref", "scipy"]
    assert all(b["version"] for b in doc["backends"])
    assert doc["pairs"] == [["nnref", "scipy"]]
    assert doc["settings"]["ops"] == ["conv2d"] and doc["settings"]["cases"] == 2
    assert len(doc["cases"]) == 2 and doc["cases"][0]["params"]["op"] == "conv2d"
    cell = doc["rows"][0]["cells"][0]
    for key in ("pair", "status", "max_abs_err", "max_rel_err", "max_ulp", "max_tol_ratio",
                "worst", "reproducer", "failures", "registered"):
        assert key in cell, key
    assert set(cell["worst"]) >= {"case", "output", "index", "a", "b", "ulp", "tolerance"}
    cols = doc["comparisons"]["columns"]
    assert all(len(r) == len(cols) for r in doc["comparisons"]["rows"])
    assert doc["summary"] == {"status": "pass", "exit_status": 0, "failures": 0,
                              "cells": {"ok": 1, "fail": 0, "registered": 3, "n/a": 0},
                              "low_precision_cells": {"ok": 0, "fail": 0, "registered": 0,
                                                      "n/a": 0}}


def test_a_wrong_backend_fails_with_the_list(fake_backends, tmp_path, capsys):
    out = tmp_path / "d.json"
    code = diff.main(["--backends", "nnref,scipy,wrong=fake_wrong", "--op", "conv2d", *FAST,
                      "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 1
    assert "FAILURES" in text and "exit status 1" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    failing = [line for line in text.splitlines() if line.startswith("  conv2d forward")]
    assert failing and all("wrong" in line for line in failing)
    assert any("nnref/wrong" in line and "outside tolerance" in line for line in failing)
    assert "nnref/scipy" not in "".join(failing)
    doc = json.loads(out.read_text())
    assert doc["summary"]["status"] == "fail" and doc["summary"]["failures"] == len(failing)
    bad = [c for r in doc["rows"] for c in r["cells"] if c["status"] == "fail"]
    assert {tuple(c["pair"]) for c in bad} == {("nnref", "wrong"), ("scipy", "wrong")}
    assert all(c["worst"]["index"] == [0, 0, 0, 0] for c in bad)


def test_unregistered_unsupported_id_is_a_failure_and_missing_functions_are_na(
        fake_backends, capsys):
    code = diff.main(["--backends", "nnref,refuses=fake_refuses", "--op", "max_pool2d", *FAST])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert code == 1 and "'no-such-divergence' is not in divergences.toml" in text
    code = diff.main(["--backends", "nnref,fwd=fake_forward_only", "--op", "conv2d", *FAST])
    text = capsys.readouterr().out
    assert code == 0 and "n/a" in text


@pytest.fixture
def frameworks_absent(monkeypatch):
    """torch, JAX and ONNX are 'not installed' and TensorFlow 'fails to import'; nnref and SciPy
    load. None of them is required (NNREF_REQUIRE_FRAMEWORKS unset)."""
    monkeypatch.delenv("NNREF_REQUIRE_FRAMEWORKS", raising=False)
    real = backends.load_backend
    reasons = {"torch": ImportError("no torch here (simulated)"),
               "tensorflow": RuntimeError("tensorflow import failed (simulated)"),
               **{n: ImportError(f"no {n} here (simulated)")
                  for n in ("jax", "onnx-ref", "onnxruntime")}}

    def load(name):
        key = {"tf": "tensorflow"}.get(name, name)
        if key in reasons:
            raise reasons[key]
        return real(name)

    monkeypatch.setattr(backends, "load_backend", load)


def test_absent_default_backends_are_listed(frameworks_absent, capsys):
    code = diff.main(["--op", "pad", *FAST])  # no --backends: the four defaults
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert code == 0
    assert "absent: torch, tensorflow, jax, onnx-ref, onnxruntime" in text
    assert "no torch here (simulated)" in text and "nnref/scipy" in text


def test_a_required_framework_that_is_absent_is_a_usage_error(frameworks_absent, capsys,
                                                              monkeypatch):
    monkeypatch.setenv("NNREF_REQUIRE_FRAMEWORKS", "jax")
    code = diff.main(["--op", "pad", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "NNREF_REQUIRE_FRAMEWORKS names a missing framework: jax cannot be loaded" in err


def _no_work(*args, **kwargs):
    raise AssertionError("the comparison started despite a usage error")


@pytest.mark.parametrize(("spec", "reason"), [
    ("nnref,torch", "ImportError: no torch here (simulated)"),
    ("tf", "RuntimeError: tensorflow import failed (simulated)"),
    ("nnref,ghost=no_such_module_for_nnref_diff", "No module named 'no_such_module_for_nnref"),
])
def test_a_named_backend_that_cannot_be_loaded_is_a_usage_error(
        spec, reason, frameworks_absent, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(diff, "build_items", _no_work)
    out = tmp_path / "d.json"
    assert diff.main(["--backends", spec, "--op", "pad", *FAST, "--json", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "--backends" in lines[0] and "cannot be loaded" in lines[0]
    assert spec.split(",")[-1] in lines[0] and reason in lines[0]
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize(("argv", "option", "value"), [
    (["--op", "softmax"], "--op", "softmax"),
    (["--dtype", "float8"], "--dtype", "float8"),
    (["--dtype", "bf16,half"], "--dtype", "half"),
    (["--dtype", "f16", "--plot", "x.png"], "--plot", "float16"),  # pairs only: none here
    (["--backends", "mxnet"], "--backends", "mxnet"),
    (["--backends", "nnref,nnref"], "--backends", "nnref"),
    (["--no-such-option"], "--no-such-option", "--no-such-option"),
    (["--cases", "-1"], "--cases", "-1"),
    (["--cases", "two"], "--cases", "two"),
    (["--seed", "-5"], "--seed", "-5"),
    (["--worst", "-1"], "--worst", "-1"),
    (["--threads", "0"], "--threads", "0"),
    (["--fixtures", "no_such_dir"], "--fixtures", "no_such_dir"),
    (["--fixtures", "empty"], "--fixtures", "empty"),  # exists, no manifest.json
    (["--json", "/no/such/dir/x.json"], "--json", "/no/such/dir/x.json"),
    (["--json", "missing/deeper/x.json"], "--json", "missing/deeper/x.json"),
    (["--json", "empty"], "--json", "empty"),  # a directory
    (["--json", "a_file/x.json"], "--json", "a_file/x.json"),
    (["--markdown", "missing/deeper/x.md"], "--markdown", "missing/deeper/x.md"),
    (["--plot", "missing/deeper/x.png"], "--plot", "missing/deeper/x.png"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_usage_errors_exit_2(argv, option, value, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("")
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.setattr(diff, "load_backends", _no_work)  # found before any backend loads
    assert diff.main([*argv, "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in lines[0]
    assert option in lines[0] and value in lines[0]
    assert captured.out == ""
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
    assert not Path("/no/such").exists()


def test_help_exits_0(capsys):
    assert diff.main(["--help"]) == 0
    assert "--cases" in capsys.readouterr().out


def test_plot_without_matplotlib_is_a_usage_error(monkeypatch, tmp_path, capsys):
    real = diff.importlib.util.find_spec
    monkeypatch.setattr(diff.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert diff.main(["--backends", "nnref,scipy", *FAST, "--plot",
                      str(tmp_path / "d.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "d.png").exists()


def test_plot_is_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots" / "d.png"
    assert diff.main(["--backends", "nnref,scipy", "--op", "pad,max_pool2d", *FAST,
                      "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_only_when_enabled():
    import io

    stream = io.StringIO()
    bar = diff_run.Progress(4, enabled=True, stream=stream)
    bar.advance("pad#0 float32 nnref")
    bar.close()
    assert "1/4" in stream.getvalue() and "pad#0" in stream.getvalue()
    quiet = io.StringIO()
    bar = diff_run.Progress(4, enabled=False, stream=quiet)
    bar.advance("x")
    bar.close()
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------------------------
# fixtures and reproducers


def test_fixture_source_is_pluggable(monkeypatch, tmp_path, capsys):
    case = PoolCase((2, 2, 5, 6), 2, kind="ties")
    arrays = case.arrays(np.float32, 11)

    def source(directory, ops, dtypes):
        item = diff_model.Item("fixture:my-pool", "fixture", case, "float32", 11, arrays)
        return [item], "1 fake"

    monkeypatch.setattr(diff_run, "FIXTURE_SOURCE", source)
    out = tmp_path / "d.json"
    assert diff.main(["--backends", "nnref,scipy", "--op", "max_pool2d", "--dtype", "float32",
                      "--cases", "0", "--fixtures", str(tmp_path), "--no-progress",
                      "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [c["id"] for c in doc["cases"]] == ["fixture:my-pool"]
    assert doc["cases"][0]["source"] == "fixture" and doc["fixtures"] == "1 fake"


def test_stored_fixtures_are_loaded_with_their_inputs():
    directory = diff.DEFAULT_FIXTURES
    if not (directory / "manifest.json").exists():
        pytest.skip("no golden fixtures in this checkout")
    items, note = diff_run.fixture_store_items(directory, ["pad2d"], ["float64"])
    assert items, note
    assert all(i.source == "fixture" and i.dtype == "float64" and i.arrays for i in items)
    for item in items:
        assert item.case.forward(nnref, item.inputs())["y"].shape == item.case.output_shape()


def test_reproducers_run(capsys):
    backends = {b.name: b for b in diff.load_backends(["nnref", "scipy"])}
    case = ConvCase((2, 2, 5, 6), (3, 2, 2, 3), stride=(1, 2), padding=((1, 0), (0, 1)))
    item = diff_model.Item("conv2d#0", "sampled", case, "float32", 5)
    text = diff_report.reproducer(item, "forward", "y", backends["nnref"], backends["scipy"],
                                  (1, 2, 0, 1))
    exec(compile(text, "<reproducer>", "exec"), {})
    pool = diff_model.Item("max_pool2d#0", "sampled", PoolCase((2, 2, 5, 6), 3, 2, 1), "float64", 3)
    text = diff_report.reproducer(pool, "forward", "y", backends["nnref"], backends["scipy"],
                                  None, fallback=True)
    exec(compile(text, "<reproducer>", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.count("\n") >= 3


# --------------------------------------------------------------------------------------------
# float16 and bfloat16: each backend against nnref in float64, within its own bound


LOW = ["--fixtures", "none", "--no-progress"]


def _lp_doc(out: Path) -> dict:
    doc = json.loads(out.read_text())
    assert doc["schema"] == "nnref-diff/3"
    return doc


def _lp_cells(doc: dict, backend: str) -> dict[tuple[str, str, str], dict]:
    """(op, direction, dtype) -> the JSON cell of ``backend`` in the low-precision rows."""
    return {(r["op"], r["direction"], r["dtype"]): c for r in doc["low_precision"]["rows"]
            for c in r["cells"] if c["backend"] == backend}


def test_nnref_in_low_precision_is_within_its_bound_and_reported(tmp_path, capsys):
    """nnref (float32 accumulation, declared) in both formats on sampled cases: every cell ok,
    its worst error / bound reported (at most 1, and measured: a correct kernel reaches a good
    part of its bound somewhere); SciPy takes no low-precision format (n/a, not run); the value
    regimes all occur; the reproducer recomputes the reported ratio."""
    out, md = tmp_path / "d.json", tmp_path / "d.md"
    code = diff.main(["--backends", "nnref,scipy", "--op", "linear,sigmoid1d", "--dtype",
                      "bf16,f16", "--cases", "4", *LOW, "--json", str(out), "--markdown",
                      str(md)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "exit status 0" in text and "float16 / bfloat16" in text
    doc = _lp_doc(out)
    assert doc["settings"]["dtypes"] == ["bfloat16", "float16"]
    assert doc["rows"] == [] and doc["pairs"] == [["nnref", "scipy"]]
    cells = _lp_cells(doc, "nnref")
    assert {dt for _, _, dt in cells} == {"bfloat16", "float16"}
    assert {op for op, _, _ in cells} == {"linear0d", "linear1d", "linear2d", "linear3d",
                                          "sigmoid1d"}
    ratios = []
    for key, cell in cells.items():
        assert cell["status"] == "ok", (key, cell)
        assert cell["accumulation"] == "float32" and cell["cases_judged"] == 4
        assert "float32 accumulation" in cell["arithmetic"]
        assert 0 <= cell["max_bound_ratio"] <= 1, (key, cell["max_bound_ratio"])
        assert cell["text"] == f"{cell['max_bound_ratio']:.2f} ok"
        ratios.append(cell["max_bound_ratio"])
    assert max(ratios) > 0.5
    assert {c["status"] for c in _lp_cells(doc, "scipy").values()} == {"n/a"}
    assert all("lists no" in c["skipped"] for c in _lp_cells(doc, "scipy").values())
    assert doc["low_precision"]["judgements"]["rows"]
    assert all(row[2] == "nnref" for row in doc["low_precision"]["judgements"]["rows"])
    assert doc["summary"]["low_precision_cells"]["ok"] == len(cells)
    regimes = {c["values"]["regime"] for c in doc["cases"] if c["op"] == "linear1d"}
    assert regimes == set(lp.VALUE_REGIMES)
    # the worst cell's reproducer prints the element, then the ratio the report gives
    worst = max(cells.values(), key=lambda c: c["max_bound_ratio"])
    exec(compile(worst["reproducer"], "<reproducer>", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert float(printed[-1]) == pytest.approx(worst["max_bound_ratio"], rel=1e-6)
    assert "## float16 / bfloat16" in md.read_text()


def _storage_linear(x, w, b=None):
    """linear that, in float16 / bfloat16, sums its products one by one and rounds every
    partial sum to the storage format (nnref otherwise)."""
    if x.dtype.name not in ("float16", "bfloat16"):
        return nnref.linear(x, w, b)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    acc = (x32[..., 0, None] * w32[:, 0]).astype(x.dtype)
    for i in range(1, w.shape[1]):
        acc = (acc.astype(np.float32) + x32[..., i, None] * w32[:, i]).astype(x.dtype)
    return acc if b is None else (acc.astype(np.float32) + b.astype(np.float32)).astype(x.dtype)


def _refusing_linear(x, w, b=None):
    if x.dtype.name in ("float16", "bfloat16"):
        raise Unsupported("onnxruntime-no-bfloat16", "a registered id, for the test")
    return nnref.linear(x, w, b)


CONTROL = LinearCase((8,), 64, 4)  # a 64-term sum over values offset by 3: see below


@pytest.fixture
def control_case(monkeypatch):
    """The fixture source yields one case that tells float32 from storage accumulation (the
    low-precision tests' control: 64 terms sharing an offset, so the partial sums grow while
    the result does not), in the format the run asks for; and the fake backends."""

    def source(directory, ops, dtypes):
        items = []
        for dt in dtypes:
            a32 = lp.shaped(CONTROL.arrays(np.float32, 7), "offset", 3.0)
            low = lp.rounded_inputs(a32, diff_model.storage_format(dt))[0]
            items.append(diff_model.Item("fixture:control", "fixture", CONTROL, dt, 7, low,
                                         regime="offset", amount=3.0))
        return items, "the control case"

    monkeypatch.setattr(diff_run, "FIXTURE_SOURCE", source)
    monkeypatch.setitem(sys.modules, "fake_storage", _module("fake_storage",
                                                             linear=_storage_linear))
    declared = _module("fake_declared", linear=_storage_linear)
    declared.CONFORMANCE_ACCUMULATION = "storage"
    monkeypatch.setitem(sys.modules, "fake_declared", declared)
    mapped = _module("fake_mapped", linear=_storage_linear)  # storage for the forward only
    mapped.CONFORMANCE_ACCUMULATION = {"*": "float32", "linear": "storage"}
    monkeypatch.setitem(sys.modules, "fake_mapped", mapped)
    monkeypatch.setitem(sys.modules, "fake_lp_refuses", _module("fake_lp_refuses",
                                                                linear=_refusing_linear))


def _control_run(tmp_path, backends_spec, dtype, *extra):
    out = tmp_path / "d.json"
    code = diff.main(["--backends", backends_spec, "--op", CONTROL.label, "--dtype", dtype,
                      "--cases", "0", "--fixtures", str(tmp_path), "--no-progress", "--json",
                      str(out), *extra])
    return code, out


@pytest.mark.parametrize(("alias", "storage"), [("f16", "float16"), ("bf16", "bfloat16")])
def test_storage_accumulation_fails_the_float32_bound_naming_it(alias, storage, control_case,
                                                                tmp_path, capsys):
    code, out = _control_run(tmp_path, "nnref,acc=fake_storage", alias)
    text = capsys.readouterr().out
    assert code == 1, text
    unwrapped = " ".join(text.split())
    assert "FAILURES" in text and "exit status 1" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert (f"{CONTROL.label} forward {storage} acc [fixture:control] y: error" in unwrapped)
    assert (f"the bound of {storage} storage, float32 accumulation" in unwrapped
            and f"consistent with accumulating in {storage}" in unwrapped)
    doc = _lp_doc(out)
    assert doc["summary"]["status"] == "fail" and doc["summary"]["exit_status"] == 1
    acc = _lp_cells(doc, "acc")[(CONTROL.label, "forward", storage)]
    assert acc["status"] == "fail" and acc["accumulation"] == "float32"
    assert acc["max_bound_ratio"] > 1 and acc["text"].endswith("FAIL")
    assert "float32 accumulation" in acc["failures"][0]["message"]
    assert acc["worst"]["bound_ratio"] == acc["max_bound_ratio"]
    ok = _lp_cells(doc, "nnref")[(CONTROL.label, "forward", storage)]
    assert ok["status"] == "ok" and ok["max_bound_ratio"] <= 1
    # the backward is nnref's in both: within the float32 bound
    assert _lp_cells(doc, "acc")[(CONTROL.label, "dw", storage)]["status"] == "ok"
    # the reproducer of the failing cell prints the same ratio beyond 1
    exec(compile(acc["reproducer"], "<reproducer>", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert float(printed[-1]) == pytest.approx(acc["max_bound_ratio"], rel=1e-6)


@pytest.mark.parametrize("storage", ["float16", "bfloat16"])
def test_declaring_storage_accumulation_holds_a_backend_to_that_bound(storage, control_case,
                                                                     tmp_path, capsys):
    code, out = _control_run(tmp_path, "nnref,acc=fake_declared", storage)
    text = capsys.readouterr().out
    assert code == 0, text
    doc = _lp_doc(out)
    cell = _lp_cells(doc, "acc")[(CONTROL.label, "forward", storage)]
    assert cell["status"] == "ok" and cell["accumulation"] == "storage"
    assert cell["max_bound_ratio"] <= 1 and cell["text"].endswith("ok S")
    assert cell["arithmetic"] == f"{storage} storage and accumulation (probabilistic bound)"
    assert "ok S" in text and "exit status 0" in text
    # a mapping declares per function: the forward is held to storage, the backward to float32
    code, out = _control_run(tmp_path, "nnref,acc=fake_mapped", storage)
    cells = _lp_cells(_lp_doc(out), "acc")
    assert code == 0
    assert cells[(CONTROL.label, "forward", storage)]["accumulation"] == "storage"
    assert {cells[(CONTROL.label, d, storage)]["accumulation"]
            for d in ("dx", "dw", "db")} == {"float32"}


def test_unsupported_in_low_precision_is_registered(control_case, tmp_path, capsys):
    code, out = _control_run(tmp_path, "nnref,ort=fake_lp_refuses", "bf16")
    text = capsys.readouterr().out
    assert code == 0, text
    cell = _lp_cells(_lp_doc(out), "ort")[(CONTROL.label, "forward", "bfloat16")]
    assert cell["status"] == "registered" and cell["text"] == "reg R1"
    assert cell["registered"] == {"onnxruntime-no-bfloat16": 1}
    assert "onnxruntime-no-bfloat16" in registry.ids()
    assert "R1 onnxruntime-no-bfloat16" in text


def test_an_invalid_accumulation_declaration_is_a_usage_error(monkeypatch, tmp_path, capsys):
    bad = _module("fake_bad_declaration")
    bad.CONFORMANCE_ACCUMULATION = "bf16"
    monkeypatch.setitem(sys.modules, "fake_bad_declaration", bad)
    monkeypatch.setattr(diff, "build_items", _no_work)
    assert diff.main(["--backends", "nnref,bad=fake_bad_declaration", "--dtype", "bf16",
                      *LOW]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "--backends: bad: CONFORMANCE_ACCUMULATION must be one of" \
        in lines[0]


def test_bfloat16_without_ml_dtypes_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setattr(lp, "storage_dtypes", lambda: [np.dtype(np.float16)])
    monkeypatch.setattr(diff, "load_backends", _no_work)
    assert diff.main(["--dtype", "f16,bf16", *LOW]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "--dtype bfloat16: bfloat16 needs ml_dtypes" in lines[0]


def test_the_default_run_has_no_low_precision_rows(monkeypatch):
    captured = {}

    def build(ops, dtypes, *args):
        captured["dtypes"] = list(dtypes)
        raise SystemExit(0)

    monkeypatch.setattr(diff, "build_items", build)
    with pytest.raises(SystemExit):
        diff.main(["--backends", "nnref", *LOW])
    assert captured["dtypes"] == ["float32", "float64"] == list(diff_model.DEFAULT_DTYPES)


def test_regimes_cycle_deterministically_by_seed():
    rows = diff_model.select_rows(["linear1d"])
    items, _ = diff_run.build_items(rows, ["float16"], 8, 3, None)
    again, _ = diff_run.build_items(rows, ["float16"], 8, 3, None)
    assert [(i.regime, i.amount) for i in items] == [(i.regime, i.amount) for i in again]
    assert {i.regime for i in items[:4]} == set(lp.VALUE_REGIMES)
    assert [(i.regime, i.amount) for i in items] == [lp.cycled_values(3 + k) for k in range(8)]
    shifted, _ = diff_run.build_items(rows, ["float16"], 8, 4, None)
    assert [i.regime for i in shifted] != [i.regime for i in items]
    first = items[[i.regime for i in items].index("offset")]
    a32 = first.case.arrays(np.float32, first.seed)
    want = (a32["x"] + np.float32(first.amount)).astype(np.float16)
    assert np.array_equal(first.inputs()["x"], want) and first.inputs()["x"].dtype == np.float16


def test_stored_low_precision_fixtures_keep_their_inputs_and_regime():
    directory = diff.DEFAULT_FIXTURES
    if not (directory / "manifest.json").exists():
        pytest.skip("no golden fixtures in this checkout")
    items, note = diff_run.fixture_store_items(directory, ["linear1d", "pad2d"], ["float16"])
    if not items:
        pytest.skip(f"no float16 golden fixtures ({note})")
    backends_ = diff_run.load_backends(["nnref"])
    _, judgements = diff_run.judge_low_precision(
        items, backends_, ops=diff_model.select_rows(["linear1d", "pad2d"]), dtypes=["float16"])
    assert all(i.inputs()["x"].dtype == np.float16 and i.regime in lp.VALUE_REGIMES
               for i in items)
    assert judgements and {j.status for j in judgements} == {"ok"}
    assert all(0 <= j.ratio <= 1 for j in judgements)


@pytest.mark.torch
def test_torch_in_low_precision_is_held_to_the_arithmetic_its_table_declares(tmp_path, capsys):
    """torch's adapter declares storage accumulation where its CPU kernels take it (float16
    conv_transpose on every CPU; conv's weight gradient where torch's float16 convolution is not
    oneDNN's): those cells name the registered reason; the rest are held to float32
    accumulation; every cell within its bound."""
    pytest.importorskip("torch")
    from ..backends.torch_backend import float16_conv_takes_im2col

    out = tmp_path / "d.json"
    code = diff.main(["--backends", "nnref,torch", "--op", "conv1d,conv_transpose1d", "--dtype",
                      "f16,bf16", "--cases", "2", *LOW, "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    cells = _lp_cells(_lp_doc(out), "torch")
    y16 = cells[("conv_transpose1d", "forward", "float16")]
    assert y16["accumulation"] == "storage"
    assert y16["departure"] == "torch-cpu-float16-conv-storage-rounding"
    assert y16["text"].startswith(f"{y16['max_bound_ratio']:.2f} ok S R")
    dw16 = cells[("conv1d", "dw", "float16")]
    if float16_conv_takes_im2col():
        assert dw16["accumulation"] == "storage"
        assert dw16["departure"] == "torch-cpu-float16-conv-storage-rounding"
    else:  # oneDNN's float16 convolution: held to float32 accumulation
        assert dw16["accumulation"] == "float32" and not dw16.get("departure")
    assert cells[("conv1d", "forward", "bfloat16")]["accumulation"] == "float32"
    judged = {k: c for k, c in cells.items() if c["status"] != "registered"}
    assert all(c["status"] == "ok" and c["max_bound_ratio"] <= 1 for c in judged.values())
    crash = "torch-cpu-onednn-low-precision-conv-transpose-backward-crash"
    assert all(k[0] == "conv_transpose1d" and set(c["registered"]) == {crash}
               for k, c in cells.items() if k not in judged)
