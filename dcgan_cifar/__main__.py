"""`python -m dcgan_cifar train|sample`: the notebook's DCGAN on one class of CIFAR-10 (default horse)."""

from __future__ import annotations

from common.quiet import start_quietly

start_quietly()  # before anything imports TensorFlow: its start-up lines only with --verbose

import sys
from collections.abc import Sequence
from typing import Any

from common.cli import main
from common.config import Config
from common.data import CIFAR10_CLASSES, ImageSet, load_cifar10, resolve_cifar_class
from common.modules import DatasetModule
from common.settings import DATA, FIXED, Setting
from dcgan_cifar import model
from dcgan_cifar.model import DATASETS

DEFAULT_CLASS = "horse"


def load_training_images(config: Config) -> ImageSet:
    return load_cifar10("train", config.data_dir, label=config.class_label)


# --class NAME|LABEL -> Config.class_label (resolve_cifar_class: DataError, exit 2, for an unknown class);
# the class is the data the run learns, so --resume refuses another.
CLASS = Setting(
    "class_label",
    int,
    DATA,
    f"the CIFAR-10 class to learn: a name ({', '.join(CIFAR10_CLASSES)}) or a label 0-9",
    flag="--class",
    low=0,
    high=len(CIFAR10_CLASSES) - 1,
    unset="every class",
    resume=FIXED,
    parse=resolve_cifar_class,
    metavar="CLASS",
    default_text=DEFAULT_CLASS,
)


def run_name(dataset: str, flags: dict[str, Any]) -> str:
    """The default run directory's name: the data set and the class, e.g. cifar10-horse."""
    label = flags.get("class_label")
    return f"{dataset}-{CIFAR10_CLASSES[resolve_cifar_class(DEFAULT_CLASS) if label is None else label]}"


MODULE = DatasetModule(
    prog="dcgan_cifar",
    datasets=DATASETS,
    architectures={model.SPEC.name: model.SPEC},
    default_arch="notebook",
    defaults={"class_label": resolve_cifar_class(DEFAULT_CLASS)},  # the architecture sets the rest
    load_data=load_training_images,
    settings=(CLASS,),
    run_name=run_name,
    # D keeps the notebook's dropout on the horses: without it, D won from step 3500 of 50 epochs on
    # (D(G(z)) to 0, FID 727; with it 37.8: seed 1, docs/quality.md). No categorical code: it was measured
    # on MNIST's ten digits (2026-12-06), not on one class of horses.
    recipe_overrides={"improved": {"keep_prob": Config().keep_prob, "info_codes": 0}},
)


def cli(argv: Sequence[str] | None = None) -> int:
    return main(MODULE, argv)


if __name__ == "__main__":
    sys.exit(cli())
