"""A custom binding for ``homework.py`` (plain functions, explicit hyperparameters), checked by
``python -m conformance check homework.py --api my_binding.py -m values``."""
import conformance.bindings.core as c

BINDING = c.Binding("explicit-args", rows=(
    c.row("conv2d", "convolution2D", lambda u, x, w, stride:
          u.convolution2D(x, w, c.spatial(stride, 2), (0, 0))),
    c.row("conv2d_backward", ["convolution2D_backward_input", "convolution2D_backward_filter"],
          lambda u, dy, x, w, stride: (
              u.convolution2D_backward_input(dy, x, w, c.spatial(stride, 2)),
              u.convolution2D_backward_filter(dy, x, w, c.spatial(stride, 2)), c.bias_grad(dy)),
          outputs={"dx": "convolution2D_backward_input: dX",
                   "dw": "convolution2D_backward_filter: dW"}),
    c.row("max_pool2d", "pool_forward", lambda u, x, kernel_size, stride:
          u.pool_forward(x, *c.square_window(kernel_size, stride))),
    c.row("max_pool2d_backward", "pool_back", lambda u, dy, x, kernel_size, stride:
          u.pool_back(dy, x, *c.square_window(kernel_size, stride))),
    c.row("batch_norm", "batch_norm_forward", lambda u, x, gamma, beta:
          u.batch_norm_forward(x, *c.scale_and_shift(x, gamma, beta))),
    c.row("batch_norm_backward", "batch_norm_backward", lambda u, dy, x, gamma:
          u.batch_norm_backward(dy, x, *c.scale_and_shift(x, gamma)))),
    limits={"max_pool2d": c.one_int_axes("kernel_size", "stride"), "batch_norm": {"rank": 0}},
    notes=("convolution2D has no bias: db is the sum of dy, not the homework's",))
