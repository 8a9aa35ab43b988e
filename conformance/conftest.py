"""pytest plumbing: the implementation under test, Hypothesis profiles, the report header."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from types import ModuleType

import pytest

from . import profiles
from .impl_under_test import ENV_VAR, impl_name, load_impl

profiles.load()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl", default=None,
        help=f"module to check instead of nnref (also the {ENV_VAR} environment variable)",
    )


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
def impl(impl_name_opt: str) -> ModuleType:
    """The module under test (nnref unless --impl / NNREF_IMPL say otherwise)."""
    return load_impl(impl_name_opt)


@pytest.fixture(scope="session")
def nnref_module() -> ModuleType:
    """The trusted reference, for oracles that need a float64 computation of ours."""
    import nnref

    return nnref


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
