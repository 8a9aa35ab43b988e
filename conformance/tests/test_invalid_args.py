"""Hypothesis-drawn invalid calls (conformance/invalid_args.py), for every op record and rank.

- core: the implementation under test raises ValueError naming the parameter for every category,
  function and rank, and writes nothing to its inputs;
- torch / tf: the native framework's answer to the same call (conformance/backends/native_calls)
  is the one recorded in conformance/invalid_behaviour.toml (so a framework release that changes
  it is noticed);
- meta: the record, the categories and docs/invalid-arguments.md agree.

Nothing here shrinks: an argument-check failure needs no minimal example (the falsifying call is
printed with its shapes), and an implementation that raises no ValueError must not make this file
take minutes.
"""

from __future__ import annotations

import inspect
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, reject, settings

from conformance import invalid_args as ia
from conformance import invalid_call as ic
from conformance import invalid_outcomes, profiles
from conformance.backends import native_calls
from conformance.frameworks import require
from conformance.ops import RECORDS, contract_functions, record, record_of_function

pytestmark = pytest.mark.arguments

ROOT = Path(__file__).resolve().parents[2]  # the checkout, or site-packages once installed
DOC = ROOT / "docs" / "invalid-arguments.md"
CATEGORY_IDS = sorted(ia.CATEGORIES)
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]


def _triples() -> list[Any]:
    """Every (category, function, rank) gets its own examples, so none is left to chance."""
    out = []
    for c in CATEGORY_IDS:
        for f in ia.CATEGORIES[c].functions:
            ranks = ia.CATEGORIES[c].ranks(f)
            for r in ranks:
                tag = f"{c}-{f}" + (f"-rank{r}" if len(ic.ranks_of(f)) > 1 else "")
                out.append(pytest.param(c, f, r, id=tag))
    return out


TRIPLES = _triples()
# Exceptions that are ValueError subclasses but say "bug" rather than "bad argument"
# (numpy's AxisError is both a ValueError and an IndexError).
NOT_AN_ARGUMENT_ERROR = (IndexError, TypeError, KeyError, AssertionError, ArithmeticError)


def _describe(result: Any) -> str:
    if isinstance(result, tuple | list):
        return "(" + ", ".join(_describe(r) for r in result) + ")"
    return ic.show(result) if isinstance(result, np.ndarray) else repr(result)


def _written(invalid: ic.InvalidCall, before: dict[str, np.ndarray]) -> list[str]:
    after = invalid.arrays()
    return [k for k, v in before.items()
            if after[k].dtype != v.dtype or not np.array_equal(after[k], v, equal_nan=True)]


# ------------------------------------------------------------------------------------ core


@pytest.mark.parametrize(("category", "function", "rank"), TRIPLES)
def test_invalid_call_raises_value_error_naming_the_parameter(category, function, rank, impl):
    @settings(max_examples=profiles.examples(12), phases=NO_SHRINK)
    @given(ia.invalid_calls(category, (function,), rank))
    def check(invalid: ic.InvalidCall) -> None:
        assert invalid.rank == rank
        before = {k: v.copy() for k, v in invalid.arrays().items()}
        error: Exception | None = None
        try:
            result = ic.call(impl, invalid)
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
        assert ic.names_in(str(error), invalid.names), (
            f"{invalid!r}: the ValueError message {str(error)!r} names none of {invalid.names}")

    check()


@pytest.mark.parametrize("function", contract_functions())
def test_starting_points_are_valid(function):
    """Every invalid call starts from a valid one (checked on the reference, nnref, whatever
    --impl says): breaking one thing is the only fault."""
    import nnref

    @settings(max_examples=profiles.examples(10), phases=NO_SHRINK)
    @given(ia.valid_calls(function))
    def check(valid: ic.InvalidCall) -> None:
        ic.call(nnref, valid)

    check()


