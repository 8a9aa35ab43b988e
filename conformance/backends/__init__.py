"""Framework adapters offering the nnref contract (CONTRACT.md) on torch, TensorFlow and SciPy.

Each adapter module exposes the eight contract functions. Framework conventions (layouts, pad-mode
names, momentum direction, padding placement, index layouts) live only in the adapter modules; this
package holds what is shared: the `Unsupported` exception, `load_backend`, and small helpers that
turn the contract's own argument conventions into explicit numbers.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from types import ModuleType

import numpy as np

__all__ = [
    "BACKEND_NAMES",
    "Unsupported",
    "load_backend",
]

BACKEND_NAMES: tuple[str, ...] = ("nnref", "torch", "tensorflow", "scipy")

_ALIASES = {"tf": "tensorflow"}
_MODULES = {
    "nnref": "nnref",
    "torch": "conformance.backends.torch_backend",
    "tensorflow": "conformance.backends.tf_backend",
    "scipy": "conformance.backends.scipy_backend",
}
_FRAMEWORK_PACKAGE = {
    "nnref": "nnref", "torch": "torch", "tensorflow": "tensorflow", "scipy": "scipy",
}
_INSTALL_HINT = {
    "nnref": "pip install -e /path/to/checkout",
    "torch": "pip install 'nnref[torch]'",
    "tensorflow": "pip install 'nnref[tf]'",
    "scipy": "pip install scipy",
}


def float_input(x: np.ndarray, name: str = "x") -> np.ndarray:
    """The adapters' own dtype check: float32/float64 only (ValueError naming the argument)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")
    return x


class Unsupported(Exception):
    """A configuration the framework cannot express, even by composition.

    `divergence_id` names the entry in conformance/divergences.toml that explains why.
    """

    def __init__(self, divergence_id: str, message: str = "") -> None:
        self.divergence_id = divergence_id
        self.message = message
        super().__init__(f"[{divergence_id}] {message}" if message else f"[{divergence_id}]")


def load_backend(name: str) -> ModuleType:
    """Import and return the backend module called `name` (one of BACKEND_NAMES, or "tf").

    The framework is imported only now. A missing framework raises ImportError naming it.
    """
    key = _ALIASES.get(name, name)
    if key not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKEND_NAMES}")
    package = _FRAMEWORK_PACKAGE[key]
    if importlib.util.find_spec(package) is None:
        raise ImportError(
            f"backend {key!r} needs the Python package {package!r}, which is not installed "
            f"({_INSTALL_HINT[key]})"
        )
    return importlib.import_module(_MODULES[key])


# ---------------------------------------------------------------------------------------------
# Contract argument helpers (shared by the adapters; they encode CONTRACT.md, no framework).
# ---------------------------------------------------------------------------------------------

Pads = tuple[tuple[int, int], tuple[int, int]]


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def pair(value: object, name: str) -> tuple[int, int]:
    """`k` -> (k, k); `(a, b)` -> (a, b). Values must be >= 1."""
    if _is_int(value):
        out = (int(value), int(value))  # type: ignore[arg-type]
    elif isinstance(value, tuple | list) and len(value) == 2 and all(_is_int(v) for v in value):
        out = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(out) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return out


