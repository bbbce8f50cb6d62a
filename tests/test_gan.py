"""Graph structure: finalized, the sampler reads G's variables, each optimizer's update ops, step order."""

import numpy as np
import pytest
import tensorflow as tf

from common.config import Config
from common.flops import forward_flops_per_image, parameter_counts
from common.losses import gan_losses
from common.sampling import Generator
from common.step import build_gan
from common.streams import sample_noise
from common.train import build_training_graph
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import notebook_parameters

v1 = tf.compat.v1


@pytest.fixture(scope="module")
def built():
    graph, gan = build_training_graph(NOTEBOOK, Config(batch_size=8), 64)
    return graph, gan


def test_graph_is_finalized(built):
    graph, _ = built
    assert graph.finalized
    with graph.as_default(), pytest.raises(RuntimeError):
        tf.constant(1.0)


def test_parameter_counts(built):
    graph, _ = built
    with graph.as_default():
        assert parameter_counts() == notebook_parameters(1)


def test_the_training_graph_has_no_sampler(built):
    graph, _ = built  # the loop samples from a copy of G in a graph of its own (next test)
    assert not any(op.name.startswith("sampler/") for op in graph.get_operations())


def test_sampler_reads_only_the_generators_variables_in_inference_mode():
    with Generator(NOTEBOOK, Config(batch_size=8)) as generator:
        graph = generator.graph
    variables = graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
    assert not any(v.name.startswith("sampler") for v in variables)
    generator_variables = {v.name for v in variables if v.name.startswith("generator/")}
    # Every variable read in the sampler is one of the generator's.
    read = {
        op.inputs[0].op.name + ":0"
        for op in graph.get_operations()
        if op.name.startswith("sampler/") and op.type == "ReadVariableOp"
    }
    assert read and read <= generator_variables
    assert {n for n in generator_variables if n.endswith("kernel:0")} <= read
    # Inference mode: no batch statistics and no dropout in the sampler.
    sampler_ops = [op for op in graph.get_operations() if op.name.startswith("sampler/")]
    assert not any(op.type == "Mean" for op in sampler_ops)
    assert not any("dropout" in op.name.lower() for op in sampler_ops)
    assert not any(op.name.startswith("sampler/") for op in graph.get_collection(v1.GraphKeys.UPDATE_OPS))


def test_each_optimizer_waits_for_its_own_networks_update_ops(built):
    _, gan = built
    g_ops = [op.name for op in gan.train.g_update_ops]
    d_ops = [op.name for op in gan.train.d_update_ops]
    assert len(g_ops) == 6  # 3 batch norms x (moving_mean, moving_variance)
    assert len(d_ops) == 8  # 2 batch norms x 2 statistics x (real call, fake call)
    assert all(name.startswith("step/generator/") for name in g_ops)
    assert all(name.startswith("second_step/discriminator") for name in d_ops)
    # The control dependency is there: every G update op is a control input of G's train op.
    g_train_inputs = {op.name for op in _control_inputs_closure(gan.train.g_train)}
    assert set(g_ops) <= g_train_inputs


def _control_inputs_closure(op):
    seen, stack = set(), [op]
    while stack:
        current = stack.pop()
        for dep in list(current.control_inputs) + [t.op for t in current.inputs]:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def test_original_quirks_use_the_whole_collection_for_both_optimizers():
    _, gan = build_training_graph(NOTEBOOK, Config(batch_size=8, quirks="original"), 64)
    g_ops = [op.name for op in gan.train.g_update_ops]
    assert any(n.startswith("step/discriminator") for n in g_ops)  # G's step also moves D's statistics
    assert any(n.startswith("step/generator") for n in g_ops)
    assert any(n.startswith("second_step/generator") for n in (op.name for op in gan.train.d_update_ops))


def test_the_d_step_runs_after_and_on_the_updated_generator(built):
    graph, gan = built
    # Every op of the second tower that reads a variable depends on the G update.
    second_reads = [
        op
        for op in graph.get_operations()
        if op.name.startswith("second_step/") and op.type == "ReadVariableOp"
    ]
    assert second_reads
    upstream = _control_inputs_closure(second_reads[0])
    assert gan.train.g_train in upstream


def test_a_step_updates_both_networks_and_the_step_counter(built):
    graph, gan = built
    data = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    with graph.as_default():
        g_kernel = [v for v in v1.trainable_variables() if v.name == "generator/dense/kernel:0"][0]
        d_kernel = [v for v in v1.trainable_variables() if v.name == "discriminator/logits/kernel:0"][0]
        g_mean = [v for v in v1.global_variables() if v.name == "generator/batch_norm1/moving_mean:0"][0]
    with v1.Session(graph=graph) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: data})
        sess.run(gan.inputs.shuffle)
        before = sess.run([g_kernel, d_kernel, g_mean])
        ops_before = len(graph.get_operations())
        sess.run(gan.train.step)
        after = sess.run([g_kernel, d_kernel, g_mean])
        assert sess.run(gan.inputs.global_step) == 1
        assert len(graph.get_operations()) == ops_before
    for b, a in zip(before, after, strict=True):
        assert not np.allclose(b, a)