def test_categories_cover_every_function_at_every_rank():
    functions = set(contract_functions())
    covered = {f for c in ia.CATEGORIES.values() for f in c.functions}
    assert covered == functions
    for cat in ia.CATEGORIES.values():
        assert set(cat.functions) <= functions, cat.id
        for f in cat.functions:  # a breaker works at every rank of a function, or at none
            assert cat.ranks(f) == ic.ranks_of(f), (cat.id, f, cat.ranks(f))
    required = {"kernel_too_large", "nonpositive_stride", "nonpositive_dilation",
                "negative_padding", "pool_padding_above_half", "groups_not_dividing",
                "channel_mismatch", "wrong_ndim", "integer_dtype", "bool_dtype",
                "reflect_pad_too_large", "wrong_dy_shape", "bn_eval_without_running",
                "bn_one_value_per_channel", "ln_bad_normalized_shape", "gn_bad_num_groups",
                "in_one_value_per_instance"}
    assert required <= set(ia.CATEGORIES)
    # gamma and beta are optional in the per-sample norms: the categories that break them (or
    # need a second array) still reach every function of those records, at every rank.
    norms = {f for name in ("layer_norm", "group_norm", "instance_norm")
             for f in record(name).all_functions()}
    for cat_id in ("channel_mismatch", "mixed_dtype"):
        assert norms <= set(ia.CATEGORIES[cat_id].functions), cat_id
    # Categories that apply to every op where they make sense (wrong_ndim: wherever an array's
    # ndim is bounded; an activation takes any shape).
    for cat_id in ("integer_dtype", "bool_dtype"):
        assert set(ia.CATEGORIES[cat_id].functions) == functions, cat_id
    any_shape = {f for name in ("relu", "elu", "sigmoid") for f in record(name).all_functions()}
    assert set(ia.CATEGORIES["wrong_ndim"].functions) == functions - any_shape
    assert set(ia.CATEGORIES["wrong_dy_shape"].functions) == set(ia.backward_functions())
    pools = ("max_pool", "avg_pool")
    transposed = set(record("conv_transpose").all_functions())
    padded = {f for name in ("pad", "conv", *pools) for f in record(name).all_functions()}
    assert set(ia.CATEGORIES["negative_padding"].functions) == padded | transposed
    windowed = {f for name in ("conv", *pools, "lp_pool") for f in record(name).all_functions()}
    # a transposed conv's output grows with its kernel: no kernel_too_large there
    assert set(ia.CATEGORIES["kernel_too_large"].functions) == windowed
    for cat_id in ("nonpositive_stride", "nonpositive_kernel"):
        assert set(ia.CATEGORIES[cat_id].functions) == windowed | transposed, cat_id
    dilated = {f for name in ("conv", "max_pool") for f in record(name).all_functions()}
    assert set(ia.CATEGORIES["nonpositive_dilation"].functions) == dilated | transposed
    assert set(ia.CATEGORIES["pool_padding_above_half"].functions) == {
        f for name in pools for f in record(name).all_functions()}
    assert set(ia.CATEGORIES["bad_divisor_override"].functions) == set(
        record("avg_pool").all_functions())
    assert set(ia.CATEGORIES["bad_norm_type"].functions) == set(
        record("lp_pool").all_functions())
    assert set(ia.CATEGORIES["groups_not_dividing"].functions) == set(
        record("conv").all_functions()) | transposed
    for cat_id in ("output_padding_too_large", "transposed_output_too_small"):
        assert set(ia.CATEGORIES[cat_id].functions) == transposed, cat_id


def test_the_table_folds_the_ranks_of_each_op():
    every = invalid_outcomes.compact_functions(contract_functions())
    assert "conv{1,2,3}d, conv{1,2,3}d_backward" in every
    assert every.startswith("pad, pad_backward")
    assert len(every.split(", ")) == 2 * len(RECORDS)


def test_names_match_whole_words_only():
    assert ic.names_in("padding (-1, 0) must be >= 0", ("padding",))
    assert ic.names_in("Kernel too large", ("kernel",))
    assert not ic.names_in("kernel_size must be >= 1", ("kernel",))
    assert not ic.names_in("got shape (2, 3)", ("w",))
    assert ic.names_in("w has shape (2, 3)", ("w",))


