"""micrograd-mnist: see how a neural network computes and learns, then train one on MNIST."""

from .gradcheck import GradcheckError, gradcheck
from .graph import building
from .tensor import Tensor, no_grad
from .value import Value

__all__ = ["GradcheckError", "Tensor", "Value", "building", "gradcheck", "no_grad"]
