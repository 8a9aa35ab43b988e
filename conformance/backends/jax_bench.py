"""JAX's side of the benchmark (``benchmarks/bench.py``): the JAX adapter's table rows, jitted.

A case's JAX call is its record's row of ``jax_backend.TABLE``: the row's *prepare* function
(the adapter's argument checks and its rank-generic JAX function with static geometry) run once
by :func:`prepare`, its arrays put on the device once, and the call compiled once (outside the
timing), as a zero-argument :class:`~conformance.backends.bench_peer.PreparedCall` that blocks
until the result is ready:

- ``"forward"``: the jitted forward (``jax_backend._apply_jit``);
- ``"backward"``: the jitted pullback of ``jax.vjp`` of the forward's first output (``y``) for
  the differentiable inputs, with ``dy`` (``jax_backend._pullback_jit``: forward and pullback in
  one computation, as JAX runs a gradient; the forward call is the record's ``gradient_call``,
  as the adapter's autodiff helper takes it). The corrections some rows apply to JAX's gradient
  for NaN, -inf or tie inputs are not timed (the bench inputs hold none; the agreement check
  would show it);
- ``"forward+backward"``: one jitted computation returning the forward's outputs and the
  pullback's gradients.

A forward ``jax.vjp`` cannot differentiate (the adapter's variadic ``lax.reduce`` over
(value, index) pairs: adaptive max pooling, whose gradient the adapter composes from the winners'
indices instead) raises ``NotImplementedError`` naming why, which the benchmark reports as n/a.

float64 needs ``jax_enable_x64``: this module turns it on for the process (only the benchmark
imports it; float32 inputs stay float32). XLA's CPU client sizes its thread pool to the machine
(:func:`set_threads` cannot change it after JAX starts; :func:`info` reports the device count).
Peak memory: XLA's buffer assignment of the compiled call (outputs + temporaries,
``memory_analysis()``), on ``PreparedCall.peak_bytes``.
float16 / bfloat16 arrays go in as they are (JAX takes ml_dtypes' bfloat16 natively); the
adapter's declarations (storage arithmetic throughout, refusals such as lp_pool in float16) are
read through :func:`accumulation` and applied by :func:`prepare` as its contract functions do.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from conformance.backends import bench_peer, jax_backend
from conformance.backends.bench_peer import PreparedCall

NAME = "jax"
jax.config.update("jax_enable_x64", True)


def accumulation(function: str, storage: Any) -> str | None:
    """What the JAX adapter declares for ``function`` in the low-precision ``storage`` format."""
    return bench_peer.accumulation(jax_backend, function, storage)


def _convert(value: Any, dtype: np.dtype) -> np.ndarray:
    return jax_backend._np(value, dtype)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward_backward_jit(fn, static: tuple, primals: tuple, consts: tuple, dy):
    """The forward's outputs and the gradients of its first output, in one computation."""
    def y_and_outputs(*p):
        out = fn(*p, *consts, **dict(static))
        return jax_backend._first(out), out

    _, pullback, out = jax.vjp(y_and_outputs, *primals, has_aux=True)
    outs = out if isinstance(out, tuple) else (out,)
    return (*outs, *pullback(dy))


def _ready(out: Any) -> Any:
    return jax.block_until_ready(out)


