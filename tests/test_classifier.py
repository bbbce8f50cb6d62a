"""The evaluator's classifier: where it is cached, what it learns from, that it is accurate and seeded."""

import json

import numpy as np
import pytest

from common import classifier as classifier_module
from common.classifier import (
    DEFAULT_PLANS,
    RECORD_NAME,
    TrainingPlan,
    augment,
    balanced_batch,
    balanced_weights,
    cache_key,
    cache_root,
    classifier_data,
    load_classifier,
    stratified_halves,
)
from common.data import DataError, ImageSet
from tests.conftest import (
    SHARED_DATA,
    SYNTHETIC_TEST,
    SYNTHETIC_TRAIN,
    needs_shared_data,
    synthetic_classifier_plan,
    synthetic_mnist_dir,
    write_cifar10,
)

REAL_MNIST_DIR = str(SHARED_DATA / "mnist")
MNIST_DIR = synthetic_mnist_dir()  # the mechanisms: a fresh clone runs them
# A short plan: 6000 images, one epoch (47 steps) still gives a usable classifier in about a second.
QUICK = TrainingPlan(epochs=1, limit=6000)


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv("DCGAN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "dcgan-tf1"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "dcgan-tf1"
    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def fake_set(labels, first_value=0, shape=(8, 8, 1)) -> ImageSet:
    """Images filled with first_value, first_value + 1, ...: each one different."""
    labels = np.asarray(labels, np.int64)
    values = first_value + np.arange(len(labels), dtype=np.uint8)
    images = np.broadcast_to(values[:, None, None, None], (len(labels), *shape)).copy()
    return ImageSet(images, labels, tuple(str(i) for i in range(10)), "fake")


def test_train_split_without_all_classes_also_learns_from_half_the_test_split():
    # The shared CIFAR subset's shape: one class in train, every class in test.
    train = fake_set([7] * 20)
    test = fake_set([7] * 10 + [c for c in range(10) if c != 7 for _ in range(4)], first_value=100)
    data = classifier_data(train, test, TrainingPlan(epochs=1))
    assert len(data.train_labels) == 20 + 5 + 9 * 2 and len(data.test_labels) == 5 + 9 * 2
    assert set(np.unique(data.train_labels)) == set(range(10)) == set(np.unique(data.test_labels))
    assert "from the test split" in data.trained_on and "no images of classes [0, 1, 2" in data.note
    # the held-out half shares no image with what the classifier learns from
    learned = {im.tobytes() for im in data.train_images}
    assert not any(im.tobytes() in learned for im in data.test_images)


def test_complete_train_split_is_used_as_it_is():
    train, test = fake_set(list(range(10)) * 3), fake_set(list(range(10)))
    data = classifier_data(train, test, TrainingPlan(epochs=1, limit=25))
    assert len(data.train_labels) == 25 and data.note is None
    assert data.test_images is test.images


def test_stratified_halves_and_balanced_weights():
    labels = np.array([0] * 10 + [1] * 4 + [2] * 1)
    first, second = stratified_halves(labels, seed=0)
    assert not set(first) & set(second) and len(first) + len(second) == len(labels)
    assert np.bincount(labels[first], minlength=3).tolist() == [5, 2, 0]
    weights = balanced_weights(labels)
    per_class_total = np.bincount(labels, weights=weights[labels], minlength=10)
    np.testing.assert_allclose(per_class_total[:3], per_class_total[0])
    assert weights[3:].tolist() == [0] * 7


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("cache")
        patch.setenv("DCGAN_CACHE_DIR", str(root))
        yield root


@needs_shared_data
def test_mnist_classifier_is_accurate(cache):
    with load_classifier("mnist", REAL_MNIST_DIR, QUICK, progress=False) as trained:
        assert trained.test_accuracy > 0.85  # on all 10000 real test images
        assert trained.record["test_images"] == 10000
        assert trained.record["trained_on"].startswith("6000 training images of classes 0 (")


def test_classifier_is_cached_and_recorded(cache, monkeypatch):
    plan = synthetic_classifier_plan()
    with load_classifier("mnist", MNIST_DIR, plan, progress=False) as first:
        assert first.folder.parent == cache / "classifiers" / "mnist"
        record = json.loads((first.folder / RECORD_NAME).read_text())
        assert record["test_accuracy"] == first.test_accuracy > 0.85  # the synthetic classes are easy
        assert record["test_images"] == SYNTHETIC_TEST and record["plan"]["batch_size"] == plan.batch_size
        assert record["trained_on"].startswith(f"{SYNTHETIC_TRAIN} training images of classes 0 (")
        features, probabilities = first.predict(np.zeros((3, 28, 28, 1), np.uint8))
    assert features.shape == (3, 128) and probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier was trained again")

    monkeypatch.setattr(classifier_module, "train_classifier", no_training)
    with load_classifier("mnist", MNIST_DIR, plan, progress=False) as again:
        assert again.folder == first.folder
    assert not list(first.folder.parent.glob(".training-*"))  # no scratch folder left behind


def test_training_is_seeded(tmp_path, monkeypatch):
    plan = TrainingPlan(epochs=1, limit=1000)
    outputs = []
    for name in ("a", "b"):
        monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / name))
        with load_classifier("mnist", MNIST_DIR, plan, progress=False) as trained:
            outputs.append(trained.predict(np.full((2, 28, 28, 1), 100, np.uint8))[0])
    # Same seeds, same weights: up to the CPU kernels' summation order, which varies with thread timing.
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_wrong_image_shape_is_a_data_error(cache):
    with load_classifier("mnist", MNIST_DIR, QUICK, progress=False) as trained:
        with pytest.raises(DataError, match=r"do not fit the classifier, which takes \(N, 28, 28, 1\)"):
            trained.predict(np.zeros((2, 32, 32, 3), np.uint8))
        with pytest.raises(DataError, match="uint8"):
            trained.predict(np.zeros((2, 28, 28, 1), np.float32))


