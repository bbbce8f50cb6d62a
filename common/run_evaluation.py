"""Evaluating a run's generator: what eval.json holds for one checkpoint (evaluate_run, write_eval), and
the same numbers during training (TrainingEvaluator). `python -m common.evaluate` is its command line,
common/metrics.py defines the numbers.

Every number is measured in the feature space of the project's own small classifier (common/classifier.py;
Inception does not fit 28x28 digits and is not available offline), so the numbers compare runs of one
data set with each other, not with published Inception FIDs (common/metrics.py says what each number is).

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

import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.classifier import FeatureClassifier, load_classifier, load_split
from common.command import UsageError
from common.config import Config, ConfigError
from common.data import DataError, ImageSet, load_image_folder
from common.data.folder import evaluation_problem
from common.metrics import Features, checkerboard, fid, quality
from common.modules import open_run
from common.rundir import EVAL_FILE, RunDir, atomic_write_bytes
from common.sampling import Generator, weights_config
from common.streams import EVAL_STREAM, sample_noise

v1 = tf.compat.v1

DEFAULT_N = 10000
# history.csv columns of `train --eval-every`; target_class_share only for one-class (CIFAR) runs
HISTORY_METRICS = ("fid", "kid", "class_entropy", "confident_share", "target_class_share")


# -------------------------------------------------------------------------------------------- run data
def image_features(classifier: FeatureClassifier, images: np.ndarray) -> Features:
    """uint8 images [n, H, W, C] of the classifier's shape -> Features (DataError for any other shape)."""
    return Features(*classifier.predict(images))


def noise_images(n: int, image_shape: Sequence[int], seed: int) -> np.ndarray:
    """Uniform noise images in [0, 255]: the ceiling every generator should be far below."""
    return np.random.default_rng([seed, 4]).integers(0, 256, (n, *image_shape), dtype=np.uint8)


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


def data_location(config: Config, data_dir: str | None = None) -> str | None:
    """Where the evaluator finds the run's data: `data_dir` when given, else the run's image folder
    (--images) or its --data-dir."""
    return data_dir or (config.images if config.images is not None else config.data_dir)


def untrackable(config: Config, data: ImageSet) -> str | None:
    """The one line `train` says when its quality cannot be tracked (an image folder without classes to
    train the evaluator's classifier on), or None."""
    if config.images is None:
        return None
    problem = evaluation_problem(data)
    if problem is None:
        return None
    return (
        f"quality tracking: {problem}, so no classifier measures these images: FID, KID and the class "
        "statistics are not tracked and no best checkpoint is kept; losses, grids and checkpoints as usual"
    )


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
    against: tuple[str, int | None] | None = None,
) -> list[dict[str, Any]]:
    """Everything eval.json holds for one checkpoint of the run, once for each of `weights`, in order:
    `checkpoint` is latest (None), best or a step (RunDir.resolve_checkpoint); see the module docstring.

    weights: "average" (the generator's weight average, for a run trained with --g-ema-decay) or
    "live" (the trained weights themselves); None: what the run samples from. The reference, the real
    floor and the noise ceiling do not depend on the weights: their classifier features are computed once.
    against: (data set, class or None) to score the run against instead of its own data, e.g. a run of
    an image folder against the CIFAR-10 class it was written from (its classifier and test images; the
    image shapes must agree). An image folder without classes to train a classifier on gets its
    checkerboard shares only (checkerboard_only)."""
    _, config, spec = open_run(run, None, f"common.evaluate --run {run.path}")  # checked; its image shape too
    # refuses a bad choice before any work
    sampled = [weights_config(config, w, sampler_stats) for w in weights]
    checkpoint = run.resolve_checkpoint(checkpoint)
    if against is not None:
        scored = config.replace(dataset=against[0], class_label=against[1], images=None, data_dir=data_dir)
    else:
        scored, data_dir = config, data_location(config, data_dir)
    if config.images is not None and against is None:
        folder = load_image_folder(data_dir, spec.image_shape, progress=False, quiet=True)
        problem = evaluation_problem(folder)
        if problem:
            return [
                checkerboard_only(
                    run, config, spec, folder, problem, n, seed, checkpoint, sampled, sampler_stats
                )
            ]
    test = real_images(scored.dataset, "test", data_dir, scored.class_label)
    if tuple(test.images.shape[1:]) != tuple(spec.image_shape):
        raise UsageError(
            f"{scored.dataset} images are {tuple(test.images.shape[1:])}, the run's are "
            f"{tuple(spec.image_shape)}: score it against a data set of its own image shape"
        )
    which = f"{scored.dataset} test images" + (
        "" if scored.class_label is None else f" of class {test.class_names[scored.class_label]}"
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
        test.images, lambda: real_images(scored.dataset, "train", data_dir, scored.class_label).images, n, rng
    )

    target = scored.class_label
    results = []
    with load_classifier(scored.dataset, data_dir, progress=progress) as classifier:
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
                "dataset": scored.dataset,
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
            if against is not None:
                result["scored_against"] = f"the run learned {config.dataset}; scored against {which}"
            result["warnings"] = uninformative_statistics(result["real_floor"], result["noise_ceiling"])
            results.append(result)
    return results


def checkerboard_only(
    run: RunDir,
    config: Config,
    spec: Any,
    folder: ImageSet,
    problem: str,
    n: int | None,
    seed: int,
    checkpoint: str,
    sampled: list[tuple[Config, str]],
    sampler_stats: str | None,
) -> dict[str, Any]:
    """eval.json of an image-folder run whose folder has no classes for a classifier: what needs none,
    the checkerboard shares of its samples, of the folder's images and of noise; `not_measured` says what
    is left out and why."""
    n = min(DEFAULT_N, len(folder)) if n is None else n
    if not 2 <= n <= len(folder):
        raise UsageError(f"--n must be 2 to {len(folder)} (the images of {config.images}), got {n}")
    rng = np.random.default_rng([seed, 5])
    real = _subset(folder.images, n, rng)
    sampled_config, weights_used = sampled[0]
    with Generator.from_run(run, spec, sampled_config, checkpoint, sampler_stats) as generator:
        generated = generator.images(sample_noise(config, n, seed, EVAL_STREAM))
        stats_used = generator.sampler_stats
    return {
        "run": str(run.path),
        "checkpoint": checkpoint,
        "step": checkpoint_step(checkpoint),
        "n": n,
        "dataset": config.dataset,
        "class_label": None,
        "seed": seed,
        "sampler_stats": stats_used,
        "weights": weights_used,
        "reference": f"{n} of the {len(folder)} images of {config.images}",
        "measured": "the checkerboard share (of the pixels: it needs no classifier)",
        "not_measured": f"FID, KID and the class statistics: {problem}, so no classifier measures its images",
        "generated": {"checkerboard": checkerboard(generated)},
        "real_floor": {"checkerboard": checkerboard(real), "source": f"{n} images of the folder"},
        "noise_ceiling": {
            "checkerboard": checkerboard(noise_images(n, spec.image_shape, seed)),
            "source": f"{n} uniform noise images in [0, 255]",
        },
        "warnings": [],
    }


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
        data_dir = data_location(config)
        test = real_images(config.dataset, "test", data_dir, config.class_label)
        n = min(config.eval_samples, len(test))
        if n < config.eval_samples:
            tqdm.write(
                f"--eval-samples {config.eval_samples} is more than the {len(test)} real test images"
                f"{'' if self.target is None else f' of class {test.class_names[self.target]}'}: "
                f"evaluating with {n}",
                file=sys.stderr,
            )
        self.classifier = load_classifier(config.dataset, data_dir, progress=progress)
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
