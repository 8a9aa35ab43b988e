"""What every peer of the benchmark (``benchmarks/bench.py``) shares: the prepared call, and the
low-precision rules read off the peer's adapter.

A *peer* is a framework the benchmark times next to nnref, on the same bench case, in the same
process: a module ``conformance/backends/<name>_bench.py`` named by its backend registry row
(``Backend.bench``), offering

- ``prepare(case, arrays, direction) -> PreparedCall``: the adapter's computation of the case,
  its inputs converted to the framework once, as a zero-argument call (``direction`` one of
  :data:`DIRECTIONS`); ``NotImplementedError`` for what the framework cannot express,
  ``Unsupported`` (with the registry id) for what its adapter does not compute;
- ``accumulation(function, storage)``: the arithmetic its adapter declares in a low-precision
  format (:func:`accumulation` over the adapter module);
- ``set_threads(n)``, ``info()`` (versions and thread counts for the header) and
  ``spin_probe()`` (a call long enough to wake the framework's whole thread pool, for the idle
  spin the benchmark waits out between blocks).

A peer's timed call produces the framework's results; :meth:`PreparedCall.outputs` converts one
(not timed) to the contract's named NumPy outputs for the benchmark's agreement check.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from conformance import low_precision as lp
from conformance.backends import Unsupported, backend

DIRECTIONS = ("forward", "backward", "forward+backward")


def functions(case: Any, direction: str) -> tuple[str, ...]:
    """The contract functions a direction runs: ``("conv2d",)``, ``("conv2d_backward",)`` or
    both, forward first."""
    return {"forward": (case.op,), "backward": (case.backward_op,),
            "forward+backward": (case.op, case.backward_op)}[direction]


def storage_dtype(storage: Any) -> np.dtype:
    """A format given as a dtype or by name ("bfloat16" is ml_dtypes', not NumPy's own)."""
    if isinstance(storage, str):
        by_name = {d.name: d for d in lp.storage_dtypes()}
        return by_name[storage] if storage in by_name else np.dtype(storage)
    return np.dtype(storage)


def accumulation(adapter: ModuleType, function: str, storage: Any) -> str | None:
    """What ``adapter`` declares for ``function`` in the low-precision ``storage`` format:
    ``"float32"`` (the default arithmetic) or ``"storage"`` (held to the storage-accumulation
    bound); None when it declares nothing (``low_precision.declared_accumulation``)."""
    return lp.declared_accumulation(adapter, function, storage_dtype(storage))


def refusal(adapter: ModuleType, function: str, storage: Any) -> str | None:
    """The registry id of why ``adapter`` does not compute ``function`` in ``storage`` (a
    departure it names without an accumulation: its contract function raises ``Unsupported``),
    None when it does."""
    key = f"{function} {storage_dtype(storage).name}"
    divergence = getattr(adapter, "LOW_PRECISION_DIVERGENCES", {}).get(key)
    return None if key in getattr(adapter, "CONFORMANCE_ACCUMULATION", {}) else divergence


def check_storage(adapter: ModuleType, name: str, case: Any, direction: str,
                  dtype: np.dtype) -> None:
    """Refuse a low-precision call the adapter of backend ``name`` does not compute: a format
    it has no kernels for (NotImplementedError), or a function it refuses in the format
    (``Unsupported`` with the registry id), as its contract functions do."""
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return
    if dtype.name not in backend(name).storage_formats:
        raise NotImplementedError(f"the {name} adapter does not compute in {dtype.name}")
    for function in functions(case, direction):
        divergence = refusal(adapter, function, dtype)
        if divergence is not None:
            raise Unsupported(divergence, f"{name} does not compute {function} in {dtype.name}")


class PreparedCall:
    """A prepared peer call: ``call()`` runs it; ``outputs(result)`` names what it returned.

    ``run`` is the bare zero-argument function (time it directly to skip one method call);
    ``names`` are the contract's output names of the direction, forward then backward;
    ``convert(value, dtype)`` makes one result a NumPy copy (floats in ``dtype``, x's; indices
    int64). ``outputs``, when given, replaces the conversion: the contract outputs of a call
    whose timed part returns the framework's raw results (onnxruntime's session outputs).
    """

    def __init__(self, run: Callable[[], Any], names: tuple[str, ...], dtype: np.dtype,
                 convert: Callable[[Any, np.dtype], np.ndarray],
                 outputs: Callable[[Any], tuple[Any, ...]] | None = None) -> None:
        self.run = run
        self.names = names
        self.dtype = dtype
        self.convert = convert
        self._contract = outputs
        # Bytes the call allocates at peak (outputs and temporaries, not its inputs), where the
        # framework can tell (JAX: XLA's buffer assignment); None where it keeps no counter.
        self.peak_bytes: int | None = None

    def __call__(self) -> Any:
        return self.run()

    def outputs(self, result: Any) -> dict[str, np.ndarray]:
        """The result of one call as NumPy copies, by contract output name."""
        if self._contract is not None:
            result = self._contract(result)
        values = result if isinstance(result, tuple | list) else (result,)
        if len(values) != len(self.names):
            raise TypeError(f"returned {len(values)} outputs, expected {self.names}")
        return {n: self.convert(v, self.dtype) for n, v in zip(self.names, values, strict=True)}


def direction_names(case: Any, direction: str) -> tuple[str, ...]:
    """The contract's output names of a direction, forward then backward."""
    forward, backward = tuple(case.outputs("forward")), tuple(case.outputs("backward"))
    return {"forward": forward, "backward": backward,
            "forward+backward": forward + backward}[direction]


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
