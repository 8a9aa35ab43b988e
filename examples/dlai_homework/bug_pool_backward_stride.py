"""The deeplearning.ai functions with one bug: pool_backward ignores the stride (the notebook's
test uses stride 1)."""

import numpy as np
from conv_model import *  # noqa: F403 - the rest of the homework, unchanged
from conv_model import create_mask_from_window, distribute_value


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f = hparameters["f"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros_like(A_prev)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vert, horiz = h, w  # the bug: no stride
                for c in range(n_C):
                    if mode == "max":
                        window = A_prev[i, vert:vert + f, horiz:horiz + f, c]
                        mask = create_mask_from_window(window)
                        dA_prev[i, vert:vert + f, horiz:horiz + f, c] += mask * dA[i, h, w, c]
                    else:
                        dA_prev[i, vert:vert + f, horiz:horiz + f, c] += distribute_value(
                            dA[i, h, w, c], (f, f))
    return dA_prev
