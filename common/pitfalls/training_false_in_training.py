"""Pitfall: the training towers built with training=False.

Every batch norm then uses its moving statistics, which start at 0 and 1, and adds no update ops, so they
stay there: batch norm becomes a fixed scale and shift, and the networks train without normalization.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec, Network
from common.config import Config
from common.layers import FLOAT32_IMPL, LayerImpl
from common.pitfalls.harness import (
    Quality,
    Runs,
    TrainGraph,
    Variant,
    late_means,
    moving_change,
    open_probe,
)
from common.pitfalls.notebook_step import model_loss, model_opt, with_networks
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    lines_figure,
    loss_panel,
    losses_table,
    quality_note,
    quality_table,
    show_grid,
    source,
    verdict,
)
from common.step import Inputs, Tower

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
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
    """The project's forward pass (dcgan_mnist.model.model_loss) with every network called with
    training=False: BN on the moving statistics, no update ops, no dropout."""

    def inference_mode(network: Network) -> Network:
        return lambda tensor, training, config, layers: network(tensor, False, config, layers)

    spec = with_networks(
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
    quality: dict[str, dict[str, Quality]]  # run -> statistics -> evaluator numbers
    images: dict[str, np.ndarray]
    table: str
    note: str


def measure(runs: Runs) -> TrainingFalse:
    steps = runs.size.half_steps
    losses = runs.losses(RUNS, steps)
    noise = runs.noise()
    with open_probe(runs) as probe:
        images = {
            "fixed (training=True), moving averages": probe.load(runs.weights("fixed", steps)).inference(
                noise
            ),
            "training=False in training": probe.load(runs.weights(RUNS[1], steps)).inference(noise),
        }
    quality = {run: runs.both(run, steps) for run in RUNS}
    return TrainingFalse(
        steps,
        {run: runs.graphs[run].update_ops_in_graph for run in RUNS},
        moving_change(runs.traces[RUNS[1]]),
        late_means(losses),
        losses,
        quality,
        images,
        quality_table(
            {"training=True towers (fixed)": quality["fixed"], "training=False towers": quality[RUNS[1]]},
            runs.evaluator,
        ),
        quality_note(runs.evaluator),
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
    fixed, broken = result.quality["fixed"], result.quality["training_false_in_training"]
    text = f"""
**Symptom.** Training runs, losses look plausible, and nothing complains; the moving statistics never
move from 0 and 1.

**Cause.** With `training=False` in the training towers, every batch norm uses its moving statistics,
which start at mean 0 and variance 1, and adds no update ops, so they stay there: batch norm becomes a
fixed per-channel scale and shift (`gamma * x / sqrt(1 + eps) + beta`), and the networks train *without*
normalization. In this project's networks dropout follows the same `training` argument, so this variant
also trains without dropout (the original notebook's generator applied dropout unconditionally, which
`--quirks original` reproduces; see the dropout section).

**The code that ran:**

{code(source(tower_in_inference_mode, training_false_in_training))}

**Measured** over {result.steps} steps: update ops in the graph {result.update_ops_in_graph["fixed"]} fixed,
{result.update_ops_in_graph["training_false_in_training"]} broken; largest change of a moving statistic
{result.moving_change:g}. Means over the last quarter of the steps:

{losses_table("towers", result.late_losses, labels)}

The training=False network trained with the statistics its sampler uses (0 and 1), so its moving-average
row is its real output; the fixed run must be judged recalibrated (the warm-up section):

{result.table}

{result.note}

After {result.steps} steps the training=False run scores {fq(broken["moving"])}; the fixed run
{fq(fixed["recalibrated"])} recalibrated and {fq(fixed["moving"])} with its unwarmed moving averages.
Against the fixed run recalibrated, the training=False run samples
{verdict(broken["moving"], fixed["recalibrated"])}; against the fixed run's moving averages, the comparison
the first version of this report drew its conclusion from, {verdict(broken["moving"], fixed["moving"])}.
(The training=False run's recalibrated row puts batch statistics into a network that never trained with
them: it is not that network's output.)

![training=False]({FIGURE})

**The fix, as code:** build the training towers with `training=True` (dcgan_mnist/model.py's
`model_loss`, as it calls each network) and the sampler with `training=False`:

{code(source(model_loss))}
"""
    headline = (
        f"0 update ops; training=False run {fq(broken['moving'])} vs fixed FID "
        f"{fixed['recalibrated'].fid:.1f} "
        f"recalibrated ({fixed['moving'].fid:.1f} moving)"
    )
    return Section("training=False during training", FIGURE, text, headline)
