"""Every keyword default CONTRACT.md documents, at every rank, in both directions.

CONTRACT.md's signatures (``conv_transpose1d / 2d / 3d(x, w, b=None, stride=1, ...)``) are read
from the document itself, not from nnref's signatures, so a wrong default in the implementation
under test (nnref included) cannot vouch for itself. For drawn cases of every record and rank,
the call spelling out each documented default and the call leaving it out must agree (bit for
bit, or both refused), whatever the case draws for that parameter.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..paths import contract_md
from ..profiles import examples
from ..sampler import seeds, strategy
from .params import record_ranks

_NAME = r"[\w{},]+"
_SIGNATURE = re.compile(rf"((?:{_NAME} / )*{_NAME})\(([^()]*)\)\s*->")


def _expanded(name: str) -> list[str]:
    """``adaptive_{avg,max}_pool{1,2}d`` -> its four names."""
    found = re.search(r"\{([^{}]*)\}", name)
    if found is None:
        return [name]
    return [n for option in found.group(1).split(",")
            for n in _expanded(name[:found.start()] + option + name[found.end():])]


def documented_defaults(text: str) -> dict[str, dict[str, Any]]:
    """function -> {parameter: documented default} for every signature in ``text``; a short
    name ("2d" after "conv_transpose1d") stands for the first name at that rank."""
    out: dict[str, dict[str, Any]] = {}
    for names, params in _SIGNATURE.findall(text):
        defaults = {}
        for param in (p.strip() for p in params.replace("\n", " ").split(",")):
            name, eq, value = param.partition("=")
            if eq:
                defaults[name.strip()] = ast.literal_eval(value.strip())
        first, *rest = names.split(" / ")
        for name in (first, *rest):
            if re.fullmatch(r"\d+d", name):
                name = re.sub(r"\dd", name, first, count=1)
            for each in _expanded(name):
                out[each] = defaults
    return out


def _documented() -> dict[str, dict[str, Any]]:
    path = contract_md()
    return documented_defaults(path.read_text(encoding="utf-8")) if path else {}


DOCUMENTED = _documented()


def test_the_signatures_are_read_from_contract_md():
    if contract_md() is None:
        pytest.skip("CONTRACT.md is not installed with the suite (a source checkout has it)")
    assert DOCUMENTED["conv_transpose2d"]["output_padding"] == 0
    assert DOCUMENTED["max_pool3d_backward"]["stride"] is None
    assert DOCUMENTED["batch_norm"]["momentum"] == 0.1
    from ..ops import RECORDS

    for rec in RECORDS:  # every contract function has its documented signature
        for rank in rec.ranks:
            for function in rec.functions(rank):
                assert function in DOCUMENTED, function


def _outcome(fn: Any, positional: list, kwargs: dict) -> tuple:
    """("value", the result) or ("error", the exception's type) of one call."""
    try:
        return "value", _tuple(fn(*positional, **kwargs))
    except ValueError as exc:
        return "error", type(exc)


def _test(direction: str):
    @settings(max_examples=examples(40))  # cheap: tiny drawn cases, two calls per default
    @given(data=st.data(), seed=seeds)
    def test(record, rank, data, seed, impl):
        """For every documented default: the call spelling it out and the call leaving it out
        agree (both results bit for bit, or both a ValueError), whatever the drawn case passes
        for it (so a wrong default shows on every draw, not only on draws of the default)."""
        function = record.functions(rank)[0 if direction == "forward" else 1]
        if function not in DOCUMENTED:
            pytest.skip("CONTRACT.md is not installed with the suite (a source checkout has it)")
        case = data.draw(strategy(record, rank), label="case")
        a = case.arrays(np.float64, seed)
        args = case.call_args(direction, a)
        positional = [args.pop(k) for k in case.positional[direction]]
        fn = getattr(impl, function)
        for name, default in DOCUMENTED[function].items():
            if name not in args:
                continue
            spelled = _outcome(fn, positional, {**args, name: default})
            left_out = _outcome(fn, positional, {k: v for k, v in args.items() if k != name})
            assert spelled[0] == left_out[0], (
                f"{function}: {name}={default!r} (CONTRACT.md's default) spelled out gives "
                f"{spelled[0]}, left out {left_out[0]}; case {case.describe()}")
            if spelled[0] == "value":
                for got, want in zip(left_out[1], spelled[1], strict=True):
                    assert np.array_equal(got, want, equal_nan=True), (
                        f"{function}: leaving out {name} (CONTRACT.md's default "
                        f"{default!r}) changes the result; case {case.describe()}")

    return test


def _tuple(result: Any) -> tuple:
    return result if isinstance(result, tuple) else (result,)


test_forward_defaults_are_the_documented_ones = pytest.mark.parametrize(
    ("record", "rank"), record_ranks("forward"))(_test("forward"))
test_backward_defaults_are_the_documented_ones = pytest.mark.parametrize(
    ("record", "rank"), record_ranks("backward"))(_test("backward"))
