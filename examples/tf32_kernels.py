"""Matrix ops as a GPU runs them with TF32 on: float32 inputs of conv, conv_transpose and linear
(and of their backwards) rounded to TF32's 10 mantissa bits, then float32 products and sums
(here: nnref in float32). Every other function is nnref's.

    python -m conformance check tf32_kernels -m values -k tf32
    # passes: judged by the TF32 arithmetic it declares; without the declaration, the same
    # kernels fail the plain float32 tests of conv, conv_transpose and linear

``CONFORMANCE_TF32 = True`` makes the suite hold these float32 matrix ops to the TF32 bound
(conformance.low_precision) in its "tf32" tests.
"""

import nnref
import numpy as np
from nnref import *  # noqa: F403 - the rest of the contract

CONFORMANCE_TF32 = True
KEEP_BITS = 10  # TF32: 10 explicit mantissa bits (bfloat16 would be 7)


def _tf32(a):
    """float32 ``a`` rounded to nearest (ties to even) with KEEP_BITS mantissa bits."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float32:
        return a
    drop = 23 - KEEP_BITS
    u = a.view(np.uint32)
    u = u + np.uint32((1 << (drop - 1)) - 1) + ((u >> np.uint32(drop)) & np.uint32(1))
    return (u & ~np.uint32((1 << drop) - 1)).view(np.float32)


def _on_tf32_inputs(name):
    function = getattr(nnref, name)

    def call(*args, **kwargs):
        return function(*(_tf32(a) for a in args),
                        **{k: _tf32(v) for k, v in kwargs.items()})

    call.__name__ = name
    return call


for _name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "linear"):
    globals()[_name] = _on_tf32_inputs(_name)
    globals()[f"{_name}_backward"] = _on_tf32_inputs(f"{_name}_backward")
