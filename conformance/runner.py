"""Running a case on an implementation, one runner shared by ``diff``, the fixtures and the tests.

:func:`run_pass` calls one direction of a case on any implementation (nnref, an adapter, an
``--impl`` module) and reports what came back as an :class:`Outcome`: the outputs by name, the
outputs a backend could not express (``backends.Unsupported`` -> its registry id), a function
the module lacks (:data:`NOT_IMPLEMENTED`), or the error it raised. A forward refused only for
an optional output (max-pool indices) is run again without it (``Case.values_only``), so the
values are still compared and only that output is registered.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis.errors import UnsatisfiedAssumption

from .cases import Case
from .unsupported import Unsupported

NOT_IMPLEMENTED = "not-implemented"


@dataclass
class Outcome:
    """What one implementation returned for one case and one direction."""

    outputs: dict[str, Any] = field(default_factory=dict)
    registered: dict[str, str] = field(default_factory=dict)  # output ("*" = all) -> id
    error: str | None = None
    fallback: bool = False  # the forward was recomputed without its optional outputs


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _quiet_call(case: Case, module: Any, direction: str,
                arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return case.call(module, direction, arrays)


def run_pass(module: Any, case: Case, arrays: Mapping[str, np.ndarray],
             direction: str) -> Outcome:
    """Call ``direction`` ("forward" / "backward") of ``case`` on ``module``; never raises."""
    fname = case.op if direction == "forward" else case.backward_op
    if not callable(getattr(module, fname, None)):
        return Outcome(registered={"*": NOT_IMPLEMENTED})
    try:
        return Outcome(outputs=_quiet_call(case, module, direction, arrays))
    except Unsupported as exc:
        refused = Outcome(registered={"*": exc.divergence_id})
        reduced = case.values_only() if direction == "forward" else None
        if reduced is None:
            return refused
        try:
            outputs = _quiet_call(reduced, module, direction, arrays)
        except Unsupported:
            return refused
        except UnsatisfiedAssumption:
            raise
        except Exception as exc2:
            return Outcome(error=one_line(exc2))
        dropped = set(case.outputs(direction)) - set(outputs)
        return Outcome(outputs=outputs, registered=dict.fromkeys(dropped, exc.divergence_id),
                       fallback=True)
    except UnsatisfiedAssumption:  # the module under test does not support it (NotSupported)
        raise
    except Exception as exc:
        return Outcome(error=one_line(exc))
