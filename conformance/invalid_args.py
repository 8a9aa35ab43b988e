"""Invalid calls of the contract functions, drawn by Hypothesis.

Every strategy draws a VALID case of an op record (:func:`conformance.sampler.strategy`, at one
of the ranks of the function), takes the keyword arguments of its contract call
(``case.call_args``) and breaks exactly one thing: the result is an
:class:`~conformance.invalid_call.InvalidCall`. CONTRACT.md ("Errors") says the implementation
must raise ``ValueError`` whose message names the parameter; ``InvalidCall.names`` lists the words
one of which the message must contain.

    from conformance import invalid_args
    invalid_args.CATEGORIES                      # category id -> Category
    invalid_args.CATEGORIES["groups_not_dividing"].functions   # the functions it applies to
    invalid_args.invalid_calls()                 # one_of every category
    invalid_args.invalid_calls("negative_padding", ("conv3d",))

The categories are the generic ones (``conformance.generic_categories``), then each record's own
(``OpRecord.invalid_categories``), which apply to that record's functions only. No op is named
here. How frameworks answer the calls is ``conformance.invalid_outcomes``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .cases import Case
from .generic_categories import GENERIC
from .invalid_call import InvalidCall, direction_of, probe, ranks_of
from .invalid_category import Ctx, InvalidCategory
from .ops import RECORDS, contract_functions, record_of_function
from .sampler import DTYPES, seeds, strategy


def backward_functions() -> tuple[str, ...]:
    """The backward contract functions, in the records' order."""
    return tuple(f for f in contract_functions() if direction_of(f) == "backward")


def _sampler_options(record: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The category's sampler options that this record's sampler takes."""
    params = inspect.signature(record.sample).parameters
    return {k: v for k, v in options.items() if k in params}


@dataclass(frozen=True)
class Category(InvalidCategory):
    """A category as the suite draws it: generic (``owner`` "") or one record's own (``owner``
    its name: it applies to that record's functions only)."""

    owner: str = ""

    def ranks(self, function: str) -> tuple[int, ...]:
        """The ranks of ``function`` this category applies to (none: it does not apply)."""
        return _ranks(self.id, function)

    @property
    def functions(self) -> tuple[str, ...]:
        """The contract functions this category applies to, in the records' order."""
        return tuple(f for f in contract_functions() if self.ranks(f))


def _category(spec: InvalidCategory, owner: str = "") -> Category:
    return Category(spec.id, spec.summary, spec.applies, spec.breaker, spec.nnref, spec.options,
                    owner)


def _categories() -> dict[str, Category]:
    chosen = [_category(c) for c in GENERIC]
    chosen += [_category(c, rec.name) for rec in RECORDS for c in rec.invalid_categories]
    out: dict[str, Category] = {}
    for cat in chosen:
        if cat.id in out:
            raise ValueError(f"two invalid-argument categories are called {cat.id!r}")
        out[cat.id] = cat
    return out


CATEGORIES: dict[str, Category] = _categories()


@cache
def _ranks(category: str, function: str) -> tuple[int, ...]:
    cat = CATEGORIES[category]
    if cat.owner and record_of_function(function).name != cat.owner:
        return ()
    options = tuple(sorted(cat.options.items()))
    return tuple(r for r in ranks_of(function)
                 if cat.applies(probe(function, r, options)[0], direction_of(function),
                                probe(function, r, options)[1]))


def _valid(draw: Any, function: str, ranks: tuple[int, ...],
           options: Mapping[str, Any]) -> tuple[Case, dict, dict, int]:
    rec = record_of_function(function)
    rank = draw(st.sampled_from(ranks), label="rank")
    case: Case = draw(strategy(rec, rank=rank, small=True, **_sampler_options(rec, options)),
                      label="valid case")
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    seed = draw(seeds, label="seed")
    arrays = case.arrays(dtype, seed)
    return case, arrays, case.call_args(direction_of(function), arrays), seed


@st.composite
def _invalid(draw: Any, category: Category, functions: tuple[str, ...],
             rank: int | None) -> InvalidCall:
    function = draw(st.sampled_from(functions), label="function")
    ranks = tuple(r for r in category.ranks(function) if rank is None or r == rank)
    case, arrays, args, seed = _valid(draw, function, ranks, category.options)
    ctx = Ctx(draw, case, direction_of(function), arrays, args, np.random.default_rng(seed))
    names, broken = category.breaker(ctx)
    return InvalidCall(category.id, function, args, names, broken, case.rank)


@st.composite
def valid_calls(draw: Any, function: str) -> InvalidCall:
    """The starting points: valid calls of ``function`` (category "valid", nothing broken)."""
    case, _, args, _ = _valid(draw, function, ranks_of(function), {})
    return InvalidCall("valid", function, args, (), "", case.rank)


def invalid_calls(category: str | None = None, functions: tuple[str, ...] | None = None,
                  rank: int | None = None) -> st.SearchStrategy[InvalidCall]:
    """Invalid calls of one category (all of them if None), optionally only some functions,
    optionally only at one spatial rank."""
    chosen = [CATEGORIES[category]] if category else list(CATEGORIES.values())
    strategies = []
    for cat in chosen:
        fns = tuple(f for f in cat.functions if (functions is None or f in functions)
                    and (rank is None or rank in cat.ranks(f)))
        if fns:
            strategies.append(_invalid(cat, fns, rank))
    if not strategies:
        raise ValueError(f"no function of {functions} at rank {rank} in category {category!r}")
    return st.one_of(strategies)
