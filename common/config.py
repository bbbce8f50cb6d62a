"""Config: every setting of a run, frozen, saved as `config.json` next to its outputs.

Defaults are resolved in three layers: the notebook's values here, then the architecture spec's own
defaults (a dataset module or another write-up), then the flags the user gave.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

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
# checkerboard artifacts of a kernel (3) that the stride (2) does not divide (dcgan_mnist/model.py).
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


class ConfigError(ValueError):
    """A setting a run cannot start with. The CLI prints it on one line and exits 2."""


@dataclasses.dataclass(frozen=True)
class Config:
    # what and where
    dataset: str = "mnist"
    arch: str = "notebook"
    out: str = "runs/mnist"
    data_dir: str | None = None
    class_label: int | None = None  # CIFAR-10 class to train on; None for MNIST-like data
    # schedule
    epochs: int = 5
    max_steps: int | None = None
    batch_size: int = 64
    # model and optimizer (the notebook's defaults)
    noise_dim: int = 100
    noise: str = "uniform"  # uniform(-1, 1) or normal(0, 1)
    learning_rate: float = 0.001
    beta1: float = 0.4
    lr_decay: str = "constant"  # constant, linear (to 0 at the last step), or inverse_time (Keras decay)
    label_smoothing: float = 0.1  # one-sided: real targets are 1 - label_smoothing
    lrelu_alpha: float = 0.01
    keep_prob: float = 0.8
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    quirks: str = "fixed"  # fixed, or original: the notebook's bugs, reproduced for study
    # training-recipe ingredients (benchmarks.recipes sweeps them; the defaults are the notebook's)
    g_keep_prob: float | None = None  # the generator's dropout keep probability (None: keep_prob)
    d_learning_rate: float | None = None  # D's Adam learning rate (None: learning_rate; two time-scales)
    g_ema_decay: float = 0.0  # > 0: sample from an exponential moving average of G's weights
    loss: str = "bce"  # bce (sigmoid cross-entropy) or hinge
    g_top_k: float = 1.0  # G's loss over this share of each batch's fakes, those D scores highest (1: all)
    upsample: str = "transpose"  # transpose (the notebook) or resize: see UPSAMPLES
    d_norm: str = "batch"  # batch (the notebook), spectral or both: see D_NORMS
    # > 0: z also holds a categorical code of this many values, which D's extra head must recover from
    # G's images (InfoGAN, Chen et al. 2016): common.losses.info_loss; 0: off (the notebook)
    info_codes: int = 0
    # reproducibility and outputs
    seed: int = 0
    deterministic: bool = True  # TF op determinism: bit-exact resume and reruns; off is a little faster
    precision: str = "auto"  # auto, float32 or bfloat16; config.json records what auto chose
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    grid_size: int = 25
    eval_every: int = 250  # 0: never; see common.evaluate (quality tracking, the best checkpoint)
    eval_samples: int = 500
    sampler_stats: str = "recalibrated"  # how grids, `sample` and evaluations get BN statistics
    recipe: str = "notebook"  # the RECIPES entry the run started from (its settings are in the fields)

    @property
    def original_quirks(self) -> bool:
        return self.quirks == "original"

    @property
    def d_batch_norm(self) -> bool:  # D's layers 2 and 3 have batch norm (--d-norm batch or both)
        return self.d_norm != "spectral"

    @property
    def d_spectral_norm(self) -> bool:  # D's kernels are spectrally normalized (--d-norm spectral or both)
        return self.d_norm != "batch"

    @property
    def latent_dim(self) -> int:  # the width of z: the noise, then the categorical code's one-hot block
        return self.noise_dim + self.info_codes

    @property
    def generator_keep_prob(self) -> float:
        return self.keep_prob if self.g_keep_prob is None else self.g_keep_prob

    @property
    def discriminator_learning_rate(self) -> float:
        return self.learning_rate if self.d_learning_rate is None else self.d_learning_rate

    def validate(self) -> Config:
        """Raise ConfigError for any setting no run can use; return self.

        Every number is checked here, before anything is written: a NaN, an infinity or an absurd size
        would otherwise only show at step 1, as a non-finite loss or an allocation failure.
        """
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
        for name in _OPTIONAL_FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer, got {value!r}")
        positive = ("epochs", "batch_size", "noise_dim", "log_every", "sample_every", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name, limit in _UPPER_LIMITS.items():
            if getattr(self, name) > limit:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at most {limit}, got {getattr(self, name)}"
                )
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"--keep-checkpoints must be at least 1, got {self.keep_checkpoints}")
        if self.grid_size < 1:
            raise ConfigError(f"--grid-size must be at least 1, got {self.grid_size}")
        if self.eval_every < 0:
            raise ConfigError(f"--eval-every must be 0 (off) or positive, got {self.eval_every}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ConfigError(f"--keep-prob must be in (0, 1], got {self.keep_prob}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ConfigError(f"--bn-momentum must be in [0, 1), got {self.bn_momentum}")
        if self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.beta1 < 1.0:
            raise ConfigError(f"--beta1 must be in [0, 1), got {self.beta1}")
        if self.bn_epsilon <= 0:
            raise ConfigError(f"--bn-epsilon must be positive, got {self.bn_epsilon}")
        if not 0.0 <= self.lrelu_alpha < 1.0:
            raise ConfigError(f"--lrelu-alpha must be in [0, 1), got {self.lrelu_alpha}")
        if self.noise not in ("uniform", "normal"):
            raise ConfigError(f"--noise must be uniform or normal, got {self.noise!r}")
        if self.quirks not in ("fixed", "original"):
            raise ConfigError(f"--quirks must be fixed or original, got {self.quirks!r}")
        if self.upsample not in UPSAMPLES:
            raise ConfigError(f"--upsample must be one of {', '.join(UPSAMPLES)}, got {self.upsample!r}")
        if self.d_norm not in D_NORMS:
            raise ConfigError(f"--d-norm must be one of {', '.join(D_NORMS)}, got {self.d_norm!r}")
        if self.info_codes != 0 and not 2 <= self.info_codes <= MAX_INFO_CODES:
            raise ConfigError(f"--info-codes must be 0 (off) or 2 to {MAX_INFO_CODES}, got {self.info_codes}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.g_keep_prob is not None and not 0.0 < self.g_keep_prob <= 1.0:
            raise ConfigError(f"--g-keep-prob must be in (0, 1], got {self.g_keep_prob}")
        if self.d_learning_rate is not None and not self.d_learning_rate > 0:
            raise ConfigError(f"--d-learning-rate must be positive, got {self.d_learning_rate}")
        if not 0.0 <= self.g_ema_decay < 1.0:
            raise ConfigError(f"--g-ema must be in [0, 1) (0: off), got {self.g_ema_decay}")
        if self.g_ema_decay > 0 and self.sampler_stats != "recalibrated":
            raise ConfigError(
                "--g-ema samples averaged weights, whose batch-norm statistics no moving average tracked: "
                "use --sampler-stats recalibrated"
            )
        if not 0.0 < self.g_top_k <= 1.0:
            raise ConfigError(f"--g-top-k must be in (0, 1] (1: every fake), got {self.g_top_k}")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.sampler_stats not in SAMPLER_STATS:
            raise ConfigError(
                f"--sampler-stats must be one of {', '.join(SAMPLER_STATS)}, got {self.sampler_stats!r}"
            )
        if self.lr_decay not in LR_DECAYS:
            raise ConfigError(f"--lr-decay must be one of {', '.join(LR_DECAYS)}, got {self.lr_decay!r}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"--recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.recipe != "notebook" and self.arch != "notebook":
            raise ConfigError(
                f"--recipe {self.recipe} was measured for the notebook's networks, not --arch {self.arch}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_FLOAT_FIELDS = (
    "learning_rate",
    "beta1",
    "label_smoothing",
    "lrelu_alpha",
    "keep_prob",
    "bn_momentum",
    "bn_epsilon",
    "g_ema_decay",
    "g_top_k",
)
_OPTIONAL_FLOAT_FIELDS = ("d_learning_rate", "g_keep_prob")  # None: the setting they refine
_INT_FIELDS = (
    "epochs", "max_steps", "batch_size", "noise_dim", "seed", "log_every", "sample_every",
    "checkpoint_every", "keep_checkpoints", "grid_size", "eval_every", "eval_samples", "info_codes",
)  # fmt: skip
# Far above any DCGAN setting, far below what exhausts memory in the graph or in one sess.run: a run
# past them would fail at step 1 (or crawl) instead of at the command line.
_UPPER_LIMITS = {
    "noise_dim": 10_000,
    "batch_size": 65_536,
    "grid_size": 1_024,
    "epochs": 1_000_000,
    "seed": 2**31 - 1,  # TensorFlow's op seeds
}

# Settings that define the graph's variables or the data it learns: a checkpoint only fits a run that
# agrees on all of them, so --resume refuses to change them.
# (upsample: a resize generator has convolution kernels where the notebook has transposed ones;
# g_ema_decay: the average's variables; d_norm: D's batch-norm and power-iteration variables;
# info_codes: the width of G's first kernel and of D's logits.)
ARCHITECTURE_FIELDS = (
    "dataset", "arch", "class_label", "noise_dim", "quirks", "upsample", "g_ema_decay", "d_norm",
    "info_codes",
)  # fmt: skip
# Settings the data order and the noise are drawn from: changing them on --resume would silently make
# another run than the one that never stopped, so --resume refuses them too.
RESUME_FIXED_FIELDS = ("batch_size", "seed")


def resolve(spec_defaults: Mapping[str, Any], flags: Mapping[str, Any]) -> Config:
    """Notebook defaults < spec defaults < the flags the user gave (None means not given)."""
    values = dict(spec_defaults)
    values.update({k: v for k, v in flags.items() if v is not None})
    return Config.from_dict(values).validate()


def config_json(config: Config, extra: Mapping[str, Any]) -> str:
    return json.dumps({"config": config.to_dict(), **extra}, indent=2, sort_keys=False, default=str)
