"""Bindings: course APIs checked through the contract, verdicts in the user's words.

The in-process tests check the building blocks (charging an exception to the user's function,
the sampler drawing only what an API can say, missing functions in the user's words, causes
without values, distinct failures kept apart). The subprocess tests run ``python -m conformance
check`` on the example homeworks (``examples/``, a source checkout): each correct homework exits
0, each homework with one bug exits 1 naming the user's function, the output and the
configuration, with a reproducer that runs as printed. They use narrow ``-k`` selections and
the derandomised ``ci`` profile, so that each run takes seconds and finds the same example.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .. import sampler, verdicts
from ..bindings import load_binding
from ..bindings.core import USER_FUNCTION_ATTR, BoundModule, Inexpressible, UserCode
from ..cases import CALL_ATTR
from ..ops.conv import ConvCase
from ..ops.max_pool import PoolCase
from ..paths import PACKAGE_DIR, checkout_root

ROOT = checkout_root()
EXAMPLES = ROOT / "examples" if ROOT is not None else Path("examples")


# --------------------------------------------------------------------------------------------
# building blocks, in process


def test_an_exception_inside_the_users_code_names_the_users_function():
    def conv_backward_naive(dout, cache):
        raise IndexError("index 3 is out of bounds")

    def conv_forward_naive(x, w, b, conv_param):
        return x, None

    module = BoundModule(load_binding("cs231n"), UserCode(
        {"conv_forward_naive": conv_forward_naive, "conv_backward_naive": conv_backward_naive},
        "homework"), "homework")
    case = ConvCase((2, 1, 4, 4), (1, 1, 3, 3))
    a = case.arrays(np.float64, 3)
    with pytest.raises(IndexError) as caught:
        case.backward(module, a)
    assert getattr(caught.value, USER_FUNCTION_ATTR) == "conv_backward_naive"
    assert getattr(caught.value, CALL_ATTR)[1:] == ("backward", "float64", 3)
    (failure,) = verdicts.failures_of(caught.value, module, "homework", "test")
    assert failure["function"] == "conv_backward_naive" and failure["contract"] == "conv2d_backward"
    assert "IndexError: index 3" in failure["message"]
    assert "case.backward(impl, a)" in failure["reproducer"]
    assert "seed=3" in failure["configuration"]


def test_missing_functions_are_reported_in_the_users_words():
    module = BoundModule(load_binding("cs231n"),
                         UserCode({"conv_forward_naive": lambda *a: None}, "homework"), "hw")
    assert hasattr(module, "conv2d") and not hasattr(module, "conv2d_backward")
    assert module.missing["conv2d_backward"] == ("conv_backward_naive",)
    assert module.user_label("conv2d_backward") == "conv_backward_naive"


def test_a_configuration_the_api_cannot_say_is_inexpressible():
    module = BoundModule(load_binding("cs231n"), UserCode(
        {"conv_forward_naive": lambda x, w, b, p: (x, None)}, "homework"), "hw")
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    for kwargs in ({"stride": (1, 2)}, {"padding": ((1, 0), (0, 0))}, {"groups": 1,
                                                                           "dilation": 2}):
        with pytest.raises(Inexpressible):
            module.conv2d(x, w, **kwargs)


def test_the_sampler_draws_only_what_the_binding_can_say():
    binding = load_binding("deeplearning-ai")
    sampler.set_limits(binding.declared_limits())
    try:
        case = sampler.within_limits(ConvCase((2, 4, 6, 7), (3, 2, 2, 3), stride=(2, 1),
                                              padding=((1, 0), (2, 2)), dilation=(1, 2),
                                              groups=2))
        assert case is not None
        assert (case.stride, case.padding, case.dilation, case.groups) == (2, 1, 1, 1)
        assert case.w_shape == (3, 4, 2, 2)  # every input channel, square kernels
        ties = PoolCase((2, 2, 4, 4), 2, kind="ties")
        assert sampler.within_limits(ties) is None  # the binding's tie rule is not the contract's
        assert sampler.within_limits(PoolCase((2, 2, 4, 4), 2, kind="unique")) is not None
    finally:
        sampler.set_limits({})


def test_a_binding_with_another_tie_rule_is_not_asked_about_tied_windows():
    def pool_forward(a, hp, mode="max"):
        return a, (a, hp)

    def pool_backward(da, cache, mode="max"):
        return cache[0]

    module = BoundModule(load_binding("deeplearning-ai"), UserCode(
        {"pool_forward": pool_forward, "pool_backward": pool_backward}, "hw"), "hw")
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    dy = np.ones((1, 2, 2, 2))
    module.max_pool2d_backward(dy, x, 2)  # one maximum per window: asked
    x[0, 1, 2, 2] = x[0, 1, 3, 3]
    with pytest.raises(Inexpressible, match="tied maxima"):
        module.max_pool2d_backward(dy, x, 2)


def test_a_strict_adapter_gets_its_parameters_by_name_and_refuses_the_rest():
    from ..bindings import core as c

    calls = []
    binding = c.Binding("strict", rows=(
        c.row("conv2d", "conv", lambda u, x, w, stride: calls.append(stride) or u.conv(x, w)),))
    module = BoundModule(binding, UserCode({"conv": lambda x, w: x[:, :1, :3, :3]}, "hw"), "hw")
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    module.conv2d(x, w, None, 2)  # positional, in the contract's order: stride is 2
    module.conv2d(x, w, stride=(1, 2), padding=0, dilation=1, groups=1)
    assert calls == [2, (1, 2)]
    for refused, cause in (({"b": np.ones(1)}, "a bias"), ({"padding": 1}, "padding"),
                           ({"dilation": (1, 2)}, "dilation"), ({"groups": 2}, "groups")):
        with pytest.raises(Inexpressible, match=cause):
            module.conv2d(x, w, **refused)
    limits = binding.declared_limits()["conv2d"]
    assert limits["bias"] is False and {"padding", "dilation", "groups", "w_shape"} <= set(limits)
    assert "stride" not in limits
    sampler.set_limits(binding.declared_limits())
    try:
        case = sampler.within_limits(ConvCase((2, 4, 6, 7), (3, 2, 2, 3), bias=True, stride=(2, 1),
                                              padding=((1, 0), (2, 2)), dilation=(1, 2),
                                              groups=2))
        assert case is not None and not case.bias and case.stride == (2, 1)
        assert (case.padding, case.dilation, case.groups, case.w_shape) == (0, 1, 1, (3, 4, 2, 3))
    finally:
        sampler.set_limits({})


def test_a_strict_adapter_must_name_contract_parameters():
    from ..bindings import core as c

    with pytest.raises(ValueError, match=r"takes \['strides'\], not parameters of conv2d"):
        c.row("conv2d", "conv", lambda u, x, w, strides: None)
    with pytest.raises(ValueError, match=r"must take \['stride'\]"):  # no API-less stride
        c.row("conv2d", "conv", lambda u, x, w: None)
    with pytest.raises(ValueError, match="no such contract function"):
        c.row("conv9d", "conv", lambda u, x: None)


def test_a_failure_without_a_case_is_charged_to_the_judged_function_and_can_be_rerun():
    module = BoundModule(load_binding("cs231n"),
                         UserCode({"relu_forward": lambda x: (x, x)}, "homework"), "hw")
    exc = AssertionError("Not equal to tolerance rtol=1e-12")
    (failure,) = verdicts.failures_of(exc, module, "hw", "test_x", judged="relu",
                                      rerun="python -m conformance check hw -k test_x")
    assert failure["function"] == "relu_forward" and failure["contract"] == "relu"
    assert "python -m conformance check hw -k test_x" in failure["reproducer"]
    assert verdicts.headline(failure).startswith("relu_forward: AssertionError")


def test_causes_leave_the_values_out():
    assert verdicts.cause("padding=(1, 2) not supported") == verdicts.cause(
        "padding=((0, 1), (2, 2)) not supported") == "padding=… not supported"
    assert verdicts.cause("stride=3 is too large") == verdicts.cause("stride=1 is too large")


def test_distinct_failures_stay_distinct():
    first, second = AssertionError("dx: wrong"), ValueError("bad shape")
    group = ExceptionGroup("Hypothesis found 2 distinct failures.", [first, second])
    found = verdicts.failures_of(group, None, "mylayers", "test")
    assert [f["message"] for f in found] == ["AssertionError: dx: wrong", "ValueError: bad shape"]


# --------------------------------------------------------------------------------------------
# the example homeworks, through python -m conformance check

needs_checkout = pytest.mark.skipif(ROOT is None, reason="the examples are in a source checkout")

# (directory, target, api, -k selection, expected: None for a pass, else the text that must
# name the function and output)
RUNS = [
    ("cs231n_homework", ".", "cs231n", "test_gradients and conv2d", None),
    ("cs231n_homework", "bug_conv_backward_stride.py", "cs231n", "test_gradients and conv2d",
     "conv_backward_naive: dx wrong"),
    ("cs231n_homework", "bug_conv_backward_crop.py", "cs231n", "test_gradients and conv2d",
     "conv_backward_naive: dx wrong"),
    ("cs231n_homework", ".", "cs231n",
     "crosscheck and scipy and (pool2d or batch_norm0d) or layer_norm or group_norm", None),
    ("cs231n_homework", "bug_groupnorm_interleaved.py", "cs231n", "test_fixtures and group_norm",
     "spatial_groupnorm_forward: out wrong"),
    ("cs231n_homework", "bug_max_pool_square.py", "cs231n", "crosscheck and scipy and pool2d",
     "max_pool_forward_naive: y wrong"),
    ("cs231n_homework", "bug_batchnorm_running_var.py", "cs231n",
     "batch_norm0d and not backward", "batchnorm_forward: bn_param['running_var'] wrong"),
    ("dlai_homework", "conv_model.py", "deeplearning-ai",
     "crosscheck and scipy and (conv2d or pool2d)", None),
    # the notebook as the course ships it (its grader cells run too: they pass)
    ("dlai_homework", "conv_model.ipynb", "deeplearning-ai", "test_gradients and conv2d", None),
    ("dlai_homework", "bug_conv_forward_width.py", "deeplearning-ai",
     "crosscheck and scipy and conv2d", "conv_forward: Z wrong"),
    ("dlai_homework", "bug_zero_pad_height_only.py", "deeplearning-ai",
     "crosscheck and scipy and pad2d", "zero_pad: y wrong"),
    ("dlai_homework", "bug_pool_backward_stride.py", "deeplearning-ai",
     "test_gradients and pool2d", "pool_backward (max): dA_prev wrong"),
    ("fau_homework", ".", "fau", "test_gradients and (conv or pool2d or linear)", None),
    ("fau_homework", "bug_even_kernel_padding", "fau", "crosscheck and scipy and conv2d",
     "Conv.forward: output wrong"),
    ("fau_homework", "bug_pooling_overlap", "fau", "pool2d and backward",
     "Pooling.backward: returned error tensor wrong"),
    ("explicit_args", "homework.py", "my_binding.py",
     "test_gradients and (conv2d or pool2d or batch_norm0d)", None),
]


def _check(directory: str, target: str, api: str, selection: str, *extra: str,
           ) -> subprocess.CompletedProcess:
    assert ROOT is not None
    env = dict(os.environ, NNREF_PROFILE="ci", NNREF_REQUIRE_FRAMEWORKS="",
               PYTHONPATH=os.pathsep.join([str(ROOT / "impl"), str(PACKAGE_DIR.parent)]))
    # --quick: the quick mode must catch every bug the examples hold
    return subprocess.run([sys.executable, "-m", "conformance", "check", target, "--api", api,
                           "-m", "values", "-q", "-p", "no:randomly", "--quick",
                           "-k", selection, *extra],
                          cwd=EXAMPLES / directory, env=env, capture_output=True, text=True,
                          timeout=600)


@needs_checkout
@pytest.mark.parametrize(("directory", "target", "api", "selection", "expected"), RUNS,
                         ids=[f"{r[0]}/{r[1]}" if r[1] != "." else r[0] for r in RUNS])
def test_example_homework(directory, target, api, selection, expected, tmp_path):
    out = tmp_path / "verdicts.json"
    run = _check(directory, target, api, selection, "--verdicts-json", str(out))
    tail = run.stdout[-3000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    if expected is None:
        assert run.returncode == 0, tail
        assert any(r["values"] == "conforms" for r in result["functions"]), tail
        return
    assert run.returncode == 1, tail
    summary = run.stdout.split("contract summary for", 1)[1]
    assert expected in summary, tail
    failures = [f for r in result["functions"] for f in r["failures"]]
    named = [f for f in failures if verdicts.headline(f) == expected]
    assert named, failures
    assert named[0]["configuration"] and named[0]["reproducer"], named[0]
    assert result["exit_status"] == 1


@needs_checkout
def test_a_reproducer_runs_as_printed(tmp_path):
    out = tmp_path / "verdicts.json"
    _check("cs231n_homework", "bug_conv_backward_crop.py", "cs231n",
           "test_gradients and conv2d", "--verdicts-json", str(out))
    (failure,) = [f for r in json.loads(out.read_text())["functions"] for f in r["failures"]]
    script = tmp_path / "reproduce.py"
    script.write_text(failure["reproducer"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "impl"),
                                                       str(PACKAGE_DIR.parent)]))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "dx: got\narray([], shape=(2, 1, 0, 0)" in run.stdout, run.stdout


@needs_checkout
def test_distinct_failures_of_one_test_are_separate_entries_in_the_junit_file(tmp_path):
    import xml.etree.ElementTree as ET

    junit = tmp_path / "junit.xml"
    run = _check("dlai_homework", "bug_conv_forward_width.py", "deeplearning-ai",
                 "test_forward_matches_framework and scipy and conv2d", "--junitxml", str(junit))
    assert run.returncode == 1, run.stdout[-2000:]
    (case,) = [c for c in ET.parse(junit).iter("testcase") if c.find("failure") is not None]
    message = case.find("failure").get("message")
    assert message.startswith("2 distinct failures: conv_forward: "), message
    assert "conv_forward: Z wrong" in message and "conv_forward: ValueError" in message
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    found = sorted(properties[f"failure {n}"] for n in (1, 2))  # in the order Hypothesis found
    assert found[0].startswith("conv_forward: ValueError"), properties
    assert found[1].startswith("conv_forward: Z wrong: y: shape"), properties
