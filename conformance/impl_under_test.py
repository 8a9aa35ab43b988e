"""Which implementation the suite checks: ``pytest --impl MODULE`` or ``NNREF_IMPL=MODULE``."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

DEFAULT_IMPL = "nnref"
ENV_VAR = "NNREF_IMPL"

CONTRACT_FUNCTIONS = (
    "pad", "pad_backward", "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
    "batch_norm", "batch_norm_backward",
)


def impl_name(option: str | None = None) -> str:
    """The module name chosen by the option, else the environment variable, else nnref."""
    return option or os.environ.get(ENV_VAR) or DEFAULT_IMPL


def load_impl(name: str) -> ModuleType:
    """Import the implementation under test; a clear error if it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"--impl {name}: cannot import {name!r} ({exc})") from exc
