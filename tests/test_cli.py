"""The command line: bad input exits 2 with one line and writes nothing; sample; the console script."""

import csv
import gzip
import json
import shutil

import numpy as np
import pytest

import common.speed
from common.rundir import RunDir
from common.speed import resolve_precision
from common.train import gpu_visible
from dcgan_mnist.__main__ import cli
from tests.conftest import run_module, run_python, synthetic_mnist_dir

MNIST_DIR = synthetic_mnist_dir()
FAST = ["--data-dir", MNIST_DIR, "--batch-size", "16", "--no-progress"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1
    assert "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli(["train", *FAST, "--out", str(out), "--max-steps", "12", "--checkpoint-every", "12"]) == 0
    return out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--max-steps", "0"], "--max-steps must be at least 1"),
        (["--keep-prob", "0"], "--keep-prob must be in (0, 1]"),
        (["--batch-size", "1000"], "larger than the data set"),
    ],
)
def test_bad_settings_exit_2_and_write_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert cli(["train", "--data-dir", MNIST_DIR, "--no-progress", "--out", str(out), *flags]) == 2
    assert message in error_line(capsys)
    assert not out.exists()


def test_unknown_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["train", "--no-such-flag"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in error_line(capsys)


def test_out_dir_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli(["train", "--out", str(target)]) == 2
    assert "not a directory" in error_line(capsys)
    assert cli(["train", "--out", str(target / "below")]) == 2
    assert "not a directory" in error_line(capsys)


def test_out_dir_not_writable(capsys):
    # /proc refuses new files even to root, unlike a chmod-ed folder.
    assert cli(["train", "--out", "/proc/dcgan-run"]) == 2
    assert "not writable" in error_line(capsys)


def test_missing_data_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "no-mirror").as_uri())
    monkeypatch.delenv("KERAS_HOME", raising=False)
    out = tmp_path / "run"
    assert cli(["train", "--data-dir", str(tmp_path / "empty"), "--out", str(out), "--no-progress"]) == 2
    assert "mnist" in error_line(capsys).lower()
    assert not out.exists()


def test_corrupt_data_exits_2(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (data / name).write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20)[:-6])  # truncated gzip
    out = tmp_path / "run"
    assert cli(["train", "--data-dir", str(data), "--out", str(out), "--no-progress"]) == 2
    assert error_line(capsys)
    assert not out.exists()


def test_existing_run_needs_resume(trained, capsys):
    assert cli(["train", *FAST, "--out", str(trained), "--max-steps", "20"]) == 2
    assert "--resume" in error_line(capsys)


