"""No run is damaged or lost: cross-module use, damaged checkpoints, reused folders, SIGTERM, bad
hyper-parameters, a full disk, torn history lines (issue 11). All on synthetic data in the real formats."""

import contextlib
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
# `python -c FAULT_RUNNER train ...`: dcgan_mnist's CLI, killed by SIGKILL from inside at a chosen moment,
# $DCGAN_TEST_KILL: "eval:N" in the middle of the process's N-th evaluation, "best:N" in the middle of its
# N-th write of checkpoints/best (the new checkpoint written, not yet swapped in), "none" never.
FAULT_RUNNER = """
import os, signal, sys
kind, _, count = os.environ["DCGAN_TEST_KILL"].partition(":")
calls = []
def maybe_die():
    calls.append(1)
    if len(calls) == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
if kind == "eval":
    import common.run_evaluation as evaluation
    quality = evaluation.quality
    def killing_quality(*args, **kwargs):
        maybe_die()
        return quality(*args, **kwargs)
    evaluation.quality = killing_quality
elif kind == "best":
    from common.rundir import RunDir
    keep_best = RunDir.keep_best
    def killing_keep_best(self, save, record):
        def save_then_die(prefix):
            save(prefix)
            maybe_die()
        return keep_best(self, save_then_die, record)
    RunDir.keep_best = killing_keep_best
from dcgan_mnist.__main__ import cli
sys.exit(cli(sys.argv[1:]))
"""


def start_faulted(out: Path, kill: str, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DCGAN_TEST_KILL": kill}
    argv = [sys.executable, "-c", FAULT_RUNNER, "train", *MNIST, "--out", str(out), *flags]
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow  # about eight training processes: 4-6 minutes on 2 shared cores; .ci/run runs it
def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(tmp_path, monkeypatch):
    """SIGKILL a training process that tracks quality at random moments, in the middle of an evaluation
    and of a write of the best checkpoint, resume each time: the run ends with the very weights, losses
    and best checkpoint of a run that never stopped, its config.json is that run's but for the list of
    commands, every checkpoint left behind restores, and no temporary file is left."""
    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / "cache"))  # one classifier for every process
    flags = [
        "--max-steps", "12", "--log-every", "1", "--sample-every", "4", "--checkpoint-every", "3",
        "--seed", "2", "--eval-every", "2", "--eval-samples", "50",
    ]  # fmt: skip
    straight, faulted = tmp_path / "straight", tmp_path / "faulted"
    process = start_faulted(straight, "none", *flags)
    assert process.wait() == 0, process.communicate()
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    # a fresh run's first evaluation always writes best/; the next process evaluates at least twice
    faults = ["best:1", "eval:2", *(str(kind) for kind in rng.choice(["random", "eval:1", "best:1"], 3))]
    kills, finished = [], False
    for fault in faults:
        resume = ["--resume"] if (faulted / "config.json").exists() else []  # what a user would type
        process = start_faulted(faulted, "none" if fault == "random" else fault, *flags, *resume)
        if fault == "random":
            rows = len(RunDir(faulted).read_history()) if (faulted / "history.csv").exists() else 0
            target = int(rng.integers(0, 5))  # a few more rows, then a random fraction of a step or two
            deadline = time.monotonic() + 240
            while process.poll() is None and time.monotonic() < deadline:
                if (faulted / "history.csv").exists() and len(
                    RunDir(faulted).read_history()
                ) >= rows + target:
                    break
                time.sleep(0.01)
            time.sleep(float(rng.uniform(0, 0.5)))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
        # done; or killed after its last checkpoint, which a resume then has nothing to add to
        if process.returncode == 0 or (process.returncode == 2 and "is at step 12 already" in stderr):
            finished = True
            break
        assert process.returncode == -signal.SIGKILL, stderr[-3000:]
        kills.append(fault)
        for prefix in RunDir(faulted).checkpoint_prefixes():  # every checkpoint left behind restores
            assert checkpoint_problem(prefix) is None, prefix
        if (faulted / "history.csv").exists():
            RunDir(faulted).read_history()  # parses, whatever moment the kill hit
    if not finished:
        process = start_faulted(faulted, "none", *flags, "--resume")
        assert process.wait() == 0, process.communicate()
    assert kills[:2] == ["best:1", "eval:2"], kills
    assert_same_run(straight, faulted)
    assert RunDir(faulted).best_record()["step"] == RunDir(straight).best_record()["step"]
    assert RunDir(faulted).best_record()["fid"] == RunDir(straight).best_record()["fid"]
    assert without_commands(faulted) == without_commands(straight)
    for prefix in RunDir(faulted).checkpoint_prefixes():
        assert checkpoint_problem(prefix) is None, prefix
    left = [
        p.name
        for p in faulted.rglob("*")
        if p.name.endswith(".tmp") or ".~" in p.name or "tempstate" in p.name
    ]
    assert not left, left


