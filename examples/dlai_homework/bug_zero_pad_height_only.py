"""The deeplearning.ai functions with one bug: zero_pad pads the height only (the notebook's
test prints shapes of one padded axis)."""

import conv_model
import numpy as np
from conv_model import *  # noqa: F403 - the rest of the homework, unchanged


def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (0, 0), (0, 0)))  # the bug: no width padding


conv_model.zero_pad = zero_pad  # conv_forward and conv_backward use the buggy one too
