"""The four other write-ups' GANs (dcgan_mnist/architectures.py): layers, defaults, steps, exact resume."""

import json

import numpy as np
import pytest
import tensorflow as tf

from common.cli import build_parser, resolve_train_config
from common.config import Config
from common.flops import parameter_counts
from common.ingredients import learning_rate
from common.layers import Layers
from common.losses import gan_losses
from common.rundir import RunDir
from common.step import call_network
from common.train import build_training_graph
from dcgan_mnist.__main__ import ARCHITECTURES, MODULE, cli
from tests.conftest import assert_same_run, history, synthetic_mnist_dir

v1 = tf.compat.v1
NEW = ("tf_tutorial", "keras_mlp", "pyimagesearch", "tf2_minimal")


def dense_params(inputs: int, units: int, bias: bool = True) -> int:
    return inputs * units + (units if bias else 0)


def conv_params(kernel: int, channels_in: int, filters: int, bias: bool = True) -> int:
    return kernel * kernel * channels_in * filters + (filters if bias else 0)


def bn_params(channels: int) -> int:
    return 2 * channels  # gamma and beta (the moving statistics are not trainable)


# Trainable parameters from the layer shapes; the Keras summaries of the tutorial agree
# (generator 2,305,472 trainable, discriminator 212,865).
EXPECTED_PARAMETERS = {
    "tf_tutorial": {
        "generator": dense_params(100, 7 * 7 * 256, bias=False)
        + bn_params(7 * 7 * 256)  # BN on the flat dense output, before the reshape
        + conv_params(5, 256, 128, bias=False)
        + bn_params(128)
        + conv_params(5, 128, 64, bias=False)
        + bn_params(64)
        + conv_params(5, 64, 1, bias=False),
        "discriminator": conv_params(5, 1, 64) + conv_params(5, 64, 128) + dense_params(7 * 7 * 128, 1),
    },
    "keras_mlp": {
        "generator": dense_params(100, 256)
        + dense_params(256, 512)
        + dense_params(512, 1024)
        + dense_params(1024, 784),
        "discriminator": dense_params(784, 1024)
        + dense_params(1024, 512)
        + dense_params(512, 256)
        + dense_params(256, 1),
    },
    "pyimagesearch": {
        "generator": dense_params(100, 512)
        + bn_params(512)
        + dense_params(512, 7 * 7 * 64)
        + bn_params(7 * 7 * 64)
        + conv_params(5, 64, 32)
        + bn_params(32)
        + conv_params(5, 32, 1),
        "discriminator": conv_params(5, 1, 32)
        + conv_params(5, 32, 64)
        + dense_params(7 * 7 * 64, 512)
        + dense_params(512, 1),
    },
    "tf2_minimal": {
        "generator": dense_params(100, 3 * 3 * 512)
        + conv_params(3, 512, 256)
        + bn_params(256)
        + conv_params(2, 256, 128)
        + bn_params(128)
        + conv_params(2, 128, 64)
        + conv_params(1, 64, 1),  # the per-pixel dense
        "discriminator": conv_params(4, 1, 64)
        + bn_params(64)
        + conv_params(4, 64, 128)
        + bn_params(128)
        + conv_params(4, 128, 256)
        + dense_params(256, 1),
    },
}

# The output of each matrix layer (dense: MatMul, conv: Conv2D, transposed conv: Conv2DBackpropInput),
# per image, in the order the networks are built: generator, then discriminator.
M, C, T = "MatMul", "Conv2D", "Conv2DBackpropInput"
EXPECTED_LAYERS = {
    "tf_tutorial": [
        (M, [12544]), (T, [7, 7, 128]), (T, [14, 14, 64]), (T, [28, 28, 1]),
        (C, [14, 14, 64]), (C, [7, 7, 128]), (M, [1]),
    ],
    "keras_mlp": [
        (M, [256]), (M, [512]), (M, [1024]), (M, [784]),
        (M, [1024]), (M, [512]), (M, [256]), (M, [1]),
    ],
    "pyimagesearch": [
        (M, [512]), (M, [3136]), (T, [14, 14, 32]), (T, [28, 28, 1]),
        (C, [14, 14, 32]), (C, [7, 7, 64]), (M, [512]), (M, [1]),
    ],
    "tf2_minimal": [
        (M, [4608]), (T, [7, 7, 256]), (T, [14, 14, 128]), (T, [28, 28, 64]), (C, [28, 28, 1]),
        (C, [13, 13, 64]), (C, [4, 4, 128]), (C, [1, 1, 256]), (M, [1]),
    ],
}  # fmt: skip

