"""Hypothesis profiles: ``ci`` (derandomised, fixed counts), ``dev`` (random, a quarter of
``ci``), ``quick`` (derandomised, a tenth of ``ci``: ``check --quick``), ``thorough``.

Chosen with ``NNREF_PROFILE`` (or Hypothesis's own ``--hypothesis-profile``). Tests ask for
``examples(n)``: n examples under ``ci``, a quarter under ``dev``, ten times as many under
``thorough``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "NNREF_PROFILE"
_SCALE = {"ci": 1.0, "dev": 0.25, "quick": 0.1, "thorough": 10.0}
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                              HealthCheck.data_too_large],
    "print_blob": True,
}

settings.register_profile("ci", derandomize=True, max_examples=50, **_COMMON)
settings.register_profile("dev", max_examples=15, **_COMMON)
settings.register_profile("quick", derandomize=True, max_examples=5, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)


# Shrinking a failure (finding a smaller falsifying example) is worth a few seconds, not the
# minutes Hypothesis allows by default (300 s per test): against an implementation that fails many
# tests it would dominate the run. The bound is Hypothesis's own engine constant (read when a
# shrink starts); NNREF_SHRINK_SECONDS overrides it. Argument checks do not shrink at all.
SHRINK_ENV = "NNREF_SHRINK_SECONDS"
DEFAULT_SHRINK_SECONDS = 5
QUICK_SHRINK_SECONDS = 1  # check --quick


def bound_shrinking() -> float:
    """Limit each test's shrinking to NNREF_SHRINK_SECONDS (default 5) seconds."""
    raw = os.environ.get(SHRINK_ENV, str(DEFAULT_SHRINK_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{SHRINK_ENV}={raw!r}: expected a number of seconds") from None
    from hypothesis.internal.conjecture import engine

    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = seconds
    return seconds


def active_profile() -> str:
    return os.environ.get(PROFILE_ENV, "dev")


def load() -> str:
    name = active_profile()
    if name not in _SCALE:
        raise ValueError(f"{PROFILE_ENV}={name!r}: expected one of {sorted(_SCALE)}")
    settings.load_profile(name)
    bound_shrinking()
    return name


def examples(n: int) -> int:
    """Example count for a test that needs ``n`` under the ci profile."""
    return max(1, int(n * _SCALE[active_profile()]))
