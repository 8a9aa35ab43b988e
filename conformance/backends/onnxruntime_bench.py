"""onnxruntime's side of the benchmark (``benchmarks/bench.py``): forwards only.

A case's onnxruntime call is its record's row of ``onnx_backend.TABLE`` (the graph the suite
checks), run by :func:`prepare` once through a capturing runner: every model the forward builds
is given an ``InferenceSession`` of the benchmark's own, and its feeds (NumPy, made once) are
kept. The timed call is ``session.run`` of those sessions on those feeds: onnxruntime's kernels
and its session overhead, not the adapter's argument checks or its NumPy post-processing (plane
offsets of MaxPool indices, concatenated adaptive bins are in the graph). The contract outputs
the agreement check compares are those of the capturing call, made by the same sessions.

The benchmark's sessions differ from the suite's (``onnxruntime_backend``): as a user deploys a
model, with onnxruntime's default graph optimisations (``ORT_ENABLE_ALL``) and
:data:`THREADS` intra-op threads (the suite uses one thread and no optimisation, so that every
number comes from the op it names); the agreement check holds the optimised graph to the same
error model.

ONNX has no automatic differentiation (``onnx-no-autodiff``): backward directions raise
``NotImplementedError``. Low-precision formats follow the adapter's declarations
(:func:`accumulation`; bfloat16 is refused: ``onnxruntime-no-bfloat16``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from conformance.backends import Unsupported, bench_peer, onnxruntime_backend
from conformance.backends.bench_peer import PreparedCall
from conformance.backends.onnx_backend import TABLE, Spec, build_model, table_run
from conformance.backends.table import contract_arguments, ranked

NAME = "onnxruntime"
THREADS = 2
_SESSIONS: dict[Spec, ort.InferenceSession] = {}


def accumulation(function: str, storage: Any) -> str | None:
    """What the onnxruntime adapter declares for ``function`` in the low-precision format."""
    return bench_peer.accumulation(onnxruntime_backend, function, storage)


def _convert(value: Any, dtype: np.dtype) -> np.ndarray:
    a = np.asarray(value)
    floating = a.dtype.kind == "f" or a.dtype.name == "bfloat16"
    return np.array(a, dtype=dtype if floating else np.int64, copy=True)


def _options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def _session(spec: Spec) -> ort.InferenceSession:
    if spec not in _SESSIONS:
        _SESSIONS.clear()  # one case at a time: sessions hold their weights and arenas
        _SESSIONS[spec] = ort.InferenceSession(build_model(spec).SerializeToString(), _options(),
                                               providers=["CPUExecutionProvider"])
    return _SESSIONS[spec]


def prepare(case: Any, arrays: Mapping[str, np.ndarray], direction: str) -> PreparedCall:
    """The onnxruntime row for ``case`` on ``arrays`` as a zero-argument call of its sessions
    (module docstring). ``NotImplementedError`` for a backward direction; ``Unsupported`` for a
    configuration the adapter refuses (a registry id) or a kernel onnxruntime lacks."""
    bench_peer.check_direction(direction)
    row = TABLE[case.record.name]
    if direction != "forward" or row.forward is None:
        raise NotImplementedError(f"onnxruntime has no gradients "
                                  f"[{row.backward_unsupported or row.unsupported}]")
    dtype = np.dtype(arrays["x"].dtype)
    bench_peer.check_storage(onnxruntime_backend, NAME, case, direction, dtype)
    runs: list[tuple[ort.InferenceSession, dict[str, np.ndarray]]] = []

    def capture(spec: Spec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for bug, hits in onnxruntime_backend.KNOWN_BUGS.items():
            if hits(spec, feeds):
                raise Unsupported(bug, f"onnxruntime: known bug {bug}")
        try:
            session = _session(spec)
        except ort.capi.onnxruntime_pybind11_state.NotImplemented as exc:
            raise Unsupported("onnxruntime-no-float64-kernel"
                              if dtype == np.float64 else "onnxruntime-no-low-precision-kernel",
                              f"onnxruntime's CPU provider: {str(exc)[:120]}") from exc
        kept = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
        runs.append((session, kept))
        return session.run(None, kept)

    arguments = contract_arguments(case.op, case.call_args("forward", arrays))
    result = table_run(capture)(row.forward, case.rank if ranked(case.record) else None, arguments)
    outputs = result if isinstance(result, tuple) else (result,)
    names = bench_peer.direction_names(case, direction)
    timed = tuple(runs)

    def run() -> Any:
        return [session.run(None, feeds) for session, feeds in timed]

    return PreparedCall(run, names, dtype, _convert, lambda _raw: outputs)


# ------------------------------------------------------------------------- benchmark helpers


def set_threads(threads: int) -> None:
    """The intra-op thread count of the benchmark's sessions."""
    global THREADS
    THREADS = threads
    _SESSIONS.clear()


def info() -> dict[str, Any]:
    return {"onnxruntime": ort.__version__, "onnxruntime_threads": THREADS,
            "onnxruntime_graph_optimization": "ORT_ENABLE_ALL"}


def spin_probe() -> Callable[[], None]:
    """A medium float32 Conv session: long enough to wake onnxruntime's thread pool."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16, 32, 32])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [32, 16, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                              "probe", [x, w], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    model.ir_version = 13
    session = ort.InferenceSession(model.SerializeToString(), _options(),
                                   providers=["CPUExecutionProvider"])
    feeds = {"x": np.ones((8, 16, 32, 32), np.float32), "w": np.ones((32, 16, 3, 3), np.float32)}

    def run() -> None:
        session.run(None, feeds)

    return run
