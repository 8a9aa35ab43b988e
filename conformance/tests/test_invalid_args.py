"""Hypothesis-drawn invalid calls (conformance/invalid_args.py).

- core: the implementation under test raises ValueError naming the parameter for every category,
  and writes nothing to its inputs;
- torch / tf: the native framework's answer to the same call is the one recorded in
  conformance/invalid_behaviour.toml (so a framework release that changes it is noticed);
- meta: the record, the categories and docs/invalid-arguments.md agree.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, reject, settings

from conformance import invalid_args as ia
from conformance import profiles
from conformance.frameworks import require

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "invalid-arguments.md"
CATEGORY_IDS = sorted(ia.CATEGORIES)
# Every (category, function) pair gets its own examples, so none is left to chance.
PAIRS = [pytest.param(c, f, id=f"{c}-{f}") for c in CATEGORY_IDS
         for f in ia.CATEGORIES[c].functions]
# Exceptions that are ValueError subclasses but say "bug" rather than "bad argument"
# (numpy's AxisError is both a ValueError and an IndexError).
NOT_AN_ARGUMENT_ERROR = (IndexError, TypeError, KeyError, AssertionError, ArithmeticError)


def _describe(result: Any) -> str:
    if isinstance(result, tuple | list):
        return "(" + ", ".join(_describe(r) for r in result) + ")"
    return ia.show(result) if isinstance(result, np.ndarray) else repr(result)


def _written(invalid: ia.InvalidCall, before: dict[str, np.ndarray]) -> list[str]:
    after = invalid.arrays()
    return [k for k, v in before.items()
            if after[k].dtype != v.dtype or not np.array_equal(after[k], v, equal_nan=True)]


# ------------------------------------------------------------------------------------ core


@pytest.mark.parametrize(("category", "function"), PAIRS)
def test_invalid_call_raises_value_error_naming_the_parameter(category, function, impl):
    @settings(max_examples=profiles.examples(12))
    @given(ia.invalid_calls(category, (function,)))
    def check(invalid: ia.InvalidCall) -> None:
        before = {k: v.copy() for k, v in invalid.arrays().items()}
        error: Exception | None = None
        try:
            result = ia.call(impl, invalid)
        except Exception as exc:
            error = exc
        written = _written(invalid, before)
        assert not written, f"{invalid!r} wrote to its input(s) {written}"
        if error is None:
            pytest.fail(f"{invalid!r} returned {_describe(result)} instead of raising "
                        f"ValueError naming one of {invalid.names}")
        if not isinstance(error, ValueError) or isinstance(error, NOT_AN_ARGUMENT_ERROR):
            pytest.fail(f"{invalid!r} raised {type(error).__name__}: {error} -- expected "
                        f"ValueError naming one of {invalid.names}")
        assert ia.names_in(str(error), invalid.names), (
            f"{invalid!r}: the ValueError message {str(error)!r} names none of {invalid.names}")

    check()


@pytest.mark.parametrize("function", ia.FUNCTIONS)
def test_starting_points_are_valid(function):
    """Every invalid call starts from a valid one (checked on the reference, nnref, whatever
    --impl says): breaking one thing is the only fault."""
    import nnref

    @settings(max_examples=profiles.examples(10))
    @given(ia.valid_calls(function))
    def check(valid: ia.InvalidCall) -> None:
        ia.call(nnref, valid)

    check()


def test_categories_cover_every_function_and_the_issue_list():
    covered = {f for c in ia.CATEGORIES.values() for f in c.functions}
    assert covered == set(ia.FUNCTIONS)
    for cat in ia.CATEGORIES.values():
        assert set(cat.functions) <= set(ia.FUNCTIONS), cat.id
    required = {"kernel_too_large", "nonpositive_stride", "nonpositive_dilation",
                "negative_padding", "pool_padding_above_half", "groups_not_dividing",
                "channel_mismatch", "wrong_ndim", "integer_dtype", "bool_dtype",
                "reflect_pad_too_large", "wrong_dy_shape", "bn_eval_without_running",
                "bn_one_value_per_channel"}
    assert required <= set(ia.CATEGORIES)
    # Categories that apply to every op where they make sense.
    assert set(ia.CATEGORIES["wrong_ndim"].functions) == set(ia.FUNCTIONS)
    assert set(ia.CATEGORIES["wrong_dy_shape"].functions) == set(ia.BACKWARD)
    assert set(ia.CATEGORIES["negative_padding"].functions) == set(ia.PAD + ia.CONV + ia.POOL)


def test_names_match_whole_words_only():
    assert ia.names_in("padding (-1, 0) must be >= 0", ("padding",))
    assert ia.names_in("Kernel too large", ("kernel",))
    assert not ia.names_in("kernel_size must be >= 1", ("kernel",))
    assert not ia.names_in("got shape (2, 3)", ("w",))
    assert ia.names_in("w has shape (2, 3)", ("w",))


def test_invalid_call_repr_shows_shapes_not_values():
    x = np.zeros((2, 3, 4, 5))
    invalid = ia.InvalidCall("wrong_ndim", "pad", {"x": x[0], "pad_width": 1, "mode": "constant",
                                                     "value": 0.0}, ("x",), "x")
    text = repr(invalid)
    assert "x=float64[3, 4, 5]" in text and "0." not in text.split("value=")[0]
    assert text.startswith("InvalidCall[wrong_ndim] pad(")


# --------------------------------------------------------------------------------- the record

_OUTCOME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def test_record_has_every_category_for_both_frameworks_and_nothing_else():
    record = ia.load_behaviour()
    assert set(record) == set(ia.CATEGORIES), (
        f"missing {sorted(set(ia.CATEGORIES) - set(record))}, "
        f"unknown {sorted(set(record) - set(ia.CATEGORIES))}")
    for cat_id, by_framework in record.items():
        assert set(by_framework) == set(ia.FRAMEWORKS), cat_id
        cat = ia.CATEGORIES[cat_id]
        for fw, entry in by_framework.items():
            where = f"{cat_id}.{fw}"
            assert set(entry) <= {"outcomes", "note", "ops"}, where
            assert entry["note"].strip(), where
            outcomes = entry["outcomes"]
            assert outcomes and len(set(outcomes)) == len(outcomes), where
            for o in outcomes:
                assert o in ia.OUTCOME_WORDS or _OUTCOME.match(o), f"{where}: {o!r}"
            for key, outs in entry.get("ops", {}).items():
                fn, *rest = key.split("/")
                assert fn in cat.functions, f"{where}.ops: {key!r}"
                assert len(rest) <= 2, f"{where}.ops: {key!r}"
                assert outs and set(outs) <= set(outcomes), f"{where}.ops.{key}: {outs}"


def test_doc_agrees_with_the_record():
    text = DOC.read_text()
    for cat_id in ia.CATEGORIES:
        assert f"`{cat_id}`" in text, f"{DOC.name} does not mention {cat_id}"
    assert ia.markdown_table() in text, (
        f"{DOC.name}'s table is out of date: regenerate it with python -m conformance.invalid_args")
    assert ia.markdown_notes() in text, (
        f"{DOC.name}'s notes are out of date: regenerate them with "
        "python -m conformance.invalid_args")


# ------------------------------------------------------------------------------- frameworks


def _check_native(framework: str, module: Any, category: str, function: str,
                  examples: int) -> None:
    record = ia.load_behaviour()

    @settings(max_examples=profiles.examples(examples))
    @given(ia.invalid_calls(category, (function,)))
    def check(invalid: ia.InvalidCall) -> None:
        try:
            got = ia.outcome(ia.RUNNERS[framework], module, invalid)
        except ia.NotExpressible:
            reject()  # an incidental limitation (e.g. torch's symmetric-only padding)
        expected = ia.expected_outcomes(record, framework, invalid)
        assert got in expected, (
            f"{framework} now answers {invalid!r} with {got!r}; invalid_behaviour.toml records "
            f"{expected} for it: update the record (and docs/invalid-arguments.md)")

    check()


@pytest.mark.torch
@pytest.mark.parametrize(("category", "function"), PAIRS)
def test_torch_native_answer_is_recorded(category, function):
    torch = require("torch")
    _check_native("torch", torch, category, function, 6)


@pytest.mark.tf
@pytest.mark.parametrize(("category", "function"), PAIRS)
def test_tf_native_answer_is_recorded(category, function):
    tf = require("tensorflow")
    _check_native("tensorflow", tf, category, function, 5)


@pytest.mark.torch
def test_torch_not_expressible_claims():
    torch = require("torch")
    # pad_backward has no native function: autograd through F.pad needs an x of dy's shape minus
    # the pads, which does not exist when dy is smaller than the pads.
    with pytest.raises(RuntimeError, match="non-negative"):
        torch.zeros((2, 3, -1, 4))
    invalid = ia.InvalidCall("wrong_dy_shape", "pad_backward", {
        "dy": np.ones((2, 3, 1, 4)), "pad_width": 1, "mode": "constant"}, ("dy",), "dy")
    assert ia.outcome(ia.run_torch, torch, invalid) == "not expressible"


@pytest.mark.tf
def test_tf_not_expressible_claims():
    tf = require("tensorflow")
    assert "groups" not in inspect.signature(tf.nn.conv2d).parameters
    assert "dilations" not in inspect.signature(tf.nn.max_pool2d).parameters
    assert "ceil_mode" not in inspect.signature(tf.nn.max_pool2d).parameters
    bn = inspect.signature(tf.nn.batch_normalization).parameters
    assert bn["mean"].default is inspect.Parameter.empty
    assert bn["variance"].default is inspect.Parameter.empty
    for fn in (tf.nn.batch_normalization, tf.nn.moments):
        assert not {"momentum", "training"} & set(inspect.signature(fn).parameters)
    x = tf.zeros((1, 1, 3, 3))
    for mode in ("CIRCULAR", "REPLICATE"):
        with pytest.raises(ValueError, match="mode"):
            tf.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1]], mode=mode)


@pytest.mark.tf
def test_tf_onednn_conv2d_aborts_on_a_3d_float32_input():
    """The "abort" record: run in a subprocess, since the CHECK failure kills the process."""
    tf = require("tensorflow")
    invalid = ia.InvalidCall("wrong_ndim", "conv2d", {
        "x": np.ones((3, 5, 6), np.float32), "w": np.ones((2, 3, 2, 2), np.float32), "b": None,
        "stride": 1, "padding": 0, "dilation": 1, "groups": 1}, ("x",), "x")
    assert ia.tf_conv_aborts(invalid)
    assert ia.outcome(ia.run_tf, tf, invalid) == "abort"
    # float64 first (it raises), then float32 (it aborts the subprocess).
    script = textwrap.dedent("""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import numpy as np, tensorflow as tf
        for dtype in (np.float64, np.float32):
            x = tf.constant(np.ones((5, 6, 3), dtype))     # NHWC without N
            w = tf.constant(np.ones((2, 2, 3, 2), dtype))  # HWIO
            try:
                tf.nn.conv2d(x, w, strides=1, padding=[[0, 0], [0, 0], [0, 0], [0, 0]])
            except Exception as exc:
                print(np.dtype(dtype).name, "raised", type(exc).__name__, flush=True)
            else:
                print(np.dtype(dtype).name, "accepted", flush=True)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=180)
    assert "float64 raised InvalidArgumentError" in run.stdout, (run.stdout, run.stderr[-2000:])
    fixed = ("float32 no longer aborts (tensorflow/tensorflow#111453 fixed?): update "
             "invalid_args.tf_conv_aborts and the wrong_ndim record")
    assert run.returncode != 0 and "float32" not in run.stdout, (fixed, run.stdout)
    assert "Check failed" in run.stderr, run.stderr[-2000:]


