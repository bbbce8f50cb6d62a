"""Pitfall 5: the training towers built with training=False.

Every batch norm then uses its moving statistics, which start at 0 and 1, and adds no update ops, so they
stay there: batch norm becomes a fixed scale and shift, and the networks train without normalization.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec, Inputs, Network, Tower, model_loss, model_opt
from common.layers import FLOAT32_IMPL, LayerImpl
from common.pitfalls.harness import (
    Runs,
    SampleStats,
    TrainGraph,
    Variant,
    late_means,
    moving_change,
    open_probe,
    stats_of,
)
from common.pitfalls.sections import (
    Section,
    code,
    lines_figure,
    loss_panel,
    losses_table,
    show_grid,
    source,
    stats_table,
)

FIGURE = "training_false_in_training.png"
RUNS = ("fixed", "training_false_in_training")


def tower_in_inference_mode(
    spec: ArchSpec,
    config: Config,
    inputs: Inputs,
    scope: str,
    stream: int,
    reuse: bool,
    noise: tf.Tensor | None = None,
    impl: LayerImpl = FLOAT32_IMPL,
) -> Tower:
    """The project's forward pass (common.gan.model_loss) with every network called with training=False:
    BN on the moving statistics, no update ops, no dropout."""

    def inference_mode(network: Network) -> Network:
        return lambda tensor, training, config, layers: network(tensor, False, config, layers)

    spec = dataclasses.replace(
        spec, generator=inference_mode(spec.generator), discriminator=inference_mode(spec.discriminator)
    )
    return model_loss(spec, config, inputs, scope, stream, reuse, noise, impl)


def training_false_in_training(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step and per-network update ops, on towers built with training=False."""
    return model_opt(spec, config, inputs, total_steps=1, tower=tower_in_inference_mode)


VARIANTS = (Variant("training_false_in_training", training_false_in_training, "half_steps"),)


class TrainingFalse(NamedTuple):
    steps: int
    update_ops_in_graph: dict[str, int]
    moving_change: float
    late_losses: dict[str, np.ndarray]  # run -> mean of the last quarter's (d_loss, g_loss, d_real, d_fake)
    losses: dict[str, np.ndarray]  # run -> [steps, 4]
    stats: dict[str, SampleStats]
    images: dict[str, np.ndarray]


def measure(runs: Runs) -> TrainingFalse:
    steps = runs.size.half_steps
    losses = runs.losses(RUNS, steps)
    noise = runs.noise()
    with open_probe(runs) as probe:
        images = {
            "fixed (training=True), inference": probe.load(runs.weights("fixed", steps)).inference(noise),
            "training=False in training": probe.load(runs.weights(RUNS[1], steps)).inference(noise),
        }
    return TrainingFalse(
        steps,
        {run: runs.graphs[run].update_ops_in_graph for run in RUNS},
        moving_change(runs.traces[RUNS[1]]),
        late_means(losses),
        losses,
        stats_of(images, runs),
        images,
    )


def section(result: TrainingFalse, out: Path) -> Section:
    labels = {"fixed": "training=True (fixed)", "training_false_in_training": "training=False"}
    panels = {
        "D loss": loss_panel(result.losses, labels, 0, "d_loss"),
        "G loss": loss_panel(result.losses, labels, 1, "g_loss"),
    }
    for label, images in result.images.items():
        panels[label] = lambda ax, images=images: show_grid(ax, images[:16], 4)
    lines_figure(out / FIGURE, panels, f"Towers built with training=False, {result.steps} steps")
    text = f"""
**What goes wrong.** With `training=False` in the training towers, every batch norm uses its moving
statistics, which start at mean 0 and variance 1, and adds no update ops, so they stay there: batch
norm becomes a fixed per-channel scale and shift (`gamma * x / sqrt(1 + eps) + beta`). The networks train
*without* normalization (and, in the notebook's networks, without dropout, which follows the same flag).

**The broken code:**

{code(source(tower_in_inference_mode, training_false_in_training))}

**The fix:** build the training towers with `training=True` (`common.gan.model_loss`), the sampler with
`training=False`.

**Measured** over {result.steps} steps: update ops in the graph {result.update_ops_in_graph["fixed"]} fixed,
{result.update_ops_in_graph["training_false_in_training"]} broken; largest change of a moving statistic
{result.moving_change:g}. Means over the last quarter of the steps:

{losses_table("towers", result.late_losses, labels)}

{stats_table(result.stats)}

![training=False]({FIGURE})
"""
    late = result.late_losses
    broken = result.stats["training=False in training"]
    fixed_stats = result.stats["fixed (training=True), inference"]
    headline = (
        f"0 update ops; late d_loss {late['training_false_in_training'][0]:.3f} vs {late['fixed'][0]:.3f}; "
        f"distance to real {broken.nn_rms:.3f} vs {fixed_stats.nn_rms:.3f}"
    )
    return Section("5. training=False during training", FIGURE, text, headline)
