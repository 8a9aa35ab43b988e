"""Tests of the suite itself: comparisons can fail, the sampler draws valid cases and reaches the
corners, cases reproduce, and every op is described by its record only."""

from __future__ import annotations

import ast
from pathlib import Path

import nnref
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..comparison import Mismatch, compare, same_bits
from ..harness import check_against_reference
from ..ops import RECORDS, case_from_dict, contract_functions
from ..ops.conv import ConvCase
from ..profiles import examples
from ..sampler import DTYPES, any_case, corner_frequencies, seeds
from .params import records

ROOT = Path(__file__).resolve().parents[2]


@settings(max_examples=examples(80))
@given(case=any_case(), seed=seeds)
def test_the_sampler_draws_valid_cases_with_the_predicted_output_shape(case, seed):
    """The reference accepts every drawn case and its output has the shape the case predicts."""
    a = case.arrays(np.float64, seed)
    out = case.forward(nnref, a)
    assert out["y"].shape == case.output_shape()
    assert min(case.output_shape()) >= 1
    assert case_from_dict(case.to_dict()) == case


# Every corner a record names must be reached by at least this fraction of its seeded draws
# (Hypothesis draws the same rules; see --hypothesis-show-statistics for its frequencies).
MIN_CORNER_FREQUENCY = 0.05


@pytest.mark.parametrize("record", records())
def test_the_sampler_reaches_every_corner_often(record):
    freq = corner_frequencies(record, n=600, seed=1)
    rare = {k: v for k, v in freq.items() if v < MIN_CORNER_FREQUENCY}
    assert not rare, f"{record.name}: corners drawn too rarely (of 600 draws): {rare}"