def test_unknown_dataset():
    with pytest.raises(DataError, match="no classifier for data set 'svhn'"):
        load_classifier("svhn")


# ----------------------------------------------------------------------- class balance and the recipe
def test_balanced_batches_draw_every_class_equally_often():
    labels = np.array([7] * 5000 + [3] * 50 + [1] * 5)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    batch = balanced_batch(by_class, 30000, np.random.default_rng(0))
    counts = np.bincount(labels[batch], minlength=10)[[1, 3, 7]]
    np.testing.assert_allclose(counts / 30000, 1 / 3, atol=0.02)
    assert len(np.unique(batch[labels[batch] == 1])) == 5  # every image of the smallest class is used


def test_augment_flips_shifts_and_adds_noise_to_half():
    rng = np.random.default_rng(0)
    ramp = np.broadcast_to(np.arange(0, 256, 8, dtype=np.uint8)[None, None, :, None], (400, 32, 32, 3))
    out = augment(ramp.copy(), rng)
    assert out.shape == ramp.shape and out.dtype == np.uint8
    noisy = np.array([np.any(np.diff(image[:, :, 0].astype(int), axis=0) != 0) for image in out])
    assert 0.4 < noisy.mean() < 0.6  # pixel noise breaks the rows' equality in about half
    clean = out[~noisy][:, 0, :, 0].astype(int)  # one row of each image without noise
    slopes = np.sign(clean[:, 16] - clean[:, 12])
    assert {-1, 1} <= set(slopes.tolist())  # flipped and not flipped
    assert len({tuple(row) for row in clean}) > 4  # shifted by different amounts


def test_cache_key_changes_with_the_training_recipe(monkeypatch):
    data = classifier_data(fake_set(list(range(10)) * 2), fake_set(list(range(10))), TrainingPlan(epochs=1))
    plan = TrainingPlan(epochs=1)
    keys = {
        cache_key(data, plan),
        cache_key(data, plan._replace(balanced=True)),
        cache_key(data, plan._replace(augment=True)),
        cache_key(data, plan._replace(epochs=2)),
    }
    assert len(keys) == 4
    monkeypatch.setattr(classifier_module, "CLASSIFIER_VERSION", classifier_module.CLASSIFIER_VERSION + 1)
    assert cache_key(data, plan) not in keys
    assert DEFAULT_PLANS["cifar10"].balanced and DEFAULT_PLANS["cifar10"].augment
    assert not DEFAULT_PLANS["mnist"].augment  # a flipped digit is no digit


def test_full_cifar10_classifier_trains_on_all_ten_classes(tmp_path, monkeypatch, isolated_home):
    write_cifar10(tmp_path / "data", per_class=2, test_per_class=3)
    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / "cache"))
    plan = TrainingPlan(epochs=2, batch_size=16, balanced=True, augment=True)
    with load_classifier("cifar10", tmp_path / "data", plan, progress=False) as trained:
        record = trained.record
        features, _ = trained.predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert features.shape == (2, 128)
    # All ten classes in the training split: it alone is learned from, the whole test split tests.
    classes = ", ".join(f"{c} (10)" for c in range(10))
    assert record["trained_on"] == f"100 training images of classes {classes}"
    assert record["note"] is None and record["test_images"] == 30
    assert record["per_class_test_images"] == {str(c): 3 for c in range(10)}
    assert record["plan"]["balanced"] and record["version"] == classifier_module.CLASSIFIER_VERSION
    confusion = np.array(record["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum(axis=1).tolist() == [3] * 10
    accuracy = np.trace(confusion) / 30
    assert accuracy == pytest.approx(record["test_accuracy"])


HORSE_DIR = SHARED_DATA / "cifar10-horse"


@pytest.mark.skipif(
    not (HORSE_DIR / "cifar-10-batches-py").is_dir(),
    reason="real CIFAR-10 horse subset ../shared/data/cifar10-horse is not beside the repository",
)
def test_horse_subset_classifier_separates_real_horses_from_noise(tmp_path, monkeypatch):
    # Issue 14's bar for the default CIFAR plan on the horse-only subset: at most 20% of the evaluator's
    # noise images are called horses, at least 75% of the real test horses it never learned from are.
    from common.run_evaluation import noise_images

    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path))
    with load_classifier("cifar10", HORSE_DIR, progress=False) as trained:
        _, noise = trained.predict(noise_images(1000, (32, 32, 3), seed=0))
        record = trained.record
    assert np.mean(noise.argmax(axis=1) == 7) <= 0.2
    assert record["per_class_accuracy"]["7"] >= 0.75 and record["per_class_test_images"]["7"] == 500