# ==================================================================================== issue 35
# Resume keeps everything a run knows, the best checkpoint survives damage, every run-folder file is
# read through one checking reader. Each test names the reproduction of the issue it covers (#35.N).
@pytest.fixture(scope="module")
def quick_classifiers(tmp_path_factory):
    """A classifier cache of its own, and the synthetic files' short classifier plan (in this process;
    a subprocess trains its own with the default plan, in the same cache)."""
    from common import classifier as classifier_module
    from tests.conftest import synthetic_classifier_plan

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DCGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setitem(classifier_module.DEFAULT_PLANS, "mnist", synthetic_classifier_plan())
        yield


class ScriptedFid:
    """A stand-in for the evaluator hook: the FIDs a run 'measures' at given steps, and what the
    evaluator records in config.json (`tracking`) and watches collapses with (`noise_fid`)."""

    columns = ("fid",)
    noise_fid = 500.0
    record = {"tracking": {"n": 50, "every": 4, "noise_fid": 500.0, "real_fid": 1.0}}

    def __init__(self, fids: dict[int, float], signal_at: int | None = None) -> None:
        self.fids, self.signal_at = fids, signal_at

    def __call__(self, samples, step: int) -> dict[str, float]:
        if step == self.signal_at:  # SIGTERM in the middle of this step's evaluation
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        return {"fid": self.fids[step]} if step in self.fids else {}


SCRIPTED_FIDS = {4: 50.0, 8: 20.0, 12: 80.0}  # the best at step 8; step 12's is worse


def scripted_config(out: Path, max_steps: int, **changes):
    from common.config import Config

    settings = {
        "batch_size": 16, "epochs": 100, "max_steps": max_steps, "log_every": 4, "sample_every": 4,
        "checkpoint_every": 4, "keep_checkpoints": 3, "precision": "float32", "out": str(out),
    }  # fmt: skip
    return Config(**{**settings, **changes})


def scripted_train(out: Path, max_steps: int, resume: bool = False, fids=SCRIPTED_FIDS, **changes):
    """The notebook's networks trained in this process on random digits, their FIDs scripted."""
    from common.train import train
    from dcgan_mnist.model import SPEC
    from tests.conftest import random_digit_set

    hooks = (ScriptedFid(fids),) if fids is not None else ()
    return train(
        SPEC, scripted_config(out, max_steps, **changes), random_digit_set(), RunDir(out), resume, hooks
    )


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory) -> Path:
    """8 steps, checkpoints 4 and 8, FIDs 50 at step 4 and 20 at step 8: the best checkpoint is step 8's."""
    out = tmp_path_factory.mktemp("scripted") / "run"
    scripted_train(out, 8)
    return out


def best_json(run: Path) -> dict:
    return json.loads((run / "checkpoints" / "best" / "best.json").read_text())


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# ------------------------------------------------------------- #35.1: SIGTERM during an evaluation
def test_sigterm_during_an_evaluation_keeps_the_steps_row_and_resume_goes_on(tmp_path, capsys):
    from common.train import train
    from dcgan_mnist.model import SPEC
    from tests.conftest import random_digit_set

    out = tmp_path / "run"
    config = scripted_config(out, 12, checkpoint_every=12)
    with pytest.raises(KeyboardInterrupt):
        train(SPEC, config, random_digit_set(), RunDir(out), hooks=(ScriptedFid(SCRIPTED_FIDS, signal_at=8),))
    assert "terminated (SIGTERM): saved a checkpoint at step 8" in capsys.readouterr().err
    rows = RunDir(out).read_history()
    assert [row["step"] for row in rows] == [4, 8]  # step 8's row: its losses, not the cut evaluation
    assert "fid" not in rows[-1] and rows[-1]["d_loss"] > 0 and rows[-1]["seconds"] > rows[0]["seconds"]
    scripted_train(out, 12, resume=True, checkpoint_every=12)
    rows = RunDir(out).read_history()
    assert [row["step"] for row in rows] == [4, 8, 12]
    assert rows[2]["seconds"] > rows[1]["seconds"]  # the wall time goes on, it does not restart from 0


