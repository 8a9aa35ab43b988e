"""Importing optional frameworks in tests: skip when absent, unless they are required.

`NNREF_REQUIRE_FRAMEWORKS` (comma- or space-separated, e.g. "torch,tensorflow") lists frameworks
that must be importable; for those a missing import is an error, never a skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from .backend_registry import backend

ENV_VAR = "NNREF_REQUIRE_FRAMEWORKS"
# TensorFlow's environment, set (unless the user set it) before TensorFlow is imported:
# - TF_CPP_MIN_LOG_LEVEL=2: no C++ info/warning lines on every import;
# - TF_ENABLE_ONEDNN_OPTS=1: the oneDNN CPU kernels. TF's default depends on the CPU (on with
#   AVX-512, off on AVX2-only CPUs such as AMD EPYC), and the two kernel families differ in what
#   they accept and compute (grouped / dilated conv3d, NaN in max_pool3d: divergences.toml), so
#   without this the suite's TF results would depend on the machine.
TF_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def tf_environment() -> None:
    """Set TensorFlow's environment (TF_ENVIRONMENT) where the user has not."""
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
def canonical(name: str) -> str:
    """Canonical import name of a framework: the package of the backend so named or aliased in
    the registry ("tf" -> "tensorflow", "onnx-ref" -> "onnx", "ort" -> "onnxruntime"); any
    other name as it is."""
    key = name.strip().lower()
    try:
        return backend(key).package
    except ValueError:
        return key


def required() -> frozenset[str]:
    """Frameworks listed in NNREF_REQUIRE_FRAMEWORKS (canonical names)."""
    raw = os.environ.get(ENV_VAR, "")
    return frozenset(canonical(p) for p in raw.replace(",", " ").split() if p)


def require(name: str) -> ModuleType:
    """Import framework `name`; skip the test if it is missing and not required."""
    module = canonical(name)
    if module == "tensorflow":
        tf_environment()
    if module in required():
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"{module} is listed in {ENV_VAR}={os.environ.get(ENV_VAR)!r} but cannot be "
                f"imported: {exc}"
            ) from exc
    return pytest.importorskip(module, reason=f"{module} is not installed", exc_type=ImportError)
