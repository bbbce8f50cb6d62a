"""Training-recipe ingredients (benchmarks.recipes measures them): the mechanisms, on tiny data."""

import json

import numpy as np
import pytest
import tensorflow as tf

from common.command import UsageError
from common.config import RECIPES, Config, ConfigError
from common.losses import gan_losses, hinge_losses, top_k_logits
from common.run_evaluation import evaluate_run
from common.rundir import RunDir
from common.sampling import Generator
from common.train import build_training_graph, train
from dcgan_mnist.__main__ import cli as mnist_cli
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import random_digit_set, synthetic_mnist_dir

v1 = tf.compat.v1
DATA = random_digit_set()
IMAGES = DATA.images
SYNTHETIC = [
    "--data-dir",
    synthetic_mnist_dir(),
    "--batch-size",
    "16",
    "--max-steps",
    "2",
    "--checkpoint-every",
    "2",
    "--eval-every",
    "0",
    "--no-progress",
]


def variables(graph: tf.Graph, sess: v1.Session, prefix: str) -> dict[str, np.ndarray]:
    with graph.as_default():
        chosen = {v.op.name: v for v in v1.global_variables() if v.op.name.startswith(prefix)}
    return sess.run(chosen)


def test_generator_average_follows_its_update_rule():
    config = Config(batch_size=16, g_ema_decay=0.9, precision="float32")
    graph, gan = build_training_graph(NOTEBOOK, config, len(IMAGES))
    with v1.Session(graph=graph) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: IMAGES})
        sess.run(gan.inputs.shuffle)
        start = variables(graph, sess, "generator/")
        shadow = variables(graph, sess, "generator_ema/")
        with graph.as_default():
            trainable = sorted(v.op.name for v in v1.trainable_variables("generator/"))
        assert sorted("generator/" + n[len("generator_ema/") :] for n in shadow) == trainable
        for name in trainable:  # the average starts at G's initial weights
            np.testing.assert_array_equal(shadow["generator_ema/" + name[len("generator/") :]], start[name])
        for step in range(3):
            before = variables(graph, sess, "generator_ema/")
            sess.run(gan.train.step)
            weights, after = variables(graph, sess, "generator/"), variables(graph, sess, "generator_ema/")
            decay = min(0.9, (1 + step) / (10 + step))
            for name, value in after.items():
                expected = before[name] - (
                    before[name] - weights["generator/" + name[len("generator_ema/") :]]
                ) * (1 - decay)
                np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_generator_average_is_checkpointed_and_sampled(tmp_path):
    out = tmp_path / "ema"
    config = Config(
        batch_size=16, max_steps=6, checkpoint_every=6, g_ema_decay=0.99, precision="float32", out=str(out)
    )
    train(NOTEBOOK, config, DATA, RunDir(out), progress=False)
    reader = tf.train.load_checkpoint(RunDir(out).latest_checkpoint())
    names = reader.get_variable_to_shape_map()
    assert "generator_ema/dense/kernel" in names and "generator/dense/kernel" in names
    with Generator.from_run(RunDir(out), NOTEBOOK, config) as generator:
        np.testing.assert_array_equal(
            generator.session.run(generator.variables["generator/dense/kernel"]),
            reader.get_tensor("generator_ema/dense/kernel"),  # the sampler's weights are the average
        )
        assert not np.array_equal(
            reader.get_tensor("generator_ema/dense/kernel"), reader.get_tensor("generator/dense/kernel")
        )
    # what `common.evaluate --weights live` samples: the trained weights of the same checkpoint
    with Generator.from_run(RunDir(out), NOTEBOOK, config.replace(g_ema_decay=0.0)) as generator:
        np.testing.assert_array_equal(
            generator.session.run(generator.variables["generator/dense/kernel"]),
            reader.get_tensor("generator/dense/kernel"),
        )
    with pytest.raises(ConfigError, match="--sampler-stats recalibrated"):
        config.replace(sampler_stats="moving").validate()


def test_hinge_losses_closed_form():
    real, fake = np.array([[2.0], [0.5], [-1.0]], np.float32), np.array([[-2.0], [0.25], [1.5]], np.float32)
    with tf.Graph().as_default(), v1.Session() as sess:
        d_loss, g_loss, d_real, d_fake = sess.run(hinge_losses(tf.constant(real), tf.constant(fake)))
    assert d_loss == pytest.approx(np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean())
    assert g_loss == pytest.approx(-fake.mean())
    assert d_real == pytest.approx((1 / (1 + np.exp(-real))).mean(), rel=1e-6)


