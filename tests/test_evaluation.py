"""micrograd_mnist.evaluation: probabilities, accuracy, the confusion matrix, and the report that train's
metrics.json, `evaluate` and `plot confusion` all read."""

from __future__ import annotations

import math

import numpy as np
import pytest

from micrograd_mnist import evaluation
from micrograd_mnist.nn import MLP


def test_confusion_matrix_counts_true_rows_predicted_columns():
    predicted = np.array([0, 1, 1, 2, 2, 2, 0])
    labels = np.array([0, 1, 2, 2, 2, 0, 0])
    expected = np.array([[2, 0, 1],   # true 0: predicted 0 twice, 2 once
                         [0, 1, 0],   # true 1: predicted 1
                         [0, 1, 2]])  # true 2: predicted 1 once, 2 twice
    np.testing.assert_array_equal(evaluation.confusion_matrix(predicted, labels, classes=3), expected)
    ten = evaluation.confusion_matrix(predicted, labels)
    assert ten.shape == (10, 10) and ten.sum() == 7 and ten[3:].sum() == 0 and ten[:, 3:].sum() == 0
    np.testing.assert_array_equal(ten[:3, :3], expected)


def identity_model() -> MLP:
    model = MLP([3, 3])
    model.load_state_dict({"0.weight": np.eye(3, dtype=np.float32), "0.bias": np.zeros(3, dtype=np.float32)})
    return model


def test_predict_proba_is_softmax_of_the_logits():
    images = np.array([[1, 0, 0], [0, 2, 1], [0, 0, 5], [3, 1, 0], [0, 0, 0]], dtype=np.float32)
    probs = evaluation.predict_proba(identity_model(), images, batch_size=2)
    e = math.e
    assert probs.shape == (5, 3)
    np.testing.assert_allclose(probs[0], [e / (e + 2), 1 / (e + 2), 1 / (e + 2)], rtol=1e-6)
    np.testing.assert_allclose(probs[4], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(evaluation.predict_proba(identity_model(), images), probs, rtol=1e-6)
    # huge logits must not overflow
    big = evaluation.predict_proba(identity_model(), np.array([[1000, 0, 0]], dtype=np.float32))
    assert np.all(np.isfinite(big)) and big[0, 0] == pytest.approx(1)


def test_accuracy_counts_argmax_hits():
    images = np.array([[1, 0, 0], [0, 2, 1], [0, 0, 5], [3, 1, 0]], dtype=np.float32)
    # argmaxes are 0, 1, 2, 0: three of these four labels agree
    assert evaluation.accuracy(identity_model(), images, np.array([0, 1, 1, 0])) == 0.75
    assert evaluation.accuracy(identity_model(), images, np.array([0, 1, 2, 0])) == 1.0


def test_report_counts_each_class_and_says_none_for_a_class_without_images():
    images = np.array([[1, 0, 0], [0, 2, 1], [0, 0, 5], [3, 1, 0]], dtype=np.float32)  # argmaxes 0, 1, 2, 0
    test = evaluation.report(identity_model(), images, np.array([0, 1, 1, 1]), classes=3)
    np.testing.assert_array_equal(test.predicted, [0, 1, 2, 0])
    np.testing.assert_array_equal(test.confusion, [[1, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert test.accuracy == 0.5
    assert test.per_class == [1.0, pytest.approx(1 / 3), None]  # no image of class 2: None, not 0 or NaN