def test_invalid_call_repr_shows_shapes_not_values():
    x = np.zeros((2, 3, 4, 5))
    invalid = ic.InvalidCall("wrong_ndim", "pad", {"x": x[0], "pad_width": 1, "mode": "constant",
                                                     "value": 0.0}, ("x",), "x", 2)
    text = repr(invalid)
    assert "x=float64[3, 4, 5]" in text and "0." not in text.split("value=")[0]
    assert text.startswith("InvalidCall[wrong_ndim] pad(")
    assert invalid.family == "pad" and invalid.positional == ("x",)


def test_every_record_has_a_native_call_in_each_framework():
    names = {r.name for r in RECORDS}
    assert set(native_calls.TORCH_CALLS) == names, sorted(set(native_calls.TORCH_CALLS) ^ names)
    assert set(native_calls.TF_CALLS) == names, sorted(set(native_calls.TF_CALLS) ^ names)


def test_a_record_category_applies_to_its_record_only():
    for cat in ia.CATEGORIES.values():
        if cat.owner:
            assert {record_of_function(f).name for f in cat.functions} == {cat.owner}, cat.id
    owned = {c.id for r in RECORDS for c in r.invalid_categories}
    assert owned == {c.id for c in ia.CATEGORIES.values() if c.owner}


def test_importing_the_native_runners_needs_no_framework():
    script = ("import sys; import conformance.backends.native_calls, conformance.invalid_outcomes; "
              "print(sorted({'torch', 'tensorflow'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]", run.stdout


# --------------------------------------------------------------------------------- the record

_OUTCOME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def test_record_has_every_category_for_both_frameworks_and_nothing_else():
    record_ = invalid_outcomes.load_behaviour()
    assert set(record_) == set(ia.CATEGORIES), (
        f"missing {sorted(set(ia.CATEGORIES) - set(record_))}, "
        f"unknown {sorted(set(record_) - set(ia.CATEGORIES))}")
    for cat_id, by_framework in record_.items():
        assert set(by_framework) == set(invalid_outcomes.FRAMEWORKS), cat_id
        cat = ia.CATEGORIES[cat_id]
        for fw, entry in by_framework.items():
            where = f"{cat_id}.{fw}"
            assert set(entry) <= {"outcomes", "note", "ops"}, where
            assert entry["note"].strip(), where
            outcomes = entry["outcomes"]
            assert outcomes and len(set(outcomes)) == len(outcomes), where
            for o in outcomes:
                assert o in invalid_outcomes.OUTCOME_WORDS or _OUTCOME.match(o), f"{where}: {o!r}"
            for key, outs in entry.get("ops", {}).items():
                fn, *rest = key.split("/")
                assert fn in cat.functions, f"{where}.ops: {key!r}"
                assert len(rest) <= 2, f"{where}.ops: {key!r}"
                assert outs and set(outs) <= set(outcomes), f"{where}.ops.{key}: {outs}"


@pytest.mark.checkout
def test_doc_agrees_with_the_record():
    text = DOC.read_text()
    for cat_id in ia.CATEGORIES:
        assert f"`{cat_id}`" in text, f"{DOC.name} does not mention {cat_id}"
    assert invalid_outcomes.markdown_table() in text, (
        f"{DOC.name}'s table is out of date: regenerate it with "
        "python -m conformance.invalid_outcomes")
    assert invalid_outcomes.markdown_notes() in text, (
        f"{DOC.name}'s notes are out of date: regenerate them with "
        "python -m conformance.invalid_outcomes")


# ------------------------------------------------------------------------------- frameworks


def _check_native(framework: str, module: Any, category: str, function: str, rank: int,
                  examples: int) -> None:
    record_ = invalid_outcomes.load_behaviour()
    run = native_calls.RUNNERS[framework]

    @settings(max_examples=profiles.examples(examples), phases=NO_SHRINK)
    @given(ia.invalid_calls(category, (function,), rank))
    def check(invalid: ic.InvalidCall) -> None:
        try:
            got = invalid_outcomes.outcome(run, module, invalid)
        except ic.NotExpressible:
            reject()  # an incidental limitation (e.g. torch's symmetric-only padding)
        expected = invalid_outcomes.expected_outcomes(record_, framework, invalid)
        assert got in expected, (
            f"{framework} now answers {invalid!r} (rank {invalid.rank}) with {got!r}; "
            f"invalid_behaviour.toml records {expected} for it: update the record (and "
            "docs/invalid-arguments.md)")

    check()


@pytest.mark.torch
@pytest.mark.parametrize(("category", "function", "rank"), TRIPLES)
def test_torch_native_answer_is_recorded(category, function, rank):
    torch = require("torch")
    _check_native("torch", torch, category, function, rank, 6)


@pytest.mark.tf
@pytest.mark.parametrize(("category", "function", "rank"), TRIPLES)
def test_tf_native_answer_is_recorded(category, function, rank):
    tf = require("tensorflow")
    _check_native("tensorflow", tf, category, function, rank, 5)


@pytest.mark.torch
def test_torch_not_expressible_claims():
    torch = require("torch")
    # pad_backward has no native function: autograd through F.pad needs an x of dy's shape minus
    # the pads, which does not exist when dy is smaller than the pads (or has fewer axes).
    with pytest.raises(RuntimeError, match="non-negative"):
        torch.zeros((2, 3, -1, 4))
    for rank, shape in ((2, (2, 3, 1, 4)), (1, (2, 3, 1)), (3, (2, 3, 4, 1, 4)), (3, (4, 4))):
        invalid = ic.InvalidCall("wrong_dy_shape", "pad_backward", {
            "dy": np.ones(shape), "pad_width": 1, "mode": "constant"}, ("dy",), "dy", rank)
        got = invalid_outcomes.outcome(native_calls.run_torch, torch, invalid)
        assert got == "not expressible", shape


@pytest.mark.tf
def test_tf_not_expressible_claims():
    tf = require("tensorflow")
    for fn in (tf.nn.conv1d, tf.nn.conv2d, tf.nn.conv3d):
        assert "groups" not in inspect.signature(fn).parameters
    for fn in (tf.nn.max_pool1d, tf.nn.max_pool2d, tf.nn.max_pool3d):
        assert "dilations" not in inspect.signature(fn).parameters
        assert "ceil_mode" not in inspect.signature(fn).parameters
    bn = inspect.signature(tf.nn.batch_normalization).parameters
    assert bn["mean"].default is inspect.Parameter.empty
    assert bn["variance"].default is inspect.Parameter.empty
    for fn in (tf.nn.batch_normalization, tf.nn.moments):
        assert not {"momentum", "training"} & set(inspect.signature(fn).parameters)
    x = tf.zeros((1, 1, 3, 3))
    for mode in ("CIRCULAR", "REPLICATE"):
        with pytest.raises(ValueError, match="mode"):
            tf.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1]], mode=mode)
    # No explicit padding for the 1-D / 3-D convolutions and the 3-D pool (max_pool1d has one).
    x1, w1 = tf.zeros((1, 5, 2)), tf.zeros((2, 2, 3))
    x3, w3 = tf.zeros((1, 4, 4, 4, 2)), tf.zeros((2, 2, 2, 2, 3))
    p1, p3 = [[0, 0], [1, 1], [0, 0]], [[0, 0], [1, 1], [0, 0], [0, 0], [0, 0]]
    for native in (lambda: tf.nn.conv1d(x1, w1, 1, p1), lambda: tf.nn.conv3d(x3, w3, [1] * 5, p3),
                   lambda: tf.nn.max_pool3d(x3, 2, 1, p3)):
        with pytest.raises(TypeError, match="Expected string for argument 'padding'"):
            native()
    assert tuple(tf.nn.max_pool1d(x1, 2, 1, p1).shape) == (1, 6, 2)
    # Conv3D has no groups (float32 oneDNN and float64 alike); MaxPool3D has no float64.
    for dtype in (np.float32, np.float64):
        x = tf.constant(np.ones((1, 3, 3, 3, 4), dtype))
        with pytest.raises(tf.errors.InvalidArgumentError):
            tf.nn.conv3d(x, tf.constant(np.ones((2, 2, 2, 2, 4), dtype)), [1] * 5, "VALID")
    with pytest.raises(tf.errors.InvalidArgumentError, match="double"):
        tf.nn.max_pool3d(tf.constant(np.ones((1, 3, 3, 3, 2))), 2, 1, "VALID")


