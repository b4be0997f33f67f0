"""The two engines share one op table, so they must agree number for number.

Hypothesis draws random expression "programs" (a list of instructions, each
reading earlier nodes, so intermediate nodes get reused) and we interpret each
program twice: element by element with `Value`s, and once vectorised with
float64 `Tensor`s of shape (n,). Values and every input gradient must match.
Then the same for random MLPs under cross-entropy, tensor `nn` vs `nn.scalar`.
"""

from __future__ import annotations

import numpy as np
from conftest import grad_or_zeros
from hypothesis import assume, given
from hypothesis import strategies as st

from micrograd_mnist import Tensor, Value
from micrograd_mnist.nn import MLP, functional, scalar

RTOL, ATOL = 1e-9, 1e-12

# --- programs -----------------------------------------------------------------
# Each instruction is a tuple; node indices refer to inputs first, then earlier results.
#   ("unary", name, i)               name in neg exp tanh sigmoid relu
#   ("binary", name, i, j)           name in add sub mul
#   ("const", name, side, c, i)      c (op) x_i or x_i (op) c, name in add sub mul
#   ("div", i, j, c)                 x_i / (x_j * x_j + c)           (denominator >= c > 0)
#   ("rdiv", c, i, k)                c / (x_i * x_i + k)             (a constant numerator)
#   ("cdiv", i, c)                   x_i / c                         (|c| >= 0.5)
#   ("log", i, c)                    log(x_i * x_i + c)              (argument >= c > 0)
#   ("ipow", i, p)                   x_i ** p, p a small whole number (any base)
#   ("fpow", i, p, c)                (x_i * x_i + c) ** p, p any real (positive base)

UNARY = ("neg", "exp", "tanh", "sigmoid", "relu")
BINARY = ("add", "sub", "mul")
positive_offsets = st.floats(0.5, 2.0)
constants = st.floats(-3.0, 3.0)
away_from_zero = st.one_of(st.floats(-3.0, -0.5), st.floats(0.5, 3.0))


@st.composite
def programs(draw) -> tuple[int, list[tuple]]:
    n_inputs = draw(st.integers(1, 3))
    length = draw(st.integers(1, 10))
    program = []
    for k in range(length):
        node = st.integers(0, n_inputs + k - 1)
        kind = draw(st.sampled_from(["unary", "binary", "const", "div", "rdiv", "cdiv", "log", "ipow", "fpow"]))
        if kind == "unary":
            program.append((kind, draw(st.sampled_from(UNARY)), draw(node)))
        elif kind == "binary":
            program.append((kind, draw(st.sampled_from(BINARY)), draw(node), draw(node)))
        elif kind == "const":
            program.append((kind, draw(st.sampled_from(BINARY)), draw(st.sampled_from(["left", "right"])),
                            draw(constants), draw(node)))
        elif kind == "div":
            program.append((kind, draw(node), draw(node), draw(positive_offsets)))
        elif kind == "rdiv":
            program.append((kind, draw(constants), draw(node), draw(positive_offsets)))
        elif kind == "cdiv":
            program.append((kind, draw(node), draw(away_from_zero)))
        elif kind == "log":
            program.append((kind, draw(node), draw(positive_offsets)))
        elif kind == "ipow":
            program.append((kind, draw(node), draw(st.sampled_from([1, 2, 3, 2.0]))))
        else:
            program.append((kind, draw(node), draw(st.sampled_from([-1.5, -1, -0.5, 0.5, 1.5, 2.5])),
                            draw(positive_offsets)))
    return n_inputs, program


def _binary(name, a, b):
    if name == "add":
        return a + b
    if name == "sub":
        return a - b
    return a * b


def interpret(program, inputs: list) -> list:
    """Run a program on Values or on Tensors: both engines take the same operators."""
    nodes = list(inputs)
    for ins in program:
        kind = ins[0]
        if kind == "unary":
            _, name, i = ins
            x = nodes[i]
            out = -x if name == "neg" else getattr(x, name)()
        elif kind == "binary":
            _, name, i, j = ins
            out = _binary(name, nodes[i], nodes[j])
        elif kind == "const":
            _, name, side, c, i = ins
            out = _binary(name, c, nodes[i]) if side == "left" else _binary(name, nodes[i], c)
        elif kind == "div":
            _, i, j, c = ins
            out = nodes[i] / (nodes[j] * nodes[j] + c)
        elif kind == "rdiv":
            _, c, i, k = ins
            out = c / (nodes[i] * nodes[i] + k)
        elif kind == "cdiv":
            _, i, c = ins
            out = nodes[i] / c
        elif kind == "log":
            _, i, c = ins
            out = (nodes[i] * nodes[i] + c).log()
        elif kind == "ipow":
            _, i, p = ins
            out = nodes[i] ** p
        else:
            _, i, p, c = ins
            out = (nodes[i] * nodes[i] + c) ** p
        nodes.append(out)
    return nodes


