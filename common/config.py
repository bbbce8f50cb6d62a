"""Config: every setting of a run, frozen, saved as `config.json` next to its outputs.

Defaults are resolved in three layers: the notebook's values here, then the architecture spec's own
defaults (a dataset module or another write-up), then the flags the user gave.
"""

from __future__ import annotations

import dataclasses
import json
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
    # reproducibility and outputs
    seed: int = 0
    deterministic: bool = True  # TF op determinism: bit-exact resume and reruns; off is a little faster
    precision: str = "auto"  # auto, float32 or bfloat16; config.json records what auto chose
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    grid_size: int = 25
    eval_every: int = 0  # 0: never; see common.evaluate
    eval_samples: int = 2000
    sampler_stats: str = "recalibrated"  # how grids, `sample` and evaluations get BN statistics

    @property
    def original_quirks(self) -> bool:
        return self.quirks == "original"

    def validate(self) -> Config:
        """Raise ConfigError for any setting no run can use; return self."""
        positive = ("epochs", "batch_size", "noise_dim", "log_every", "sample_every", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
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
        if self.noise not in ("uniform", "normal"):
            raise ConfigError(f"--noise must be uniform or normal, got {self.noise!r}")
        if self.quirks not in ("fixed", "original"):
            raise ConfigError(f"--quirks must be fixed or original, got {self.quirks!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.sampler_stats not in SAMPLER_STATS:
            raise ConfigError(
                f"--sampler-stats must be one of {', '.join(SAMPLER_STATS)}, got {self.sampler_stats!r}"
            )
        if self.lr_decay not in LR_DECAYS:
            raise ConfigError(f"--lr-decay must be one of {', '.join(LR_DECAYS)}, got {self.lr_decay!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


# Settings that define the graph's variables or the data it learns: a checkpoint only fits a run that
# agrees on all of them, so --resume refuses to change them.
ARCHITECTURE_FIELDS = ("dataset", "arch", "class_label", "noise_dim", "quirks")


def resolve(spec_defaults: Mapping[str, Any], flags: Mapping[str, Any]) -> Config:
    """Notebook defaults < spec defaults < the flags the user gave (None means not given)."""
    values = dict(spec_defaults)
    values.update({k: v for k, v in flags.items() if v is not None})
    return Config.from_dict(values).validate()


def config_json(config: Config, extra: Mapping[str, Any]) -> str:
    return json.dumps({"config": config.to_dict(), **extra}, indent=2, sort_keys=False, default=str)
