"""The two notebooks' networks, layer by layer, parametrized by the image shape.

The MNIST and CIFAR-10 notebooks share both networks: the generator differs only in its second layer
(4x4 -> 7x7 with a VALID stride-1 transposed convolution, or 4x4 -> 8x8 with a SAME stride-2 one) and in
its output's channels, and three stride-2 convolutions take 28x28xC as well as 32x32xC to 4x4x512 in
the discriminator. Each dataset module (dcgan_mnist/model.py, dcgan_cifar/model.py) picks its shape.

The three quirks of the notebooks are reproduced when `config.quirks == "original"`.

`config.upsample == "resize"` replaces each stride-2 transposed convolution of the generator by a
nearest-neighbour resize x2 and a stride-1 convolution of the same kernel size and width (the same
parameter count, other variables): with kernel 3 and stride 2 the transposed convolution's kernel
footprints overlap unevenly, so every other output pixel sums more kernel taps than its neighbours, the
checkerboard of Odena et al., "Deconvolution and Checkerboard Artifacts" (Distill, 2016). A resize makes
every output pixel see the same taps. MNIST's stride-1 second layer stays as it is.
"""

from __future__ import annotations

import tensorflow as tf

from common.config import Config
from common.layers import Layers, Training


def hidden_block(x: tf.Tensor, training: Training, name: str, config: Config, layers: Layers, dropout_on):
    """What follows every hidden layer of the notebook's generator: batch norm, leaky ReLU, dropout."""
    x = layers.batch_norm(x, training, name, momentum=config.bn_momentum, epsilon=config.bn_epsilon)
    x = layers.lrelu(x, config.lrelu_alpha)
    return layers.dropout(x, config.generator_keep_prob, dropout_on)


def upsample2x(
    x: tf.Tensor, filters: int, kernel_size: int, index: int, config: Config, layers: Layers
) -> tf.Tensor:
    """Twice the height and width, `filters` channels: the notebook's stride-2 SAME transposed
    convolution, or (upsample "resize") a nearest-neighbour resize x2 and a stride-1 SAME convolution."""
    if config.upsample == "transpose":
        return layers.conv2d_transpose(x, filters, kernel_size, 2, "same", name=f"conv_transpose{index}")
    height, width, channels = (int(d) for d in x.shape[1:])
    # Nearest neighbour as a broadcast and a reshape: its gradient is a sum, exact and deterministic on
    # every device (the resize op's gradient kernel is not deterministic on GPUs).
    repeated = tf.broadcast_to(x[:, :, None, :, None, :], [tf.shape(x)[0], height, 2, width, 2, channels])
    resized = tf.reshape(repeated, [-1, 2 * height, 2 * width, channels])
    return layers.conv2d(resized, filters, kernel_size, 1, "same", name=f"resize_conv{index}")


def generator(
    noise: tf.Tensor,
    training: Training,
    config: Config,
    layers: Layers,
    image_shape: tuple[int, int, int],
    layer2_strides: int,
    layer2_padding: str,
) -> tf.Tensor:
    """z [N, latent_dim] (noise, then any code's one-hot block) -> images [N, *image_shape] in [-1, 1]."""
    # The notebook applied dropout unconditionally, so its samples were dropped out too.
    dropout_on = True if config.original_quirks else training

    # 4 x 4 x 512
    layer1 = layers.dense(noise, 4 * 4 * 512, "dense")
    layer1 = tf.reshape(layer1, [-1, 4, 4, 512])
    layer1 = hidden_block(layer1, training, "batch_norm1", config, layers, dropout_on)

    # 7 x 7 x 256 (MNIST) or 8 x 8 x 256 (CIFAR)
    if (layer2_strides, layer2_padding) == (2, "same"):
        layer2 = upsample2x(layer1, 256, 4, 2, config, layers)
    else:
        layer2 = layers.conv2d_transpose(
            layer1, 256, 4, layer2_strides, layer2_padding, name="conv_transpose2"
        )
    layer2 = hidden_block(layer2, training, "batch_norm2", config, layers, dropout_on)

    # 14 x 14 x 128 (16 x 16 x 128)
    layer3 = upsample2x(layer2, 128, 3, 3, config, layers)
    layer3 = hidden_block(layer3, training, "batch_norm3", config, layers, dropout_on)

    # 28 x 28 x 1 (32 x 32 x 3)
    logits = upsample2x(layer3, image_shape[-1], 3, 4, config, layers)
    return tf.tanh(logits)


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images [N, 28, 28, C] or [N, 32, 32, C] -> logits [N, 1]. No batch norm on the first layer.

    With --info-codes K the last layer has 1 + K outputs: D's logit, then the logits of the categorical
    code it reads back from a fake (common.gan.info_loss), a linear head on the same features.

    --d-norm spectral drops the batch norm of layers 2 and 3: every kernel is spectrally normalized
    instead (`layers` does it, common.gan.call_network); --d-norm both keeps the two.
    """
    alpha, keep_prob = config.lrelu_alpha, config.keep_prob
    bn = {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}

    # 14 x 14 x 128 (16 x 16 x 128)
    layer1 = layers.conv2d(images, 128, 3, strides=2, padding="same", name="conv1")
    layer1 = layers.lrelu(layer1, alpha)
    layer1 = layers.dropout(layer1, keep_prob, training)

    # 7 x 7 x 256 (8 x 8 x 256)
    layer2 = layers.conv2d(layer1, 256, 3, strides=2, padding="same", name="conv2")
    if config.d_batch_norm:
        layer2 = layers.batch_norm(layer2, training, "batch_norm2", **bn)
    layer2 = layers.lrelu(layer2, alpha)
    layer2 = layers.dropout(layer2, keep_prob, training)

    # 4 x 4 x 512
    layer3 = layers.conv2d(layer2, 512, 3, strides=2, padding="same", name="conv3")
    if config.d_batch_norm:
        layer3 = layers.batch_norm(layer3, training, "batch_norm3", **bn)
    if not config.original_quirks:
        # The notebook wrote `layers = tf.maximum(alpha * layer3, layer3)`: a typo that lost this lrelu.
        layer3 = layers.lrelu(layer3, alpha)
    layer3 = layers.dropout(layer3, keep_prob, training)

    flatten = tf.reshape(layer3, [-1, 4 * 4 * 512])
    return layers.dense(flatten, 1 + config.info_codes, "logits")
