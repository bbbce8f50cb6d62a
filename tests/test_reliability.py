"""No run is damaged or lost: cross-module use, damaged checkpoints, reused folders, SIGTERM, bad
hyper-parameters, a full disk, torn history lines (issue 11). All on synthetic data in the real formats."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import common.train
from common.compare import main as compare_main
from common.evaluate import main as evaluate_main
from common.rundir import RunDir, checkpoint_problem
from dcgan_cifar.__main__ import cli as cifar_cli
from dcgan_mnist.__main__ import cli as mnist_cli
from tests.conftest import REPO, assert_same_run, checkpoint_values, synthetic_cifar_dir, synthetic_mnist_dir

MNIST = ["--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress"]
CIFAR = ["--data-dir", synthetic_cifar_dir(), "--batch-size", "16", "--no-progress"]
SHORT = ["--max-steps", "8", "--log-every", "2", "--sample-every", "4", "--checkpoint-every", "4"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: what 'nothing was touched' compares."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel") / "mnist"
    assert mnist_cli(["train", *MNIST, *SHORT, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel") / "cifar"
    assert cifar_cli(["train", *CIFAR, "--max-steps", "2", "--checkpoint-every", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def copy_of(tmp_path):
    def copy(run: Path) -> Path:
        target = tmp_path / run.name
        shutil.copytree(run, target)
        return target

    return copy


# ----------------------------------------------------------------------- 1, 2: a run of another module
@pytest.mark.parametrize("command", ["resume", "sample"])
def test_another_modules_run_is_refused_untouched(mnist_run, cifar_run, tmp_path, capsys, command):
    for cli, run, owner, flags in (
        (cifar_cli, mnist_run, "dcgan_mnist", CIFAR),
        (mnist_cli, cifar_run, "dcgan_cifar", MNIST),
    ):
        before = snapshot(run)
        if command == "resume":
            argv = ["train", *flags, "--out", str(run), "--resume", "--max-steps", "20"]
        else:
            argv = ["sample", "--run", str(run), "--out", str(tmp_path / "s.png")]
        assert cli(argv) == 2
        message = error_line(capsys)
        expected = "train --resume" if command == "resume" else "sample --run"
        assert f"python -m {owner} {expected}" in message
        assert snapshot(run) == before
        assert not (tmp_path / "s.png").exists()


def test_evaluate_and_compare_refuse_a_config_another_module_rewrote(mnist_run, copy_of, tmp_path, capsys):
    run = copy_of(mnist_run)
    record = json.loads((run / "config.json").read_text())
    record["config"]["dataset"] = "cifar10"  # what the cross-module bug wrote, beside a 28x28x1 shape
    (run / "config.json").write_text(json.dumps(record))
    assert evaluate_main(["--run", str(run), "--no-progress"]) == 2
    assert "images of shape [28, 28, 1]" in error_line(capsys)
    assert compare_main([str(run), "--out", str(tmp_path / "cmp")]) == 2
    assert "images of shape [28, 28, 1]" in error_line(capsys)
    assert not (run / "eval.json").exists() and not (tmp_path / "cmp").exists()


def test_a_resume_whose_restore_fails_rewrites_nothing(mnist_run, copy_of, capsys):
    run = copy_of(mnist_run)
    record = json.loads((run / "config.json").read_text())
    record["config"]["noise_dim"] = 50  # the checkpoints hold a generator for z of 100
    (run / "config.json").write_text(json.dumps(record))
    before = snapshot(run)
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "12"]) == 2
    assert "cannot restore" in error_line(capsys)
    assert snapshot(run) == before  # no "resumed" entry, no history rewrite, no events


# ---------------------------------------------------------------------------- 3: damaged checkpoints
def damage(run: Path, how: str) -> None:
    checkpoints = run / "checkpoints"
    if how == "truncated data":
        data = next(checkpoints.glob("model.ckpt-8.data-*"))
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif how == "no index":
        (checkpoints / "model.ckpt-8.index").unlink()
    elif how == "garbage state file":
        (checkpoints / "checkpoint").write_bytes(os.urandom(64) + b"\xff\xfe")


@pytest.mark.parametrize("how", ["truncated data", "no index"])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_that_restores(
    mnist_run, copy_of, tmp_path, capsys, how
):
    run = copy_of(mnist_run)
    damage(run, how)
    out = tmp_path / "s.npy"
    assert mnist_cli(["sample", "--run", str(run), "--n", "4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "model.ckpt-8" in warning[0] and "using model.ckpt-4" in warning[0]
    assert np.load(out).shape == (4, 28, 28, 1)
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "8"]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["resumed"][-1].endswith("model.ckpt-4")
    assert [row["step"] for row in RunDir(run).read_history()] == [2, 4, 6, 8]
    assert RunDir(run).latest_checkpoint().endswith("model.ckpt-8")  # saved again, whole


def test_no_checkpoint_restores_exits_2_naming_them(mnist_run, copy_of, tmp_path, capsys):
    run = copy_of(mnist_run)
    for index in (run / "checkpoints").glob("*.index"):
        index.unlink()
    before = snapshot(run)
    assert mnist_cli(["sample", "--run", str(run), "--out", str(tmp_path / "s.npy")]) == 2
    message = error_line(capsys)
    assert "no checkpoint" in message and "model.ckpt-8" in message and "model.ckpt-4" in message
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume"]) == 2
    assert "model.ckpt-8" in error_line(capsys)
    assert snapshot(run) == before


def test_garbage_checkpoint_state_file_is_ignored(mnist_run, copy_of, tmp_path):
    run = copy_of(mnist_run)
    damage(run, "garbage state file")
    assert RunDir(run).latest_checkpoint().endswith("model.ckpt-8")
    assert mnist_cli(["sample", "--run", str(run), "--n", "2", "--out", str(tmp_path / "s.npy")]) == 0


# ----------------------------------------------------------------------------------- 4: reused folders
@pytest.mark.parametrize("left", ["history.csv", "checkpoints", "samples", "events"])
def test_folder_with_run_files_but_no_config_is_refused(mnist_run, copy_of, capsys, left):
    run = copy_of(mnist_run)
    for name in os.listdir(run):
        if name != left:
            path = run / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    before = snapshot(run)
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--max-steps", "2"]) == 2
    message = error_line(capsys)
    assert "run files" in message and left in message and "--resume" in message
    assert snapshot(run) == before


def test_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert mnist_cli(["train", *MNIST, "--out", "", "--max-steps", "2"]) == 2
    assert "--out is empty" in error_line(capsys)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------- 5: SIGTERM and Ctrl-C
def start_training(out: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "dcgan_mnist", "train", *MNIST, "--out", str(out), *flags]
    # A shell without job control starts its background jobs with SIGINT ignored, and Python then installs
    # no KeyboardInterrupt handler: under `pytest &` (or nohup) Ctrl-C would never reach the training, and it
    # ran to its epoch limit and exited 0. Give the child the default disposition that a terminal gives.
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_rows(out: Path, rows: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (out / "history.csv").exists() and len(RunDir(out).read_history()) >= rows:
            return
        time.sleep(0.05)
    raise AssertionError("the training made no progress")


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")]
)
def test_sigterm_and_ctrl_c_save_a_checkpoint(tmp_path, sig, code, word):
    out = tmp_path / "run"
    process = start_training(out, "--max-steps", "100000", "--log-every", "1", "--checkpoint-every", "100000")
    wait_for_rows(out, 2, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-3000:]
    ours = ("terminated", "interrupted", "dcgan_mnist", "Traceback")
    lines = [line for line in stderr.splitlines() if line.startswith(ours)]
    assert len(lines) == 1 and "saved a checkpoint at step" in lines[0], stderr
    step = int(lines[0].split("at step ")[1].split(";")[0])
    assert RunDir(out).latest_checkpoint().endswith(f"model.ckpt-{step}")
    assert step >= 2
    assert mnist_cli(["train", *MNIST, "--out", str(out), "--resume", "--max-steps", str(step + 2)]) == 0


# ------------------------------------------------------------------- 6: hyper-parameters, early deaths
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--learning-rate", "nan"], "--learning-rate must be a finite number"),
        (["--learning-rate", "inf"], "--learning-rate must be a finite number"),
        (["--learning-rate", "-1"], "--learning-rate must be positive"),
        (["--beta1", "nan"], "--beta1 must be a finite number"),
        (["--beta1", "1"], "--beta1 must be in [0, 1)"),
        (["--bn-epsilon", "-1"], "--bn-epsilon must be positive"),
        (["--bn-epsilon", "0"], "--bn-epsilon must be positive"),
        (["--noise-dim", "100000000"], "--noise-dim must be at most"),
        (["--lrelu-alpha", "inf"], "--lrelu-alpha must be a finite number"),
        (["--keep-prob", "nan"], "--keep-prob must be a finite number"),
        (["--label-smoothing", "nan"], "--label-smoothing must be a finite number"),
        (["--bn-momentum=-inf"], "--bn-momentum must be a finite number"),
        (["--grid-size", "100000"], "--grid-size must be at most"),
        (["--seed", str(2**40)], "--seed must be at most"),
    ],
)
def test_bad_hyper_parameters_exit_2_and_write_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert mnist_cli(["train", *MNIST, "--out", str(out), *flags]) == 2
    assert message in error_line(capsys)
    assert not out.exists()


def test_a_run_that_dies_before_its_first_checkpoint_can_be_started_again(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *MNIST, "--out", str(out), "--max-steps", "4", "--checkpoint-every", "4"]
    assert mnist_cli([*argv, "--learning-rate", "1e30"]) == 2  # non-finite loss at step 1 or 2
    message = error_line(capsys)
    assert "non-finite loss" in message and "the same command starts it again" in message
    assert not out.exists()  # it created the folder: it removed it
    # In a folder that was there before, only the run's files go.
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert mnist_cli([*argv, "--learning-rate", "1e30"]) == 2
    assert os.listdir(out) == ["notes.txt"]
    assert mnist_cli(argv) == 0
    assert RunDir(out).latest_checkpoint().endswith("model.ckpt-4")


# --------------------------------------------------------------------------------------- 7: disk full
def test_disk_full_exits_2_keeps_the_last_checkpoint_and_leaves_no_temporary_files(
    mnist_run, copy_of, capsys, monkeypatch
):
    run = copy_of(mnist_run)
    good = checkpoint_values(run)
    real_save = common.train.v1.train.Saver.save

    def save(self, sess, prefix, global_step=None, **kwargs):  # the disk fills while step 12 is saved
        if global_step == 12:
            Path(f"{prefix}-12.data-00000-of-00001.tempstate123").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", f"{prefix}-12.data-00000-of-00001")
        return real_save(self, sess, prefix, global_step=global_step, **kwargs)

    monkeypatch.setattr(common.train.v1.train.Saver, "save", save)
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "12"]) == 2
    message = error_line(capsys)
    assert message.startswith(
        f"dcgan_mnist: error: no space left on {run} while writing checkpoint model.ckpt-12"
    )
    assert "model.ckpt-8" in message
    assert not [p for p in run.rglob("*") if "tempstate" in p.name or p.name.startswith(".")]
    assert RunDir(run).latest_checkpoint().endswith("model.ckpt-8")
    after = checkpoint_values(run)
    for name in good:
        np.testing.assert_array_equal(good[name], after[name])


def can_mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(path)], capture_output=True
    )
    return result.returncode == 0


def test_disk_full_on_a_real_small_file_system(mnist_run, tmp_path):
    mount = tmp_path / "small"
    if os.geteuid() != 0 or not can_mount_tmpfs(mount):
        pytest.skip("mounting a small tmpfs needs root (the monkeypatched ENOSPC test above runs everywhere)")
    try:
        run = mount / "run"
        shutil.copytree(mnist_run, run)
        # Fill the file system but for 20 MB: the next checkpoint (54 MB) breaks off half written.
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"\0" * max(free - 20_000_000, 0))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argv = [
            "train",
            *MNIST,
            "--out",
            str(run),
            "--resume",
            "--max-steps",
            "12",
            "--checkpoint-every",
            "4",
        ]
        result = subprocess.run(
            [sys.executable, "-m", "dcgan_mnist", *argv], capture_output=True, text=True, env=env
        )
        assert result.returncode == 2, result.stderr
        ours = [line for line in result.stderr.splitlines() if line.startswith(("dcgan_mnist", "Traceback"))]
        assert len(ours) == 1 and f"no space left on {run} while writing" in ours[0], result.stderr
        assert not [p for p in run.rglob("*") if "tempstate" in p.name or p.name.endswith("_temp")]
        assert RunDir(run).latest_checkpoint().endswith("model.ckpt-8")
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# -------------------------------------------------------------------------------------- 8: sample input
def test_sample_refuses_a_huge_n(mnist_run, tmp_path, capsys):
    assert (
        mnist_cli(
            ["sample", "--run", str(mnist_run), "--n", "1000000000000", "--out", str(tmp_path / "s.npy")]
        )
        == 2
    )
    assert "--n 1000000000000 is more than the 100000 images" in error_line(capsys)
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("content", ["{}", "[]", '{"config": []}', '"x"'])
def test_sample_from_a_config_without_settings(tmp_path, capsys, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(content)
    assert mnist_cli(["sample", "--run", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert "holds no run settings" in error_line(capsys)


# ------------------------------------------------------------------------ 9: --resume, another batch
@pytest.mark.parametrize("flags", [["--batch-size", "32"], ["--seed", "4"]])
def test_resume_with_another_batch_size_or_seed_is_refused(mnist_run, capsys, flags):
    before = snapshot(mnist_run)
    assert mnist_cli(["train", *MNIST, "--out", str(mnist_run), "--resume", "--max-steps", "12", *flags]) == 2
    assert "would change the data order" in error_line(capsys)
    assert snapshot(mnist_run) == before


# --------------------------------------------------------------------------- 10: torn history lines
def test_a_torn_last_history_line_parses_and_is_dropped_on_resume(mnist_run, copy_of):
    run = copy_of(mnist_run)
    with open(run / "history.csv", "a") as f:
        f.write("10,0.5,1.3")  # a kill in the middle of appending step 10's row (after checkpoint 8)
    assert [row["step"] for row in RunDir(run).read_history()] == [2, 4, 6, 8]
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "12"]) == 0
    text = (run / "history.csv").read_text()
    assert text.endswith("\n") and "0.5,1.3" not in text
    assert [row["step"] for row in RunDir(run).read_history()] == [2, 4, 6, 8, 10, 12]


def test_history_rows_past_the_restored_checkpoint_are_dropped(mnist_run, copy_of):
    run = copy_of(mnist_run)
    (run / "history.csv").write_text((run / "history.csv").read_text() + "10,0.6,1,1,0.5,0.5,9,99\n")
    for path in (run / "checkpoints").glob("model.ckpt-8.*"):
        path.unlink()  # as if killed after logging step 10 with checkpoint 4 the last one written
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "6"]) == 0
    assert [row["step"] for row in RunDir(run).read_history()] == [2, 4, 6]


# ----------------------------------------------------------------------------- fault injection: kill -9
@pytest.mark.slow  # five training processes: about 3 minutes on 2 shared cores; .ci/run runs it
def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(tmp_path):
    """SIGKILL a training process at random moments, resume each time: the run ends with the very weights
    and losses of a run that never stopped, and every checkpoint left behind restores."""
    flags = [
        "--max-steps",
        "12",
        "--log-every",
        "1",
        "--sample-every",
        "4",
        "--checkpoint-every",
        "3",
        "--seed",
        "2",
    ]
    straight, faulted = tmp_path / "straight", tmp_path / "faulted"
    assert mnist_cli(["train", *MNIST, "--out", str(straight), *flags]) == 0
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    kills = 0
    for _ in range(4):
        resume = ["--resume"] if (faulted / "config.json").exists() else []  # what a user would type
        process = start_training(faulted, *flags, *resume)
        rows = len(RunDir(faulted).read_history()) if (faulted / "history.csv").exists() else 0
        target = int(rng.integers(0, 5))  # a few more rows, then a random fraction of a step or two
        deadline = time.monotonic() + 240
        while process.poll() is None and time.monotonic() < deadline:
            if (faulted / "history.csv").exists() and len(RunDir(faulted).read_history()) >= rows + target:
                break
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 0.5)))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate()
        for prefix in RunDir(faulted).checkpoint_prefixes():  # every checkpoint left behind restores
            assert checkpoint_problem(prefix) is None, prefix
        if (faulted / "history.csv").exists():
            RunDir(faulted).read_history()  # parses, whatever moment the kill hit
    resume = ["--resume"] if (faulted / "config.json").exists() else []
    assert mnist_cli(["train", *MNIST, "--out", str(faulted), *flags, *resume]) == 0
    assert kills >= 1
    assert_same_run(straight, faulted)
    for prefix in RunDir(faulted).checkpoint_prefixes():
        assert checkpoint_problem(prefix) is None, prefix
