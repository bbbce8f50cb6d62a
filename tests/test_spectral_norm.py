"""--d-norm: spectral normalization of D's kernels (common.layers.spectral_normalize), its power-iteration
vectors in UPDATE_OPS and in checkpoints, and the flag. Tiny synthetic data made here, no ../shared."""

import numpy as np
import pytest
import tensorflow as tf

from common.config import Config, ConfigError
from common.layers import UPDATE_OPS, spectral_normalize
from common.rundir import RunDir
from common.train import build_training_graph, train
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import architecture_flag_run, random_digit_set

v1 = tf.compat.v1
DATA = random_digit_set()
IMAGES = DATA.images
D_LAYERS = ("conv1", "conv2", "conv3", "logits")


def test_power_iteration_converges_to_the_largest_singular_value():
    kernel_value = np.random.default_rng(1).normal(size=(3, 3, 4, 8)).astype(np.float32)
    matrix = kernel_value.reshape(-1, 8)
    largest = np.linalg.svd(matrix, compute_uv=False)[0]
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.set_random_seed(0)
        kernel = v1.get_variable("kernel", initializer=kernel_value)
        with tf.name_scope("tower"):
            normalized = spectral_normalize(kernel, training=True)
            again = spectral_normalize(kernel, training=True)  # D's second call in the same tower
        with tf.name_scope("inference"), v1.variable_scope(v1.get_variable_scope(), reuse=True):
            inference = spectral_normalize(kernel, training=False)
        updates = v1.get_collection(UPDATE_OPS)
        assert again is normalized and len(updates) == 1  # one read of u and one update per tower
        sigma = tf.reduce_max(kernel / normalized)  # the one factor every weight was divided by
        sess.run(v1.global_variables_initializer())
        first = sess.run(sigma)
        assert 0.0 < first <= largest * (1 + 1e-5)  # a power-iteration estimate never exceeds sigma_1
        for _ in range(30):
            sess.run(updates)
        estimate, result, inferred = sess.run([sigma, normalized, inference])
    assert first < 0.999 * largest  # the update did the work: the first estimate was off
    np.testing.assert_allclose(estimate, largest, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.svd(result.reshape(-1, 8), compute_uv=False)[0], 1.0, rtol=1e-4)
    np.testing.assert_allclose(inferred, result, rtol=1e-5)  # training=False reads the same u, no update


@pytest.mark.parametrize("d_norm, batch_norm", [("spectral", False), ("both", True)])
def test_u_updates_wait_in_d_s_update_ops_and_are_checkpointed_variables(d_norm, batch_norm):
    config = Config(batch_size=16, d_norm=d_norm, precision="float32")
    graph, gan = build_training_graph(NOTEBOOK, config, len(IMAGES))
    with graph.as_default():
        u_variables = [v for v in v1.global_variables() if v.op.name.endswith("spectral_norm/u")]
        u = {v.op.name for v in u_variables}
        trainable = {v.op.name for v in v1.trainable_variables()}
        d_variables = {v.op.name for v in v1.global_variables("discriminator/")}
    assert u == {f"discriminator/{layer}/spectral_norm/u" for layer in D_LAYERS}
    assert not u & trainable  # not trained by Adam; the Saver saves every global variable
    assert any("batch_norm" in name for name in d_variables) == batch_norm
    assert not any("spectral_norm" in v for v in trainable)
    u_updates = [op for op in gan.train.d_update_ops if "update_u" in op.name]
    assert len(u_updates) == len(D_LAYERS)  # D runs on real and on fake: still one update per layer
    assert not any("update_u" in op.name for op in gan.train.g_update_ops)
    with v1.Session(graph=graph) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: IMAGES})
        sess.run(gan.inputs.shuffle)
        before = sess.run(u_variables)
        sess.run(gan.train.step)
        for variable, start, end in zip(u_variables, before, sess.run(u_variables), strict=True):
            assert not np.allclose(start, end), variable.op.name


def test_spectral_run_is_checkpointed_and_reproduced(tmp_path):
    finals = []
    for name in ("a", "b"):
        out = tmp_path / name
        config = Config(batch_size=16, max_steps=3, checkpoint_every=3, d_norm="spectral", out=str(out))
        train(NOTEBOOK, config, DATA, RunDir(out), progress=False)
        reader = tf.train.load_checkpoint(RunDir(out).latest_checkpoint())
        names = reader.get_variable_to_shape_map()
        assert "discriminator/conv2/spectral_norm/u" in names
        assert not any("discriminator/batch_norm" in n for n in names)
        finals.append({n: reader.get_tensor(n) for n in names if n.startswith("discriminator/")})
    for name, value in finals[0].items():
        np.testing.assert_array_equal(value, finals[1][name], err_msg=name)


def test_d_norm_flag_is_checked_recorded_and_fixed_on_resume(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--d-norm must be one of batch, spectral, both"):
        Config(d_norm="layer").validate()
    refusal = "--d-norm spectral is not available for arch 'tf_tutorial'"
    architecture_flag_run(tmp_path, capsys, "--d-norm", "both", "batch", "spectral", refusal)


def test_spectral_norm_places_on_a_gpu():
    """The power iteration (elementwise sums, l2_normalize, the assign to u) has GPU kernels too."""
    from benchmarks.gpu import placement_problems
    from common.layers import LayerImpl
    from common.speed import op_determinism

    config = Config(batch_size=16, d_norm="both", precision="float32")
    with op_determinism(True):
        graph, _ = build_training_graph(
            NOTEBOOK, config, 64, LayerImpl().for_precision("bfloat16"), device="/GPU:0"
        )
    assert any(op.name.endswith("update_u") for op in graph.get_operations())
    assert placement_problems(graph) == []
