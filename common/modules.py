"""The dataset modules, as they hand themselves to the shared code.

A dataset package (dcgan_mnist, dcgan_cifar) describes itself in one `DatasetModule` (its data sets,
architectures, data loader, its own settings) and registers it under the entry-point group
`dcgan_tf1.dataset_modules` (setup.cfg). The shared CLI gets its module handed in; the tools that open
any run (common.evaluate, common.compare) look the run's module up here by its data set. So `common/`
never imports a dataset package: the dependency points one way, from the dataset modules to common.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from common import settings
from common.architecture import ArchSpec
from common.config import RECIPES, Config, ConfigError
from common.data import ImageSet, folder_dataset
from common.rundir import RunDir, RunDirError, check_number, check_step, parse_best
from common.settings import Setting

ENTRY_POINT_GROUP = "dcgan_tf1.dataset_modules"


class DatasetModule(NamedTuple):
    """What a dataset package (dcgan_mnist, dcgan_cifar) tells the shared code."""

    prog: str
    datasets: tuple[str, ...]
    architectures: Mapping[str, ArchSpec]
    default_arch: str
    defaults: Mapping[str, Any]  # the module's defaults over Config's (e.g. CIFAR's 50 epochs)
    load_data: Callable[[Config], ImageSet]  # the training images of a config
    # its own settings of `train`, declared like common.settings.SETTINGS (e.g. dcgan_cifar's --class)
    settings: tuple[Setting, ...] = ()
    # the default run directory's name from (dataset, flags), e.g. cifar10-horse; None: the dataset
    run_name: Callable[[str, dict[str, Any]], str] | None = None
    # the module's settings over a recipe's (common.config.RECIPES), where its data set measured otherwise
    recipe_overrides: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def folder_dataset(self) -> str:
        """The data set name of this module's `train --images DIR` runs (common.data.folder)."""
        return folder_dataset(self.architectures[self.default_arch].image_shape)

    def recipe(self, name: str) -> dict[str, Any]:
        """The settings of `train --recipe NAME` for this module (an unknown name: none)."""
        return {**RECIPES.get(name, {}), **(self.recipe_overrides or {}).get(name, {})}


@functools.cache
def registered_modules() -> tuple[DatasetModule, ...]:
    """Every installed dataset module, in name order."""
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    return tuple(point.load() for point in found)


def module_for_dataset(dataset: str) -> DatasetModule:
    """The dataset module that trains `dataset` (ConfigError, exit 2, when none does)."""
    modules = registered_modules()
    for module in modules:
        if dataset in module.datasets or dataset == module.folder_dataset:
            return module
    if not modules:
        raise ConfigError(
            f"no dataset module is installed ({ENTRY_POINT_GROUP} entry points): run `pip install -e .`"
        )
    known = ", ".join(d for module in modules for d in (*module.datasets, module.folder_dataset))
    raise ConfigError(f"data set {dataset!r} belongs to no installed dataset module (known: {known})")


def run_architecture(config: Config, record: Mapping[str, Any] | None = None) -> ArchSpec:
    """The ArchSpec a run's config names, from the module of its data set; with the run's `record`
    (config.json), also checked against the image shape recorded there."""
    module = module_for_dataset(config.dataset)
    if config.arch not in module.architectures:
        raise ConfigError(f"the run's architecture {config.arch!r} is unknown for data set {config.dataset}")
    spec = module.architectures[config.arch]
    recorded = record.get("architecture") if isinstance(record, Mapping) else None
    shape = recorded.get("image_shape") if isinstance(recorded, Mapping) else None
    if shape is not None and list(shape) != list(spec.image_shape):
        raise RunDirError(
            f"config.json says images of shape {list(shape)}, but {config.dataset} / {config.arch} makes "
            f"{list(spec.image_shape)}: the file was changed by another program; restore it from the run's "
            "own settings"
        )
    return spec