def test_ctrl_c_between_rows_writes_the_row_of_the_steps_since_the_last(tmp_path, monkeypatch):
    real_run = common.train.v1.Session.run
    steps = []

    def run(self, fetches, *args, **kwargs):  # Ctrl-C while step 6 runs: rows every 4 steps
        result = real_run(self, fetches, *args, **kwargs)
        if isinstance(fetches, dict) and "losses" in fetches:
            steps.append(1)
            if len(steps) == 6:
                raise KeyboardInterrupt
        return result

    monkeypatch.setattr(common.train.v1.Session, "run", run)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        scripted_train(out, 12, fids=None)
    rows = RunDir(out).read_history()
    assert [row["step"] for row in rows] == [4, 6]  # steps 5 and 6, in the checkpoint, have their row
    assert RunDir(out).latest_checkpoint().endswith("model.ckpt-6")


# ------------------------------------------------- #35.2, #35.12: a damaged best.json on --resume
@pytest.mark.parametrize("damage", ["garbage", "step abc", "names a step not there"])
def test_a_damaged_best_json_is_rebuilt_from_history_and_no_worse_best_replaces_it(
    scripted_run, copy_of, capsys, damage
):
    run = copy_of(scripted_run)
    best = run / "checkpoints" / "best" / "best.json"
    text = {"garbage": "\x00{not json", "step abc": '{"step": "abc", "fid": 20.0}'}
    best.write_text(text.get(damage, '{"step": 7, "fid": 20.0}'))
    scripted_train(run, 12, resume=True)  # step 12 measures FID 80: worse
    assert "rebuilt it from history.csv (step 8, FID 20)" in capsys.readouterr().err
    assert best_json(run) == {"step": 8, "fid": 20.0}
    assert RunDir(run).best_record()["checkpoint"].endswith("best/model.ckpt-8")
    assert json.loads((run / "config.json").read_text())["best"] == {"step": 8, "fid": 20.0}


def test_a_damaged_best_checkpoint_is_left_alone_until_a_better_fid(scripted_run, copy_of, capsys):
    run = copy_of(scripted_run)
    truncate(next((run / "checkpoints" / "best").glob("*.data-*")))
    scripted_train(run, 12, resume=True)  # FID 80 at step 12: not below the damaged best's 20
    err = capsys.readouterr().err
    assert "the best checkpoint" in err and "is damaged" in err and "below 20 replaces it" in err
    assert best_json(run)["step"] == 8
    scripted_train(run, 16, resume=True, fids={16: 10.0})  # a better one replaces it
    assert best_json(run) == {"step": 16, "fid": 10.0}


# ------------------------------------------ #35.3 and done-when: resume carries what a run knows
def without_commands(run: Path) -> dict:
    """config.json but for the commands (the first, the list, the checkpoints they resumed from) and the
    folder of the run (two runs compared are two folders)."""
    record = json.loads((run / "config.json").read_text())
    record["config"].pop("out")
    return {k: v for k, v in record.items() if k not in ("command", "commands", "resumed")}