def test_top_k_training_takes_g_loss_over_the_fakes_d_scores_highest():
    fake = np.array([[0.3], [-2.0], [1.5], [-0.1], [0.9]], np.float32)
    real = np.zeros((5, 1), np.float32)
    with tf.Graph().as_default(), v1.Session() as sess:
        logits = tf.constant(fake)
        assert top_k_logits(logits, 1.0) is logits  # share 1: the notebook's loss, no op added
        top = top_k_logits(logits, 0.5)  # ceil(2.5) = 3 of 5
        bce = gan_losses(tf.constant(real), logits, 0.1, g_logits_fake=top)
        hinge = hinge_losses(tf.constant(real), logits, top)
        plain = gan_losses(tf.constant(real), logits, 0.1)
        # G's gradient reaches only the chosen fakes; D's loss still sees all five
        g_grad, d_grad = tf.gradients(bce.g_loss, logits)[0], tf.gradients(bce.d_loss, logits)[0]
        values, g_bce, g_hinge, d_bce, d_plain, g_grad, d_grad = sess.run(
            [top, bce.g_loss, hinge.g_loss, bce.d_loss, plain.d_loss, g_grad, d_grad]
        )
        assert sess.run(tf.size(top_k_logits(logits, 0.01))) == 1  # never an empty loss
    assert sorted(values) == pytest.approx([0.3, 0.9, 1.5])
    chosen = np.array([0.3, 0.9, 1.5])
    assert g_bce == pytest.approx(np.mean(np.log1p(np.exp(-chosen)) + 0.1 * chosen), rel=1e-6)
    assert g_hinge == pytest.approx(-chosen.mean())
    assert d_bce == pytest.approx(d_plain)
    assert np.flatnonzero(g_grad.ravel()).tolist() == [0, 2, 4] and np.all(d_grad != 0)
    with pytest.raises(ConfigError, match="--g-top-k"):
        Config(g_top_k=0.0).validate()
    with pytest.raises(ConfigError, match="--g-top-k"):
        Config(g_top_k=1.5).validate()


def test_two_time_scales_and_generator_dropout():
    config = Config(batch_size=16, d_learning_rate=3e-3, g_keep_prob=1.0, precision="float32")
    graph, gan = build_training_graph(NOTEBOOK, config, len(IMAGES))
    with graph.as_default():
        rates = {op.name: op for op in graph.get_operations() if op.type == "ApplyAdam" or "Adam" in op.type}
    learning_rates = set()
    with v1.Session(graph=graph) as sess:
        for op in rates.values():
            learning_rates.add(round(float(sess.run(op.inputs[5])), 6))  # ResourceApplyAdam's lr input
    assert learning_rates == {0.001, 0.003}
    dropout_ops = [op.name for op in graph.get_operations() if "dropout" in op.name.lower()]
    assert dropout_ops and not any("/generator/" in f"/{name}" for name in dropout_ops)
    with pytest.raises(ConfigError, match="--g-keep-prob"):
        Config(g_keep_prob=0.0).validate()
    with pytest.raises(ConfigError, match="--d-learning-rate"):
        Config(d_learning_rate=-1.0).validate()


# ------------------------------------------------------------------------------ train --recipe NAME
def recorded_config(out) -> dict:
    return json.loads((out / "config.json").read_text())["config"]


def test_recipe_is_recorded_with_its_settings_and_flags_beside_it_win(tmp_path, capsys):
    improved, tuned = tmp_path / "improved", tmp_path / "tuned"
    assert mnist_cli(["train", *SYNTHETIC, "--recipe", "improved", "--out", str(improved)]) == 0
    config = recorded_config(improved)
    assert config["recipe"] == "improved"
    for field, value in RECIPES["improved"].items():
        assert config[field] == value, field
    assert mnist_cli(["train", *SYNTHETIC, "--out", str(tmp_path / "default")]) == 0
    default = recorded_config(tmp_path / "default")
    assert default["recipe"] == "notebook"
    assert {field: default[field] for field in RECIPES["improved"]} == {
        field: getattr(Config(), field) for field in RECIPES["improved"]
    }
    field, value = next(iter(RECIPES["improved"].items()))
    other = 0.5 if isinstance(value, float) else value
    flag = f"--{field.replace('_', '-')}"
    assert (
        mnist_cli(["train", *SYNTHETIC, "--recipe", "improved", flag, str(other), "--out", str(tuned)]) == 0
    )
    assert recorded_config(tuned)[field] == other


