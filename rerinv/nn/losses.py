"""Output losses of the networks, their logit gradients and their Fisher.

Per sample, averaged over the batch: ``softmax`` outputs use the cross-entropy of the class
label (nats); ``sigmoid`` outputs use the Bernoulli cross-entropy summed over the output
units (nats per sample), as in the K-FAC autoencoder experiments. Both are the negative
log-likelihood of an exponential family in its natural parameters (the logits), so the
Fisher of the output distribution is its Hessian: ``diag(p) - p p^T`` (softmax) and
``diag(q (1 - q))`` (sigmoid).
"""

from __future__ import annotations

import numpy as np

from rerinv.errors import InputError

OUTPUTS = ("softmax", "sigmoid")


def check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def loss(output: str, logits: np.ndarray, y: np.ndarray) -> float:
    """Batch-mean loss (nats per sample)."""
    if output == "softmax":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.mean(log_p[np.arange(len(y)), y]))
    return float(np.mean(np.sum(np.logaddexp(0.0, logits) - y * logits, axis=1)))


def accuracy(output: str, logits: np.ndarray, y: np.ndarray) -> float:
    """Share of correctly classified samples (NaN for a sigmoid output)."""
    if output != "softmax":
        return float("nan")
    return float(np.mean(np.argmax(logits, axis=1) == y))


def output_gradient(output: str, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample gradient of the per-sample loss with respect to the logits, (B, outputs)."""
    if output == "softmax":
        g = softmax(logits)
        g[np.arange(len(y)), y] -= 1.0
        return g
    return sigmoid(logits) - y


def sampled_output_gradient(
    output: str, logits: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-sample logit gradients for targets drawn from the model's own predictive
    distribution (the true Fisher that K-FAC approximates, not the empirical one)."""
    if output == "softmax":
        p = softmax(logits)
        u = rng.random((len(p), 1))
        drawn = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
        p[np.arange(len(p)), drawn] -= 1.0
        return p
    q = sigmoid(logits)
    return q - (rng.random(q.shape) < q)


def fisher_quadratic(output: str, logits: np.ndarray, v: np.ndarray) -> float:
    """``mean_b v_b^T F_R(b) v_b``: the output Fisher's quadratic form on logit changes
    ``v`` (B, outputs), averaged over the batch."""
    if output == "softmax":
        p = softmax(logits)
        return float(np.mean(np.sum(p * v * v, axis=1) - np.sum(p * v, axis=1) ** 2))
    q = sigmoid(logits)
    return float(np.mean(np.sum(q * (1.0 - q) * v * v, axis=1)))
