"""The CIFAR-10 notebook's DCGAN, in the notebook's order and under its names.

The same story as dcgan_mnist/model.py (inputs, generator, discriminator, losses, optimizers, the
training loop), on 32x32x3 images of one CIFAR-10 class. The two notebooks share their networks
(common/notebook.py); what differs is the image shape, the generator's second layer (a SAME stride-2
transposed convolution: 4x4 -> 8x8) and the defaults (50 epochs, a grid of 15).
"""

from __future__ import annotations

import tensorflow as tf

from common import gan, notebook
from common import train as loop
from common.config import Config
from common.data import ImageSet
from common.gan import ArchSpec
from common.layers import FLOAT32_IMPL, LayerImpl, Layers, Training
from common.rundir import RunDir

IMAGE_SHAPE = (32, 32, 3)
DATASETS = ("cifar10",)


def model_inputs(n_images: int, config: Config) -> gan.Inputs:
    """The notebook's `input_real` [None, 32, 32, 3] and `input_z` placeholders, fed from the graph."""
    return gan.model_inputs(IMAGE_SHAPE, n_images, config)


def generator(z: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """z -> dense 4x4x512 -> 8x8x256 (SAME, stride 2) -> 16x16x128 -> 32x32x3, tanh."""
    return notebook.generator(z, training, config, layers, IMAGE_SHAPE, 2, "same")


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images 32x32x3 -> 16x16x128 -> 8x8x256 -> 4x4x512 -> logit; no batch norm on the first layer."""
    return notebook.discriminator(images, training, config, layers)


NOTEBOOK = ArchSpec(
    name="notebook",
    image_shape=IMAGE_SHAPE,
    generator=generator,
    discriminator=discriminator,
    # The CIFAR notebook trained 50 epochs and showed a grid of 15; the rest are the Config defaults.
    defaults={"epochs": 50, "grid_size": 15},
    schedule="g_then_d",
    d_batches="separate",
    upsamples=("transpose", "resize"),  # --upsample: common/notebook.py
    d_norms=("batch", "spectral", "both"),  # --d-norm: common/notebook.py
    info_codes=True,  # --info-codes: common/notebook.py
    description="The CIFAR notebook's DCGAN: dense to 4x4x512, three stride-2 transposed convolutions "
    "to 32x32x3; the MNIST notebook's conv D.",
)
ARCHITECTURES: dict[str, ArchSpec] = {NOTEBOOK.name: NOTEBOOK}


def model_loss(
    inputs: gan.Inputs, config: Config, scope: str = "step", impl: LayerImpl = FLOAT32_IMPL
) -> gan.Tower:
    """G(z), D(x), D(G(z)) and the losses with one-sided label smoothing: the notebook's `model_loss`."""
    return gan.model_loss(NOTEBOOK, config, inputs, scope, gan.FIRST_TOWER_STREAM, False, impl=impl)


def model_opt(
    inputs: gan.Inputs, config: Config, total_steps: int, impl: LayerImpl = FLOAT32_IMPL
) -> tuple[tuple[gan.Tower, ...], gan.Losses, gan.TrainOps]:
    """The two Adam optimizers under their own networks' UPDATE_OPS; G's update, then D's."""
    return gan.model_opt(NOTEBOOK, config, inputs, total_steps, impl)


def train(
    config: Config, data: ImageSet, run: RunDir, resume: bool = False, progress: bool = True
) -> loop.TrainResult:
    """The notebook's `train`: the graph built once and finalized, then the Session loop."""
    return loop.train(NOTEBOOK, config, data, run, resume, progress=progress)
