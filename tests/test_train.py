"""Training: the run directory, exact resume, the NaN guard (on synthetic MNIST files, so a fresh clone
runs them), and losses and grids that move on real MNIST."""

import json

import numpy as np
import pytest
import tensorflow as tf

from common.rundir import HISTORY_COLUMNS, RunDir
from dcgan_mnist.__main__ import cli
from tests.conftest import (
    SHARED_DATA,
    SYNTHETIC_TRAIN,
    assert_same_run,
    checkpoint_values,
    history,
    needs_shared_data,
    synthetic_mnist_dir,
)

SMALL = ["--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress"]
REAL = ["--data-dir", str(SHARED_DATA / "mnist"), "--batch-size", "16", "--no-progress"]


def train_short(out, flags) -> None:
    argv = [
        "train",
        *flags,
        "--out",
        str(out),
        "--max-steps",
        "60",
        "--log-every",
        "5",
        "--sample-every",
        "20",
    ]
    assert cli([*argv, "--checkpoint-every", "30", "--seed", "3"]) == 0


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mnist"
    train_short(out, SMALL)
    return out


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real MNIST {SHARED_DATA / 'mnist'} is not beside the repository")
    out = tmp_path_factory.mktemp("runs") / "real"
    train_short(out, REAL)
    return out


def test_run_directory_contents(short_run):
    run = RunDir(short_run)
    record = json.loads(run.config.read_text())
    assert record["config"]["batch_size"] == 16 and record["config"]["seed"] == 3
    assert record["config"]["quirks"] == "fixed"
    assert record["total_steps"] == 60 and record["steps_per_epoch"] == SYNTHETIC_TRAIN // 16
    assert record["device"].startswith(("CPU", "GPU"))
    assert record["versions"]["tensorflow"] == tf.__version__
    assert record["architecture"]["parameters"]["generator"] > 0
    rows = history(short_run)
    assert list(rows[0]) == list(HISTORY_COLUMNS)
    assert [int(r["step"]) for r in rows] == list(range(5, 61, 5))
    assert [p.name for p in run.sample_grids()] == [f"step_{s:06d}.png" for s in (0, 20, 40, 60)]
    assert run.loss_plot.stat().st_size > 0 and run.progress_gif.stat().st_size > 0
    assert list(run.events.glob("events.out.tfevents.*"))
    assert run.latest_checkpoint().endswith("model.ckpt-60")


@needs_shared_data
def test_losses_move_and_stay_finite(real_run):
    rows = history(real_run)
    d = np.array([float(r["d_loss"]) for r in rows])
    g = np.array([float(r["g_loss"]) for r in rows])
    assert np.isfinite(d).all() and np.isfinite(g).all()
    assert d.std() > 0.01 and g.std() > 0.01
    assert float(rows[-1]["images_per_second"]) > 0
    # D learns to tell real from fake: from its first logged value its real/fake gap opens up.
    gaps = [float(r["d_real"]) - float(r["d_fake"]) for r in rows]
    assert max(gaps) > 0.2


@needs_shared_data
def test_sample_grids_change_as_the_generator_learns(real_run):
    from PIL import Image

    grids = RunDir(real_run).sample_grids()
    first = np.asarray(Image.open(grids[0]), dtype=float)
    last = np.asarray(Image.open(grids[-1]), dtype=float)
    assert np.abs(first - last).mean() > 5


def test_exact_resume(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = [*SMALL, "--seed", "11", "--log-every", "5", "--sample-every", "20", "--checkpoint-every", "20"]
    assert cli(["train", *common, "--out", str(straight), "--max-steps", "40"]) == 0
    assert cli(["train", *common, "--out", str(resumed), "--max-steps", "20"]) == 0
    assert cli(["train", *common, "--out", str(resumed), "--max-steps", "40", "--resume"]) == 0
    assert_same_run(straight, resumed)
    assert json.loads(RunDir(resumed).config.read_text())["resumed"][0].endswith("model.ckpt-20")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", *SMALL, "--out", str(out), "--max-steps", "10", "--checkpoint-every", "10"]) == 0
    good = checkpoint_values(out)
    # A learning rate of 1e30 sends the weights to inf within a step or two.
    code = cli(
        ["train", *SMALL, "--out", str(out), "--resume", "--max-steps", "50", "--learning-rate", "1e30"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "non-finite loss" in err[-1] and "model.ckpt-10" in err[-1]
    assert RunDir(out).latest_checkpoint().endswith("model.ckpt-10")
    after = checkpoint_values(out)
    for name in good:
        np.testing.assert_array_equal(good[name], after[name])
