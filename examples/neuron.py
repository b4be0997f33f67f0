"""One neuron, ŷ = w·x + b, with a squared loss: autograd's gradients beside the hand-derived ones.

    python examples/neuron.py
"""

from micrograd_mnist import Value

w, x, b, y = Value(0.5, label="w"), Value(2.0, label="x"), Value(0.1, label="b"), Value(1.0, label="y")
y_hat = w * x + b
loss = (y_hat - y) ** 2
loss.backward()

dL_dyhat = 2 * (y_hat.data - y.data)  # the chain rule by hand
print(f"ŷ = {y_hat.data:.2f}, L = {loss.data:.4f}")
print(f"dL/dw: autograd {w.grad:+.4f}   by hand dL/dŷ·x = {dL_dyhat * x.data:+.4f}")
print(f"dL/db: autograd {b.grad:+.4f}   by hand dL/dŷ   = {dL_dyhat:+.4f}")
