"""The backends: one registry row per backend, and how to load one.

A backend is a module offering the nnref contract (CONTRACT.md): nnref itself, or a framework
adapter (``<name>_backend.py`` in this package) whose contract functions are generated from its
table over the op records (``table.py``). Everything the suite needs to know about a backend
(its name, the package it imports, its version, its pin and extra, its pytest marker and tox
environment, what it can do) is its row in :data:`BACKENDS`; the plugin, ``diff``, the fixtures,
the bench and the report header read it there. Adding a backend is its module plus one row.

The contract's argument rules shared by the adapters are in ``arguments.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from ..unsupported import Unsupported

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "Backend",
    "Unsupported",
    "backend",
    "load_backend",
]


@dataclass(frozen=True)
class Backend:
    """One backend: identity, installation and capabilities."""

    name: str            # as the suite names it (diff columns, --backends, fixtures provenance)
    module: str          # the module offering the contract functions
    package: str         # the Python package it imports (find_spec decides "installed")
    distribution: str    # the pip distribution reporting its version in the header
    pin: str             # the requirement tox and the extra install ("" = unpinned / none)
    extra: str           # the nnref extra that installs it ("" = none)
    marker: str          # the pytest marker of its live tests ("" = always runs)
    tox_env: str         # the tox environment that runs those tests
    short: str           # a column label for wide tables
    dtypes: tuple[str, ...] = ("float32", "float64")
    autodiff: bool = True           # computes the _backward functions
    devices: tuple[str, ...] = ("cpu",)
    threads: str = ""               # how its intra-op threads are set, for the header
    aliases: tuple[str, ...] = ()
    # Hypothesis examples per op, rank and direction of the live cross-checks under the ci
    # profile: a backend that compiles every new shape (JAX, about 0.3 s each here) gets fewer.
    examples: int = 40

    @property
    def install_hint(self) -> str:
        if self.extra:
            return f"pip install 'nnref[{self.extra}]'"
        return f"pip install {self.pin or self.distribution}"


BACKENDS: tuple[Backend, ...] = (
    Backend("nnref", "nnref", "nnref", "nnref", "", "", "", "core", "nnref"),
    Backend("torch", "conformance.backends.torch_backend", "torch", "torch", "torch==2.13.0",
            "torch", "torch", "torch", "torch", aliases=("pytorch",),
            threads="torch.set_num_threads"),
    Backend("tensorflow", "conformance.backends.tf_backend", "tensorflow", "tensorflow-cpu",
            "tensorflow-cpu==2.21.0", "tf", "tf", "tf", "tf", aliases=("tf",),
            threads="TF intra-op pool"),
    Backend("scipy", "conformance.backends.scipy_backend", "scipy", "scipy", "", "", "",
            "core", "scipy", autodiff=False),
    Backend("jax", "conformance.backends.jax_backend", "jax", "jax", "jax==0.10.2", "jax",
            "jax", "jax", "jax", threads="XLA CPU client", examples=5),
    Backend("onnx-ref", "conformance.backends.onnxref_backend", "onnx", "onnx",
            "onnx==1.23.2", "onnx", "onnx", "onnx", "oref", aliases=("onnx",),
            autodiff=False),
    Backend("onnxruntime", "conformance.backends.onnxruntime_backend", "onnxruntime",
            "onnxruntime", "onnxruntime==1.31.1", "onnx", "onnx", "onnx", "ort",
            aliases=("ort",), autodiff=False, threads="session intra_op_num_threads"),
)
BACKEND_NAMES: tuple[str, ...] = tuple(b.name for b in BACKENDS)
_BY_NAME = {key: b for b in BACKENDS for key in (b.name, *b.aliases)}


def backend(name: str) -> Backend:
    """The registry row of a backend, by name or alias ("tf", "ort")."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKEND_NAMES}") from None


def load_backend(name: str) -> ModuleType:
    """Import and return the backend module called `name` (a name or alias of BACKENDS).

    The framework is imported only now. A missing framework raises ImportError naming it.
    """
    row = backend(name)
    if importlib.util.find_spec(row.package) is None:
        raise ImportError(
            f"backend {row.name!r} needs the Python package {row.package!r}, which is not "
            f"installed ({row.install_hint})"
        )
    return importlib.import_module(row.module)
