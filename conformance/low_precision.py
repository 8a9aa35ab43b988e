"""float16 and bfloat16: an implementation judged by how its kernel rounds and accumulates.

A kernel in low precision is described by its *arithmetic*: the storage format F of its inputs
and outputs (float16 or bfloat16) and the precision it accumulates in. The default contract is
float32 accumulation (what torch's CPU kernels, oneDNN's default and cuDNN do, and nnref:
CONTRACT.md "Low precision"); a module that accumulates in F itself declares it,
``CONFORMANCE_ACCUMULATION = "storage"`` (``"float32"``: the default, said explicitly), and is
then held to that bound instead, listed in the summary. A module declaring neither is not asked
about low precision (the tests say so when they are deselected).

The expected value is nnref in float64 on the inputs exactly as F stores them, so rounding the
inputs to F is not an error of the kernel. The allowed error of one output element is

    SAFETY * (acc + ref) + u_F * (|expected| + SAFETY * (acc + ref)) + tiny_F

- ``acc``: the op's own model (its record's bounds: gamma(n) * sum |terms| over the sums the op
  computes) with the unit roundoff of the accumulation: float32's (2**-24) by default; for a
  declared storage accumulation the probabilistic bound lam sqrt(n) u_F
  (:class:`conformance.rounding.Probabilistic`, stated as such in every message), since the
  worst case gamma(n) of bfloat16 exceeds 1 from n = 256 on;
- ``ref``: the float64 reference's own bound;
- ``u_F * (...)``: rounding the result once to F (u = 2**-11 float16, 2**-8 bfloat16);
- ``tiny_F``: the smallest normal number of F (6.1e-5 float16, 1.2e-38 bfloat16), for a result
  that underflows: rounded to a subnormal of F, or flushed to zero as some kernels do.
A result whose magnitude rounds beyond F's largest finite value must be that infinity.

A failure says which bound it broke and what the error is consistent with: an error 13x the
float32-accumulation bound that fits the bound of accumulating in F says "consistent with
accumulating in bfloat16". :func:`judge` raises it; :func:`assess` gives the same verdict per
output as data (the largest error as a multiple of its bound, where, the message), for reports
that go on past a failure (``python -m conformance diff``'s float16 / bfloat16 rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import tolerance as tol
from .comparison import Mismatch
from .harness import upcast
from .rounding import TF32_INPUT_ROUNDING, Probabilistic, RoundedInputs, tiny, unit_roundoff

# How the low-precision tests shape x, the input every op reduces over or maps, on top of the op's
# own draw; each a labelled draw (hypothesis event "low precision: ..."). The regimes are where a
# kernel's arithmetic shows: a bound derived from it holds on all of them, a wrong arithmetic
# breaks it on some.
#   as drawn    the op's own values
#   offset      x + c, c = 4, -32 or 256 (x's own spread is about 1): every partial sum of a
#               reduction is about k |c| after k terms while the result is about |c| (an
#               average, a norm's mean) or sqrt(n) |c| (a product sum), so rounding each
#               partial sum to the storage format costs about n u_F |y| against the u_F |y| of
#               one rounding; a norm's one-pass variance E[x^2] - E[x]^2 cancels c^2 /
#               spread^2 to one
#   near zero   x / 256: elu(x) = expm1(x) ~ x, whose exp(x) - 1 loses the relative accuracy a
#               float16 result needs (even in float32); sigmoid ~ 1/2 + x/4
#   saturating  16 x: sigmoid near 0 and 1 (its gradient y (1 - y) from a y rounded to the
#               storage format loses every digit near 1), elu near -1, large sums
VALUE_REGIMES = ("as drawn", "offset", "near zero", "saturating")
OFFSETS = (4.0, -32.0, 256.0)
# the factor x is scaled by in the other regimes
SCALES = {"as drawn": 1.0, "near zero": 1 / 256, "saturating": 16.0}


def draw_values(d: Any) -> tuple[str, float]:
    """(regime, amount) for :func:`shaped`, from a sampler Draw (conformance.sampler)."""
    regime = d.choice(VALUE_REGIMES, "low-precision values")
    if regime == "offset":
        return regime, d.choice(OFFSETS, "offset")
    return regime, SCALES[regime]


def cycled_values(k: int) -> tuple[str, float]:
    """(regime, amount) number ``k`` of a fixed cycle: the regimes in turn, each offset in turn
    on the offset steps; any four consecutive ``k`` cover every regime, twelve every offset. For
    deterministic sweeps over numbered cases (``diff``)."""
    regime = VALUE_REGIMES[k % len(VALUE_REGIMES)]
    if regime == "offset":
        return regime, OFFSETS[(k // len(VALUE_REGIMES)) % len(OFFSETS)]
    return regime, SCALES[regime]


def shaped(a32: Mapping[str, np.ndarray], regime: str, amount: float) -> dict[str, np.ndarray]:
    """The case's float32 arrays with x shaped by the regime (a new dict; others unchanged)."""
    out = dict(a32)
    if "x" in out and regime != "as drawn":
        x = np.asarray(out["x"], np.float32)
        out["x"] = (x + np.float32(amount) if regime == "offset"
                    else x * np.float32(amount)).astype(np.float32)
    return out


