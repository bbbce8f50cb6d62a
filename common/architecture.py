"""What the shared code knows of an architecture: the module that builds and trains it, and its facts.

An architecture is a Python module with the notebook's functions, under the notebook's names:
`model_inputs(n_images, config)`, `generator(z, training, config, layers)`,
`discriminator(images, training, config, layers)`, `model_loss(inputs, config, ...)`,
`model_opt(inputs, config, total_steps, impl)` and `train(config, data, run, ...)`. Its `ArchSpec` names
that module (`model`) and says what the command line and the reports need to know without building a
graph: the image shape, the defaults, how a step runs, which options its networks implement.

The shared code calls the module's functions through `spec.model` at the moment it needs them, so what
runs is what the module holds (tests/test_house.py replaces each function in turn and sees it reached).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import tensorflow as tf

from common.config import Config
from common.layers import Layers, Training

# A network maps (input, training, config, layers) to images in [-1, 1] (generator) or logits (discriminator).
Network = Callable[[tf.Tensor, Training, Config, Layers], tf.Tensor]

SCHEDULES = ("g_then_d", "d_then_g", "simultaneous")


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """An architecture's module and the facts about it that need no graph.

    model: the module holding model_inputs, generator, discriminator, model_loss, model_opt and train.
    schedule (what the module's model_opt does, for reports and FLOP counts): "g_then_d" (the notebook:
    the G update, then the D update on the updated G's fakes), "d_then_g", or "simultaneous" (both
    updates from one forward pass).
    d_batches: "separate" (D called on the real batch and on the fake batch) or "concat" (one call on both).
    g_noise_batches: the G update trains on this many x batch_size noise vectors (the Keras MLP GAN).
    smooth_g_target: G's target is smoothed like D's real target (the notebook), or stays 1 (Keras).
    upsamples, d_norms, info_codes: the values of Config.upsample / Config.d_norm its networks
    implement, and whether its D has a categorical-code head (--info-codes); any other is refused rather
    than silently ignored by a network that never reads it.
    """

    name: str
    image_shape: tuple[int, int, int]
    model: ModuleType
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    schedule: str = "g_then_d"
    d_batches: str = "separate"
    description: str = ""
    g_noise_batches: int = 1
    smooth_g_target: bool = True
    upsamples: tuple[str, ...] = ("transpose",)
    d_norms: tuple[str, ...] = ("batch",)
    info_codes: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.d_batches not in ("separate", "concat"):
            raise ValueError(f"unknown d_batches {self.d_batches!r}")
        if self.g_noise_batches < 1 or (self.g_noise_batches > 1 and self.schedule == "simultaneous"):
            raise ValueError("g_noise_batches > 1 needs a two-tower schedule (g_then_d or d_then_g)")
        missing = [name for name in MODEL_FUNCTIONS if not callable(getattr(self.model, name, None))]
        if missing:
            raise ValueError(f"architecture module {self.model.__name__} lacks {', '.join(missing)}")

    @property
    def generator(self) -> Network:
        return self.model.generator

    @property
    def discriminator(self) -> Network:
        return self.model.discriminator


# The notebook's functions, in its order: what every architecture module holds.
MODEL_FUNCTIONS = ("model_inputs", "generator", "discriminator", "model_loss", "model_opt", "train")
