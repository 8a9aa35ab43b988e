"""``python -m conformance diff``: ULP arithmetic, sampling, statuses, exit codes and outputs.

Core tests: only nnref and SciPy run (plus fake backends built here), so they need no framework.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import nnref
import numpy as np
import pytest

from .. import backends, diff, diff_model, diff_report, diff_run
from ..backends import Unsupported
from ..comparison import compare_output, ulp_distance
from ..ops import contract_functions
from ..ops.conv import ConvCase
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
    assert doc["schema"] == diff_report.SCHEMA == "nnref-diff/2"
    for key in ("created", "elapsed_s", "command", "settings", "platform", "environment",
                "backends", "pairs", "fixtures", "registered", "cases", "rows", "comparisons",
                "summary"):
        assert key in doc, key
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
                              "cells": {"ok": 1, "fail": 0, "registered": 3, "n/a": 0}}


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
    (["--dtype", "float16"], "--dtype", "float16"),
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
