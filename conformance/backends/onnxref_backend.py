"""The forward half of the nnref contract on onnx.reference.ReferenceEvaluator (NAME "onnx-ref").

The graphs and every convention are onnx_backend's (see its docstring); this module only runs
them, with one ReferenceEvaluator cached per model (op, attributes, shapes, dtype).
"""

from __future__ import annotations

import functools

import numpy as np
from onnx.reference import ReferenceEvaluator

from conformance.backends.onnx_backend import Spec, build_model, contract_functions

NAME = "onnx-ref"


@functools.lru_cache(maxsize=4096)
def _evaluator(spec: Spec) -> ReferenceEvaluator:
    return ReferenceEvaluator(build_model(spec))


def run(spec: Spec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the model of `spec` on `feeds`; its outputs in order, as NumPy arrays."""
    return [np.asarray(o) for o in _evaluator(spec).run(None, feeds)]


globals().update(contract_functions(run, "onnx.reference"))
