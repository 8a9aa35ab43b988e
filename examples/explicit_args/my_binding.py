"""A custom binding: a homework of plain functions with explicit hyperparameters, no bias, no
padding in the backward pass and a batch norm without eps (``homework.py`` next to this file).

    python -m conformance check homework.py --api my_binding.py -m values
"""
import conformance.bindings.core as c


def window(k, s):  # the contract's kernel_size and stride as pool_forward's f and s
    return c.one_int(k, 2, "window size"), c.one_int(s or k, 2, "stride")


POOL = {"padding": c.fixed(0), "dilation": c.fixed(1), "ceil_mode": False,
        "stride": c.first_axis("stride"), "kernel_size": c.first_axis("kernel_size")}
BINDING = c.Binding("explicit-args", rows=(
    c.row("conv2d", "convolution2D", lambda u, x, w, b=None, stride=1, **kw: c.plain(b=b, **kw)
          or u.convolution2D(x, w, c.spatial(stride, 2), (0, 0))),
    c.row("conv2d_backward", ["convolution2D_backward_input", "convolution2D_backward_filter"],
          lambda u, dy, x, w, stride=1, **kw: c.plain(**kw) or (
              u.convolution2D_backward_input(dy, x, w, c.spatial(stride, 2)),
              u.convolution2D_backward_filter(dy, x, w, c.spatial(stride, 2)), dy.sum((0, 2, 3))),
          outputs={"dx": "convolution2D_backward_input: dX",
                   "dw": "convolution2D_backward_filter: dW"}),
    c.row("max_pool2d", "pool_forward", lambda u, x, kernel_size, stride=None, **kw:
          c.plain(**kw) or u.pool_forward(x, *window(kernel_size, stride))),
    c.row("max_pool2d_backward", "pool_back", lambda u, dy, x, kernel_size, stride=None, **kw:
          c.plain(**kw) or u.pool_back(dy, x, *window(kernel_size, stride))),
    c.row("batch_norm", "batch_norm_forward", lambda u, x, g, b, **kw: c.plain(**kw)
          or u.batch_norm_forward(x, *c.scale_and_shift(x, g, b))),
    c.row("batch_norm_backward", "batch_norm_backward", lambda u, dy, x, g, eps=0, **kw:
          c.plain(eps=eps, **kw) or u.batch_norm_backward(dy, x, *c.scale_and_shift(x, g)))),
    limits={"conv2d": {"bias": False, "padding": c.fixed(0), "dilation": c.fixed(1),
                       **c.ungrouped()}, "max_pool2d": {**POOL, "return_indices": False},
            "batch_norm": {"rank": 0, "training": True, "running": False, "eps": c.fixed(0.0)}},
    notes=("convolution2D has no bias: db is the sum of dy, not the homework's",))