def shaping_code(regime: str, amount: float) -> str:
    """Reproducer code doing what :func:`shaped` does to the float32 arrays ``a``."""
    if regime == "as drawn":
        return ""
    op = "+" if regime == "offset" else "*"
    return f"a['x'] = (a['x'] {op} np.float32({amount!r})).astype(np.float32)  # {regime}\n"


ACCUMULATION_ATTR = "CONFORMANCE_ACCUMULATION"
ACCUMULATIONS = ("float32", "storage")


def storage_dtypes() -> list[np.dtype]:
    """The low-precision storage formats this installation can make: float16, and bfloat16
    when ml_dtypes is installed."""
    found = [np.dtype(np.float16)]
    try:
        import ml_dtypes
    except ImportError:
        return found
    return [*found, np.dtype(ml_dtypes.bfloat16)]


def declared_accumulation(module: Any, function: str | None = None,
                          storage: Any = None) -> str | None:
    """The module's declared accumulation ("float32" / "storage"), None if it declares none.

    The declaration is one string for every function, or a mapping from ``"*"`` (every function
    not named), a function name, or ``"<function> <storage>"`` (``"conv2d_backward float16"``)
    to one; the most specific key that matches ``function`` and ``storage`` wins. Without
    ``function``: the module-wide value (the mapping's ``"*"``)."""
    value = getattr(module, ACCUMULATION_ATTR, None)
    if value is None:
        return None
    if isinstance(value, Mapping):
        for key, v in value.items():
            if v not in ACCUMULATIONS:
                raise ValueError(f"{ACCUMULATION_ATTR}[{key!r}] must be one of {ACCUMULATIONS}, "
                                 f"got {v!r}")
        name = np.dtype(storage).name if storage is not None else None
        for key in (f"{function} {name}", function, "*"):
            if key in value:
                return value[key]
        return None
    if value not in ACCUMULATIONS:
        raise ValueError(f"{ACCUMULATION_ATTR} must be one of {ACCUMULATIONS}, got {value!r}")
    return value


def storage_declarations(module: Any) -> dict[str, str]:
    """The functions (``"<function>"`` / ``"<function> <storage>"``) a mapping declaration holds
    to the storage-accumulation bound, for the summary; empty for a single value."""
    value = getattr(module, ACCUMULATION_ATTR, None)
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if k != "*" and v == "storage"}


# TF32 (GPU tensor cores): float32 storage; a matrix op's inputs (records with tf32_inputs:
# conv, conv_transpose, linear, both directions) rounded to 10 mantissa bits inside the kernel,
# products exact, float32 accumulation. A module whose float32 matrix ops run that way declares
# CONFORMANCE_TF32 = True; the "tf32" tests then hand it float32 inputs and allow the rounding
# (rounding.RoundedInputs). No CPU kernel of torch, TF, JAX or onnxruntime makes TF32.
TF32 = "tf32"
TF32_ATTR = "CONFORMANCE_TF32"


def declares_tf32(module: Any) -> bool:
    value = getattr(module, TF32_ATTR, False)
    if not isinstance(value, bool):
        raise ValueError(f"{TF32_ATTR} must be True or False, got {value!r}")
    return value


