"""Every setting of `train`, declared once.

A `Setting` carries a setting's flag, type, allowed choices or range, help text and help group, and what
`--resume` may do with it. From the table below come `train`'s flags and their --help (common.cli),
`Config.validate()` (common.config; the few rules that tie two settings together stay code there), and
the resume check. `Config`'s fields and defaults (the notebook's) stay in common/config.py: they are the
keys of config.json. A dataset module declares its own settings the same way (DatasetModule.settings,
e.g. dcgan_cifar's --class). So a new flag is its declaration, its Config field and the code that uses it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable
from typing import Any


class ConfigError(ValueError):
    """A setting a run cannot start with. The CLI prints it on one line and exits 2."""


# ------------------------------------------------------------------------------------------ choices
NOISES = ("uniform", "normal")  # z's distribution: uniform(-1, 1) or normal(0, 1)
QUIRKS = ("fixed", "original")  # original: the notebook's bugs, reproduced for study
# constant; linear: to 0 at the last step; inverse_time: lr / (1 + step * lr / epochs), Keras's legacy
# Adam(decay=lr / epochs) as the pyimagesearch DCGAN used it.
LR_DECAYS = ("constant", "linear", "inverse_time")
# auto: per kind of CPU, as measured (common.speed.CPU_KINDS): bf16 with AMX and on AMD Zen 4+, else float32.
PRECISIONS = ("auto", "float32", "bfloat16")
# Where the sampler's batch-norm statistics come from (common.sampling): recalibrated (one exact pass
# of the generator in training mode before sampling) or the moving averages training kept.
SAMPLER_STATS = ("recalibrated", "moving")
# sigmoid cross-entropy (the notebook, with its label smoothing) or the hinge loss.
LOSSES = ("bce", "hinge")
# How the notebook generator doubles the image size: its stride-2 transposed convolutions (the notebook),
# or a nearest-neighbour resize x2 followed by a stride-1 convolution, the standard cure for the
# checkerboard artifacts of a kernel (3) that the stride (2) does not divide
# (common.ingredients.ResizeUpsampling).
UPSAMPLES = ("transpose", "resize")
# How the notebook discriminator keeps its layers in check: batch norm on layers 2 and 3 (the notebook),
# spectral normalization of every kernel instead (Miyato et al. 2018, as SNGAN's D: no batch norm), or
# both (common/layers.py: spectral_normalize; common.ingredients.network_layers).
D_NORMS = ("batch", "spectral", "both")
# --info-codes: the most values a categorical latent code may take (a one-hot block of z; common.streams).
MAX_INFO_CODES = 1_000
# Named sets of settings over the notebook's, `train --recipe NAME` (flags given beside it still win).
# "improved" is what benchmarks.recipes measured best for the notebook's own networks at the 5-epoch
# MNIST budget: docs/quality.md has each ingredient's effect over seeds and the commands. A dataset
# module may change a recipe where its data measured otherwise (DatasetModule.recipe_overrides).
RECIPES: dict[str, dict[str, Any]] = {
    "notebook": {},
    "improved": {"g_ema_decay": 0.999, "g_keep_prob": 1.0, "keep_prob": 1.0, "info_codes": 10},
}

# ------------------------------------------------------------------------------- groups and rules
# --help's sections, in this order, with what each holds.
DATA = "data and architecture"
NOTEBOOK = "the notebook's hyper-parameters"
RECIPE = "recipe ingredients"
OUTPUTS = "run outputs"
SPEED = "speed"
GROUPS: dict[str, str] = {
    DATA: "what the run learns, and with which networks",
    NOTEBOOK: "what the notebook sets, at its values unless --arch brings others",
    RECIPE: "what a --recipe sets over the notebook (docs/quality.md measures each; benchmarks.recipes)",
    OUTPUTS: "what the run writes, and when",
    SPEED: "how fast the same training runs",
}

# What --resume may do with a setting:
FREE = "free"  # change it (e.g. --max-steps, --eval-every)
# refuse a change: it defines the graph's variables or the data the run learns, so a checkpoint only fits
# a run that agrees on it
FIXED = "fixed"
# refuse a change: the data order and the noise are drawn from it, so changing it would silently make
# another run than the one that never stopped
FIXED_ORDER = "fixed-order"
FIXED_RECIPE = "fixed-recipe"  # refuse a change: the run's settings came from that recipe (--recipe)
# refuse a change: config.json says what the whole run trained in (--precision), and a resume keeps it
FIXED_PRECISION = "fixed-precision"
RESUME_RULES = (FREE, FIXED, FIXED_ORDER, FIXED_RECIPE, FIXED_PRECISION)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of `train`: the Config field (config.json's key) and everything its flag needs.

    A number's range is [low, high], an end left open with open_low / open_high and a missing end None;
    `special` names values with a meaning of their own, ((0, "off"),): one outside the range is allowed
    too (--info-codes: 0, or 2 to 1000). `unset` non-empty: None is allowed and means that (the setting a
    refinement falls back on: "the --keep-prob value"). `needs_arch` names the ArchSpec attribute that says
    what an architecture implements: a tuple of the values it offers, or a bool (False: the setting must
    keep Config's default there).
    """

    field: str
    kind: type  # int, float, str or bool (bool: a flag without a value, which sets the other value)
    group: str
    help: str | Callable[[Any], str]  # a callable: from the dataset module (e.g. its recipes' settings)
    flag: str = ""  # default: --FIELD with dashes
    choices: tuple[str, ...] = ()
    module_choices: str = ""  # the DatasetModule attribute whose entries are the choices (--dataset, --arch)
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    special: tuple[tuple[Any, str], ...] = ()
    unset: str = ""
    resume: str = FREE
    needs_arch: str = ""
    # the flag's text -> the value, where argparse's int or float will not do; its errors exit 2 too
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    default_text: str = ""  # --help's default where no value says it (e.g. --out's)

    def __post_init__(self) -> None:
        if self.kind not in (int, float, str, bool):
            raise ValueError(f"{self.field}: kind must be int, float, str or bool, not {self.kind!r}")
        if self.group not in GROUPS:
            raise ValueError(f"{self.field}: unknown help group {self.group!r}")
        if self.resume not in RESUME_RULES:
            raise ValueError(f"{self.field}: unknown resume rule {self.resume!r}")
        numeric = self.low is not None or self.high is not None
        if numeric and self.kind not in (int, float):
            raise ValueError(f"{self.field}: a range needs a numeric kind")
        if self.choices and self.kind is not str:
            raise ValueError(f"{self.field}: choices need kind str")

    @property
    def option(self) -> str:
        """The command-line flag, e.g. --batch-size."""
        return self.flag or "--" + self.field.replace("_", "-")

    def help_text(self, module: Any) -> str:
        return self.help(module) if callable(self.help) else self.help

    def meaning(self, value: Any) -> str:
        """What a special value means ("off"), or ""."""
        return next((text for special, text in self.special if special == value), "")

    def show(self, value: Any) -> str:
        """A value as --help shows a default: 0.001, "0, off", or what None means."""
        if value is None:
            return self.unset
        meaning = self.meaning(value)
        return f"{_text(value)}, {meaning}" if meaning else _text(value)

    def in_range(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def check(self, value: Any) -> None:
        """ConfigError, naming the flag, when `value` is no value of this setting."""
        if value is None and self.unset:
            return
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{self.option} must be a finite number, got {value!r}")
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{self.option} must be an integer, got {value!r}")
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{self.option}: {self.field} must be true or false, got {value!r}")
        elif self.choices:
            if not isinstance(value, str) or value not in self.choices:
                raise ConfigError(f"{self.option} must be one of {', '.join(self.choices)}, got {value!r}")
        elif not isinstance(value, str):
            raise ConfigError(f"{self.option} must be a string, got {value!r}")
        if self.kind in (int, float) and not self.in_range(value) and not self.meaning(value):
            raise ConfigError(f"{self.option} must be {self._range_words(value)}, got {value}")

    def _range_words(self, value: float) -> str:
        """The range as the error message says it: 'at least 1', 'in (0, 1]', '0 (off) or 2 to 1000'."""
        outside = [f"{_text(v)} ({text})" for v, text in self.special if not self.in_range(v)]
        inside = [f"{_text(v)}: {text}" for v, text in self.special if self.in_range(v)]
        low, high = self.low, self.high
        if self.kind is int and not self.open_low and not self.open_high:
            if outside and low is not None and high is not None:
                words = f"{low} to {high}"
            elif low is not None and value < low:
                words = "a non-negative integer" if low == 0 and not outside else f"at least {low}"
            else:
                words = f"at most {high}"
        elif low is not None and high is not None:
            words = f"in {'(' if self.open_low else '['}{low:g}, {high:g}{')' if self.open_high else ']'}"
        elif low == 0 and self.open_low:
            words = "positive"
        elif low is not None:
            words = f"{'above' if self.open_low else 'at least'} {low:g}"
        else:
            words = f"{'below' if self.open_high else 'at most'} {high:g}"
        if outside:
            words = " or ".join([*outside, words])
        if inside:
            words += f" ({', '.join(inside)})"
        return words

    def resume_refusal(self, saved: Any, given: Any, run: Any) -> str | None:
        """Why `train --resume` of the run in `run`, whose setting is `saved`, refuses `given`; None: it
        does not."""
        if given is None or given == saved or self.resume == FREE:
            return None
        if self.resume == FIXED_RECIPE:
            return (
                f"--resume with another recipe: {run} was started with {self.option} {saved}, not {given}; "
                "start a new run with another --out"
            )
        if self.resume == FIXED_PRECISION:
            return (
                f"--resume with another {self.option} ({given!r}): {run} trained in {saved}, and config.json "
                f"records one precision for the whole run; leave {self.option} out to go on in {saved}, or "
                "start a new run with another --out"
            )
        if self.resume == FIXED_ORDER:
            return (
                f"--resume with another {self.option} ({given!r}; the run has {saved!r}) would change the "
                "data order, so the run would no longer be the one that never stopped; start a new run with "
                "another --out"
            )
        return (
            f"--resume with a different architecture: {self.field} is {saved!r} in {run}, not {given!r}; "
            "start a new run with another --out"
        )

    def arch_offers_more(self, spec: Any, default: Any) -> bool:
        """Whether the architecture `spec` implements a value of this setting other than `default`."""
        offered = getattr(spec, self.needs_arch)
        return offered if isinstance(offered, bool) else any(value != default for value in offered)

    def arch_refusal(self, spec: Any, value: Any, default: Any) -> str | None:
        """Why the architecture `spec` cannot train with `value` (its networks never read it), or None."""
        if not self.needs_arch:
            return None
        offered = getattr(spec, self.needs_arch)
        if isinstance(offered, bool):
            if offered or value == default:
                return None
            meaning = self.meaning(default)
            return (
                f"{self.option} is not available for arch {spec.name!r}, whose networks implement only "
                f"{self.option} {_text(default)}{f' ({meaning})' if meaning else ''}"
            )
        if value in offered:
            return None
        offers = ", ".join(offered)
        return f"{self.option} {value} is not available for arch {spec.name!r}, which offers {offers}"


def folder_path(text: str) -> str:
    """--images DIR as an absolute path (config.json's, so that --resume and evaluations find it from
    anywhere); symbolic links are kept."""
    if not text.strip():
        raise ConfigError("--images is empty: name the folder of images")
    return os.path.abspath(os.path.expanduser(text))


def _text(value: Any) -> str:
    """A value as help and messages write it: 0.001, 1 for 1.0, 'batch'."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _recipe_help(module: Any) -> str:
    recipes = "; ".join(
        f"{name}: "
        + (", ".join(f"{k}={v}" for k, v in module.recipe(name).items()) or "the notebook's settings")
        for name in RECIPES
    )
    return (
        f"a named set of the settings below, measured in docs/quality.md ({recipes}); flags given beside it "
        "override its settings"
    )


# The table: --help shows each group's settings in this order. The upper ends of the sizes are far above
# any DCGAN setting and far below what exhausts memory in the graph or in one sess.run: a run past them would
# fail at step 1 (or crawl) instead of at the command line.
SETTINGS: tuple[Setting, ...] = (
    # data and architecture
    Setting("dataset", str, DATA, "the data set to learn", module_choices="datasets", resume=FIXED),
    Setting(
        "arch",
        str,
        DATA,
        "the networks and how a step runs (docs/architectures.md)",
        module_choices="architectures",
        resume=FIXED,
    ),
    Setting(
        "data_dir", str, DATA, "where the data files are", unset="$DCGAN_DATA_DIR, the Keras cache, download"
    ),
    # The folder may move between runs: --resume compares its contents (config.json's checksum), not its path.
    Setting(
        "images",
        str,
        DATA,
        "learn a folder of your own PNG, JPEG, BMP or GIF images instead (read recursively; first-level "
        "sub-folders are classes for the evaluator), converted once to this module's image shape and cached",
        unset="the data set's own files",
        metavar="DIR",
        parse=folder_path,
    ),
    # the notebook's hyper-parameters
    Setting("epochs", int, NOTEBOOK, "epochs over the training set", low=1, high=1_000_000),
    Setting(
        "max_steps",
        int,
        NOTEBOOK,
        "stop after this many steps in total (also on resume)",
        low=1,
        unset="--epochs decides",
    ),
    Setting("batch_size", int, NOTEBOOK, "images per step", low=1, high=65_536, resume=FIXED_ORDER),
    Setting("noise_dim", int, NOTEBOOK, "length of z's noise", low=1, high=10_000, resume=FIXED),
    Setting("noise", str, NOTEBOOK, "z's distribution: uniform(-1, 1) or normal(0, 1)", choices=NOISES),
    Setting("learning_rate", float, NOTEBOOK, "Adam learning rate of both networks", low=0, open_low=True),
    Setting("beta1", float, NOTEBOOK, "Adam beta1", low=0, high=1, open_high=True),
    Setting(
        "label_smoothing",
        float,
        NOTEBOOK,
        "one-sided: real targets are 1 - this",
        low=0,
        high=1,
        open_high=True,
    ),
    Setting("lrelu_alpha", float, NOTEBOOK, "leaky ReLU slope", low=0, high=1, open_high=True),
    Setting("keep_prob", float, NOTEBOOK, "dropout keep probability", low=0, high=1, open_low=True),
    Setting(
        "bn_momentum", float, NOTEBOOK, "batch-norm moving-average momentum", low=0, high=1, open_high=True
    ),
    Setting("bn_epsilon", float, NOTEBOOK, "batch-norm epsilon", low=0, open_low=True),
    Setting(
        "quirks",
        str,
        NOTEBOOK,
        "original: reproduce the notebook's bugs (one UPDATE_OPS for both optimizers, dropout when sampling, "
        "a lost leaky ReLU in D), for study",
        choices=QUIRKS,
        resume=FIXED,
    ),
    # recipe ingredients
    Setting("recipe", str, RECIPE, _recipe_help, choices=tuple(RECIPES), resume=FIXED_RECIPE),
    Setting(
        "g_keep_prob",
        float,
        RECIPE,
        "the generator's dropout keep probability",
        low=0,
        high=1,
        open_low=True,
        unset="the --keep-prob value",
    ),
    Setting(
        "d_learning_rate",
        float,
        RECIPE,
        "D's own Adam learning rate, two time-scales",
        low=0,
        open_low=True,
        unset="the --learning-rate value",
    ),
    Setting(
        "g_ema_decay",
        float,
        RECIPE,
        "sample from an exponential moving average of G's weights, e.g. 0.999",
        low=0,
        high=1,
        open_high=True,
        special=((0.0, "off"),),
        resume=FIXED,  # the average's variables
    ),
    Setting("loss", str, RECIPE, "bce: sigmoid cross-entropy; hinge", choices=LOSSES),
    Setting(
        "g_top_k",
        float,
        RECIPE,
        "top-k training: G's loss over this share of each batch's fakes, those D scores highest",
        low=0,
        high=1,
        open_low=True,
        special=((1.0, "every fake"),),
    ),
    Setting(
        "lr_decay",
        str,
        RECIPE,
        "learning-rate schedule: constant; linear to 0; inverse_time: lr / (1 + step * lr / epochs), Keras's "
        "legacy Adam decay",
        choices=LR_DECAYS,
    ),
    Setting(
        "upsample",
        str,
        RECIPE,
        "how the generator doubles the image size: transpose (stride-2 transposed convolutions) or resize "
        "(nearest-neighbour x2 + a stride-1 convolution, against checkerboard artifacts)",
        choices=UPSAMPLES,
        resume=FIXED,  # a resize generator has convolution kernels where the notebook has transposed ones
        needs_arch="upsamples",
    ),
    Setting(
        "d_norm",
        str,
        RECIPE,
        "how D's layers are normalized: batch (batch norm on layers 2 and 3), spectral (every kernel divided "
        "by its largest singular value, no batch norm) or both",
        choices=D_NORMS,
        resume=FIXED,  # D's batch-norm and power-iteration variables
        needs_arch="d_norms",
    ),
    Setting(
        "info_codes",
        int,
        RECIPE,
        "z also holds a categorical code of this many values that D's extra head learns to read back from "
        "G's images (InfoGAN)",
        low=2,
        high=MAX_INFO_CODES,
        special=((0, "off"),),
        resume=FIXED,  # the width of G's first kernel and of D's logits
        needs_arch="info_codes",
    ),
    Setting(
        "sampler_stats",
        str,
        RECIPE,
        "batch-norm statistics of the sampler (grids, sample, evaluations): recalibrated (one exact "
        "training-mode pass before sampling) or the moving averages (docs/quality.md measures both)",
        choices=SAMPLER_STATS,
    ),
    # run outputs
    Setting(
        "out",
        str,
        OUTPUTS,
        "run directory",
        default_text="runs/DATASET, with -ARCH and -RECIPE for another --arch or --recipe",
    ),
    Setting(
        "seed",
        int,
        OUTPUTS,
        "seed of weights, data order, noise, dropout",
        low=0,
        high=2**31 - 1,  # TensorFlow's op seeds
        resume=FIXED_ORDER,
    ),
    Setting("log_every", int, OUTPUTS, "steps per history.csv row and TensorBoard point", low=1),
    Setting("sample_every", int, OUTPUTS, "steps between sample grids", low=1),
    Setting("checkpoint_every", int, OUTPUTS, "steps between checkpoints", low=1),
    Setting("keep_checkpoints", int, OUTPUTS, "checkpoints kept", low=1),
    Setting("grid_size", int, OUTPUTS, "images in the fixed sample grid", low=1, high=1_024),
    Setting(
        "eval_every",
        int,
        OUTPUTS,
        "steps between quality evaluations (common.evaluate; the best checkpoint)",
        low=1,
        special=((0, "never"),),
    ),
    # FID needs a covariance, so two images at least (common.evaluate.TrainingEvaluator)
    Setting("eval_samples", int, OUTPUTS, "generated images per evaluation during training", low=2),
    # speed
    Setting(
        "precision",
        str,
        SPEED,
        "auto: what measured fastest at the same sample quality on this kind of CPU "
        "(common.speed.CPU_KINDS): bf16 mixed precision with AMX and on AMD with AVX512_BF16, float32 "
        "elsewhere and on a GPU (config.json records the choice; docs/benchmarks.md)",
        choices=PRECISIONS,
        resume=FIXED_PRECISION,
    ),
    Setting(
        "deterministic",
        bool,
        SPEED,
        "allow TensorFlow's nondeterministic kernels (a little faster; reruns and resumes may differ in the "
        "last bits)",
        flag="--nondeterministic",
    ),
)


def check_settings(values: Any, settings: Iterable[Setting]) -> None:
    """ConfigError for the first of `settings` whose value in `values` (a Config) it does not allow."""
    for setting in settings:
        setting.check(getattr(values, setting.field))