def run_settings(run: RunDir) -> tuple[dict[str, Any], Config]:
    """config.json of a run and the Config in it, checked: the one way every command reads it.

    Each setting against its declaration (type, range, choices; the run's dataset module's own too) and
    the rules that tie settings together, and the fields a run learns as it goes (best, tracking,
    collapses, commands, architecture). A file that fails is named with what is wrong (RunDirError,
    exit 2), before anything is read or written on its word.
    """
    record = run.read_config()
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RunDirError(f'{run.config} holds no run settings (no "config" object)')
    damaged = f"{run.config} is damaged"
    restore = "it was changed by another program: fix that value or restore the file"
    config = Config.from_dict(record["config"])
    for setting in settings.SETTINGS:  # the data set's module, whose settings come next, needs a valid name
        try:
            setting.check(getattr(config, setting.field))
        except ConfigError as err:
            raise RunDirError(f'{damaged}: "{setting.field}": {err}; {restore}') from None
    owner = module_for_dataset(config.dataset)
    try:
        config.validate(owner.settings)
    except ConfigError as err:
        raise RunDirError(f"{damaged}: {err}; {restore}") from None
    try:
        check_learned(record)
    except ValueError as err:
        raise RunDirError(f"{damaged}: {err}; {restore}") from None
    return record, config


def check_learned(record: Mapping[str, Any]) -> None:
    """The fields of config.json besides the settings, where present, of the types their readers use
    (ValueError saying which is not)."""
    if record.get("best") is not None:
        try:
            parse_best(record["best"])
        except ValueError as err:
            raise ValueError(f'"best": {err}') from None
    tracking = record.get("tracking")
    if tracking is not None:
        if not isinstance(tracking, dict):
            raise ValueError('"tracking" is not an object')
        for key in ("noise_fid", "real_fid"):
            if tracking.get(key) is not None:
                check_number(tracking[key], f'"tracking" {key}')
    collapses = record.get("collapses")
    if collapses is not None and not (
        isinstance(collapses, list)
        and all(isinstance(c, dict) and {"first", "last", "reason"} <= set(c) for c in collapses)
    ):
        raise ValueError('"collapses" is not a list of stretches (first, last, reason)')
    if record.get("command") is not None and not isinstance(record["command"], str):
        raise ValueError('"command" is not a command line')
    commands = record.get("commands")
    if commands is not None and not (
        isinstance(commands, list) and all(isinstance(c, str) for c in commands)
    ):
        raise ValueError('"commands" is not a list of command lines')
    resumed = record.get("resumed")
    if resumed is not None and not (
        isinstance(resumed, list) and all(r is None or isinstance(r, str) for r in resumed)
    ):
        raise ValueError('"resumed" is not a list of checkpoints')
    architecture = record.get("architecture")
    if architecture is not None:
        if not isinstance(architecture, dict):
            raise ValueError('"architecture" is not an object')
        shape = architecture.get("image_shape")
        if shape is not None and not (
            isinstance(shape, list)
            and len(shape) == 3
            and all(check_step(d, "a dimension") > 0 for d in shape)
        ):
            raise ValueError(f'"architecture" image_shape {shape!r} is not an image shape')
        parameters = architecture.get("parameters")
        if parameters is not None and not (
            isinstance(parameters, dict) and all(check_step(v, "a count") >= 0 for v in parameters.values())
        ):
            raise ValueError('"architecture" parameters is not a count per network')
        for key in ("forward_flops_per_image", "train_step_flops_per_image"):  # a number, or one per network
            value = architecture.get(key)
            for number in value.values() if isinstance(value, dict) else [] if value is None else [value]:
                check_number(number, f'"architecture" {key}')
    for key in ("steps_per_epoch", "total_steps"):
        if record.get(key) is not None:
            check_step(record[key], f'"{key}"')


def open_run(
    run: RunDir, module: DatasetModule | None, command: str
) -> tuple[dict[str, Any], Config, ArchSpec]:
    """A run's config.json, Config and ArchSpec, checked before anything is read or written: the run
    belongs to `module` (None: any module) and its recorded image shape is its architecture's.

    `command` is what the user ran (e.g. "sample --run RUN"): a run of another module is refused with
    the command that opens it (ConfigError, exit 2).
    """
    record, config = run_settings(run)
    owner = module_for_dataset(config.dataset)
    if module is not None and owner.prog != module.prog:
        raise ConfigError(
            f"{run.path} is a {config.dataset} run, which {module.prog} cannot open: use "
            f"`python -m {owner.prog} {command}`"
        )
    return record, config, run_architecture(config, record)
