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