_ABORT_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    rank = int(sys.argv[1])
    x_shape = {1: (5, 3), 2: (5, 6, 3), 3: (4, 5, 3)}[rank]   # < 4 dims (after conv1d's axis)
    w_shape = (2,) * rank + (3, 2)                               # (*k, C, Co)
    conv = {1: lambda x, w: tf.nn.conv1d(x, w, 1, "VALID"),
            2: lambda x, w: tf.nn.conv2d(x, w, 1, "VALID"),
            3: lambda x, w: tf.nn.conv3d(x, w, [1] * 5, "VALID")}[rank]
    for dtype in (np.float64, np.float32):
        try:
            conv(tf.constant(np.ones(x_shape, dtype)), tf.constant(np.ones(w_shape, dtype)))
        except Exception as exc:
            print(np.dtype(dtype).name, "raised", type(exc).__name__, flush=True)
        else:
            print(np.dtype(dtype).name, "accepted", flush=True)
""")


@pytest.mark.tf
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_tf_onednn_conv_aborts_on_an_input_of_fewer_than_4_dims(rank):
    """The "abort" record: run in a subprocess, since the CHECK failure kills the process.
    (A 4-D x of conv3d is accepted: only Conv2D / Conv3D inputs of < 4 dims abort.)"""
    tf = require("tensorflow")
    x_shape = {1: (3, 6), 2: (3, 6, 6), 3: (6, 6, 6)}[rank]  # x without N (and C at rank 3)
    invalid = ic.InvalidCall("wrong_ndim", f"conv{rank}d", {
        "x": np.ones(x_shape, np.float32), "w": np.ones((2, 3) + (2,) * rank, np.float32),
        "b": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}, ("x",), "x", rank)
    assert native_calls.tf_conv_aborts(invalid)
    assert invalid_outcomes.outcome(native_calls.run_tf, tf, invalid) == "abort"
    # float64 first (it raises), then float32 (it aborts the subprocess).
    run = subprocess.run([sys.executable, "-c", _ABORT_SCRIPT, str(rank)], capture_output=True,
                         text=True, timeout=180)
    assert "float64 raised InvalidArgumentError" in run.stdout, (run.stdout, run.stderr[-2000:])
    fixed = ("float32 no longer aborts (tensorflow/tensorflow#111453 fixed?): update "
             "native_calls.tf_conv_aborts and the wrong_ndim record")
    assert run.returncode != 0 and "float32" not in run.stdout, (fixed, run.stdout)
    assert "Check failed" in run.stderr, run.stderr[-2000:]


_TF_POOL_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    shape, ksize, strides = eval(sys.argv[1])
    for dtype in (np.float64, np.float32):
        try:
            tf.nn.max_pool3d(tf.constant(np.ones(shape, dtype)), ksize, strides, "VALID")
        except Exception as exc:
            print(np.dtype(dtype).name, "raised", type(exc).__name__, flush=True)
        else:
            print(np.dtype(dtype).name, "accepted", flush=True)
""")


