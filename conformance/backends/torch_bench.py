"""torch's own CPU kernels for the benchmark (``benchmarks/bench.py``), one op record at a time.

The contract adapter (``torch_backend``) converts NumPy arrays to tensors on every call and
composes what torch cannot express, which is right for checking and wrong for timing. Here a
case's arrays are converted to tensors *once* by :func:`prepare`, which returns a zero-argument
:class:`TorchCall` running torch's native op the way a torch user would write it:

- ``"forward"``: the op under ``torch.no_grad()``;
- ``"backward"``: ``torch.autograd.grad`` of the forward's first output (``y``) for the
  differentiable inputs (``case.differentiable``), with ``dy``, from a graph built once in
  :func:`prepare` and kept (``retain_graph=True``): the backward kernels only;
- ``"forward+backward"``: the forward with gradients enabled, then ``autograd.grad``.

A call's result converts to the contract's named outputs with :meth:`TorchCall.outputs` (for the
benchmark's agreement check; not timed). Cases torch has no single native call for (max-pool
indices with asymmetric padding, an op without a builder below) raise ``NotImplementedError``,
which the benchmark reports as an ``n/a`` row.

Also here, so that the benchmark itself never imports torch: the thread setting
(:func:`set_threads`), version and thread information (:func:`info`), the ``torch.mm`` call of
the GEMM-peak measurement (:func:`matmul`) and the call whose idle-thread spin the benchmark
measures (:func:`spin_probe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from conformance.backends.arguments import (
    pool_geometry,
)
from conformance.cases import spatial

DIRECTIONS = ("forward", "backward", "forward+backward")

Tensors = dict[str, torch.Tensor]
# A case's forward on tensors: its outputs in the order of case.outputs("forward"), y first.
Forward = Callable[[Tensors], tuple[torch.Tensor, ...]]


class TorchCall:
    """A prepared torch call: ``call()`` runs it; ``outputs(result)`` names what it returned.

    ``run`` is the bare zero-argument function (time it directly to skip one method call);
    ``names`` are the contract's output names of the direction, forward then backward.
    """

    def __init__(self, run: Callable[[], Any], names: tuple[str, ...]) -> None:
        self.run = run
        self.names = names

    def __call__(self) -> Any:
        return self.run()

    def outputs(self, result: Any) -> dict[str, np.ndarray]:
        """The result of one call as NumPy copies, by contract output name."""
        values = result if isinstance(result, tuple | list) else (result,)
        if len(values) != len(self.names):
            raise TypeError(f"torch returned {len(values)} outputs, expected {self.names}")
        return {n: np.array(v.detach().numpy(), copy=True)
                for n, v in zip(self.names, values, strict=True)}


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A private, contiguous torch copy (torch updates running statistics in place; the
    benchmark's arrays are shared with nnref and must stay as they are)."""
    return torch.from_numpy(np.array(a, copy=True, order="C"))


