"""A framework backend as a table over the op records.

An adapter declares, per op record, one :class:`Row`: how its framework computes the op's forward
(a function of the rank and the contract's arguments, in whatever form the adapter's ``run``
hook takes), how it computes the backward (nothing: the adapter's one autodiff helper derives it
from the forward; or a function of its own; or the registry id of why it cannot), and what it
cannot express. :func:`contract_functions` turns the table into the contract's module-level
functions at every rank of every record (``conv1d``, ``conv1d_backward``, ..., ``pad``), each
with nnref's own signature, so ``--impl conformance.backends.torch_backend`` and
``diff NAME=MODULE`` see an ordinary module. One mechanism for all the framework backends:

    TABLE = {"conv": Row(_conv), "relu": Row(_relu, backward=_relu_backward), ...}
    globals().update(contract_functions(TABLE, NAME, run=_run, autodiff=_autodiff))

What a generated function does, in order:

1. binds its arguments to nnref's signature (a wrong call is the TypeError a plain function
   gives) and applies nnref's defaults;
2. checks every array argument (annotated ``np.ndarray`` in nnref) that is not None with the
   adapters' dtype rule (``arguments.float_input``: float32 / float64, ValueError naming it);
3. forward: ``run(row.forward, rank, arguments)``; backward: ``row.backward(rank, **arguments)``
   when the row has one, else ``autodiff(record, row.forward, rank, arguments)``.

In float16 / bfloat16 (``storage``), every generated function is held to the default arithmetic
(float32 accumulation, one rounding to the format: conformance.low_precision) unless its row's
``low_precision`` names the registry entry that shows its kernel departs from it: judged by the
storage-accumulation bound instead (the module's generated ``CONFORMANCE_ACCUMULATION`` mapping
says so per function and format), or not computed at all (``Unsupported``).

``rank`` is the spatial rank the function's name fixes (``conv3d`` -> 3), or None for functions
whose rank comes from their input (``pad``, ``batch_norm``, ``relu``, ``linear``). A row whose
forward or backward cannot be expressed names the registry entry saying why; calls raise
:class:`~conformance.backends.Unsupported` with that id.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nnref

from . import Unsupported
from .arguments import float_input

# run(forward, rank, arguments) -> the contract's result (NumPy arrays)
Run = Callable[[Callable[..., Any], int | None, dict[str, Any]], Any]
# autodiff(record, forward, rank, arguments) -> the backward contract's result
Autodiff = Callable[[Any, Callable[..., Any], int | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class LowPrecision:
    """How a framework's float16 / bfloat16 kernel departs from the default arithmetic (float32
    accumulation, one rounding to the format), and the registry id that shows it.
    ``accumulation="storage"``: judged by the storage-accumulation bound; None: no kernel, or
    one beyond even that bound: calls in the format raise Unsupported(``divergence``).
    ``where``: where the departure depends on the CPU, the framework's own test of whether this
    machine takes the departing kernel (asked once, when the backend module is built); on a
    machine where it says no, the entry does not apply and the call is held to the default
    arithmetic (or to the next matching entry)."""

    divergence: str
    accumulation: str | None = "storage"
    where: Callable[[], bool] | None = None

    def applies(self) -> bool:
        """Whether this machine takes the departing kernel (always, without ``where``)."""
        return self.where is None or bool(self.where())


# The words a Row.low_precision key may combine (space-separated; "" matches every call).
QUALIFIERS = {"forward", "backward", "float16", "bfloat16", "1d", "2d", "3d"}


@dataclass(frozen=True)
class Row:
    """How one framework computes one op record (see the module docstring).

    ``forward`` / ``backward`` None with ``unsupported`` set: that direction cannot be
    expressed; ``unsupported`` is the registry id (conformance/divergences.toml) saying why.
    ``backward`` None without ``unsupported``: the adapter's autodiff helper derives it.
    ``doc``: one line on how the framework computes it (the generated functions' docstring).
    ``low_precision``: key (QUALIFIERS, e.g. "backward", "forward float16", "3d") -> how the
    matching float16 / bfloat16 calls depart from the default arithmetic; the first key that
    matches, and whose entry applies on this machine (``LowPrecision.where``), applies.
    """

    forward: Callable[..., Any] | None
    backward: Callable[..., Any] | None = None
    unsupported: str = ""
    backward_unsupported: str = ""
    doc: str = ""
    low_precision: Mapping[str, LowPrecision] = field(default_factory=dict)


def _low_precision(row: Row, framework: str, record: str, direction: str, rank: int | None,
                   storage: str, here: bool = True) -> LowPrecision | None:
    """The first of the row's low-precision entries matching this call, if any (``here``: that
    applies on this machine; else the first CPU-dependent one, whether it applies or not)."""
    for key, entry in row.low_precision.items():
        words = set(key.split())
        if unknown := words - QUALIFIERS:
            raise KeyError(f"{framework}: {record}: low_precision key {key!r}: unknown "
                           f"{sorted(unknown)} (one of {sorted(QUALIFIERS)})")
        ranks = words & {"1d", "2d", "3d"}
        if ranks and rank is None:
            raise KeyError(f"{framework}: {record}: low_precision key {key!r} names a rank, "
                           f"but the record's functions do not")
        if (words & {"forward", "backward"} <= {direction}
                and words & {"float16", "bfloat16"} <= {storage}
                and ranks <= {f"{rank}d"}
                and (entry.applies() if here else entry.where is not None)):
            return entry
    return None


def _array_parameters(signature: inspect.Signature) -> tuple[str, ...]:
    """The parameters nnref annotates as arrays (x, w, b, dy, gamma, running_mean, ...)."""
    return tuple(p.name for p in signature.parameters.values()
                 if "ndarray" in str(p.annotation))


def ranked(record: Any) -> bool:
    """Whether the record's function names carry the rank (conv1d / conv2d / conv3d)."""
    return len({record.functions(r) for r in record.ranks}) == len(record.ranks) > 1


