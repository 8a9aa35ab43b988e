"""The forward half of the nnref contract on onnxruntime's CPU provider (NAME "onnxruntime").

The graphs, every convention and the table of forwards (TABLE) are onnx_backend's (see its
docstring); this module runs them, with one InferenceSession cached per model (op, attributes,
shapes, dtype), and gets its contract functions from table.contract_functions with its runner.

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

from conformance.backends import Unsupported, backend
from conformance.backends.onnx_backend import TABLE, Spec, build_model, spec_nodes, table_run
from conformance.backends.onnx_backend import effective_attributes as effective_attributes
from conformance.backends.table import LowPrecision, contract_functions

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
        if spec[3] in ("float16", "bfloat16") and found:
            return Unsupported("onnxruntime-no-low-precision-kernel",
                               f"onnxruntime's CPU provider has no {spec[3]} kernel for "
                               f"{found.group(1)}")
        raise


def _run(spec: Spec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = _session(spec)
    if isinstance(session, Unsupported):
        raise session
    return session.run(None, feeds)


# Known onnxruntime bugs (conformance/divergences.toml): one predicate per id over the graph and
# its input x; a graph that hits one raises Unsupported(id).

# onnxruntime-sigmoid-accuracy: below these x the CPU Sigmoid leaves the suite's error model
# (gamma(4) relative + tiny) somewhere; measured over every float32 in [-4, -1) (largest
# failing x -1.80451) and 4e6 random float64 in [-4, -1) (largest failing -2.364302); no
# failure above them (x in [-1, 40]).
SIGMOID_BELOW = {"float32": -1.8045, "float64": -2.3643}


def _sigmoid_accuracy(spec: Spec, feeds: dict[str, np.ndarray]) -> bool:
    x = feeds["x"]
    below = SIGMOID_BELOW.get(x.dtype.name)  # measured for float32 / float64
    return (below is not None and any(op == "Sigmoid" for op, *_ in spec_nodes(spec))
            and bool((x < below).any()))


def _maxpool_neg_inf(spec: Spec, feeds: dict[str, np.ndarray]) -> bool:
    # onnxruntime-maxpool-neg-inf: float32 MaxPool without Indices and GlobalMaxPool give
    # -FLT_MAX for a window whose cells are all -inf. Found by running the same graph on the
    # indicator x != -inf (1 / 0): a 0 output is such a window (an empty window gives -FLT_MAX).
    x = feeds["x"]
    if x.dtype != np.float32 or not np.isneginf(x).any() or not any(
            op == "GlobalMaxPool" or (op == "MaxPool" and n_out == 1)
            for op, _, n_out, _ in spec_nodes(spec)):
        return False
    (y, *_) = _run(spec, {**feeds, "x": (x != -np.inf).astype(np.float32)})
    return bool((y == 0).any())


KNOWN_BUGS = {
    "onnxruntime-sigmoid-accuracy": _sigmoid_accuracy,
    "onnxruntime-maxpool-neg-inf": _maxpool_neg_inf,
}


def run(spec: Spec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the model of `spec` on `feeds`; its outputs in order, as NumPy arrays (Unsupported
    for a graph hitting a known bug)."""
    for bug, hits in KNOWN_BUGS.items():
        if hits(spec, feeds):
            raise Unsupported(bug, f"onnxruntime: known bug {bug}")
    return _run(spec, feeds)


# float16: MLAS accumulates in float32 and rounds once, except in the normalisations and LpPool
# (onnxruntime-float16-norm-rounding, judged by the storage bound); bfloat16: the CPU provider
# has no kernel (onnxruntime-no-bfloat16), not computed.
_FLOAT16_NORM = LowPrecision("onnxruntime-float16-norm-rounding")
globals().update(contract_functions(
    TABLE, "onnxruntime", run=table_run(run), module=__name__,
    storage=backend("onnxruntime").storage_formats,
    low_precision={"bfloat16": LowPrecision("onnxruntime-no-bfloat16", accumulation=None),
                   "batch_norm float16": _FLOAT16_NORM, "group_norm float16": _FLOAT16_NORM,
                   "instance_norm float16": _FLOAT16_NORM, "layer_norm float16": _FLOAT16_NORM,
                   "lp_pool float16": _FLOAT16_NORM}))
