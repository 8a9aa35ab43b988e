"""The op records: everything the suite knows about an op, described once.

One module per op family in this package (``pad``, ``conv``, ``max_pool``, ``avg_pool``, ...)
defines its case type and a module-level ``RECORD`` (an :class:`OpRecord`): the contract functions
at each rank, the valid-configuration rules (one sampler for Hypothesis and the seeded
generator), the corners the sampler must reach, the error model, the finite-difference step, the
stored fixture cases and hand-computed cases, the benchmark shapes and the invalid-argument
categories that belong to this op alone. A case type reaches its record through ``Case.record``,
which the record binds when it is made (so ``conformance.cases`` never imports this package).
The test modules, ``diff``, the fixtures, invalid arguments, bench, the ``--impl`` summary and
the meta-tests all iterate :data:`RECORDS`; none keeps its own list of ops. Adding an op is a
module here, the implementation, and one adapter function per backend that supports it.

The modules are found by name (every module of this package that defines ``RECORD``), in the
order of their ``ORDER`` constant.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cases import Case, tupled
from ..invalid_category import InvalidCategory


@dataclass(frozen=True)
class HandCase:
    """A readable, hand-computed case: inputs and the expected outputs worked out on paper.

    ``case`` gives the call (its parameters; its array shapes must match ``inputs``).
    """

    name: str
    case: Case
    inputs: Mapping[str, Any]
    forward: Mapping[str, Any]
    backward: Mapping[str, Any] = field(default_factory=dict)

    def arrays(self, dtype: Any) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=dtype) for k, v in self.inputs.items()}

    def expected(self, direction: str) -> dict[str, np.ndarray]:
        values = self.forward if direction == "forward" else self.backward
        return {k: np.asarray(v, dtype=np.int64 if k == "indices" else np.float64)
                for k, v in values.items()}


@dataclass(frozen=True)
class BenchCase:
    """One benchmark configuration: a label, a size class and the case (shapes, parameters)."""

    label: str
    size: str
    case: Case


Bounds = Callable[[Any, Mapping[str, np.ndarray], Any], dict[str, Any]]


@dataclass(frozen=True, repr=False)
class OpRecord:
    """What the suite needs to know about one op family (see the module docstring)."""

    name: str
    ranks: tuple[int, ...]
    case_type: type[Case]
    # rank -> (forward function, backward function) of the contract
    functions: Callable[[int], tuple[str, str]]
    # sample(draw, rank=None, small=False, **options) -> Case (conformance.sampler)
    sample: Callable[..., Case]
    # case -> labels of the corners it reaches; corner_labels: every corner the sampler must
    # reach often (checked by the meta-tests)
    corners: Callable[[Any], list[str]]
    corner_labels: tuple[str, ...]
    # error model: (case, float64 arrays, dtype) -> bound per output (tolerance.py)
    forward_bounds: Bounds
    backward_bounds: Bounds
    # finite differences: the step per element of one input, whether the op is smooth (a
    # truncation error estimate is needed; piecewise-linear ops have none), the sampler
    # options that keep finite differences meaningful (e.g. max-pool: unique winners)
    fd_step: Callable[[Any, str, np.ndarray], np.ndarray]
    fd_smooth: bool = False
    fd_options: Mapping[str, Any] = field(default_factory=dict)
    # forward outputs that are exact selections (compared bit for bit, signed zeros included)
    exact_outputs: tuple[str, ...] = ()
    # a sum of products (forward and gradients) that GPU kernels compute from inputs rounded to
    # TF32 (10 mantissa bits) when TF32 is on: conformance.low_precision's "tf32" arithmetic
    tf32_inputs: bool = False
    # real-valued parameters (case fields) an implementation may store in a narrower type than
    # its data, as ONNX stores float attributes in float32: tolerance.attribute_rounding
    float_attributes: tuple[str, ...] = ()
    fixtures: tuple[tuple[str, Case], ...] = ()
    hand_cases: tuple[HandCase, ...] = ()
    bench: tuple[BenchCase, ...] = ()
    # for the bench's targets, ops that are GEMMs: (case, "fwd" | "bwd" | "fwd+bwd") -> the
    # nominal floating-point operations (2 per multiply-add), and case -> the peak-memory
    # target in multiples of x's bytes
    bench_flops: Callable[[Any, str], float] | None = None
    bench_peak_memory: Callable[[Any], float] | None = None
    # invalid-argument categories that belong to this op only (the generic ones are in
    # conformance.generic_categories): they apply to this record's functions
    invalid_categories: tuple[InvalidCategory, ...] = ()

    def __post_init__(self) -> None:
        bound = self.case_type.__dict__.get("record")
        if bound is not None and bound.name != self.name:
            raise ValueError(f"{self.case_type.__name__} is already the case type of "
                             f"{bound!r}; {self!r} needs a case type of its own")
        self.case_type.record = self  # Case.record: a case reaches its record through its type

    def __repr__(self) -> str:  # short: it appears in every falsifying example
        return f"record({self.name!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's printer
        printer.text(repr(self))

    def all_functions(self) -> tuple[str, ...]:
        """Every contract function of this op, forward then backward, rank by rank."""
        return tuple(dict.fromkeys(f for r in self.ranks for f in self.functions(r)))

    def label(self, rank: int) -> str:
        """The op at one rank, for reports: conv3d, max_pool1d, pad2d, batch_norm0d."""
        forward = self.functions(rank)[0]
        return forward if forward.endswith(f"{rank}d") else f"{forward}{rank}d"

    def directions(self) -> tuple[str, ...]:
        """'forward', then one direction per gradient (the rows of ``diff``)."""
        grads = self.case_type.backward_outputs
        return ("forward", *grads)


def _discover() -> tuple[OpRecord, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        rec = getattr(module, "RECORD", None)
        if isinstance(rec, OpRecord):
            found.append((getattr(module, "ORDER", 100), rec))
    return tuple(rec for _, rec in sorted(found, key=lambda t: (t[0], t[1].name)))


RECORDS: tuple[OpRecord, ...] = _discover()
_BY_NAME = {r.name: r for r in RECORDS}
_BY_FUNCTION = {f: r for r in RECORDS for f in r.all_functions()}


def record(name: str) -> OpRecord:
    """The record of an op family ("conv", "max_pool", ...)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no op record {name!r}; known: {sorted(_BY_NAME)}") from None


