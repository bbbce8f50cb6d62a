"""The GANs of four other well-known 28x28 write-ups, on the same layers and machinery as the notebook.

Each is written once, in graph style, from common/layers.py; only its `ArchSpec` says how a step runs
(schedule, how D sees real and fake) and which settings it starts from. Choose one with
`python -m dcgan_mnist train --arch NAME`; every default below can be overridden by the usual flags.

Where a write-up uses one value for a setting the Config has (a leaky-ReLU slope, a dropout rate), the
network reads it from the config, so the flag applies; where it fixes a value the notebook has no
setting for, it is a literal constant here, with a comment. `--batch-size` always means the real images
one step trains on (so epochs and "images seen" mean the same for all).

All four end D in a bare logit: Keras's `Dense(1, activation="sigmoid")` + binary cross-entropy is the
same loss as sigmoid cross-entropy on the logit (which common/gan.py computes, numerically safer), and
all four train G towards target 1 even when D's real targets are smoothed (`smooth_g_target=False`).
"""

from __future__ import annotations

import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec
from common.layers import Layers, Training

IMAGE_SHAPE = (28, 28, 1)  # MNIST and Fashion-MNIST, as in dcgan_mnist.model
TRAIN_IMAGES = 60000  # both training sets: the defaults below turn the write-ups' epochs into steps


def steps_per_epoch(batch_size: int) -> int:
    return TRAIN_IMAGES // batch_size


def _bn(config: Config) -> dict[str, float]:
    return {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}