def prepare(case: Any, arrays: Mapping[str, np.ndarray], direction: str) -> PreparedCall:
    """The JAX adapter's row for ``case`` on ``arrays`` (on the device once, compiled once), as
    a zero-argument call (module docstring). Raises ``NotImplementedError`` for a direction the
    row cannot express or JAX cannot differentiate, ``Unsupported`` (with the registry id) for
    a low-precision format the adapter does not compute the call in."""
    bench_peer.check_direction(direction)
    record = case.record
    row = jax_backend.TABLE[record.name]
    if row.forward is None:
        raise NotImplementedError(f"JAX cannot compute {case.op} [{row.unsupported}]")
    dtype = np.dtype(arrays["x"].dtype)
    bench_peer.check_storage(jax_backend, NAME, case, direction, dtype)
    arguments = case.call_args("forward", arrays)
    names = bench_peer.direction_names(case, direction)

    if direction == "forward":
        prepared = row.forward(case.rank, **arguments)
        device = tuple(map(jax_backend._j, prepared.arrays.values()))
        key = jax_backend._static_key(prepared.static)
        count = prepared.outputs

        def run_forward() -> Any:
            return _ready(jax_backend._apply_jit(prepared.fn, key, *device))

        def lowered() -> Any:
            return jax_backend._apply_jit.lower(prepared.fn, key, *device)

        def contract(out: Any) -> tuple[Any, ...]:
            outs = out if isinstance(out, tuple) else (out,)
            return outs[:count]

        call = PreparedCall(run_forward, names, dtype, _convert, contract)
    else:
        if row.backward_unsupported:
            raise NotImplementedError(f"JAX has no gradient of {case.op} "
                                      f"[{row.backward_unsupported}]")
        prepared = row.forward(case.rank, **record.case_type.gradient_call(arguments))
        differentiable = case.differentiable
        device = tuple(map(jax_backend._j, prepared.arrays.values()))
        primals, consts = device[:len(differentiable)], device[len(differentiable):]
        key = jax_backend._static_key(prepared.static)
        y = jax_backend._y_spec(prepared, arrays["dy"])
        dy = jax_backend._j(np.asarray(arrays["dy"], y.dtype))
        jitted = jax_backend._pullback_jit if direction == "backward" else _forward_backward_jit

        def run(primals=primals, consts=consts, dy=dy) -> Any:
            return _ready(jitted(prepared.fn, key, primals, consts, dy))

        def lowered(primals=primals, consts=consts, dy=dy) -> Any:
            return jitted.lower(prepared.fn, key, primals, consts, dy)

        count = 0 if direction == "backward" else len(case.outputs("forward"))
        forward_count = prepared.outputs

        def contract(out: Any) -> tuple[Any, ...]:
            # forward+backward: the forward's first `forward_count` outputs (of all it
            # returned), then the gradients; backward: the gradients
            outs = tuple(out)
            grads = outs[len(outs) - len(differentiable):]
            return (*outs[:forward_count], *grads) if count else grads

        call = PreparedCall(run, names, dtype, _convert, contract)
    try:
        call.run()  # compile now, outside the timing
    except Exception as exc:
        if direction == "forward":
            raise
        # the adapter's own backward for such a row composes the gradient from other calls
        raise NotImplementedError(
            f"jax.vjp of the adapter's {prepared.fn.__name__} fails "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:80]})") from exc
    call.peak_bytes = _peak_bytes(lowered)
    return call


def _peak_bytes(lowered: Callable[[], Any]) -> int | None:
    """The executable's outputs and temporaries in XLA's buffer assignment
    (``compile().memory_analysis()``): what the call allocates beyond its inputs, as nnref's
    tracemalloc peak counts. None where the analysis is not available."""
    try:
        stats = lowered().compile().memory_analysis()
        return int(stats.output_size_in_bytes + stats.temp_size_in_bytes)
    except Exception:  # an analysis the backend does not provide
        return None


# ------------------------------------------------------------------------- benchmark helpers


def set_threads(threads: int) -> None:
    """XLA's CPU client sizes its pool to the machine when JAX starts; nothing to set later
    (``XLA_FLAGS`` before JAX is imported would be the place)."""


def info() -> dict[str, Any]:
    """JAX's version, its device, and the XLA flags it started with."""
    return {"jax": jax.__version__, "jax_device": str(jax.devices()[0]),
            "jax_xla_flags": os.environ.get("XLA_FLAGS", "")}


def spin_probe() -> Callable[[], None]:
    """A medium float32 conv2d, jitted: long enough to wake XLA's whole thread pool."""
    x = jnp.ones((8, 16, 32, 32), jnp.float32)
    w = jnp.ones((32, 16, 3, 3), jnp.float32)
    conv = jax.jit(functools.partial(jax.lax.conv_general_dilated, window_strides=(1, 1),
                                     padding=((1, 1), (1, 1))))
    conv(x, w).block_until_ready()

    def run() -> None:
        conv(x, w).block_until_ready()

    return run
