"""Shared test helpers: where the real data of ../shared/data is, and a marker for tests that need it."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

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


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m ARGS` in a fresh interpreter from `cwd`, with the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=cwd)


CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def write_cifar10(folder: Path, per_class: int = 2, test_per_class: int = 3, seed: int = 0) -> dict:
    """A tiny CIFAR-10 in the official python format: `folder`/cifar-10-batches-py/ with five training
    batches of `per_class` images of every class each and a test batch of `test_per_class` per class,
    shuffled, as protocol-2 pickles with byte-string keys. Each image is its class's colour plus noise,
    so a classifier has something to learn. Returns {batch name: (uint8 [N, 32, 32, 3] images, labels)}."""
    import pickle

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
        data = images.transpose(0, 3, 1, 2).reshape(len(labels), 3072)  # NHWC -> R, G, B planes
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]}  # fmt: skip
        (batches / name).write_bytes(pickle.dumps(batch, protocol=2))
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
