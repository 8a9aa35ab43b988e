"""An invalid call of a contract function: its type, how to run it, what a valid call looks like.

:class:`InvalidCall` is what ``conformance.invalid_args`` draws and what the implementation under
test (``call``) and the native runners (``conformance.backends.native_calls``) are given; a native
runner raises :class:`NotExpressible` or :class:`WouldAbort` for a call it cannot or must not
make. :func:`probe` is one valid call of a function at a rank: the structure a category's
``applies`` looks at.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from . import sampler
from .cases import Case
from .ops import op_and_direction, record_of_function

# ------------------------------------------------------------------------------- functions


def direction_of(function: str) -> str:
    """'conv3d_backward' -> 'backward'; 'pad' -> 'forward'."""
    return op_and_direction(function)[1]


def ranks_of(function: str) -> tuple[int, ...]:
    """The spatial ranks a contract function is called at (pad: 1, 2, 3; conv1d: 1)."""
    rec = record_of_function(function)
    return tuple(r for r in rec.ranks if function in rec.functions(r))


# ------------------------------------------------------------------------------- the call


def show(value: Any) -> str:
    """Arrays as dtype[shape]; everything else by repr."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    return repr(value)


@dataclass(frozen=True, eq=False)
class InvalidCall:
    """One invalid call: ``<function>(**args)`` must raise ValueError naming one of ``names``.

    ``broken`` is the argument that was broken (for kernel_too_large: what made the kernel too
    large, "kernel", "dilation" or "input"); the native runners and the record use it. ``rank``
    is the spatial rank of the valid case it was made from. Its repr shows arrays as
    dtype[shape], so a Hypothesis falsifying example stays readable.
    """

    category: str
    function: str
    args: Mapping[str, Any]
    names: tuple[str, ...]
    broken: str
    rank: int

    @property
    def direction(self) -> str:
        return direction_of(self.function)

    @property
    def family(self) -> str:
        """The op record's name ("conv", "max_pool", ...): the native runners dispatch on it."""
        return record_of_function(self.function).name

    @property
    def positional(self) -> tuple[str, ...]:
        """The arguments the contract passes by position (the leading arrays)."""
        return record_of_function(self.function).case_type.positional[self.direction]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.args.items() if isinstance(v, np.ndarray)}

    @property
    def dtype(self) -> str:
        """The dtype name of x (of dy for pad_backward)."""
        return str(self.args["x" if "x" in self.args else "dy"].dtype)

    def record_keys(self) -> tuple[str, ...]:
        """Keys of invalid_behaviour.toml's per-call overrides, most specific first."""
        fn, broken, dtype = self.function, self.broken, self.dtype
        return (f"{fn}/{broken}/{dtype}", f"{fn}/{broken}", f"{fn}/{dtype}", fn)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={show(v)}" for k, v in self.args.items())
        return (f"InvalidCall[{self.category}] {self.function}({body}) "
                f"broken={self.broken!r} names={self.names!r}")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def call(impl: Any, invalid: InvalidCall) -> Any:
    """Run the call on an implementation (nnref, an adapter, any --impl module), the leading
    arrays by position as the suite calls every contract function."""
    args = dict(invalid.args)
    positional = [args.pop(k) for k in invalid.positional if k in args]
    return getattr(impl, invalid.function)(*positional, **args)


def names_in(message: str, names: tuple[str, ...]) -> bool:
    """Whether ``message`` contains one of ``names`` as a whole word (case-insensitive)."""
    return any(
        re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message, re.IGNORECASE)
        for n in names
    )


# ------------------------------------------------------------------------- a valid call


@cache
def probe(function: str, rank: int, options: tuple[tuple[str, Any], ...] = ()
          ) -> tuple[Case, dict[str, Any]]:
    """One valid case of ``function``'s record at ``rank`` and the arguments of its call: what
    a category's ``applies`` looks at (only the structure of the call, never drawn values).

    ``options``: sampler options as (name, value) pairs, those of the category that draws the
    calls (e.g. ``affine=True``: a category that breaks gamma looks at a case that has one);
    only the ones the record's sampler takes are used."""
    rec = record_of_function(function)
    params = inspect.signature(rec.sample).parameters
    taken = {k: v for k, v in options if k in params}
    case = sampler.sample(rec, 1, seed=0, rank=rank, small=True, **taken)[0][0]
    return case, case.call_args(direction_of(function), case.arrays(np.float64, 0))


@cache
def valid_ndims(function: str, name: str) -> frozenset[int]:
    """The ndims array argument ``name`` of ``function`` has at the function's ranks."""
    out = set()
    for rank in ranks_of(function):
        value = probe(function, rank)[1].get(name)
        if isinstance(value, np.ndarray):
            out.add(value.ndim)
    return frozenset(out)


# ------------------------------------------------------------------------------- frameworks


class NotExpressible(Exception):
    """The call cannot be stated with the native API.

    ``incidental``: what cannot be stated is NOT the broken argument (e.g. asymmetric padding
    in torch, ceil_mode in TF): the draw says nothing about the category and is discarded.
    """

    def __init__(self, reason: str, incidental: bool = False) -> None:
        super().__init__(reason)
        self.incidental = incidental


class WouldAbort(Exception):
    """The native call is known to abort the whole process (a C++ CHECK failure): not run.

    The claim is checked in a subprocess by conformance/tests/test_invalid_args.py.
    """
