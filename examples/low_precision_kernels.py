"""Kernels that store float16 / bfloat16 and accumulate in float32: nnref's own rule (every
function is nnref's; CONFORMANCE_ACCUMULATION declares the arithmetic to the suite).

    python -m conformance check low_precision_kernels -m values -k low_precision      # exit 0

``storage_accumulating_kernels.py`` next to it accumulates conv2d, linear, avg_pool2d and
batch_norm in the storage format instead, and fails.
"""

from nnref import *  # noqa: F403 - the whole contract

CONFORMANCE_ACCUMULATION = "float32"
