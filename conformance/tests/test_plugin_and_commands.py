"""The suite as a tool for other people's modules: the plugin and ``python -m conformance``.

Each check runs pytest (or the command) in a subprocess, from an empty directory, on a small
selection, so what is checked is what a user sees: a module that cannot be imported is one line
and exit status 4; NotImplementedError marks configurations unsupported without losing the
others; declared limits restrict the sampler; SIGTERM still prints the summary and the junit file;
pytest-xdist prints the same summary as a serial run; the package ships every subpackage and the
fixtures.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from .. import sampler
from ..impl_under_test import declared_limits
from ..ops.conv import ConvCase
from ..paths import PACKAGE_DIR, checkout_root

PACKAGE_PARENT = PACKAGE_DIR.parent


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's run: the package importable, the user's directory too."""
    paths = [str(tmp_path), str(PACKAGE_PARENT)]
    root = checkout_root()
    if root is not None:
        paths.insert(1, str(root / "impl"))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), NNREF_PROFILE="ci",
                NNREF_REQUIRE_FRAMEWORKS="")


def _pytest(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``pytest --pyargs conformance ARGS`` from ``tmp_path``. The plugin is named with ``-p``
    as well, for runs from a checkout that is not installed (installed, the pytest11 entry point
    has loaded it under the same name, and ``-p`` does nothing)."""
    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance",
                           "-p", "conformance.pytest_plugin", "-p", "no:cacheprovider", *args],
                          cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def _summary(stdout: str) -> str:
    """The contract summary's table: the lines after its title, up to the next section."""
    lines = stdout.split("contract summary for", 1)[1].splitlines()[1:]
    table = []
    for line in lines:
        if line.startswith("="):
            break
        if line.strip():
            table.append(line)
    return "\n".join(table)


# The student's layer: correct values, no groups (NotImplementedError), no other function.
NO_GROUPS = '''
import numpy as np
import nnref

def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if groups != 1:
        raise NotImplementedError("groups > 1")
    return nnref.conv2d(x, w, b, stride, padding, dilation, groups)
'''


def test_an_unimportable_module_is_one_line_and_exit_status_4(tmp_path):
    run = _pytest(tmp_path, "--impl", "no_such_module_here", timeout=120)
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no_such_module_here" in lines[0], run.stderr
    assert "ModuleNotFoundError" in lines[0]


def test_check_command_usage_errors(tmp_path):
    for args, status in ((["check"], 2), (["check", "-x"], 2), (["nope"], 2),
                         (["check", "no_such_module_here"], 4)):
        run = subprocess.run([sys.executable, "-m", "conformance", *args], cwd=tmp_path,
                             env=_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert run.returncode == status, (args, run.stderr)
        assert len([ln for ln in run.stderr.splitlines() if ln.strip()]) == 1, run.stderr
    run = subprocess.run([sys.executable, "-m", "conformance", "--version"], cwd=tmp_path,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("nnref conformance "), run.stdout


def test_not_implemented_error_marks_configurations_unsupported_and_checks_the_rest(tmp_path):
    (tmp_path / "nogroups.py").write_text(NO_GROUPS)
    run = _pytest(tmp_path, "--impl", "nogroups", "-m", "values",
                  "-k", "test_forward_matches_framework and scipy and conv2d")
    assert run.returncode == 0, run.stdout[-3000:]
    summary = _summary(run.stdout)
    assert re.search(r"conv2d\s+forward\s+conforms", summary), summary
    assert re.search(r"conv2d: \d+ x groups > 1", summary), summary
    assert re.search(r"pad\s+forward\s+untested", summary), summary


def test_declared_limits_restrict_what_is_drawn():
    import types

    module = types.SimpleNamespace(CONFORMANCE_LIMITS={"conv": {"groups": 1, "dilation": 1},
                                                       "max_pool2d": {"return_indices": False}})
    limits = declared_limits(module)
    sampler.set_limits(limits)
    try:
        grouped = ConvCase((2, 4, 5, 5), (2, 2, 3, 3), False, 1, 0, 1, 2)
        assert sampler.within_limits(grouped) is None
        assert sampler.within_limits(ConvCase((2, 4, 5, 5), (2, 4, 3, 3), False, 1, 0,
                                              (1, 2))) is None
        plain = ConvCase((2, 4, 5, 5), (2, 4, 3, 3), False, 2, ((0, 1), 1), (1, 1))
        assert sampler.within_limits(plain) is plain
        from ..ops.max_pool import PoolCase

        pool = PoolCase((1, 2, 5, 5), 2, return_indices=True)
        assert sampler.within_limits(pool).return_indices is False
        assert sampler.within_limits(PoolCase((1, 2, 5), 2)).return_indices is True  # 1-D
    finally:
        sampler.set_limits({})
    for bad in ({"convolution": {}}, {"conv": {"grups": 1}}, {"conv": 1}, ["conv"]):
        with pytest.raises(ValueError, match="CONFORMANCE_LIMITS"):
            declared_limits(types.SimpleNamespace(CONFORMANCE_LIMITS=bad))


SLOW_TEST = '''
import time

def test_fast(impl):
    impl.pad

def test_slow(impl):
    impl.conv2d
    print("slow test started", flush=True)
    time.sleep(60)
'''


def test_sigterm_still_prints_the_summary_and_the_junit_file(tmp_path):
    (tmp_path / "test_slow_user.py").write_text(textwrap.dedent(SLOW_TEST))
    junit = tmp_path / "junit.xml"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "-p", "conformance.pytest_plugin", "test_slow_user.py",
                             f"--junitxml={junit}", "-s"],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # SIGTERM once the slow test runs (imports and collection take seconds, more on a loaded
    # machine; a signal before the plugin is configured would just kill the process)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "slow test started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert proc.returncode == 2, out[-2000:]  # pytest's "interrupted"
    assert "contract summary for nnref" in out, out[-2000:]
    assert re.search(r"pad\s+forward\s+conforms", out), out[-2000:]
    assert junit.is_file() and "test_fast" in junit.read_text()


def test_xdist_prints_the_same_summary_as_a_serial_run(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is part of the conformance extra")
    selection = ["-m", "values", "-k", "test_hand_case or test_properties and adjoint"]
    serial = _pytest(tmp_path, *selection)
    parallel = _pytest(tmp_path, *selection, "-n", "2")
    assert serial.returncode == parallel.returncode == 0, parallel.stdout[-3000:]
    assert _summary(serial.stdout) == _summary(parallel.stdout)
    assert "headroom" not in serial.stdout or "headroom" in parallel.stdout


@pytest.mark.checkout
def test_the_package_ships_every_subpackage_and_the_fixtures():
    root = checkout_root()
    project = tomllib.loads((root / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    packages = set(setuptools["packages"])
    on_disk = {".".join(p.parent.relative_to(root).parts)
               for p in (root / "conformance").rglob("__init__.py")}
    assert on_disk | {"nnref", "conformance.fixtures"} == packages
    assert setuptools["package-dir"]["conformance.fixtures"] == "fixtures"
    data = setuptools["package-data"]["conformance.fixtures"]
    shipped = {p.relative_to(root / "fixtures").as_posix()
               for pattern in data for p in (root / "fixtures").glob(pattern)}
    stored = {p.relative_to(root / "fixtures").as_posix()
              for p in (root / "fixtures").rglob("*") if p.is_file()}
    assert shipped == stored
    assert project["project"]["entry-points"]["pytest11"] == {
        "conformance.pytest_plugin": "conformance.pytest_plugin"}
    assert {"py.typed", "*.toml"} <= set(setuptools["package-data"]["conformance"])


@pytest.mark.checkout
def test_every_readme_output_block_names_its_command_and_is_filled():
    """README.md's command outputs are regenerated by tools/readme_outputs.py (never typed by
    hand): each is a marked block, and none is left empty."""
    import importlib.util

    root = checkout_root()
    spec = importlib.util.spec_from_file_location("readme_outputs",
                                                  root / "tools" / "readme_outputs.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules["readme_outputs"] = tool  # its dataclass looks its module up
    spec.loader.exec_module(tool)
    text = (root / "README.md").read_text()
    blocks = tool.blocks(text)
    assert len(blocks) >= 4
    for block in blocks:
        assert block.body.strip(), f"empty output block for `{block.command}`"
        assert tool.normalise(block.body) == block.body, block.command
    # the version line is cheap: check it for real
    assert tool.run("python -m conformance --version").startswith("nnref conformance ")


def test_progress_lines_name_each_function_whose_counts_changed():
    from types import SimpleNamespace

    from ..pytest_plugin import _State, progress_lines

    state = _State()
    state.module = SimpleNamespace(user_label=lambda f: {"conv2d": "conv_forward_naive"}.get(f, f))
    state.progress["conv2d"].update(passed=3)
    state.progress["relu"].update(passed=1, failed=1, skipped=4)
    first = progress_lines(state, 31.0)
    assert first == ["[   31 s] conv_forward_naive (conv2d): ok so far, 3 passed, 0 failed",
                     "[   31 s] relu: FAILING, 1 passed, 1 failed"]
    state.progress["relu"]["skipped"] += 1  # skips alone are no progress
    assert progress_lines(state, 62.0) == []
    state.progress["conv2d"]["failed"] += 1
    assert progress_lines(state, 93.0) == [
        "[   93 s] conv_forward_naive (conv2d): FAILING, 3 passed, 1 failed"]


def test_the_quick_profile_is_derandomised_and_the_smallest():
    from .. import profiles

    assert profiles._SCALE["quick"] < profiles._SCALE["dev"] < profiles._SCALE["ci"]
    from hypothesis import settings

    assert settings.get_profile("quick").derandomize
