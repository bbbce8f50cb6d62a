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
from common.layers import FLOAT32_IMPL, LayerImpl, Layers
from common.pitfalls.harness import (
    Quality,
    Runs,
    TrainGraph,
    Variant,
    late_means,
    moving_change,
)
from common.pitfalls.notebook_step import model_inputs, model_loss, model_opt, with_networks
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    lines_figure,
    loss_panel,
    losses_table,
    mean_sd,
    quality_note,
    quality_table,
    seeds_table,
    seeds_verdict,
    seeds_word,
    show_grid,
    source,
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


# What TF 1.x's tf.compat.v1.layers.batch_normalization(inputs, ..., training=False, ...) and
# tf.compat.v1.layers.dropout(inputs, rate=0.5, ..., training=False) take when `training=` is left out.
TF_LAYERS_DEFAULT_TRAINING = False


class TrainingLeftOut(Layers):
    """The project's layers called as `tf.layers.batch_normalization(h)` is called with `training=` left
    out: whatever the network passes, each layer gets tf.layers' default (False)."""

    def batch_norm(
        self, x: tf.Tensor, training: object, name: str, momentum: float = 0.99, epsilon: float = 1e-3
    ) -> tf.Tensor:
        return super().batch_norm(x, TF_LAYERS_DEFAULT_TRAINING, name, momentum, epsilon)

    def dropout(self, x: tf.Tensor, keep_prob: float, active: object = True) -> tf.Tensor:
        return super().dropout(x, keep_prob, TF_LAYERS_DEFAULT_TRAINING)


def tower_with_training_left_out(
    spec: ArchSpec,
    config: Config,
    inputs: Inputs,
    scope: str,
    stream: int,
    reuse: bool,
    noise: tf.Tensor | None = None,
    impl: LayerImpl = FLOAT32_IMPL,
) -> Tower:
    """The project's forward pass with every layer's `training` left at tf.layers' default: the usual way
    into this section (a training tower whose batch norms were never told they are training)."""

    def left_out(network: Network) -> Network:
        return lambda tensor, training, config, layers: network(
            tensor, training, config, TrainingLeftOut(layers.impl, layers.seeds, layers.spectral_norm)
        )

    spec = with_networks(spec, generator=left_out(spec.generator), discriminator=left_out(spec.discriminator))
    return model_loss(spec, config, inputs, scope, stream, reuse, noise, impl)


def graph_ops(spec: ArchSpec, config: Config, tower) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every op (name, type, inputs) of the project's step built on `tower`, in a graph of its own."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(config.seed)
        inputs = model_inputs(spec.image_shape, 64, config, spec.g_noise_batches)
        model_opt(spec, config, inputs, total_steps=1, tower=tower)
    return [(op.name, op.type, tuple(i.name for i in op.inputs)) for op in graph.get_operations()]


