"""Non-finite inputs: NaN, +-inf and -0.0 in inputs and parameters propagate as CONTRACT.md says.

Hypothesis draws a valid case of every op and rank, then overwrites a few drawn positions of the
inputs, parameters and running statistics with NaN, +inf, -inf or -0.0. The implementation under
test and torch (float64, the same values) must agree exactly on where NaN and each infinity
appear, and within the error model on the finite rest (bounds computed with the non-finite values
set to zero: an output those values do not reach is an ordinary finite computation).

One place is left open (CONTRACT.md, "Non-finite values and signed zeros"): in a batch-norm
channel whose scale gamma / sqrt(var + eps) is infinite, an element of y or of the training-mode
dx that the written formula makes +-inf may be that infinity or NaN. torch folds y into
x * scale + (beta - mean * scale) and meets inf - inf; an implementation that follows the formula
does not. There the test accepts NaN or the formula's value (:class:`WrittenFormula`, float64, in
the order written) and checks that torch's answer is one of the two.

Signed zeros: the outputs a record declares exact selections or copies (``exact_outputs``: pad's
y, max-pool's y) must match torch bit for bit, -0.0 included. A zero that is a *sum* (a gradient,
a convolution, a normalisation) may carry either sign. pad_backward's copies are held bit for bit
against dy in test_properties, not against torch here: torch's reflect, replicate and circular
backward add every cell into zeros and return +0.0 for a copied -0.0.
Max-pool: NaN wins its window (torch's CPU rule, the last NaN in window order).
Failures print a reproducer that plants the same values before the call.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..backends import Unsupported, load_backend
from ..backends.arguments import (
    bn_axes,
    channel_shape,
)
from ..comparison import Mismatch, compare, same_bits
from ..frameworks import require
from ..harness import context
from ..ops.batch_norm import BatchNormCase
from ..ops.pad import MODES, PadCase
from ..profiles import examples
from ..sampler import seeds, strategy
from .params import record_ranks

pytestmark = pytest.mark.nonfinite

SPECIALS = [np.nan, np.inf, -np.inf, -0.0]
NUMPY_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}


@pytest.fixture(scope="module")
def torch_backend():
    require("torch")
    return load_backend("torch")


def poisoned(record, rank):
    @st.composite
    def draw_poisoned(draw):
        case = draw(strategy(record, rank), label="case")
        seed = draw(seeds, label="seed")
        a = case.arrays(np.float64, seed)
        names = sorted(a)  # every input: data, parameters, running statistics and dy
        hits = draw(st.lists(st.tuples(st.sampled_from(names), st.integers(0, 10**6),
                                       st.sampled_from(SPECIALS)), min_size=1, max_size=4),
                    label="poisoned positions")
        for name, position, value in hits:
            flat = a[name].reshape(-1)
            flat[position % flat.size] = value
        return case, seed, a, hits

    return draw_poisoned()


def _planting_code(hits) -> str:
    """The code that puts the same values into the reproducer's arrays ``a``."""
    lines = [f"a[{name!r}].reshape(-1)[{position} % a[{name!r}].size] = float({value!r})"
             for name, position, value in hits]
    return "\n".join(lines).replace("float(nan)", "np.nan").replace(
        "float(inf)", "np.inf").replace("float(-inf)", "-np.inf")


def _finite_bounds(bounds_fn, case, a):
    clean = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in a.items()}
    return bounds_fn(case, clean, np.float64)


