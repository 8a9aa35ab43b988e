import numpy as np

from .Base import BaseLayer


class ReLU(BaseLayer):
    def forward(self, input_tensor):
        self.input_tensor = input_tensor
        return np.maximum(input_tensor, 0)

    def backward(self, error_tensor):
        return error_tensor * (self.input_tensor > 0)
