"""The notebook's MNIST DCGAN, layer by layer, on the project's own layers (see common/layers.py).

Read it beside the original: the generator and discriminator are the same, with the same names. The
three quirks of the notebook are reproduced when `config.quirks == "original"`.
"""

from __future__ import annotations

import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec
from common.layers import SeedStream, Training, batch_norm, conv2d, conv2d_transpose, dense, dropout, lrelu
from dcgan_mnist.architectures import OTHER_ARCHITECTURES

IMAGE_SHAPE = (28, 28, 1)


def hidden_block(x: tf.Tensor, training: Training, name: str, config: Config, seeds, dropout_on) -> tf.Tensor:
    """What follows every hidden layer of the notebook's generator: batch norm, leaky ReLU, dropout."""
    x = batch_norm(x, training, name, momentum=config.bn_momentum, epsilon=config.bn_epsilon)
    x = lrelu(x, config.lrelu_alpha)
    return dropout(x, config.keep_prob, seeds, dropout_on)


def notebook_generator(
    noise: tf.Tensor,
    training: Training,
    config: Config,
    seeds: SeedStream | None,
    image_shape: tuple[int, int, int],
    layer2_strides: int,
    layer2_padding: str,
) -> tf.Tensor:
    """noise [N, noise_dim] -> images [N, *image_shape] in [-1, 1].

    The MNIST and CIFAR notebooks differ only in the second layer (4x4 -> 7x7 with a VALID stride-1
    transposed convolution, or 4x4 -> 8x8 with a SAME stride-2 one) and in the output's channels.
    """
    # The notebook applied dropout unconditionally, so its samples were dropped out too.
    dropout_on = True if config.original_quirks else training

    # 4 x 4 x 512
    layer1 = dense(noise, 4 * 4 * 512, "dense")
    layer1 = tf.reshape(layer1, [-1, 4, 4, 512])
    layer1 = hidden_block(layer1, training, "batch_norm1", config, seeds, dropout_on)

    # 7 x 7 x 256 (MNIST) or 8 x 8 x 256 (CIFAR)
    layer2 = conv2d_transpose(layer1, 256, 4, layer2_strides, layer2_padding, name="conv_transpose2")
    layer2 = hidden_block(layer2, training, "batch_norm2", config, seeds, dropout_on)

    # 14 x 14 x 128 (16 x 16 x 128)
    layer3 = conv2d_transpose(layer2, 128, 3, strides=2, padding="same", name="conv_transpose3")
    layer3 = hidden_block(layer3, training, "batch_norm3", config, seeds, dropout_on)

    # 28 x 28 x 1 (32 x 32 x 3)
    logits = conv2d_transpose(layer3, image_shape[-1], 3, strides=2, padding="same", name="conv_transpose4")
    return tf.tanh(logits)


def generator(noise: tf.Tensor, training: Training, config: Config, seeds: SeedStream | None) -> tf.Tensor:
    """noise [N, noise_dim] -> images [N, 28, 28, 1] in [-1, 1]; 4x4 grows to 7x7 (VALID, stride 1)."""
    return notebook_generator(noise, training, config, seeds, IMAGE_SHAPE, 1, "valid")


def discriminator(
    images: tf.Tensor, training: Training, config: Config, seeds: SeedStream | None
) -> tf.Tensor:
    """images [N, 28, 28, C] -> logits [N, 1]. No batch norm on the first layer."""
    alpha, keep_prob = config.lrelu_alpha, config.keep_prob
    bn = {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}

    # 14 x 14 x 128
    layer1 = conv2d(images, 128, 3, strides=2, padding="same", name="conv1")
    layer1 = lrelu(layer1, alpha)
    layer1 = dropout(layer1, keep_prob, seeds, training)

    # 7 x 7 x 256
    layer2 = conv2d(layer1, 256, 3, strides=2, padding="same", name="conv2")
    layer2 = batch_norm(layer2, training, "batch_norm2", **bn)
    layer2 = lrelu(layer2, alpha)
    layer2 = dropout(layer2, keep_prob, seeds, training)

    # 4 x 4 x 512
    layer3 = conv2d(layer2, 512, 3, strides=2, padding="same", name="conv3")
    layer3 = batch_norm(layer3, training, "batch_norm3", **bn)
    if not config.original_quirks:
        # The notebook wrote `layers = tf.maximum(alpha * layer3, layer3)`: a typo that lost this lrelu.
        layer3 = lrelu(layer3, alpha)
    layer3 = dropout(layer3, keep_prob, seeds, training)

    flatten = tf.reshape(layer3, [-1, 4 * 4 * 512])
    return dense(flatten, 1, "logits")


NOTEBOOK = ArchSpec(
    name="notebook",
    image_shape=IMAGE_SHAPE,
    generator=generator,
    discriminator=discriminator,
    defaults={},  # the Config defaults are the notebook's
    schedule="g_then_d",
    d_batches="separate",
    description="The notebook's DCGAN: dense to 4x4x512, three transposed convolutions; conv D.",
)

ARCHITECTURES: dict[str, ArchSpec] = {NOTEBOOK.name: NOTEBOOK, **OTHER_ARCHITECTURES}
DATASETS = ("mnist", "fashion_mnist")
