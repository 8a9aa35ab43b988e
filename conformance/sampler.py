"""The one sampler: each op's valid-configuration rules, written once, drive Hypothesis (tests)
and a seeded generator (``diff``, anything that needs reproducible cases without Hypothesis).

An op record's ``sample(draw, rank=None, small=False, **options)`` builds a case from a
:class:`Draw`: ``integer``, ``choice`` and ``boolean`` draw labelled values; ``reject()`` drops
a configuration the rules do not allow. Two draws implement it:

- :func:`strategy` wraps Hypothesis's ``draw`` (labels become the falsifying example's labels;
  every corner the drawn case reaches is recorded with ``hypothesis.event``, so
  ``--hypothesis-show-statistics`` shows how often each corner was reached);
- :func:`sample` uses a ``numpy.random.Generator`` seeded from ``(seed, op)``.

Records choose *regimes* first (stride 1 with a kernel > 1, stride > kernel, pad = kernel // 2,
ceil_mode's extra window, ...) so that the corners are reached often, not just reachable; the
suite's meta-tests measure the frequencies (:func:`corner_frequencies`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any, NoReturn, Protocol

import numpy as np
from hypothesis import assume, event
from hypothesis import strategies as st

from .cases import Case, crc

DTYPES = (np.float32, np.float64)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


class Rejected(Exception):
    """A drawn configuration the op's rules do not allow (the seeded generator draws again)."""


class Draw(Protocol):
    def integer(self, low: int, high: int, label: str) -> int: ...
    def choice(self, options: Sequence[Any], label: str) -> Any: ...
    def boolean(self, label: str) -> bool: ...
    def reject(self) -> NoReturn: ...


class HypothesisDraw:
    """A Draw over Hypothesis's ``draw`` (inside ``st.composite``)."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def integer(self, low: int, high: int, label: str) -> int:
        return self._draw(st.integers(low, high), label=label)

    def choice(self, options: Sequence[Any], label: str) -> Any:
        return self._draw(st.sampled_from(list(options)), label=label)

    def boolean(self, label: str) -> bool:
        return self._draw(st.booleans(), label=label)

    def reject(self) -> NoReturn:
        assume(False)
        raise AssertionError("unreachable")  # pragma: no cover


class RandomDraw:
    """A Draw over a NumPy generator: uniform over every range and option."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def integer(self, low: int, high: int, label: str) -> int:
        return int(self._rng.integers(low, high + 1))

    def choice(self, options: Sequence[Any], label: str) -> Any:
        options = list(options)
        return options[int(self._rng.integers(len(options)))]

    def boolean(self, label: str) -> bool:
        return bool(self._rng.random() < 0.5)

    def reject(self) -> NoReturn:
        raise Rejected


# Limits declared by the implementation under test (impl_under_test.declared_limits): op (record
# or function name) -> {parameter: allowed value or list of values}. Hypothesis draws only cases
# within them; set by the pytest plugin, empty for nnref.
_LIMITS: dict[str, dict[str, Any]] = {}


def set_limits(limits: dict[str, dict[str, Any]]) -> None:
    """Draw only configurations within ``limits`` from now on (an empty dict lifts them)."""
    _LIMITS.clear()
    _LIMITS.update(limits)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, tuple | list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def allowed(value: Any, limit: Any) -> bool:
    """Whether a parameter ``value`` is within a declared ``limit`` (a value or a list of values;
    a per-axis or per-side value is within it when every entry is)."""
    options = list(limit) if isinstance(limit, list | set | frozenset | tuple) else [limit]
    return value in options or all(leaf in options for leaf in _leaves(value))


def within_limits(case: Case) -> Case | None:
    """``case`` within the declared limits: a flag outside them (``return_indices``,
    ``ceil_mode``) is set to the allowed value; a limit that is a function of the case (a
    binding's: the one form its API can say, e.g. one stride for every axis) replaces the
    parameter with what it returns; any other parameter outside them gives None, and so does a
    replacement that leaves no output. ``rank`` limits the number of spatial axes."""
    rec = case.record
    names = {rec.name, *rec.functions(case.rank)}
    changed = False
    for op, limits in _LIMITS.items():
        if op not in names:
            continue
        for param, limit in limits.items():
            if callable(limit):
                value = limit(case)
                if value != getattr(case, param):
                    case = dataclasses.replace(case, **{param: value})
                    changed = True
                continue
            value = getattr(case, param)
            if allowed(value, limit):
                continue
            if isinstance(value, bool) and isinstance(limit, bool):
                case = dataclasses.replace(case, **{param: limit})
                continue
            return None
    if changed and min(case.output_shape(), default=1) < 1:
        return None
    return case


@st.composite
def _cases(draw: Any, record: Any, rank: int | None, small: bool, options: dict) -> Case:
    case = record.sample(HypothesisDraw(draw), rank=rank, small=small, **options)
    if _LIMITS:
        limited = within_limits(case)
        assume(limited is not None)
        case = limited
    for corner in case.corners():
        event(f"{record.name}: {corner}")
    return case


def strategy(record: Any, rank: int | None = None, small: bool = False,
             **options: Any) -> st.SearchStrategy[Case]:
    """Hypothesis strategy of valid cases of one op (every rank unless ``rank`` is given).

    ``small=True`` keeps tensors small enough for element-wise finite differences; ``options``
    are the record's own (e.g. ``kind="unique"`` for max-pool, ``modes=(...)`` for pad).
    """
    return _cases(record, rank, small, options)


def any_case(small: bool = False) -> st.SearchStrategy[Case]:
    """A case of any op at any rank."""
    from .ops import RECORDS

    return st.one_of([strategy(r, small=small) for r in RECORDS])


def sample(record: Any, n: int, seed: int, rank: int | None = None, small: bool = False,
           **options: Any) -> list[tuple[Case, int]]:
    """``n`` valid cases of one op and an array seed for each, determined by ``seed``."""
    rng = np.random.default_rng([seed, crc(record.name)])
    draw = RandomDraw(rng)
    out: list[tuple[Case, int]] = []
    while len(out) < n:
        for _ in range(10_000):
            try:
                case = record.sample(draw, rank=rank, small=small, **options)
                break
            except Rejected:
                continue
        else:  # pragma: no cover - the rules reject a small fraction only
            raise RuntimeError(f"could not draw a valid {record.name} case")
        out.append((case, int(rng.integers(0, 2**32))))
    return out


def corner_frequencies(record: Any, n: int = 1000, seed: int = 0,
                       **options: Any) -> dict[str, float]:
    """Fraction of ``n`` seeded draws reaching each corner the record names."""
    counts: Counter[str] = Counter()
    for case, _ in sample(record, n, seed, **options):
        counts.update(set(case.corners()))
    return {corner: counts[corner] / n for corner in record.corner_labels}
