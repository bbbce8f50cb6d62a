"""The CIFAR-10 notebook's DCGAN, in the notebook's order and under its names: what `train` runs.

The same story as dcgan_mnist/model.py (inputs, generator, discriminator, losses, optimizers, the
training loop), on 32x32x3 images of one CIFAR-10 class; the two notebooks differ in the image shape, the
generator's second layer (a SAME stride-2 transposed convolution: 4x4 -> 8x8) and the defaults (50
epochs, a grid of 15). `python -m dcgan_cifar train` builds its graph with these functions and runs it
through `train` below. The machinery lives in common/: the layers (common/layers.py: batch norm with
its moving averages in UPDATE_OPS), the in-graph data (common/pipeline.py), the recipe's ingredients,
each a no-op at the notebook's settings (common/ingredients.py) and the Session loop (common/train.py).
The notebook's own bugs are reproduced with `--quirks original`.
"""

from __future__ import annotations

import sys

import tensorflow as tf

from common import ingredients, pipeline, streams
from common import train as loop
from common.architecture import ArchSpec
from common.config import Config
from common.data import ImageSet
from common.layers import FLOAT32_IMPL, UPDATE_OPS, LayerImpl, Layers, Training
from common.losses import Losses
from common.rundir import RunDir
from common.step import (
    Inputs,
    Step,
    Tower,
    call_network,
    count_step,
    finish_graph,
    graph_being_built,
    total_steps,
    update_ops_scope,
)

v1 = tf.compat.v1

IMAGE_SHAPE = (32, 32, 3)
DATASETS = ("cifar10",)


def model_inputs(n_images: int, config: Config) -> Inputs:
    """The notebook's `input_real` [None, 32, 32, 3] and `input_z` [None, z_dim] placeholders.

    Fed by default from the graph itself: the training set sits in a uint8 variable, each step slices
    its batch and draws its noise from (seed, step), so the loop needs no feed_dict.
    """
    global_step = v1.train.get_or_create_global_step()
    with tf.name_scope("inputs"):
        data = pipeline.step_batches(global_step, IMAGE_SHAPE, n_images, config)
        input_real = v1.placeholder_with_default(data.batch, [None, *IMAGE_SHAPE], name="real_images")
        z = streams.draw_latent(config.batch_size, config, global_step)
        input_z = v1.placeholder_with_default(z, [None, config.latent_dim], name="noise")
    return Inputs(input_real, input_z, data)