class _Perturbed:
    """nnref with one output nudged just beyond the tolerance the suite allows it."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __getattr__(self, name: str):
        fn = getattr(nnref, name)

        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            first = out[0] if isinstance(out, tuple) else out
            if first.dtype.kind == "f":
                where = np.unravel_index(first.size // 2, first.shape)
                first[where] += self.scale * max(1.0, abs(first[where]))
            return out

        return wrapped


@settings(max_examples=examples(40))
@given(case=any_case(), seed=seeds, dtype=st.sampled_from(DTYPES),
       direction=st.sampled_from(["forward", "backward"]))
def test_every_comparison_rejects_a_perturbed_output(case, seed, dtype, direction):
    """A change of 1e-3 (f64) / 5e-2 (f32) relative in one element is always caught.

    Except on small-variance batch-norm channels: with offsets of 8 and spreads of 1e-4 the
    float32 problem itself is ill-conditioned (x - mean loses ~4 of float32's 7 digits), and
    the worst-case bound rightly allows several percent there; those draws are still compared,
    by every other test, against that bound.
    """
    assume(not (case.kind == "small_var" and dtype == np.float32))
    scale = 1e-3 if dtype == np.float64 else 5e-2
    with pytest.raises(Mismatch):
        check_against_reference(case, _Perturbed(scale), nnref, dtype, seed, "perturbed",
                                direction)


def test_compare_checks_shape_nan_placement_and_integers():
    with pytest.raises(Mismatch, match="shape"):
        compare("y", np.zeros((2, 3)), np.zeros((3, 2)), 1.0)
    with pytest.raises(Mismatch):
        compare("y", np.array([np.nan, 1.0]), np.array([0.0, 1.0]), 1.0)
    with pytest.raises(Mismatch):
        compare("y", np.array([np.inf]), np.array([-np.inf]), 1.0)
    with pytest.raises(Mismatch, match="integer"):
        compare("indices", np.array([0, 2]), np.array([0, 1]), 0)
    assert compare("y", np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), 0.0) == 0.0


def test_same_bits_tells_signed_zeros_apart():
    same_bits("y", np.array([-0.0, np.nan, 1.0]), np.array([-0.0, np.nan, 1.0]))
    with pytest.raises(Mismatch, match="bit-for-bit"):
        same_bits("y", np.array([0.0, 1.0]), np.array([-0.0, 1.0]))
    with pytest.raises(Mismatch):
        same_bits("y", np.array([np.nan]), np.array([0.0]))


def test_gamma_is_the_textbook_bound():
    u = 2.0**-53
    assert tol.unit_roundoff(np.float64) == u
    assert tol.gamma(10, np.float64) == pytest.approx(10 * u / (1 - 10 * u), rel=1e-15)
    assert tol.gamma(2**25, np.float32) == np.inf


class _Float32Attributes:
    """A module that stores batch norm's eps and momentum as float32 (as ONNX does)."""

    __name__ = "float32_attributes"

    @staticmethod
    def effective_attributes(record, attrs):
        return {k: float(np.float32(v)) for k, v in attrs.items()}


class _ForgetsEps:
    __name__ = "forgets_eps"

    @staticmethod
    def effective_attributes(record, attrs):
        return {**attrs, "eps": 0.0}


def test_attribute_rounding_is_the_exact_effect_of_the_stored_values():
    from ..ops.batch_norm import BatchNormCase

    case = BatchNormCase((3, 2, 4), training=True, eps=1e-3, momentum=0.3)
    a = {k: v.astype(np.float64) for k, v in case.arrays(np.float64, 3).items()}
    terms = tol.attribute_rounding(case, a, "forward", nnref, _Float32Attributes)
    rounded = BatchNormCase((3, 2, 4), training=True, eps=float(np.float32(1e-3)),
                            momentum=float(np.float32(0.3)))
    want = rounded.forward(nnref, a)
    for name, value in case.forward(nnref, a).items():
        np.testing.assert_array_equal(terms[name], np.abs(want[name] - value))
        assert 0 < np.max(terms[name]) < 1e-7 * max(1.0, np.abs(value).max())
    assert tol.attribute_rounding(case, a, "forward", nnref) == {}  # nothing declared
    with pytest.raises(ValueError, match="not a float32 rounding"):
        tol.attribute_rounding(case, a, "forward", _ForgetsEps)


def test_arrays_depend_only_on_the_case_dtype_and_seed():
    case = ConvCase((2, 2, 5, 4), (3, 2, 2, 3), True, 2, 1)
    np.random.seed(1)  # noqa: NPY002 - global state must not matter
    first = case.arrays(np.float32, 11)
    np.random.seed(2)  # noqa: NPY002 - global state must not matter
    again = case.arrays(np.float32, 11)
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])
    assert not np.array_equal(case.arrays(np.float32, 12)["x"], first["x"])
    assert not np.all(first["dy"] == 1), "the upstream gradient must not be all ones"


def test_every_contract_function_belongs_to_one_record_and_nnref_has_it():
    functions = contract_functions()
    assert len(functions) == len(set(functions))
    for fn in functions:
        assert callable(getattr(nnref, fn, None)), f"nnref lacks {fn}"
    for rec in RECORDS:
        for rank in rec.ranks:
            assert any(c.rank == rank for _, c in rec.fixtures), f"{rec.label(rank)}: no fixture"


# Outside tests, impl/ and conformance/backends/ (implementations), an op is named in code only
# by its record module (conformance/ops/<op>.py): neither its record name ("conv", "max_pool")
# nor any of its contract functions ("conv2d", "conv2d_backward").
# Implementations of the contract through another API name its functions by nature: nnref, the
# framework backends, the bindings of course APIs, the examples.
_EXEMPT = ("conformance/tests/", "conformance/backends/", "conformance/bindings/", "impl/",
           "examples/")
# Files outside this checkout's reach that still name an op, with the names they use; each entry
# must still be needed (the test fails once the file is fixed, so the entry goes too).
PENDING: dict[str, set[str]] = {}


