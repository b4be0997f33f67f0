"""The whole training loop in a screenful: 784-128-64-10 ReLU on MNIST with the Tensor engine.

    python examples/train_mnist.py        (`micrograd-mnist train` is the full version:
                                           validation, checkpoints, resume, progress bar)
"""

import numpy as np

from micrograd_mnist import data, nn, no_grad, optim
from micrograd_mnist.nn import functional as F

mnist = data.load("mnist")  # fetched once into ~/.cache/micrograd-mnist
model = nn.MLP([784, 128, 64, 10], "relu", rng=np.random.default_rng(0))
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
rng = np.random.default_rng(0)

for epoch in range(3):
    order = rng.permutation(len(mnist.train_labels))
    for i in range(0, len(order), 128):
        batch = order[i:i + 128]
        loss = F.cross_entropy(model(mnist.train_images[batch]), mnist.train_labels[batch])
        opt.zero_grad()
        loss.backward()  # dL/dW = Xᵀ·dL/dY for every Linear, as in the seed texts
        opt.step()
    with no_grad():
        accuracy = (model(mnist.test_images).data.argmax(axis=1) == mnist.test_labels).mean()
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}, test accuracy {accuracy:.2%}")