def pads2d(padding: object, name: str = "padding") -> Pads:
    """Contract padding (`p`, `(ph, pw)` or `((t, b), (l, r))`) -> ((t, b), (l, r)), all >= 0."""
    if _is_int(padding):
        p = int(padding)  # type: ignore[arg-type]
        out = ((p, p), (p, p))
    elif isinstance(padding, tuple | list) and len(padding) == 2:
        if all(_is_int(v) for v in padding):
            ph, pw = int(padding[0]), int(padding[1])
            out = ((ph, ph), (pw, pw))
        elif all(
            isinstance(v, tuple | list) and len(v) == 2 and all(_is_int(u) for u in v)
            for v in padding
        ):
            (t, b), (l, r) = padding
            out = ((int(t), int(b)), (int(l), int(r)))
        else:
            raise ValueError(f"{name} must be an int, a pair or a pair of pairs, got {padding!r}")
    else:
        raise ValueError(f"{name} must be an int, a pair or a pair of pairs, got {padding!r}")
    if min(out[0] + out[1]) < 0:
        raise ValueError(f"{name} must be >= 0, got {padding!r}")
    return out


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def check_pad(shape: tuple[int, ...], pads: Pads, mode: str) -> None:
    """Contract limits of `pad`: known mode, reflect pads < size, circular pads <= size."""
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}")
    if len(shape) != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {shape}")
    for axis, (before, after) in zip((2, 3), pads, strict=True):
        size = shape[axis]
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(
                f"pad_width {(before, after)} must be < the size {size} of axis {axis} "
                "in reflect mode"
            )
        if mode == "circular" and max(before, after) > size:
            raise ValueError(
                f"pad_width {(before, after)} must be <= the size {size} of axis {axis} "
                "in circular mode"
            )


def same_pads(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int]) -> Pads:
    """Contract "same": Ho = ceil(H / s), the odd extra pad at the end (bottom / right)."""
    out = []
    for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        o = math.ceil(n / s)
        total = max((o - 1) * s + d * (k - 1) + 1 - n, 0)
        out.append((total // 2, total - total // 2))
    return (out[0], out[1])


def conv_pads(padding: object, size: tuple[int, int], kernel: tuple[int, int],
              stride: tuple[int, int], dilation: tuple[int, int]) -> Pads:
    """Resolve conv padding (int, pair, pair of pairs, "valid", "same") to ((t, b), (l, r))."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            return same_pads(size, kernel, stride, dilation)
        raise ValueError(f"padding must be 'valid', 'same' or numbers, got {padding!r}")
    return pads2d(padding)


def pool_out_len(n: int, before: int, after: int, k: int, s: int, d: int, ceil_mode: bool) -> int:
    """Contract max-pool output length along one axis (torch's ceil_mode drop rule included)."""
    span = n + before + after - d * (k - 1) - 1
    if span < 0:
        raise ValueError(
            f"kernel_size {k} (dilation {d}) is larger than the padded input {n + before + after}"
        )
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + before:
        out -= 1
    return out


def pool_args(x_shape: tuple[int, ...], kernel_size: object, stride: object, padding: object,
              dilation: object) -> tuple[tuple[int, int], tuple[int, int], Pads, tuple[int, int]]:
    """Normalise max-pool arguments; pads must be <= kernel // 2 (the undilated kernel)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x_shape}")
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    d = pair(dilation, "dilation")
    p = pads2d(padding)
    for kk, (before, after) in zip(k, p, strict=True):
        if max(before, after) > kk // 2:
            raise ValueError(f"padding {padding!r} must be <= kernel_size / 2 ({kk // 2})")
    return k, s, p, d


def window_hits(n: int, before: int, k: int, s: int, d: int, out: int) -> np.ndarray:
    """Per output position along one axis: does its window cover at least one input cell?"""
    starts = np.arange(out)[:, None] * s + np.arange(k)[None, :] * d - before
    return ((starts >= 0) & (starts < n)).any(axis=1)


def pool_extra_end(n: int, before: int, after: int, k: int, s: int, d: int, out: int) -> int:
    """Cells to add after the contract padding so that a floor-mode pool yields `out` windows."""
    return max((out - 1) * s + d * (k - 1) + 1 - (n + before + after), 0)


def bn_check(x: np.ndarray, running_mean: object, running_var: object, training: bool) -> None:
    """Contract checks shared by the batch-norm adapters."""
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (both or neither)")
    if not training and running_mean is None:
        raise ValueError("training=False needs running_mean and running_var")
    if training and x.shape[0] * x.shape[2] * x.shape[3] <= 1:
        raise ValueError(
            f"training needs more than one value per channel, got x of shape {x.shape}"
        )
