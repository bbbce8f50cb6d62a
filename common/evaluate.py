"""How good is a run? `python -m common.evaluate --run RUN_DIR [--n N]` writes RUN_DIR/eval.json.

Every number is measured in the feature space of the project's own small classifier (common/classifier.py;
Inception does not fit 28x28 digits and is not available offline), so the numbers compare runs of one
data set with each other, not with published Inception FIDs:

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

Beside the run's numbers, eval.json holds the two ends of the scale at the same n: `real_floor` (two
disjoint sets of real images, what a perfect generator would get) and `noise_ceiling` (uniform noise
images), each with the same statistics. For a one-class run the real row also carries
`target_class_share_unseen`: the share of the class's real test images that the classifier never
learned from and calls the class (its recall on its own held-out images), the honest ceiling of the
run's target_class_share when the floor's images include some the classifier learned from, and
`other_classes_target_share`: the share of held-out real images of the other classes it calls the
target (1/10 would be chance; more is a bias towards the target that flatters a run).
`train --eval-every N` computes the run's numbers during training with the live session's sampler
(TrainingEvaluator) and writes them to history.csv and TensorBoard.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
import tensorflow as tf
from tqdm import tqdm

from common.classifier import NUM_CLASSES, FeatureClassifier, load_classifier, load_split
from common.command import OneLineParser, UsageError, exit_code
from common.config import SAMPLER_STATS, Config, ConfigError
from common.data import DataError, ImageSet
from common.modules import run_architecture
from common.rundir import RunDir, RunDirError, atomic_write_bytes
from common.sampling import WEIGHTS, Generator, weights_config
from common.streams import EVAL_STREAM, sample_noise

v1 = tf.compat.v1

PROG = "common.evaluate"
EVAL_FILE = "eval.json"
DEFAULT_N = 10000
KID_BLOCKS = 10
CONFIDENT = 0.9  # a sample is "confidently classified" when its top softmax probability exceeds this
# history.csv columns of `train --eval-every`; target_class_share only for one-class (CIFAR) runs
HISTORY_METRICS = ("fid", "kid", "class_entropy", "confident_share", "target_class_share")


# --------------------------------------------------------------------------------------------- metrics
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


def image_features(classifier: FeatureClassifier, images: np.ndarray) -> Features:
    """uint8 images [n, H, W, C] of the classifier's shape -> Features (DataError for any other shape)."""
    return Features(*classifier.predict(images))


def noise_images(n: int, image_shape: Sequence[int], seed: int) -> np.ndarray:
    """Uniform noise images in [0, 255]: the ceiling every generator should be far below."""
    return np.random.default_rng([seed, 4]).integers(0, 256, (n, *image_shape), dtype=np.uint8)


# -------------------------------------------------------------------------------------------- run data
def real_images(dataset: str, split: str, data_dir: str | None, class_label: int | None) -> ImageSet:
    """A split of the run's data set, restricted to the run's class when it learned one."""
    images = load_split(dataset, split, data_dir)
    if class_label is None:
        return images
    keep = images.labels == class_label
    return ImageSet(images.images[keep], images.labels[keep], images.class_names, images.source)


