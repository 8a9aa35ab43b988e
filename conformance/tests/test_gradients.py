"""Every backward against central finite differences, float64, random upstream gradients.

Sizes are small (<= ~300 input elements) so the element-wise estimate stays cheap; the ci profile
runs 200 examples per op. Max-pool uses inputs with a unique winner per window ("unique" values):
ties are checked against the tie rule elsewhere, not with finite differences, whose derivative
does not exist at a tie.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from ..gradcheck import check_gradients
from ..harness import context
from ..profiles import examples
from ..strategies import batch_norm_cases, conv_cases, pad_cases, pool_cases, seeds


def _check(case, seed, impl, impl_name_opt):
    a = case.arrays(np.float64, seed)
    check_gradients(case, impl, a, lambda: context(case, np.float64, seed, impl_name_opt))


@pytest.mark.checks("pad_backward")
@settings(max_examples=examples(200))
@given(case=pad_cases(small=True), seed=seeds)
def test_pad_backward_matches_finite_differences(case, seed, impl, impl_name_opt):
    _check(case, seed, impl, impl_name_opt)


@pytest.mark.checks("conv2d_backward")
@settings(max_examples=examples(200))
@given(case=conv_cases(small=True), seed=seeds)
def test_conv2d_backward_matches_finite_differences(case, seed, impl, impl_name_opt):
    _check(case, seed, impl, impl_name_opt)


@pytest.mark.checks("max_pool2d_backward")
@settings(max_examples=examples(200))
@given(case=pool_cases(small=True, kind="unique"), seed=seeds)
def test_max_pool2d_backward_matches_finite_differences(case, seed, impl, impl_name_opt):
    _check(case, seed, impl, impl_name_opt)


@pytest.mark.checks("batch_norm_backward")
@settings(max_examples=examples(200))
@given(case=batch_norm_cases(small=True), seed=seeds)
def test_batch_norm_backward_matches_finite_differences(case, seed, impl, impl_name_opt):
    _check(case, seed, impl, impl_name_opt)
