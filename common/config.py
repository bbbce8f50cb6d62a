"""Config: every setting of a run, frozen, saved as `config.json` next to its outputs.

Defaults are resolved in three layers: the notebook's values here, then the architecture spec's own
defaults (a dataset module or another write-up), then the flags the user gave. Each field's flag, type,
range, help and resume rule are declared once in common.settings, from which validate() checks it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from common import settings
from common.data.folder import is_folder_dataset
from common.settings import (  # the choices and the error every caller knows from here
    D_NORMS,
    LOSSES,
    LR_DECAYS,
    MAX_INFO_CODES,
    PRECISIONS,
    RECIPES,
    SAMPLER_STATS,
    UPSAMPLES,
    ConfigError,
    Setting,
)

__all__ = [
    "D_NORMS",
    "LOSSES",
    "LR_DECAYS",
    "MAX_INFO_CODES",
    "PRECISIONS",
    "RECIPES",
    "SAMPLER_STATS",
    "UPSAMPLES",
    "Config",
    "ConfigError",
    "config_json",
    "resolve",
]


@dataclasses.dataclass(frozen=True)
class Config:
    # what and where
    dataset: str = "mnist"
    arch: str = "notebook"
    out: str = "runs/mnist"
    data_dir: str | None = None
    images: str | None = None  # a folder of one's own images to learn (common.data.folder), else None
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

    def validate(self, extra: Sequence[Setting] = ()) -> Config:
        """Raise ConfigError for any setting no run can use; return self.

        Every setting is checked against its declaration (common.settings.SETTINGS, and `extra`, a dataset
        module's own): its type, finiteness, range or choices; then the rules that tie two settings
        together. All before anything is written: a NaN, an infinity or an absurd size would otherwise
        only show at step 1, as a non-finite loss or an allocation failure.
        """
        settings.check_settings(self, (*settings.SETTINGS, *extra))
        if self.images is not None and not is_folder_dataset(self.dataset):
            raise ConfigError(
                f"--images trains on a folder of images, not on --dataset {self.dataset}: give one of the two"
            )
        if self.images is None and is_folder_dataset(self.dataset):
            raise ConfigError(f"data set {self.dataset} is a folder of images: name it with --images DIR")
        if self.images is not None and self.class_label is not None:
            raise ConfigError("--class picks a CIFAR-10 class; an --images run learns its whole folder")
        if self.g_ema_decay > 0 and self.sampler_stats != "recalibrated":
            # averaged weights, whose batch-norm statistics no moving average tracked
            if RECIPES.get(self.recipe, {}).get("g_ema_decay") == self.g_ema_decay:
                cause = f"--recipe {self.recipe} samples an average of G's weights ({self.g_ema_decay})"
            else:
                cause = f"--g-ema-decay {self.g_ema_decay} samples an average of G's weights"
            raise ConfigError(
                f"{cause}, whose batch-norm statistics no moving average tracked: they must be recalibrated "
                "(use --sampler-stats recalibrated, or --g-ema-decay 0 to sample the trained weights)"
            )
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


def resolve(
    spec_defaults: Mapping[str, Any], flags: Mapping[str, Any], extra: Sequence[Setting] = ()
) -> Config:
    """Notebook defaults < spec defaults < the flags the user gave (None means not given); `extra`: the
    dataset module's own settings, validated with the others."""
    values = dict(spec_defaults)
    values.update({k: v for k, v in flags.items() if v is not None})
    return Config.from_dict(values).validate(extra)


def config_json(config: Config, extra: Mapping[str, Any]) -> str:
    return json.dumps({"config": config.to_dict(), **extra}, indent=2, sort_keys=False, default=str)