def generator(z: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """z -> dense 4x4x512 -> 8x8x256 (SAME, stride 2) -> 16x16x128 -> 32x32x3, tanh.

    Batch norm, leaky ReLU and dropout after every hidden layer.
    """
    alpha, keep_prob = config.lrelu_alpha, config.generator_keep_prob
    bn = {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}
    # The notebook applied dropout unconditionally, so its samples were dropped out too.
    dropout_on = True if config.original_quirks else training

    # 4 x 4 x 512
    layer1 = layers.dense(z, 4 * 4 * 512, "dense")
    layer1 = tf.reshape(layer1, [-1, 4, 4, 512])
    layer1 = layers.batch_norm(layer1, training, "batch_norm1", **bn)
    layer1 = layers.dropout(layers.lrelu(layer1, alpha), keep_prob, dropout_on)

    # 8 x 8 x 256
    layer2 = layers.conv2d_transpose(layer1, 256, 4, strides=2, padding="same", name="conv_transpose2")
    layer2 = layers.batch_norm(layer2, training, "batch_norm2", **bn)
    layer2 = layers.dropout(layers.lrelu(layer2, alpha), keep_prob, dropout_on)

    # 16 x 16 x 128
    layer3 = layers.conv2d_transpose(layer2, 128, 3, strides=2, padding="same", name="conv_transpose3")
    layer3 = layers.batch_norm(layer3, training, "batch_norm3", **bn)
    layer3 = layers.dropout(layers.lrelu(layer3, alpha), keep_prob, dropout_on)

    # 32 x 32 x 3
    logits = layers.conv2d_transpose(layer3, 3, 3, strides=2, padding="same", name="conv_transpose4")
    return tf.tanh(logits)


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images 32x32x3 -> 16x16x128 -> 8x8x256 -> 4x4x512 -> logit; no batch norm on the first layer."""
    alpha, keep_prob = config.lrelu_alpha, config.keep_prob
    bn = {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}

    # 16 x 16 x 128
    layer1 = layers.conv2d(images, 128, 3, strides=2, padding="same", name="conv1")
    layer1 = layers.dropout(layers.lrelu(layer1, alpha), keep_prob, training)

    # 8 x 8 x 256
    layer2 = layers.conv2d(layer1, 256, 3, strides=2, padding="same", name="conv2")
    layer2 = layers.batch_norm(layer2, training, "batch_norm2", **bn)
    layer2 = layers.dropout(layers.lrelu(layer2, alpha), keep_prob, training)

    # 4 x 4 x 512
    layer3 = layers.conv2d(layer2, 512, 3, strides=2, padding="same", name="conv3")
    layer3 = layers.batch_norm(layer3, training, "batch_norm3", **bn)
    if not config.original_quirks:
        # The notebook wrote `layers = tf.maximum(alpha * layer3, layer3)`: a typo that lost this lrelu.
        layer3 = layers.lrelu(layer3, alpha)
    layer3 = layers.dropout(layer3, keep_prob, training)

    flatten = tf.reshape(layer3, [-1, 4 * 4 * 512])
    # D's logit, then the InfoGAN code head's K logits with --info-codes K (0 in the notebook)
    return layers.dense(flatten, 1 + config.info_codes, "logits")


def model_loss(
    inputs: Inputs,
    config: Config,
    scope: str = "step",
    stream: int = streams.FIRST_TOWER_STREAM,
    reuse: bool = False,
    impl: LayerImpl = FLOAT32_IMPL,
) -> Tower:
    """G(z), D(x), D(G(z)) in training mode and the sigmoid cross-entropy losses with one-sided label
    smoothing (real targets 1 - label_smoothing, and G's too, as the notebook had it), in name scope
    `scope`; dropout masks from the random stream `stream` of (seed, step)."""
    with tf.name_scope(scope):
        layers = streams.tower_layers(config, inputs.global_step, stream, impl)
        g_model = call_network(generator, "generator", reuse, inputs.noise, True, config, layers)
        d_logits_real = call_network(
            discriminator, "discriminator", reuse, inputs.real_images, True, config, layers
        )
        d_logits_fake = call_network(discriminator, "discriminator", True, g_model, True, config, layers)
        d_logits_real, d_logits_fake, code_logits = ingredients.split_code_head(
            d_logits_real, d_logits_fake, config
        )

        smooth = 1.0 - config.label_smoothing
        d_loss_real = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                logits=d_logits_real, labels=tf.ones_like(d_logits_real) * smooth
            )
        )
        d_loss_fake = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(logits=d_logits_fake, labels=tf.zeros_like(d_logits_fake))
        )
        g_loss = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                logits=d_logits_fake, labels=tf.ones_like(d_logits_fake) * smooth
            )
        )
        d_real, d_fake = tf.reduce_mean(tf.sigmoid(d_logits_real)), tf.reduce_mean(tf.sigmoid(d_logits_fake))
        losses = Losses(
            tf.add(d_loss_real, d_loss_fake, name="d_loss"),
            tf.identity(g_loss, name="g_loss"),
            d_real,
            d_fake,
        )
        # --loss hinge, --g-top-k, --info-codes (the notebook: none of them)
        losses = ingredients.recipe_losses(
            losses, d_logits_real, d_logits_fake, code_logits, inputs.noise, config
        )
    return Tower(scope, g_model, d_logits_real, d_logits_fake, losses)


def model_opt(inputs: Inputs, config: Config, total_steps: int, impl: LayerImpl = FLOAT32_IMPL) -> Step:
    """The notebook's two Adam optimizers, each under `tf.control_dependencies` on its own network's
    batch-norm updates from UPDATE_OPS. The notebook ran them as two `sess.run` calls, G's then D's; here
    D's forward pass waits for G's update, so one `sess.run` does both and D sees the updated G's fakes."""
    # config.learning_rate for both (--lr-decay and --d-learning-rate change them)
    g_learning_rate, d_learning_rate = ingredients.learning_rates(config, inputs.global_step, total_steps)

    # The generator's update
    g_tower = model_loss(inputs, config, "step", streams.FIRST_TOWER_STREAM, False, impl)
    g_vars = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope="generator/")
    g_updates = v1.get_collection(UPDATE_OPS, scope=update_ops_scope(g_tower, "generator", config))
    with tf.control_dependencies(g_updates):
        g_train_opt = v1.train.AdamOptimizer(g_learning_rate, beta1=config.beta1, name="generator_adam")
        g_train_opt = g_train_opt.minimize(g_tower.losses.g_loss, var_list=g_vars, name="generator_train")

    # The discriminator's update, on the updated generator's fakes
    with tf.control_dependencies([g_train_opt]):
        d_tower = model_loss(
            inputs, config, "second_step", streams.SECOND_TOWER_STREAM, reuse=True, impl=impl
        )
    d_vars = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope="discriminator/")
    d_updates = v1.get_collection(UPDATE_OPS, scope=update_ops_scope(d_tower, "discriminator", config))
    with tf.control_dependencies(d_updates):
        d_train_opt = v1.train.AdamOptimizer(d_learning_rate, beta1=config.beta1, name="discriminator_adam")
        d_train_opt = d_train_opt.minimize(d_tower.losses.d_loss, var_list=d_vars, name="discriminator_train")

    losses = d_tower.losses._replace(g_loss=g_tower.losses.g_loss)  # each from its own update's pass
    return count_step(
        inputs, config, (g_tower, d_tower), losses, g_train_opt, d_train_opt, d_train_opt, g_learning_rate,
        (g_updates, d_updates),
    )  # fmt: skip


