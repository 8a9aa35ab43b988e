"""SciPy and NumPy as independent oracles for the forward ops (no deep-learning framework).

- conv2d: ``scipy.signal.correlate`` per (sample, output channel), summed over the group's
  input channels, on the padded input with a zero-inserted (dilated) kernel, then subsampled;
- max_pool2d: ``scipy.ndimage.maximum_filter`` with a dilated footprint on the input padded with
  -inf, subsampled (never a framework's pooling);
- batch_norm (eps = 0, gamma = 1, beta = 0): ``scipy.stats.zscore`` over (N, H, W);
- pad: ``numpy.pad`` with the matching mode name (edge, reflect, wrap, constant).

The oracle always runs in float64 on the same values; the tolerance is the error model's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..backends import load_backend
from ..harness import context, upcast
from ..profiles import examples
from ..strategies import DTYPES, batch_norm_cases, conv_cases, pad_cases, pool_cases, seeds

scipy_oracle = load_backend("scipy")


def _check_y(case, impl, impl_name, dtype, seed, oracle_call):
    a = case.arrays(dtype, seed)
    a64 = upcast(a)
    got = case.forward(impl, a)["y"]
    want = oracle_call(a64)
    atol = tol.comparison_atol(tol.forward_bounds(case, a64, dtype)["y"],
                               tol.forward_bounds(case, a64, np.float64)["y"])
    assert got.dtype == dtype
    tol.compare("y", got, want, atol, context(case, dtype, seed, impl_name))


@settings(max_examples=examples(150))
@given(case=conv_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_conv2d_matches_scipy_correlate(case, seed, dtype, impl, impl_name_opt):
    _check_y(case, impl, impl_name_opt, dtype, seed,
             lambda a: scipy_oracle.conv2d(a["x"], a["w"], a.get("b"), **case.params()))


@settings(max_examples=examples(150))
@given(case=pool_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_max_pool2d_matches_ndimage_maximum_filter(case, seed, dtype, impl, impl_name_opt):
    _check_y(case, impl, impl_name_opt, dtype, seed,
             lambda a: scipy_oracle.max_pool2d(a["x"], **case.params()))


@settings(max_examples=examples(100))
@given(case=pad_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_pad_matches_numpy_pad(case, seed, dtype, impl, impl_name_opt):
    _check_y(case, impl, impl_name_opt, dtype, seed,
             lambda a: scipy_oracle.pad(a["x"], case.pad_width, case.mode, case.value))


@settings(max_examples=examples(100))
@given(case=batch_norm_cases(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_batch_norm_with_eps0_gamma1_beta0_is_scipy_zscore(case, seed, dtype, impl,
                                                           impl_name_opt):
    case = dataclasses.replace(case, training=True, running=False, eps=0.0)
    a = case.arrays(dtype, seed)
    c = case.shape[1]
    a["gamma"], a["beta"] = np.ones(c, dtype), np.zeros(c, dtype)

    def zscore(a64):
        per_channel = a64["x"].transpose(1, 0, 2, 3).reshape(c, -1)
        return scipy.stats.zscore(per_channel, axis=1).reshape(
            c, case.shape[0], *case.shape[2:]).transpose(1, 0, 2, 3)

    a64 = upcast(a)
    got = case.forward(impl, a)["y"]
    atol = tol.comparison_atol(tol.forward_bounds(case, a64, dtype)["y"],
                               tol.forward_bounds(case, a64, np.float64)["y"])
    tol.compare("y", got, zscore(a64), atol, context(case, dtype, seed, impl_name_opt))