def _torch_pads(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Contract ((b1, a1), ..., (br, ar)) -> F.pad's (br, ar, ..., b1, a1): last axis first."""
    return tuple(v for pair in reversed(pads) for v in pair)


# ------------------------------------------------------------------------- one builder per op
# builder(case, tensors) -> (forward on tensors, inputs that exist for the gradients only: conv's
# db without a bias is the gradient of a zero bias).


def _pad(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    pads = _torch_pads(case.pads())
    extra = {"value": float(case.value)} if case.mode == "constant" else {}

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        return (F.pad(t["x"], pads, mode=case.mode, **extra),)

    return forward, {}


def _conv(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    r = case.rank
    conv = getattr(F, f"conv{r}d")
    stride, dilation, groups = spatial(case.stride, r), spatial(case.dilation, r), case.groups
    pads = case.resolved_pads()
    symmetric = all(b == a for b, a in pads)
    padding = tuple(b for b, _ in pads) if symmetric else 0
    pre_pad = None if symmetric else _torch_pads(pads)  # what a torch user does: F.pad first

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        x = t["x"] if pre_pad is None else F.pad(t["x"], pre_pad)
        return (conv(x, t["w"], t.get("b"), stride, padding, dilation, groups),)

    return forward, {"b": torch.zeros(case.w_shape[0], dtype=t["x"].dtype)}


def _conv_transpose(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    r = case.rank
    conv_t = getattr(F, f"conv_transpose{r}d")
    _, stride, padding, output_padding, dilation = case.geometry()

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        return (conv_t(t["x"], t["w"], t.get("b"), stride, padding, output_padding,
                       case.groups, dilation),)

    return forward, {"b": torch.zeros(case.out_channels, dtype=t["x"].dtype)}


def _max_pool(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    r = case.rank
    pool = getattr(F, f"max_pool{r}d")
    geo = pool_geometry(case.shape, r, case.kernel_size, case.stride, case.padding,
                        case.dilation, case.ceil_mode)
    indices = case.return_indices
    if geo.symmetric:
        padding = tuple(b for b, _ in geo.pads)

        def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
            out = pool(t["x"], geo.kernel, geo.stride, padding, geo.dilation,
                       ceil_mode=case.ceil_mode, return_indices=indices)
            return out if indices else (out,)

        return forward, {}
    if indices:
        raise NotImplementedError("torch's max pool pads symmetrically only; its indices for an "
                                  "asymmetrically padded pool are not the contract's")
    pre_pad = _torch_pads(geo.floor_pads)
    crop = (slice(None), slice(None), *(slice(o) for o in geo.out))

    def forward_padded(t: Tensors) -> tuple[torch.Tensor, ...]:
        xp = F.pad(t["x"], pre_pad, value=float("-inf"))
        return (pool(xp, geo.kernel, geo.stride, 0, geo.dilation)[crop],)

    return forward_padded, {}


def _avg_pool(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    r = case.rank
    kernel, stride, pads = case.geometry()
    if r == 1 and case.divisor_override is not None:  # F.avg_pool1d has none: a 2-D view
        def forward_view(t: Tensors) -> tuple[torch.Tensor, ...]:
            y = F.avg_pool2d(t["x"][:, :, None], (1, *kernel), (1, *stride), (0, *pads),
                             case.ceil_mode, case.count_include_pad, case.divisor_override)
            return (y[:, :, 0],)

        return forward_view, {}
    pool = getattr(F, f"avg_pool{r}d")
    extra = {} if r == 1 else {"divisor_override": case.divisor_override}

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        return (pool(t["x"], kernel, stride, pads, case.ceil_mode, case.count_include_pad,
                     **extra),)

    return forward, {}


def _lp_pool(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    pool = getattr(F, f"lp_pool{case.rank}d")

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        return (pool(t["x"], case.norm_type, case.kernel_size, case.stride, case.ceil_mode),)

    return forward, {}
def _adaptive_pool(kind: str) -> Callable[[Any, Tensors], tuple[Forward, Tensors]]:
    def build(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
        pool = getattr(F, f"adaptive_{kind}_pool{case.rank}d")
        size = case.out_sizes()  # ints: torch's 1-D pools take no None
        extra = {"return_indices": True} if getattr(case, "return_indices", False) else {}

        def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
            y = pool(t["x"], size, **extra)
            return (y[0],) if isinstance(y, tuple) else (y,)

        return forward, {}

    return build


def _batch_norm(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    training, momentum, eps = case.training, float(case.momentum), float(case.eps)
    running = case.training and case.running

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        rm, rv = t.get("running_mean"), t.get("running_var")
        y = F.batch_norm(t["x"], rm, rv, t["gamma"], t["beta"], training=training,
                         momentum=momentum, eps=eps)
        return (y, rm, rv) if running else (y,)  # torch updates rm, rv in place

    return forward, {}


_BUILDERS: dict[str, Callable[[Any, Tensors], tuple[Forward, Tensors]]] = {
    "pad": _pad,
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "lp_pool": _lp_pool,
    "adaptive_avg_pool": _adaptive_pool("avg"),
    "adaptive_max_pool": _adaptive_pool("max"),
    "batch_norm": _batch_norm,
}


# activations and the dense layer: F.relu, F.elu, torch.sigmoid, F.linear


def _activation(fn: Callable[..., torch.Tensor]) -> Callable[[Any, Tensors],
                                                              tuple[Forward, Tensors]]:
    def build(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
        params = case.params()

        def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
            return (fn(t["x"], **params),)

        return forward, {}

    return build


def _linear(case: Any, t: Tensors) -> tuple[Forward, Tensors]:
    # without a bias, db is the gradient of a zero bias (a leaf the forward adds)
    grad_only = {} if case.bias else {"b": torch.zeros(case.out_features,
                                                       dtype=t["x"].dtype)}

    def forward(t: Tensors) -> tuple[torch.Tensor, ...]:
        return (F.linear(t["x"], t["w"], t.get("b")),)

    return forward, grad_only


_BUILDERS.update({
    "relu": _activation(F.relu),
    "elu": _activation(F.elu),
    "sigmoid": _activation(torch.sigmoid),
    "linear": _linear,
})


def prepare(case: Any, arrays: Mapping[str, np.ndarray], direction: str) -> TorchCall:
    """torch's native op for ``case`` on ``arrays`` (converted once), as a zero-argument call.

    ``direction`` is ``"forward"``, ``"backward"`` or ``"forward+backward"`` (module docstring).
    Raises ``NotImplementedError`` for a case torch has no native call for.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    builder = _BUILDERS.get(case.family)
    if builder is None:
        raise NotImplementedError(f"no native torch call for op record {case.family!r}")
    t = {k: _tensor(v) for k, v in arrays.items() if k != "dy"}
    forward, grad_only = builder(case, t)
    forward_names = tuple(case.outputs("forward"))
    backward_names = tuple(case.outputs("backward"))

    if direction == "forward":
        def run_forward() -> Any:
            with torch.no_grad():
                return forward(t)

        return TorchCall(run_forward, forward_names)

    dy = _tensor(arrays["dy"])
    # the gradient leaves, in the order of case.outputs("backward")
    leaves = {n: (t[n] if n in t else grad_only[n]).detach().requires_grad_()
              for n in case.differentiable}
    tg = {**t, **leaves}
    inputs = tuple(leaves.values())

    if direction == "backward":
        y = forward(tg)[0]

        def run_backward() -> Any:
            return torch.autograd.grad(y, inputs, dy, retain_graph=True)

        return TorchCall(run_backward, backward_names)

    def run_forward_backward() -> Any:
        outs = forward(tg)
        return (*outs, *torch.autograd.grad(outs[0], inputs, dy))

    return TorchCall(run_forward_backward, forward_names + backward_names)


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
