"""The TensorFlow DCGAN tutorial's GAN (tensorflow.org/tutorials/generative/dcgan), in graph style.

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
    """noise -> dense 7x7x256 -> 7x7x128 -> 14x14x64 -> 28x28x1, tanh. No biases: BN follows each layer."""
    alpha = config.lrelu_alpha  # the tutorial's LeakyReLU() default, 0.3

    # Batch norm on the flat 12544 features, before the reshape, as the tutorial's Sequential does.
    layer1 = layers.dense(noise, 7 * 7 * 256, "dense", use_bias=False)
    layer1 = layers.lrelu(layers.batch_norm(layer1, training, "batch_norm1", **bn(config)), alpha)
    layer1 = tf.reshape(layer1, [-1, 7, 7, 256])

    layer2 = layers.conv2d_transpose(
        layer1, 128, 5, strides=1, padding="same", name="conv_transpose2", use_bias=False
    )
    layer2 = layers.lrelu(layers.batch_norm(layer2, training, "batch_norm2", **bn(config)), alpha)

    layer3 = layers.conv2d_transpose(
        layer2, 64, 5, strides=2, padding="same", name="conv_transpose3", use_bias=False
    )
    layer3 = layers.lrelu(layers.batch_norm(layer3, training, "batch_norm3", **bn(config)), alpha)

    logits = layers.conv2d_transpose(
        layer3, IMAGE_SHAPE[-1], 5, strides=2, padding="same", name="conv_transpose4", use_bias=False
    )
    return tf.tanh(logits)


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images -> 14x14x64 -> 7x7x128 -> logit; leaky ReLU and dropout after each convolution, no BN."""
    alpha, keep_prob = config.lrelu_alpha, config.keep_prob  # 0.3 and 1 - Dropout(0.3)

    layer1 = layers.conv2d(images, 64, 5, strides=2, padding="same", name="conv1")
    layer1 = layers.dropout(layers.lrelu(layer1, alpha), keep_prob, training)

    layer2 = layers.conv2d(layer1, 128, 5, strides=2, padding="same", name="conv2")
    layer2 = layers.dropout(layers.lrelu(layer2, alpha), keep_prob, training)

    flatten = tf.reshape(layer2, [-1, 7 * 7 * 128])
    return layers.dense(flatten, 1, "logits")


TF_TUTORIAL_BATCH = 256


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
    name="tf_tutorial",
    image_shape=IMAGE_SHAPE,
    model=sys.modules[__name__],
    defaults={
        "epochs": 50,
        "batch_size": TF_TUTORIAL_BATCH,
        "noise": "normal",
        "noise_dim": 100,
        "learning_rate": 1e-4,
        "beta1": 0.9,  # Keras Adam's default
        "label_smoothing": 0.0,
        "lrelu_alpha": 0.3,
        "keep_prob": 0.7,
        "grid_size": 16,
        "sample_every": steps_per_epoch(TF_TUTORIAL_BATCH),  # an image per epoch
        "checkpoint_every": 15 * steps_per_epoch(TF_TUTORIAL_BATCH),  # every 15 epochs
    },
    schedule="simultaneous",  # one GradientTape pass gives both gradients
    d_batches="separate",  # discriminator(real), discriminator(fake): two calls
    smooth_g_target=False,
    description="TensorFlow DCGAN tutorial: dense 7x7x256, transposed convs k5 (128, 64, 1), no biases, "
    "BN + leaky ReLU 0.3; D conv k5 s2 (64, 128) + dropout 0.3; Adam 1e-4, simultaneous update.",
)