def test_a_resumed_runs_config_json_equals_the_uninterrupted_runs_but_for_the_commands(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    scripted_train(straight, 12)
    scripted_train(split, 8)
    scripted_train(split, 12, resume=True)  # step 12 measures a worse FID: best stays step 8's
    assert without_commands(split) == without_commands(straight)
    record = json.loads((split / "config.json").read_text())
    assert record["best"] == {"step": 8, "fid": 20.0} and record["tracking"] == ScriptedFid.record["tracking"]
    assert len(record["commands"]) == 2 and record["commands"][0] == record["command"]
    assert record["resumed"][0].endswith("model.ckpt-8")


def test_a_resumed_part_without_evaluations_keeps_best_tracking_collapses_and_the_command(
    scripted_run, copy_of
):
    run = copy_of(scripted_run)
    before = json.loads((run / "config.json").read_text())
    scripted_train(run, 12, resume=True, fids=None)
    after = json.loads((run / "config.json").read_text())
    for key in ("best", "tracking", "collapses", "command"):
        assert after[key] == before[key], key
    assert after["commands"] == [before["command"], before["command"]]  # in-process: pytest's argv twice


# ---------------------------------------------- #35.4, #35.6: refusals of --resume, nothing written
@pytest.mark.parametrize("steps", ["5", "8"])
def test_resume_refuses_max_steps_at_or_below_the_current_step(mnist_run, capsys, steps):
    before = snapshot(mnist_run)
    assert mnist_cli(["train", *MNIST, "--out", str(mnist_run), "--resume", "--max-steps", steps]) == 2
    assert f"--max-steps {steps}: {mnist_run} is at step 8 already" in error_line(capsys)
    assert snapshot(mnist_run) == before


def test_resume_of_a_finished_run_says_so(mnist_run, capsys):
    before = snapshot(mnist_run)
    assert mnist_cli(["train", *MNIST, "--out", str(mnist_run), "--resume"]) == 2
    assert "is at step 8 already, and --max-steps 8 ends it at step 8" in error_line(capsys)
    assert snapshot(mnist_run) == before


def test_resume_refuses_another_precision(mnist_run, capsys):
    saved = json.loads((mnist_run / "config.json").read_text())["config"]["precision"]
    other = "bfloat16" if saved == "float32" else "float32"
    before = snapshot(mnist_run)
    argv = ["train", *MNIST, "--out", str(mnist_run), "--resume", "--max-steps", "12", "--precision", other]
    assert mnist_cli(argv) == 2
    assert f"--resume with another --precision ('{other}'): {mnist_run} trained in {saved}" in error_line(
        capsys
    )
    assert snapshot(mnist_run) == before


# -------------------------------------------------------- #35.5: --keep-checkpoints across resumes
def test_keep_checkpoints_rotates_the_checkpoints_of_earlier_invocations(tmp_path):
    out = tmp_path / "run"
    argv = ["train", *MNIST, "--out", str(out), "--checkpoint-every", "2", "--keep-checkpoints", "3"]
    assert mnist_cli([*argv, "--max-steps", "6"]) == 0
    assert mnist_cli([*argv, "--resume", "--max-steps", "10"]) == 0
    assert RunDir(out).checkpoint_steps() == [10, 8, 6]
    assert mnist_cli([*argv, "--resume", "--max-steps", "12", "--keep-checkpoints", "1"]) == 0
    assert RunDir(out).checkpoint_steps() == [12]
    saver_state = (out / "checkpoints" / "checkpoint").read_text()
    assert "model.ckpt-10" not in saver_state and "model.ckpt-12" in saver_state


# ------------------------------------ #35.7, #35.19: sample's choices that no run can honour
@pytest.fixture(scope="module")
def coded_average_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coded") / "run"
    flags = ["--max-steps", "2", "--eval-every", "0", "--g-ema-decay", "0.9", "--info-codes", "10"]
    assert mnist_cli(["train", *MNIST, "--out", str(out), *flags]) == 0
    return out


def test_sample_and_evaluate_refuse_the_average_with_moving_statistics(
    coded_average_run, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "s.npy"
    argv = ["sample", "--run", str(coded_average_run), "--n", "4", "--out", str(out)]
    assert mnist_cli([*argv, "--sampler-stats", "moving"]) == 2
    assert "--sampler-stats moving with the run's weight average" in error_line(capsys)
    assert not out.exists()
    assert mnist_cli([*argv, "--sampler-stats", "moving", "--weights", "live"]) == 0  # the trained weights
    monkeypatch.setattr(
        "common.run_evaluation.load_classifier", lambda *a, **k: pytest.fail("evaluated before refusing")
    )
    assert evaluate_main(["--run", str(coded_average_run), "--sampler-stats", "moving", "--no-progress"]) == 2
    assert "--sampler-stats moving with the run's weight average" in error_line(capsys)
    assert not (coded_average_run / "eval.json").exists()


def test_sample_by_code_says_how_many_images_it_writes(coded_average_run, tmp_path, capsys):
    out = tmp_path / "codes.npy"
    argv = ["sample", "--run", str(coded_average_run), "--by-code", "--out", str(out)]
    assert mnist_cli([*argv, "--n", "3"]) == 2
    assert "a row for each of the run's 10 code values: --n 3 is fewer" in error_line(capsys)
    assert not out.exists()
    assert mnist_cli([*argv, "--n", "25"]) == 0
    assert (
        "wrote 20 images (10 code rows of 2; --n 25 rounded down to a multiple of 10)"
        in capsys.readouterr().out
    )
    assert np.load(out).shape == (20, 28, 28, 1)


# -------------------------------------------------------------- #35.8: sample into the run's files
@pytest.mark.parametrize("target", ["samples/step_000008.png", "checkpoints/x.npy", "events/x.png"])
def test_sample_refuses_to_overwrite_the_runs_own_files(mnist_run, copy_of, capsys, target):
    run = copy_of(mnist_run)
    before = snapshot(run)
    assert mnist_cli(["sample", "--run", str(run), "--n", "4", "--out", str(run / target)]) == 2
    assert "is the run's own" in error_line(capsys)
    assert snapshot(run) == before
    assert mnist_cli(["sample", "--run", str(run), "--n", "4", "--out", str(run / "grid.png")]) == 0


# ----------------------------------------------------------- #35.9: what a kill -9 left is removed
KILLED_WRITE = """
import os, signal, sys
from common.rundir import RunDir, atomic_path
def die(prefix=None):
    if prefix:
        open(prefix + ".index", "w").write("half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "best":
    RunDir(sys.argv[2]).keep_best(die, {"step": 12, "fid": 1.0})
with atomic_path(sys.argv[2]) as tmp:
    open(tmp, "wb").write(b"half an array")
    die()
"""


def killed_write(what: str, target: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, what, str(target)], env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == -signal.SIGKILL


def test_a_killed_samples_temporary_is_removed_by_the_next_sample(mnist_run, tmp_path):
    out = tmp_path / "out" / "k9.npy"
    out.parent.mkdir()
    killed_write("file", out)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".k9.")]  # what the kill left
    assert mnist_cli(["sample", "--run", str(mnist_run), "--n", "4", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["k9.npy"]


def test_a_killed_best_write_is_removed_by_resume(scripted_run, copy_of):
    run = copy_of(scripted_run)
    killed_write("best", run)
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    scripted_train(run, 12, resume=True)
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith("model.ckpt")) == [
        "best",
        "checkpoint",
    ]


# ------------------------------------------------------ #35.10: a named data folder, no download
def test_a_named_data_folder_without_the_data_downloads_nothing(tmp_path, capsys, isolated_home, monkeypatch):
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "no-mirror").as_uri())  # never the network
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["train", "--batch-size", "16", "--no-progress", "--out", str(tmp_path / "run")]
    assert mnist_cli([*argv, "--data-dir", str(empty)]) == 2
    assert "nothing is downloaded while --data-dir" in error_line(capsys)
    monkeypatch.setenv("DCGAN_DATA_DIR", "/nonexistent")
    assert mnist_cli(argv) == 2
    assert "$DCGAN_DATA_DIR names /nonexistent, which is not a folder" in error_line(capsys)
    assert not (isolated_home / ".keras").exists() and not (tmp_path / "run").exists()


