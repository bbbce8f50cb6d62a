"""The evaluator's numbers, pure: numpy and scipy on arrays of features, softmax probabilities or
pixels; no TensorFlow, no files. common/run_evaluation.py computes them for a run's samples, in the
feature space of the project's classifier:

- fid: the Fréchet distance between Gaussians fitted to the features of n generated and n real test
  images, |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
- kid, kid_stderr: the kernel distance, the unbiased estimate of MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over disjoint blocks of the samples (10 of n/10 each, the usual
  subsets of 1000 at n = 10000); the blocks are independent, so their spread gives a real standard error.
  Unbiased: its expectation is 0 when both sides come from one distribution, so it can be negative.
  The features are unscaled ReLU activations (x.y / d is about 3 on MNIST, well above Inception's), so
  these KIDs run larger than Inception KIDs.
- class_histogram, class_entropy (normalized: 1.0 = all ten classes equally often, 0 = one class),
  confident_share (max softmax > 0.9) and, for a one-class CIFAR run, target_class_share.
- checkerboard: the mean over images of the share of each image's spectral energy (its mean removed)
  at the three Nyquist frequencies (pi, 0), (0, pi), (pi, pi), i.e. in the part of the image that repeats
  every 2 pixels: the artifact a stride-2 transposed convolution with an odd kernel leaves. It is
  measured on the pixels, not in the classifier's features. A smooth image scores near 0, a perfect
  checkerboard 1, white noise 3 / (H W - 1) (0.003 at 32x32).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from common.data import DataError

NUM_CLASSES = 10  # every data set's classes (MNIST, Fashion-MNIST, CIFAR-10): the classifier's outputs
KID_BLOCKS = 10
CONFIDENT = 0.9  # a sample is "confidently classified" when its top softmax probability exceeds this


class Features(NamedTuple):
    """What the classifier says about a set of images."""

    features: np.ndarray  # [n, d] penultimate-layer activations
    probabilities: np.ndarray  # [n, 10] softmax


def _check_features(*arrays: np.ndarray, least: int = 2) -> None:
    for a in arrays:
        if a.ndim != 2:
            raise DataError(f"features must be a 2-D array [n, d], got shape {a.shape}")
        if len(a) < least:
            raise DataError(f"need at least {least} samples, got {len(a)}")
    if len({a.shape[1] for a in arrays}) > 1:
        raise DataError(f"feature sizes differ: {[a.shape[1] for a in arrays]}")


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance of two Gaussians: |mean_a - mean_b|^2 + Tr(cov_a + cov_b - 2 sqrtm(cov_a cov_b))."""
    diff = mean_a - mean_b
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if caught or not np.isfinite(root).all() or np.abs(np.imag(root)).max() > 1e-3 * np.abs(root).max():
        # Singular covariances (a feature that never fires, fewer samples than features) make sqrtm of
        # the product unstable; a tiny ridge makes it well-posed and moves the distance by ~ridge * d.
        ridge = 1e-6 * np.eye(len(cov_a))
        root = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(np.real(root)))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets."""
    _check_features(features_a, features_b)
    return frechet_distance(
        features_a.mean(axis=0),
        np.cov(features_a, rowvar=False),
        features_b.mean(axis=0),
        np.cov(features_b, rowvar=False),
    )


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for every pair of rows."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimate of MMD^2 between the distributions of the rows of x and of y.

    The within-set means leave out the diagonal k(x_i, x_i): that is what removes the bias.
    """
    _check_features(x, y)
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kid(
    features_a: np.ndarray, features_b: np.ndarray, blocks: int = KID_BLOCKS, seed: int = 0
) -> tuple[float, float]:
    """(KID, its standard error): unbiased MMD^2 averaged over disjoint random blocks of both sets.

    Uses min(len) samples of each side in `blocks` blocks (fewer when there are fewer than 2 per block);
    with a single block the standard error is NaN.
    """
    _check_features(features_a, features_b)
    n = min(len(features_a), len(features_b))
    blocks = max(1, min(blocks, n // 2))
    size = n // blocks
    rng = np.random.default_rng([seed, 3])
    picks_a = rng.permutation(len(features_a))[: blocks * size].reshape(blocks, size)
    picks_b = rng.permutation(len(features_b))[: blocks * size].reshape(blocks, size)
    pairs = zip(picks_a, picks_b, strict=True)
    estimates = np.array([mmd2_unbiased(features_a[a], features_b[b]) for a, b in pairs])
    stderr = float(estimates.std(ddof=1) / math.sqrt(blocks)) if blocks > 1 else math.nan
    return float(estimates.mean()), stderr


def checkerboard_shares(images: np.ndarray) -> np.ndarray:
    """Per image [n, H, W, C] (H, W even): the share of its spectral energy, mean removed, at the three
    Nyquist frequencies, summed over channels.

    By Parseval, the DFT at (a H/2, b W/2) for a, b in {0, 1} only sees the means of the four pixel
    phases (rows i::2, columns j::2), so the part of the energy there is H W / 4 times the sum of the
    squared phase means of the centred image: no FFT needed. A flat image (no energy at all) scores 0.
    """
    if images.ndim != 4 or images.shape[1] % 2 or images.shape[2] % 2:
        raise DataError(f"checkerboard needs images [n, H, W, C] of even H and W, got shape {images.shape}")
    n, height, width, channels = images.shape
    x = images.astype(np.float64)
    centred = x - x.mean(axis=(1, 2), keepdims=True)
    total = np.square(centred).sum(axis=(1, 2, 3))
    phases = centred.reshape(n, height // 2, 2, width // 2, 2, channels).mean(axis=(1, 3))
    nyquist = np.square(phases).sum(axis=(1, 2, 3)) * (height * width / 4)
    return np.divide(nyquist, total, out=np.zeros(n), where=total > 0)


def checkerboard(images: np.ndarray) -> float:
    """The mean of checkerboard_shares over the images (eval.json's `checkerboard`)."""
    return float(checkerboard_shares(images).mean())


def class_statistics(probabilities: np.ndarray, target_class: int | None = None) -> dict[str, Any]:
    """The predicted-class histogram, its normalized entropy, the confident share, the target's share."""
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES or len(probabilities) < 1:
        raise DataError(f"probabilities must be [n >= 1, {NUM_CLASSES}], got shape {probabilities.shape}")
    predicted = probabilities.argmax(axis=1)
    histogram = np.bincount(predicted, minlength=NUM_CLASSES)
    shares = histogram[histogram > 0] / len(predicted)
    return {
        "class_histogram": [int(c) for c in histogram],
        "class_entropy": float(-(shares * np.log(shares)).sum() / math.log(NUM_CLASSES)) + 0.0,  # no -0
        "confident_share": float(np.mean(probabilities.max(axis=1) > CONFIDENT)),
        "target_class_share": None if target_class is None else float(np.mean(predicted == target_class)),
    }


def quality(
    generated: Features, reference: Features, target_class: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """One eval.json section: how far `generated` is from `reference`, and its class statistics."""
    kid_value, kid_stderr = kid(generated.features, reference.features, seed=seed)
    return {
        "fid": fid(generated.features, reference.features),
        "kid": kid_value,
        "kid_stderr": kid_stderr,
        **class_statistics(generated.probabilities, target_class),
        "n": len(generated.features),
    }