def contract_arguments(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` of nnref's ``name`` bound to its signature, its defaults filled in (what a
    generated function hands its row)."""
    bound = inspect.signature(getattr(nnref, name)).bind(**arguments)
    bound.apply_defaults()
    return dict(bound.arguments)


def _function(name: str, call: Callable[[dict[str, Any]], Any], doc: str,
              module: str, storage: tuple[str, ...] = (),
              refused: Mapping[str, str] | None = None) -> Callable[..., Any]:
    """``refused``: storage format -> the registry id of why calls in it are not computed."""
    signature = inspect.signature(getattr(nnref, name))
    arrays = _array_parameters(signature)

    def contract_function(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for key in arrays:
            if arguments[key] is not None:
                arguments[key] = float_input(arguments[key], key, storage)
                if refused and arguments[key].dtype.name in refused:
                    fmt = arguments[key].dtype.name
                    raise Unsupported(refused[fmt], f"{name} in {fmt}: see the registry")
        return call(arguments)

    contract_function.__signature__ = signature  # type: ignore[attr-defined]
    contract_function.__name__ = contract_function.__qualname__ = name
    contract_function.__doc__ = doc
    contract_function.__module__ = module
    return contract_function


def _run_forward(run: Run, forward: Callable[..., Any], rank: int | None,
                 arguments: dict[str, Any]) -> Any:
    return run(forward, rank, arguments)


def _call_backward(backward: Callable[..., Any], rank: int | None,
                   arguments: dict[str, Any]) -> Any:
    return backward(rank, **arguments)


def _unsupported(divergence_id: str, message: str) -> Callable[..., Any]:
    def call(arguments: dict[str, Any]) -> Any:
        raise Unsupported(divergence_id, message)
    return call


def contract_functions(table: Mapping[str, Row], framework: str, *, run: Run,
                       autodiff: Autodiff | None = None, module: str = "",
                       storage: tuple[str, ...] = (),
                       low_precision: LowPrecision | Mapping[str, LowPrecision] | None = None
                       ) -> dict[str, Any]:
    """Every contract function of every record, computed as `table` says (module docstring).
    ``storage``: the low-precision formats ("float16", "bfloat16") the backend computes in,
    handed to ``run`` / ``autodiff`` as they are (float32 / float64 always). With ``storage``,
    also the module's ``CONFORMANCE_ACCUMULATION`` mapping ("float32" but where a row's
    ``low_precision`` says "storage"), ``LOW_PRECISION_DIVERGENCES`` ("<function> <format>"
    -> the registry id of every departure) and ``CPU_DEPENDENT_DIVERGENCES`` ("<function>
    <format>" -> the id of an entry that holds on some CPUs only, ``LowPrecision.where``, whether
    it holds on this one or not: another machine may compute, declare or refuse that call
    differently, which stored outputs must allow). ``low_precision``: the departure of every
    function a row's own ``low_precision`` does not cover (a framework that computes in the
    storage format throughout), or such departures by key as a row's, where a key may also start
    with a record name ("batch_norm float16"): for runners sharing one table (the ONNX backends).

    Raises KeyError when the table has no row for a record, or names a record that does not
    exist: a backend states what it does with every op.
    """
    from ..ops import RECORDS

    names = {r.name for r in RECORDS}
    if missing := names - set(table):
        raise KeyError(f"{framework}: no table row for {sorted(missing)}")
    if unknown := set(table) - names:
        raise KeyError(f"{framework}: table rows for unknown records {sorted(unknown)}")
    out: dict[str, Any] = {}
    declared: dict[str, str] = {"*": "float32"}
    divergences: dict[str, str] = {}
    cpu_dependent: dict[str, str] = {}

    def departures(name: str, row: Row, direction: str, rank: int | None) -> dict[str, str]:
        refused = {}
        for fmt in storage:
            if varies := _low_precision(row, framework, rec.name, direction, rank, fmt,
                                        here=False):
                cpu_dependent[f"{name} {fmt}"] = varies.divergence
            entry = _low_precision(row, framework, rec.name, direction, rank, fmt)
            if entry is None and isinstance(low_precision, LowPrecision) \
                    and low_precision.applies():
                entry = low_precision
            elif entry is None and low_precision:
                shared: dict[str, LowPrecision] = {}
                for key, value in low_precision.items():  # in order; the first match wins
                    head = key.split(" ")[0]
                    if head not in names or head == rec.name:
                        shared.setdefault(key.removeprefix(rec.name).strip(), value)
                entry = _low_precision(Row(None, low_precision=shared), framework, rec.name,
                                       direction, rank, fmt)
            if entry is None:
                continue
            divergences[f"{name} {fmt}"] = entry.divergence
            if entry.accumulation is None:
                refused[fmt] = entry.divergence
            else:
                declared[f"{name} {fmt}"] = entry.accumulation
        return refused

    for rec in RECORDS:
        row = table[rec.name]
        for rank in rec.ranks:
            forward_name, backward_name = rec.functions(rank)
            if forward_name in out:
                continue
            fixed_rank = rank if ranked(rec) else None
            doc = f"{forward_name} on {framework}: {row.doc}" if row.doc else \
                f"{forward_name} on {framework}."
            if row.forward is None:
                fwd = _unsupported(row.unsupported, f"{framework} cannot compute {forward_name}")
            else:
                fwd = functools.partial(_run_forward, run, row.forward, fixed_rank)
            out[forward_name] = _function(
                forward_name, fwd, doc, module, storage,
                departures(forward_name, row, "forward", fixed_rank))
            if row.backward is not None:
                bwd = functools.partial(_call_backward, row.backward, fixed_rank)
                bdoc = f"{backward_name} on {framework}."
            elif row.backward_unsupported or row.forward is None or autodiff is None:
                reason = row.backward_unsupported or row.unsupported
                if not reason:
                    raise KeyError(f"{framework}: {rec.name} has no backward, no autodiff helper "
                                   "and no registry id saying why")
                bwd = _unsupported(reason, f"{framework} has no gradient of {forward_name}")
                bdoc = f"Not expressible on {framework}: [{reason}]."
            else:
                bwd = functools.partial(autodiff, rec, row.forward, fixed_rank)
                bdoc = f"{backward_name} on {framework}: its autodiff through {forward_name}."
            out[backward_name] = _function(
                backward_name, bwd, bdoc, module, storage,
                departures(backward_name, row, "backward", fixed_rank))
    if storage:
        out["CONFORMANCE_ACCUMULATION"] = declared
        out["LOW_PRECISION_DIVERGENCES"] = divergences
        out["CPU_DEPENDENT_DIVERGENCES"] = cpu_dependent
    return out