@pytest.mark.tf
@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding", "signal"), [
    # the last axis (padded 2 + 1 + 0 = 3, kernel 5, stride 2): 3 - 5 + 2 = 0 -> SIGFPE
    ((2, 3, 3, 3, 2), (1, 1, 5), 2, (0, 0, (1, 0)), "SIGFPE"),
    # numerator -1 in (-3, 0]: C++ division truncates -1 / 3 to 0 windows -> SIGFPE
    ((2, 3, 3, 3, 4), (1, 1, 8), (1, 1, 3), 0, "SIGFPE"),
    # a 4-D x: "Check failed: d < dims() (4 vs. 4)"
    ((2, 4, 3, 4), (1, 1, 3), 1, 0, "Check failed"),
])
def test_tf_onednn_max_pool3d_kills_the_process(x_shape, kernel, stride, padding, signal):
    """The "abort" record of kernel_too_large / wrong_ndim for max_pool3d, in a subprocess:
    float64 first (TF has no float64 MaxPool3D: InvalidArgumentError), then float32."""
    tf = require("tensorflow")
    invalid = ic.InvalidCall("kernel_too_large", "max_pool3d", {
        "x": np.ones(x_shape, np.float32), "kernel_size": kernel, "stride": stride,
        "padding": padding, "dilation": 1, "ceil_mode": False, "return_indices": True},
        ("kernel", "kernel_size"), "kernel", 3)
    assert native_calls.tf_pool_aborts(invalid)
    assert invalid_outcomes.outcome(native_calls.run_tf, tf, invalid) == "abort"
    # What the runner would have called: tf.pad, then tf.nn.max_pool3d(VALID), channels-last.
    pads = native_calls.loose_pads(padding, 3)
    if len(x_shape) == 5:
        n, c, *size = x_shape
        shape = (n, *(s + b + a for s, (b, a) in zip(size, pads, strict=True)), c)
    else:
        shape = x_shape
    args = repr((shape, list(kernel), stride if isinstance(stride, int) else list(stride)))
    run = subprocess.run([sys.executable, "-c", _TF_POOL_SCRIPT, args], capture_output=True,
                         text=True, timeout=180)
    assert "float64 raised InvalidArgumentError" in run.stdout, (run.stdout, run.stderr[-2000:])
    assert run.returncode != 0 and "float32" not in run.stdout, (
        "float32 max_pool3d no longer kills the process: update native_calls.tf_pool_aborts and "
        "the record", run.stdout)
    if signal == "SIGFPE":
        assert run.returncode == -8, run.returncode
    else:
        assert signal in run.stderr, run.stderr[-2000:]


