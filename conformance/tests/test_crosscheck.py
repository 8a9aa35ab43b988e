"""Live cross-checks: the implementation under test against torch.nn.functional and tf.nn.

For every op x direction, Hypothesis draws valid configurations (ties in max-pool inputs on
purpose, small-variance batch-norm channels, asymmetric/"same" padding, dilation, groups,
ceil_mode) and a dtype. Two comparisons per example, each against a float64 reference with the
error-model tolerance (tolerance.comparison_atol):
  1. the implementation under test in the drawn dtype vs the framework in float64;
  2. the framework in the drawn dtype vs the implementation under test in float64.
A configuration the framework cannot express even by composition raises ``Unsupported`` with a
registry id: the test asserts the id is registered and counts the example as a registered
divergence (a Hypothesis event), never a silent skip.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from .. import registry
from ..backends import Unsupported, load_backend
from ..cases import ConvCase
from ..frameworks import require
from ..harness import check_against_reference, record_example, record_headroom
from ..profiles import examples
from ..strategies import CASE_STRATEGIES, DTYPES, seeds

BACKENDS = [
    pytest.param("torch", marks=pytest.mark.torch, id="torch"),
    pytest.param("tensorflow", marks=pytest.mark.tf, id="tensorflow"),
]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    require(request.param)
    return request.param, load_backend(request.param)


def _run(backend, case, seed, dtype, direction, impl, impl_name):
    name, module = backend
    start = time.perf_counter()
    try:
        mine = check_against_reference(case, impl, module, dtype, seed, impl_name, direction)
        theirs = check_against_reference(case, module, impl, dtype, seed,
                                         f"conformance.backends ({name})", direction)
    except Unsupported as exc:
        assert registry.get(exc.divergence_id), f"unregistered divergence {exc.divergence_id}"
        event(f"registered divergence: {exc.divergence_id}")
        return
    record_example(name, time.perf_counter() - start)
    record_headroom(f"{impl_name} vs {name}", case, direction, dtype, mine)
    record_headroom(f"{name} vs {impl_name}", case, direction, dtype, theirs)


# Configurations that once exposed a framework bug, always run first (registry id in comment).
REGRESSIONS = {
    # tf-onednn-conv-width1-garbage: one input channel, one output column, width stride 4.
    "conv2d": [ConvCase((2, 1, 2, 5), (1, 1, 1, 4), False, (1, 4))],
}


def _make(op: str, direction: str):
    @pytest.mark.checks(op if direction == "forward" else f"{op}_backward")
    @settings(max_examples=examples(150))
    @given(case=CASE_STRATEGIES[op](), seed=seeds, dtype=st.sampled_from(DTYPES))
    def test(backend, case, seed, dtype, impl, impl_name_opt):
        _run(backend, case, seed, dtype, direction, impl, impl_name_opt)

    for case in REGRESSIONS.get(op, []):
        test = example(case=case, seed=0, dtype=np.float32)(test)

    test.__name__ = f"test_{op}_{direction}_matches_framework"
    test.__doc__ = f"{op} {direction}: implementation under test vs the framework, both ways."
    return test


for _op in CASE_STRATEGIES:
    for _direction in ("forward", "backward"):
        _test = _make(_op, _direction)
        globals()[_test.__name__] = _test

