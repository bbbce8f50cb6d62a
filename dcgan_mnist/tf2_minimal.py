"""A short TF2 DCGAN example, in graph style.

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
from dcgan_mnist.writeups import IMAGE_SHAPE, bn


def model_inputs(n_images: int, config: Config) -> Inputs:
    """The real-image and noise placeholders over the in-graph data."""
    return generic_inputs(IMAGE_SHAPE, n_images, config)


def generator(noise: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """noise -> dense 3x3x512 -> 7x7x256 -> 14x14x128 -> 28x28x64, tanh -> a per-pixel dense to 1 channel.

    The last layer is linear, as the write-up has it: the output is not squashed into [-1, 1] (the
    sampler's uint8 conversion clips it).
    """
    layer1 = tf.reshape(layers.dense(noise, 3 * 3 * 512, "dense1"), [-1, 3, 3, 512])  # linear

    layer2 = layers.conv2d_transpose(
        layer1, 256, 3, strides=2, padding="valid", name="conv_transpose2"
    )  # 7x7
    layer2 = layers.batch_norm(tf.nn.relu(layer2), training, "batch_norm2", **bn(config))

    layer3 = layers.conv2d_transpose(
        layer2, 128, 2, strides=2, padding="valid", name="conv_transpose3"
    )  # 14x14
    layer3 = layers.batch_norm(tf.nn.relu(layer3), training, "batch_norm3", **bn(config))

    layer4 = layers.conv2d_transpose(
        layer3, 64, 2, strides=2, padding="valid", name="conv_transpose4"
    )  # 28x28
    layer4 = tf.tanh(layer4)

    # A Dense(1) on a [N, 28, 28, 64] tensor acts on the last axis: a 1x1 convolution.
    return layers.conv2d(layer4, IMAGE_SHAPE[-1], 1, strides=1, padding="valid", name="pixel_dense5")


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images -> 13x13x64 -> 4x4x128 -> 1x1x256 -> logit; ReLU then BN. Keras's default "valid" padding."""
    layer1 = layers.conv2d(images, 64, 4, strides=2, padding="valid", name="conv1")
    layer1 = layers.batch_norm(tf.nn.relu(layer1), training, "batch_norm1", **bn(config))

    layer2 = layers.conv2d(layer1, 128, 4, strides=3, padding="valid", name="conv2")
    layer2 = layers.batch_norm(tf.nn.relu(layer2), training, "batch_norm2", **bn(config))

    layer3 = tf.nn.relu(layers.conv2d(layer2, 256, 4, strides=3, padding="valid", name="conv3"))
    flatten = tf.reshape(layer3, [-1, 256])
    return layers.dense(flatten, 1, "logits")


def model_loss(
    inputs: Inputs,
    config: Config,
    scope: str = "step",
    stream: int = FIRST_TOWER_STREAM,
    reuse: bool = False,
    impl: LayerImpl = FLOAT32_IMPL,
    noise: tf.Tensor | None = None,
) -> Tower:
    """G(z), D on the real batch and on the fake batch (two calls), sigmoid cross-entropy with G's
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
        "separate",
        smooth_g_target=False,
    )


def model_opt(inputs: Inputs, config: Config, total_steps: int, impl: LayerImpl = FLOAT32_IMPL) -> Step:
    """One GradientTape pass gives both gradients: both Adam updates from one forward pass."""
    return two_network_step(model_loss, inputs, config, total_steps, impl, "simultaneous")


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
    name="tf2_minimal",
    image_shape=IMAGE_SHAPE,
    model=sys.modules[__name__],
    defaults={
        "epochs": 10,
        "batch_size": 256,
        "noise": "normal",
        "noise_dim": 100,
        "learning_rate": 1e-4,
        "beta1": 0.9,  # Keras Adam's default
        "label_smoothing": 0.0,
    },
    schedule="simultaneous",
    d_batches="separate",
    smooth_g_target=False,
    description="short TF2 example: G dense 3x3x512, transposed convs (256 k3, 128 k2, 64 k2) with ReLU + "
    "BN, tanh, then a linear per-pixel dense; D conv k4 (64 s2, 128 s3, 256 s3) ReLU + BN; Adam 1e-4.",
)
