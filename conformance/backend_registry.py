"""The backend registry: one row per backend (identity, installation, capabilities).

The basics layer of the suite (it imports nothing from it): the pytest plugin, ``diff``, the
fixtures, the bench, the report header and ``conformance.frameworks`` read these rows;
``conformance.backends`` loads the modules they name. Adding a backend is its module plus one
row here.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # The module timing it next to nnref in the benchmark (benchmarks/bench.py; the interface
    # is conformance/backends/bench_peer.py's), "" when the benchmark does not time it.
    bench: str = ""

    @property
    def storage_formats(self) -> tuple[str, ...]:
        """The low-precision formats (float16, bfloat16) among its dtypes."""
        return tuple(d for d in self.dtypes if d in ("float16", "bfloat16"))

    @property
    def install_hint(self) -> str:
        if self.extra:
            return f"pip install 'nnref[{self.extra}]'"
        return f"pip install {self.pin or self.distribution}"


BACKENDS: tuple[Backend, ...] = (
    Backend("nnref", "nnref", "nnref", "nnref", "", "", "", "core", "nnref",
            dtypes=("float32", "float64", "float16", "bfloat16")),
    Backend("torch", "conformance.backends.torch_backend", "torch", "torch", "torch==2.13.0",
            "torch", "torch", "torch", "torch", aliases=("pytorch",),
            dtypes=("float32", "float64", "float16", "bfloat16"),
            threads="torch.set_num_threads", bench="conformance.backends.torch_bench"),
    Backend("tensorflow", "conformance.backends.tf_backend", "tensorflow", "tensorflow-cpu",
            "tensorflow-cpu==2.21.0", "tf", "tf", "tf", "tf", aliases=("tf",),
            threads="TF intra-op pool", dtypes=("float32", "float64", "float16", "bfloat16")),
    Backend("scipy", "conformance.backends.scipy_backend", "scipy", "scipy", "", "", "",
            "core", "scipy", autodiff=False),
    Backend("jax", "conformance.backends.jax_backend", "jax", "jax", "jax==0.10.2", "jax",
            "jax", "jax", "jax", threads="XLA CPU client", examples=5,
            dtypes=("float32", "float64", "float16", "bfloat16"),
            bench="conformance.backends.jax_bench"),
    Backend("onnx-ref", "conformance.backends.onnxref_backend", "onnx", "onnx",
            "onnx==1.23.2", "onnx", "onnx", "onnx", "oref", aliases=("onnx",),
            autodiff=False, dtypes=("float32", "float64", "float16", "bfloat16")),
    Backend("onnxruntime", "conformance.backends.onnxruntime_backend", "onnxruntime",
            "onnxruntime", "onnxruntime==1.31.1", "onnx", "onnx", "onnx", "ort",
            aliases=("ort",), autodiff=False, threads="session intra_op_num_threads",
            dtypes=("float32", "float64", "float16", "bfloat16"),
            bench="conformance.backends.onnxruntime_bench"),
)
BACKEND_NAMES: tuple[str, ...] = tuple(b.name for b in BACKENDS)
_BY_NAME = {key: b for b in BACKENDS for key in (b.name, *b.aliases)}


def backend(name: str) -> Backend:
    """The registry row of a backend, by name or alias ("tf", "ort")."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKEND_NAMES}") from None