_TF_AVG_GRAD_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    x_shape, pads, kernel, stride, dy_shape, dtype = eval(sys.argv[1])
    rank = len(x_shape) - 2
    x = tf.constant(np.ones(x_shape, dtype).transpose(0, *range(2, rank + 2), 1))
    pool = {1: tf.nn.avg_pool1d, 2: tf.nn.avg_pool2d, 3: tf.nn.avg_pool3d}[rank]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = pool(tf.pad(x, [[0, 0], *([p, p] for p in pads), [0, 0]]), kernel, stride, "VALID")
    print("output", tuple(y.shape), flush=True)
    dy = np.ones(dy_shape, dtype)   # channels-last when it has the output's rank, else as given
    dy = dy.transpose(0, *range(2, rank + 2), 1) if dy.ndim == rank + 2 else dy
    try:
        tape.gradient(y, x, output_gradients=tf.constant(dy))
    except Exception as exc:
        print("raised", type(exc).__name__, flush=True)
    else:
        print("returned", flush=True)
""")


@pytest.mark.tf
@pytest.mark.parametrize(("category", "x_shape", "kernel", "stride", "padding", "dy_shape",
                          "dtype", "sign"), [
    # dy of other sizes (channels 3, not 2): read and scattered past the buffers; glibc aborts
    # ("malloc(): invalid size (unsorted)", "free(): corrupted unsorted chunks", ...), or, as
    # the heap's layout has it, a later access faults first (SIGSEGV)
    ("wrong_dy_shape", (3, 2, 4, 2), (3, 4), 2, 1, (3, 3, 2, 1), "float64", "heap corruption"),
    # the contract's dy of a kernel_too_large call, whose TF output (2, 3, 2, 0) is empty
    ("kernel_too_large", (2, 3, 4, 3), (3, 4), 1, 0, (2, 3, 2, 1), "float32", "SIGFPE"),
    # oneDNN float32: a dy of fewer axes than the output
    ("wrong_ndim", (2, 3, 6, 4), (3, 1), (1, 4), 0, (3, 4, 1), "float32", "Check failed"),
    ("wrong_ndim", (2, 3, 4, 4, 4), 1, 1, 0, (3, 4, 1, 2), "float32", "Check failed"),
])
def test_tf_avg_pool_gradient_kills_the_process(category, x_shape, kernel, stride, padding,
                                                dy_shape, dtype, sign):
    """The "abort" record of TF's avg-pool backward (native_calls.tf_avg_pool_grad_aborts), in
    a subprocess: AvgPoolGrad / AvgPool3DGrad do not check dy against the pool's output."""
    tf = require("tensorflow")
    rank = len(x_shape) - 2
    invalid = ic.InvalidCall(category, f"avg_pool{rank}d_backward", {
        "dy": np.ones(dy_shape, dtype), "x": np.ones(x_shape, dtype), "kernel_size": kernel,
        "stride": stride, "padding": padding, "ceil_mode": False, "count_include_pad": True,
        "divisor_override": None}, ("dy",), "dy", rank)
    assert native_calls.tf_avg_pool_grad_aborts(invalid)
    assert invalid_outcomes.outcome(native_calls.run_tf, tf, invalid) == "abort"
    pads = tuple(p for p, _ in native_calls.loose_pads(padding, rank))
    k = list(kernel) if isinstance(kernel, tuple) else kernel
    st = list(stride) if isinstance(stride, tuple) else stride
    args = repr((x_shape, pads, k, st, dy_shape, dtype))
    run = subprocess.run([sys.executable, "-c", _TF_AVG_GRAD_SCRIPT, args], capture_output=True,
                         text=True, timeout=180)
    assert "output" in run.stdout, (run.stdout, run.stderr[-2000:])
    assert run.returncode != 0 and "raised" not in run.stdout and "returned" not in run.stdout, (
        "TF's avg-pool gradient no longer kills the process: update "
        "native_calls.tf_avg_pool_grad_aborts and the record", run.stdout)
    if sign == "SIGFPE":
        assert run.returncode == -signal.SIGFPE, run.returncode
    elif sign == "heap corruption":
        assert run.returncode in (-signal.SIGABRT, -signal.SIGSEGV), run.returncode
    else:
        assert sign in run.stderr, run.stderr[-2000:]


