"""SciPy as an independent oracle beyond the SciPy adapter (which test_crosscheck runs for every
op's forward: ``scipy.signal.correlate``, ``ndimage.maximum_filter``, ``ndimage`` padding,
``scipy.stats.moment``).

- batch norm with eps = 0, gamma = 1, beta = 0 is ``scipy.stats.zscore`` over every axis but
  the channel one, at every rank.

The oracle always runs in float64 on the same values; the tolerance is the error model's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import tolerance as tol
from ..comparison import compare
from ..harness import context, upcast
from ..ops import record
from ..profiles import examples
from ..sampler import DTYPES, seeds, strategy

BN = record("batch_norm")


@pytest.mark.parametrize("rank", BN.ranks, ids=lambda r: f"{r}d")
@settings(max_examples=examples(40))
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_batch_norm_with_eps0_gamma1_beta0_is_scipy_zscore(rank, data, seed, dtype, impl,
                                                           impl_name_opt):
    import scipy.stats  # here, not at collection time: every pytest worker of every tox
    # environment collects this module, and importing scipy.stats takes about 2 s

    case = dataclasses.replace(data.draw(strategy(BN, rank), label="case"), training=True,
                               running=False, eps=0.0)
    a = case.arrays(dtype, seed)
    c = case.shape[1]
    a["gamma"], a["beta"] = np.ones(c, dtype), np.zeros(c, dtype)

    def zscore(a64):
        x = np.moveaxis(a64["x"], 1, 0)
        z = scipy.stats.zscore(x.reshape(c, -1), axis=1).reshape(x.shape)
        return np.moveaxis(z, 0, 1)

    a64 = upcast(a)
    got = case.forward(impl, a)["y"]
    atol = tol.comparison_atol(tol.forward_bounds(case, a64, dtype)["y"],
                               tol.forward_bounds(case, a64, np.float64)["y"])
    planted = 'a["gamma"], a["beta"] = np.ones_like(a["gamma"]), np.zeros_like(a["beta"])'
    compare("y", got, zscore(a64), atol,
            context(case, dtype, seed, impl_name_opt, "forward", planted))
