"""pytest plugin (loaded by the root conftest.py): implementation under test, profiles, summary."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections import defaultdict

import pytest

from . import profiles
from .impl_under_test import (
    CONTRACT_FUNCTIONS,
    ENV_VAR,
    ImplUnderTest,
    impl_name,
    load_impl,
)
from .ops import op_and_direction

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
profiles.load()

_IMPL_KEY = pytest.StashKey[ImplUnderTest]()
_RESULTS_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl", default=None,
        help=f"module to check instead of nnref (also the {ENV_VAR} environment variable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "checks(*functions): the contract functions a test judges (default: the "
        "ones it calls)")
    config.stash[_RESULTS_KEY] = defaultdict(lambda: {"passed": 0, "failed": 0, "missing": 0})


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def pytest_report_header(config: pytest.Config) -> list[str]:
    name = impl_name(config.getoption("--impl"))
    try:
        where = getattr(load_impl(name), "__file__", "?")
    except ImportError as exc:
        where = f"NOT IMPORTABLE: {exc}"
    versions = ", ".join(
        f"{d} {_version(d)}"
        for d in ("numpy", "scipy", "hypothesis", "torch", "tensorflow-cpu")
    )
    return [
        f"nnref conformance: implementation under test: {name} ({where})",
        f"hypothesis profile: {profiles.active_profile()} ({profiles.PROFILE_ENV}); {versions}",
        f"python {platform.python_version()} on {platform.platform()}",
    ]


@pytest.fixture(scope="session")
def impl_name_opt(request: pytest.FixtureRequest) -> str:
    return impl_name(request.config.getoption("--impl"))


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest, impl_name_opt: str) -> ImplUnderTest:
    """The module under test (nnref unless --impl / NNREF_IMPL say otherwise)."""
    wrapped = ImplUnderTest(load_impl(impl_name_opt), impl_name_opt)
    request.config.stash[_IMPL_KEY] = wrapped
    return wrapped


def pytest_runtest_setup(item: pytest.Item) -> None:
    wrapped = item.config.stash.get(_IMPL_KEY, None)
    if wrapped is not None:
        wrapped.called.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.skipped):
        wrapped = item.config.stash.get(_IMPL_KEY, None)
        marker = item.get_closest_marker("checks")
        judged = set(marker.args) if marker else set(wrapped.called if wrapped else ())
        results = item.config.stash[_RESULTS_KEY]
        if report.skipped and "does not implement" in str(report.longrepr):
            missing = str(report.longrepr).split("does not implement ")[-1].split("'")[0]
            results[op_and_direction(missing.strip().rstrip(")"))]["missing"] += 1
        elif report.when == "call":
            for function in judged:
                results[op_and_direction(function)]["failed" if report.failed else "passed"] += 1
    return report


def _headroom_summary(tr) -> None:
    from .harness import HEADROOM, THROUGHPUT

    if THROUGHPUT:
        tr.section("cross-check throughput")
        for backend, (count, seconds) in sorted(THROUGHPUT.items()):
            tr.write_line(f"{backend:<12} {int(count):>6} examples in {seconds:7.1f} s: "
                          f"{count / max(seconds, 1e-9):7.1f} examples/s")
    if HEADROOM:
        tr.section("headroom: largest |error| / tolerance (1.0 = at the tolerance)")
        for (pair, op, direction, dtype, output), ratio in sorted(HEADROOM.items()):
            tr.write_line(f"{pair:<24} {op:<11} {direction:<9} {dtype:<8} {output:<13} "
                          f"{ratio:.2e}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    _headroom_summary(terminalreporter)
    results = config.stash[_RESULTS_KEY]
    if not results:
        return
    name = impl_name(config.getoption("--impl"))
    tr = terminalreporter
    tr.section(f"contract summary for {name}")
    tr.write_line(f"{'op':<12} {'direction':<10} {'verdict':<10} {'tests passed':>12} "
                  f"{'failed':>7} {'missing':>8}")
    for function in CONTRACT_FUNCTIONS:
        key = op_and_direction(function)
        r = results.get(key, {"passed": 0, "failed": 0, "missing": 0})
        verdict = ("fails" if r["failed"] else "missing" if r["missing"]
                   else "conforms" if r["passed"] else "untested")
        tr.write_line(f"{key[0]:<12} {key[1]:<10} {verdict:<10} {r['passed']:>12} "
                      f"{r['failed']:>7} {r['missing']:>8}")