def training_false_in_training(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step and per-network update ops, on towers built with training=False."""
    return model_opt(spec, config, inputs, total_steps=1, tower=tower_in_inference_mode)


VARIANTS = (Variant("training_false_in_training", training_false_in_training, "half_steps"),)
# The two runs train along different paths: the verdict comes from the spread over seeds.
SEEDED, SEEDED_STEPS = ("training_false_in_training",), "half_steps"
# Each side as its sampler really samples it: the training=False run trained on the moving statistics
# (0 and 1), so its moving-average samples are its output; the fixed run's are judged recalibrated.
JUDGED = {"fixed": "recalibrated", "training_false_in_training": "moving"}


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
    seeds: dict[str, list[Quality]]  # run -> numbers per seed, each side sampled as JUDGED says
    default_ops: tuple[int, bool]  # ops of the step with `training=` left out; the same as training=False?


def measure(runs: Runs) -> TrainingFalse:
    steps = runs.size.half_steps
    losses = runs.losses(RUNS, steps)
    noise = runs.noise()
    quality = {run: runs.both(run, steps) for run in RUNS}
    # The same z through each run as JUDGED samples it, each labelled with its FID.
    images = {
        f"{LABELS[run]}, {JUDGED[run]}: FID {quality[run][JUDGED[run]].fid:.1f}": runs.samples(
            run, JUDGED[run], noise, steps
        )
        for run in RUNS
    }
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
        runs.over_seeds(RUNS, steps, JUDGED),
        default_is_false(runs.spec, runs.config),
    )


def default_is_false(spec: ArchSpec, config: Config) -> tuple[int, bool]:
    """The step with every layer's `training` left out against the step on training=False towers:
    (ops, whether the two graphs are the same op for op)."""
    left_out = graph_ops(spec, config, tower_with_training_left_out)
    return len(left_out), left_out == graph_ops(spec, config, tower_in_inference_mode)


LABELS = {"fixed": "training=True (fixed)", "training_false_in_training": "training=False"}
SNIPPET = """
def generator(z, training, reuse=False):
    with tf.compat.v1.variable_scope("generator", reuse=reuse):
        h = tf.compat.v1.layers.dense(z, 7 * 7 * 256)
        h = tf.compat.v1.layers.batch_normalization(h, training=training)  # never leave training= out
        ...
fake = generator(z, training=True)                 # the training tower: batch statistics, update ops
sample = generator(z, training=False, reuse=True)  # the sampler: the moving statistics
"""


def section(result: TrainingFalse, out: Path) -> Section:
    labels = LABELS
    panels = {
        "D loss": loss_panel(result.losses, labels, 0, "d_loss"),
        "G loss": loss_panel(result.losses, labels, 1, "g_loss"),
    }
    for label, images in result.images.items():
        panels[label] = lambda ax, images=images: show_grid(ax, images[:16], 4)
    lines_figure(out / FIGURE, panels, f"Towers built with training=False, {result.steps} steps")
    fixed, broken = result.quality["fixed"], result.quality["training_false_in_training"]
    how = "moving-average (training=False) vs recalibrated (fixed)"
    text = f"""
**Symptom.** Training runs, losses look plausible, and nothing complains; the moving statistics never
move from 0 and 1.

**Cause.** The usual way in: `tf.compat.v1.layers.batch_normalization(x)` and `tf.compat.v1.layers.dropout(x)`
default to `training=False` (TF 1.x; with Keras 3 installed the first raises, see section 7), and a Keras
layer called without `training` outside `fit` runs in inference mode: a call that leaves the argument
out is this run. Measured: the step built with `training=` left out of every layer call
(`TrainingLeftOut`, tf.layers' default False) is the step on training=False towers op for op
({result.default_ops[0]} ops, the same graph: **{"yes" if result.default_ops[1] else "no"}**), so every
number below is that default's:

{code(source(TrainingLeftOut, tower_with_training_left_out))}

With `training=False` in the training towers, every batch norm uses its moving statistics,
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

After {result.steps} steps (seed 0) the training=False run scores {fq(broken["moving"])} as it samples;
the fixed run {fq(fixed["recalibrated"])} recalibrated ({fq(fixed["moving"])} with its unwarmed moving
averages, which no verdict here uses). (The training=False run's recalibrated row puts batch statistics
into a network that never trained with them: it is not that network's output.)

The two runs train along different paths, so one seed decides nothing; over {len(result.seeds["fixed"])}
seeds (each side sampled as above: the training=False run with its moving statistics, the fixed run
recalibrated):

{seeds_table({f"{labels[run]}, {JUDGED[run]}": values for run, values in result.seeds.items()})}

{seeds_verdict(result.seeds[RUNS[1]], result.seeds["fixed"], "training=False", "the fixed run", how)}.

![training=False]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

The project runs the same thing in `dcgan_mnist/model.py`'s `model_loss` (each network called with
`training=True` in the towers) and `common/sampling.py` (the sampler's `training=False`):

{code(source(model_loss))}
"""
    word = seeds_word(result.seeds[RUNS[1]], result.seeds["fixed"])
    (m1, s1), (m2, s2) = (mean_sd([q.fid for q in result.seeds[run]]) for run in (RUNS[1], "fixed"))
    headline = (
        f"0 update ops; training=False **{word}**: FID {m1:.1f} ± {s1:.1f} vs fixed {m2:.1f} ± {s2:.1f} "
        f"recalibrated, training=False with its own statistics ({len(result.seeds['fixed'])} seeds, "
        f"n {fixed['moving'].n})"
    )
    return Section("training=False during training", FIGURE, text, headline)