_TF_CONV_T_SCRIPT = textwrap.dedent("""
    from conformance.frameworks import tf_environment
    tf_environment()
    import tensorflow as tf
    x, w = tf.ones((1, 2, 1)), tf.ones((2, 1, 1))  # NWC, (k, Co, C)
    print("empty", tf.nn.conv1d_transpose(x, w, [1, 0, 1], 1, "VALID").shape, flush=True)
    try:
        tf.nn.conv1d_transpose(x, w, [1, -1, 1], 1, "VALID")
    except Exception as exc:
        print("raised", type(exc).__name__, flush=True)
    print("returned", flush=True)
""")


@pytest.mark.tf
def test_tf_conv_transpose_negative_output_shape_kills_the_process():
    """The "abort" record of transposed_output_too_small for TF's float32 conv*_transpose
    (native_calls.tf_conv_transpose_aborts), in a subprocess: the contract call
    conv_transpose2d(x (1, 1, 1, 2), w (1, 1, 1, 2), padding=(0, 2)) has output width
    3 - 4 = -1; the script shows the same on conv1d_transpose."""
    tf = require("tensorflow")
    invalid = ic.InvalidCall("transposed_output_too_small", "conv_transpose2d", {
        "x": np.ones((1, 1, 1, 2), np.float32), "w": np.ones((1, 1, 1, 2), np.float32),
        "b": None, "stride": 1, "padding": (0, 2), "output_padding": 0, "groups": 1,
        "dilation": 1}, ("padding",), "padding", 2)
    assert invalid_outcomes.outcome(native_calls.run_tf, tf, invalid) == "abort"
    run = subprocess.run([sys.executable, "-c", _TF_CONV_T_SCRIPT], capture_output=True,
                         text=True, timeout=180)
    assert "empty" in run.stdout, (run.stdout, run.stderr[-2000:])
    assert run.returncode != 0 and "raised" not in run.stdout and "returned" not in run.stdout, (
        "TF's conv1d_transpose no longer kills the process on a negative output_shape: update "
        "native_calls.tf_conv_transpose_aborts and the record", run.stdout)
    assert "Check failed" in run.stderr and "must be >= 0" in run.stderr, run.stderr[-2000:]


