"""The backend registry (conformance.backends.BACKENDS): names, loading, and that the other places
a backend appears - the package extras, the pytest markers, the tox environments - agree with
its row."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import pytest

from ..backends import BACKEND_NAMES, BACKENDS, Unsupported, backend, load_backend
from ..frameworks import require
from ..paths import checkout_root


def test_backend_names_and_aliases():
    assert BACKEND_NAMES == ("nnref", "torch", "tensorflow", "scipy", "jax", "onnx-ref",
                             "onnxruntime")
    assert backend("tf").name == "tensorflow" and backend("ORT").name == "onnxruntime"
    assert len({b.short for b in BACKENDS}) == len(BACKENDS)
    with pytest.raises(ValueError, match="unknown backend 'caffe'"):
        load_backend("caffe")


def test_unsupported_carries_id():
    err = Unsupported("scipy-no-autodiff", "no gradients")
    assert err.divergence_id == "scipy-no-autodiff"
    assert "scipy-no-autodiff" in str(err) and "no gradients" in str(err)


def test_load_backend_missing_framework(monkeypatch):
    import conformance.backends as backends

    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"'torch'.*not installed.*nnref\[torch\]"):
        load_backend("torch")


def test_require_skips_unless_required(monkeypatch):
    from conformance import frameworks

    missing = "nnref_no_such_framework_for_tests"
    monkeypatch.delenv(frameworks.ENV_VAR, raising=False)
    with pytest.raises(pytest.skip.Exception):
        frameworks.require(missing)
    monkeypatch.setenv(frameworks.ENV_VAR, f"torch, {missing}")
    assert frameworks.required() == {"torch", missing}
    with pytest.raises(ImportError, match=frameworks.ENV_VAR):
        frameworks.require(missing)
    monkeypatch.setenv(frameworks.ENV_VAR, "tf")
    assert frameworks.required() == {"tensorflow"}


@pytest.mark.tf
def test_tf_alias():
    require("tensorflow")
    assert load_backend("tf") is load_backend("tensorflow")


def _checkout():
    root = checkout_root()
    if root is None:
        pytest.skip("reads pyproject.toml and tox.ini: only in a source checkout")
    return root


@pytest.mark.checkout
def test_extras_pins_markers_and_tox_environments_match_the_registry():
    root = _checkout()
    project = tomllib.loads((root / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    markers = {m.split(":")[0] for m in project["tool"]["pytest"]["ini_options"]["markers"]}
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(root / "tox.ini")
    envlist = {e.strip() for e in tox["tox"]["envlist"].split(",")}
    for row in BACKENDS:
        if row.extra:
            assert row.pin in extras[row.extra], f"{row.name}: {row.pin} not in [{row.extra}]"
        if row.marker:
            assert row.marker in markers, f"{row.name}: marker {row.marker!r} not registered"
        assert row.tox_env in envlist, f"{row.name}: tox environment {row.tox_env!r} not run"
        if row.pin:
            deps = tox[f"testenv:{row.tox_env}"].get("deps", "")
            assert row.pin in deps.split(), f"{row.name}: tox env {row.tox_env} lacks {row.pin}"


# The interface of a benchmark peer (conformance/backends/bench_peer.py's docstring).
BENCH_INTERFACE = {"prepare", "accumulation", "set_threads", "info", "spin_probe"}


def test_every_bench_module_of_the_registry_offers_the_peer_interface():
    """Read, not imported (the frameworks need not be installed): each ``Backend.bench`` module
    exists beside its backend's module and defines the functions the benchmark calls."""
    import ast
    import importlib.util

    peers = [b for b in BACKENDS if b.bench]
    assert {b.name for b in peers} >= {"torch", "jax", "onnxruntime"}
    for row in peers:
        spec = importlib.util.find_spec(row.bench.rpartition(".")[0])
        assert spec is not None and spec.submodule_search_locations, row.bench
        folder = Path(next(iter(spec.submodule_search_locations)))
        tree = ast.parse((folder / f"{row.bench.rpartition('.')[2]}.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert BENCH_INTERFACE <= defined, f"{row.bench} lacks {BENCH_INTERFACE - defined}"
        assert row.bench.rpartition(".")[0] == row.module.rpartition(".")[0]
