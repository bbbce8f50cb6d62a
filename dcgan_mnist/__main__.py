"""`python -m dcgan_mnist train|sample`: the notebook's DCGAN on MNIST or Fashion-MNIST."""

from __future__ import annotations

from common.quiet import start_quietly

start_quietly()  # before anything imports TensorFlow: its start-up lines only with --verbose

import sys
from collections.abc import Sequence

from common.cli import main
from common.config import Config
from common.data import ImageSet, load_mnist
from common.modules import DatasetModule
from dcgan_mnist import keras_mlp, model, pyimagesearch, tf2_minimal, tf_tutorial
from dcgan_mnist.model import DATASETS

# The notebook's DCGAN (model.py) and the four write-ups, each a module with the notebook's functions.
ARCHITECTURES = {
    module.SPEC.name: module.SPEC for module in (model, tf_tutorial, keras_mlp, pyimagesearch, tf2_minimal)
}


def load_training_images(config: Config) -> ImageSet:
    return load_mnist(config.dataset, "train", config.data_dir)


MODULE = DatasetModule(
    prog="dcgan_mnist",
    datasets=DATASETS,
    architectures=ARCHITECTURES,
    default_arch="notebook",
    defaults={},  # common.config.Config's defaults are this notebook's
    load_data=load_training_images,
)


def cli(argv: Sequence[str] | None = None) -> int:
    return main(MODULE, argv)


if __name__ == "__main__":
    sys.exit(cli())