class WrittenFormula:
    """batch_norm and batch_norm_backward as CONTRACT.md writes them, in float64 and in the
    order written: nothing folded, nothing distributed."""

    @staticmethod
    def _stats(x, running_mean, running_var, training):
        axes, per_channel = bn_axes(x.ndim), channel_shape(x.ndim)
        if training:
            mean = x.mean(axis=axes, keepdims=True)
            return mean, ((x - mean) ** 2).mean(axis=axes, keepdims=True), axes, per_channel
        return (running_mean.reshape(per_channel), running_var.reshape(per_channel), axes,
                per_channel)

    @staticmethod
    def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True,
                   momentum=0.1, eps=1e-5):
        mean, var, _, c = WrittenFormula._stats(x, running_mean, running_var, training)
        y = (x - mean) / np.sqrt(var + eps) * gamma.reshape(c) + beta.reshape(c)
        if not training or running_mean is None:
            return y
        m = x.size // x.shape[1]
        return (y, (1 - momentum) * running_mean + momentum * mean.reshape(-1),
                (1 - momentum) * running_var + momentum * (var.reshape(-1) * m / (m - 1)))

    @staticmethod
    def batch_norm_backward(dy, x, gamma, eps=1e-5, running_mean=None, running_var=None,
                            training=True):
        mean, var, axes, c = WrittenFormula._stats(x, running_mean, running_var, training)
        s = np.sqrt(var + eps)
        xhat = (x - mean) / s
        if training:
            dx = gamma.reshape(c) / s * (dy - dy.mean(axis=axes, keepdims=True)
                                         - xhat * (dy * xhat).mean(axis=axes, keepdims=True))
        else:
            dx = dy * gamma.reshape(c) / s
        return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def open_elements(case, direction, a) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per output, where CONTRACT.md accepts NaN besides the formula's infinity (y and the
    training-mode dx, in channels whose scale gamma / sqrt(var + eps) is infinite), and the
    formula's values."""
    if not isinstance(case, BatchNormCase) or (direction == "backward" and not case.training):
        return {}
    x = a["x"]
    var = x.var(axis=bn_axes(x.ndim)) if case.training else a["running_var"]
    scale = a["gamma"] / np.sqrt(var + case.eps)
    formula = case.call(WrittenFormula, direction, a)
    name = "y" if direction == "forward" else "dx"
    infinite = np.isinf(scale).reshape(channel_shape(x.ndim)) & np.isinf(formula[name])
    return {name: (infinite, formula[name])} if infinite.any() else {}


def _formula_or_nan(name, got, formula, where_open, who, where):
    """Where the contract leaves an element open: the formula's infinity or NaN, nothing else.

    Exact, no tolerance: the sign of such an infinity is the sign of a finite factor (x - mean,
    or the bracket of dx) that the drawn values keep many orders of magnitude above its rounding
    error, so every evaluation order that does not meet inf - inf gives the same infinity."""
    got = np.asarray(got, dtype=np.float64)
    bad = where_open & ~np.isnan(got) & (got != formula)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Mismatch(
            f"{name} ({who}): {int(bad.sum())} of {int(where_open.sum())} elements where the "
            f"scale gamma / sqrt(var + eps) is infinite are neither the formula's value nor NaN; "
            f"first at {idx}: got {got[idx]!r}, formula {formula[idx]!r} [{where}]")


def check(case, direction, a, got, want, bounds, where):
    """got against torch's want: exact NaN/inf placement and error-model bounds, bit for bit
    where the record says so, and NaN or the formula's value where the contract leaves open."""
    exact = case.record.exact_outputs if direction == "forward" else ()
    left_open = open_elements(case, direction, a)
    for name, value in want.items():
        actual = got[name]
        if name in left_open and np.shape(actual) == np.shape(value):
            where_open, formula = left_open[name]
            _formula_or_nan(name, value, formula, where_open, "torch, so CONTRACT.md is wrong",
                            where)
            _formula_or_nan(name, actual, formula, where_open, "implementation", where)
            actual, value = np.where(where_open, 0.0, actual), np.where(where_open, 0.0, value)
        compare(name, actual, value, tol.comparison_atol(bounds[name], bounds[name]), where)
        if name in exact:
            same_bits(name, actual, value, where)


def _test(direction):
    @pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN in, NaN out: NumPy says so
    @settings(max_examples=examples(25))
    @given(data=st.data())
    def test(record, rank, data, torch_backend, impl, impl_name_opt):
        case, seed, a, hits = data.draw(poisoned(record, rank))
        bounds_fn = tol.forward_bounds if direction == "forward" else tol.backward_bounds
        try:
            want = case.call(torch_backend, direction, {k: v.copy() for k, v in a.items()})
        except Unsupported:
            return  # registered and tested in test_crosscheck / test_divergences
        got = case.call(impl, direction, {k: v.copy() for k, v in a.items()})
        # the reproducer compares with torch's adapter, as this test does
        where = f"poisoned {hits}\n" + context(case, np.float64, seed, impl_name_opt,
                                               direction, _planting_code(hits),
                                               reference=torch_backend.__name__)
        check(case, direction, a, got, want, _finite_bounds(bounds_fn, case, a), where)

    return test


test_forward_propagates_non_finite_values_like_torch = pytest.mark.torch(
    pytest.mark.parametrize(("record", "rank"), record_ranks("forward"))(_test("forward")))
test_backward_propagates_non_finite_values_like_torch = pytest.mark.torch(
    pytest.mark.parametrize(("record", "rank"), record_ranks("backward"))(_test("backward")))


