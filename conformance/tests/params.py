"""Parametrisations shared by the test modules, read from the op records (no op list here)."""

from __future__ import annotations

import pytest

from ..ops import RECORDS


def record_ranks(judges: str | None = None) -> list:
    """One pytest param per op record and rank, id "conv3d", "pad1d", ...

    ``judges`` ("forward" / "backward") marks which contract function the test judges, for the
    per-op summary (default: every function the test calls).
    """
    out = []
    for rec in RECORDS:
        for rank in rec.ranks:
            marks = ()
            if judges is not None:
                fn = rec.functions(rank)[0 if judges == "forward" else 1]
                marks = (pytest.mark.checks(fn),)
            out.append(pytest.param(rec, rank, id=rec.label(rank), marks=marks))
    return out


def records() -> list:
    """One pytest param per op record, id its name."""
    return [pytest.param(rec, id=rec.name) for rec in RECORDS]