def floor_sets(
    test: np.ndarray, load_train: Callable[[], np.ndarray], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    """Two disjoint sets of n real images for the real-vs-real floor, and where they came from.

    From the test split when it holds 2n images; else from test and train together (the train split is
    only loaded then); else n is reduced to half of what there is, and the source says so.
    """
    if len(test) >= 2 * n:
        pool, source = test, "test"
    else:
        pool, source = np.concatenate([test, load_train()]), "test + train"
    half = min(n, len(pool) // 2)
    if half < 2:
        raise DataError(f"the real-vs-real floor needs at least 4 real images, there are {len(pool)}")
    picks = rng.permutation(len(pool))[: 2 * half]
    text = f"two disjoint sets of {half} real images drawn from {source} ({len(pool)} images)"
    if half < n:
        text += f"; n reduced from {n}: there are fewer than {2 * n}"
    return pool[np.sort(picks[:half])], pool[np.sort(picks[half:])], text


def checkpoint_step(checkpoint: str) -> int:
    return int(checkpoint.rsplit("-", 1)[1])


def _subset(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return images if n == len(images) else images[np.sort(rng.choice(len(images), n, replace=False))]


def _classifier_record(classifier: FeatureClassifier) -> dict[str, Any]:
    record = classifier.record
    return {
        "path": str(classifier.folder),
        "test_accuracy": record["test_accuracy"],
        "balanced_test_accuracy": record["balanced_test_accuracy"],
        "trained_on": f"classifier trained on {record['trained_on']}",
        "note": record["note"],
    }


def evaluate_run(
    run: RunDir,
    n: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    progress: bool = True,
    sampler_stats: str | None = None,
    checkpoint: str | None = None,
    weights: Sequence[str | None] = (None,),
) -> list[dict[str, Any]]:
    """Everything eval.json holds for one checkpoint of the run, once for each of `weights`, in order:
    `checkpoint` is latest (None), best or a step (RunDir.resolve_checkpoint); see the module docstring.

    weights: "average" (the generator's weight average, for a run trained with --g-ema-decay) or
    "live" (the trained weights themselves); None: what the run samples from. The reference, the real
    floor and the noise ceiling do not depend on the weights: their classifier features are computed once."""
    record = run.read_config()
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RunDirError(f'{run.config} holds no run settings (no "config" object)')
    config = Config.from_dict(record["config"])
    spec = run_architecture(config, record)  # also checks the recorded image shape
    sampled = [weights_config(config, w) for w in weights]  # refuses a bad choice before any work
    checkpoint = run.resolve_checkpoint(checkpoint)
    data_dir = data_dir or config.data_dir
    test = real_images(config.dataset, "test", data_dir, config.class_label)
    which = f"{config.dataset} test images" + (
        "" if config.class_label is None else f" of class {test.class_names[config.class_label]}"
    )
    if n is None:
        n = min(DEFAULT_N, len(test))
    if n < 2:
        raise UsageError(f"--n must be at least 2, got {n}")
    if n > len(test):
        raise UsageError(f"--n {n} is larger than the {len(test)} real {which}")

    rng = np.random.default_rng([seed, 5])
    reference_images = _subset(test.images, n, rng)
    floor_a, floor_b, floor_source = floor_sets(
        test.images, lambda: real_images(config.dataset, "train", data_dir, config.class_label).images, n, rng
    )

    target = config.class_label
    results = []
    with load_classifier(config.dataset, data_dir, progress=progress) as classifier:
        reference = image_features(classifier, reference_images)
        floor = quality(
            image_features(classifier, floor_a), image_features(classifier, floor_b), target, seed
        )
        floor["checkerboard"] = checkerboard(floor_a)
        if target is not None:
            floor.update(unseen_target_share(classifier, target))
        noise = noise_images(n, spec.image_shape, seed)
        noise_ceiling = {
            **quality(image_features(classifier, noise), reference, target, seed),
            "checkerboard": checkerboard(noise),
            "source": f"{n} uniform noise images in [0, 255] vs the reference",
        }
        for sampled_config, weights_used in sampled:
            with Generator.from_run(run, spec, sampled_config, checkpoint, sampler_stats) as generator:
                generated = generator.images(sample_noise(config, n, seed, EVAL_STREAM), progress=progress)
                stats_used = generator.sampler_stats
            result = {
                "run": str(run.path),
                "checkpoint": checkpoint,
                "step": checkpoint_step(checkpoint),
                "n": n,
                "dataset": config.dataset,
                "class_label": target,
                "seed": seed,
                "sampler_stats": stats_used,
                "weights": weights_used,
                "reference": f"{n} of the {len(test)} real {which}",
                "classifier": _classifier_record(classifier),
                "generated": {
                    **quality(image_features(classifier, generated), reference, target, seed),
                    "checkerboard": checkerboard(generated),
                },
                "real_floor": {**floor, "source": floor_source},
                "noise_ceiling": dict(noise_ceiling),
            }
            result["warnings"] = uninformative_statistics(result["real_floor"], result["noise_ceiling"])
            results.append(result)
    return results


def unseen_target_share(classifier: FeatureClassifier, target: int) -> dict[str, Any]:
    """The share of the target class's real test images, among those the classifier never learned from,
    that it calls the class: its held-out recall of the class, from classifier.json."""
    record = classifier.record
    share = record["per_class_accuracy"].get(str(target))
    count = record["per_class_test_images"].get(str(target), 0)
    confusion = np.array(record["confusion"])
    others = np.delete(confusion, target, axis=0)  # the held-out real images of every other class
    return {
        "target_class_share_unseen": share,
        "unseen_images": count,
        # the other side of the bias: real images of other classes it calls the target (chance: 1/10)
        "other_classes_target_share": float(others[:, target].sum() / others.sum()) if others.sum() else None,
    }


def uninformative_statistics(floor: dict[str, Any], noise: dict[str, Any]) -> list[str]:
    """The class statistics the classifier cannot vouch for: noise scores them as high as real images.

    This happens with a classifier that saw few images of most classes (before class-balanced training,
    the shared CIFAR-10 horse subset's classifier called 96% of noise a horse), and it is said in
    eval.json rather than left for the reader to spot. The target share is held against the real images
    the classifier never learned from when there are any: images it learned from score higher than new
    ones, and would hide a classifier that only recognizes what it memorized.
    """
    warnings = []
    for key in ("confident_share", "target_class_share"):
        real = floor.get(key)
        if key == "target_class_share" and floor.get("target_class_share_unseen") is not None:
            real = floor["target_class_share_unseen"]
        if real is not None and noise[key] >= real:
            warnings.append(
                f"{key} does not measure quality here: noise images score {noise[key]:.3f}, real images "
                f"{real:.3f}"
            )
    return warnings


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def write_eval(run: RunDir, result: dict[str, Any]) -> None:
    atomic_write_bytes(run.path / EVAL_FILE, (json.dumps(_json_value(result), indent=2) + "\n").encode())


def summary_table(result: dict[str, Any]) -> str:
    target = result["class_label"] is not None
    header = f"{'':14} {'FID':>9} {'KID':>10} {'± se':>9} {'entropy':>8} {'confident':>9} {'checker':>8}"
    lines = [header + (f" {'target':>7}" if target else "")]
    for name, key in (
        ("real floor", "real_floor"),
        ("generated", "generated"),
        ("noise ceiling", "noise_ceiling"),
    ):
        s = result[key]
        stderr = (
            s["kid_stderr"] if s["kid_stderr"] is not None and math.isfinite(s["kid_stderr"]) else math.nan
        )
        line = (
            f"{name:14} {s['fid']:9.3f} {s['kid']:10.5f} {stderr:9.5f} "
            f"{s['class_entropy']:8.3f} {s['confident_share']:9.3f} {s['checkerboard']:8.5f}"
        )
        lines.append(line + (f" {s['target_class_share']:7.3f}" if target else ""))
    unseen = result["real_floor"].get("target_class_share_unseen")
    if target and unseen is not None:
        lines.append(
            f"target share of the {result['real_floor']['unseen_images']} real test images of the class "
            f"the classifier never learned from: {unseen:.3f}; of other classes' real test images: "
            f"{result['real_floor']['other_classes_target_share']:.3f}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- during training
class TrainingEvaluator:
    """A `train` hook (common.train.StepHook) for `--eval-every N`: the run's numbers during training.

    Called at each logged step; evaluates at the first logged step at or past every multiple of N, with
    the live session's inference sampler (no checkpoint is read, no op is added to the finalized training
    graph) and `eval_samples` generated images against as many real test images; the classifier has its
    own graph and Session. Returns the history.csv columns and writes them to TensorBoard through its own
    FileWriter in the run's events/ folder (summaries built as protocol buffers, not ops).
    """

    def __init__(self, config: Config, run: RunDir, progress: bool = True, seed: int = 0) -> None:
        if config.eval_samples < 2:
            raise ConfigError(f"--eval-samples must be at least 2, got {config.eval_samples}")
        self.config = config
        self.run = run
        self.target = config.class_label
        self.columns = HISTORY_METRICS if self.target is not None else HISTORY_METRICS[:-1]
        test = real_images(config.dataset, "test", config.data_dir, config.class_label)
        n = min(config.eval_samples, len(test))
        if n < config.eval_samples:
            tqdm.write(
                f"--eval-samples {config.eval_samples} is more than the {len(test)} real test images"
                f"{'' if self.target is None else f' of class {test.class_names[self.target]}'}: "
                f"evaluating with {n}",
                file=sys.stderr,
            )
        self.classifier = load_classifier(config.dataset, config.data_dir, progress=progress)
        rng = np.random.default_rng([seed, 5])
        self.reference = image_features(self.classifier, _subset(test.images, n, rng))
        self.noise = sample_noise(config, n, seed, EVAL_STREAM)  # the same noise at every evaluation
        self.seed = seed
        # The scale at this n, once: uniform noise images' FID (a collapse is worse than it) and two
        # disjoint real sets' FID (what a perfect generator would get), for config.json and the watch.
        noise = image_features(self.classifier, noise_images(n, tuple(test.images.shape[1:]), seed))
        self.noise_fid = fid(noise.features, self.reference.features)
        # (From the test split alone: with fewer than 2n test images the floor is measured at a smaller n.)
        floor_a, floor_b, _ = floor_sets(test.images, lambda: test.images[:0], n, rng)
        floor = [image_features(self.classifier, images).features for images in (floor_a, floor_b)]
        self.real_fid = fid(*floor)
        self.record = {
            "tracking": {
                "n": n,
                "every": config.eval_every,
                "sampler_stats": config.sampler_stats,
                "noise_fid": self.noise_fid,
                "real_fid": self.real_fid,
                "real_fid_n": len(floor_a),
            }
        }
        self.writer: Any = None
        self.last_step: int | None = None

    def due(self, step: int) -> bool:
        """Whether a multiple of eval_every lies in (previous logged step, step]."""
        every = self.config.eval_every
        previous = (
            self.last_step
            if self.last_step is not None
            else (step - 1) // self.config.log_every * self.config.log_every
        )
        self.last_step = step
        return step // every > previous // every

    def __call__(self, samples: Callable[[], Generator], step: int) -> dict[str, float]:
        if not self.due(step):
            return {}
        images = samples().images(self.noise)
        numbers = quality(image_features(self.classifier, images), self.reference, self.target, self.seed)
        values = {k: numbers[k] for k in self.columns}
        if self.writer is None:
            with self.classifier.graph.as_default():  # a v1 FileWriter refuses to start in eager mode
                self.writer = v1.summary.FileWriter(str(self.run.events))
        summary = v1.Summary(
            value=[v1.Summary.Value(tag=f"eval/{k}", simple_value=v) for k, v in values.items()]
        )
        self.writer.add_summary(summary, step)
        self.writer.flush()
        return values

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.classifier.close()

    def __enter__(self) -> TrainingEvaluator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=f"python -m {PROG}",
        description="Write RUN/eval.json: FID, KID and class statistics of a run's samples, with the "
        "real-data floor and the noise ceiling, in the feature space of the project's own classifier.",
    )
    parser.add_argument("--run", required=True, help="run directory (its latest checkpoint is evaluated)")
    parser.add_argument(
        "--n", type=int, help=f"generated and real images compared (default {DEFAULT_N}, or all the test set)"
    )
    parser.add_argument("--data-dir", help="where the data files are (default: the run's own setting)")
    parser.add_argument(
        "--checkpoint",
        default="latest",
        help="latest (default), best (the lowest tracked FID) or a step number",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and of the image subsets (0)")
    parser.add_argument(
        "--sampler-stats",
        choices=SAMPLER_STATS,
        help="the sampler's batch-norm statistics: recalibrated before sampling, or the checkpoint's moving "
        "averages (default: the run's setting)",
    )
    parser.add_argument(
        "--weights",
        choices=WEIGHTS,
        help="the generator's weight average (runs trained with --g-ema-decay) or its trained weights "
        "(default: what the run samples from)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(PROG, lambda: command_evaluate(args))


def command_evaluate(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    run = RunDir(args.run)
    if not run.path.is_dir():
        raise RunDirError(f"{run.path} is not a run directory (no such folder)")
    [result] = evaluate_run(
        run,
        args.n,
        args.data_dir,
        args.seed,
        progress=not args.no_progress,
        sampler_stats=args.sampler_stats,
        checkpoint=args.checkpoint,
        weights=[args.weights],
    )
    write_eval(run, result)
    print(summary_table(result))
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    print(f"wrote {os.path.join(str(run.path), EVAL_FILE)} (step {result['step']}, n {result['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
