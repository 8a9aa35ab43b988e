"""How an invalid-argument category breaks a valid call: the category type and the breaker's kit.

A category (:class:`InvalidCategory`) is one way of being invalid: which calls it applies to
(``applies``, judged on the structure of one valid call), how it breaks one (``breaker``, which
edits the call's arguments in a :class:`Ctx` and says which argument it broke and which names
the error message may use) and what nnref must do. The categories every op shares are in
``conformance.generic_categories``; a category that belongs to one op is declared on its record
(``OpRecord.invalid_categories``, ``conformance/ops/<op>.py``). ``conformance.invalid_args``
draws the calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .cases import Case, pads_of

# The data arrays of a call (CONTRACT.md): everything else that is an array is per channel
# (conv's w and b, batch norm's gamma, beta and running statistics).
DATA_ARRAYS = ("x", "dy")

# A breaker returns (the names one of which the error message must contain, what it broke).
Broken = tuple[tuple[str, ...], str]


def normal(rng: np.random.Generator, shape: Any, dtype: Any) -> np.ndarray:
    """A new standard-normal array of ``shape`` in ``dtype``."""
    return rng.standard_normal(tuple(shape)).astype(dtype)


def fresh(a: Any) -> np.ndarray:
    """A C-contiguous copy of ``a``."""
    return np.array(a, copy=True, order="C")


def sliced(a: np.ndarray, axis: int, stop: int) -> np.ndarray:
    """``a[..., :stop, ...]`` along ``axis``, as a fresh array."""
    return fresh(a[(slice(None),) * axis + (slice(0, stop),)])


def with_entry(values: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    """``values`` with entry ``axis`` replaced by ``value``."""
    out = list(values)
    out[axis] = value
    return tuple(out)


@dataclass
class Ctx:
    """What a breaker works on: the valid case, its arrays, the call's arguments (edited in
    place), Hypothesis's draw and a generator for new arrays."""

    draw: Any
    case: Case
    direction: str
    arrays: dict[str, np.ndarray]
    args: dict[str, Any]
    rng: np.random.Generator

    @property
    def rank(self) -> int:
        return self.case.rank

    def axis(self) -> int:
        """One of the case's spatial axes (0 = the first spatial axis, x's axis 2)."""
        return self.draw(st.integers(0, self.rank - 1), label="axis")

    def container(self, entries: list) -> Any:
        """A per-axis argument as a tuple or a list (the contract takes both)."""
        return list(entries) if self.draw(st.booleans(), label="as a list") else tuple(entries)

    def spatial_with(self, current: tuple[int, ...], value: int) -> Any:
        """``value`` as an int, or ``current`` (one entry per axis) with one axis ``value``."""
        if self.draw(st.booleans(), label="as an int"):
            return value
        return self.container(list(with_entry(current, self.axis(), value)))

    def pads_with(self, pads: tuple[tuple[int, int], ...], axis: int, value: int,
                  grow: bool = True) -> Any:
        """Padding in a drawn contract form (an int; one int per axis; (before, after) pairs;
        ints and pairs mixed) with ``value`` on ``axis``. The other entries stay valid: they
        keep at least their current size (``grow``: conv / pool, where less padding could make
        the kernel too large) or at most it (pad: where more could pass reflect's limit, or
        leave pad_backward's dy too small)."""
        form = self.draw(st.sampled_from(["int", "per axis", "pairs", "mixed"]),
                         label="padding form")
        if form == "int":
            return value
        pick = max if grow else min
        if form == "per axis":
            return self.container([value if i == axis else pick(b, a)
                                   for i, (b, a) in enumerate(pads)])
        pairs = [list(p) for p in pads]
        pairs[axis][self.draw(st.integers(0, 1), label="side")] = value
        if form == "pairs":
            return self.container([tuple(p) for p in pairs])
        return self.container([p[0] if p[0] == p[1] else tuple(p) for p in pairs])

    def explicit_pads(self, key: str = "padding") -> tuple[tuple[int, int], ...]:
        """The case's padding as (before, after) per axis; a padding string ("same",
        "valid") is replaced in the call by its explicit pads (they depend on the kernel, the
        stride and the dilation, which a breaker may change)."""
        if key not in self.args:  # an op without padding (LP pooling): none
            return ((0, 0),) * self.rank
        if isinstance(self.args.get(key), str) and self.case.padding_strings:
            self.args[key] = self.case.resolved_pads()
        return pads_of(self.args[key], self.rank)

    def pick_array(self, exclude: tuple[str, ...] = ()) -> str:
        present = [k for k, v in self.args.items()
                   if isinstance(v, np.ndarray) and k not in exclude]
        return self.draw(st.sampled_from(present), label="broken array")


# applies(case, direction, args): whether a category can break a call. ``case`` is a valid case
# of the call's record at one rank, ``args`` its call's arguments; only their structure counts.
Applies = Callable[[Case, str, Mapping[str, Any]], bool]


def has(*names: str) -> Applies:
    """The call takes one of ``names``."""
    return lambda case, direction, args: any(n in args for n in names)


def has_all(*names: str) -> Applies:
    """The call takes every one of ``names``."""
    return lambda case, direction, args: all(n in args for n in names)


@dataclass(frozen=True)
class InvalidCategory:
    """One way of being invalid, which calls it applies to, what nnref must do.

    ``options`` are sampler options for the valid case (passed to the records whose sampler
    takes them, e.g. ``modes`` for a pad-mode limit).
    """

    id: str
    summary: str
    applies: Applies
    breaker: Callable[[Ctx], Broken]
    nnref: str
    options: Mapping[str, Any] = field(default_factory=dict)