@pytest.mark.tf
def test_tf_onednn_conv2d_returns_the_input_shape_for_invalid_explicit_padding():
    """The notes of kernel_too_large / negative_padding: float32 (oneDNN) tf.nn.conv2d may
    answer a padding that leaves no valid output with a tensor shaped like its input."""
    tf = require("tensorflow")
    rng = np.random.default_rng(0)
    cases = [  # NHWC x, HWIO w, explicit padding, strides, dilations
        ((2, 7, 2, 1), (10, 4, 1, 1), [[0, 0], [1, 1], [2, 3], [0, 0]], [1, 2], [1, 2]),
        ((3, 7, 4, 3), (3, 2, 1, 6), [[0, 0], [-1, -1], [-1, -1], [0, 0]], 4, 3),
    ]
    for x_shape, w_shape, padding, strides, dilations in cases:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        y = tf.nn.conv2d(tf.constant(x.astype(np.float32)), tf.constant(w.astype(np.float32)),
                         strides=strides, padding=padding, dilations=dilations)
        assert tuple(y.shape) == x_shape, (x_shape, w_shape, padding, y.shape)
        try:  # float64 (no oneDNN): an error, or an empty result for an output size of 0
            y64 = tf.nn.conv2d(tf.constant(x), tf.constant(w), strides=strides, padding=padding,
                               dilations=dilations)
        except tf.errors.InvalidArgumentError:
            continue
        assert 0 in y64.shape, (x_shape, w_shape, padding, y64.shape)