@pytest.mark.parametrize("smooth_g_target", [True, False])
def test_losses_closed_form(smooth_g_target):
    real = np.array([[1.5], [-0.5], [2.0], [0.3]], np.float32)
    fake = np.array([[-1.0], [0.7], [-2.5], [0.1]], np.float32)
    graph = tf.Graph()
    with graph.as_default():
        losses = gan_losses(tf.constant(real), tf.constant(fake), 0.1, smooth_g_target)
    with v1.Session(graph=graph) as sess:
        d_loss, g_loss, d_real, d_fake = sess.run(losses)

    def cross_entropy(logits, target):  # -t log sigmoid(l) - (1 - t) log(1 - sigmoid(l))
        return np.mean(np.logaddexp(0, logits) - target * logits)

    # Non-zero logits: the smoothed target 0.9 gives other losses than 1 would (at logit 0 all give log 2).
    assert d_loss == pytest.approx(cross_entropy(real, 0.9) + cross_entropy(fake, 0.0), rel=1e-6)
    assert g_loss == pytest.approx(cross_entropy(fake, 0.9 if smooth_g_target else 1.0), rel=1e-6)
    assert cross_entropy(real, 0.9) != pytest.approx(cross_entropy(real, 1.0), rel=1e-3)
    assert d_real == pytest.approx(np.mean(1 / (1 + np.exp(-real))), rel=1e-6)
    assert d_fake == pytest.approx(np.mean(1 / (1 + np.exp(-fake))), rel=1e-6)


def test_flops_from_layer_shapes():
    flops = forward_flops_per_image(NOTEBOOK, Config())
    generator = 2 * (
        100 * 8192  # dense
        + 4 * 4 * 512 * 4 * 4 * 256  # 4x4x512 -> 7x7x256, k4: each input pixel x k*k x out
        + 7 * 7 * 256 * 3 * 3 * 128
        + 14 * 14 * 128 * 3 * 3 * 1
    )
    discriminator = 2 * (14 * 14 * 128 * 9 * 1 + 7 * 7 * 256 * 9 * 128 + 4 * 4 * 512 * 9 * 256 + 8192)
    assert flops == {"generator": generator, "discriminator": discriminator}


def test_sample_noise_is_seeded():
    config = Config()
    a, b = sample_noise(config, 5, 3), sample_noise(config, 5, 3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 100) and a.min() >= -1 and a.max() <= 1
    assert not np.array_equal(a, sample_noise(config, 5, 4))
    normal = sample_noise(config.replace(noise="normal"), 1000, 0)
    assert abs(normal.std() - 1) < 0.05


def test_batch_larger_than_the_data_set_is_refused():
    from common.config import ConfigError

    with tf.Graph().as_default(), pytest.raises(ConfigError, match="larger than the data set"):
        build_gan(NOTEBOOK, Config(batch_size=128), 100)


# ------------------------------------------------------------------------------------ GPU placement
@pytest.mark.parametrize("dataset", ["mnist", "cifar"])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("loss_scale", [None, "dynamic"])
def test_training_graph_places_on_a_gpu(dataset, precision, loss_scale):
    """Built under /GPU:0, every op has a GPU kernel for its types or is CPU-only on purpose.

    Statically, from TensorFlow's kernel registry, so it runs without a GPU. The bf16 layer kernels
    (custom kernel-gradient paths, 16-bit dropout draws) are checked too, the loss-scaled graph of
    benchmarks.gpu as well. Op determinism is on while the graph is built, as in `train`.
    """
    from benchmarks.alternatives import loss_scaled_adam
    from benchmarks.gpu import placement_problems
    from common.layers import LayerImpl
    from common.speed import op_determinism
    from common.step import CPU_ONLY_SCOPES

    if dataset == "mnist":
        spec = NOTEBOOK
    else:
        from dcgan_cifar.model import SPEC as spec
    config = Config(dataset=dataset, batch_size=16, precision="float32")
    with op_determinism(True), loss_scaled_adam(loss_scale):
        graph, _ = build_training_graph(
            spec, config, 64, LayerImpl().for_precision(precision), device="/GPU:0"
        )
    assert placement_problems(graph) == []
    pinned = [op for op in graph.get_operations() if "CPU" in op.device.upper()]
    assert pinned and all(op.name.startswith(CPU_ONLY_SCOPES) for op in pinned)
    if tf.config.list_physical_devices("GPU"):  # on a GPU machine: it really places, soft placement off
        from common.train import session_config

        session = session_config()
        session.allow_soft_placement = False
        with v1.Session(graph=graph, config=session) as sess:
            sess.run(graph.get_operation_by_name("init"))


def test_the_placement_check_finds_ops_a_gpu_cannot_run():
    from benchmarks.gpu import gpu_kernel_registered, placement_problems

    graph = tf.Graph()
    with graph.as_default(), tf.device("/GPU:0"):
        text = tf.constant("a string")  # string constants have no GPU kernel
        number = tf.constant(1.0)
        v1.Variable(tf.range(3), name="int32_variable")  # nor int32 resource variables
        with tf.device("/CPU:0"):
            tf.identity(number, name="on_the_cpu")  # not listed as CPU-only
    assert not gpu_kernel_registered(text.op) and gpu_kernel_registered(number.op)
    problems = "\n".join(placement_problems(graph))
    assert "Const" in problems and "int32_variable" in problems and "on_the_cpu" in problems


def test_flop_counts_build_the_quirks_generator_too():
    """--quirks original keeps dropout on when sampling: the FLOP count (config.json) builds it with masks,
    and dropout adds no matrix work."""
    from common.flops import forward_flops_per_image

    assert forward_flops_per_image(NOTEBOOK, Config(quirks="original")) == forward_flops_per_image(
        NOTEBOOK, Config()
    )
