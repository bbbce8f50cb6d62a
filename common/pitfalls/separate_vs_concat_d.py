"""Pitfall 8: real and fake through D separately (the notebook) or concatenated.

In training mode D's batch norms normalize with the batch they see: separately, a shift between the real
and the fake batch is erased; concatenated, D can use it. A choice to make on purpose, not a bug.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import Layers
from common.losses import Losses, gan_losses
from common.pitfalls.harness import (
    ProbeInputs,
    Quality,
    Runs,
    TrainGraph,
    Variant,
    late_means,
    open_probe,
    scaled,
)
from common.pitfalls.notebook_step import model_loss, model_opt
from common.pitfalls.sections import (
    Section,
    code,
    lines_figure,
    loss_panel,
    losses_table,
    mean_sd,
    quality_note,
    quality_table,
    seeds_table,
    seeds_verdict,
    seeds_word,
    source,
    table,
)
from common.step import Inputs, call_network

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
FIGURE = "separate_vs_concat_d.png"
RUNS = ("fixed", "concat_d")


def concat_d(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step with D called once on real and fake together."""
    return model_opt(dataclasses.replace(spec, d_batches="concat"), config, inputs, total_steps=1)


VARIANTS = (Variant("concat_d", concat_d, "half_steps"),)
# The two runs train along different paths: the verdict comes from the spread over seeds.
SEEDED, SEEDED_STEPS = ("concat_d",), "half_steps"
SNIPPET = """
# separate (the notebook's): each batch normalized with its own statistics
d_real_logits = discriminator(real_images, training=True)
d_fake_logits = discriminator(fake_images, training=True, reuse=True)
# concatenated: one call, both normalized with the mixed batch's statistics
logits = discriminator(tf.concat([real_images, fake_images], 0), training=True)
d_real_logits, d_fake_logits = tf.split(logits, 2)
"""


class BothWays(NamedTuple):
    fake: tf.Tensor  # placeholder [None, H, W, C] in [-1, 1], beside the probe's `real`
    separate: Losses  # D called on the real batch and on the fake batch
    concat: Losses  # D called once on both, split afterwards
    features: dict[str, tf.Tensor]  # D's activations entering its first batch norm, per way of calling


def d_both_ways(spec: ArchSpec, config: Config, inputs: ProbeInputs) -> BothWays:
    """D in training mode on the same real and fake batches, called both ways."""
    no_dropout = config.replace(keep_prob=1.0)
    real = inputs.real
    fake = v1.placeholder(tf.float32, [None, *spec.image_shape], name="fake")

    def discriminator(images: tf.Tensor) -> tf.Tensor:
        return call_network(spec.discriminator, "discriminator", True, images, True, no_dropout, Layers())

    with tf.name_scope("d_separate") as separate_scope:
        separate = gan_losses(discriminator(real), discriminator(fake), config.label_smoothing)
    with tf.name_scope("d_concat") as concat_scope:
        real_logits, fake_logits = tf.split(
            discriminator(tf.concat([real, fake], 0)), [tf.shape(real)[0], tf.shape(fake)[0]]
        )
        concat = gan_losses(real_logits, fake_logits, config.label_smoothing)
    # The input of D's first batch norm (conv2 + bias), for each call: the statistics BN sees.
    graph = v1.get_default_graph()
    features = {
        "separate_real": f"{separate_scope}discriminator/conv2/BiasAdd:0",
        "separate_fake": f"{separate_scope}discriminator_1/conv2/BiasAdd:0",
        "concat": f"{concat_scope}discriminator/conv2/BiasAdd:0",
    }
    return BothWays(
        fake, separate, concat, {key: graph.get_tensor_by_name(name) for key, name in features.items()}
    )


class SeparateConcat(NamedTuple):
    steps: int
    # way -> (d_loss, D(x), D(G(z))) on one real and fake pair, the same weights
    same_weights: dict[str, tuple[float, float, float]]
    feature_gap: dict[str, float]  # way -> mean over D's BN channels of |mean real - mean fake| after BN
    late_losses: dict[str, np.ndarray]  # run -> harness.late_means
    losses: dict[str, np.ndarray]
    quality: dict[str, dict[str, Quality]]
    table: str
    note: str
    seeds: dict[str, list[Quality]]  # run -> recalibrated numbers per seed


def channel_means(activations: np.ndarray) -> np.ndarray:
    return activations.mean(axis=(0, 1, 2))


