"""The notebook's CIFAR-10 DCGAN: its generator, layer by layer, on the project's own layers.

The discriminator is the MNIST one (dcgan_mnist.model.discriminator): three stride-2 convolutions take
32x32x3 to 4x4x512 just as they take 28x28x1 there. The quirks switch works as in dcgan_mnist/model.py.
"""

from __future__ import annotations

import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec
from common.layers import SeedStream, Training, batch_norm, conv2d_transpose, dense, dropout, lrelu
from dcgan_mnist.model import discriminator

IMAGE_SHAPE = (32, 32, 3)


def generator(noise: tf.Tensor, training: Training, config: Config, seeds: SeedStream | None) -> tf.Tensor:
    """noise [N, noise_dim] -> images [N, 32, 32, 3] in [-1, 1]."""
    alpha, keep_prob = config.lrelu_alpha, config.keep_prob
    bn = {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}
    # The notebook applied dropout unconditionally, so its samples were dropped out too.
    dropout_on = True if config.original_quirks else training

    # 4 x 4 x 512
    layer1 = dense(noise, 4 * 4 * 512, "dense")
    layer1 = tf.reshape(layer1, [-1, 4, 4, 512])
    layer1 = batch_norm(layer1, training, "batch_norm1", **bn)
    layer1 = lrelu(layer1, alpha)
    layer1 = dropout(layer1, keep_prob, seeds, dropout_on)

    # 8 x 8 x 256
    layer2 = conv2d_transpose(layer1, 256, 4, strides=2, padding="same", name="conv_transpose2")
    layer2 = batch_norm(layer2, training, "batch_norm2", **bn)
    layer2 = lrelu(layer2, alpha)
    layer2 = dropout(layer2, keep_prob, seeds, dropout_on)

    # 16 x 16 x 128
    layer3 = conv2d_transpose(layer2, 128, 3, strides=2, padding="same", name="conv_transpose3")
    layer3 = batch_norm(layer3, training, "batch_norm3", **bn)
    layer3 = lrelu(layer3, alpha)
    layer3 = dropout(layer3, keep_prob, seeds, dropout_on)

    # 32 x 32 x 3
    logits = conv2d_transpose(layer3, IMAGE_SHAPE[-1], 3, strides=2, padding="same", name="conv_transpose4")
    return tf.tanh(logits)


NOTEBOOK = ArchSpec(
    name="notebook",
    image_shape=IMAGE_SHAPE,
    generator=generator,
    discriminator=discriminator,
    # The CIFAR notebook trained 50 epochs and showed a grid of 15; the rest are the Config defaults.
    defaults={"epochs": 50, "grid_size": 15},
    schedule="g_then_d",
    d_batches="separate",
    description="The CIFAR notebook's DCGAN: dense to 4x4x512, three stride-2 transposed convolutions "
    "to 32x32x3; the MNIST notebook's conv D.",
)

ARCHITECTURES: dict[str, ArchSpec] = {NOTEBOOK.name: NOTEBOOK}
DATASETS = ("cifar10",)