class _Altered:
    """WrittenFormula with one element of y or dx changed by ``alter``: a wrong implementation."""

    def __init__(self, index, alter):
        self.index, self.alter = index, alter

    def _change(self, out):
        first = out[0] if isinstance(out, tuple) else out
        first[self.index] = self.alter(first[self.index])
        return out

    def batch_norm(self, *args, **kwargs):
        return self._change(WrittenFormula.batch_norm(*args, **kwargs))

    def batch_norm_backward(self, *args, **kwargs):
        return self._change(WrittenFormula.batch_norm_backward(*args, **kwargs))


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("training", [False, True], ids=["eval", "training"])
def test_gamma_inf_accepts_the_formula_or_nan_and_nothing_else(training, torch_backend):
    """gamma = +inf in channel 0 of x = [1, 2, 3] (running mean 2 in eval; the batch mean is 2
    in training): the formula gives [-inf, nan, +inf] there, torch NaN (inf - inf). Both pass;
    a flipped infinity, a finite value or an infinity where the formula has NaN fail, and so
    does a NaN in channel 1, whose scale is finite."""
    case = BatchNormCase((3, 2), training=training, running=True)
    a = {"x": np.array([[1.0, 0.5], [2.0, -1.0], [3.0, 2.0]]), "gamma": np.array([np.inf, 2.0]),
         "beta": np.array([0.5, -1.0]), "running_mean": np.array([2.0, 0.0]),
         "running_var": np.array([1.0, 4.0]), "dy": np.array([[1.0, 0.5], [-2.0, 1.0],
                                                              [0.5, -1.0]])}
    assert np.array_equal(case.forward(WrittenFormula, a)["y"][:, 0], [-np.inf, np.nan, np.inf],
                          equal_nan=True)
    wrong = {"flipped infinity": ((0, 0), np.negative),
             "finite for an infinity": ((2, 0), lambda v: np.copysign(1e308, v)),
             "NaN where the scale is finite": ((1, 1), lambda v: np.nan),
             "infinity for the formula's NaN": ((1, 0), lambda v: np.inf)}
    for direction in ("forward", "backward") if training else ("forward",):
        bounds = tol.forward_bounds if direction == "forward" else tol.backward_bounds
        b = _finite_bounds(bounds, case, a)
        want = case.call(torch_backend, direction, a)
        for right in (WrittenFormula, torch_backend):
            check(case, direction, a, case.call(right, direction, a), want, b, direction)
        for label, (index, alter) in wrong.items():
            if direction == "backward" and index == (1, 0):
                continue  # dx[1, 0] is -inf, not NaN: its bracket is not zero
            with pytest.raises(Mismatch):
                check(case, direction, a, case.call(_Altered(index, alter), direction, a),
                      want, b, f"{direction}: {label}")


@pytest.mark.parametrize("rank", [1, 2, 3], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("mode", MODES)
def test_pad_copies_x_and_value_bit_for_bit(rank, mode, impl):
    """pad's y is x and (constant) ``value``, bit for bit: a -0.0 in x or as value stays -0.0,
    every mode and rank (np.pad copies)."""
    shape = (2, 2, *(3, 4, 3)[:rank])
    x = np.where(np.arange(np.prod(shape)).reshape(shape) % 3 == 0, -0.0, 1.0)
    pad_width = ((1, 2),) + ((2, 1),) * (rank - 1)
    value = -0.0 if mode == "constant" else 0.0
    case = PadCase(shape, pad_width, mode, value)
    extra = {"constant_values": value} if mode == "constant" else {}
    want = np.pad(x, ((0, 0), (0, 0), *pad_width), mode=NUMPY_MODES[mode], **extra)
    same_bits("y", case.forward(impl, {"x": x})["y"], want, case.describe())


def test_the_reproducer_plants_the_poisoned_values():
    """The snippet a failure prints rebuilds the very arrays the test compared."""
    from ..ops.max_pool import PoolCase

    case = PoolCase((2, 2, 5), 2, kind="ties")
    hits = [("x", 3, -0.0), ("x", 7, np.nan), ("dy", 1, -np.inf)]
    a = case.arrays(np.float64, 5)
    for name, position, value in hits:
        a[name].reshape(-1)[position % a[name].size] = value
    text = context(case, np.float64, 5, "nnref", "forward", _planting_code(hits))
    code = text.split("reproducer:\n", 1)[1].replace("print(case.forward(impl, a))", "")
    scope: dict = {}
    exec(compile(code, "<reproducer>", "exec"), scope)
    for k, v in a.items():
        same_bits(k, scope["a"][k], v)