@dataclass(frozen=True)
class Arithmetic:
    """Storage format and accumulation of a low-precision kernel; ``tf32``: float32 storage
    with a matrix op's inputs rounded to TF32."""

    storage: np.dtype
    accumulation: str = "float32"  # or "storage"
    tf32: bool = False
    input_rounding: float = TF32_INPUT_ROUNDING  # with tf32: the budget per input

    @property
    def accumulate(self) -> Any:
        """What the records' bounds take as the dtype of the sums."""
        if self.accumulation == "float32":
            return np.dtype(np.float32)
        return Probabilistic(self.storage)

    def accumulate_for(self, case: Any) -> Any:
        """:attr:`accumulate`, with the TF32 input rounding where the op takes it."""
        if self.tf32 and case.record.tf32_inputs:
            return RoundedInputs(np.float32, self.input_rounding)
        return self.accumulate

    def describe(self) -> str:
        if self.tf32:
            return "float32 with TF32 inputs to matrix ops (10 mantissa bits), float32 accumulation"
        if self.accumulation == "float32":
            return f"{self.storage.name} storage, float32 accumulation"
        return f"{self.storage.name} storage and accumulation (probabilistic bound)"


def allowed(case: Any, a64: Mapping[str, np.ndarray], direction: str, arithmetic: Arithmetic,
            expected: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The allowed |got - expected| per output (see the module docstring)."""
    bounds = tol.forward_bounds if direction == "forward" else tol.backward_bounds
    acc = bounds(case, dict(a64), arithmetic.accumulate_for(case))
    ref = bounds(case, dict(a64), np.float64)
    u_out = unit_roundoff(arithmetic.storage)
    out: dict[str, np.ndarray] = {}
    for name, want in expected.items():
        if name == "indices" or name not in acc:
            continue
        inner = tol.comparison_atol(acc[name], ref[name])
        out[name] = (inner + u_out * (np.abs(np.asarray(want, np.float64)) + inner)
                     + tiny(arithmetic.storage))
    return out


@dataclass(frozen=True)
class Assessment:
    """One output against the bound of an arithmetic, measured without raising (:func:`assess`).

    ``ratio``: the largest ``|got - expected| / bound`` over the elements (0 when exact; inf for
    a wrong dtype, NaN placement, overflow or index); ``index``: that element (None when there
    is none: no elements, or a fault of the whole output), with ``got``, ``expected``,
    ``error`` and ``bound`` there; ``problem``: what :func:`judge` raises (without its
    context), None when the output is within its bound. ``exact``: compared for equality
    (``indices``), no bound.
    """

    output: str
    ratio: float
    index: tuple[int, ...] | None = None
    got: float = math.nan
    expected: float = math.nan
    error: float = math.nan
    bound: float = math.nan
    problem: str | None = None
    exact: bool = False


def assess(case: Any, got: Mapping[str, Any], expected: Mapping[str, np.ndarray],
           a64: Mapping[str, np.ndarray], direction: str, arithmetic: Arithmetic
           ) -> Iterator[Assessment]:
    """Each output of ``expected`` (in order) against the bound of ``arithmetic``: what
    :func:`judge` decides, as data. Lazy: an output is measured when it is reached."""
    limits = allowed(case, a64, direction, arithmetic, expected)
    for name, want in expected.items():
        value = got[name]
        if name == "indices":
            if np.array_equal(value, want):
                yield Assessment(name, 0.0, exact=True)
            elif np.shape(value) != np.shape(want):
                yield Assessment(name, math.inf, exact=True,
                                 problem=f"{name}: differ from the reference's")
            else:
                idx = tuple(int(i) for i in np.argwhere(np.asarray(value) != want)[0])
                yield Assessment(name, math.inf, idx, float(np.asarray(value)[idx]),
                                 float(np.asarray(want)[idx]), exact=True,
                                 problem=f"{name}: differ from the reference's")
            continue
        if np.asarray(value).dtype != arithmetic.storage:
            yield Assessment(name, math.inf, problem=(
                f"{name}: dtype {np.asarray(value).dtype}, expected {arithmetic.storage.name} "
                "(the inputs' storage format)"))
            continue
        if np.shape(value) != np.shape(want):  # never broadcast a wrong shape into a pass
            yield Assessment(name, math.inf, problem=(
                f"{name}: shape {np.shape(value)}, expected {np.shape(want)}"))
            continue
        got64 = np.asarray(value, np.float64)
        want64 = np.asarray(want, np.float64)
        with np.errstate(over="ignore"):
            stored = np.asarray(want).astype(arithmetic.storage).astype(np.float64)
        overflow = np.isinf(stored) & np.isfinite(want)
        if np.any(wrong := overflow & (got64 != stored)):
            idx = tuple(int(i) for i in np.argwhere(wrong)[0])
            yield Assessment(name, math.inf, idx, float(got64[idx]), float(want64[idx]),
                             problem=f"{name}: a result beyond {arithmetic.storage.name}'s "
                                     "largest finite value is not the infinity it rounds to")
            continue
        with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
            err = np.abs(got64 - want64)
        finite = np.isfinite(want) & ~overflow
        if np.any(wrong := np.isnan(got64) != np.isnan(want)):
            idx = tuple(int(i) for i in np.argwhere(wrong)[0])
            yield Assessment(name, math.inf, idx, float(got64[idx]), float(want64[idx]),
                             problem=f"{name}: NaN where the reference has none, or the reverse")
            continue
        limit = np.broadcast_to(limits[name], err.shape)
        ratio = np.where(finite & (limit > 0), err / np.where(limit > 0, limit, 1.0), 0.0)
        ratio = np.where(finite & (limit == 0) & (err > 0), np.inf, ratio)
        worst = float(ratio.max(initial=0.0))
        if ratio.size == 0:
            yield Assessment(name, worst)
            continue
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
        problem = None
        if worst > 1.0:
            problem = (
                f"{name}: error {err[idx]:.3g} at {idx} is {worst:.3g}x the bound of "
                f"{arithmetic.describe()} ({limit[idx]:.3g})"
                f"{_consistent_with(case, a64, direction, arithmetic, expected, name, err)}")
        yield Assessment(name, worst, idx, float(got64[idx]), float(want64[idx]),
                         float(err[idx]), float(limit[idx]), problem)


def judge(case: Any, got: Mapping[str, Any], expected: Mapping[str, np.ndarray],
          a64: Mapping[str, np.ndarray], direction: str, arithmetic: Arithmetic,
          where: str = "") -> dict[str, float]:
    """Raise :class:`Mismatch` naming the bound an output breaks; else the headroom per output
    (the largest error as a fraction of its bound)."""
    headroom: dict[str, float] = {}
    for verdict in assess(case, got, expected, a64, direction, arithmetic):
        if verdict.problem is not None:
            raise Mismatch(f"{verdict.problem} [{where}]")
        if not verdict.exact:
            headroom[verdict.output] = verdict.ratio
    return headroom


def _consistent_with(case: Any, a64: Mapping[str, np.ndarray], direction: str,
                     arithmetic: Arithmetic, expected: Mapping[str, np.ndarray], name: str,
                     err: np.ndarray) -> str:
    """What a failing error fits: accumulating in the storage format, inputs rounded to
    bfloat16 rather than TF32, or nothing modelled."""
    if arithmetic.tf32:
        coarser = allowed(case, a64, direction,
                          Arithmetic(arithmetic.storage, tf32=True, input_rounding=2.0**-7),
                          expected)
        if bool(np.all(err <= np.broadcast_to(coarser[name], err.shape))):
            return ": consistent with inputs rounded to bfloat16 (8 bits), not TF32"
        return ": beyond inputs rounded to bfloat16 too"
    if arithmetic.accumulation == "storage":
        return ": beyond even accumulating in the storage format"
    looser = allowed(case, a64, direction, Arithmetic(arithmetic.storage, "storage"), expected)
    if bool(np.all(err <= np.broadcast_to(looser[name], err.shape))):
        return (f": consistent with accumulating in {arithmetic.storage.name} (within that "
                f"probabilistic bound; declare {ACCUMULATION_ATTR} = 'storage' if intended)")
    return ": beyond the bound of accumulating in the storage format too"


def rounded_inputs(a32: Mapping[str, np.ndarray], storage: np.dtype
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the float32 inputs stored in ``storage``, the same values in float64: exact)."""
    with np.errstate(over="ignore"):
        low = {k: np.asarray(v).astype(storage) for k, v in a32.items()}
    return low, upcast(low)


def planting_code(storage: np.dtype, regime: str = "as drawn", amount: float = 1.0) -> str:
    """Reproducer code that shapes x as the regime says and stores the float32 arrays ``a`` in
    ``storage``, as the test did."""
    shaping = shaping_code(regime, amount)
    if storage.name == "bfloat16":
        return (shaping + "import ml_dtypes  # the inputs as stored in bfloat16\n"
                "a = {k: v.astype(ml_dtypes.bfloat16) for k, v in a.items()}")
    return shaping + f"a = {{k: v.astype(np.{storage.name}) for k, v in a.items()}}  # as stored"
