"""The forward half of the nnref contract on onnxruntime's CPU provider (NAME "onnxruntime").

The graphs and every convention are onnx_backend's (see its docstring); this module only runs
them, with one InferenceSession cached per model (op, attributes, shapes, dtype).

Sessions use one intra-op thread (the suite runs many small models; results do not depend on a
thread split) and ORT_DISABLE_ALL graph optimisation: the session runs exactly the nodes built,
so every number comes from the kernel of the op named (no MatMul + Add -> Gemm fusion, no
constant folding, no NCHWc layout rewrites that reorder sums).
The CPU provider lacks float64 kernels for several ops (Conv, ConvTranspose, AveragePool, LpPool,
GlobalAveragePool, GlobalMaxPool, Elu at opset 26): found by trying at session creation
(NOT_IMPLEMENTED, cached) and raised as Unsupported("onnxruntime-no-float64-kernel").
"""

from __future__ import annotations

import functools
import re

import numpy as np
import onnxruntime as ort

from conformance.backends import Unsupported
from conformance.backends.onnx_backend import Spec, build_model, contract_functions

NAME = "onnxruntime"


def _options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return opts


@functools.lru_cache(maxsize=4096)
def _session(spec: Spec) -> ort.InferenceSession | Unsupported:
    try:
        return ort.InferenceSession(build_model(spec).SerializeToString(), _options(),
                                    providers=["CPUExecutionProvider"])
    except ort.capi.onnxruntime_pybind11_state.NotImplemented as e:
        found = re.search(r"Could not find an implementation for (\w+\(\d+\))", str(e))
        if spec[3] == "float64" and found:
            return Unsupported("onnxruntime-no-float64-kernel",
                               f"onnxruntime's CPU provider has no float64 kernel for "
                               f"{found.group(1)}")
        raise


def run(spec: Spec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the model of `spec` on `feeds`; its outputs in order, as NumPy arrays."""
    session = _session(spec)
    if isinstance(session, Unsupported):
        raise session
    return session.run(None, feeds)


globals().update(contract_functions(run, "onnxruntime"))
