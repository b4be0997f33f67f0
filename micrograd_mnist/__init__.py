"""micrograd-mnist: see how a neural network computes and learns, then train one on MNIST."""

from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, no_grad
from .value import Value

__all__ = ["GradcheckError", "Tensor", "Value", "gradcheck", "no_grad"]