def record_of_function(function: str) -> OpRecord:
    """The record a contract function belongs to ("conv3d_backward" -> the conv record)."""
    try:
        return _BY_FUNCTION[function]
    except KeyError:
        raise KeyError(f"{function!r} is not a contract function; known: "
                       f"{sorted(_BY_FUNCTION)}") from None


def contract_functions() -> tuple[str, ...]:
    """Every contract function, op by op (forward and backward per rank)."""
    return tuple(f for r in RECORDS for f in r.all_functions())


def forward_functions() -> tuple[str, ...]:
    """The forward contract functions (the ``op`` of a case)."""
    return tuple(dict.fromkeys(r.functions(k)[0] for r in RECORDS for k in r.ranks))


def op_and_direction(function: str) -> tuple[str, str]:
    """'conv2d_backward' -> ('conv2d', 'backward'); 'pad' -> ('pad', 'forward')."""
    rec = record_of_function(function)
    for rank in rec.ranks:
        forward, backward = rec.functions(rank)
        if function == backward:
            return forward, "backward"
    return function, "forward"


def fixture_cases() -> tuple[tuple[str, Case], ...]:
    """Every record's stored generated cases (name, case)."""
    return tuple(c for r in RECORDS for c in r.fixtures)


def hand_cases() -> tuple[HandCase, ...]:
    """Every record's hand-computed cases."""
    return tuple(c for r in RECORDS for c in r.hand_cases)


def case_from_dict(d: Mapping[str, Any]) -> Case:
    """Inverse of ``Case.to_dict`` (lists from JSON become tuples)."""
    d = dict(d)
    rec = record_of_function(d.pop("op"))
    return rec.case_type(**{k: tupled(v) for k, v in d.items()})