def train(
    config: Config,
    data: ImageSet,
    run: RunDir,
    resume: bool = False,
    hooks: tuple[loop.StepHook, ...] = (),
    progress: bool = True,
) -> loop.TrainResult:
    """The notebook's `train`: the whole graph built once with the functions above, finalized, then one
    `sess.run` per step in a Session (common.train.run_session: grids, history, checkpoints)."""
    config, settings = loop.run_settings(config)  # --precision auto made concrete for this machine
    with graph_being_built(config) as graph:
        inputs = model_inputs(len(data.images), config)
        step = model_opt(inputs, config, total_steps(config, len(data.images)), settings.layer_impl)
        gan = finish_graph(SPEC, config, inputs, step)  # summaries, savers, the init op
    return loop.run_session(graph, gan, config, data, run, settings, resume, hooks, progress)


SPEC = ArchSpec(
    name="notebook",
    image_shape=IMAGE_SHAPE,
    model=sys.modules[__name__],
    # The CIFAR notebook trained 50 epochs and showed a grid of 15; the rest are the Config defaults.
    defaults={"epochs": 50, "grid_size": 15},
    schedule="g_then_d",  # model_opt: G's update, then D's
    d_batches="separate",  # D called on the real batch and on the fake batch
    upsamples=("transpose", "resize"),  # --upsample resize: common.ingredients.ResizeUpsampling
    d_norms=("batch", "spectral", "both"),  # --d-norm: common.ingredients.network_layers
    info_codes=True,  # --info-codes: D's code head (discriminator), common.ingredients.recipe_losses
    description="The CIFAR notebook's DCGAN: dense to 4x4x512, three stride-2 transposed convolutions "
    "to 32x32x3; the MNIST notebook's conv D.",
)
