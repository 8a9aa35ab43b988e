"""Where the suite's data lives, in a source checkout and in an installed package.

Installed (``pip install "nnref[conformance]"``), the golden fixtures are package data in
``conformance/fixtures``; in a source checkout they are the top-level ``fixtures/`` directory,
next to the package. That layout alone decides where they are, not whether the whole checkout is
there: a copy of the suite laid out like a checkout without ``impl/`` (tools/mutation.py's
scratch directory) reads the same ``fixtures/``.
A few project-consistency tests read files that exist only in a checkout (docs, the source tree);
:func:`checkout_root` tells them whether there is one.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout this package was imported from, or None when it is installed."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "impl" / "nnref").is_dir():
        return root
    return None


def fixtures_dir() -> Path:
    """The golden fixtures: ``fixtures/`` next to the package (a checkout's layout, with or
    without ``impl/``), else the installed package data."""
    beside = PACKAGE_DIR.parent / "fixtures"
    if (beside / "manifest.json").is_file():
        return beside
    return PACKAGE_DIR / "fixtures"


def contract_md() -> Path | None:
    """CONTRACT.md (the contract's documented signatures): next to the package in a checkout's
    layout, else None (an installed suite does not ship it)."""
    beside = PACKAGE_DIR.parent / "CONTRACT.md"
    return beside if beside.is_file() else None
