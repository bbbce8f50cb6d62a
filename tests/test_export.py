"""`export`: a run's sampler as a SavedModel that a Python without the project loads and serves, whose
`sample` signature gives `sample`'s images bit for bit; refusals, and the atomic write."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common.rundir import RunDir
from dcgan_cifar.__main__ import cli as cifar_cli
from dcgan_mnist.__main__ import cli as mnist_cli
from tests.conftest import REPO, run_module, synthetic_horse_dir, synthetic_mnist_dir

MNIST = ["--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress", "--eval-every", "0"]
CIFAR = ["--data-dir", synthetic_horse_dir(), "--batch-size", "16", "--no-progress", "--eval-every", "0"]

# Run in a fresh interpreter that cannot import the project: -I drops PYTHONPATH, the current folder and
# the user's site; the editable install's finder (pip install -e) is taken off sys.meta_path first.
LOADER = textwrap.dedent(
    """
    import importlib.util, json, sys
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")
                        and "__editable__" not in type(f).__module__]
    sys.path[:] = [p for p in sys.path if "__editable__" not in p]
    for package in ("common", "dcgan_mnist", "dcgan_cifar", "tests"):
        assert importlib.util.find_spec(package) is None, f"{package} is importable"
    import numpy as np
    import tensorflow as tf

    model_dir, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    model = tf.saved_model.load(model_dir)
    sample, generate = model.signatures["sample"], model.signatures["generate"]
    images = sample(n=tf.constant(n), seed=tf.constant(seed))["images"]
    width = generate.structured_input_signature[1]["z"].shape[1]
    z = np.random.default_rng(0).uniform(-1, 1, (3, width)).astype(np.float32)
    generated = generate(z=tf.constant(z))["images"]
    np.savez(out, sample=images.numpy(), generated=generated.numpy(), z=z)

    def spec(function):
        inputs = function.structured_input_signature[1]
        return {
            "inputs": {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None]
                       for k, v in inputs.items()},
            "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in function.structured_outputs.items()},
        }

    print(json.dumps({name: spec(model.signatures[name]) for name in model.signatures}))
    """
)


def load_without_project(tmp_path: Path, model: Path, n: int, seed: int) -> tuple[dict, dict]:
    script, out = tmp_path / "load.py", tmp_path / f"loaded-{model.name}.npz"
    script.write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    done = subprocess.run(
        [sys.executable, "-I", str(script), str(model), str(n), str(seed), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # outside the repository
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as arrays:
        return json.loads(done.stdout.strip().splitlines()[-1]), dict(arrays)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny MNIST run with a categorical code (uniform noise: numpy's noise, in the graph), and a tiny
    CIFAR run that samples a weight average with normal noise (TensorFlow's stateless normal)."""
    root = tmp_path_factory.mktemp("export")
    mnist, cifar = root / "mnist", root / "cifar"
    assert mnist_cli(["train", *MNIST, "--out", str(mnist), "--max-steps", "3", "--info-codes", "10"]) == 0
    common = ["--max-steps", "3", "--g-ema-decay", "0.9", "--noise", "normal"]
    assert cifar_cli(["train", *CIFAR, "--out", str(cifar), *common]) == 0
    return mnist, cifar


def test_sample_signature_gives_the_sample_commands_images_in_a_python_without_the_project(
    runs, tmp_path, capsys
):
    mnist, cifar = runs
    cases = [(mnist_cli, mnist, 1001, 7, (28, 28, 1), 110), (cifar_cli, cifar, 5, 3, (32, 32, 3), 100)]
    for cli, run, n, seed, shape, width in cases:
        model = tmp_path / f"{run.name}-model"
        assert cli(["export", "--run", str(run), "--out", str(model)]) == 0
        assert "signatures generate" in capsys.readouterr().out
        expected = tmp_path / f"{run.name}.npy"
        assert (
            cli(["sample", "--run", str(run), "--n", str(n), "--seed", str(seed), "--out", str(expected)])
            == 0
        )
        signatures, arrays = load_without_project(tmp_path, model, n, seed)
        # n = 1001: two batches of the generator (1000 + 1), as `sample` runs them
        np.testing.assert_array_equal(arrays["sample"], np.load(expected))
        assert arrays["sample"].dtype == np.uint8 and arrays["sample"].shape == (n, *shape)
        assert arrays["generated"].dtype == np.uint8 and arrays["generated"].shape == (3, *shape)
        assert signatures["generate"] == {
            "inputs": {"z": ["float32", [None, width]]},
            "outputs": {"images": ["uint8", [None, *shape]]},
        }
        assert signatures["sample"] == {
            "inputs": {"n": ["int32", []], "seed": ["int32", []]},
            "outputs": {"images": ["uint8", [None, *shape]]},
        }
        info = json.loads((model / "assets.extra" / "dcgan.json").read_text())
        assert info["latent_dim"] == width and info["step"] == 3
        assert info["weights"] == ("average" if run == cifar else "live")
        assert info["sampler_stats"] == "recalibrated"