# What the issue states for each write-up, as resolved settings.
EXPECTED_SETTINGS = {
    "tf_tutorial": {
        "dataset": "mnist", "batch_size": 256, "epochs": 50, "learning_rate": 1e-4, "beta1": 0.9,
        "noise": "normal", "noise_dim": 100, "label_smoothing": 0.0, "lrelu_alpha": 0.3, "keep_prob": 0.7,
        "grid_size": 16, "checkpoint_every": 15 * (60000 // 256), "lr_decay": "constant",
    },
    "keras_mlp": {
        "dataset": "mnist", "batch_size": 64, "epochs": 100, "learning_rate": 2e-4, "beta1": 0.5,
        "noise": "normal", "noise_dim": 100, "label_smoothing": 0.1, "keep_prob": 0.8, "grid_size": 100,
        "sample_every": 20 * (60000 // 64), "lr_decay": "constant",
    },
    "pyimagesearch": {
        "dataset": "fashion_mnist", "batch_size": 128, "epochs": 50, "learning_rate": 2e-4, "beta1": 0.5,
        "noise": "uniform", "noise_dim": 100, "label_smoothing": 0.0, "lrelu_alpha": 0.2,
        "lr_decay": "inverse_time",
    },
    "tf2_minimal": {
        "dataset": "mnist", "batch_size": 256, "epochs": 10, "learning_rate": 1e-4, "beta1": 0.9,
        "noise": "normal", "label_smoothing": 0.0, "lr_decay": "constant",
    },
}  # fmt: skip
EXPECTED_STEP = {
    "tf_tutorial": ("simultaneous", "separate", 1),
    "keras_mlp": ("d_then_g", "concat", 2),
    "pyimagesearch": ("d_then_g", "concat", 1),
    "tf2_minimal": ("simultaneous", "separate", 1),
}


def test_all_five_are_registered_and_on_the_command_line():
    assert set(ARCHITECTURES) == {"notebook", *NEW}
    for name in NEW:
        assert ARCHITECTURES[name].name == name
        args = build_parser(MODULE).parse_args(["train", "--arch", name])
        assert args.arch == name


@pytest.mark.parametrize("name", NEW)
def test_defaults_are_the_write_ups(name, tmp_path):
    out = tmp_path / "run"
    args = build_parser(MODULE).parse_args(["train", "--arch", name, "--out", str(out)])
    spec, config, _ = resolve_train_config(args, MODULE)
    assert spec is ARCHITECTURES[name] and config.arch == name
    for field, value in EXPECTED_SETTINGS[name].items():
        assert getattr(config, field) == value, field
    assert (spec.schedule, spec.d_batches, spec.g_noise_batches) == EXPECTED_STEP[name]
    assert not spec.smooth_g_target  # Keras-style: G's target is 1
    # The usual flags override an architecture's defaults.
    args = build_parser(MODULE).parse_args(
        ["train", "--arch", name, "--out", str(out), "--batch-size", "32", "--noise", "uniform"]
    )
    _, config, _ = resolve_train_config(args, MODULE)
    assert (config.batch_size, config.noise) == (32, "uniform")


@pytest.mark.parametrize("name", NEW)
def test_layer_shapes_and_parameter_counts(name):
    spec = ARCHITECTURES[name]
    config = Config(**spec.defaults, arch=name)
    graph = tf.Graph()
    with graph.as_default():
        noise = v1.placeholder(tf.float32, [2, config.noise_dim])
        images = v1.placeholder(tf.float32, [2, 28, 28, 1])
        fake = call_network(spec.generator, "generator", False, noise, True, config, Layers())
        logits = call_network(spec.discriminator, "discriminator", False, images, False, config, Layers())
        assert fake.shape.as_list() == [2, 28, 28, 1]
        assert logits.shape.as_list() == [2, 1]
        layers = [
            (op.type, op.outputs[0].shape.as_list()[1:])
            for op in graph.get_operations()
            if op.type in (M, C, T)
        ]
        assert layers == EXPECTED_LAYERS[name]
        assert parameter_counts() == EXPECTED_PARAMETERS[name]


def test_keras_mlp_d_sees_one_batch_of_each_and_g_trains_on_two():
    spec = ARCHITECTURES["keras_mlp"]
    config = Config(**spec.defaults, arch="keras_mlp").replace(batch_size=8)
    graph, gan = build_training_graph(spec, config, 32)
    d_tower, g_tower = gan.towers  # d_then_g: the D update's tower first
    with v1.Session(graph=graph) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: np.zeros([32, 28, 28, 1], np.uint8)})
        sess.run(gan.inputs.shuffle)
        logits = sess.run((d_tower.d_logits_real, d_tower.d_logits_fake, g_tower.d_logits_fake))
    assert [len(x) for x in logits] == [8, 8, 16]