# ------------------------------ #35.11, #35.12, #35.17: --checkpoint best|STEP falls back or refuses
@pytest.mark.parametrize(
    "damage, which, outcome",
    [
        ("best data", "best", "refused"),
        ("best index", "best", "refused"),
        ("best json step abc", "best", "best/model.ckpt-8"),
        ("best json names step 7", "best", "best/model.ckpt-8"),
        ("step 8 data", "8", "best/model.ckpt-8"),  # the best folder's copy of the step
        ("step 4 data", "4", "refused"),
        ("best json step abc", "8", "model.ckpt-8"),
    ],
)
def test_checkpoint_best_or_step_falls_back_or_refuses_as_latest_does(
    scripted_run, copy_of, tmp_path, capsys, damage, which, outcome
):
    run = copy_of(scripted_run)
    best = run / "checkpoints" / "best"
    if damage == "best data":
        truncate(next(best.glob("*.data-*")))
    elif damage == "best index":
        next(best.glob("*.index")).unlink()
    elif damage == "best json step abc":
        (best / "best.json").write_text('{"step": "abc", "fid": 20.0}')
    elif damage == "best json names step 7":
        (best / "best.json").write_text('{"step": 7, "fid": 20.0}')
    else:
        step = damage.split()[1]
        truncate(next((run / "checkpoints").glob(f"model.ckpt-{step}.data-*")))
    out = tmp_path / "s.npy"
    code = mnist_cli(["sample", "--run", str(run), "--checkpoint", which, "--n", "4", "--out", str(out)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if outcome == "refused":
        assert code == 2 and not out.exists()
        assert "does not restore" in captured.err and "kept steps: 4, 8" in captured.err
    else:
        assert code == 0 and f"from {run / 'checkpoints' / outcome}," in captured.out
        warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
        assert len(warnings) == (damage != "best json step abc" or which == "best")


def test_evaluate_checkpoint_best_beside_a_damaged_best_json(
    quick_classifiers, scripted_run, copy_of, capsys
):
    run = copy_of(scripted_run)
    (run / "checkpoints" / "best" / "best.json").write_text('{"step": "abc", "fid": 20.0}')
    argv = ["--run", str(run), "--checkpoint", "best", "--n", "50", "--data-dir", synthetic_mnist_dir()]
    assert evaluate_main([*argv, "--no-progress"]) == 0
    assert "using best/model.ckpt-8" in capsys.readouterr().err
    assert json.loads((run / "eval.json").read_text())["step"] == 8


@pytest.mark.parametrize("which", ["²", "٣", "-1", "4.0"])
def test_checkpoint_that_is_no_step_number_is_one_line(scripted_run, tmp_path, capsys, which):
    out = tmp_path / "s.npy"
    argv = ["sample", "--run", str(scripted_run), "--checkpoint", which, "--n", "4", "--out", str(out)]
    assert mnist_cli(argv) == 2
    assert "--checkpoint must be best, latest or a step number" in error_line(capsys)


# ------------------------------------------------------------------ #35.13: a read-only run folder
@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only: by its mode for a user, by a read-only bind mount for root (whom modes do
    not stop); the test is skipped where neither can be had."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for path in modes:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip("a read-only folder for root needs a bind mount, which is not allowed here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_read_only_run_folder_is_refused_before_any_work(mnist_run, copy_of, capsys, monkeypatch):
    run = copy_of(mnist_run)
    before = snapshot(run)
    monkeypatch.setattr(
        "common.run_evaluation.load_classifier", lambda *a, **k: pytest.fail("evaluated before refusing")
    )
    with read_only(run):
        assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "12"]) == 2
        assert "is not writable" in error_line(capsys)
        assert evaluate_main(["--run", str(run), "--no-progress"]) == 2
        assert "is not writable" in error_line(capsys)
    assert snapshot(run) == before


