"""The MNIST notebook's DCGAN, in the notebook's order and under its names.

Read it beside the original, top to bottom: inputs, generator, discriminator, losses, optimizers, the
training loop. Each part is a few lines here over the shared machinery in common/, which says where it
lives: the layers (common/layers.py: batch norm with moving averages and UPDATE_OPS), the networks the
MNIST and CIFAR notebooks share (common/notebook.py), the graph (common/gan.py) and the Session loop
(common/train.py). The notebook's quirks are reproduced with `--quirks original`.
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
from dcgan_mnist.architectures import OTHER_ARCHITECTURES

IMAGE_SHAPE = (28, 28, 1)
DATASETS = ("mnist", "fashion_mnist")


def model_inputs(n_images: int, config: Config) -> gan.Inputs:
    """The notebook's `input_real` [None, 28, 28, 1] and `input_z` [None, z_dim] placeholders.

    Fed by default from the graph itself: the training set sits in a uint8 variable, each step slices
    its batch and draws its noise from (seed, step), so the loop needs no feed_dict.
    """
    return gan.model_inputs(IMAGE_SHAPE, n_images, config)


def generator(z: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """z -> dense 4x4x512 -> 7x7x256 (VALID, stride 1) -> 14x14x128 -> 28x28x1, tanh.

    Batch norm, leaky ReLU and dropout after every hidden layer (common/notebook.py, layer by layer).
    """
    return notebook.generator(z, training, config, layers, IMAGE_SHAPE, 1, "valid")


def discriminator(images: tf.Tensor, training: Training, config: Config, layers: Layers) -> tf.Tensor:
    """images 28x28x1 -> 14x14x128 -> 7x7x256 -> 4x4x512 -> logit; no batch norm on the first layer."""
    return notebook.discriminator(images, training, config, layers)


NOTEBOOK = ArchSpec(
    name="notebook",
    image_shape=IMAGE_SHAPE,
    generator=generator,
    discriminator=discriminator,
    defaults={},  # the Config defaults are the notebook's
    schedule="g_then_d",  # the notebook's two sess.run calls: G's update, then D's
    d_batches="separate",  # D called on the real batch and on the fake batch
    upsamples=("transpose", "resize"),  # --upsample: common/notebook.py
    d_norms=("batch", "spectral", "both"),  # --d-norm: common/notebook.py
    info_codes=True,  # --info-codes: common/notebook.py
    description="The notebook's DCGAN: dense to 4x4x512, three transposed convolutions; conv D.",
)
ARCHITECTURES: dict[str, ArchSpec] = {NOTEBOOK.name: NOTEBOOK, **OTHER_ARCHITECTURES}


def model_loss(
    inputs: gan.Inputs, config: Config, scope: str = "step", impl: LayerImpl = FLOAT32_IMPL
) -> gan.Tower:
    """G(z), D(x), D(G(z)) in training mode and the sigmoid cross-entropy losses, with one-sided label
    smoothing (real targets 1 - label_smoothing): the notebook's `model_loss`."""
    return gan.model_loss(NOTEBOOK, config, inputs, scope, gan.FIRST_TOWER_STREAM, False, impl=impl)


def model_opt(
    inputs: gan.Inputs, config: Config, total_steps: int, impl: LayerImpl = FLOAT32_IMPL
) -> tuple[tuple[gan.Tower, ...], gan.Losses, gan.TrainOps]:
    """The two Adam optimizers, each under `tf.control_dependencies` on its own network's batch-norm
    updates from UPDATE_OPS; D's update runs after G's, on the updated G's fakes. It builds its forward
    passes with model_loss's function (common.gan.model_loss)."""
    return gan.model_opt(NOTEBOOK, config, inputs, total_steps, impl)


def train(
    config: Config, data: ImageSet, run: RunDir, resume: bool = False, progress: bool = True
) -> loop.TrainResult:
    """The notebook's `train`: the whole graph built once (model_inputs, model_opt), the
    graph finalized, then one `sess.run` per step in a Session, with grids, history and checkpoints."""
    return loop.train(NOTEBOOK, config, data, run, resume, progress=progress)
