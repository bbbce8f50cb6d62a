"""The dataset modules, as they hand themselves to the shared code.

A dataset package (dcgan_mnist, dcgan_cifar) describes itself in one `DatasetModule` (its data sets,
architectures, data loader, extra flags) and registers it under the entry-point group
`dcgan_tf1.dataset_modules` (setup.cfg). The shared CLI gets its module handed in; the tools that open
any run (common.evaluate, common.compare) look the run's module up here by its data set. So `common/`
never imports a dataset package: the dependency points one way, from the dataset modules to common.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from common.config import Config, ConfigError
from common.data import ImageSet
from common.gan import ArchSpec

ENTRY_POINT_GROUP = "dcgan_tf1.dataset_modules"


class DatasetModule(NamedTuple):
    """What a dataset package (dcgan_mnist, dcgan_cifar) tells the shared code."""

    prog: str
    datasets: tuple[str, ...]
    architectures: Mapping[str, ArchSpec]
    default_arch: str
    defaults: Mapping[str, Any]  # the module's defaults over Config's (e.g. CIFAR's 50 epochs)
    load_data: Callable[[Config], ImageSet]  # the training images of a config
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    flags_to_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # e.g. --class -> class_label
    # the default run directory's name from (dataset, flags), e.g. cifar10-horse; None: the dataset
    run_name: Callable[[str, dict[str, Any]], str] | None = None


@functools.cache
def registered_modules() -> tuple[DatasetModule, ...]:
    """Every installed dataset module, in name order."""
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    return tuple(point.load() for point in found)


def module_for_dataset(dataset: str) -> DatasetModule:
    """The dataset module that trains `dataset` (ConfigError, exit 2, when none does)."""
    modules = registered_modules()
    for module in modules:
        if dataset in module.datasets:
            return module
    if not modules:
        raise ConfigError(
            f"no dataset module is installed ({ENTRY_POINT_GROUP} entry points): run `pip install -e .`"
        )
    known = ", ".join(d for module in modules for d in module.datasets)
    raise ConfigError(f"data set {dataset!r} belongs to no installed dataset module (known: {known})")


def run_architecture(config: Config) -> ArchSpec:
    """The ArchSpec a run's config names, from the module of its data set."""
    module = module_for_dataset(config.dataset)
    if config.arch not in module.architectures:
        raise ConfigError(f"the run's architecture {config.arch!r} is unknown for data set {config.dataset}")
    return module.architectures[config.arch]