# ------------------------------------------------------------------------- the TensorFlow DCGAN tutorial
def tf_tutorial_generator(noise: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """noise -> dense 7x7x256 -> 7x7x128 -> 14x14x64 -> 28x28x1, tanh. No biases: BN follows each layer."""
    alpha = config.lrelu_alpha  # the tutorial's LeakyReLU() default, 0.3

    # Batch norm on the flat 12544 features, before the reshape, as the tutorial's Sequential does.
    layer1 = layers.dense(noise, 7 * 7 * 256, "dense", use_bias=False)
    layer1 = layers.lrelu(layers.batch_norm(layer1, training, "batch_norm1", **_bn(config)), alpha)
    layer1 = tf.reshape(layer1, [-1, 7, 7, 256])

    layer2 = layers.conv2d_transpose(
        layer1, 128, 5, strides=1, padding="same", name="conv_transpose2", use_bias=False
    )
    layer2 = layers.lrelu(layers.batch_norm(layer2, training, "batch_norm2", **_bn(config)), alpha)

    layer3 = layers.conv2d_transpose(
        layer2, 64, 5, strides=2, padding="same", name="conv_transpose3", use_bias=False
    )
    layer3 = layers.lrelu(layers.batch_norm(layer3, training, "batch_norm3", **_bn(config)), alpha)

    logits = layers.conv2d_transpose(
        layer3, IMAGE_SHAPE[-1], 5, strides=2, padding="same", name="conv_transpose4", use_bias=False
    )
    return tf.tanh(logits)


def tf_tutorial_discriminator(
    images: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
    """images -> 14x14x64 -> 7x7x128 -> logit; leaky ReLU and dropout after each convolution, no BN."""
    alpha, keep_prob = config.lrelu_alpha, config.keep_prob  # 0.3 and 1 - Dropout(0.3)

    layer1 = layers.conv2d(images, 64, 5, strides=2, padding="same", name="conv1")
    layer1 = layers.dropout(layers.lrelu(layer1, alpha), keep_prob, training)

    layer2 = layers.conv2d(layer1, 128, 5, strides=2, padding="same", name="conv2")
    layer2 = layers.dropout(layers.lrelu(layer2, alpha), keep_prob, training)

    flatten = tf.reshape(layer2, [-1, 7 * 7 * 128])
    return layers.dense(flatten, 1, "logits")


TF_TUTORIAL_BATCH = 256
TF_TUTORIAL = ArchSpec(
    name="tf_tutorial",
    image_shape=IMAGE_SHAPE,
    generator=tf_tutorial_generator,
    discriminator=tf_tutorial_discriminator,
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


# ----------------------------------------------------------------------- the Keras fully-connected GAN
def keras_mlp_generator(noise: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """noise -> 256 -> 512 -> 1024 -> 784, tanh, as an image. No BN, no dropout."""
    alpha = 0.2  # the write-up's generator slope; its discriminator uses another (0.3), so fixed here
    layer1 = layers.lrelu(layers.dense(noise, 256, "dense1"), alpha)
    layer2 = layers.lrelu(layers.dense(layer1, 512, "dense2"), alpha)
    layer3 = layers.lrelu(layers.dense(layer2, 1024, "dense3"), alpha)
    pixels = layers.dense(layer3, IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], "dense4")
    return tf.reshape(tf.tanh(pixels), [-1, *IMAGE_SHAPE])


def keras_mlp_discriminator(
    images: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
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
KERAS_MLP = ArchSpec(
    name="keras_mlp",
    image_shape=IMAGE_SHAPE,
    generator=keras_mlp_generator,
    discriminator=keras_mlp_discriminator,
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


# ------------------------------------------------------------------ the pyimagesearch Fashion-MNIST DCGAN
def pyimagesearch_generator(
    noise: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
    """noise -> 512 -> 7x7x64 -> 14x14x32 -> 28x28x1, tanh; ReLU *then* BN, as the write-up orders them."""
    layer1 = layers.batch_norm(
        tf.nn.relu(layers.dense(noise, 512, "dense1")), training, "batch_norm1", **_bn(config)
    )

    layer2 = layers.dense(layer1, 7 * 7 * 64, "dense2")
    layer2 = layers.batch_norm(
        tf.nn.relu(layer2), training, "batch_norm2", **_bn(config)
    )  # before the reshape
    layer2 = tf.reshape(layer2, [-1, 7, 7, 64])

    layer3 = layers.conv2d_transpose(layer2, 32, 5, strides=2, padding="same", name="conv_transpose3")
    layer3 = layers.batch_norm(tf.nn.relu(layer3), training, "batch_norm3", **_bn(config))

    logits = layers.conv2d_transpose(
        layer3, IMAGE_SHAPE[-1], 5, strides=2, padding="same", name="conv_transpose4"
    )
    return tf.tanh(logits)


def pyimagesearch_discriminator(
    images: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
    """images -> 14x14x32 -> 7x7x64 -> 512 -> logit, leaky ReLU 0.2 throughout; no BN, no dropout."""
    alpha = config.lrelu_alpha
    layer1 = layers.lrelu(layers.conv2d(images, 32, 5, strides=2, padding="same", name="conv1"), alpha)
    layer2 = layers.lrelu(layers.conv2d(layer1, 64, 5, strides=2, padding="same", name="conv2"), alpha)
    flatten = tf.reshape(layer2, [-1, 7 * 7 * 64])
    layer3 = layers.lrelu(layers.dense(flatten, 512, "dense3"), alpha)
    return layers.dense(layer3, 1, "logits")


PYIMAGESEARCH_BATCH = 128
PYIMAGESEARCH = ArchSpec(
    name="pyimagesearch",
    image_shape=IMAGE_SHAPE,
    generator=pyimagesearch_generator,
    discriminator=pyimagesearch_discriminator,
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


# --------------------------------------------------------------------------- the short TF2 example
def tf2_minimal_generator(noise: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """noise -> dense 3x3x512 -> 7x7x256 -> 14x14x128 -> 28x28x64, tanh -> a per-pixel dense to 1 channel.

    The last layer is linear, as the write-up has it: the output is not squashed into [-1, 1] (the
    sampler's uint8 conversion clips it).
    """
    layer1 = tf.reshape(layers.dense(noise, 3 * 3 * 512, "dense1"), [-1, 3, 3, 512])  # linear

    layer2 = layers.conv2d_transpose(
        layer1, 256, 3, strides=2, padding="valid", name="conv_transpose2"
    )  # 7x7
    layer2 = layers.batch_norm(tf.nn.relu(layer2), training, "batch_norm2", **_bn(config))

    layer3 = layers.conv2d_transpose(
        layer2, 128, 2, strides=2, padding="valid", name="conv_transpose3"
    )  # 14x14
    layer3 = layers.batch_norm(tf.nn.relu(layer3), training, "batch_norm3", **_bn(config))

    layer4 = layers.conv2d_transpose(
        layer3, 64, 2, strides=2, padding="valid", name="conv_transpose4"
    )  # 28x28
    layer4 = tf.tanh(layer4)

    # A Dense(1) on a [N, 28, 28, 64] tensor acts on the last axis: a 1x1 convolution.
    return layers.conv2d(layer4, IMAGE_SHAPE[-1], 1, strides=1, padding="valid", name="pixel_dense5")


def tf2_minimal_discriminator(
    images: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
    """images -> 13x13x64 -> 4x4x128 -> 1x1x256 -> logit; ReLU then BN. Keras's default "valid" padding."""
    layer1 = layers.conv2d(images, 64, 4, strides=2, padding="valid", name="conv1")
    layer1 = layers.batch_norm(tf.nn.relu(layer1), training, "batch_norm1", **_bn(config))

    layer2 = layers.conv2d(layer1, 128, 4, strides=3, padding="valid", name="conv2")
    layer2 = layers.batch_norm(tf.nn.relu(layer2), training, "batch_norm2", **_bn(config))

    layer3 = tf.nn.relu(layers.conv2d(layer2, 256, 4, strides=3, padding="valid", name="conv3"))
    flatten = tf.reshape(layer3, [-1, 256])
    return layers.dense(flatten, 1, "logits")


TF2_MINIMAL = ArchSpec(
    name="tf2_minimal",
    image_shape=IMAGE_SHAPE,
    generator=tf2_minimal_generator,
    discriminator=tf2_minimal_discriminator,
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

OTHER_ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec for spec in (TF_TUTORIAL, KERAS_MLP, PYIMAGESEARCH, TF2_MINIMAL)
}
