"""The best checkpoint: kept apart from the rotating ones, written atomically, sampled with --checkpoint."""

import json

import numpy as np
import pytest
import tensorflow as tf

from common.config import Config
from common.rundir import RunDir, RunDirError
from common.train import train
from dcgan_mnist.__main__ import cli
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import random_digit_set

DATA = random_digit_set()
IMAGES = DATA.images


class ScriptedFid:
    """A stand-in for the evaluator hook: the FIDs a run 'measures' at given steps."""

    columns = ("fid",)

    def __init__(self, fids: dict[int, float]) -> None:
        self.fids = fids

    def __call__(self, samples, step: int) -> dict[str, float]:
        return {"fid": self.fids[step]} if step in self.fids else {}


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """30 steps, checkpoints every 10 keeping 1, FIDs 50 at 10, 20 at 20 (the best), 80 at 30."""
    out = tmp_path_factory.mktemp("runs") / "tracked"
    config = Config(
        batch_size=16, epochs=10, max_steps=30, log_every=10, checkpoint_every=10, keep_checkpoints=1,
        precision="float32", out=str(out),
    )  # fmt: skip
    result = train(NOTEBOOK, config, DATA, RunDir(out), hooks=(ScriptedFid({10: 50.0, 20: 20.0, 30: 80.0}),))
    return RunDir(out), result


def test_the_lowest_fid_is_kept_across_rotation(tracked_run):
    run, result = tracked_run
    assert run.checkpoint_steps() == [30]  # the rotating checkpoint of step 20 is gone
    best = run.best_record()
    assert best["step"] == 20 and best["fid"] == 20.0 and result.best["step"] == 20
    reader = tf.train.load_checkpoint(best["checkpoint"])
    assert reader.get_tensor("global_step") == 20
    assert json.loads(run.config.read_text())["best"] == {"step": 20, "fid": 20.0}
    rows = [row for row in run.read_history() if "fid" in row]
    assert [row["best_fid"] for row in rows] == [50.0, 20.0, 20.0]


def test_checkpoint_choice_and_its_errors(tracked_run, tmp_path, capsys):
    run, _ = tracked_run
    assert run.resolve_checkpoint("best").endswith("best/model.ckpt-20")
    assert run.resolve_checkpoint("latest").endswith("model.ckpt-30")
    assert run.resolve_checkpoint(None) == run.resolve_checkpoint("latest")
    assert run.resolve_checkpoint("20") == run.resolve_checkpoint("best")  # the best's own step
    with pytest.raises(RunDirError, match="no checkpoint of step 10; kept steps: 20, 30"):
        run.resolve_checkpoint("10")
    with pytest.raises(RunDirError, match="best, latest or a step number"):
        run.resolve_checkpoint("newest")
    out = tmp_path / "best.npy"
    assert cli(["sample", "--run", str(run.path), "--checkpoint", "best", "--n", "4", "--out", str(out)]) == 0
    assert "best/model.ckpt-20" in capsys.readouterr().out and np.load(out).shape == (4, 28, 28, 1)
    assert cli(["sample", "--run", str(run.path), "--checkpoint", "7", "--n", "4", "--out", str(out)]) == 2
    assert "kept steps: 20, 30" in capsys.readouterr().err


def test_a_run_without_tracking_has_no_best(tmp_path):
    run = RunDir(tmp_path / "plain")
    config = Config(batch_size=16, max_steps=5, precision="float32", out=str(run.path))
    train(NOTEBOOK, config, DATA, run)
    assert run.best_record() is None
    with pytest.raises(RunDirError, match="no best checkpoint: it is kept while training tracks quality"):
        run.resolve_checkpoint("best")


def test_keep_best_is_atomic(tmp_path):
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)

    def save(prefix: str) -> None:
        for suffix in (".index", ".data-00000-of-00001"):
            open(prefix + suffix, "w").write("x")

    run.keep_best(save, {"step": 5, "fid": 9.0})

    def dies_half_way(prefix: str) -> None:
        open(prefix + ".index", "w").write("half")
        raise KeyboardInterrupt  # a kill in the middle of writing the new best

    with pytest.raises(KeyboardInterrupt):
        run.keep_best(dies_half_way, {"step": 8, "fid": 3.0})
    assert run.best_record()["step"] == 5  # the old best, whole
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["best"]  # no half-written folder left
    # A kill between the two renames of the swap leaves best.old and no best: still found.
    (run.checkpoints / "best").rename(run.checkpoints / "best.old")
    assert run.best_record()["step"] == 5
    run.keep_best(save, {"step": 9, "fid": 2.0})
    assert run.best_record()["step"] == 9 and not (run.checkpoints / "best.old").exists()


def test_sample_without_checkpoint_gives_the_best_and_says_so(tracked_run, tmp_path, capsys):
    """A run whose end (FID 80 at step 30) is worse than its best (20 at step 20): `sample` without
    --checkpoint gives the best, saying so in one line; --checkpoint latest gives the last."""
    run, _ = tracked_run
    out = {name: tmp_path / f"{name}.npy" for name in ("default", "best", "latest")}
    base = ["sample", "--run", str(run.path), "--n", "4"]
    assert cli([*base, "--out", str(out["default"])]) == 0
    captured = capsys.readouterr()
    assert "using the run's best checkpoint (step 20, tracked FID 20.00); --checkpoint latest" in captured.err
    assert "best/model.ckpt-20" in captured.out
    assert cli([*base, "--checkpoint", "best", "--out", str(out["best"])]) == 0
    assert cli([*base, "--checkpoint", "latest", "--out", str(out["latest"])]) == 0
    assert "using the run's best" not in capsys.readouterr().err
    images = {name: np.load(path) for name, path in out.items()}
    assert np.array_equal(images["default"], images["best"])
    assert not np.array_equal(images["default"], images["latest"])


def test_a_run_without_a_best_samples_its_latest_without_a_word(tmp_path, capsys):
    run = RunDir(tmp_path / "plain")
    train(NOTEBOOK, Config(batch_size=16, max_steps=3, precision="float32", out=str(run.path)), DATA, run)
    assert run.default_checkpoint() == ("latest", None)
    assert cli(["sample", "--run", str(run.path), "--n", "2", "--out", str(tmp_path / "a.npy")]) == 0
    captured = capsys.readouterr()
    assert "model.ckpt-3" in captured.out and "best" not in captured.err
