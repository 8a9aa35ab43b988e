"""Test cases: one op configuration + how to build its arrays from a seed + how to call it.

A case is a frozen dataclass holding only parameters (JSON-friendly). Its arrays are rebuilt from
``(dtype, seed)`` with a private generator, so a failing case can be reproduced from the text the
suite prints, with no global random state involved. Every case offers the same interface:

``op``, ``params()``, ``output_shape()``, ``arrays(dtype, seed)``, ``forward(impl, arrays)``,
``backward(impl, arrays)``, ``differentiable`` (names of the inputs gradients are taken for),
``reproducer(dtype, seed, impl_name)``, ``to_dict()`` / ``case_from_dict()``.

Output sizes are computed here from the contract's formulas, independently of any implementation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

# Value kinds: how input values are drawn.
#   normal    standard normal
#   ties      integers in [-2, 2]: max-pool windows full of ties
#   unique    a shuffled grid with gaps of 1: max-pool with a unique winner that a small
#             perturbation (finite differences) cannot change
#   small_var batch norm: channels with offsets up to 8 and spreads down to 1e-3 (and one channel
#             whose variance is far below eps)
VALUE_KINDS = ("normal", "ties", "unique", "small_var")


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pads(p: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(p, int):
        return ((p, p), (p, p))
    if isinstance(p[0], int):
        return ((p[0], p[0]), (p[1], p[1]))
    return ((int(p[0][0]), int(p[0][1])), (int(p[1][0]), int(p[1][1])))


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """'same': output ceil(size/stride); total pad split with the odd extra at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def window_count(size: int, before: int, after: int, kernel: int, stride: int, dilation: int,
                 ceil_mode: bool = False) -> int:
    """Number of windows along one axis (CONTRACT.md); < 1 means the configuration is invalid."""
    span = size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def _values(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if kind == "unique":
        return (rng.permutation(math.prod(shape)) - math.prod(shape) / 2).reshape(shape) * 1.0
    return rng.standard_normal(shape)


def _tupled(v: Any) -> Any:
    return tuple(_tupled(i) for i in v) if isinstance(v, list | tuple) else v


@dataclass(frozen=True)
class Case:
    """Base class; subclasses set ``op`` and ``differentiable``."""

    op: ClassVar[str]
    differentiable: ClassVar[tuple[str, ...]]

    def params(self) -> dict[str, Any]:
        """Keyword parameters of the forward call (everything but arrays)."""
        raise NotImplementedError

    def output_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def arrays(self, dtype: Any, seed: int) -> dict[str, np.ndarray]:
        """Inputs and a random upstream gradient ``dy`` (never all ones), in ``dtype``."""
        rng = np.random.default_rng([seed, zlib_crc(self.op)])
        arrays = self._inputs(rng)
        arrays["dy"] = rng.standard_normal(self.output_shape())
        return {k: v.astype(dtype) for k, v in arrays.items()}

    def forward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def backward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, **dataclasses.asdict(self)}

    def describe(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"{type(self).__name__}({fields})"

    def reproducer(self, dtype: Any, seed: int, impl_name: str = "nnref") -> str:
        """Python text that rebuilds this case's arrays and calls the implementation."""
        dtype_name = np.dtype(dtype).name
        return (
            f"import numpy as np, importlib\n"
            f"from conformance.cases import {type(self).__name__}\n"
            f"impl = importlib.import_module({impl_name!r})\n"
            f"case = {self.describe()}\n"
            f"a = case.arrays(np.{dtype_name}, seed={seed})\n"
            f"print(case.forward(impl, a))\n"
            f"print(case.backward(impl, a))\n"
        )


def zlib_crc(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class PadCase(Case):
    op: ClassVar[str] = "pad"
    differentiable: ClassVar[tuple[str, ...]] = ("x",)
    shape: tuple[int, int, int, int]
    pad_width: Any
    mode: str = "constant"
    value: float = 0.0
    kind: str = "normal"

    def params(self) -> dict[str, Any]:
        return {"pad_width": self.pad_width, "mode": self.mode, "value": self.value}

    def output_shape(self) -> tuple[int, ...]:
        (t, b), (l, r) = _pads(self.pad_width)
        n, c, h, w = self.shape
        return (n, c, h + t + b, w + l + r)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": _values(rng, self.shape, self.kind)}

    def forward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": impl.pad(a["x"], self.pad_width, mode=self.mode, value=self.value)}

    def backward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"dx": impl.pad_backward(a["dy"], self.pad_width, mode=self.mode)}


@dataclass(frozen=True)
class ConvCase(Case):
    op: ClassVar[str] = "conv2d"
    differentiable: ClassVar[tuple[str, ...]] = ("x", "w", "b")
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    bias: bool = True
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    kind: str = "normal"

    def params(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def resolved_pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        if self.padding == "valid":
            return ((0, 0), (0, 0))
        if self.padding == "same":
            s, d = _pair(self.stride), _pair(self.dilation)
            return tuple(  # type: ignore[return-value]
                same_pads(self.x_shape[2 + i], self.w_shape[2 + i], s[i], d[i]) for i in (0, 1)
            )
        return _pads(self.padding)

    def output_shape(self) -> tuple[int, ...]:
        pads, s, d = self.resolved_pads(), _pair(self.stride), _pair(self.dilation)
        hw = tuple(
            window_count(self.x_shape[2 + i], *pads[i], self.w_shape[2 + i], s[i], d[i])
            for i in (0, 1)
        )
        return (self.x_shape[0], self.w_shape[0], *hw)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        a = {"x": _values(rng, self.x_shape, self.kind), "w": rng.standard_normal(self.w_shape)}
        if self.bias:
            a["b"] = rng.standard_normal(self.w_shape[0])
        return a

    def forward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": impl.conv2d(a["x"], a["w"], a.get("b"), **self.params())}

    def backward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dx, dw, db = impl.conv2d_backward(a["dy"], a["x"], a["w"], **self.params())
        return {"dx": dx, "dw": dw, "db": db}


@dataclass(frozen=True)
class PoolCase(Case):
    op: ClassVar[str] = "max_pool2d"
    differentiable: ClassVar[tuple[str, ...]] = ("x",)
    shape: tuple[int, int, int, int]
    kernel_size: Any
    stride: Any = None
    padding: Any = 0
    dilation: Any = 1
    ceil_mode: bool = False
    kind: str = "normal"

    def params(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "ceil_mode": self.ceil_mode}

    def output_shape(self) -> tuple[int, ...]:
        k = _pair(self.kernel_size)
        s = k if self.stride is None else _pair(self.stride)
        d, pads = _pair(self.dilation), _pads(self.padding)
        hw = tuple(
            window_count(self.shape[2 + i], *pads[i], k[i], s[i], d[i], self.ceil_mode)
            for i in (0, 1)
        )
        return (*self.shape[:2], *hw)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": _values(rng, self.shape, self.kind)}

    def forward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        y, indices = impl.max_pool2d(a["x"], **self.params(), return_indices=True)
        return {"y": y, "indices": indices}

    def backward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"dx": impl.max_pool2d_backward(a["dy"], a["x"], **self.params())}


@dataclass(frozen=True)
class BatchNormCase(Case):
    op: ClassVar[str] = "batch_norm"
    differentiable: ClassVar[tuple[str, ...]] = ("x", "gamma", "beta")
    shape: tuple[int, int, int, int]
    training: bool = True
    running: bool = True
    momentum: float = 0.1
    eps: float = 1e-5
    kind: str = "normal"

    def params(self) -> dict[str, Any]:
        return {"training": self.training, "momentum": self.momentum, "eps": self.eps}

    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.shape)

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c = self.shape[1]
        x = rng.standard_normal(self.shape)
        if self.kind == "small_var":
            # Offsets up to 8 and spreads from 1e-3 to 1; channel 0 has variance 1e-8 << eps,
            # so an implementation that drops eps (or uses E[x^2] - E[x]^2) is far off.
            spread = 10.0 ** rng.uniform(-3, 0, size=c)
            spread[0] = 1e-4
            x = rng.uniform(-8, 8, size=c)[:, None, None] + x * spread[:, None, None]
        a = {"x": x, "gamma": rng.standard_normal(c), "beta": rng.standard_normal(c)}
        if self.running or not self.training:
            a["running_mean"] = rng.standard_normal(c)
            a["running_var"] = rng.uniform(0.5, 2.0, size=c)
        return a

    def _running(self, a: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        return {"running_mean": a.get("running_mean"), "running_var": a.get("running_var")}

    def forward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = impl.batch_norm(a["x"], a["gamma"], a["beta"], **self._running(a), **self.params())
        if self.training and self.running:
            y, new_mean, new_var = out
            return {"y": y, "running_mean": new_mean, "running_var": new_var}
        return {"y": out}

    def backward(self, impl: Any, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        running = self._running(a) if not self.training else {}
        dx, dgamma, dbeta = impl.batch_norm_backward(
            a["dy"], a["x"], a["gamma"], eps=self.eps, training=self.training, **running
        )
        return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def every_window_sees_input(case: PoolCase) -> bool:
    """False when some dilated window covers only padding (contract: -inf and index -1).

    Generators avoid that corner: frameworks report garbage indices there (registry entry
    torch-maxpool-empty-window), so it is checked by dedicated tests, not by sampling.
    """
    k, d = _pair(case.kernel_size), _pair(case.dilation)
    s = k if case.stride is None else _pair(case.stride)
    pads = _pads(case.padding)
    out = case.output_shape()[2:]
    for axis in (0, 1):
        size = case.shape[2 + axis]
        for i in range(out[axis]):
            taps = [i * s[axis] + p * d[axis] - pads[axis][0] for p in range(k[axis])]
            if not any(0 <= t < size for t in taps):
                return False
    return True


CASE_TYPES: dict[str, type[Case]] = {
    cls.op: cls for cls in (PadCase, ConvCase, PoolCase, BatchNormCase)
}
OPS = tuple(CASE_TYPES)

# Which gradient each backward output is, by the input it belongs to.
GRAD_OF = {"dx": "x", "dw": "w", "db": "b", "dgamma": "gamma", "dbeta": "beta"}


def case_from_dict(d: dict[str, Any]) -> Case:
    """Inverse of ``Case.to_dict`` (lists from JSON become tuples)."""
    d = dict(d)
    cls = CASE_TYPES[d.pop("op")]
    return cls(**{k: _tupled(v) for k, v in d.items()})
