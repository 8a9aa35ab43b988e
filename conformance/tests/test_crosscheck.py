"""Live cross-checks: the implementation under test against torch, TensorFlow and SciPy.

For every op x rank x direction, Hypothesis draws valid configurations from the op's record
(ties in max-pool inputs on purpose, small-variance batch-norm channels, asymmetric/"same"
padding, dilation, groups, ceil_mode) and a dtype. Two comparisons per example, each against a
float64 reference with the error-model tolerance (tolerance.comparison_atol):
  1. the implementation under test in the drawn dtype vs the framework in float64;
  2. the framework in the drawn dtype vs the implementation under test in float64.
A configuration the framework cannot express even by composition raises ``Unsupported`` with a
registry id: the test asserts the id is registered and counts the example as a registered
divergence (a Hypothesis event), never a silent skip. SciPy (forward only: it has no autodiff,
registered as scipy-no-autodiff) runs in the framework-free core environment.

Each framework has its own example budget (FRAMEWORKS): JAX compiles every new shape with XLA
(about 0.2 s an example here, against milliseconds for torch), so its tests draw fewer examples
per op and rank (test_forward_matches_jax, test_backward_matches_jax); the ONNX backends, which
build and load a model per shape, keep the full budget. When the first comparison
is unsupported (onnxruntime has no float64 kernel for some ops), the second still runs in the
drawn dtype where it can, and vice versa.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from .. import registry
from ..backends import BACKENDS, Unsupported, load_backend
from ..backends import backend as backend_row
from ..frameworks import require
from ..harness import check_against_reference, record_example, record_headroom
from ..ops.conv import ConvCase
from ..profiles import examples
from ..sampler import DTYPES, seeds, strategy
from .params import record_ranks

# The framework backends and their example budgets come from the registry (Backend.examples);
# the backends with the default budget share the two generic tests below, each other budget
# gets tests of its own.
FRAMEWORKS = [b for b in BACKENDS if b.name != "nnref"]
DEFAULT_BUDGET = 40


def _backend_params(budget: int) -> list:
    return [pytest.param(b.name, marks=(getattr(pytest.mark, b.marker),) if b.marker else (),
                         id=b.name) for b in FRAMEWORKS if b.examples == budget]


def _load(name: str):
    require(backend_row(name).package)
    return name, load_backend(name)


@pytest.fixture(scope="module", params=_backend_params(DEFAULT_BUDGET))
def backend(request):
    return _load(request.param)


def _run(backend, case, seed, dtype, direction, impl, impl_name, in_hypothesis=True):
    name, module = backend
    start = time.perf_counter()
    unsupported = []
    mine = theirs = None
    for mine_first in (True, False):  # one comparison may be expressible without the other
        try:
            if mine_first:
                mine = check_against_reference(case, impl, module, dtype, seed, impl_name,
                                               direction)
            else:
                theirs = check_against_reference(case, module, impl, dtype, seed,
                                                 module.__name__, direction)
        except Unsupported as exc:
            assert registry.get(exc.divergence_id), f"unregistered divergence {exc.divergence_id}"
            if in_hypothesis:
                event(f"registered divergence: {exc.divergence_id}")
            unsupported.append(exc)
    if len(unsupported) == 2:
        reduced = case.values_only() if direction == "forward" else None
        if reduced is not None:  # still compare what the framework can say (pool values)
            _run(backend, reduced, seed, dtype, direction, impl, impl_name, in_hypothesis)
        return
    record_example(name, time.perf_counter() - start)
    if mine is not None:
        record_headroom(f"{impl_name} vs {name}", case, direction, dtype, mine)
    if theirs is not None:
        record_headroom(f"{name} vs {impl_name}", case, direction, dtype, theirs)


# Configurations that once exposed a framework bug, always run first (registry id in comment).
REGRESSIONS = [
    # tf-onednn-conv-width1-garbage: one input channel, one output column, width stride 4.
    ConvCase((2, 1, 2, 5), (1, 1, 1, 4), False, (1, 4)),
]


def _test(direction: str, budget: int = DEFAULT_BUDGET):
    @settings(max_examples=examples(budget))
    @given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
    def test(record, rank, backend, data, seed, dtype, impl, impl_name_opt):
        regressions = [c for c in REGRESSIONS if c.record is record and c.rank == rank]
        if regressions and data.draw(st.booleans(), label="a known regression"):
            case = data.draw(st.sampled_from(regressions), label="case")
        else:
            case = data.draw(strategy(record, rank), label="case")
        _run(backend, case, seed, dtype, direction, impl, impl_name_opt)

    return test


test_forward_matches_framework = pytest.mark.parametrize(
    ("record", "rank"), record_ranks("forward"))(_test("forward"))
test_forward_matches_framework.__doc__ = (
    "Forward outputs: implementation under test vs the framework, both ways.")
test_backward_matches_framework = pytest.mark.parametrize(
    ("record", "rank"), record_ranks("backward"))(_test("backward"))
test_backward_matches_framework.__doc__ = (
    "Gradients: implementation under test vs the framework, both ways.")


def _budget_tests(row):
    """The two tests above for a backend with an example budget of its own."""
    budget, label = row.examples, row.name
    params = _backend_params(budget)
    fwd = pytest.mark.parametrize("backend", params, indirect=True)(
        pytest.mark.parametrize(("record", "rank"), record_ranks("forward"))(
            _test("forward", budget)))
    bwd = pytest.mark.parametrize("backend", params, indirect=True)(
        pytest.mark.parametrize(("record", "rank"), record_ranks("backward"))(
            _test("backward", budget)))
    fwd.__doc__ = f"Forward outputs against {label}, both ways ({budget} examples under ci)."
    bwd.__doc__ = f"Gradients against {label}, both ways ({budget} examples under ci)."
    return fwd, bwd


for _row in FRAMEWORKS:
    if _row.examples != DEFAULT_BUDGET:
        _key = _row.name.replace("-", "_")
        globals()[f"test_forward_matches_{_key}"], globals()[f"test_backward_matches_{_key}"] = (
            _budget_tests(_row))


@pytest.mark.parametrize("case", REGRESSIONS, ids=lambda c: c.label)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_known_framework_regressions(case, direction, dtype, backend, impl, impl_name_opt):
    """The configurations that once exposed a framework bug, every run."""
    _run(backend, case, 0, dtype, direction, impl, impl_name_opt, in_hypothesis=False)


