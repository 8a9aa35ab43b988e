import numpy as np

from .Base import BaseLayer


class FullyConnected(BaseLayer):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.trainable = True
        self.weights = np.random.default_rng().uniform(0, 1, (input_size + 1, output_size))
        self._optimizer = None
        self._gradient_weights = None

    @property
    def optimizer(self):
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value):
        self._optimizer = value

    @property
    def gradient_weights(self):
        return self._gradient_weights

    def forward(self, input_tensor):
        ones = np.ones((input_tensor.shape[0], 1), dtype=input_tensor.dtype)
        self.input_tensor = np.hstack([input_tensor, ones])
        return self.input_tensor @ self.weights

    def backward(self, error_tensor):
        self._gradient_weights = self.input_tensor.T @ error_tensor
        error = error_tensor @ self.weights[:-1].T
        if self._optimizer is not None:
            self.weights = self._optimizer.calculate_update(self.weights, self._gradient_weights)
        return error
