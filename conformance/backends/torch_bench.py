"""torch's side of the benchmark (``benchmarks/bench.py``): the torch adapter's table rows.

A case's torch call is its record's row of ``torch_backend.TABLE``: the row's forward (the
adapter's composition of F.* calls, with its argument checks) on tensors converted *once* by
:func:`prepare` (so no NumPy conversion is timed), as a zero-argument
:class:`~conformance.backends.bench_peer.PreparedCall`:

- ``"forward"``: the row's forward under ``torch.no_grad()``;
- ``"backward"``: ``torch.autograd.grad`` of the forward's first output (``y``) for the
  differentiable inputs (``case.differentiable``), with ``dy``, from a graph built once in
  :func:`prepare` and kept (``retain_graph=True``): the backward kernels only. The forward call
  is the record's ``gradient_call`` of the case's forward arguments (conv's db without a bias
  is the gradient of a zero bias), as the adapter's autodiff helper does; a row's corrections
  of torch's gradient (NaN products, empty windows) are not timed;
- ``"forward+backward"``: the forward with gradients enabled, then ``autograd.grad``.

A call's result converts to the contract's named outputs with :meth:`PreparedCall.outputs` (for
the benchmark's agreement check; not timed). A row torch cannot express raises
``NotImplementedError``, which the benchmark reports as an ``n/a`` row; a configuration the row
refuses when called (``Unsupported``) is reported the same way by the benchmark.

float16 and bfloat16 arrays (bfloat16: ``ml_dtypes.bfloat16``) become torch.float16 /
torch.bfloat16 tensors bit for bit, by the adapter's own conversion (``as_tensors``). The adapter
declares per contract function and format which kernels depart from float32 accumulation
(``torch_backend.CONFORMANCE_ACCUMULATION``, read through :func:`accumulation`) and which it does
not compute at all (a departure without an accumulation, e.g. avg_pool3d): :func:`prepare`
raises ``Unsupported`` with that registry id for those, as the adapter's contract functions do,
so the benchmark never times a kernel the suite does not accept.

Also here, so that the benchmark itself never imports torch: the thread setting
(:func:`set_threads`), version and thread information (:func:`info`), the ``torch.mm`` call of
the GEMM-peak measurement (:func:`matmul`), torch's copy for the copy bandwidth
(:func:`copy_probe`) and the call whose idle-thread spin the benchmark measures
(:func:`spin_probe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from conformance.backends import bench_peer, torch_backend
from conformance.backends.bench_peer import PreparedCall
from conformance.backends.torch_backend import TABLE, as_numpy, as_tensors, first_output

NAME = "torch"


def accumulation(function: str, storage: Any) -> str | None:
    """What the torch adapter declares for ``function`` in the low-precision ``storage`` format
    (``bench_peer.accumulation``)."""
    return bench_peer.accumulation(torch_backend, function, storage)


def _convert(value: Any, dtype: np.dtype) -> np.ndarray:
    return as_numpy(value, dtype)


def prepare(case: Any, arrays: Mapping[str, np.ndarray], direction: str) -> PreparedCall:
    """The torch adapter's row for ``case`` on ``arrays`` (converted once), as a zero-argument
    call.

    ``direction`` is ``"forward"``, ``"backward"`` or ``"forward+backward"`` (module docstring).
    Raises ``NotImplementedError`` for a direction the row cannot express, ``Unsupported`` (with
    the registry id) for a low-precision format the adapter does not compute the call in.
    """
    bench_peer.check_direction(direction)
    record = case.record
    row = TABLE[record.name]
    if row.forward is None:
        raise NotImplementedError(f"torch cannot compute {case.op} [{row.unsupported}]")
    forward, rank, dtype = row.forward, case.rank, np.dtype(arrays["x"].dtype)
    bench_peer.check_storage(torch_backend, NAME, case, direction, dtype)
    arguments = case.call_args("forward", arrays)
    forward_names = tuple(case.outputs("forward"))
    backward_names = tuple(case.outputs("backward"))

    if direction == "forward":
        t = as_tensors(arguments)

        def run_forward() -> Any:
            with torch.no_grad():
                return forward(rank, **t)

        return PreparedCall(run_forward, forward_names, dtype, _convert)

    if row.backward_unsupported:
        raise NotImplementedError(f"torch has no gradient of {case.op} "
                                  f"[{row.backward_unsupported}]")
    dy = as_tensors({"dy": arrays["dy"]})["dy"]  # bfloat16 bit for bit, as the adapter does
    differentiable = case.differentiable  # the gradient leaves, in backward_outputs' order
    t = as_tensors(record.case_type.gradient_call(arguments), differentiable)
    leaves = tuple(t[n] for n in differentiable)

    if direction == "backward":
        y = first_output(forward(rank, **t))

        def run_backward() -> Any:
            return torch.autograd.grad(y, leaves, dy, retain_graph=True)

        return PreparedCall(run_backward, backward_names, dtype, _convert)

    def run_forward_backward() -> Any:
        out = forward(rank, **t)
        outs = out if isinstance(out, tuple) else (out,)
        return (*outs, *torch.autograd.grad(outs[0], leaves, dy))

    return PreparedCall(run_forward_backward, forward_names + backward_names, dtype,
                        _convert)


# ------------------------------------------------------------------------- benchmark helpers


def set_threads(threads: int) -> None:
    """torch's intra-op thread count (the benchmark gives both libraries the same)."""
    torch.set_num_threads(threads)


def info() -> dict[str, Any]:
    """torch's version, thread counts and whether oneDNN (mkldnn) is available."""
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
    }


def matmul(a: np.ndarray, b: np.ndarray) -> Callable[[], None]:
    """``torch.mm(a, b)`` into a preallocated output, as a zero-argument call (GEMM peak)."""
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    out = torch.empty(a.shape[0], b.shape[1], dtype=at.dtype)

    def run() -> None:
        torch.mm(at, bt, out=out)

    return run


def spin_probe() -> Callable[[], None]:
    """A medium float32 conv2d under no_grad: long enough to wake torch's whole thread pool."""
    x = torch.ones(8, 16, 32, 32)
    w = torch.ones(32, 16, 3, 3)

    def run() -> None:
        with torch.no_grad():
            F.conv2d(x, w, padding=1)

    return run


def copy_probe(nbytes: int) -> Callable[[], None]:
    """``dst.copy_(src)`` of ``nbytes`` (float64), torch's multithreaded copy: the benchmark's
    copy bandwidth is the best of this and NumPy's single-threaded copy."""
    src = torch.ones(nbytes // 8, dtype=torch.float64)
    dst = torch.empty_like(src)

    def run() -> None:
        dst.copy_(src)

    return run