# ------------------------------------- #35.14, #35.20: config.json checked by every command that reads it
@pytest.mark.parametrize(
    "field, value, commands",
    [
        ("batch_size", "x", ["compare", "sample", "resume"]),
        ("noise_dim", "x", ["sample", "evaluate"]),
        ("seed", "x", ["sample"]),
        ("arch", ["notebook"], ["sample", "compare"]),
        ("g_ema_decay", "yes", ["sample", "evaluate"]),
        ("eval_samples", -5, ["sample", "resume", "compare"]),
    ],
)
def test_config_json_with_a_value_of_the_wrong_type_is_one_line_everywhere(
    mnist_run, copy_of, tmp_path, capsys, monkeypatch, field, value, commands
):
    run = copy_of(mnist_run)
    record = json.loads((run / "config.json").read_text())
    record["config"][field] = value
    (run / "config.json").write_text(json.dumps(record))
    before = snapshot(run)
    monkeypatch.setattr(
        "common.run_evaluation.load_classifier", lambda *a, **k: pytest.fail("evaluated before refusing")
    )
    argv = {
        "compare": lambda: compare_main([str(run), "--out", str(tmp_path / "cmp")]),
        "sample": lambda: mnist_cli(["sample", "--run", str(run), "--out", str(tmp_path / "s.npy")]),
        "evaluate": lambda: evaluate_main(["--run", str(run), "--no-progress"]),
        "resume": lambda: mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "12"]),
    }
    for command in commands:
        assert argv[command]() == 2, command
        assert f'config.json is damaged: "{field}": --' in error_line(capsys)
    assert snapshot(run) == before and sorted(os.listdir(tmp_path)) == [run.name]


