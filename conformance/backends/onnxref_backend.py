"""The forward half of the nnref contract on onnx.reference.ReferenceEvaluator (NAME "onnx-ref").

The graphs, every convention and the table of forwards (TABLE) are onnx_backend's (see its
docstring); this module runs them, with one ReferenceEvaluator cached per model (op, attributes,
shapes, dtype), and gets its contract functions from table.contract_functions with its runner.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from onnx.reference import ReferenceEvaluator

from conformance.backends import Unsupported, backend
from conformance.backends.onnx_backend import TABLE, Spec, build_model, spec_nodes, table_run
from conformance.backends.onnx_backend import effective_attributes as effective_attributes
from conformance.backends.table import LowPrecision, contract_functions

NAME = "onnx-ref"


# Known onnx.reference bugs (conformance/divergences.toml): one predicate per id over a node of
# the graph (op type, attributes, number of outputs) and its input (the graph input x, or None
# when the node reads another node's output: a Slice of x); a graph that hits one raises
# Unsupported(id) before running.

def _ones(attrs: dict[str, Any], name: str) -> bool:
    return all(v == 1 for v in attrs.get(name, ()))


def _common_max_path(op: str, attrs: dict[str, Any]) -> bool:
    """MaxPool's CommonPool path: every stride and dilation 1 (absent means 1)."""
    return op == "MaxPool" and _ones(attrs, "strides") and _ones(attrs, "dilations")


def _maxpool_pads(op: str, attrs: dict[str, Any], n_out: int, x: np.ndarray | None) -> bool:
    # onnx-ref-maxpool-pads: the CommonPool path ignores pads at ranks 1 and 3 and reads 2-D
    # pads [b_h, b_w, e_h, e_w] as top, bottom, left, right (right only when b_w == e_h), and
    # with ceil_mode counts the 2-D pads twice in the output size.
    pads = list(attrs.get("pads", ()))
    if not _common_max_path(op, attrs) or not any(pads):
        return False
    return pads[1] != pads[2] or bool(attrs.get("ceil_mode")) if len(pads) == 4 else True


def _maxpool_indices(op: str, attrs: dict[str, Any], n_out: int, x: np.ndarray | None) -> bool:
    # onnx-ref-maxpool-indices: the CommonPool path unravels a window's argmax with the output
    # shape instead of the kernel shape: wrong at rank >= 2 unless the two agree past axis 0.
    if not _common_max_path(op, attrs) or n_out < 2 or len(attrs["kernel_shape"]) < 2:
        return False
    k = list(attrs["kernel_shape"])
    if x is None:  # the adaptive pools' per-bin MaxPool: its kernel is its whole input
        out = [1] * len(k)
    else:
        pads = list(attrs.get("pads", [0] * 2 * len(k)))
        out = [n + pads[i] + pads[i + len(k)] - k[i] + 1 for i, n in enumerate(x.shape[2:])]
    # with padding the index is wrong even where the shapes agree (found by a dev-profile run:
    # x (1, 3), kernel (2, 3), pads 1, window cells [0, 0]: index 2, a cell outside the window)
    padded = x is not None and any(attrs.get("pads", ()))
    return math.prod(k) > 1 and (k[1:] != out[1:] or padded)


def _avgpool_ceil_mode(op: str, attrs: dict[str, Any], n_out: int, x: np.ndarray | None) -> bool:
    # onnx-ref-avgpool-ceil-mode: the extra end padding of ceil_mode is split half to the
    # begin side, shifting every window, once it is 2 cells or more on some axis.
    if op != "AveragePool" or not attrs.get("ceil_mode") or x is None:
        return False
    k, s = list(attrs["kernel_shape"]), list(attrs.get("strides", [1] * len(attrs["kernel_shape"])))
    pads = list(attrs.get("pads", [0] * 2 * len(k)))
    for i, n in enumerate(x.shape[2:]):
        b, e = pads[i], pads[i + len(k)]
        out = math.ceil((n + b + e - k[i]) / s[i] + 1)
        if (out - 1) * s[i] >= n + b:
            out -= 1
        if (out - 1) * s[i] + k[i] - n - b - e >= 2:
            return True
    return False


def _pool_drops_nan(op: str, attrs: dict[str, Any], n_out: int, x: np.ndarray | None) -> bool:
    # onnx-ref-pool-drops-nan: AveragePool without count_include_pad and LpPool skip NaN cells.
    averaging = (op == "AveragePool" and not attrs.get("count_include_pad")) or op == "LpPool"
    return averaging and x is not None and bool(np.isnan(x).any())


def _globalmaxpool_axes(op: str, attrs: dict[str, Any], n_out: int, x: np.ndarray | None) -> bool:
    # onnx-ref-globalmaxpool-axes: reduces axes (ndim - 2, ndim - 1): right only for 4-D x.
    return op == "GlobalMaxPool" and x is not None and x.ndim != 4


def _convtranspose_groups(op: str, attrs: dict[str, Any], n_out: int, x: np.ndarray | None) -> bool:
    # onnx-ref-convtranspose-groups: group > 1 fails (reshape error) or is wrong.
    return op == "ConvTranspose" and attrs.get("group", 1) > 1


KNOWN_BUGS = {
    "onnx-ref-maxpool-pads": _maxpool_pads,
    "onnx-ref-maxpool-indices": _maxpool_indices,
    "onnx-ref-avgpool-ceil-mode": _avgpool_ceil_mode,
    "onnx-ref-pool-drops-nan": _pool_drops_nan,
    "onnx-ref-globalmaxpool-axes": _globalmaxpool_axes,
    "onnx-ref-convtranspose-groups": _convtranspose_groups,
}


def known_bug(spec: Spec, feeds: dict[str, np.ndarray]) -> None:
    """Raise Unsupported(id) if the graph hits a known onnx.reference bug."""
    for op, attrs, n_out, on_x in spec_nodes(spec):
        x = feeds["x"] if on_x else None
        for bug, hits in KNOWN_BUGS.items():
            if hits(op, attrs, n_out, x):
                raise Unsupported(bug, f"onnx.reference {op}: known bug {bug}")


@functools.lru_cache(maxsize=4096)
def _evaluator(spec: Spec) -> ReferenceEvaluator:
    return ReferenceEvaluator(build_model(spec))


def run(spec: Spec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the model of `spec` on `feeds`; its outputs in order, as NumPy arrays."""
    known_bug(spec, feeds)
    with np.errstate(all="ignore"):  # the evaluator is NumPy: exp overflow is its answer
        return [np.asarray(o) for o in _evaluator(spec).run(None, feeds)]


# float16 / bfloat16: the evaluator is NumPy on the inputs' dtype, every node's output rounded
# to it: judged by the storage-accumulation bound (onnx-ref-low-precision-storage-arithmetic);
# the norms' statistics and lp_pool's float16 powers leave even that bound (NaN from a float16
# square that overflows, running statistics off by 10x the bound): not computed
# (onnx-ref-low-precision-statistics).
_STATISTICS = LowPrecision("onnx-ref-low-precision-statistics", accumulation=None)
globals().update(contract_functions(
    TABLE, "onnx.reference", run=table_run(run), module=__name__,
    storage=backend("onnx-ref").storage_formats,
    low_precision={"batch_norm": _STATISTICS, "layer_norm": _STATISTICS,
                   "group_norm": _STATISTICS, "instance_norm": _STATISTICS,
                   "lp_pool float16": _STATISTICS,
                   "": LowPrecision("onnx-ref-low-precision-storage-arithmetic")}))
