"""dcgan_cifar: the CIFAR generator, --class on the real horse subset, and train / sample / resume."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from common.cli import build_parser, config_flags, resolve_train_config
from common.config import RECIPES, Config
from common.data import CIFAR10_CLASSES, DataError, load_cifar10, resolve_cifar_class
from common.flops import parameter_counts
from common.layers import Layers, SeedStream
from common.rundir import RunDir
from common.step import call_network
from dcgan_cifar import model
from dcgan_cifar.__main__ import MODULE, cli, load_training_images
from tests.conftest import (
    SHARED_DATA,
    SYNTHETIC_TRAIN,
    notebook_parameters,
    synthetic_cifar_dir,
    synthetic_horse_dir,
    tar_cifar10,
    write_cifar10,
)

v1 = tf.compat.v1
HORSE_DIR = SHARED_DATA / "cifar10-horse"
needs_horses = pytest.mark.skipif(
    not (HORSE_DIR / "cifar-10-batches-py").is_dir(),
    reason="real CIFAR-10 horse subset ../shared/data/cifar10-horse is not beside the repository",
)
FAST = ["--data-dir", str(HORSE_DIR), "--batch-size", "16", "--no-progress"]
# The mechanics (train, sample, resume) run on synthetic CIFAR-10 pickles, so a fresh clone runs them.
SYNTHETIC = ["--data-dir", synthetic_cifar_dir(), "--batch-size", "16", "--no-progress"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


# ------------------------------------------------------------------------------------------- the model
def test_networks_shapes_and_parameters():
    assert model.SPEC.image_shape == (32, 32, 3) and model.DATASETS == ("cifar10",)
    config = Config(dataset="cifar10")
    graph = tf.Graph()
    with graph.as_default():
        noise = v1.placeholder(tf.float32, [None, config.noise_dim])
        layers = Layers(seeds=SeedStream(tf.constant([0, 1], tf.int64)))
        images = call_network(model.generator, "generator", False, noise, True, config, layers)
        logits = call_network(model.discriminator, "discriminator", False, images, True, config, layers)
        assert images.shape.as_list() == [None, 32, 32, 3]
        assert logits.shape.as_list() == [None, 1]
        assert parameter_counts() == notebook_parameters(3)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            out = sess.run(images, {noise: np.random.default_rng(0).uniform(-1, 1, (2, 100))})
    assert out.shape == (2, 32, 32, 3) and np.abs(out).max() <= 1.0


# ------------------------------------------------------------------------------------ --class and data
@pytest.mark.parametrize(
    "text, label", [("horse", 7), ("7", 7), ("Cat", 3), ("0", 0), ("truck", 9), (None, None)]
)
def test_class_flag_names_and_labels(text, label):
    args = build_parser(MODULE).parse_args(["train"] + ([] if text is None else ["--class", text]))
    assert config_flags(args, MODULE)["class_label"] == label


@pytest.mark.parametrize("text", ["unicorn", "10", "-1", "7.0", ""])
def test_unknown_class_exits_2_and_writes_nothing(tmp_path, capsys, text):
    out = tmp_path / "run"
    assert cli(["train", *FAST, "--class", text, "--out", str(out)]) == 2
    assert "CIFAR-10 class" in error_line(capsys)
    assert not out.exists()


def test_default_class_and_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = build_parser(MODULE)
    _, config, run = resolve_train_config(parser.parse_args(["train"]), MODULE)
    assert (config.dataset, config.class_label, config.out) == ("cifar10", 7, "runs/cifar10-horse")
    assert (config.epochs, config.grid_size, config.batch_size) == (50, 15, 64)
    _, config, _ = resolve_train_config(parser.parse_args(["train", "--class", "3"]), MODULE)
    assert (config.class_label, config.out) == (3, "runs/cifar10-cat")
    assert not (tmp_path / "runs").exists()  # resolving writes nothing


def test_improved_recipe_keeps_the_discriminators_dropout_on_cifar(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    parser = build_parser(MODULE)
    _, config, _ = resolve_train_config(parser.parse_args(["train", "--recipe", "improved"]), MODULE)
    assert (config.recipe, config.g_ema_decay, config.g_keep_prob) == ("improved", 0.999, 1.0)
    assert config.keep_prob == Config().keep_prob == 0.8 != RECIPES["improved"]["keep_prob"]
    assert config.info_codes == 0 != RECIPES["improved"]["info_codes"]  # measured on MNIST's digits only
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert "keep_prob=0.8" in " ".join(capsys.readouterr().out.split())  # the help says what it does here
    _, config, _ = resolve_train_config(
        parser.parse_args(["train", "--recipe", "improved", "--keep-prob", "1.0"]), MODULE
    )
    assert config.keep_prob == 1.0  # a flag beside the recipe still wins


@needs_horses
def test_class_filter_on_the_mixed_test_batch():
    everything = load_cifar10("test", HORSE_DIR, download=False)
    horses = load_cifar10("test", HORSE_DIR, download=False, label=7)
    assert len(horses) == 1000 and set(horses.labels.tolist()) == {7}
    np.testing.assert_array_equal(horses.images, everything.images[everything.labels == 7])
    assert len(everything) > len(horses) and len(set(everything.labels.tolist())) == 10
    cats = load_cifar10("test", HORSE_DIR, download=False, label=3)
    np.testing.assert_array_equal(cats.images, everything.images[everything.labels == 3])
    # The training data of a run is the train split of its class.
    train = load_training_images(Config(dataset="cifar10", class_label=7, data_dir=str(HORSE_DIR)))
    assert train.images.shape == (5000, 32, 32, 3) and train.images.dtype == np.uint8
    assert CIFAR10_CLASSES[7] == "horse"


def test_a_class_missing_from_the_data_exits_2(tmp_path, capsys):
    # Training batches of horses only, like the shared subset's (conftest's synthetic copy of its layout).
    horses_only = synthetic_horse_dir()
    out = tmp_path / "run"
    argv = ["train", "--data-dir", horses_only, "--batch-size", "16", "--no-progress"]
    assert cli([*argv, "--class", "cat", "--out", str(out)]) == 2
    assert "no cat images" in error_line(capsys)
    assert not out.exists()
    with pytest.raises(DataError):
        load_training_images(Config(dataset="cifar10", class_label=3, data_dir=horses_only))


# ------------------------------------------------------------------------------ train, sample, resume
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar") / "run"
    argv = [
        "train",
        *SYNTHETIC,
        "--out",
        str(out),
        "--max-steps",
        "6",
        "--log-every",
        "2",
        "--sample-every",
        "3",
    ]
    assert cli([*argv, "--checkpoint-every", "3", "--seed", "5"]) == 0
    return out


def test_train_writes_a_cifar_run(trained):
    run = RunDir(trained)
    record = json.loads(run.config.read_text())
    config = record["config"]
    assert (config["dataset"], config["class_label"], config["arch"]) == ("cifar10", 7, "notebook")
    assert (config["epochs"], config["grid_size"], config["batch_size"]) == (50, 15, 16)
    horses = SYNTHETIC_TRAIN // 2 // 10 * 5  # a tenth of each of the five synthetic training batches
    assert record["data"]["images"] == horses and record["steps_per_epoch"] == horses // 16
    assert record["architecture"]["image_shape"] == [32, 32, 3]
    assert record["architecture"]["parameters"] == notebook_parameters(3)
    steps = [row["step"] for row in run.read_history()]
    assert steps == [2, 4, 6]
    assert all(np.isfinite(list(row.values())).all() for row in run.read_history())
    assert [p.name for p in run.sample_grids()] == ["step_000000.png", "step_000003.png", "step_000006.png"]
    from PIL import Image

    grid = Image.open(run.sample_grids()[-1])
    assert grid.mode == "RGB"  # 15 images: 4 columns x 4 rows of 32 + 1-pixel gaps, upscaled 3x
    assert grid.size == (3 * (4 * 33 + 1), 3 * (4 * 33 + 1))
    assert run.latest_checkpoint().endswith("model.ckpt-6")


def test_sample_npy_and_png(trained, tmp_path):
    npy = tmp_path / "s.npy"
    assert cli(["sample", "--run", str(trained), "--n", "7", "--out", str(npy), "--seed", "2"]) == 0
    images = np.load(npy)
    assert images.shape == (7, 32, 32, 3) and images.dtype == np.uint8
    assert images.std() > 0
    png = tmp_path / "grid.png"
    assert cli(["sample", "--run", str(trained), "--n", "4", "--out", str(png)]) == 0
    assert png.stat().st_size > 0


@pytest.mark.parametrize("flags", [["--class", "cat"], ["--class", "3"], ["--class", "0"]])
def test_resume_with_another_class_is_refused(trained, capsys, flags):
    before = sorted(p.name for p in (trained / "checkpoints").iterdir())
    rows = RunDir(trained).read_history()
    assert cli(["train", *SYNTHETIC, "--out", str(trained), "--resume", *flags]) == 2
    message = error_line(capsys)
    assert "different architecture" in message and "class_label is 7" in message
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == before
    assert RunDir(trained).read_history() == rows


def test_resume_with_the_same_class(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    assert (
        cli(["train", *SYNTHETIC, "--out", str(out), "--resume", "--class", "horse", "--max-steps", "8"]) == 0
    )
    record = json.loads(RunDir(out).config.read_text())
    assert record["config"]["class_label"] == 7 and record["resumed"][0].endswith("model.ckpt-6")
    assert [row["step"] for row in RunDir(out).read_history()] == [2, 4, 6, 8]


# --------------------------------------------------------------- any class, from a full-format CIFAR-10
@pytest.fixture(scope="module")
def full_cifar(tmp_path_factory):
    """A tiny synthetic CIFAR-10 with all ten classes (3 per class per training batch), as the
    cifar-10-batches-py folder and as the official tar.gz."""
    root = tmp_path_factory.mktemp("full")
    written = write_cifar10(root / "folder", per_class=3, test_per_class=2)
    tar_cifar10(root / "folder", root / "archive" / "cifar-10-python.tar.gz")
    return root, written


@pytest.mark.parametrize("layout", ["folder", "archive"])
@pytest.mark.parametrize("name, label", [("cat", 3), ("airplane", 0), ("9", 9), ("horse", 7)])
def test_any_class_is_selected_from_the_full_data_set(full_cifar, isolated_home, layout, name, label):
    root, written = full_cifar
    config = Config(dataset="cifar10", class_label=resolve_cifar_class(name))
    train = load_training_images(config.replace(data_dir=str(root / layout)))
    expected = np.concatenate(
        [images[labels == label] for images, labels in (written[f"data_batch_{i}"] for i in range(1, 6))]
    )
    assert train.images.shape == (15, 32, 32, 3) and set(train.labels.tolist()) == {label}
    np.testing.assert_array_equal(train.images, expected)  # the batches' order, pixels exact
    test = load_cifar10("test", root / layout, download=False, label=label)
    np.testing.assert_array_equal(test.images, written["test_batch"][0][written["test_batch"][1] == label])


def test_class_cat_trains_into_runs_cifar10_cat(full_cifar, isolated_home, tmp_path, monkeypatch):
    root, _ = full_cifar
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data-dir", str(root / "archive"), "--class", "cat", "--batch-size", "4"]
    assert cli([*argv, "--max-steps", "2", "--no-progress"]) == 0
    run = RunDir(tmp_path / "runs" / "cifar10-cat")
    record = json.loads(run.config.read_text())
    assert record["config"]["class_label"] == 3 and record["config"]["out"] == "runs/cifar10-cat"
    assert record["data"]["images"] == 15 and record["data"]["source"].endswith("cifar-10-python.tar.gz")
    assert run.latest_checkpoint().endswith("model.ckpt-2")