def test_resume_without_checkpoint(tmp_path, capsys):
    assert cli(["train", *FAST, "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "no run" in error_line(capsys)
    # A run killed (kill -9) before its first checkpoint: --resume starts it again from step 0.
    run = tmp_path / "no-ckpt"
    flags = ["--out", str(run), "--max-steps", "4", "--log-every", "2", "--checkpoint-every", "4"]
    assert cli(["train", *FAST, *flags]) == 0
    shutil.rmtree(run / "checkpoints")
    assert cli(["train", *FAST, "--out", str(run), "--resume"]) == 0
    assert "starting the run from step 0" in capsys.readouterr().err
    assert [row["step"] for row in RunDir(run).read_history()] == [2, 4]
    assert RunDir(run).latest_checkpoint().endswith("model.ckpt-4")


@pytest.mark.parametrize(
    "flags", [["--noise-dim", "50"], ["--quirks", "original"], ["--dataset", "fashion_mnist"]]
)
def test_resume_with_a_different_architecture(trained, capsys, flags):
    before = sorted(p.name for p in (trained / "checkpoints").iterdir())
    assert cli(["train", *FAST, "--out", str(trained), "--resume", *flags]) == 2
    assert "different architecture" in error_line(capsys)
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == before


def test_sample_png_and_npy(trained, tmp_path):
    npy = tmp_path / "s.npy"
    assert cli(["sample", "--run", str(trained), "--n", "10", "--out", str(npy), "--seed", "1"]) == 0
    images = np.load(npy)
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    again = tmp_path / "again.npy"
    assert cli(["sample", "--run", str(trained), "--n", "10", "--out", str(again), "--seed", "1"]) == 0
    np.testing.assert_array_equal(images, np.load(again))
    png = tmp_path / "grid.png"
    assert cli(["sample", "--run", str(trained), "--n", "16", "--out", str(png)]) == 0
    from PIL import Image

    assert Image.open(png).size == (3 * (4 * 29 + 1),) * 2


@pytest.mark.parametrize(
    "args, message",
    [(["--n", "0"], "--n must be at least 1"), (["--out", "x.jpg"], ".png"), (["--seed", "-3"], "--seed")],
)
def test_sample_bad_input(trained, tmp_path, capsys, args, message):
    argv = ["sample", "--run", str(trained), "--out", str(tmp_path / "s.npy"), *args]
    assert cli(argv) == 2
    assert message in error_line(capsys)


def test_sample_from_a_folder_that_is_no_run(tmp_path, capsys):
    assert cli(["sample", "--run", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 2
    assert "not a run directory" in error_line(capsys)


def test_sampler_reads_the_trained_weights(trained, tmp_path):
    # Different seeds give different images; the checkpoint is the one the run wrote last.
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    cli(["sample", "--run", str(trained), "--n", "4", "--out", str(a), "--seed", "1"])
    cli(["sample", "--run", str(trained), "--n", "4", "--out", str(b), "--seed", "2"])
    assert not np.array_equal(np.load(a), np.load(b))
    assert RunDir(trained).latest_checkpoint().endswith("-12")


def test_console_script_and_module_run_without_traceback(tmp_path):
    flags = ["--batch-size", "0", "--out", str(tmp_path / "r")]
    result = run_module("dcgan_mnist", "train", *flags, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("dcgan_mnist")]
    assert lines == ["dcgan_mnist: error: --batch-size must be at least 1, got 0"]
    assert "Traceback" not in result.stderr


def test_precision_is_resolved_recorded_and_kept_on_resume(tmp_path, trained):
    chosen = json.loads((trained / "config.json").read_text())
    assert chosen["config"]["precision"] == resolve_precision("auto", gpu_visible())  # what auto chose
    assert chosen["session"].startswith(chosen["config"]["precision"])
    out = tmp_path / "run"
    flags = ["--out", str(out), "--max-steps", "4", "--checkpoint-every", "4", "--precision", "float32"]
    assert cli(["train", *FAST, *flags]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["precision"] == "float32"
    # A run from before --precision trained in float32: it resumes in float32, whatever auto would pick.
    del record["config"]["precision"]
    (out / "config.json").write_text(json.dumps(record))
    assert cli(["train", *FAST, "--out", str(out), "--resume", "--max-steps", "6"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["precision"] == "float32"


def test_bfloat16_on_a_cpu_without_it_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(common.speed, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    out = tmp_path / "run"
    assert cli(["train", *FAST, "--out", str(out), "--precision", "bfloat16"]) == 2
    assert "AMX or AVX-512-BF16" in error_line(capsys)
    assert not out.exists()


def test_onednn_kernels_are_on_unless_the_user_says_0_and_train_the_same_math(tmp_path):
    """common turns TensorFlow's oneDNN kernels on before TensorFlow loads (TensorFlow leaves them off on
    AVX2-only CPUs, where they made the step 2.1x faster); TF_ENABLE_ONEDNN_OPTS=0 is kept; config.json says
    which ran; the first step's losses agree with both to float32 rounding (another summation order)."""
    first_losses = {}
    for setting in (None, "0"):
        out = tmp_path / f"onednn-{setting}"
        flags = [*FAST, "--precision", "float32", "--max-steps", "1", "--out", str(out)]
        result = run_module(
            "dcgan_mnist", "train", *flags, cwd=tmp_path, env={"TF_ENABLE_ONEDNN_OPTS": setting}
        )
        assert result.returncode == 0, result.stderr[-2000:]
        session = json.loads((out / "config.json").read_text())["session"]
        assert session.endswith("oneDNN kernels " + ("off" if setting == "0" else "on"))
        with open(out / "history.csv") as f:
            first_losses[setting] = [(float(r["d_loss"]), float(r["g_loss"])) for r in csv.DictReader(f)]
    assert len(first_losses["0"]) == 1
    np.testing.assert_allclose(first_losses[None], first_losses["0"], rtol=1e-3)
    # The benchmarks import TensorFlow before common in every module: their package sees to it first.
    probe = "import benchmarks.time_to_quality; from common.speed import onednn_enabled as on; print(on())"
    result = run_python("-c", probe, cwd=tmp_path, env={"TF_ENABLE_ONEDNN_OPTS": None})
    assert result.returncode == 0 and result.stdout.split()[-1] == "True", result.stderr[-2000:]


# TensorFlow's start-up chatter: what a CPU-only machine printed on every start (common.quiet).
STARTUP_NOISE = (
    "failed call to cuInit",
    "oneDNN custom operations",
    "cuda drivers",
    "Instructions for updating",
)


def test_a_run_prints_one_line_per_fact_and_tensorflows_own_lines_only_with_verbose(tmp_path):
    from tests.conftest import run_module, synthetic_mnist_dir

    argv = ["dcgan_mnist", "train", "--data-dir", synthetic_mnist_dir(), "--max-steps", "3",
            "--batch-size", "8", "--checkpoint-every", "1", "--keep-checkpoints", "1",
            "--no-progress"]  # fmt: skip
    quiet = run_module(
        *argv, "--out", str(tmp_path / "quiet"), cwd=tmp_path, env={"TF_CPP_MIN_LOG_LEVEL": None}
    )
    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if any(s in line for s in STARTUP_NOISE)]
    assert len((quiet.stdout + quiet.stderr).strip().splitlines()) == 2  # what it trains, what it did
    loud = run_module(*argv, "--out", str(tmp_path / "loud"), "--verbose", cwd=tmp_path)
    assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr
