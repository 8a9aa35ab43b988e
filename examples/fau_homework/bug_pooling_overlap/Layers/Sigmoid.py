import numpy as np

from .Base import BaseLayer


class Sigmoid(BaseLayer):
    def forward(self, input_tensor):
        e = np.exp(-np.abs(input_tensor))
        self.activation = np.where(input_tensor >= 0, 1 / (1 + e), e / (1 + e))
        return self.activation

    def backward(self, error_tensor):
        return error_tensor * self.activation * (1 - self.activation)
