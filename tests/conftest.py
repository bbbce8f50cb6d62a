"""Shared test helpers: tiny synthetic data sets in the real file formats (for every test of the
machinery, so that a fresh clone runs them all), where the real data of ../shared/data is (for the tests
whose point is real data), and a marker for those."""

import atexit
import csv
import functools
import gzip
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# DCGAN_TEST_SHARED_DATA=/nonexistent runs the suite as a fresh clone without ../shared would.
SHARED_DATA = Path(os.environ.get("DCGAN_TEST_SHARED_DATA") or REPO.parent / "shared" / "data")

SYNTHETIC_TRAIN, SYNTHETIC_TEST = 320, 200  # images per split: enough for batches of 16 and n=100 evals


def synthetic_classifier_plan():
    """The evaluator's classifier plan for the synthetic files: small batches, so that 320 images give it
    enough steps to tell the ten squares apart (test accuracy 1.0, in about 15 s)."""
    from common.classifier import TrainingPlan

    return TrainingPlan(epochs=4, batch_size=16)


@functools.cache
def _synthetic_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="dcgan-synthetic-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def synthetic_images(n: int, shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images with labels 0..9 that a classifier can tell apart: a bright square whose place is
    the label (a 2 x 5 layout), on faint noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, (n, *shape), dtype=np.uint8)
    side = shape[0] // 5
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 5)
        top, left = 2 + row * (shape[0] // 2), col * side
        images[i, top : top + side, left : left + side] = 255
    return images, labels.astype(np.uint8)


def random_digit_set(n: int = 64, seed: int = 0):
    """n uniformly random 28x28x1 uint8 images, all labelled 0: an in-memory MNIST-shaped ImageSet for
    tests that call `train` directly."""
    from common.data import ImageSet

    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return ImageSet(images, np.zeros(n, np.int64), tuple("0123456789"), "synthetic")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of uint8 `array` (magic 0x08 + ndim, then the dimensions, big-endian)."""
    return (
        struct.pack(">I", 0x0800 + array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


@functools.cache
def synthetic_mnist_dir() -> str:
    """A folder with the four MNIST IDX .gz files of synthetic 28x28 digits (train and test)."""
    folder = _synthetic_root() / "mnist"
    folder.mkdir()
    for split, n, seed in (("train", SYNTHETIC_TRAIN, 0), ("t10k", SYNTHETIC_TEST, 1)):
        images, labels = synthetic_images(n, (28, 28, 1), seed)
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(images[..., 0]), mtime=0)
        )
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels), mtime=0))
    return str(folder)


@functools.cache
def synthetic_cifar_dir() -> str:
    """A folder holding cifar-10-batches-py/ (five training batches and a test batch, the official
    protocol-2 pickles) of synthetic 32x32x3 images, every class in each."""
    folder = _synthetic_root() / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for index, name in enumerate(names):
        n = SYNTHETIC_TRAIN if name == "test_batch" else SYNTHETIC_TRAIN // 2
        images, labels = synthetic_images(n, (32, 32, 3), seed=10 + index)
        write_cifar_batch(folder / name, images, labels)
    return str(folder.parent)


SYNTHETIC_HORSES = (40, 100, 10)  # per training batch, in the test batch, of each other class in it


@functools.cache
def synthetic_horse_dir() -> str:
    """cifar-10-batches-py/ shaped like ../shared/data/cifar10-horse: training batches of horses
    (label 7) only, a shuffled test batch of horses and a few images of every other class."""
    per_batch, test_horses, test_others = SYNTHETIC_HORSES
    folder = _synthetic_root() / "cifar10-horse" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index in range(1, 7):
        # synthetic_images labels image i as i % 10: take the horses, then the others the test batch needs
        images, labels = synthetic_images(10 * max(per_batch, test_horses), (32, 32, 3), seed=30 + index)
        horses = np.flatnonzero(labels == 7)
        if index < 6:
            keep = horses[:per_batch]
            name = f"data_batch_{index}"
        else:
            others = [np.flatnonzero(labels == c)[:test_others] for c in range(10) if c != 7]
            keep = np.random.default_rng(index).permutation(np.concatenate([horses[:test_horses], *others]))
            name = "test_batch"
        write_cifar_batch(folder / name, images[keep], labels[keep])
    return str(folder.parent)


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """One batch in the official python format: a protocol-2 pickle of a dict with byte-string keys,
    'data' as N x 3072 uint8 rows of 1024 red, 1024 green, 1024 blue values."""

    batch = {
        b"batch_label": path.name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
        b"filenames": [f"{path.name}_{i}.png".encode() for i in range(len(images))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir(),
    reason="real data folder ../shared/data is not beside the repository",
)


@pytest.fixture
def isolated_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh HOME and no data env vars, so the user's real Keras cache is never read or written."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KERAS_HOME", "DCGAN_DATA_DIR", "DCGAN_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    return home


def checkpoint_values(run_dir) -> dict[str, np.ndarray]:
    """Every variable of a run's latest checkpoint, by name."""
    import tensorflow as tf

    from common.rundir import RunDir

    reader = tf.train.load_checkpoint(RunDir(run_dir).latest_checkpoint())
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def history(run_dir) -> list[dict[str, str]]:
    """A run's history.csv rows, as strings."""
    from common.rundir import RunDir

    with open(RunDir(run_dir).history) as f:
        return list(csv.DictReader(f))


def assert_same_run(a, b) -> None:
    """Two run directories ended with identical variables and logged identical losses."""
    values_a, values_b = checkpoint_values(a), checkpoint_values(b)
    assert values_a.keys() == values_b.keys()
    for name in values_a:
        np.testing.assert_array_equal(values_a[name], values_b[name], err_msg=name)
    losses = [[(r["step"], r["d_loss"], r["g_loss"]) for r in history(run)] for run in (a, b)]
    assert losses[0] == losses[1]


def notebook_parameters(channels: int) -> dict[str, int]:
    """The notebook DCGAN's parameter counts from its layer shapes (kernel + bias, BN gamma + beta), for
    images of `channels` channels (MNIST 1, CIFAR 3: the generator's last and D's first layer)."""
    generator = (
        (100 * 4 * 4 * 512 + 4 * 4 * 512)
        + 2 * 512
        + (4 * 4 * 256 * 512 + 256)
        + 2 * 256
        + (3 * 3 * 128 * 256 + 128)
        + 2 * 128
        + (3 * 3 * channels * 128 + channels)
    )
    discriminator = (
        (3 * 3 * channels * 128 + 128)
        + (3 * 3 * 128 * 256 + 256)
        + 2 * 256
        + (3 * 3 * 256 * 512 + 512)
        + 2 * 512
        + (4 * 4 * 512 + 1)
    )
    return {"generator": generator, "discriminator": discriminator}


def architecture_flag_run(
    tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value, other, refused_value: str, refusal: str
) -> Path:
    """The command-line life of a setting that shapes the graph (a settings.FIXED one), on the
    synthetic MNIST files: `FLAG REFUSED_VALUE` with an architecture that lacks it exits 2 saying `refusal`
    and writes nothing; `FLAG VALUE` trains 2 steps and config.json records it; `--resume FLAG OTHER` is
    refused; a plain `--resume` goes on to step 3. Returns that run's directory."""
    from dcgan_mnist.__main__ import cli as mnist_cli

    field = flag.removeprefix("--").replace("-", "_")
    refused = tmp_path / "refused"
    argv = ["train", "--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress"]
    assert mnist_cli([*argv, "--arch", "tf_tutorial", flag, refused_value, "--out", str(refused)]) == 2
    assert refusal in capsys.readouterr().err
    assert not refused.exists()
    out = tmp_path / "run"
    run = [*argv, "--out", str(out), "--eval-every", "0", "--checkpoint-every", "2"]
    assert mnist_cli([*run, flag, str(value), "--max-steps", "2"]) == 0
    assert json.loads((out / "config.json").read_text())["config"][field] == value
    assert mnist_cli([*run, "--resume", flag, str(other), "--max-steps", "3"]) == 2
    assert f"{field} is {value!r}" in capsys.readouterr().err
    assert mnist_cli([*run, "--resume", "--max-steps", "3"]) == 0
    return out


def run_python(
    *args: str, cwd: Path, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """`python ARGS` in a fresh interpreter from `cwd`, with the repository importable; `env` changes the
    environment (None unsets a variable)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment, cwd=cwd)


def run_module(
    *args: str, cwd: Path, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """`python -m ARGS` in a fresh interpreter (run_python)."""
    return run_python("-m", *args, cwd=cwd, env=env)


CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def write_cifar10(folder: Path, per_class: int = 2, test_per_class: int = 3, seed: int = 0) -> dict:
    """A tiny CIFAR-10 in the official python format: `folder`/cifar-10-batches-py/ with five training
    batches of `per_class` images of every class each and a test batch of `test_per_class` per class,
    shuffled, as protocol-2 pickles with byte-string keys. Each image is its class's colour plus noise,
    so a classifier has something to learn. Returns {batch name: (uint8 [N, 32, 32, 3] images, labels)}."""

    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(0, 256, (10, 3))
    written = {}
    for name, count in [*((n, per_class) for n in CIFAR_TRAIN_BATCHES), ("test_batch", test_per_class)]:
        labels = rng.permutation(np.repeat(np.arange(10), count))
        images = np.clip(
            colours[labels][:, None, None, :] + rng.normal(0, 20, (len(labels), 32, 32, 3)), 0, 255
        )
        images = images.astype(np.uint8)
        write_cifar_batch(batches / name, images, labels)
        written[name] = (images, labels)
    meta = {b"label_names": [c.encode() for c in CIFAR10_NAMES], b"num_cases_per_batch": 10 * per_class}
    (batches / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def tar_cifar10(folder: Path, archive: Path) -> Path:
    """The cifar-10-batches-py folder under `folder` as a cifar-10-python.tar.gz, the official layout."""
    import tarfile

    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive


CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
