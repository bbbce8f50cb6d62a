"""The notebook's CIFAR-10 DCGAN: the MNIST notebook's generator with a SAME stride-2 second layer
and three output channels (see dcgan_mnist.model.notebook_generator).

The discriminator is the MNIST one (dcgan_mnist.model.discriminator): three stride-2 convolutions take
32x32x3 to 4x4x512 just as they take 28x28x1 there. The quirks switch works as in dcgan_mnist/model.py.
"""

from __future__ import annotations

import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec
from common.layers import SeedStream, Training
from dcgan_mnist.model import discriminator, notebook_generator

IMAGE_SHAPE = (32, 32, 3)


def generator(noise: tf.Tensor, training: Training, config: Config, seeds: SeedStream | None) -> tf.Tensor:
    """noise [N, noise_dim] -> images [N, 32, 32, 3] in [-1, 1]; 4x4 grows to 8x8 (SAME, stride 2)."""
    return notebook_generator(noise, training, config, seeds, IMAGE_SHAPE, 2, "same")


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
