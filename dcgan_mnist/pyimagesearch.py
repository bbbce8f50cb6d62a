"""The pyimagesearch Fashion-MNIST DCGAN, in graph style.

Its networks on the project's layers; its step (model_opt) as the write-up runs it. dcgan_mnist/writeups.py
says what the four write-ups share and how their settings map onto the notebook's flags.
"""

from __future__ import annotations

import sys

import tensorflow as tf

from common import train as loop
from common.architecture import ArchSpec
from common.config import Config
from common.data import ImageSet
from common.layers import FLOAT32_IMPL, LayerImpl, Layers, Training
from common.rundir import RunDir
from common.step import Inputs, Step, Tower, forward_pass, generic_inputs, two_network_step
from common.streams import FIRST_TOWER_STREAM
from dcgan_mnist.writeups import IMAGE_SHAPE, bn, steps_per_epoch


def model_inputs(n_images: int, config: Config) -> Inputs:
    """The real-image and noise placeholders over the in-graph data."""
    return generic_inputs(IMAGE_SHAPE, n_images, config)


def generator(noise: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """noise -> 512 -> 7x7x64 -> 14x14x32 -> 28x28x1, tanh; ReLU *then* BN, as the write-up orders them."""
    layer1 = layers.batch_norm(
        tf.nn.relu(layers.dense(noise, 512, "dense1")), training, "batch_norm1", **bn(config)
    )

    layer2 = layers.dense(layer1, 7 * 7 * 64, "dense2")
    layer2 = layers.batch_norm(
        tf.nn.relu(layer2), training, "batch_norm2", **bn(config)
    )  # before the reshape
    layer2 = tf.reshape(layer2, [-1, 7, 7, 64])

    layer3 = layers.conv2d_transpose(layer2, 32, 5, strides=2, padding="same", name="conv_transpose3")
    layer3 = layers.batch_norm(tf.nn.relu(layer3), training, "batch_norm3", **bn(config))

    logits = layers.conv2d_transpose(
        layer3, IMAGE_SHAPE[-1], 5, strides=2, padding="same", name="conv_transpose4"
    )
    return tf.tanh(logits)


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images -> 14x14x32 -> 7x7x64 -> 512 -> logit, leaky ReLU 0.2 throughout; no BN, no dropout."""
    alpha = config.lrelu_alpha
    layer1 = layers.lrelu(layers.conv2d(images, 32, 5, strides=2, padding="same", name="conv1"), alpha)
    layer2 = layers.lrelu(layers.conv2d(layer1, 64, 5, strides=2, padding="same", name="conv2"), alpha)
    flatten = tf.reshape(layer2, [-1, 7 * 7 * 64])
    layer3 = layers.lrelu(layers.dense(flatten, 512, "dense3"), alpha)
    return layers.dense(layer3, 1, "logits")


PYIMAGESEARCH_BATCH = 128


def model_loss(
    inputs: Inputs,
    config: Config,
    scope: str = "step",
    stream: int = FIRST_TOWER_STREAM,
    reuse: bool = False,
    impl: LayerImpl = FLOAT32_IMPL,
    noise: tf.Tensor | None = None,
) -> Tower:
    """G(z), D on the real and the fake batch concatenated (one call), sigmoid cross-entropy with G's
    target 1 (Keras)."""
    return forward_pass(
        generator,
        discriminator,
        inputs,
        config,
        scope,
        stream,
        reuse,
        impl,
        noise,
        "concat",
        smooth_g_target=False,
    )


def model_opt(inputs: Inputs, config: Config, total_steps: int, impl: LayerImpl = FLOAT32_IMPL) -> Step:
    """D's train_on_batch on one batch of real and fake, then the stacked GAN's (G's) update."""
    return two_network_step(model_loss, inputs, config, total_steps, impl, "d_then_g")


def train(
    config: Config,
    data: ImageSet,
    run: RunDir,
    resume: bool = False,
    hooks: tuple[loop.StepHook, ...] = (),
    progress: bool = True,
) -> loop.TrainResult:
    """The graph built once with the functions above, finalized, then the Session loop."""
    return loop.train(SPEC, config, data, run, resume, hooks, progress)


SPEC = ArchSpec(
    name="pyimagesearch",
    image_shape=IMAGE_SHAPE,
    model=sys.modules[__name__],
    defaults={
        "dataset": "fashion_mnist",
        "epochs": 50,
        "batch_size": PYIMAGESEARCH_BATCH,
        "noise": "uniform",
        "noise_dim": 100,
        "learning_rate": 2e-4,
        "beta1": 0.5,
        # Keras's Adam(decay=lr / epochs): lr / (1 + decay * iterations), iterations counted in steps.
        "lr_decay": "inverse_time",
        "label_smoothing": 0.0,
        "lrelu_alpha": 0.2,
        "sample_every": steps_per_epoch(PYIMAGESEARCH_BATCH),
    },
    schedule="d_then_g",  # D's train_on_batch, then the stacked GAN's
    d_batches="concat",  # one D batch of real and fake
    smooth_g_target=False,
    description="pyimagesearch Fashion-MNIST DCGAN: G dense 512, dense 7x7x64, transposed convs k5 s2 "
    "(32, 1), ReLU then BN; D conv k5 s2 (32, 64), dense 512, leaky ReLU 0.2; Adam 2e-4 with Keras decay.",
)
