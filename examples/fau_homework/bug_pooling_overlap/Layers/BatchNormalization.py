import numpy as np

from .Base import BaseLayer


class BatchNormalization(BaseLayer):
    """Batch normalisation over (N, C) or (N, C, H, W); moving averages start at the first
    batch's statistics."""

    def __init__(self, channels):
        super().__init__()
        self.trainable = True
        self.channels = channels
        self.epsilon = 1e-11
        self.alpha = 0.8
        self.weights = np.ones(channels)
        self.bias = np.zeros(channels)
        self.moving_mean = None
        self.moving_var = None
        self.optimizer = None

    def _flat(self, tensor):
        if tensor.ndim == 2:
            return tensor
        return tensor.transpose(0, 2, 3, 1).reshape(-1, tensor.shape[1])

    def _unflat(self, flat, shape):
        if len(shape) == 2:
            return flat
        b, c, h, w = shape
        return flat.reshape(b, h, w, c).transpose(0, 3, 1, 2)

    def forward(self, input_tensor):
        self.shape = input_tensor.shape
        x = self._flat(input_tensor)
        if self.testing_phase:
            mean, var = self.moving_mean, self.moving_var
        else:
            mean, var = x.mean(axis=0), x.var(axis=0)
            if self.moving_mean is None:
                self.moving_mean, self.moving_var = mean, var
            else:
                self.moving_mean = self.alpha * self.moving_mean + (1 - self.alpha) * mean
                self.moving_var = self.alpha * self.moving_var + (1 - self.alpha) * var
        self.std = np.sqrt(var + self.epsilon)
        self.x_hat = (x - mean) / self.std
        return self._unflat(self.weights * self.x_hat + self.bias, self.shape)

    def backward(self, error_tensor):
        dy = self._flat(error_tensor)
        self.gradient_weights = (dy * self.x_hat).sum(axis=0)
        self.gradient_bias = dy.sum(axis=0)
        g = dy * self.weights
        dx = (g - g.mean(axis=0) - self.x_hat * (g * self.x_hat).mean(axis=0)) / self.std
        return self._unflat(dx, self.shape)