def measure(runs: Runs) -> SeparateConcat:
    real = scaled(runs.train_images[-runs.size.grid :])
    with open_probe(runs, d_both_ways) as probe:
        both_ways = probe.part
        probe.load(runs.weights("fixed", runs.size.half_steps))
        fake = probe.batch_mode(runs.noise(seed_offset=3))  # fakes as a training step makes them
        separate, concat, features = probe.run(
            [both_ways.separate, both_ways.concat, both_ways.features],
            {probe.graph.inputs.real: real, both_ways.fake: fake},
        )
    epsilon = runs.config.bn_epsilon

    def normalize(activations: np.ndarray) -> np.ndarray:
        """What batch norm does in training mode, per channel (before gamma and beta)."""
        return (activations - channel_means(activations)) / np.sqrt(activations.var(axis=(0, 1, 2)) + epsilon)

    def channel_gap(real_part: np.ndarray, fake_part: np.ndarray) -> float:
        return float(np.abs(channel_means(real_part) - channel_means(fake_part)).mean())

    mixed = normalize(features["concat"])
    feature_gap = {
        # separate: each batch is centred on its own mean, so a real-vs-fake shift of the mean is erased
        "separate": channel_gap(normalize(features["separate_real"]), normalize(features["separate_fake"])),
        "concat": channel_gap(mixed[: len(real)], mixed[len(real) :]),
    }
    steps = runs.size.half_steps
    losses = runs.losses(RUNS, steps)
    return SeparateConcat(
        steps,
        {
            way: (float(result.d_loss), float(result.d_real), float(result.d_fake))
            for way, result in (("separate", separate), ("concat", concat))
        },
        feature_gap,
        late_means(losses),
        losses,
        {run: runs.both(run, steps) for run in RUNS},
        quality_table(
            {
                "separate (the notebook's)": runs.both(RUNS[0], steps),
                "concatenated": runs.both(RUNS[1], steps),
            },
            runs.evaluator,
        ),
        quality_note(runs.evaluator),
        runs.over_seeds(RUNS, steps),
    )


def section(result: SeparateConcat, out: Path) -> Section:
    labels = {"fixed": "separate (the notebook's)", "concat_d": "concatenated"}
    lines_figure(
        out / FIGURE,
        {
            "D loss": loss_panel(result.losses, labels, 0, "d_loss"),
            "D(G(z))": loss_panel(result.losses, labels, 3, "mean D(G(z))"),
        },
        f"Real and fake through D separately vs concatenated, {result.steps} steps",
    )
    run_of_way = {"separate": "fixed", "concat": "concat_d"}
    same_weights = table(
        ["D called", "d_loss", "D(x)", "D(G(z))"],
        [
            [labels[run_of_way[way]], *(f"{value:.3f}" for value in values)]
            for way, values in result.same_weights.items()
        ],
    )
    text = f"""
**Symptom.** Two ports of the same GAN, one calling D twice and one once on a concatenated batch, log
different D losses from the same weights and train differently.

**Cause.** In training mode D's batch norms normalize with the statistics of the batch they
see. Called separately (the notebook), D normalizes the real batch with real statistics and the fake
batch with fake statistics: whatever shifts a whole batch (its mean brightness, say) is erased before the
next layer, and D's moving averages alternate between real and fake statistics. Concatenated, both are
normalized with the mixed statistics, so D *can* use such batch-level differences. Neither is a bug by
itself, but the choice changes the game, and code that mixes the two (training one way, evaluating the
other) sees a different D.

**The code that ran:** the variant is the project's step with the spec's `d_batches` changed, and the
forward pass branches on it (`model_loss` (dcgan_mnist/model.py), shown in the fix below):

{code(source(concat_d))}

**Measured.** The same weights (the fixed run after {result.steps} steps) and the same real and fake batches,
D called both ways:

{same_weights}

Mean over D's first batch-norm channels of |mean(real) - mean(fake)| after normalization:
{result.feature_gap["separate"]:.2g} separate (erased by construction) vs {result.feature_gap["concat"]:.3f}
concatenated (in units of the channel's standard deviation).

Trained each way from the same start for {result.steps} steps, means over the last quarter:

{losses_table("D called", result.late_losses, labels)}

And G's samples after those {result.steps} steps:

{result.table}

{result.note}

The two ways train along different paths, so one seed decides nothing; recalibrated, over
{len(result.seeds["fixed"])} seeds:

{seeds_table({f"{labels[run]}, recalibrated": values for run, values in result.seeds.items()})}

{seeds_verdict(result.seeds["concat_d"], result.seeds["fixed"], "Concatenated", "separate")}.

![separate vs concat]({FIGURE})

**The fix, as code:** a choice, made on purpose and kept the same in training and evaluation (plain
`tf.compat.v1`, to paste):

{code(SNIPPET)}

The project runs the same choice as the spec's `d_batches`, which `model_loss` (dcgan_mnist/model.py)
reads:

{code(source(model_loss))}
"""
    word = seeds_word(result.seeds["concat_d"], result.seeds["fixed"])
    (m1, s1), (m2, s2) = (mean_sd([q.fid for q in result.seeds[run]]) for run in ("concat_d", "fixed"))
    headline = (
        f"same weights, same images: d_loss {result.same_weights['separate'][0]:.3f} separate vs "
        f"{result.same_weights['concat'][0]:.3f} concatenated; trained, concatenated **{word}**: FID "
        f"{m1:.1f} ± {s1:.1f} vs {m2:.1f} ± {s2:.1f} recalibrated ({len(result.seeds['fixed'])} seeds)"
    )
    return Section("Real and fake through D separately vs concatenated", FIGURE, text, headline)
