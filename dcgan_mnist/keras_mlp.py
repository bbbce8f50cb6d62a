"""The Keras fully-connected GAN's networks and step, in graph style.

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
from dcgan_mnist.writeups import IMAGE_SHAPE, steps_per_epoch


def model_inputs(n_images: int, config: Config) -> Inputs:
    """The real-image and noise placeholders over the in-graph data; two noise batches a step (G's
    update trains on both, D's on the first)."""
    return generic_inputs(IMAGE_SHAPE, n_images, config, 2)


def generator(noise: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """noise -> 256 -> 512 -> 1024 -> 784, tanh, as an image. No BN, no dropout."""
    alpha = 0.2  # the write-up's generator slope; its discriminator uses another (0.3), so fixed here
    layer1 = layers.lrelu(layers.dense(noise, 256, "dense1"), alpha)
    layer2 = layers.lrelu(layers.dense(layer1, 512, "dense2"), alpha)
    layer3 = layers.lrelu(layers.dense(layer2, 1024, "dense3"), alpha)
    pixels = layers.dense(layer3, IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], "dense4")
    return tf.reshape(tf.tanh(pixels), [-1, *IMAGE_SHAPE])


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images as 784-vectors -> 1024 -> 512 -> 256 -> logit; leaky ReLU and dropout after each."""
    alpha = 0.3  # the write-up's discriminator slope (0.2 in its generator): fixed, not --lrelu-alpha
    keep_prob = config.keep_prob  # 1 - Dropout(0.2)
    flatten = tf.reshape(images, [-1, IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]])
    layer1 = layers.dropout(layers.lrelu(layers.dense(flatten, 1024, "dense1"), alpha), keep_prob, training)
    layer2 = layers.dropout(layers.lrelu(layers.dense(layer1, 512, "dense2"), alpha), keep_prob, training)
    layer3 = layers.dropout(layers.lrelu(layers.dense(layer2, 256, "dense3"), alpha), keep_prob, training)
    return layers.dense(layer3, 1, "logits")


# The write-up's "batch 128" is the G step's noise batch; D's step is 64 real + 64 fake, concatenated.
# Here --batch-size is the real images per step (64), and the G step draws g_noise_batches x 64 = 128.
KERAS_MLP_BATCH = 64


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
    """D's train_on_batch on 64 real + 64 fake, concatenated; then G's on 128 noise vectors."""
    return two_network_step(model_loss, inputs, config, total_steps, impl, "d_then_g", g_noise_batches=2)


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
    name="keras_mlp",
    image_shape=IMAGE_SHAPE,
    model=sys.modules[__name__],
    defaults={
        "epochs": 100,
        "batch_size": KERAS_MLP_BATCH,
        "noise": "normal",
        "noise_dim": 100,
        "learning_rate": 2e-4,
        "beta1": 0.5,
        "label_smoothing": 0.1,  # D's real target 0.9
        "keep_prob": 0.8,
        "grid_size": 100,  # 10 x 10
        "sample_every": 20 * steps_per_epoch(KERAS_MLP_BATCH),  # every 20 epochs
        "checkpoint_every": 20 * steps_per_epoch(KERAS_MLP_BATCH),
    },
    schedule="d_then_g",
    d_batches="concat",
    g_noise_batches=2,
    smooth_g_target=False,
    description="Keras fully-connected GAN: G dense 256-512-1024-784 (leaky ReLU 0.2), D dense 1024-512-256 "
    "(leaky ReLU 0.3, dropout 0.2); D on 64 real + 64 fake concatenated, then G on 128 noise vectors; "
    "--lrelu-alpha does not apply (both slopes fixed).",
)
