"""Loss objects: ``forward(prediction, target) -> float`` then ``backward() -> d loss / d prediction``."""
from __future__ import annotations

import numpy as np

from . import fast
from .functional.losses import mean_squared_error, softmax_cross_entropy


def _check_labels(labels: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"expected integer class labels of shape ({n},), got dtype {labels.dtype} and shape {labels.shape}"
        )
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"expected labels in 0..{num_classes - 1} (the model has {num_classes} outputs), "
            f"got labels from {labels.min()} to {labels.max()}"
        )
    return labels


class SoftmaxCrossEntropy:
    """Mean cross-entropy of integer labels under the softmax of logits, computed stably.

    ``loss = mean_i [logsumexp(z_i) - z_i[y_i]]``, with the row maximum subtracted
    before exponentiating; ``d loss / d z = (softmax(z) - onehot(y)) / N``.
    """

    def __init__(self) -> None:
        self._grad: np.ndarray | None = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy expected logits of shape (N, classes), got {logits.shape}")
        kernels = fast.ops()
        # the compiled pass also checks the label range; None sends invalid labels to the checks below
        result = None if kernels is None else kernels.softmax_cross_entropy(logits, labels)
        if result is None:
            labels = _check_labels(labels, logits.shape[0], logits.shape[1])
            result = softmax_cross_entropy(logits, labels)
        loss, self._grad = result
        return loss

    def backward(self) -> np.ndarray:
        if self._grad is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        return self._grad

    __call__ = forward


class MeanSquaredError:
    """Mean over all elements of (prediction - target)^2.

    Integer class labels of shape (N,) for a prediction of shape (N, K) are
    turned into one-hot targets, so the loss also trains a classifier.
    """

    def __init__(self) -> None:
        self._grad: np.ndarray | None = None

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        if prediction.ndim == 2 and target.ndim == 1 and np.issubdtype(target.dtype, np.integer):
            labels = _check_labels(target, prediction.shape[0], prediction.shape[1])
            target = np.eye(prediction.shape[1], dtype=prediction.dtype)[labels]
        if target.shape != prediction.shape:
            raise ValueError(
                f"MeanSquaredError expected a target of shape {prediction.shape}, got {target.shape}"
            )
        loss, self._grad = mean_squared_error(prediction, target.astype(prediction.dtype, copy=False))
        return loss

    def backward(self) -> np.ndarray:
        if self._grad is None:
            raise RuntimeError("MeanSquaredError.backward called before forward")
        return self._grad

    __call__ = forward


LOSSES = {"cross_entropy": SoftmaxCrossEntropy, "mse": MeanSquaredError}
