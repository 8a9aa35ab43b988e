"""Smoke tests of every backend on every op, generated from the op records and the backend registry.

For each framework backend (conformance.backends.BACKENDS) and each record:
- the record's hand-computed cases (answers worked out on paper), forward and backward, float32
  and float64, through the backend: its answer within a few roundings of the hand value, in the
  dtype it was given; a direction the backend cannot express raises Unsupported with a
  registered id (never a silent pass);
- the backend's table has exactly one row per record;
- a seeded case per record and rank, forward and backward: the backend does not mutate its
  inputs.
Agreement with nnref on random configurations is the cross-checks' job (test_crosscheck.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from .. import registry
from .. import tolerance as tol
from ..backends import BACKENDS, Unsupported, load_backend
from ..comparison import compare, same_bits
from ..frameworks import require
from ..ops import RECORDS, hand_cases
from ..sampler import sample

FRAMEWORK_BACKENDS = [b for b in BACKENDS if b.name != "nnref"]
HAND_CASES = hand_cases()
DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
# The hand values are exact (or one rounding away, e.g. 1/3): test_hand_cases.py's allowance,
# 8 roundings of each value's magnitude, covers the longest chain of any op (batch norm).
ROUNDINGS = 8


def _params() -> list:
    return [pytest.param(b, id=b.name, marks=(getattr(pytest.mark, b.marker),) if b.marker
                         else ()) for b in FRAMEWORK_BACKENDS]


@pytest.fixture(scope="module", params=_params())
def backend(request):
    row = request.param
    require(row.package)
    return row, load_backend(row.name)


def _call(module, case, direction: str, arrays: dict[str, np.ndarray]):
    """The backend's answer, or the registered id of why it has none."""
    try:
        return case.call(module, direction, arrays), None
    except Unsupported as exc:
        assert exc.divergence_id in registry.ids(), (
            f"{module.__name__}: Unsupported({exc.divergence_id!r}) is not a registered id")
        return None, exc.divergence_id


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("hand", HAND_CASES, ids=[c.name for c in HAND_CASES])
def test_hand_case(backend, hand, direction, dtype):
    row, module = backend
    a = hand.arrays(dtype)
    case, expected = hand.case, hand.expected(direction)
    got, unsupported = _call(module, case, direction, a)
    if unsupported is not None and case.values_only() is not None:
        # without its optional outputs (max-pool indices) the backend may express it
        case = case.values_only()
        expected = {k: v for k, v in expected.items() if k in case.outputs(direction)}
        got, unsupported = _call(module, case, direction, a)
    if unsupported is not None:
        if direction == "backward" and not row.autodiff:
            return  # no gradients at all: the registry says so (onnx-no-autodiff, ...)
        pytest.skip(f"{row.name} cannot express {hand.name} ({direction}): [{unsupported}]")
    u = tol.unit_roundoff(dtype)
    # parameters the backend stores narrower than the data (ONNX's float32 eps and momentum)
    stored = tol.attribute_rounding(case, hand.arrays(np.float64), direction, module)
    for name, want in expected.items():
        where = f"{row.name}: hand case {hand.name} ({direction}, {np.dtype(dtype).name})"
        if name == "indices":
            compare(name, got[name], want, 0, where)
            continue
        atol = ROUNDINGS * u * (np.abs(want) + 1) + stored.get(name, 0.0)
        compare(name, got[name], want, atol, where)
        assert got[name].dtype == dtype, f"{where}: {name} dtype {got[name].dtype}"


def test_one_table_row_per_record(backend):
    row, module = backend
    table = getattr(module, "TABLE", None)
    assert table is not None, f"{row.name}: {module.__name__} declares no TABLE"
    assert list(table) == [r.name for r in RECORDS] or set(table) == {r.name for r in RECORDS}, (
        f"{row.name}: table rows {sorted(table)} are not the records "
        f"{sorted(r.name for r in RECORDS)}")


@pytest.mark.parametrize("rec", RECORDS, ids=[r.name for r in RECORDS])
def test_inputs_are_not_mutated(backend, rec):
    row, module = backend
    for rank in rec.ranks:
        ((case, seed),) = sample(rec, 1, seed=7, rank=rank, small=True)
        for dtype in (np.float32, np.float64):
            a = case.arrays(dtype, seed=seed)
            before = {k: v.copy() for k, v in a.items()}
            for direction in ("forward", "backward"):
                _call(module, case, direction, a)
                for k, v in a.items():
                    same_bits(k, v, before[k],
                              f"{row.name}: {case.label} {direction} mutated its input {k}")