def test_generate_signature_is_the_samplers_images_of_z(runs, tmp_path):
    """`generate` on given z is the recalibrated sampler's image of that z (the project's Generator)."""
    from common.modules import open_run
    from common.sampling import Generator, weights_config

    mnist, _ = runs
    model = tmp_path / "model"
    assert mnist_cli(["export", "--run", str(mnist), "--out", str(model)]) == 0
    _, arrays = load_without_project(tmp_path, model, 2, 0)
    _, config, spec = open_run(RunDir(mnist), None, "test")
    with Generator.from_run(RunDir(mnist), spec, weights_config(config, None)[0]) as generator:
        np.testing.assert_array_equal(generator.images(arrays["z"]), arrays["generated"])


def test_saved_model_cli_lists_both_signatures(runs, tmp_path):
    cli_path = Path(sys.executable).parent / "saved_model_cli"
    if not cli_path.exists():
        pytest.skip("saved_model_cli is not installed beside this Python")
    model = tmp_path / "model"
    assert mnist_cli(["export", "--run", str(runs[0]), "--out", str(model)]) == 0
    shown = subprocess.run(
        [str(cli_path), "show", "--dir", str(model), "--all"], capture_output=True, text=True, check=True
    ).stdout
    for line in (
        "signature_def['generate']",
        "signature_def['sample']",
        "inputs['z'] tensor_info:",
        "inputs['n'] tensor_info:",
        "inputs['seed'] tensor_info:",
        "dtype: DT_UINT8",
        "shape: (-1, 110)",
        "shape: (-1, 28, 28, 1)",
    ):
        assert line in shown, line


def test_the_sample_signature_refuses_bad_inputs(runs, tmp_path):
    model = tmp_path / "model"
    assert mnist_cli(["export", "--run", str(runs[0]), "--out", str(model)]) == 0
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        meta = tf.compat.v1.saved_model.load(sess, ["serve"], str(model))
        signature = meta.signature_def["sample"]
        feeds = {name: signature.inputs[name].name for name in ("n", "seed")}
        images = signature.outputs["images"].name
        for n, seed, message in ((0, 1, "n must be at least 1"), (100_001, 1, "at most"), (2, -1, "non-neg")):
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                sess.run(images, {feeds["n"]: n, feeds["seed"]: seed})


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_a_run_without_a_restorable_checkpoint_is_refused_in_one_line(runs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(runs[0] / "config.json", empty / "config.json")
    model = tmp_path / "model"
    assert mnist_cli(["export", "--run", str(empty), "--out", str(model)]) == 2
    assert "has no checkpoint" in one_line_error(capsys)
    damaged = tmp_path / "damaged"
    shutil.copytree(runs[0], damaged)
    for data in (damaged / "checkpoints").glob("model.ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    assert mnist_cli(["export", "--run", str(damaged), "--out", str(model)]) == 2
    assert "no checkpoint in" in one_line_error(capsys)
    assert not model.exists()
    assert mnist_cli(["export", "--run", str(tmp_path / "nothing"), "--out", str(model)]) == 2
    assert not model.exists()


def test_an_existing_folder_is_not_overwritten_and_the_other_modules_run_is_refused(runs, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    assert mnist_cli(["export", "--run", str(runs[0]), "--out", str(taken)]) == 2
    assert "exists and is not an empty folder" in one_line_error(capsys)
    assert os.listdir(taken) == ["keep.txt"]
    assert mnist_cli(["export", "--run", str(runs[1]), "--out", str(tmp_path / "m")]) == 2
    assert "python -m dcgan_cifar export" in one_line_error(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mnist_cli(["export", "--run", str(runs[0]), "--out", str(empty)]) == 0  # an empty folder is taken
    assert (empty / "saved_model.pb").exists()


def test_a_failed_export_leaves_no_folder_and_no_temporary_files(runs, tmp_path, monkeypatch, capsys):
    def fail(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.compat.v1.saved_model.Builder, "save", fail)
    with pytest.raises(OSError):
        mnist_cli(["export", "--run", str(runs[0]), "--out", str(tmp_path / "model")])
    assert os.listdir(tmp_path) == []


def test_a_killed_export_leaves_no_half_folder(runs, tmp_path):
    """kill -9 while the SavedModel is being written: the destination is absent, or whole."""
    model = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "dcgan_mnist", "export", "--run", str(runs[0]), "--out", str(model)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".model.*.export/model/variables")) and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if model.exists():  # it finished first: then it is whole
        assert (model / "saved_model.pb").exists() and (model / "assets.extra" / "dcgan.json").exists()
    else:
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".model.")] == []
    # the same command then writes it
    done = run_module("dcgan_mnist", "export", "--run", str(runs[0]), "--out", str(model), cwd=tmp_path)
    assert done.returncode == 0 or "exists" in done.stderr, done.stderr[-2000:]
    assert (model / "saved_model.pb").exists()
    assert not list(tmp_path.glob(".model.*"))  # the killed export's temporary folder is gone too


def test_a_run_with_the_notebooks_dropout_at_sampling_is_refused(runs, tmp_path, capsys):
    """--quirks original samples with dropout on: no sampler without dropout gives its images. (Its
    config.json is written by hand: `train --quirks original` itself fails on main at the FLOP count.)"""
    run = tmp_path / "quirky"
    shutil.copytree(runs[0], run)
    record = json.loads((run / "config.json").read_text())
    record["config"]["quirks"] = "original"
    (run / "config.json").write_text(json.dumps(record))
    assert mnist_cli(["export", "--run", str(run), "--out", str(tmp_path / "model")]) == 2
    assert "dropout on" in one_line_error(capsys)
    assert not (tmp_path / "model").exists()
