"""--info-codes: a categorical code in z that D's extra head reads back (InfoGAN), its loss, its noise, its
checkpoints and the flag. Tiny synthetic data made here, no ../shared."""

import numpy as np
import pytest
import tensorflow as tf

from common.config import Config, ConfigError
from common.rundir import RunDir
from common.sampling import Generator
from common.streams import code_rows_noise, sample_noise
from common.train import build_training_graph, train
from dcgan_mnist.__main__ import cli as mnist_cli
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import architecture_flag_run, random_digit_set, synthetic_mnist_dir

v1 = tf.compat.v1
DATA = random_digit_set()
IMAGES = DATA.images
CODES = 10


def step_values(config: Config, fetch) -> dict:
    """`fetch(gan)` after loading the data, at step 0, without training."""
    graph, gan = build_training_graph(NOTEBOOK, config, len(IMAGES))
    with v1.Session(graph=graph) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: IMAGES})
        sess.run(gan.inputs.shuffle)
        return sess.run(fetch(gan))


def test_z_is_the_same_noise_then_a_one_hot_code():
    plain = Config(batch_size=16, precision="float32")
    coded = plain.replace(info_codes=CODES)
    assert coded.latent_dim == plain.noise_dim + CODES
    z_plain = step_values(plain, lambda gan: gan.inputs.noise)
    z_coded = step_values(coded, lambda gan: gan.inputs.noise)
    assert z_coded.shape == (16, plain.noise_dim + CODES)
    # the code has a stream of its own: the noise is the run without codes
    np.testing.assert_array_equal(z_coded[:, : plain.noise_dim], z_plain)
    codes = z_coded[:, plain.noise_dim :]
    assert set(np.unique(codes)) == {0.0, 1.0}
    np.testing.assert_array_equal(codes.sum(axis=1), 1.0)
    assert len(set(codes.argmax(axis=1))) > 3  # drawn, not one value for all


def test_sampler_noise_draws_a_code_per_row_and_is_unchanged_without_codes():
    plain = Config()
    rng = np.random.default_rng([3, 5])  # what sample_noise drew before codes existed
    np.testing.assert_array_equal(
        sample_noise(plain, 8, 3, 5), rng.uniform(-1.0, 1.0, (8, 100)).astype(np.float32)
    )
    z = sample_noise(plain.replace(info_codes=CODES), 5000, 3, 5)
    assert z.shape == (5000, 110)
    np.testing.assert_array_equal(z[:8, :100], sample_noise(plain, 8, 3, 5))
    counts = np.bincount(z[:, 100:].argmax(axis=1), minlength=CODES)
    np.testing.assert_array_equal(z[:, 100:].sum(axis=1), 1.0)
    assert counts.min() > 400 and counts.max() < 600  # uniform over the ten values: 500 each