def _tensor_run(program, xs: np.ndarray, weights: list[float]):
    inputs = [Tensor(x.copy(), requires_grad=True) for x in xs]
    with np.errstate(all="ignore"):
        nodes = interpret(program, inputs)
        loss = sum((node * w).sum() for node, w in zip(nodes[len(xs):], weights))
        loss.backward()
    return inputs, nodes, loss


def _value_run(program, xs: np.ndarray, weights: list[float]):
    n_inputs, n = xs.shape
    inputs = [[Value(float(xs[k, e])) for e in range(n)] for k in range(n_inputs)]
    per_element = [interpret(program, [inputs[k][e] for k in range(n_inputs)]) for e in range(n)]
    loss = sum(w * nodes[n_inputs + j] for nodes in per_element for j, w in enumerate(weights))
    loss.backward()
    return inputs, per_element, loss


@given(prog=programs(), n=st.integers(1, 4), data=st.data())
def test_random_programs_agree_across_engines(prog, n, data):
    n_inputs, program = prog
    xs = np.array(data.draw(st.lists(st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n),
                                     min_size=n_inputs, max_size=n_inputs)), dtype=np.float64)
    weights = data.draw(st.lists(constants, min_size=len(program), max_size=len(program)))

    t_inputs, t_nodes, t_loss = _tensor_run(program, xs, weights)
    # keep to programs whose every number is finite and moderate, so that the scalar
    # engine (Python floats raise OverflowError where NumPy returns inf) sees the same math
    everything = [node.data for node in t_nodes] + [grad_or_zeros(t) for t in t_inputs]
    assume(all(np.all(np.isfinite(a)) and np.all(np.abs(a) < 1e6) for a in everything))

    v_inputs, v_nodes, v_loss = _value_run(program, xs, weights)

    np.testing.assert_allclose(v_loss.data, t_loss.item(), rtol=RTOL, atol=ATOL)
    for j, t_node in enumerate(t_nodes):
        got = np.array([nodes[j].data for nodes in v_nodes])
        np.testing.assert_allclose(got, t_node.data, rtol=RTOL, atol=ATOL, err_msg=f"node {j}")
    for k, t_input in enumerate(t_inputs):
        got = np.array([v.grad for v in v_inputs[k]])
        np.testing.assert_allclose(got, grad_or_zeros(t_input), rtol=RTOL, atol=ATOL, err_msg=f"grad of input {k}")


def test_program_interpreter_reuses_nodes():
    """The property above is only as strong as its programs: check that reuse really gets built and
    differentiated (x used four times: d/dx of (x*x) * (x+x) = 6 x^2)."""
    program = [("binary", "mul", 0, 0), ("binary", "add", 0, 0), ("binary", "mul", 1, 2)]
    xs = np.array([[0.5, -1.5, 2.0]])
    t_inputs, t_nodes, _ = _tensor_run(program, xs, [0.0, 0.0, 1.0])
    v_inputs, _, _ = _value_run(program, xs, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(t_nodes[-1].data, 2 * xs[0] ** 3, rtol=RTOL)
    np.testing.assert_allclose(t_inputs[0].grad, 6 * xs[0] ** 2, rtol=RTOL)
    np.testing.assert_allclose([v.grad for v in v_inputs[0]], 6 * xs[0] ** 2, rtol=RTOL)


# --- networks -----------------------------------------------------------------


@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=6),
       activation=st.sampled_from(["relu", "sigmoid", "tanh"]),
       seed=st.integers(0, 2**32 - 1),
       batch=st.integers(1, 5))
def test_random_mlps_agree_across_engines(sizes, activation, seed, batch):
    rng = np.random.default_rng(seed)
    model = MLP(sizes, activation, rng=rng, dtype=np.float64)
    X = rng.normal(size=(batch, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=batch)

    loss = functional.cross_entropy(model(Tensor(X)), labels)
    loss.backward()

    mirror = scalar.MLP(sizes, activation)
    mirror.load_state_dict(model.state_dict())
    losses = [scalar.cross_entropy(mirror([float(x) for x in row]), int(label)) for row, label in zip(X, labels)]
    scalar_loss = sum(losses) / batch
    scalar_loss.backward()

    assert loss.dtype == np.float64
    np.testing.assert_allclose(scalar_loss.data, loss.item(), rtol=RTOL, atol=ATOL)
    grads = mirror.grads()
    assert set(grads) == set(dict(model.named_parameters()))
    for name, p in model.named_parameters():
        assert grads[name].shape == p.shape
        np.testing.assert_allclose(grads[name], p.grad, rtol=RTOL, atol=ATOL, err_msg=name)
