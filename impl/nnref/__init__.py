"""nnref: a compact, vectorised NumPy reference for CNN building blocks (channels-first
(N, C, *S) with 1, 2 or 3 spatial axes, float32/float64; float16/bfloat16 inputs computed with
float32 accumulation).

The contract every function follows (shapes, output-size formulas, tie rule, errors) is in
CONTRACT.md at the root of the repository.
"""

from .adaptive_pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool1d_backward,
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool3d,
    adaptive_avg_pool3d_backward,
    adaptive_max_pool1d,
    adaptive_max_pool1d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    adaptive_max_pool3d,
    adaptive_max_pool3d_backward,
)
from .avg_pool import (
    avg_pool1d,
    avg_pool1d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool3d,
    avg_pool3d_backward,
)
from .batch_norm import batch_norm, batch_norm_backward
from .conv import (
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
)
from .conv_transpose import (
    conv_transpose1d,
    conv_transpose1d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose3d,
    conv_transpose3d_backward,
)
from .lp_pool import lp_pool1d, lp_pool1d_backward, lp_pool2d, lp_pool2d_backward
from .max_pool import (
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool3d,
    max_pool3d_backward,
)
from .pad import PAD_MODES, pad, pad_backward

__version__ = "0.1.0"

__all__ = [
    "PAD_MODES",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d",
    "adaptive_avg_pool3d_backward",
    "adaptive_max_pool1d",
    "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d",
    "adaptive_max_pool3d_backward",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool3d",
    "avg_pool3d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv3d",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose3d",
    "conv_transpose3d_backward",
    "lp_pool1d",
    "lp_pool1d_backward",
    "lp_pool2d",
    "lp_pool2d_backward",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool3d",
    "max_pool3d_backward",
    "pad",
    "pad_backward",
]

# Activations and the dense layer.
from .activations import (
    elu,
    elu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
)
from .linear import linear, linear_backward

__all__ += [
    "elu",
    "elu_backward",
    "linear",
    "linear_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
]

# Normalisation per sample: layer, group and instance norm.
from .group_norm import group_norm, group_norm_backward  # noqa: E402 (after __all__ +=)
from .instance_norm import instance_norm, instance_norm_backward  # noqa: E402 (after __all__ +=)
from .layer_norm import layer_norm, layer_norm_backward  # noqa: E402 (after __all__ +=)

__all__ += [
    "group_norm",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_backward",
    "layer_norm",
    "layer_norm_backward",
]

# float16 and bfloat16 inputs: every public function widens them to float32 exactly, computes
# in float32 and rounds its float outputs once back (_low_precision; CONTRACT.md "Low precision").
from ._low_precision import accepts_low_precision as _accepts_low_precision  # noqa: E402

# How nnref accumulates float16 / bfloat16 inputs, for the conformance suite's error model
# (conformance.low_precision): in float32.
CONFORMANCE_ACCUMULATION = "float32"

for _name in __all__:
    if callable(globals()[_name]):
        globals()[_name] = _accepts_low_precision(globals()[_name])
del _name
