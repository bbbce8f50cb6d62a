"""The small classifier whose penultimate layer is the evaluator's feature space, one per data set.

The usual Inception network does not fit 28x28 digits and is not available offline, so the project
trains its own: two strided convolutions, a 128-unit feature layer and 10 logits, written on
common/layers.py in graph style. It is trained once per data set (and per training data: the cache key
is a hash of the images and the training plan), on the CPU in well under two minutes for MNIST, and
cached under

    $DCGAN_CACHE_DIR/classifiers/<dataset>/<key>/  (else $XDG_CACHE_HOME/dcgan-tf1, else ~/.cache/dcgan-tf1)
        classifier.ckpt.*   the weights (tf.compat.v1.train.Saver)
        classifier.json     test accuracy, what it was trained on, the plan

The folder is written under a temporary name and renamed into place, so a crash never leaves half a
classifier and two processes training at once both end up with a whole one.

When the training split lacks classes (the shared CIFAR-10 horse subset has only horses in its
training batches), a classifier trained on it alone would call everything a horse and make the class
histogram meaningless. It is then also trained on a class-stratified half of the test split, tested on
the other half, and its classifier.json says so (`trained_on`, `note`).

Classes of unequal counts are balanced. Weighting the loss inversely to the counts (the MNIST plan,
where the counts are near equal anyway) is not enough there: 5000 distinct horses against 50 images of
each other class still taught the net that anything unfamiliar is a horse (uniform noise: 96-99%
"horse"). The CIFAR plan draws every batch class-balanced (a class uniformly among those present, then
one of its images), and augments every image (a random horizontal flip, a shift of up to 4 pixels and,
for half of them, Gaussian pixel noise of a random strength): the 50-image classes are no longer
memorized, and pixel noise is no evidence for any class. On the shared subset, balanced batches with
flips and shifts only still sent 16-77% of noise to "horse" over three seeds; with the pixel noise,
0.1-2.5% of 2000 noise images (10% of the evaluator's 1000), while 79-87% of the held-out real horses
stay horses. Some bias remains, that of a class learned from 100 times more images: 24% of the held-out
real images of the other classes are called "horse" (10% would be chance); eval.json reports it as
`real_floor.other_classes_target_share`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.data import (
    FOLDER_DATASETS,
    DataError,
    ImageSet,
    is_folder_dataset,
    load_cifar10,
    load_image_folder,
    load_mnist,
)
from common.data.folder import cache_root, evaluation_problem, folder_split
from common.layers import conv2d, dense
from common.metrics import NUM_CLASSES
from common.pipeline import scale_images
from common.rundir import make_temporary_dir

v1 = tf.compat.v1

# Part of the cache key (with the plan): bump when the network, the training code or classifier.json's
# fields change. 2: class-balanced batches and augmentation for CIFAR-10, per_class_test_images, confusion.
CLASSIFIER_VERSION = 2
FEATURES = 128  # width of the penultimate layer, the feature space of FID and KID
CACHE_ENV = "DCGAN_CACHE_DIR"
CHECKPOINT_NAME = "classifier.ckpt"
RECORD_NAME = "classifier.json"
DATASETS = ("mnist", "fashion_mnist", "cifar10")


class TrainingPlan(NamedTuple):
    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    limit: int | None = None  # use only the first `limit` training images (tests)
    balanced: bool = False  # class-balanced batches (else shuffled epochs, the loss weighted per class)
    augment: bool = False  # flips, shifts and pixel noise (natural images only: a flipped digit is not one)


# Short: a few epochs reach >98% on MNIST with this net; CIFAR gets what a small net gets quickly, and
# balanced batches with augmentation (see the module docstring) so that a class subset is judged fairly.
DEFAULT_PLANS = {
    "mnist": TrainingPlan(epochs=5),
    "fashion_mnist": TrainingPlan(epochs=5),
    "cifar10": TrainingPlan(epochs=20, balanced=True, augment=True),
}
FOLDER_STEPS = 1000  # an image folder's classifier: at least this many steps (more epochs for small folders)


def folder_plan(train: ImageSet) -> TrainingPlan:
    """The plan for an image folder's classes: class-balanced batches (a folder's classes need not be
    equal), augmented where the images are in colour (as CIFAR-10's; a flipped digit is no digit), and
    enough epochs for FOLDER_STEPS steps however few the images (5 to 200)."""
    batch = min(128, len(train.images))
    epochs = min(max(5, math.ceil(FOLDER_STEPS / max(len(train.images) // batch, 1))), 200)
    return TrainingPlan(epochs=epochs, batch_size=batch, balanced=True, augment=train.images.shape[-1] == 3)


SHIFT = 4  # pixels: the largest shift of an augmented image
NOISE_SIGMA = 60.0  # the strongest pixel noise (standard deviation, in 0-255 units) of an augmented image


# --------------------------------------------------------------------------------------------- network
class ClassifierNet(NamedTuple):
    features: tf.Tensor  # [N, FEATURES], after the ReLU: the penultimate layer
    logits: tf.Tensor  # [N, NUM_CLASSES]
    probabilities: tf.Tensor


def classifier_network(images: tf.Tensor) -> ClassifierNet:
    """images [N, H, W, C] in [-1, 1] (H, W divisible by 4) -> features, logits and softmax."""
    with v1.variable_scope("classifier"):
        conv1 = tf.nn.relu(conv2d(images, 32, 3, strides=2, padding="same", name="conv1"))
        conv2 = tf.nn.relu(conv2d(conv1, 64, 3, strides=2, padding="same", name="conv2"))
        flat = tf.reshape(conv2, [-1, int(np.prod(conv2.shape[1:]))])
        features = tf.nn.relu(dense(flat, FEATURES, "features"))
        logits = dense(features, NUM_CLASSES, "logits")
    return ClassifierNet(features, logits, tf.nn.softmax(logits))


class ClassifierGraph(NamedTuple):
    images: tf.Tensor  # uint8 placeholder [None, H, W, C]
    net: ClassifierNet
    saver: v1.train.Saver
    # training only (None in an inference graph)
    labels: tf.Tensor | None = None
    weights: tf.Tensor | None = None  # per-image loss weights (class balance)
    loss: tf.Tensor | None = None
    train: tf.Operation | None = None
    init: tf.Operation | None = None


def build_classifier(image_shape: tuple[int, int, int], plan: TrainingPlan | None = None) -> ClassifierGraph:
    """The classifier in the current default graph; with a plan, also its weighted loss and Adam op."""
    images = v1.placeholder(tf.uint8, [None, *image_shape], name="images")
    net = classifier_network(scale_images(images))
    saver = v1.train.Saver(v1.get_collection(v1.GraphKeys.GLOBAL_VARIABLES, scope="classifier/"))
    if plan is None:
        return ClassifierGraph(images, net, saver)
    labels = v1.placeholder(tf.int64, [None], name="labels")
    weights = v1.placeholder(tf.float32, [None], name="weights")
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=net.logits)
    loss = tf.reduce_mean(weights * cross_entropy)
    train = v1.train.AdamOptimizer(plan.learning_rate).minimize(loss)
    init = v1.global_variables_initializer()
    return ClassifierGraph(images, net, saver, labels, weights, loss, train, init)


# ------------------------------------------------------------------------------------------------ data
class ClassifierData(NamedTuple):
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    trained_on: str  # one line for eval.json
    note: str | None  # why the split is not the plain train/test one, when it is not


def load_split(dataset: str, split: str, data_dir: str | os.PathLike | None) -> ImageSet:
    """All classes of a data set's split (the evaluator's and the classifier's one way in). An image
    folder's (data_dir the folder): its class sub-folders, HELD_OUT_SHARE of each the "test" split
    (DataError where it has no classes to tell apart: common.data.folder.evaluation_problem)."""
    if is_folder_dataset(dataset):
        if data_dir is None:
            raise DataError(f"data set {dataset} is a folder of images: name the folder")
        images = load_image_folder(data_dir, FOLDER_DATASETS[dataset], progress=False, quiet=True)
        problem = evaluation_problem(images)
        if problem:
            raise DataError(f"{problem}: no classifier can be trained for its images")
        return folder_split(images, split)
    if dataset == "cifar10":
        return load_cifar10(split, data_dir)
    if dataset in ("mnist", "fashion_mnist"):
        return load_mnist(dataset, split, data_dir)
    raise DataError(f"no classifier for data set {dataset!r}: use one of {', '.join(DATASETS)}")


def stratified_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint halves holding (about) half of every class each."""
    rng = np.random.default_rng([seed, 1])
    first, second = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        first.append(members[: len(members) // 2])
        second.append(members[len(members) // 2 :])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def classifier_data(train: ImageSet, test: ImageSet, plan: TrainingPlan) -> ClassifierData:
    """The images the classifier learns from and is tested on (see the module docstring)."""
    train_images, train_labels = train.images, train.labels
    if plan.limit is not None:
        train_images, train_labels = train_images[: plan.limit], train_labels[: plan.limit]
    present = set(np.unique(train_labels).tolist())
    missing = sorted(set(np.unique(test.labels).tolist()) - present)
    if not missing:
        classes = _class_list(train_labels)
        return ClassifierData(
            train_images,
            train_labels,
            test.images,
            test.labels,
            f"{len(train_labels)} training images of classes {classes}",
            None,
        )
    learn, held_out = stratified_halves(test.labels, plan.seed)
    balance = "classes drawn equally often" if plan.balanced else "classes weighted inversely to their counts"
    images = np.concatenate([train_images, test.images[learn]])
    labels = np.concatenate([train_labels, test.labels[learn]])
    classes = _class_list(labels)
    return ClassifierData(
        images,
        labels,
        test.images[held_out],
        test.labels[held_out],
        f"{len(labels)} images of classes {classes}: {len(train_labels)} from the training split and "
        f"{len(learn)} from the test split",
        f"the training split has no images of classes {missing}, so the classifier also learned from a "
        f"class-stratified half of the test split ({balance}) and its "
        f"accuracy is measured on the other half ({len(held_out)} images); the real images the "
        f"evaluator compares against may include images it learned from",
    )


def _class_list(labels: np.ndarray) -> str:
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    return ", ".join(f"{c} ({n})" for c, n in enumerate(counts) if n)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-class loss weights that make every present class count equally (all 1 when balanced)."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    present = counts > 0
    weights = np.zeros(NUM_CLASSES)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def balanced_batch(by_class: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a batch whose every image is of a class drawn uniformly among `by_class`' (non-empty)
    index lists, then an image of that class drawn uniformly."""
    classes = rng.integers(0, len(by_class), size)
    return np.array([by_class[c][rng.integers(len(by_class[c]))] for c in classes])


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [n, H, W, C] -> the same images, each flipped left-right with probability 1/2, shifted by up
    to SHIFT pixels each way (the border mirrored in), and half of them with Gaussian pixel noise of a
    standard deviation drawn uniformly up to NOISE_SIGMA."""
    n, height, width, _ = images.shape
    flipped = np.where((rng.random(n) < 0.5)[:, None, None, None], images[:, :, ::-1], images)
    padded = np.pad(flipped, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * SHIFT + 1, (2, n))
    shifted = np.stack([padded[i, dy[i] : dy[i] + height, dx[i] : dx[i] + width] for i in range(n)])
    sigma = rng.uniform(0, NOISE_SIGMA, n) * (rng.random(n) < 0.5)
    noisy = shifted + rng.standard_normal(shifted.shape) * sigma[:, None, None, None]
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def cache_key(data: ClassifierData, plan: TrainingPlan) -> str:
    digest = hashlib.sha256(f"v{CLASSIFIER_VERSION} {tuple(plan)}".encode())
    for array in data[:4]:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


# -------------------------------------------------------------------------------------------- training
def predict(sess: v1.Session, graph: ClassifierGraph, images: np.ndarray, batch_size: int = 1000):
    """(features float64 [n, FEATURES], probabilities float64 [n, NUM_CLASSES]) of uint8 images."""
    features, probabilities = [], []
    for start in range(0, len(images), batch_size):
        f, p = sess.run(
            [graph.net.features, graph.net.probabilities], {graph.images: images[start : start + batch_size]}
        )
        features.append(f)
        probabilities.append(p)
    if not features:
        return np.zeros((0, FEATURES)), np.zeros((0, NUM_CLASSES))
    return np.concatenate(features).astype(np.float64), np.concatenate(probabilities).astype(np.float64)


def train_classifier(
    data: ClassifierData, plan: TrainingPlan, folder: Path, progress: bool = True, title: str = ""
) -> dict[str, Any]:
    """Train into `folder` (checkpoint + classifier.json); return the record written."""
    image_shape = tuple(int(d) for d in data.train_images.shape[1:])
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(plan.seed)
        model = build_classifier(image_shape, plan)
    graph.finalize()
    # Balanced batches are balanced already; otherwise the loss weights balance the classes.
    weights = np.ones(NUM_CLASSES, np.float32) if plan.balanced else balanced_weights(data.train_labels)
    by_class = [np.flatnonzero(data.train_labels == c) for c in np.unique(data.train_labels)]
    rng = np.random.default_rng([plan.seed, 2])
    n = len(data.train_labels)
    steps_per_epoch = max(n // plan.batch_size, 1)
    with v1.Session(graph=graph) as sess:
        sess.run(model.init)
        bar = tqdm(
            total=plan.epochs * steps_per_epoch,
            desc=f"training the {title} classifier",
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        with bar:
            for _ in range(plan.epochs):
                order = None if plan.balanced else rng.permutation(n)
                for step in range(steps_per_epoch):
                    if order is None:
                        batch = balanced_batch(by_class, plan.batch_size, rng)
                    else:
                        batch = order[step * plan.batch_size : (step + 1) * plan.batch_size]
                    labels = data.train_labels[batch]
                    images = data.train_images[batch]
                    loss, _ = sess.run(
                        [model.loss, model.train],
                        {
                            model.images: augment(images, rng) if plan.augment else images,
                            model.labels: labels,
                            model.weights: weights[labels],
                        },
                    )
                    bar.update(1)
                    if step % 50 == 0:
                        bar.set_postfix(loss=f"{loss:.3f}")
        _, probabilities = predict(sess, model, data.test_images)
        model.saver.save(sess, str(folder / CHECKPOINT_NAME), write_meta_graph=False, write_state=False)
    predicted = probabilities.argmax(axis=1)
    per_class = {
        str(c): float(np.mean(predicted[data.test_labels == c] == c))
        for c in range(NUM_CLASSES)
        if np.any(data.test_labels == c)
    }
    record = {
        "test_accuracy": float(np.mean(predicted == data.test_labels)),
        # the mean of the per-class accuracies: what the class histogram relies on when classes are unequal
        "balanced_test_accuracy": float(np.mean(list(per_class.values()))),
        "test_images": len(data.test_labels),
        "per_class_accuracy": per_class,
        "per_class_test_images": {c: int(np.sum(data.test_labels == int(c))) for c in per_class},
        # [true class][predicted class] counts: how often each class is mistaken for a run's target
        "confusion": np.bincount(
            data.test_labels * NUM_CLASSES + predicted, minlength=NUM_CLASSES * NUM_CLASSES
        )
        .reshape(NUM_CLASSES, NUM_CLASSES)
        .tolist(),
        "trained_on": data.trained_on,
        "note": data.note,
        "image_shape": list(image_shape),
        "plan": plan._asdict(),
        "version": CLASSIFIER_VERSION,
    }
    (folder / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n")
    return record


# ------------------------------------------------------------------------------------------- inference
class FeatureClassifier:
    """A trained classifier in its own graph and Session: images -> (features, class probabilities)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            self.record = read_classifier_record(self.folder)
        except (OSError, ValueError) as err:  # ValueError: bad JSON, bad UTF-8, or what the checks say
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise damaged_cache(self.folder, f"{RECORD_NAME}: {reason}") from None
        self.image_shape = tuple(self.record["image_shape"])
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.model = build_classifier(self.image_shape)
        self.graph.finalize()
        self.session = v1.Session(graph=self.graph)
        try:
            with self.graph.as_default():  # outside its graph, Saver.restore takes the eager path and fails
                self.model.saver.restore(self.session, str(self.folder / CHECKPOINT_NAME))
        except (tf.errors.OpError, ValueError) as err:
            self.session.close()
            text = str(getattr(err, "message", err)).strip().splitlines()
            raise damaged_cache(self.folder, f"{CHECKPOINT_NAME}: {text[0][:160] if text else err}") from None

    @property
    def test_accuracy(self) -> float:
        return float(self.record["test_accuracy"])

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [n, H, W, C] of this classifier's shape -> (features, probabilities), float64."""
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(
                f"images of shape {tuple(images.shape)} do not fit the classifier, which takes "
                f"(N, {', '.join(str(d) for d in self.image_shape)})"
            )
        if images.dtype != np.uint8:
            raise DataError(f"images must be uint8 in [0, 255], got {images.dtype}")
        return predict(self.session, self.model, images)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FeatureClassifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def damaged_cache(folder: Path, reason: str) -> DataError:
    """The one-line error of a cached classifier that does not read (exit 2), saying what to do."""
    return DataError(
        f"the cached classifier in {folder} is damaged ({reason}): delete that folder, and the next "
        "evaluation trains it again"
    )


def read_classifier_record(folder: Path) -> dict[str, Any]:
    """classifier.json of a cached classifier, checked where the evaluator uses it (ValueError saying what
    is wrong): the one way it is read."""
    record = json.loads((Path(folder) / RECORD_NAME).read_text())
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def share(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1

    shape = record.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(count(d) and d > 0 for d in shape)):
        raise ValueError(f"image_shape {shape!r} is not an image shape")
    for key in ("test_accuracy", "balanced_test_accuracy"):
        if not share(record.get(key)):
            raise ValueError(f"{key} {record.get(key)!r} is not a share in [0, 1]")
    if not isinstance(record.get("trained_on"), str) or not isinstance(record.get("note"), (str, type(None))):
        raise ValueError("trained_on or note is not text")
    per_class, images = record.get("per_class_accuracy"), record.get("per_class_test_images")
    if not (isinstance(per_class, dict) and all(share(v) for v in per_class.values())):
        raise ValueError("per_class_accuracy is not a share per class")
    if not (isinstance(images, dict) and all(count(v) for v in images.values())):
        raise ValueError("per_class_test_images is not a count per class")
    confusion = record.get("confusion")
    if not (
        isinstance(confusion, list)
        and len(confusion) == NUM_CLASSES
        and all(isinstance(r, list) and len(r) == NUM_CLASSES and all(map(count, r)) for r in confusion)
    ):
        raise ValueError(f"confusion is not {NUM_CLASSES} x {NUM_CLASSES} counts")
    return record


def load_classifier(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    plan: TrainingPlan | None = None,
    progress: bool = True,
) -> FeatureClassifier:
    """The cached classifier of `dataset` for the data found in `data_dir`; trained first if missing."""
    if dataset not in DATASETS and not is_folder_dataset(dataset):
        raise DataError(f"no classifier for data set {dataset!r}: use one of {', '.join(DATASETS)}")
    train = load_split(dataset, "train", data_dir)
    plan = plan or DEFAULT_PLANS.get(dataset) or folder_plan(train)
    data = classifier_data(train, load_split(dataset, "test", data_dir), plan)
    folder = cache_root() / "classifiers" / dataset / cache_key(data, plan)
    if not (folder / RECORD_NAME).exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # named as the project's temporaries are, so that one a kill left is removed by the next training;
        # with the mode of the user's umask, as the rest of the cache (mkdtemp makes 0700)
        scratch = make_temporary_dir(folder.parent, ".training")
        try:
            record = train_classifier(data, plan, scratch, progress, dataset)
            try:
                os.rename(scratch, folder)
            except OSError:
                if not (folder / RECORD_NAME).exists():  # not another process that finished first
                    raise
            tqdm.write(
                f"classifier for {dataset}: test accuracy {record['test_accuracy']:.4f} "
                f"({record['trained_on']}); cached in {folder}",
                file=sys.stderr,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return FeatureClassifier(folder)
