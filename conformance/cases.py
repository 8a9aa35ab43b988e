"""Test cases: one op configuration + how to build its arrays from a seed + how to call it.

A case is a frozen dataclass holding only parameters (JSON-friendly). Its arrays are rebuilt from
``(dtype, seed)`` with a private generator, so a failing case can be reproduced from the text the
suite prints, with no global random state involved. Each op's case type lives in its record
(``conformance/ops/<op>.py``); this module holds what every case shares:

``op`` (the contract function of its forward pass, e.g. ``conv3d``), ``rank`` (spatial axes),
``params()``, ``output_shape()``, ``arrays(dtype, seed)``, ``call_args(direction, arrays)``,
``forward(impl, arrays)``, ``backward(impl, arrays)``, ``differentiable`` (names of the inputs
gradients are taken for), ``values_only()`` (the case without optional outputs such as
indices), ``reproducer(dtype, seed, impl_name, direction)``, ``to_dict()`` (read back by
``conformance.ops.case_from_dict``).

It also holds the contract's geometry, rank-generic and independent of any implementation:
spatial arguments, padding forms, window counts and "same" padding (CONTRACT.md).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

# Value kinds: how input values are drawn.
#   normal    standard normal
#   ties      integers in [-2, 2]: max-pool windows full of ties (and exact zeros)
#   unique    a shuffled grid with gaps of 1: max-pool with a unique winner that a small
#             perturbation (finite differences) cannot change
#   small_var batch norm: channels with offsets up to 8 and spreads down to 1e-3 (and one channel
#             whose variance is far below eps)
#   signed_zeros  integers in [-1, 1] whose zeros have random signs: ties between -0.0 and 0.0
#             (a selection must return the very zero it selected)
VALUE_KINDS = ("normal", "ties", "unique", "small_var", "signed_zeros")

Pads = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------------------------
# geometry (CONTRACT.md), for any number of spatial axes


def spatial(value: Any, rank: int) -> tuple[int, ...]:
    """A spatial argument (an int, or one int per axis) as one int per axis."""
    if isinstance(value, int | np.integer):
        return (int(value),) * rank
    return tuple(int(v) for v in value)


def pads_of(padding: Any, rank: int) -> Pads:
    """Contract padding (an int, or one entry per axis: an int or a (before, after) pair)."""
    if isinstance(padding, int | np.integer):
        return ((int(padding), int(padding)),) * rank
    out = []
    for entry in padding:
        if isinstance(entry, int | np.integer):
            out.append((int(entry), int(entry)))
        else:
            out.append((int(entry[0]), int(entry[1])))
    return tuple(out)


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


def window_taps(out: int, stride: int, kernel: int, dilation: int, before: int) -> np.ndarray:
    """Input index read by tap p of window i along one axis: (out, kernel) array."""
    return (np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation - before)


# --------------------------------------------------------------------------------------------
# values


def values(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Input values of one value kind (see VALUE_KINDS), float64."""
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if kind == "signed_zeros":
        v = rng.integers(-1, 2, size=shape).astype(np.float64)
        return np.where(v == 0, np.where(rng.random(shape) < 0.5, -0.0, 0.0), v)
    if kind == "unique":
        return (rng.permutation(math.prod(shape)) - math.prod(shape) / 2).reshape(shape) * 1.0
    return rng.standard_normal(shape)


def tupled(v: Any) -> Any:
    """Lists (from JSON) back to tuples, recursively."""
    return tuple(tupled(i) for i in v) if isinstance(v, list | tuple) else v


def crc(text: str) -> int:
    return zlib.crc32(text.encode())


# On an exception raised by an implementation inside ``Case.call``: (case, direction, dtype
# name, seed) when the arrays came from ``Case.arrays``, so that the report can print a
# reproducer for it (conformance.verdicts).
CALL_ATTR = "nnref_case_call"

# Impl name -> the reproducer's line that builds ``impl`` (default: importlib.import_module).
# A binding registers its own (conformance.bindings.reproducer_loader).
IMPL_LOADERS: dict[str, str] = {}