_TORCH_POOL_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.nn.functional as F
    rank = int(sys.argv[1])
    # the first axis: size 3, pad 1, kernel 3 dilated by 4 (extent 9 > 5), stride 5, ceil_mode
    size, k = (3,) + (4,) * (rank - 1), (3,) + (2,) * (rank - 1)
    d, s = (4,) + (1,) * (rank - 1), (5,) + (2,) * (rank - 1)
    pool = getattr(F, f"max_pool{rank}d")
    x = torch.randn((3, 3, *size), requires_grad=True)
    y, idx = pool(x, k, s, 1, d, ceil_mode=True, return_indices=True)
    print("windows", y.shape[2], "index past the input", int(idx.max()) >= x[0, 0].numel(),
          flush=True)
    for _ in range(300):
        torch.autograd.grad(pool(x, k, s, 1, d, ceil_mode=True), [x], torch.ones(y.shape))
    print("survived", flush=True)
""")


@pytest.mark.torch
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_torch_max_pool_backward_writes_outside_the_gradient(rank):
    """The "abort" record of kernel_too_large for torch's max-pool backward, in a subprocess:
    with ceil_mode torch accepts a dilated kernel that overruns the padded input, reports an
    index past the input plane, and the backward scatters there (heap corruption, an abort at
    ranks 2 and 3; at rank 1 the write lands in the next plane or just past the buffer)."""
    torch = require("torch")
    size, k = (3,) + (4,) * (rank - 1), (3,) + (2,) * (rank - 1)
    d, s = (4,) + (1,) * (rank - 1), (5,) + (2,) * (rank - 1)
    invalid = ic.InvalidCall("kernel_too_large", f"max_pool{rank}d_backward", {
        "dy": np.ones((3, 3, 1, *(2,) * (rank - 1)), np.float32),
        "x": np.ones((3, 3, *size), np.float32), "kernel_size": k, "stride": s, "padding": 1,
        "dilation": d, "ceil_mode": True}, ("kernel", "kernel_size"), "dilation", rank)
    assert native_calls.torch_pool_overruns(invalid)
    assert invalid_outcomes.outcome(native_calls.run_torch, torch, invalid) == "abort"
    # Whether the out-of-bounds writes corrupt the heap badly enough for glibc to abort depends on
    # the allocator's layout: usually the first run, but not always. Up to three runs; one
    # without an abort is evidence only that that run was lucky.
    for _attempt in range(3):
        run = subprocess.run([sys.executable, "-c", _TORCH_POOL_SCRIPT, str(rank)],
                             capture_output=True, text=True, timeout=180)
        assert "windows 1 index past the input True" in run.stdout, (run.stdout,
                                                                     run.stderr[-2000:])
        if rank == 1 or run.returncode != 0:
            break
    if rank > 1:
        assert run.returncode != 0 and "survived" not in run.stdout, (
            "torch's max-pool backward no longer corrupts the heap: update "
            "native_calls.torch_pool_overruns and the kernel_too_large record", run.stdout)


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