def test_generator_target_is_not_smoothed_for_keras_style_losses():
    logits = tf.constant([[-1.0], [2.0]])
    smoothed = gan_losses(logits, logits, 0.1, smooth_g_target=True)
    keras = gan_losses(logits, logits, 0.1, smooth_g_target=False)
    x = np.array([-1.0, 2.0])
    softplus = np.log1p(np.exp(x))  # -log(1 - sigmoid(x)); -log(sigmoid(x)) is softplus(-x)
    np.testing.assert_allclose(float(keras.g_loss), np.mean(np.log1p(np.exp(-x))), rtol=1e-6)
    np.testing.assert_allclose(float(smoothed.g_loss), np.mean(0.9 * np.log1p(np.exp(-x)) + 0.1 * softplus))
    assert float(keras.d_loss) == pytest.approx(float(smoothed.d_loss))  # D's targets are the same


def test_inverse_time_decay_is_keras_legacy_decay():
    config = Config(learning_rate=2e-4, epochs=50, lr_decay="inverse_time")
    lr = [float(learning_rate(config, tf.constant(step, tf.int64), 23400)) for step in (0, 1, 23400)]
    decay = 2e-4 / 50
    np.testing.assert_allclose(lr, [2e-4 / (1 + decay * s) for s in (0, 1, 23400)], rtol=1e-6)


# ------------------------------------------------------------------------------- training on real MNIST
SMALL = [
    "--data-dir",
    synthetic_mnist_dir(),
    "--dataset",
    "mnist",
    "--batch-size",
    "16",
    "--no-progress",
]
STEPS = ["--seed", "5", "--log-every", "1", "--sample-every", "3", "--checkpoint-every", "3"]


@pytest.fixture(scope="module", params=NEW)
def trained(request, tmp_path_factory):
    """6 steps straight, and 3 + 3 with a resume in between, of one architecture."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    straight, resumed = root / "straight", root / "resumed"
    base = ["train", "--arch", name, *SMALL, *STEPS]
    assert cli([*base, "--out", str(straight), "--max-steps", "6"]) == 0
    assert cli([*base, "--out", str(resumed), "--max-steps", "3"]) == 0
    assert cli([*base, "--out", str(resumed), "--max-steps", "6", "--resume"]) == 0
    return name, straight, resumed


def test_trains_with_losses_that_move(trained):
    name, straight, _ = trained
    record = json.loads(RunDir(straight).config.read_text())
    assert record["config"]["arch"] == name and record["architecture"]["name"] == name
    assert record["architecture"]["parameters"] == EXPECTED_PARAMETERS[name]
    assert record["config"]["batch_size"] == 16  # flags win over the write-up's defaults
    rows = history(straight)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    d = np.array([float(r["d_loss"]) for r in rows])
    g = np.array([float(r["g_loss"]) for r in rows])
    assert np.isfinite(d).all() and np.isfinite(g).all()
    assert d.std() > 1e-3 and g.std() > 1e-3


def test_resumes_exactly(trained):
    _, straight, resumed = trained
    assert_same_run(straight, resumed)


def test_samples(trained, tmp_path):
    _, straight, _ = trained
    out = tmp_path / "samples.npy"
    assert cli(["sample", "--run", str(straight), "--n", "10", "--out", str(out)]) == 0
    images = np.load(out)
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    assert images.std() > 0


def test_resume_refuses_another_architecture(trained, capsys):
    name, _, resumed = trained
    code = cli(["train", "--out", str(resumed), "--resume", "--arch", "notebook", "--max-steps", "9"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "different architecture" in err and f"'{name}'" in err
    assert RunDir(resumed).latest_checkpoint().endswith("model.ckpt-6")
