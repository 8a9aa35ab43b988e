"""Every backward against central finite differences, float64, random upstream gradients.

One test per op and rank, drawn from the op's record: its sampler with ``small=True`` (<= a few
hundred input elements, so the element-wise estimate stays cheap) and the record's own
``fd_options`` (max-pool: inputs with a unique winner per window, since the derivative does not
exist at a tie; ties are checked against the tie rule elsewhere). The step and the truncation
model are the record's (conformance/gradcheck.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..gradcheck import check_gradients
from ..harness import context
from ..profiles import examples
from ..sampler import seeds, strategy
from .params import record_ranks


@pytest.mark.parametrize(("record", "rank"), record_ranks("backward"))
@settings(max_examples=examples(60))
@given(data=st.data(), seed=seeds)
def test_backward_matches_finite_differences(record, rank, data, seed, impl, impl_name_opt):
    case = data.draw(strategy(record, rank, small=True, **record.fd_options), label="case")
    a = case.arrays(np.float64, seed)
    check_gradients(case, impl, a,
                    lambda: context(case, np.float64, seed, impl_name_opt, "backward"))
