"""Pitfall: dropout left on at sampling time, as the notebook's unconditional `tf.nn.dropout` was.

The same z gives a different image on every call: a grid cannot be reproduced, and two checkpoints
cannot be compared on the same z.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import Layers, SeedStream, dropout
from common.pitfalls.harness import ProbeInputs, Quality, Runs, level_difference, open_probe
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    grids_figure,
    quality_note,
    quality_table,
    source,
    verdict,
)
from common.step import call_network

v1 = tf.compat.v1

FIGURE = "dropout_at_inference.png"
VARIANTS = ()  # measured on the fixed run's weights


class DropoutSampler(NamedTuple):
    seed: tf.Tensor  # [2] int64 placeholder: the dropout masks' seed
    images: tf.Tensor


def sampler_with_dropout(spec: ArchSpec, config: Config, inputs: ProbeInputs) -> DropoutSampler:
    """The sampler's generator (BN on moving statistics) with the notebook's dropout left on."""
    with tf.name_scope("dropout_on"):
        seed = v1.placeholder(tf.int64, [2], name="seed")
        # quirks=original makes the notebook generator keep its dropout with training=False.
        notebook = config.replace(quirks="original")
        images = call_network(
            spec.generator, "generator", True, inputs.noise, False, notebook, Layers(seeds=SeedStream(seed))
        )
    return DropoutSampler(seed, images)


class DropoutAtInference(NamedTuple):
    keep_prob: float
    seed_difference: tuple[float, float]  # same z, same batch, two dropout seeds: 8-bit (max, mean)
    quality: dict[str, Quality]  # sample set -> evaluator numbers
    images: dict[str, np.ndarray]
    table: str
    note: str


def measure(runs: Runs) -> DropoutAtInference:
    noise = runs.noise()
    with open_probe(runs, sampler_with_dropout) as probe:
        probe.load(runs.weights())
        dropout_on = probe.part
        images = {"dropout off (fixed)": probe.inference(noise)}
        for seed in (1, 2):
            feed = {dropout_on.seed: np.array((seed, 0), np.int64)}
            images[f"dropout on, seed {seed}"] = probe.generate(dropout_on.images, noise, feed)
        # The evaluator's n samples, both samplers on the recalibrated statistics of the same weights.
        probe.load(runs.evaluator.recalibrated(runs.weights()))
        evaluator = runs.evaluator
        feed = {dropout_on.seed: np.array((1, 0), np.int64)}
        quality = {
            "dropout off, recalibrated": evaluator.of_images(
                probe.generate_uint8(probe.graph.inference, evaluator.noise)
            ),
            "dropout on, recalibrated": evaluator.of_images(
                probe.generate_uint8(dropout_on.images, evaluator.noise, feed)
            ),
        }
    return DropoutAtInference(
        runs.config.keep_prob,
        level_difference(images["dropout on, seed 1"], images["dropout on, seed 2"]),
        quality,
        images,
        quality_table(quality, evaluator),
        quality_note(evaluator),
    )


SNIPPET = """
def generator(z, training, reuse=False):
    ...
    # tf.nn.dropout has no `training` argument: it drops at sampling time too
    h = tf.compat.v1.layers.dropout(h, rate=0.5, training=training)
    # or: h = tf.compat.v1.nn.dropout(h, rate=0.5) if training else h
"""


def section(result: DropoutAtInference, out: Path) -> Section:
    grids_figure(out / FIGURE, result.images, "The same z, dropout at sampling time on and off")
    text = f"""
**Symptom.** The same z gives a different image on every call: a grid cannot be reproduced, and two
checkpoints cannot be compared on the same z.

**Cause.** The notebook's generator applied dropout unconditionally (no `training` flag), so its sampler
dropped {1 - result.keep_prob:.0%} of G's activations at random. Not batch norm, but the same root: a layer
that behaves differently in training and inference needs to be told which.

**The code that ran:** the project's sampler with `--quirks original`, which makes the notebook
generator keep its dropout at sampling time (`dcgan_mnist/model.py`: `dropout_on = True if
config.original_quirks else training`):

{code(source(sampler_with_dropout))}

**Measured** on the fixed run's final weights: the same z and the same batch with two dropout seeds differ
by up to **{result.seed_difference[0]:.0f}** 8-bit levels (mean {result.seed_difference[1]:.2f}).

{result.table}

{result.note}

Dropout on vs off at sampling time:
{verdict(result.quality["dropout on, recalibrated"], result.quality["dropout off, recalibrated"])}
({fq(result.quality["dropout on, recalibrated"])} vs {fq(result.quality["dropout off, recalibrated"])}).

![dropout at inference]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

**The project code that runs the same thing:**
dropout that is the identity when `training=False` (`common/layers.py`), called
with the network's `training` (the project's default; `dcgan_mnist/model.py`):

{code(source(dropout))}
"""
    on, off = result.quality["dropout on, recalibrated"], result.quality["dropout off, recalibrated"]
    headline = (
        f"same z, two dropout seeds: up to {result.seed_difference[0]:.0f} levels apart; FID "
        f"{on.fid:.1f} on vs "
        f"{off.fid:.1f} off (n {on.n})"
    )
    return Section("Dropout left on at inference", FIGURE, text, headline)