def _op_names_used(path: Path) -> set[str]:
    """How code names an op: string constants that are exactly a name (``"conv3d"``) and the
    attributes it reads (``impl.conv3d``); docstrings, comments and prose in strings aside."""
    return _names_in_code(path.read_text())


def _names_in_code(text: str) -> set[str]:
    tree = ast.parse(text)
    in_fstrings = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)
                   for v in n.values}
    out: set[str] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in in_fstrings):
            out.add(node.value)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
    return out


def _record_modules() -> dict[str, str]:
    """Record name -> the file of the module that defines it (relative to the checkout)."""
    import importlib
    import pkgutil

    from .. import ops

    out = {}
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"{ops.__name__}.{info.name}")
        rec = getattr(module, "RECORD", None)
        if rec is not None:
            out[rec.name] = Path(module.__file__).resolve().relative_to(ROOT).as_posix()
    return out


def test_op_names_in_code_are_found():
    names = _names_in_code('"""conv in a docstring"""\nx = {"conv": impl.max_pool2d}\n'
                           'y = f"{kind}_pool"  # pad\n')
    assert {"conv", "max_pool2d"} <= names
    assert "pad" not in names and "pool" not in names  # a comment, a piece of an f-string


@pytest.mark.checkout
def test_only_its_record_names_an_op_outside_the_implementations():
    files = [p for p in ROOT.rglob("*.py")
             if not {".tox", "build", "dist", ".git"} & set(p.relative_to(ROOT).parts)
             and not any(
                 p.relative_to(ROOT).as_posix().startswith(e) for e in _EXEMPT)]
    tokens = {p.relative_to(ROOT).as_posix(): _op_names_used(p) for p in files}
    owners = _record_modules()
    assert set(owners) == {r.name for r in RECORDS}
    found: dict[str, set[str]] = {}
    for rec in RECORDS:
        names = {rec.name, *rec.all_functions()}
        for path, used in tokens.items():
            if path != owners[rec.name] and names & used:
                found.setdefault(path, set()).update(names & used)
    unexpected = {p: sorted(n - PENDING.get(p, set())) for p, n in found.items()
                  if n - PENDING.get(p, set())}
    assert not unexpected, f"op names in code outside their records: {unexpected}"
    stale = {p: sorted(n - found.get(p, set())) for p, n in PENDING.items()
             if n - found.get(p, set())}
    assert not stale, f"PENDING entries no longer needed (remove them): {stale}"


@pytest.mark.parametrize("on_this_machine", [True, False])
def test_a_low_precision_entry_applies_only_where_its_machine_condition_holds(on_this_machine):
    """A table's LowPrecision entry with ``where`` (the framework's own test of whether this CPU
    takes the departing kernel) applies only where that says yes; elsewhere the next matching
    entry does, or the default arithmetic."""
    from ..backends.table import LowPrecision, Row
    from ..backends.table import contract_functions as generate

    def never_called(*args):
        raise AssertionError("not called")

    table = {rec.name: Row(never_called) for rec in RECORDS}
    table["relu"] = Row(never_called, low_precision={
        "backward": LowPrecision("machine-bound", where=lambda: on_this_machine),
        "float16": LowPrecision("format-wide")})
    out = generate(table, "probe", run=never_called, autodiff=never_called,
                   storage=("float16", "bfloat16"))
    divergences = out["LOW_PRECISION_DIVERGENCES"]
    assert divergences["relu_backward float16"] == \
        ("machine-bound" if on_this_machine else "format-wide")
    assert divergences.get("relu_backward bfloat16") == \
        ("machine-bound" if on_this_machine else None)
    assert divergences["relu float16"] == "format-wide"
    assert "relu bfloat16" not in divergences
    # on either kind of machine the module says which calls another CPU treats differently
    assert out["CPU_DEPENDENT_DIVERGENCES"] == {"relu_backward float16": "machine-bound",
                                                "relu_backward bfloat16": "machine-bound"}