def test_improved_recipe_has_no_dropout_and_a_resume_keeps_the_settings_its_run_recorded(tmp_path):
    config = Config(batch_size=16, precision="float32", **RECIPES["improved"])
    graph, _ = build_training_graph(NOTEBOOK, config, len(IMAGES))
    assert not [op.name for op in graph.get_operations() if "dropout" in op.name.lower()]
    out = tmp_path / "run"
    assert mnist_cli(["train", *SYNTHETIC, "--recipe", "improved", "--out", str(out)]) == 0
    # A run started under the recipe's earlier definition (D kept its dropout until 2026-12-03) goes on
    # as it started: a resume takes config.json's settings, not the recipe's current ones.
    record = json.loads((out / "config.json").read_text())
    record["config"]["keep_prob"] = 0.8
    (out / "config.json").write_text(json.dumps(record))
    resumed = ["train", *SYNTHETIC, "--out", str(out), "--resume", "--max-steps", "4", "--recipe", "improved"]
    assert mnist_cli(resumed) == 0
    assert recorded_config(out)["keep_prob"] == 0.8 and recorded_config(out)["g_keep_prob"] == 1.0


def test_resume_with_another_recipe_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    assert mnist_cli(["train", *SYNTHETIC, "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    code = mnist_cli(
        ["train", *SYNTHETIC, "--out", str(out), "--resume", "--max-steps", "4", "--recipe", "improved"]
    )
    assert code == 2
    assert "--resume with another recipe" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # the same recipe, named again, resumes
    assert (
        mnist_cli(
            ["train", *SYNTHETIC, "--out", str(out), "--resume", "--max-steps", "4", "--recipe", "notebook"]
        )
        == 0
    )


def test_recipe_names_are_checked():
    with pytest.raises(ConfigError, match="--recipe must be one of"):
        Config(recipe="better").validate()
    with pytest.raises(ConfigError, match="measured for the notebook.s networks"):
        Config(recipe="improved", arch="keras_mlp").validate()


def test_evaluate_average_weights_of_a_run_without_them_is_a_usage_error(tmp_path):
    out = tmp_path / "plain"
    train(NOTEBOOK, Config(batch_size=16, max_steps=2, precision="float32", out=str(out)), DATA, RunDir(out))
    RunDir(out).write_config({"config": Config(batch_size=16, max_steps=2, out=str(out)).to_dict()})
    with pytest.raises(UsageError, match="kept no weight average"):
        evaluate_run(RunDir(out), 10, weights=["average"])
    with pytest.raises(UsageError, match="--weights must be one of"):
        evaluate_run(RunDir(out), 10, weights=["both"])


def test_sample_chooses_the_average_or_the_trained_weights(tmp_path, capsys):
    out = tmp_path / "run"
    assert mnist_cli(["train", *SYNTHETIC, "--g-ema-decay", "0.9", "--out", str(out)]) == 0
    images = {}
    for weights in ("average", "live", None):
        target = tmp_path / f"{weights}.npy"
        flags = ["--weights", weights] if weights else []
        assert mnist_cli(["sample", "--run", str(out), "--n", "8", "--out", str(target), *flags]) == 0
        images[weights] = np.load(target)
    assert "average weights" in capsys.readouterr().out
    np.testing.assert_array_equal(images[None], images["average"])  # the run's own choice: its average
    assert not np.array_equal(images["average"], images["live"])
    plain = tmp_path / "plain"
    assert mnist_cli(["train", *SYNTHETIC, "--out", str(plain)]) == 0
    capsys.readouterr()
    code = mnist_cli(
        ["sample", "--run", str(plain), "--out", str(tmp_path / "x.npy"), "--weights", "average"]
    )
    assert code == 2 and "kept no weight average" in capsys.readouterr().err
