"""Hypothesis profiles: ``ci`` (derandomised, fixed counts), ``dev`` (quick), ``thorough``.

Chosen with ``NNREF_PROFILE`` (or Hypothesis's own ``--hypothesis-profile``). Tests ask for
``examples(n)``: n examples under ``ci``, a quarter under ``dev``, ten times as many under
``thorough``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "NNREF_PROFILE"
_SCALE = {"ci": 1.0, "dev": 0.25, "thorough": 10.0}
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                              HealthCheck.data_too_large],
    "print_blob": True,
}

settings.register_profile("ci", derandomize=True, max_examples=50, **_COMMON)
settings.register_profile("dev", max_examples=15, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)


def active_profile() -> str:
    return os.environ.get(PROFILE_ENV, "dev")


def load() -> str:
    name = active_profile()
    if name not in _SCALE:
        raise ValueError(f"{PROFILE_ENV}={name!r}: expected one of {sorted(_SCALE)}")
    settings.load_profile(name)
    return name


def examples(n: int) -> int:
    """Example count for a test that needs ``n`` under the ci profile."""
    return max(1, int(n * _SCALE[active_profile()]))