# --------------------------------------------------------- #35.15: eval.json checked before figures
@pytest.mark.parametrize(
    "content", ['{"generated": {"fid": "abc"}}', '{"step": "x"}', '{"real_floor": [1]}', '{"classifier": 3}']
)
def test_eval_json_with_values_of_the_wrong_type_is_refused_before_anything_is_written(
    mnist_run, copy_of, tmp_path, capsys, content
):
    run = copy_of(mnist_run)
    (run / "eval.json").write_text(content)
    assert compare_main([str(run), "--out", str(tmp_path / "cmp")]) == 2
    assert "eval.json is damaged" in error_line(capsys)
    assert not (tmp_path / "cmp").exists()


def test_history_csv_with_a_cell_that_is_no_number_is_one_line(mnist_run, copy_of, tmp_path, capsys):
    run = copy_of(mnist_run)
    lines = (run / "history.csv").read_text().splitlines()
    lines[2] = "x" + lines[2]
    (run / "history.csv").write_text("\n".join(lines) + "\n")
    before = snapshot(run)
    assert compare_main([str(run), "--out", str(tmp_path / "cmp")]) == 2
    assert "history.csv is damaged: line 3: step is" in error_line(capsys)
    assert mnist_cli(["train", *MNIST, "--out", str(run), "--resume", "--max-steps", "12"]) == 2
    assert "history.csv is damaged: line 3" in error_line(capsys)
    assert snapshot(run) == before and not (tmp_path / "cmp").exists()


# ------------------------------------------------------------------- #35.16: the classifier cache
@pytest.mark.parametrize("damage", ["garbage classifier.json", "wrong types", "truncated checkpoint"])
def test_a_damaged_classifier_cache_names_the_folder_to_delete(
    quick_classifiers, mnist_run, copy_of, tmp_path, capsys, damage
):
    from common.classifier import load_classifier

    with load_classifier("mnist", synthetic_mnist_dir(), progress=False) as classifier:
        folder = classifier.folder
    saved = {path: path.read_bytes() for path in folder.iterdir()}
    try:
        if damage == "garbage classifier.json":
            (folder / "classifier.json").write_bytes(os.urandom(40))
        elif damage == "wrong types":
            record = json.loads((folder / "classifier.json").read_text())
            (folder / "classifier.json").write_text(json.dumps({**record, "image_shape": "28x28"}))
        else:
            truncate(next(folder.glob("classifier.ckpt.data-*")))
        run = copy_of(mnist_run)
        assert evaluate_main(["--run", str(run), "--n", "50", "--no-progress"]) == 2
        assert f"the cached classifier in {folder} is damaged" in error_line(capsys)
        out = tmp_path / "new"
        assert mnist_cli(["train", *MNIST, "--out", str(out), "--eval-every", "2", "--max-steps", "2"]) == 2
        assert "delete that folder, and the next evaluation trains it again" in error_line(capsys)
        assert not out.exists() and not (run / "eval.json").exists()
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


# ---------------------------------------------------------------- #35.21: modes follow the umask
def test_best_and_the_classifier_cache_have_the_modes_of_the_rest(quick_classifiers, scripted_run):
    import stat

    from common.classifier import load_classifier

    umask = os.umask(0)
    os.umask(umask)
    folder_mode = 0o777 & ~umask
    assert stat.S_IMODE((scripted_run / "checkpoints" / "best").stat().st_mode) == folder_mode
    assert stat.S_IMODE((scripted_run / "checkpoints").stat().st_mode) == folder_mode
    with load_classifier("mnist", synthetic_mnist_dir(), progress=False) as classifier:
        assert stat.S_IMODE(classifier.folder.stat().st_mode) == folder_mode
        assert stat.S_IMODE((classifier.folder / "classifier.json").stat().st_mode) == 0o666 & ~umask