def test_both_losses_carry_the_code_cross_entropy_of_d_s_extra_logits():
    config = Config(batch_size=16, precision="float32", info_codes=CODES)

    def fetch(gan):
        tower = gan.towers[-1]  # D's update: G's fakes and D's logits of one pass
        graph = tower.fake_images.graph
        return {
            "z": gan.inputs.noise,
            "d_loss": tower.losses.d_loss,
            "g_loss": graph.get_tensor_by_name(f"{gan.towers[0].scope}/g_loss_with_info:0"),
            "first_tower_info": graph.get_tensor_by_name(f"{gan.towers[0].scope}/info_loss:0"),
            "fake_logits": graph.get_tensor_by_name(f"{tower.scope}/discriminator_1/logits/BiasAdd:0"),
            "real_logit": tower.d_logits_real,
            "fake_logit": tower.d_logits_fake,
            "info": graph.get_tensor_by_name(f"{tower.scope}/info_loss:0"),
        }

    values = step_values(config, fetch)
    logits = values["fake_logits"]
    assert logits.shape == (16, 1 + CODES) and values["fake_logit"].shape == (16, 1)
    np.testing.assert_array_equal(values["fake_logit"], logits[:, :1])
    code = values["z"][:, config.noise_dim :].argmax(axis=1)
    code_logits = logits[:, 1:].astype(np.float64)
    log_softmax = code_logits - np.log(np.exp(code_logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(values["info"], -log_softmax[np.arange(16), code].mean(), rtol=1e-5)

    def bce(logit, target):
        return np.mean(np.maximum(logit, 0) - logit * target + np.log1p(np.exp(-np.abs(logit))))

    smoothing = config.label_smoothing
    plain_d = bce(values["real_logit"], 1 - smoothing) + bce(values["fake_logit"], 0.0)
    np.testing.assert_allclose(values["d_loss"], plain_d + values["info"], rtol=1e-5)
    assert values["g_loss"] > values["first_tower_info"] > 0  # G's loss holds its own tower's info term


def test_the_code_head_is_trained_by_d_and_checkpointed(tmp_path):
    config = Config(batch_size=16, max_steps=3, checkpoint_every=3, info_codes=CODES, out=str(tmp_path))
    graph, gan = build_training_graph(NOTEBOOK, config, len(IMAGES))
    with graph.as_default():
        shapes = {v.op.name: v.shape.as_list() for v in v1.trainable_variables()}
    assert shapes["discriminator/logits/kernel"] == [4 * 4 * 512, 1 + CODES]
    assert shapes["generator/dense/kernel"] == [config.noise_dim + CODES, 4 * 4 * 512]
    train(NOTEBOOK, config, DATA, RunDir(tmp_path), progress=False)
    reader = tf.train.load_checkpoint(RunDir(tmp_path).latest_checkpoint())
    assert reader.get_variable_to_shape_map()["discriminator/logits/kernel"] == [8192, 1 + CODES]
    with Generator.from_run(RunDir(tmp_path), NOTEBOOK, config) as generator:
        images = generator.generate(12, seed=0)
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8


def test_info_codes_flag_is_checked_recorded_and_fixed_on_resume(tmp_path, capsys):
    for bad in (1, -1, 1001):
        with pytest.raises(ConfigError, match="--info-codes must be 0 \\(off\\) or 2 to 1000"):
            Config(info_codes=bad).validate()
    refusal = "--info-codes is not available for arch 'tf_tutorial'"
    out = architecture_flag_run(tmp_path, capsys, "--info-codes", 4, 10, "10", refusal)
    grid = tmp_path / "grid.png"
    assert mnist_cli(["sample", "--run", str(out), "--n", "8", "--out", str(grid)]) == 0
    assert grid.stat().st_size > 0
    by_code = tmp_path / "by_code.npy"
    assert mnist_cli(["sample", "--run", str(out), "--n", "9", "--by-code", "--out", str(by_code)]) == 0
    assert np.load(by_code).shape == (8, 28, 28, 1)  # 4 codes x 9 // 4 columns
    from PIL import Image

    assert mnist_cli(["sample", "--run", str(out), "--n", "8", "--by-code", "--out", str(grid)]) == 0
    assert Image.open(grid).size == (3 * (2 * 29 + 1), 3 * (4 * 29 + 1))  # 2 columns, 4 rows, scale 3
    plain = tmp_path / "plain"
    argv = ["train", "--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress"]
    assert mnist_cli([*argv, "--out", str(plain), "--eval-every", "0", "--max-steps", "1"]) == 0
    assert mnist_cli(["sample", "--run", str(plain), "--by-code", "--out", str(tmp_path / "x.png")]) == 2
    assert "was trained without --info-codes" in capsys.readouterr().err


def test_code_rows_share_their_noise_and_differ_in_the_code():
    config = Config(info_codes=3)
    z = code_rows_noise(config, 4, seed=1).reshape(3, 4, -1)  # rows (codes) x columns
    for row in range(3):
        np.testing.assert_array_equal(z[row, :, :100], sample_noise(Config(), 4, 1))
        np.testing.assert_array_equal(z[row, :, 100:], np.tile(np.eye(3)[row], (4, 1)))