class CaseArrays(dict):
    """A case's arrays by name, remembering the dtype and seed they were built from."""

    dtype_name: str = ""
    seed: int | None = None


# --------------------------------------------------------------------------------------------
# the case interface


@dataclass(frozen=True)
class Case:
    """Base class of every op's case type (``conformance/ops/<op>.py``).

    Subclasses set ``family`` (the op record's name), ``differentiable``, ``arrays_in`` (the
    array arguments of the forward call, in the contract's positional order) and implement
    ``rank``, ``params()``, ``output_shape()``, ``_inputs(rng)``, ``call_args()``.
    """

    family: ClassVar[str]
    # The op record of this case type (conformance.ops.OpRecord), bound by the record when it
    # is made: a case reaches its record without this module importing the records.
    record: ClassVar[Any]
    differentiable: ClassVar[tuple[str, ...]]
    forward_outputs: ClassVar[tuple[str, ...]] = ("y",)
    backward_outputs: ClassVar[tuple[str, ...]] = ("dx",)
    # The arguments passed by position, per direction (the contract's leading arrays); the
    # rest go by keyword.
    positional: ClassVar[dict[str, tuple[str, ...]]] = {"forward": ("x",),
                                                        "backward": ("dy", "x")}
    # Differentiable inputs a backward call does not take (a bias, beta) or may pass as None
    # (gamma): name -> (fill value, its shape from the backward call's arguments). A backend
    # that differentiates the forward puts this array in its place: no gradient depends on a
    # bias's value, and a missing gamma means ones (CONTRACT.md).
    grad_defaults: ClassVar[dict[str, tuple[float, Callable[[Mapping[str, Any]],
                                                             tuple[int, ...]]]]] = {}
    # The call's structure, for the generic invalid-argument categories
    # (conformance.generic_categories): arrays that take any ndim from a minimum up (activations,
    # linear's leading axes); the axis of w that holds x's channels (a transposed convolution's
    # w is (C, Co/G, *k)); whether the output grows with the kernel (no kernel limit); whether
    # the padding takes strings ("same", "valid": :meth:`resolved_pads` makes them explicit).
    min_ndim: ClassVar[dict[str, int]] = {}
    w_channels_axis: ClassVar[int] = 1
    output_grows_with_kernel: ClassVar[bool] = False
    padding_strings: ClassVar[bool] = False

    # -- per op -----------------------------------------------------------------------------

    @property
    def rank(self) -> int:
        raise NotImplementedError

    @property
    def op(self) -> str:
        """The contract function of the forward pass (``conv3d``, ``pad``, ...)."""
        return self.record.functions(self.rank)[0]

    @property
    def backward_op(self) -> str:
        return self.record.functions(self.rank)[1]


    @property
    def label(self) -> str:
        """The op and its rank, for reports: ``conv3d``, ``pad1d``, ``batch_norm0d``."""
        return self.record.label(self.rank)

    def params(self) -> dict[str, Any]:
        """Keyword parameters of the forward call (everything but arrays)."""
        raise NotImplementedError

    def output_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def call_args(self, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Keyword arguments of the contract call for ``direction`` ("forward"/"backward"),
        arrays first in the contract's positional order."""
        raise NotImplementedError

    def outputs(self, direction: str) -> tuple[str, ...]:
        """Names of what the call returns, in order."""
        return self.forward_outputs if direction == "forward" else self.backward_outputs

    def resolved_pads(self) -> Pads:
        """The padding as explicit (before, after) pairs (a case type with ``padding_strings``
        resolves its strings here)."""
        raise NotImplementedError(f"{type(self).__name__} has no padding strings")

    def values_only(self) -> Case | None:
        """This case without optional outputs an implementation may lack (indices), if any."""
        return None

    def corners(self) -> list[str]:
        """Labels of the corners of the configuration space this case reaches."""
        return self.record.corners(self)

    # -- shared -----------------------------------------------------------------------------

    @classmethod
    def gradient_call(cls, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The forward call whose vector-Jacobian product with ``dy`` a backward call asks for.

        The backward's arguments without ``dy``, each of ``grad_defaults`` in place where it is
        absent or None (an array of x's dtype). The inputs to differentiate are
        ``differentiable``, in the order of ``backward_outputs``. A default whose shape cannot
        be worked out from invalid arguments is left out: the forward's own checks report them.
        """
        call = {k: v for k, v in arguments.items() if k != "dy"}
        dtype = np.asarray(arguments["x" if "x" in arguments else "dy"]).dtype
        for name, (fill, shape_of) in cls.grad_defaults.items():
            if call.get(name) is None:
                try:  # np.full refuses a negative size (groups=-1 in conv_transpose's)
                    call[name] = np.full(tuple(int(n) for n in shape_of(arguments)), fill,
                                         dtype=dtype)
                except (TypeError, ValueError, IndexError, KeyError, AttributeError):
                    continue
        return call

    def arrays(self, dtype: Any, seed: int) -> dict[str, np.ndarray]:
        """Inputs and a random upstream gradient ``dy`` (never all ones), in ``dtype``."""
        rng = np.random.default_rng([seed, crc(self.op)])
        arrays = self._inputs(rng)
        arrays["dy"] = rng.standard_normal(self.output_shape())
        out = CaseArrays({k: v.astype(dtype) for k, v in arrays.items()})
        out.dtype_name, out.seed = np.dtype(dtype).name, seed
        return out

    def call(self, impl: Any, direction: str, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Run one direction on an implementation; its results by name."""
        fn = getattr(impl, self.op if direction == "forward" else self.backward_op)
        args = self.call_args(direction, a)
        positional = [args.pop(k) for k in self.positional[direction]]
        try:
            out = fn(*positional, **args)
        except Exception as exc:
            if getattr(a, "seed", None) is not None and not hasattr(exc, CALL_ATTR):
                try:
                    setattr(exc, CALL_ATTR, (self, direction, a.dtype_name, a.seed))
                except (AttributeError, TypeError):  # an exception type without a __dict__
                    pass
            raise
        names = self.outputs(direction)
        if len(names) == 1:
            return {names[0]: out}
        if not isinstance(out, tuple | list) or len(out) != len(names):
            raise TypeError(f"{fn.__name__} returned {type(out).__name__}"
                            f"{'' if not isinstance(out, tuple | list) else f' of {len(out)}'}"
                            f", expected a tuple {names}")
        return dict(zip(names, out, strict=True))

    def forward(self, impl: Any, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return self.call(impl, "forward", a)

    def backward(self, impl: Any, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return self.call(impl, "backward", a)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, **dataclasses.asdict(self)}

    def describe(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"{type(self).__name__}({fields})"

    def reproducer(self, dtype: Any, seed: int, impl_name: str = "nnref",
                   direction: str | None = None, planted: str = "",
                   reference: str = "nnref") -> str:
        """Python text that rebuilds this case's arrays, calls the implementation and prints
        what it returned next to what ``reference`` (a module name) returns in float64.

        ``direction`` limits the call to the one that failed; ``planted`` is extra code run on
        the arrays ``a`` before the call (values a test put there: NaN, -0.0, ties). The text
        runs from any directory once the conformance package is installed.
        """
        dtype_name = np.dtype(dtype).name
        module = type(self).__module__
        lines = [
            "import importlib",
            "import numpy as np",
            f"from {module} import {type(self).__name__}",
            IMPL_LOADERS.get(impl_name, f"impl = importlib.import_module({impl_name!r})"),
            f"reference = importlib.import_module({reference!r})  # expected, in float64",
            f"case = {self.describe()}",
            f"a = case.arrays(np.{dtype_name}, seed={seed})",
        ]
        if planted:
            lines.append(planted)
        lines.append("a64 = {k: v.astype(np.float64) for k, v in a.items()}")
        for d in (direction,) if direction else ("forward", "backward"):
            lines += [
                f"got, expected = case.{d}(impl, a), case.{d}(reference, a64)",
                "for name in expected:",
                "    print(f'{name}: got\\n{got[name]!r}\\nexpected\\n{expected[name]!r}')",
            ]
        return "\n".join(lines) + "\n"
